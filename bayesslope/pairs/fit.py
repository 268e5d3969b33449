"""``fit_transfer_matrix``: every ordered task pair, partially pooled, in one vectorized fit."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from ..exceptions import DataValidationError, SamplingWarning
from .design import build_pair_design, constant_within
from .parallel import DeviceDiagnostics, DiagnosticsPool

__all__ = ["fit_transfer_matrix"]

# Kept slope draws are chunked so that one chunk's working set (a few float64 arrays of
# shape (chain, draw, chunk)) stays around 100-200 MB.
_CHUNK_VALUES = 1 << 22


# Pairs per compiled call of the Student-t path: the unit of work of one thread and of
# the progress bar.
_ROBUST_CHUNK = 64
# From this many pairs on, R-hat/ESS run in worker processes (their start-up, ~1-2 s,
# overlaps the population run; below this the diagnostics take a few seconds inline).
_POOL_MIN_PAIRS = 2000


class _ChunkSummaries:
    """Per-pair summaries (and optionally the draws) filled chunk by chunk.

    R-hat and bulk ESS go through ``pool`` (a :class:`~.parallel.DiagnosticsPool`, or a
    :class:`~.parallel.DeviceDiagnostics` on accelerators), so with worker processes they
    overlap the drawing of the next chunks; :meth:`finish` collects them.
    """

    def __init__(self, n_pairs: int, chains: int, draws: int, ci_prob: float,
                 keep_draws: bool, pool):
        self.q = ((1.0 - ci_prob) / 2.0, 1.0 - (1.0 - ci_prob) / 2.0)
        self.cols = {c: np.empty(n_pairs) for c in (
            "slope_mean", "slope_sd", "slope_eti_low", "slope_eti_high", "p_negative",
            "intercept_mean", "intercept_sd", "r_hat", "ess_bulk")}
        self.cols["n_divergent"] = np.zeros(n_pairs, dtype=int)
        self.kept = ({v: np.empty((n_pairs, chains, draws)) for v in ("slope", "intercept")}
                     if keep_draws else {})
        self.pool = pool
        self.pending = []
        self.diag_s = 0.0  # main-process seconds computing or waiting for R-hat/ESS

    def add(self, start: int, stop: int, intercept: np.ndarray, slope: np.ndarray,
            n_divergent: np.ndarray | None = None) -> None:
        """Summarize pairs ``start:stop`` from draws of shape (chain, draw, stop - start)."""
        cols, sl = self.cols, slice(start, stop)
        t0 = time.perf_counter()
        # Quarter chunks for the workers, so that they finish close together at the end.
        n = stop - start
        step = max(1, -(-n // 4)) if self.pool.workers else n
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            self.pending.append((slice(start + lo, start + hi),
                                 self.pool.submit(slope[..., lo:hi])))
        # Bounded memory: at most a few chunks of draws wait for a worker.
        while len(self.pending) > 8 * max(1, self.pool.workers):
            self._collect_oldest()
        self.diag_s += time.perf_counter() - t0
        cols["slope_mean"][sl] = slope.mean(axis=(0, 1))
        cols["slope_sd"][sl] = slope.std(axis=(0, 1), ddof=1)
        cols["slope_eti_low"][sl], cols["slope_eti_high"][sl] = np.quantile(
            slope, self.q, axis=(0, 1))
        cols["p_negative"][sl] = (slope < 0).mean(axis=(0, 1))
        cols["intercept_mean"][sl] = intercept.mean(axis=(0, 1))
        cols["intercept_sd"][sl] = intercept.std(axis=(0, 1), ddof=1)
        if n_divergent is not None:
            cols["n_divergent"][sl] = n_divergent
        if self.kept:
            self.kept["slope"][sl] = np.moveaxis(slope, -1, 0)
            self.kept["intercept"][sl] = np.moveaxis(intercept, -1, 0)

    def _collect_oldest(self) -> None:
        sl, future = self.pending.pop(0)
        self.cols["r_hat"][sl], self.cols["ess_bulk"][sl] = future.result()

    def finish(self) -> None:
        """Wait for and store every chunk's R-hat and ESS."""
        t0 = time.perf_counter()
        while self.pending:
            self._collect_oldest()
        self.diag_s += time.perf_counter() - t0


