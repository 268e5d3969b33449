"""SBC variants of the transfer matrix's non-Gaussian pairs (per-pair NUTS).

``fit_transfer_matrix(likelihood="student_t" | "binomial")`` and ``group=`` sample each
pair's intercept and slope with blackjax NUTS (:func:`bayesslope.pairs.robust.sample_pairs`)
under a *plug-in* population prior (the posterior means of the Gaussian fast path). What
can be validated by SBC is that engine given the plug-in: every simulation draws a
population from the fixed :data:`~validation.variants.PRIORS`, then each pair's
coefficients and nuisance parameters from the pair model of docs/transfer_matrix.md
(numpy, written from the docs), simulates the pair's data and fits it with
``sample_pairs`` handed that population as its plug-in. Ranks are uniform if the per-pair
log densities, their transforms and the sampler are right. The plug-in approximation
itself (a point estimate of the population instead of its posterior) is a documented
approximation, not tested here.

The pairs of one simulation are independent given the population, so the pooled
intercept and slope ranks are an informative test on their own.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from .common import (
    COVERAGE_PROBS,
    POPULATION,
    PRIORS,
    SAMPLING,
    FitDraws,
    Variant,
    draw_diagnostics,
    register_variant,
    sample_population,
)
from .common import half_normal as _half_normal

__all__ = ["NU_PRIOR", "TAU_SCALE", "sample_pairs_truth", "simulate_pairs", "fit_pairs_robust",
           "fit_pairs_pair_sigma", "pair_variants"]

# Per-pair priors of bayesslope.pairs.robust's docstring (written again here).
NU_PRIOR = {"alpha": 2.0, "rate": 0.1}   # nu_p ~ Gamma(2, rate 0.1)
TAU_SCALE = 1.0                          # tau_p ~ HalfNormal(1): sd of the group offsets
SIGMA_SCALE = PRIORS["sigma"]["sigma"]   # sigma_p ~ HalfNormal(0.5), fit's sigma_scale
N_EVAL = 200                             # binomial trials per point


def sample_pairs_truth(rng: np.random.Generator, n_pairs: int, model: str) -> dict:
    """Population from :data:`PRIORS`, then every pair's parameters of ``model``.

    Returns ``intercept``, ``slope`` (one per pair, correlated bivariate normal around the
    population), the population itself and the per-pair nuisance parameters: ``sigma``,
    ``nu`` (``student_t``), ``sigma``, ``tau`` (``normal_grouped``), none for
    ``binomial_probit``.
    """
    truth = sample_population(rng, n_pairs, per_task_sigma=True)  # sigma_p ~ HalfNormal(0.5)
    if model == "student_t":
        truth["nu"] = rng.gamma(NU_PRIOR["alpha"], 1.0 / NU_PRIOR["rate"], size=n_pairs)
    elif model == "normal_grouped":
        truth["tau"] = _half_normal(rng, TAU_SCALE, size=n_pairs)
    elif model == "binomial_probit":
        del truth["sigma"]
    else:
        raise ValueError(f"unknown pair model {model!r}")
    return truth


def simulate_pairs(truth: dict, rng: np.random.Generator, n_points: int, model: str,
                   n_groups: int = 5) -> pd.DataFrame:
    """Each pair's data: ``x ~ Normal(0, 1)`` (a standardized source) and the target.

    ``student_t``: ``y = a + b x + sigma t_nu``. ``binomial_probit``: ``y = k``,
    ``k ~ Binomial(N_EVAL, Phi(a + b x))``, column ``n``. ``normal_grouped``: points in
    ``n_groups`` unit groups of equal size (checkpoints of one model), ``y = a + b x +
    tau w_g + sigma eps``, ``w_g ~ Normal(0, 1)``, column ``group``. The population is put
    in ``df.attrs["population"]``: the fit uses it as its plug-in.
    """
    from scipy.special import ndtr

    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    n_pairs = a.size
    pair = np.repeat(np.arange(n_pairs), n_points)
    x = rng.normal(size=pair.size)
    eta = a[pair] + b[pair] * x
    out = {"task": np.array([f"p{k:03d}" for k in range(n_pairs)])[pair], "x": x}
    if model == "student_t":
        out["y"] = eta + truth["sigma"][pair] * rng.standard_t(truth["nu"][pair])
    elif model == "binomial_probit":
        out["y"] = rng.binomial(N_EVAL, ndtr(eta)).astype(float)
        out["n"] = np.full(pair.size, float(N_EVAL))
    else:
        group = np.tile(np.arange(n_points) * n_groups // n_points, n_pairs)
        w = rng.normal(size=(n_pairs, n_groups))
        out["y"] = (eta + truth["tau"][pair] * w[pair, group]
                    + truth["sigma"][pair] * rng.normal(size=pair.size))
        out["group"] = group
    df = pd.DataFrame(out)
    df.attrs["population"] = {k: float(truth[k]) for k in (*POPULATION, "corr")}
    return df


def _start_lines(x: np.ndarray, target: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
    """Least-squares line per pair (on the probit of the smoothed accuracy for counts)."""
    from scipy.special import ndtri

    if trials is not None:
        target = ndtri((target + 0.5) / (trials + 1.0))
    xc = x - x.mean(axis=1, keepdims=True)
    slope = (xc * target).sum(axis=1) / (xc * xc).sum(axis=1)
    return np.column_stack([target.mean(axis=1) - slope * x.mean(axis=1), slope])


def fit_pairs_robust(df: pd.DataFrame, seed: int, *, model: str, n_groups: int = 5
                     ) -> FitDraws:
    """Fit every pair of ``df`` with the transfer matrix's per-pair NUTS.

    The chains start near each pair's least-squares line (as ``fit_transfer_matrix``
    does); intervals are equal-tailed and ``p_negative`` the fraction of draws below 0, as
    the transfer matrix reports them.
    """
    import jax

    from bayesslope.pairs.robust import sample_pairs

    names = np.unique(df["task"].to_numpy())
    n_pairs = names.size
    x = df["x"].to_numpy(float).reshape(n_pairs, -1)
    y = df["y"].to_numpy(float).reshape(n_pairs, -1)
    aux = None
    if model == "binomial_probit":
        aux = df["n"].to_numpy(float).reshape(n_pairs, -1)
    elif model == "normal_grouped":
        aux = df["group"].to_numpy(float).reshape(n_pairs, -1)
    line = _start_lines(x, y, aux if model == "binomial_probit" else None)
    out = {}

    def on_chunk(start, stop, intercept, slope, n_divergent):
        out.update(intercept=intercept, slope=slope, divergences=int(n_divergent.sum()))

    sample_pairs(model, jax.random.key(seed), x, y, aux, np.ones_like(x), line,
                 df.attrs["population"], SIGMA_SCALE, SAMPLING["chains"], SAMPLING["draws"],
                 SAMPLING["tune"], SAMPLING["target_accept"], chunk_size=n_pairs,
                 on_chunk=on_chunk, n_groups=n_groups if model == "normal_grouped" else 0)
    draws = {k: np.asarray(out[k]) for k in ("intercept", "slope")}  # (chain, draw, pair)
    flat = draws["slope"].reshape(-1, n_pairs)
    intervals = {p: tuple(np.quantile(flat, [(1 - p) / 2, (1 + p) / 2], axis=0))
                 for p in COVERAGE_PROBS}
    both = np.concatenate([draws["intercept"], draws["slope"]], axis=-1)
    return FitDraws(draws=draws, slope_intervals=intervals, p_negative=(flat < 0).mean(axis=0),
                    diagnostics=draw_diagnostics(both, out["divergences"]))


def pair_variants(n_pairs: int = 12, n_points: int = 20) -> list[Variant]:
    """The three per-pair NUTS models of the transfer matrix as SBC variants."""
    shape = f"({n_pairs} pairs x {n_points} points, population plug-in = its true value)"
    described = {
        "student_t": ("pairs_student_t", "transfer matrix, likelihood='student_t': per-pair "
                      "NUTS, sigma_p ~ HalfNormal(0.5), nu_p ~ Gamma(2, 0.1)"),
        "binomial_probit": ("pairs_binomial", "transfer matrix, likelihood='binomial': "
                            f"per-pair NUTS, probit link, n_eval={N_EVAL}"),
        "normal_grouped": ("pairs_grouped", "transfer matrix, group=: per-pair NUTS, "
                           "offsets of 5 unit groups (tau_p ~ HalfNormal(1)) integrated out"),
    }
    return [
        Variant(name=name, description=f"{text} {shape}",
                sample_prior=partial(sample_pairs_truth, n_pairs=n_pairs, model=model),
                simulate=partial(simulate_pairs, n_points=n_points, model=model),
                fit=partial(fit_pairs_robust, model=model),
                params=("intercept[0]", "slope[0]"), pooled=("slope", "intercept"))
        for model, (name, text) in described.items()
    ]


def fit_pairs_pair_sigma(df: pd.DataFrame, seed: int) -> FitDraws:
    """The transfer matrix's default engine (per-pair sigma integrated by quadrature).

    :func:`bayesslope.pairs.pair_sigma.sample_population` (NUTS on the five population
    parameters, every pair's sigma integrated out) then
    :func:`~bayesslope.pairs.pair_sigma.draw_pairs` (each pair's sigma from its grid, then
    its coefficients from their conditional Gaussian), on the per-task sufficient
    statistics, with the summaries ``fit_transfer_matrix`` computes. Same simulation and
    priors as ``pairs_core`` (which samples every log sigma by NUTS instead).
    """
    import jax

    from bayesslope.collapsed import task_sufficient_stats
    from bayesslope.pairs import pair_sigma

    codes, idx = np.unique(df["task"].to_numpy(), return_inverse=True)
    stats = task_sufficient_stats(df["x"].to_numpy(float), df["y"].to_numpy(float), idx,
                                  codes.size)
    k_pop, k_pairs = jax.random.split(jax.random.key(seed))
    post = pair_sigma.sample_population(
        k_pop, stats, PRIORS, chains=SAMPLING["chains"], draws=SAMPLING["draws"],
        tune=SAMPLING["tune"], target_accept=SAMPLING["target_accept"])
    coef = {}

    def on_chunk(start, stop, intercept, slope):
        coef.update(intercept=np.asarray(intercept), slope=np.asarray(slope))

    def on_sigma(start, stop, sigma):
        coef["sigma"] = np.asarray(sigma)

    pair_sigma.draw_pairs(k_pairs, stats, post.params, PRIORS["sigma"]["sigma"], codes.size,
                          on_chunk, on_sigma=on_sigma)
    draws = {k: np.asarray(v) for k, v in post.params.items()}
    draws.update(coef)
    flat = draws["slope"].reshape(-1, codes.size)
    intervals = {p: tuple(np.quantile(flat, [(1 - p) / 2, (1 + p) / 2], axis=0))
                 for p in COVERAGE_PROBS}
    ranked = np.stack([draws[k] for k in POPULATION], axis=-1)
    return FitDraws(draws=draws, slope_intervals=intervals, p_negative=(flat < 0).mean(axis=0),
                    diagnostics=draw_diagnostics(ranked, int(post.diverging.sum())))


def pair_sigma_variant() -> Variant:
    """``pairs_core``'s simulation fitted by the default per-pair-sigma engine (issue 21)."""
    from .variants import _gaussian_variant

    variant = _gaussian_variant(
        "pairs_pair_sigma", "transfer-matrix default engine: per-pair sigma integrated out "
        "by quadrature (5-D population NUTS), sigma and coefficients drawn per pair",
        n_tasks=20, n_points=12, per_task_sigma=True)
    return Variant(**{**variant.__dict__, "fit": fit_pairs_pair_sigma})


for _variant in (*pair_variants(), pair_sigma_variant()):
    register_variant(_variant)
