"""The pair stage as independent chunks: one picklable plan, one pure function per chunk.

After the population run every pair's draws depend only on the population draws, the
pair's data and ``fold_in(key, pair)``, so the pair stage splits into chunks of pairs
that can run anywhere: in this process (threads for per-pair NUTS), in another process,
or as tasks on a Dask cluster (:mod:`bayesslope.pairs.distributed`). A :class:`StagePlan`
holds everything a chunk needs as numpy arrays (shipped once to each worker);
:func:`run_chunk` draws one chunk and :func:`summarize_chunk` reduces it to the per-pair
summaries, so a worker returns kilobytes, not draws. The same plan and chunk size give
the same numbers wherever a chunk runs (one compiled program, padded chunks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["StagePlan", "make_plan", "run_chunk", "chunk_columns",
           "summarize_chunk"]


@dataclass(frozen=True)
class StagePlan:
    """Everything the pair stage needs after the population run (picklable).

    Attributes
    ----------
    kind : {"gaussian", "pair_sigma", "nuts"}
        Exact draws with the sigma(s) of the population run, exact draws with each pair's
        sigma by quadrature, or per-pair NUTS under the plug-in population prior.
    data : dict
        The plan of :func:`bayesslope.pairs.sampler.draw_plan`,
        :func:`bayesslope.pairs.pair_sigma.draw_plan` or
        :func:`bayesslope.pairs.robust.nuts_plan`.
    n_pairs, chains, draws : int
    plug_in : dict or None
        The plug-in population prior (per-pair NUTS only).
    """

    kind: str
    data: dict
    n_pairs: int
    chains: int
    draws: int
    plug_in: dict | None = None

    def columns(self) -> list[str]:
        """The pair-table columns a chunk fills (:func:`summarize_chunk`'s ``cols``)."""
        from .summaries import quantile_levels

        names = ["mean", "sd", *quantile_levels()[0], "p_negative", "intercept_mean",
                 "intercept_sd", "r_hat", "ess_bulk", "n_divergent"]
        return names + (["sigma_mean"] if self.kind == "pair_sigma" else [])

    @property
    def bounds(self) -> list[tuple[int, int]]:
        """The chunks ``(start, stop)``, in pair order."""
        return list(self.data["bounds"])


def make_plan(design, config, stats, binomial: dict | None, post, key) -> StagePlan:
    """The :class:`StagePlan` of a fit, from its population posterior and pair-stage key."""
    s = config.sampler
    common = {"n_pairs": design.n_pairs, "chains": s["chains"], "draws": s["draws"]}
    sigma_scale = config.priors["sigma"]["sigma"]
    if config.per_pair_nuts:
        from .fit import _pair_model_data
        from .robust import nuts_plan, padded_pairs

        plug_in = {k: float(np.mean(post.params[k])) for k in (
            "intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr")}
        model, target, aux, line = _pair_model_data(design, stats, binomial,
                                                    config.group is not None)
        xs, ys, aux_p, mask = padded_pairs(design.pair_idx, design.n_pairs, design.x,
                                           target, aux)
        data = nuts_plan(model, key, xs, ys, aux_p, mask, line, plug_in, sigma_scale,
                         s["chains"], s["draws"], s["tune"], s["target_accept"],
                         config.chunk_size, n_groups=len(design.groups))
        return StagePlan("nuts", data, plug_in=plug_in, **common)
    if config.per_pair_sigma:
        from .pair_sigma import draw_plan

        return StagePlan("pair_sigma", draw_plan(key, stats, post.params, sigma_scale,
                                                 config.chunk_size), **common)
    import jax

    from .sampler import draw_plan

    with jax.enable_x64(True):
        data = draw_plan(key, stats, post.params, config.chunk_size)
    return StagePlan("gaussian", data, **common)


def run_chunk(plan: StagePlan, start: int, stop: int) -> dict:
    """The draws of pairs ``start:stop``.

    ``intercept``, ``slope`` (chain, draw, C), and ``n_divergent`` (per-pair NUTS) or
    ``sigma_mean`` (per-pair sigma) per pair.
    """
    if plan.kind == "nuts":
        from .robust import nuts_range

        a, b, div = nuts_range(plan.data, start, stop)
        return {"intercept": a, "slope": b, "n_divergent": div}
    if plan.kind == "pair_sigma":
        from .pair_sigma import draw_range

        sigma, a, b = draw_range(plan.data, start, stop)
        return {"intercept": a, "slope": b, "sigma_mean": sigma.mean(axis=(0, 1))}
    from .sampler import draw_range

    a, b = draw_range(plan.data, start, stop)
    return {"intercept": a, "slope": b}


def chunk_columns(intercept: np.ndarray, slope: np.ndarray, q_names, q_levels) -> dict:
    """Per-pair summaries of draws shaped (chain, draw, C), except R-hat and ESS."""
    cols = {"mean": slope.mean(axis=(0, 1)), "sd": slope.std(axis=(0, 1), ddof=1)}
    for name, q in zip(q_names, np.quantile(slope, q_levels, axis=(0, 1)), strict=True):
        cols[name] = q
    cols["p_negative"] = (slope < 0).mean(axis=(0, 1))
    cols["intercept_mean"] = intercept.mean(axis=(0, 1))
    cols["intercept_sd"] = intercept.std(axis=(0, 1), ddof=1)
    return cols


def summarize_chunk(plan: StagePlan, start: int, stop: int, keep_draws: bool) -> dict:
    """Run one chunk and reduce it to its summaries (what a cluster task returns).

    Returns ``{"start", "stop", "cols", "draws"}``: ``cols`` every column of the pair
    table that the draws give (R-hat and bulk ESS included), ``draws`` the slope and
    intercept as (C, chain, draw) when ``keep_draws``, else None.
    """
    from .parallel import rhat_ess
    from .summaries import quantile_levels

    out = run_chunk(plan, start, stop)
    a, b = out["intercept"], out["slope"]
    q_names, q_levels = quantile_levels()
    cols = chunk_columns(a, b, q_names, q_levels)
    cols["r_hat"], cols["ess_bulk"] = rhat_ess(b)
    cols["n_divergent"] = (np.asarray(out["n_divergent"], dtype=int) if "n_divergent" in out
                           else np.zeros(stop - start, dtype=int))
    if "sigma_mean" in out:
        cols["sigma_mean"] = out["sigma_mean"]
    draws = ({"slope": np.moveaxis(b, -1, 0), "intercept": np.moveaxis(a, -1, 0)}
             if keep_draws else None)
    return {"start": start, "stop": stop, "cols": cols, "draws": draws}