def _pair_model_data(design, stats, binomial: dict | None, grouped: bool) -> tuple:
    """Per-pair NUTS: model name, target per point, auxiliary data per point, start lines.

    The chains start near each pair's least-squares line: ``(0, r)`` on the standardized
    scores, or the line fitted to the probit of the smoothed accuracy for the binomial.
    """
    line = np.column_stack([np.zeros(design.n_pairs), design.r])
    if binomial is not None:
        line = np.column_stack([stats.ybar, stats.sxy / stats.sxx])
        return "binomial_probit", binomial["k"], binomial["n"], line
    if grouped:
        groups = design.unit_group[design.observation_units()].astype(float)
        return "normal_grouped", design.y, groups, line
    return "student_t", design.y, np.ones_like(design.y), line


def _resolve_n_eval(n_eval, df: pd.DataFrame, task: str, tasks) -> dict:
    """``n_eval`` (int, mapping task -> int, or column name) -> ``{task: int}``."""
    if isinstance(n_eval, str) and n_eval in df.columns:
        values = constant_within(df, task, n_eval, list(tasks), "task")
    elif isinstance(n_eval, Mapping):
        absent = [t for t in tasks if t not in n_eval]
        if absent:
            raise DataValidationError(f"n_eval gives no count for tasks {absent[:10]}")
        values = {t: n_eval[t] for t in tasks}
    else:
        values = dict.fromkeys(tasks, n_eval)
    out = {}
    for t, v in values.items():
        if isinstance(v, (bool, np.bool_)) or not (
                isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer())) \
                or v < 1:
            raise DataValidationError(f"n_eval for task {t!r} must be a positive integer, "
                                      f"got {v!r}")
        out[t] = int(v)
    return out


def _binomial_counts(design, n_eval: dict) -> dict:
    """Binomial data of every pair: target counts and the plug-in stage's statistics.

    Per observation the correct count ``k`` and questions ``n`` of the target task; per
    pair the statistics of the probit of the smoothed accuracy ``(k + 1/2) / (n + 1)``.
    """
    from ..collapsed import task_sufficient_stats

    hib = np.array([design.higher_is_better[t] for t in design.tasks])
    # Oriented scores are -raw for lower-is-better tasks: the accuracy is 1 - raw there.
    acc_table = np.where(hib, design.scores, 1.0 + design.scores)
    outside = np.isfinite(acc_table) & ((acc_table < 0.0) | (acc_table > 1.0))
    if outside.any():
        rows, cols = np.nonzero(outside)
        examples = [(design.tasks[c], design.units[r], float(design.scores[r, c] *
                                                             (1 if hib[c] else -1)))
                    for r, c in zip(rows[:5], cols[:5], strict=True)]
        raise DataValidationError(
            f"likelihood='binomial' needs accuracies (or, with better='lower', error rates) "
            f"in [0, 1]; {outside.sum()} scores are outside, e.g. (task, unit, score) "
            f"{examples}")
    units = design.observation_units()
    tgt = design.target[design.pair_idx]
    n = np.array([n_eval[t] for t in design.tasks], dtype=float)[tgt]
    k = np.round(acc_table[units, tgt] * n)
    from scipy.special import ndtri

    z = ndtri((k + 0.5) / (n + 1.0))
    stats = task_sufficient_stats(design.x, z, design.pair_idx, design.n_pairs)
    # The source is standardized: write its exact moments so equal-size pairs pool.
    exact = design.sufficient_stats()
    stats = stats._replace(xbar=exact.xbar, sxx=exact.sxx)
    return {"k": k, "n": n, "stats": stats, "n_eval": n_eval}


def _resolve_priors(priors: Mapping | None) -> dict:
    from .sampler import DEFAULT_PRIORS

    out = {k: dict(v) for k, v in DEFAULT_PRIORS.items()}
    for name, spec in (priors or {}).items():
        if name not in out:
            raise DataValidationError(f"unknown prior {name!r}; known: {sorted(out)}")
        spec = dict(spec)
        if spec.get("dist", out[name]["dist"]) != out[name]["dist"]:
            raise DataValidationError(
                f"prior {name!r} must be {out[name]['dist']} on the fast path; got {spec}"
            )
        spec["dist"] = out[name]["dist"]
        keys = set(out[name]) - {"dist"}
        if set(spec) - {"dist"} != keys or not all(
            np.isfinite(spec[k]) and spec[k] > (0 if k in ("sigma", "eta") else -np.inf)
            for k in keys
        ):
            raise DataValidationError(f"prior {name!r} needs {sorted(keys)} (valid); got {spec}")
        out[name] = {k: (v if k == "dist" else float(v)) for k, v in spec.items()}
    return out


