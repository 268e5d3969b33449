"""The bayesslope variants under SBC: numpy prior samplers, simulators and fit adapters.

The generative model is written here again in numpy, independently of the package
(docs/model.md), with FIXED priors that are passed to ``fit_hierarchical(priors=...)``:
the package's defaults are scaled to the data, which would make the prior depend on the
simulated data and break SBC.

Adding a variant is a few lines: a prior sampler, a simulator and a fit adapter, then
``register_variant(Variant(...))``. A variant whose package option does not exist yet
(checked with :func:`_accepts`) is not registered.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from functools import partial

import numpy as np
import pandas as pd

from .sbc import COVERAGE_PROBS, FitDraws, Variant, register_variant  # noqa: I001

__all__ = ["PRIORS", "sample_population", "simulate_gaussian", "fit_bayesslope",
           "simulate_student_t", "simulate_binomial_probit"]

# Fixed priors (data units): x ~ Normal(0, 1) and y of order 1 give realistic data.
PRIORS = {
    "intercept_mu": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "slope_mu": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "intercept_sigma": {"dist": "HalfNormal", "sigma": 1.0},
    "slope_sigma": {"dist": "HalfNormal", "sigma": 0.5},
    "sigma": {"dist": "HalfNormal", "sigma": 0.5},
    "corr": {"dist": "LKJ", "eta": 2.0},
}
POPULATION = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma")
PRIORS_T = {**PRIORS, "nu": {"dist": "Gamma", "alpha": 2.0, "beta": 0.1}}
PRIORS_PROBIT = {k: v for k, v in PRIORS.items() if k != "sigma"}
SAMPLING = {"draws": 500, "tune": 500, "chains": 2, "cores": 1, "target_accept": 0.9}


def _half_normal(rng: np.random.Generator, scale: float, size=None):
    return np.abs(rng.normal(0.0, scale, size=size))


def sample_population(
    rng: np.random.Generator, n_tasks: int, *, correlated: bool = True,
    per_task_sigma: bool = False,
) -> dict:
    """Draw every parameter of the Gaussian model from :data:`PRIORS` (numpy only).

    Returns
    -------
    dict
        ``intercept_mu, slope_mu, intercept_sigma, slope_sigma, corr, sigma`` and per-task
        ``intercept``, ``slope`` (and ``sigma`` per task if ``per_task_sigma``).
    """
    p = PRIORS
    mu = np.array([rng.normal(p["intercept_mu"]["mu"], p["intercept_mu"]["sigma"]),
                   rng.normal(p["slope_mu"]["mu"], p["slope_mu"]["sigma"])])
    sd = np.array([_half_normal(rng, p["intercept_sigma"]["sigma"]),
                   _half_normal(rng, p["slope_sigma"]["sigma"])])
    eta = p["corr"]["eta"]
    # LKJ(eta) on a 2x2 correlation matrix: (corr + 1) / 2 ~ Beta(eta, eta).
    corr = 2.0 * rng.beta(eta, eta) - 1.0 if correlated else 0.0
    z = rng.normal(size=(n_tasks, 2))
    a = mu[0] + sd[0] * z[:, 0]
    b = mu[1] + sd[1] * (corr * z[:, 0] + np.sqrt(1.0 - corr**2) * z[:, 1])
    sigma = _half_normal(rng, p["sigma"]["sigma"], size=n_tasks if per_task_sigma else None)
    truth = {"intercept_mu": mu[0], "slope_mu": mu[1], "intercept_sigma": sd[0],
             "slope_sigma": sd[1], "sigma": sigma, "intercept": a, "slope": b}
    if correlated:
        truth["corr"] = corr
    return truth


def simulate_gaussian(
    truth: dict, rng: np.random.Generator, n_points: int, *, x_sign: float = 1.0
) -> pd.DataFrame:
    """Simulate ``y = intercept + slope * x_sign * x + sigma * eps`` with ``x ~ Normal(0, 1)``.

    ``x_sign = -1`` simulates a metric where lower x is better (fit with
    ``x_better="lower"``): the oriented covariate is then ``-x``.
    """
    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    n_tasks = a.size
    task = np.repeat(np.arange(n_tasks), n_points)
    x = rng.normal(size=task.size)
    sigma = np.broadcast_to(np.asarray(truth["sigma"], dtype=float), (n_tasks,))
    y = a[task] + b[task] * x_sign * x + sigma[task] * rng.normal(size=task.size)
    names = np.array([f"t{k:03d}" for k in range(n_tasks)])
    return pd.DataFrame({"task": names[task], "x": x, "y": y})


def sample_student_t(rng: np.random.Generator, n_tasks: int) -> dict:
    """Gaussian-model parameters plus ``nu ~ Gamma(2, rate 0.1)`` (the Student-t dof)."""
    truth = sample_population(rng, n_tasks)
    truth["nu"] = rng.gamma(PRIORS_T["nu"]["alpha"], 1.0 / PRIORS_T["nu"]["beta"])
    return truth


def simulate_student_t(truth: dict, rng: np.random.Generator, n_points: int) -> pd.DataFrame:
    """``y = intercept + slope * x + sigma * t_nu`` with ``x ~ Normal(0, 1)``."""
    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    task = np.repeat(np.arange(a.size), n_points)
    x = rng.normal(size=task.size)
    y = a[task] + b[task] * x + truth["sigma"] * rng.standard_t(truth["nu"], size=task.size)
    names = np.array([f"t{k:03d}" for k in range(a.size)])
    return pd.DataFrame({"task": names[task], "x": x, "y": y})


def sample_probit(rng: np.random.Generator, n_tasks: int) -> dict:
    """Population and task coefficients on the probit scale (no ``sigma``)."""
    truth = sample_population(rng, n_tasks)
    del truth["sigma"]
    return truth


def simulate_binomial_probit(truth: dict, rng: np.random.Generator, n_points: int,
                             n_eval: int) -> pd.DataFrame:
    """``k ~ Binomial(n_eval, Phi(intercept + slope * x))``; ``y = k / n_eval``."""
    from scipy.special import ndtr

    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    task = np.repeat(np.arange(a.size), n_points)
    x = rng.normal(size=task.size)
    k = rng.binomial(n_eval, ndtr(a[task] + b[task] * x))
    names = np.array([f"t{k:03d}" for k in range(a.size)])
    return pd.DataFrame({"task": names[task], "x": x, "y": k / n_eval, "n": n_eval})


def _accepts(option: str) -> bool:
    """Whether ``fit_hierarchical`` has keyword ``option`` (a variant may not exist yet)."""
    from bayesslope import fit_hierarchical

    return option in inspect.signature(fit_hierarchical).parameters


def fit_bayesslope(df: pd.DataFrame, seed: int, *, x_better: str = "higher",
                   priors: dict | None = None, **options) -> FitDraws:
    """Fit with :func:`bayesslope.fit_hierarchical` and the fixed :data:`PRIORS`.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``task, x, y``.
    seed : int
        ``random_seed`` of the fit.
    x_better : {"higher", "lower"}
        Orientation of x (y is always "higher").
    priors : dict, optional
        Fixed priors; default :data:`PRIORS`.
    **options
        Passed to ``fit_hierarchical`` (``correlated``, ``per_task_sigma``,
        ``formulation``, sampler settings overriding :data:`SAMPLING`).

    Returns
    -------
    FitDraws
        Draws of every posterior variable, the reported slope intervals and
        ``p_negative`` (from ``fit.summary``), and sampling diagnostics.
    """
    from bayesslope import fit_hierarchical
    from bayesslope.diagnostics import sampling_diagnostics

    kwargs = {**SAMPLING, **options}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_hierarchical(
            df, x_ref=0.0, x_better=x_better, y_better="higher", priors=priors or PRIORS,
            random_seed=seed, **kwargs,
        )
    post = fit.posterior["posterior"]
    names = [v for v in ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr",
                         "sigma", "nu", "intercept", "slope") if v in post]
    draws = {v: post[v].transpose("chain", "draw", ...).values for v in names}
    intervals = {}
    for prob in COVERAGE_PROBS:
        table = fit.summary(ci_prob=prob)
        lb, ub = (c for c in table.columns if c.startswith("eti") and c.endswith(("_lb", "_ub")))
        intervals[prob] = (table[lb].to_numpy(), table[ub].to_numpy())
    diag = sampling_diagnostics(fit.posterior, names)
    diagnostics = {
        "divergences": int(diag.attrs["divergences"]),
        "r_hat_max": float(diag["r_hat_max"].max()),
        "ess_bulk_min": float(diag["ess_bulk_min"].min()),
        "ess_tail_min": float(diag["ess_tail_min"].min()),
        "warnings": sorted({type(w.message).__name__ for w in caught}),
    }
    return FitDraws(draws=draws, slope_intervals=intervals,
                    p_negative=fit.p_negative_transfer().to_numpy(), diagnostics=diagnostics)


def fit_pairs_core(df: pd.DataFrame, seed: int, *, per_pair_sigma: bool = True) -> FitDraws:
    """The transfer-matrix fast path's sampler on ``df``'s tasks as pairs.

    ``fit_transfer_matrix`` standardizes each pair's data and reuses every task's scores in
    many pairs, so it has no generative model to simulate from; its inference engine does:
    :func:`bayesslope.pairs.sampler.sample_population` (blackjax NUTS on the collapsed
    posterior) then :func:`~bayesslope.pairs.sampler.draw_pairs` (exact conditional
    draws). This adapter runs those two stages on the per-task sufficient statistics, with
    the same summaries ``fit_transfer_matrix`` computes (equal-tailed intervals,
    ``p_negative`` = fraction of draws below 0).
    """
    import jax

    from bayesslope.collapsed import task_sufficient_stats
    from bayesslope.pairs.sampler import draw_pairs, sample_population

    codes, idx = np.unique(df["task"].to_numpy(), return_inverse=True)
    stats = task_sufficient_stats(df["x"].to_numpy(float), df["y"].to_numpy(float), idx,
                                  codes.size)
    k_pop, k_pairs = jax.random.split(jax.random.key(seed))
    post = sample_population(k_pop, stats, PRIORS, per_pair_sigma=per_pair_sigma,
                             chains=SAMPLING["chains"], draws=SAMPLING["draws"],
                             tune=SAMPLING["tune"], target_accept=SAMPLING["target_accept"])
    coef = {}

    def on_chunk(start, stop, intercept, slope):
        coef.setdefault("intercept", []).append(np.asarray(intercept))
        coef.setdefault("slope", []).append(np.asarray(slope))

    draw_pairs(k_pairs, stats, post.params, codes.size, on_chunk)
    draws = {k: np.asarray(v) for k, v in post.params.items()}
    draws.update({k: np.concatenate(v, axis=-1) for k, v in coef.items()})
    flat = draws["slope"].reshape(-1, codes.size)
    intervals = {p: tuple(np.quantile(flat, [(1 - p) / 2, (1 + p) / 2], axis=0))
                 for p in COVERAGE_PROBS}
    from arviz_stats.base import array_stats

    ranked = np.stack([draws[k] for k in POPULATION], axis=-1)
    return FitDraws(
        draws=draws, slope_intervals=intervals, p_negative=(flat < 0).mean(axis=0),
        diagnostics={
            "divergences": int(post.diverging.sum()),
            "r_hat_max": float(np.max(array_stats.rhat(ranked, chain_axis=0, draw_axis=1))),
            "ess_bulk_min": float(np.min(array_stats.ess(ranked, chain_axis=0,
                                                         draw_axis=1))),
            "ess_tail_min": float(np.min(array_stats.ess(ranked, chain_axis=0, draw_axis=1,
                                                         method="tail", prob=0.05))),
        },
    )


def _gaussian_variant(name: str, description: str, *, n_tasks: int, n_points: int,
                      correlated: bool = True, per_task_sigma: bool = False,
                      x_sign: float = 1.0, **fit_options) -> Variant:
    params = list(POPULATION)
    if correlated:
        params.append("corr")
    params += ["sigma[0]"] if per_task_sigma else ["sigma"]
    params += ["intercept[0]", "slope[0]"]
    return Variant(
        name=name,
        description=f"{description} ({n_tasks} tasks x {n_points} points)",
        sample_prior=partial(sample_population, n_tasks=n_tasks, correlated=correlated,
                             per_task_sigma=per_task_sigma),
        simulate=partial(simulate_gaussian, n_points=n_points, x_sign=x_sign),
        fit=partial(fit_bayesslope, correlated=correlated, per_task_sigma=per_task_sigma,
                    x_better="higher" if x_sign > 0 else "lower", **fit_options),
        params=tuple(params),
    )


def register_all() -> None:
    """Register every variant the installed package offers.

    Each variant names its formulation explicitly when the package has the option, so a
    change of the default cannot silently change what is validated.
    """
    full = {"formulation": "full"} if _accepts("formulation") else {}
    register_variant(_gaussian_variant(
        "full", "Gaussian identity link, correlated intercept-slope, full model (NUTS on "
        "every task coefficient)", n_tasks=12, n_points=20, **full))
    register_variant(_gaussian_variant(
        "full_uncorrelated", "full model, correlated=False", n_tasks=12, n_points=20,
        correlated=False, **full))
    register_variant(_gaussian_variant(
        "full_per_task_sigma", "full model, per_task_sigma=True", n_tasks=10, n_points=15,
        per_task_sigma=True, **full))
    if not _accepts("formulation"):
        return
    # The fastest correct path: collapsed, nutpie compiled once per structure and reused
    # for every simulation of the same shape (named explicitly: the default may differ).
    fast = {"formulation": "collapsed", "sampler": "nutpie"}
    register_variant(_gaussian_variant(
        "collapsed", "Gaussian, formulation='collapsed' (task coefficients integrated out, "
        "then drawn from their exact conditional)", n_tasks=12, n_points=20, **fast))
    register_variant(_gaussian_variant(
        "collapsed_uncorrelated", "collapsed, correlated=False", n_tasks=12, n_points=20,
        correlated=False, **fast))
    register_variant(_gaussian_variant(
        "collapsed_per_task_sigma", "collapsed, per_task_sigma=True", n_tasks=10,
        n_points=15, per_task_sigma=True, **fast))
    register_variant(_gaussian_variant(
        "collapsed_lower_is_better", "collapsed, x_better='lower' (oriented covariate -x)",
        n_tasks=8, n_points=30, x_sign=-1.0, **fast))

    if importlib.util.find_spec("bayesslope.pairs") is not None:
        variant = _gaussian_variant(
            "pairs_core", "transfer-matrix fast path's engine (blackjax collapsed NUTS + "
            "exact pair draws, per-pair sigma) on pair data from the hierarchical model",
            n_tasks=20, n_points=12, per_task_sigma=True)
        register_variant(Variant(**{**variant.__dict__, "fit": fit_pairs_core}))
    if not _accepts("likelihood"):
        return
    # Later variants: full model only (the collapsed form needs a Gaussian likelihood).
    params = (*POPULATION, "corr", "intercept[0]", "slope[0]")
    register_variant(Variant(
        name="student_t", description="likelihood='student_t' (nu ~ Gamma(2, 0.1)), full "
        "model (12 tasks x 20 points)",
        sample_prior=partial(sample_student_t, n_tasks=12),
        simulate=partial(simulate_student_t, n_points=20),
        fit=partial(fit_bayesslope, likelihood="student_t", priors=PRIORS_T, **full),
        params=(*params, "sigma", "nu")))
    register_variant(Variant(
        name="binomial_probit", description="likelihood='binomial', link='probit', "
        "n_eval=200, full model (12 tasks x 20 points)",
        sample_prior=partial(sample_probit, n_tasks=12),
        simulate=partial(simulate_binomial_probit, n_points=20, n_eval=200),
        fit=partial(fit_bayesslope, likelihood="binomial", link="probit", n_eval="n",
                    priors=PRIORS_PROBIT, **full),
        params=params))


register_all()