def fit_transfer_matrix(
    df: pd.DataFrame,
    unit: str = "model",
    task: str = "task",
    score: str = "y",
    better: str | Mapping = "higher",
    tasks: list | None = None,
    sigma: Literal["pair", "shared"] = "pair",
    likelihood: Literal["gaussian", "student_t", "binomial"] = "gaussian",
    n_eval: int | Mapping | str | None = None,
    group: str | None = None,
    priors: Mapping | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float = 0.9,
    keep_draws: bool | None = None,
    chunk_size: int | None = None,
    ci_prob: float = 0.95,
    min_shared: int = 3,
    random_seed: int | None = None,
    progressbar: bool = False,
):
    """Fit the directed transfer slope of every ordered task pair (Gaussian fast path).

    Each ordered pair ``source -> target`` regresses the target's oriented score on the
    source's across the units scored on both, after standardizing both within the pair.
    Pair intercepts and slopes share a bivariate normal population prior whose parameters
    are learned from all pairs (partial pooling, the pair in the role of the task). The pair
    coefficients are integrated out (:mod:`bayesslope.collapsed`), NUTS (blackjax) samples
    the population parameters, and every pair's coefficients are drawn exactly from their
    conditional Gaussian, vectorized over pairs in chunks.

    Parameters
    ----------
    df : DataFrame
        Long format, one row per (unit, task) score.
    unit, task, score : str
        Column names.
    better : {'higher', 'lower'}, mapping or str
        Orientation of the scores: one for all, per task (mapping), or a column name.
    tasks : list, optional
        Subset (and order) of tasks.
    sigma : {'pair', 'shared'}, default 'pair'
        Residual sd per pair (sampled by NUTS, one extra dimension per pair; right when the
        pairs' correlations differ) or one shared by all pairs (fastest). Gaussian only:
        ``likelihood='student_t'`` always has one sd (and one ``nu``) per pair.
    likelihood : {'gaussian', 'student_t', 'binomial'}, default 'gaussian'
        ``'gaussian'``: the collapsed fast path. ``'student_t'``: heavy-tailed residuals
        (robust to outlying units). ``'binomial'``: scores are accuracies in [0, 1] (error
        rates if ``better='lower'``) of ``n_eval`` questions; the target's correct count is
        binomial with a probit link in the standardized source, so slopes are in probit
        units per source sd. Both non-Gaussian ones sample each pair's coefficients by
        NUTS over pairs (:mod:`bayesslope.pairs.robust`) under a plug-in population prior
        (posterior means of the Gaussian fast path with ``sigma='shared'``, on the
        standardized target or, for the binomial, on the probit of the smoothed accuracy).
    n_eval : int, mapping or str, optional
        ``likelihood='binomial'`` only: questions per evaluation, one for all tasks, per
        task (mapping), or a column name (constant within a task).
    group : str, optional
        Column grouping the units (e.g. the model of each checkpoint), Gaussian only: every
        pair gets a random intercept per group (``tau_p ~ HalfNormal(1)``), so checkpoints
        of one model do not count as independent evidence; per-pair NUTS as for the
        non-Gaussian likelihoods, under the same plug-in population prior.
    priors : mapping, optional
        Overrides of the standardized-unit priors (same distributions, new parameters):
        ``intercept_mu``/``slope_mu`` Normal(mu, sigma), ``intercept_sigma``,
        ``slope_sigma``, ``sigma`` HalfNormal(sigma), ``corr`` LKJ(eta).
    draws, tune, chains : int
        Kept draws per chain, warm-up steps and chains of the population NUTS run.
    target_accept : float, default 0.9
        NUTS target acceptance rate.
    keep_draws : bool, optional
        Keep the slope/intercept draws (``8 * chains * draws * 2`` bytes per pair) or only
        summaries; default: keep when that is under 1 GB.
    chunk_size : int, optional
        Pairs per chunk of the draw stage (bounded memory; results do not depend on it).
    ci_prob : float, default 0.95
        Probability of the equal-tailed intervals.
    min_shared : int, default 3
        Fewest shared units per pair; pairs with fewer raise a ``DataValidationError``.
    random_seed : int, optional
        Seed; results are reproducible whatever ``chunk_size``.
    progressbar : bool, default False
        tqdm progress bar over the pair chunks.

    Returns
    -------
    TransferMatrix

    Notes
    -----
    The first call imports JAX; float64 is enabled only while sampling
    (``jax.enable_x64`` context, restored afterwards). Units without a score on a task are
    left out of the pairs that involve it; the count is reported per pair (``n_dropped``)
    and warned about.
    """
    import jax
    import xarray as xr

    from .compile_cache import ensure_compilation_cache
    from .result import TransferMatrix
    from .sampler import draw_pairs, sample_population

    if sigma not in ("pair", "shared"):
        raise DataValidationError(f"sigma must be 'pair' or 'shared', got {sigma!r}")
    if likelihood not in ("gaussian", "student_t", "binomial"):
        raise DataValidationError(
            f"likelihood must be 'gaussian', 'student_t' or 'binomial', got {likelihood!r}")
    robust = likelihood != "gaussian" or group is not None
    if (n_eval is not None) != (likelihood == "binomial"):
        raise DataValidationError("n_eval is needed with likelihood='binomial', and only then")
    if group is not None and likelihood != "gaussian":
        raise DataValidationError(
            f"group= is available with likelihood='gaussian' only, got {likelihood!r}")
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise DataValidationError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 < ci_prob < 1.0:
        raise DataValidationError(f"ci_prob must lie in (0, 1), got {ci_prob}")
    prior_specs = _resolve_priors(priors)
    design = build_pair_design(df, unit=unit, task=task, score=score, better=better,
                               tasks=tasks, min_shared=min_shared, group=group)
    if design.missing:
        warnings.warn(
            f"units without a score are left out of the pairs of these tasks "
            f"(task: missing units): {design.missing}; see summary()['n_dropped']",
            UserWarning, stacklevel=2,
        )
    n_pairs = design.n_pairs
    stats = design.sufficient_stats()
    binomial = None
    if likelihood == "binomial":
        binomial = _binomial_counts(design, _resolve_n_eval(n_eval, df, task, design.tasks))
        stats = binomial["stats"]
    timings = {}
    jax_cache = ensure_compilation_cache()

    bytes_per_pair = 8 * chains * draws * 2
    if keep_draws is None:
        keep_draws = bytes_per_pair * n_pairs <= 1 << 30
    if chunk_size is None:
        chunk_size = (_ROBUST_CHUNK if robust
                      else max(1, _CHUNK_VALUES // (chains * draws)))
    workers = min(2, os.cpu_count() or 1) if n_pairs >= _POOL_MIN_PAIRS else 0
    bar = None
    # Created before any JAX work (the workers are forked) and before sampling, so their
    # start-up overlaps the population run.
    with DiagnosticsPool(workers) as pool:
        seed = (np.random.SeedSequence(random_seed).generate_state(1)[0]
                if random_seed is None else random_seed)
        k_pop, k_pairs = jax.random.split(jax.random.key(int(seed)))
        t0 = time.perf_counter()
        if sigma == "pair" and not robust:
            # Each pair's sigma integrated out by 1-D quadrature (5-D population NUTS).
            from .pair_sigma import sample_population as sample_population_pair_sigma

            post = sample_population_pair_sigma(k_pop, stats, prior_specs, chains=chains,
                                                draws=draws, tune=tune,
                                                target_accept=target_accept)
        else:
            post = sample_population(k_pop, stats, prior_specs, per_pair_sigma=False,
                                     chains=chains, draws=draws, tune=tune,
                                     target_accept=target_accept)
        timings["population_s"] = time.perf_counter() - t0
        if progressbar:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_pairs, desc="pairs", unit="pair")
        # On an accelerator the R-hat/ESS of the pair draws run there too (the forked
        # workers, made before JAX started, are then left idle).
        on_device = jax.default_backend() != "cpu"
        sums = _ChunkSummaries(n_pairs, chains, draws, ci_prob, keep_draws,
                               DeviceDiagnostics() if on_device else pool)
        t0 = time.perf_counter()
        try:
            if robust:
                from .robust import padded_pairs, sample_pairs

                plug_in = {k: float(np.mean(post.params[k])) for k in (
                    "intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr")}
                model, target, aux, line = _pair_model_data(design, stats, binomial,
                                                             group is not None)
                xs, ys, aux_p, mask = padded_pairs(design.pair_idx, n_pairs, design.x,
                                                   target, aux)
                sample_pairs(
                    model, k_pairs, xs, ys, aux_p, mask, line, plug_in,
                    prior_specs["sigma"]["sigma"], chains, draws, tune, target_accept,
                    chunk_size, sums.add, progress=None if bar is None else bar.update,
                    n_groups=len(design.groups))
            elif sigma == "pair":  # sigma per pair from its grid, then the Gaussian
                from .pair_sigma import draw_pairs as draw_pairs_pair_sigma

                sigma_mean = draw_pairs_pair_sigma(
                    k_pairs, stats, post.params, prior_specs["sigma"]["sigma"], chunk_size,
                    sums.add, progress=None if bar is None else bar.update)
            else:
                draw_pairs(k_pairs, stats, post.params, chunk_size, sums.add,
                           progress=None if bar is None else bar.update)
            sums.finish()
        finally:
            if bar is not None:
                bar.close()
    timings["pairs_s"] = time.perf_counter() - t0
    # arviz_stats R-hat / ESS: main-process time computing or waiting for them (pairs_s
    # includes it); with worker processes most of their work overlaps the draws.
    timings["pair_diagnostics_s"] = sums.diag_s
    timings["diagnostics_workers"] = 0 if on_device else workers
    timings["diagnostics_on"] = "device (blackjax)" if on_device else "cpu (arviz-stats)"
    cols, kept = sums.cols, sums.kept
    sums.kept = None  # the local name below is the only reference left

    # Data units: per unit of the source; the binomial's target scale is probit already.
    scale = (1.0 if binomial is not None else design.y_scale) / design.x_scale
    table = pd.DataFrame(
        {
            "n": design.n,
            "n_dropped": design.n_dropped,
            "r": design.r,
            "slope_mean": cols["slope_mean"],
            "slope_sd": cols["slope_sd"],
            "slope_eti_low": cols["slope_eti_low"],
            "slope_eti_high": cols["slope_eti_high"],
            "slope_data_mean": cols["slope_mean"] * scale,
            "slope_data_sd": cols["slope_sd"] * scale,
            "slope_data_eti_low": cols["slope_eti_low"] * scale,
            "slope_data_eti_high": cols["slope_eti_high"] * scale,
            "p_negative": cols["p_negative"],
            "intercept_mean": cols["intercept_mean"],
            "intercept_sd": cols["intercept_sd"],
            "sigma_mean": (np.full(n_pairs, np.nan) if robust
                           else sigma_mean if sigma == "pair"
                           else np.full(n_pairs, post.params["sigma"].mean())),
            "r_hat": cols["r_hat"],
            "ess_bulk": cols["ess_bulk"],
            "n_divergent": cols["n_divergent"],
            "scale_ratio": scale,
        },
        index=design.pair_labels(),
    )

    pop_vars = {k: (("chain", "draw"), v) for k, v in post.params.items()
                if not (k == "sigma" and (sigma == "pair" or robust))}
    population = xr.Dataset(pop_vars, coords={"chain": np.arange(chains),
                                              "draw": np.arange(draws)})
    sampler_stats = xr.Dataset(
        {"diverging": (("chain", "draw"), post.diverging),
         "tree_depth": (("chain", "draw"), post.tree_depth),
         "acceptance_rate": (("chain", "draw"), post.acceptance_rate),
         "step_size": (("chain",), post.step_size)},
        coords=population.coords,
    )
    draws_ds = None
    if keep_draws:
        k = design.n_tasks
        tasks_ = list(design.tasks)
        full = {}
        for v, arr in kept.items():
            mat = np.full((k, k, chains, draws), np.nan)
            mat[design.source, design.target] = arr
            full[v] = (("source", "target", "chain", "draw"), mat)
        del kept
        draws_ds = xr.Dataset(full, coords={"source": tasks_, "target": tasks_,
                                            "chain": np.arange(chains),
                                            "draw": np.arange(draws)})

    tm = TransferMatrix(
        design=design, table=table, population=population, sampler_stats=sampler_stats,
        draws=draws_ds, priors=prior_specs,
        settings={"method": (f"per-pair-nuts-{likelihood}" + ("-grouped" if group else "")
                             if robust else "collapsed-gaussian"),
                  "likelihood": likelihood, "group": group,
                  "sigma": "pair" if robust else sigma,
                  "population_prior": plug_in if robust else "sampled", "n_eval": (
                      binomial["n_eval"] if binomial is not None else None), "draws": draws,
                  "tune": tune, "chains": chains, "target_accept": target_accept,
                  "random_seed": random_seed, "chunk_size": chunk_size, "ci_prob": ci_prob,
                  "keep_draws": keep_draws, "timings": timings,
                  "jax_compilation_cache": jax_cache},
    )
    diag = tm.diagnostics()
    if not diag["ok"]:
        warnings.warn(
            f"{diag['n_divergences']} divergent transitions; "
            f"{diag['n_rhat_high']} of {n_pairs} pairs with R-hat > 1.01 and "
            f"{diag['n_ess_low']} with bulk ESS < 400: see tm.diagnostics(); more draws "
            f"(draws=, tune=) or a higher target_accept usually help",
            SamplingWarning, stacklevel=2,
        )
    return tm
