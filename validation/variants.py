"""The bayesslope variants under SBC: numpy prior samplers, simulators and fit adapters.

The generative model is written here again in numpy, independently of the package
(docs/model.md), with FIXED priors that are passed to ``fit_hierarchical(priors=...)``:
the package's defaults are scaled to the data, which would make the prior depend on the
simulated data and break SBC.

Adding a variant is a few lines: a prior sampler, a simulator and a fit adapter, then
``register_variant(Variant(...))`` (both from :mod:`validation.common`, the plugin interface;
a plugin never imports the harness). A variant whose package option does not exist yet
(checked with :func:`_accepts`) is not registered.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
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
    half_normal,
    register_variant,
    sample_population,
)

__all__ = ["PRIORS", "sample_population", "simulate_gaussian", "fit_bayesslope",
           "simulate_student_t", "simulate_binomial_probit", "simulate_averaged_probit",
           "sample_bounded", "simulate_counts",
           "sample_pooled_sigma", "sample_errors_in_x", "simulate_errors_in_x",
           "sample_conditions", "simulate_conditions", "sample_covariates",
           "simulate_covariates", "PRIORS_COVARIATES"]

# PRIORS (fixed, data units), POPULATION, SAMPLING: validation.common.
PRIORS_T = {**PRIORS, "nu": {"dist": "Gamma", "alpha": 2.0, "beta": 0.1}}
PRIORS_PROBIT = {k: v for k, v in PRIORS.items() if k != "sigma"}
# Variant priors (fixed, like PRIORS; names as in bayesslope.priors.VARIANT_PRIOR_NAMES).
# Count likelihoods: PRIORS_PROBIT on the link scale (no sigma; also for the logit link).
PRIORS_LAPSE = {**PRIORS_PROBIT, "lapse": {"dist": "Beta", "alpha": 1.0, "beta": 10.0}}
# The package's default overdispersion prior (variant_default_priors): zero-avoiding.
PRIORS_BETA_BINOMIAL = {**PRIORS_PROBIT,
                        "overdispersion": {"dist": "Gamma", "alpha": 2.0, "beta": 10.0}}
# per_task_sigma="pooled" has no `sigma` prior (passing one is an error): PRIORS less sigma.
PRIORS_POOLED_SIGMA = {**PRIORS_PROBIT,
                       "sigma_log_mu": {"dist": "Normal", "mu": -1.5, "sigma": 0.75},
                       "sigma_log_sd": {"dist": "HalfNormal", "sigma": 0.5}}
# Errors in x: the latent true x keep a spread of order 1 (Gamma(5, rate 5): mean 1,
# sd 0.45), well above the measurement sd X_SE, as the model's centered latents assume.
X_SE = 0.3
PRIORS_X_SE = {**PRIORS, "x_mu": {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
               "x_sigma": {"dist": "Gamma", "alpha": 5.0, "beta": 5.0}}
PRIORS_CONDITION = {**PRIORS,
                    "condition_intercept": {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
                    "condition_slope": {"dist": "Normal", "mu": 0.0, "sigma": 0.5}}
P_EPS = 1e-9  # success probabilities are clipped to [P_EPS, 1 - P_EPS] (docs/model.md)


def simulate_gaussian(
    truth: dict, rng: np.random.Generator, n_points: int, *, x_sign: float = 1.0,
    shared_x: bool = False,
) -> pd.DataFrame:
    """Simulate ``y = intercept + slope * x_sign * x + sigma * eps`` with ``x ~ Normal(0, 1)``.

    ``x_sign = -1`` simulates a metric where lower x is better (fit with
    ``x_better="lower"``): the oriented covariate is then ``-x``. ``shared_x``: every task
    uses the same x values (the same design, as standardized transfer-matrix pairs of
    equal size have), so the grouped likelihood pools all tasks into one group.
    """
    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    n_tasks = a.size
    task = np.repeat(np.arange(n_tasks), n_points)
    x = np.tile(rng.normal(size=n_points), n_tasks) if shared_x else rng.normal(size=task.size)
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


def simulate_averaged_probit(truth: dict, rng: np.random.Generator, n_points: int,
                             n_subtasks: int = 5, sizes: tuple[int, int] = (20, 200)
                             ) -> pd.DataFrame:
    """Accuracies averaged over subtasks of different sizes, as MMLU reports its score.

    Each task has ``n_subtasks`` subtasks with sizes ``n_j`` drawn log-uniformly in
    ``sizes`` (fixed for the task, as a benchmark's subjects are). At each ``x ~ Normal(0,
    1)``, ``k_j ~ Binomial(n_j, p)`` with ``p = Phi(intercept + slope * x)`` and the score is
    the plain mean ``y = mean_j(k_j / n_j)``, so ``y * n`` is not a whole number. Column
    ``n`` is the size whose binomial variance the average has,
    ``n = round(J^2 / sum_j(1 / n_j))`` (docs/model.md, "Averaged accuracies"), the value
    a user passes as ``n_eval``.
    """
    from scipy.special import ndtr

    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    task = np.repeat(np.arange(a.size), n_points)
    lo, hi = np.log(sizes[0]), np.log(sizes[1])
    n_sub = np.round(np.exp(rng.uniform(lo, hi, size=(a.size, n_subtasks)))).astype(np.int64)
    n_eff = np.round(n_subtasks**2 / np.sum(1.0 / n_sub, axis=1)).astype(np.int64)
    x = rng.normal(size=task.size)
    p = ndtr(a[task] + b[task] * x)
    k = rng.binomial(n_sub[task], p[:, None])
    y = np.mean(k / n_sub[task], axis=1)
    return pd.DataFrame({"task": _task_names(a.size)[task], "x": x, "y": y, "n": n_eff[task]})


def _task_names(n_tasks: int) -> np.ndarray:
    return np.array([f"t{k:03d}" for k in range(n_tasks)])


def sample_bounded(rng: np.random.Generator, n_tasks: int, *, lapse: dict | None = None,
                   overdispersion: dict | None = None) -> dict:
    """Link-scale coefficients (:func:`sample_probit`) and, per task, optional variant terms.

    ``lapse`` is a ``Beta`` prior spec (``lambda_t``), ``overdispersion`` a ``Gamma`` prior
    spec (``d_t``, rate parameterization as in PyMC); each draws one value per task.
    """
    truth = sample_probit(rng, n_tasks)
    if lapse is not None:
        truth["lapse"] = rng.beta(lapse["alpha"], lapse["beta"], size=n_tasks)
    if overdispersion is not None:
        truth["overdispersion"] = rng.gamma(overdispersion["alpha"],
                                            1.0 / overdispersion["beta"], size=n_tasks)
    return truth


def simulate_counts(truth: dict, rng: np.random.Generator, n_points: int, n_eval: int, *,
                    link: str = "probit", chance: tuple[float, ...] | None = None
                    ) -> pd.DataFrame:
    """Counts of the bounded-link variants (docs/model.md, "Variants").

    ``p = c + (1 - c - lapse_t) F(intercept_t + slope_t x)`` with ``x ~ Normal(0, 1)``, ``F``
    the normal CDF or the logistic, ``c`` the chance of the task (``chance[t % len(chance)]``,
    0 without), ``lapse_t`` from the truth (0 without); ``p`` clipped to
    ``[P_EPS, 1 - P_EPS]``. ``k ~ Binomial(n_eval, p)``, or with ``overdispersion`` ``d_t`` in
    the truth ``k ~ BetaBinomial(n_eval, p phi_t, (1 - p) phi_t)``, ``phi_t = 1 / d_t^2``
    (drawn as ``q ~ Beta``, ``k ~ Binomial(n_eval, q)``). Columns ``task, x, y = k / n_eval,
    n`` and ``chance`` when given.
    """
    from scipy.special import expit, ndtr

    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    n_tasks = a.size
    task = np.repeat(np.arange(n_tasks), n_points)
    x = rng.normal(size=task.size)
    f = {"probit": ndtr, "logit": expit}[link](a[task] + b[task] * x)
    c = (np.zeros(n_tasks) if chance is None
         else np.array([chance[t % len(chance)] for t in range(n_tasks)], dtype=float))
    lapse = np.asarray(truth.get("lapse", np.zeros(n_tasks)), dtype=float)
    p = np.clip(c[task] + (1.0 - c[task] - lapse[task]) * f, P_EPS, 1.0 - P_EPS)
    if "overdispersion" in truth:
        phi = 1.0 / np.square(np.asarray(truth["overdispersion"], dtype=float))[task]
        p = rng.beta(p * phi, (1.0 - p) * phi)
    k = rng.binomial(n_eval, p)
    out = pd.DataFrame({"task": _task_names(n_tasks)[task], "x": x, "y": k / n_eval,
                        "n": n_eval})
    if chance is not None:
        out["chance"] = c[task]
    return out


def sample_pooled_sigma(rng: np.random.Generator, n_tasks: int) -> dict:
    """Gaussian-model coefficients with ``log sigma_t ~ Normal(sigma_log_mu, sigma_log_sd)``.

    ``sigma_log_mu``, ``sigma_log_sd`` from :data:`PRIORS_POOLED_SIGMA`; ``sigma`` per task.
    """
    truth = sample_population(rng, n_tasks)
    del truth["sigma"]
    p = PRIORS_POOLED_SIGMA
    log_mu = rng.normal(p["sigma_log_mu"]["mu"], p["sigma_log_mu"]["sigma"])
    log_sd = half_normal(rng, p["sigma_log_sd"]["sigma"])
    truth.update(sigma_log_mu=log_mu, sigma_log_sd=log_sd,
                 sigma=np.exp(rng.normal(log_mu, log_sd, size=n_tasks)))
    return truth


def sample_errors_in_x(rng: np.random.Generator, n_tasks: int, n_points: int) -> dict:
    """Gaussian-model parameters and ``n_points`` checkpoints measured with noise.

    ``x_true_j ~ Normal(x_mu, x_sigma)`` (priors :data:`PRIORS_X_SE`) and its single
    measurement ``x_measured_j ~ Normal(x_true_j, X_SE)``; each checkpoint is scored on
    every task. Checkpoints are sorted by ``x_measured`` (a relabelling of exchangeable
    checkpoints), the order of the package's latent ``x_true`` (dims ``x_point``: the
    measured ``(x, x_se)`` pairs sorted), so ``x_true[j]`` is comparable with the posterior.
    The measurement is data, drawn here only so that the truth can be put in that order.
    """
    truth = sample_population(rng, n_tasks)
    p = PRIORS_X_SE
    x_mu = rng.normal(p["x_mu"]["mu"], p["x_mu"]["sigma"])
    x_sigma = rng.gamma(p["x_sigma"]["alpha"], 1.0 / p["x_sigma"]["beta"])
    x_true = rng.normal(x_mu, x_sigma, size=n_points)
    x_meas = x_true + X_SE * rng.normal(size=n_points)
    order = np.argsort(x_meas)
    truth.update(x_mu=x_mu, x_sigma=x_sigma, x_true=x_true[order], x_measured=x_meas[order])
    return truth


def simulate_errors_in_x(truth: dict, rng: np.random.Generator) -> pd.DataFrame:
    """``y_tj = intercept_t + slope_t x_true_j + sigma eps``; the frame holds ``x_measured_j``.

    One row per (task, checkpoint): the same measured x on every task, as in a long table
    of checkpoints (the package gives rows with the same ``(x, x_se)`` one latent).
    """
    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    x_true, x_meas = np.asarray(truth["x_true"]), np.asarray(truth["x_measured"])
    task = np.repeat(np.arange(a.size), x_true.size)
    point = np.tile(np.arange(x_true.size), a.size)
    y = a[task] + b[task] * x_true[point] + truth["sigma"] * rng.normal(size=task.size)
    return pd.DataFrame({"task": _task_names(a.size)[task], "x": x_meas[point], "y": y})


def sample_conditions(rng: np.random.Generator, n_tasks: int) -> dict:
    """Gaussian-model parameters plus the shifts of the second condition.

    ``condition_intercept[0] = gamma_2``, ``condition_slope[0] = delta_2`` (priors
    :data:`PRIORS_CONDITION`; the first condition is the reference, gamma_1 = delta_1 = 0),
    and the deterministic ``intercept_mu_condition``, ``slope_mu_condition``.
    """
    truth = sample_population(rng, n_tasks)
    p = PRIORS_CONDITION
    g = np.array([rng.normal(p["condition_intercept"]["mu"],
                             p["condition_intercept"]["sigma"])])
    d = np.array([rng.normal(p["condition_slope"]["mu"], p["condition_slope"]["sigma"])])
    truth.update(
        condition_intercept=g, condition_slope=d,
        intercept_mu_condition=truth["intercept_mu"] + np.concatenate([[0.0], g]),
        slope_mu_condition=truth["slope_mu"] + np.concatenate([[0.0], d]),
    )
    return truth


def simulate_conditions(truth: dict, rng: np.random.Generator, n_points: int
                        ) -> pd.DataFrame:
    """``y = (intercept_t + gamma_c) + (slope_t + delta_c) x + sigma eps``, ``x ~ Normal(0, 1)``.

    Each task has ``n_points`` rows, alternately in condition ``c0`` (the reference) and
    ``c1``.
    """
    a, b = np.asarray(truth["intercept"]), np.asarray(truth["slope"])
    gamma = np.concatenate([[0.0], truth["condition_intercept"]])
    delta = np.concatenate([[0.0], truth["condition_slope"]])
    task = np.repeat(np.arange(a.size), n_points)
    cond = np.tile(np.arange(n_points) % 2, a.size)
    x = rng.normal(size=task.size)
    y = (a[task] + gamma[cond] + (b[task] + delta[cond]) * x
         + truth["sigma"] * rng.normal(size=task.size))
    return pd.DataFrame({"task": _task_names(a.size)[task], "x": x, "y": y,
                         "condition": np.array(["c0", "c1"])[cond]})


def _accepts(option: str) -> bool:
    """Whether ``fit_hierarchical`` has keyword ``option`` (a variant may not exist yet)."""
    from bayesslope import fit_hierarchical

    return option in inspect.signature(fit_hierarchical).parameters


def fit_bayesslope(df: pd.DataFrame, seed: int, *, x_better: str = "higher",
                   priors: dict | None = None, derived=None, **options) -> FitDraws:
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
    derived : callable, optional
        ``derived(fit) -> dict`` of further draws (chain, draw, ...) to rank, e.g. a
        function of the parameters such as the group-level R^2.
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
    from bayesslope.model import VARIANT_VARS

    kwargs = {**SAMPLING, **options}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_hierarchical(
            df, x_ref=0.0, x_better=x_better, y_better="higher", priors=priors or PRIORS,
            random_seed=seed, **kwargs,
        )
    post = fit.posterior["posterior"]
    # The core variables and every variant variable the model has (nu, lapse, sigma_log_*,
    # x_true, condition_*, ...): the same list as before for the core model.
    names = [v for v in ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr",
                         "sigma", "intercept", "slope", *VARIANT_VARS) if v in post]
    draws = {v: post[v].transpose("chain", "draw", ...).values for v in names}
    if derived is not None:
        draws.update(derived(fit))
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
    ranked = np.stack([draws[k] for k in POPULATION], axis=-1)
    return FitDraws(draws=draws, slope_intervals=intervals, p_negative=(flat < 0).mean(axis=0),
                    diagnostics=draw_diagnostics(ranked, int(post.diverging.sum())))


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
        variant = _gaussian_variant(
            "pairs_shared_sigma", "transfer-matrix engine with per_pair_sigma=False: tasks share "
            "one x vector, so the grouped marginal likelihood pools them into one group",
            n_tasks=20, n_points=12)
        register_variant(Variant(**{
            **variant.__dict__,
            "simulate": partial(simulate_gaussian, n_points=12, shared_x=True),
            "fit": partial(fit_pairs_core, per_pair_sigma=False)}))
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

    if _accepts("counts"):
        register_variant(Variant(
            name="binomial_probit_averaged", description="likelihood='binomial', "
            "link='probit', counts='average': each score the plain mean of 5 subtasks of "
            "sizes log-uniform in [20, 200] (n_eval = J^2 / sum 1/n_j), full model "
            "(12 tasks x 20 points)",
            sample_prior=partial(sample_probit, n_tasks=12),
            simulate=partial(simulate_averaged_probit, n_points=20),
            fit=partial(fit_bayesslope, likelihood="binomial", link="probit", n_eval="n",
                        counts="average", priors=PRIORS_PROBIT, **full),
            params=params))

    # Variants of docs/model.md, "Variants": each one option of fit_hierarchical, full model.
    shape = "full model (12 tasks x 20 points)"
    register_variant(Variant(
        name="binomial_probit_chance_lapse", description="likelihood='binomial', "
        "link='probit', n_eval=200, chance 0.25 (even tasks) / 0.5 (odd tasks), lapse=True "
        f"(lapse_t ~ Beta(1, 10)), {shape}",
        sample_prior=partial(sample_bounded, n_tasks=12, lapse=PRIORS_LAPSE["lapse"]),
        simulate=partial(simulate_counts, n_points=20, n_eval=200, link="probit",
                         chance=(0.25, 0.5)),
        fit=partial(fit_bayesslope, likelihood="binomial", link="probit", n_eval="n",
                    chance="chance", lapse=True, priors=PRIORS_LAPSE, **full),
        params=(*params, "lapse[0]")))
    register_variant(Variant(
        name="binomial_logit", description=f"likelihood='binomial', link='logit', n_eval=200, "
        f"{shape}",
        sample_prior=partial(sample_bounded, n_tasks=12),
        simulate=partial(simulate_counts, n_points=20, n_eval=200, link="logit"),
        fit=partial(fit_bayesslope, likelihood="binomial", link="logit", n_eval="n",
                    priors=PRIORS_PROBIT, **full),
        params=params))
    register_variant(Variant(
        name="beta_binomial_probit", description="likelihood='beta_binomial', link='probit', "
        f"n_eval=200, overdispersion_t ~ Gamma(2, rate 10), {shape}",
        sample_prior=partial(sample_bounded, n_tasks=12,
                             overdispersion=PRIORS_BETA_BINOMIAL["overdispersion"]),
        simulate=partial(simulate_counts, n_points=20, n_eval=200, link="probit"),
        fit=partial(fit_bayesslope, likelihood="beta_binomial", link="probit", n_eval="n",
                    priors=PRIORS_BETA_BINOMIAL, **full),
        params=(*params, "overdispersion[0]")))
    register_variant(Variant(
        name="pooled_sigma", description="per_task_sigma='pooled' (log sigma_t ~ "
        "Normal(sigma_log_mu, sigma_log_sd), sigma_log_mu ~ Normal(-1.5, 0.75), sigma_log_sd "
        f"~ HalfNormal(0.5)), Gaussian identity, {shape}",
        sample_prior=partial(sample_pooled_sigma, n_tasks=12),
        simulate=partial(simulate_gaussian, n_points=20),
        fit=partial(fit_bayesslope, per_task_sigma="pooled", priors=PRIORS_POOLED_SIGMA,
                    **full),
        params=(*params, "sigma_log_mu", "sigma_log_sd", "sigma[0]")))
    register_variant(Variant(
        name="errors_in_x", description=f"x_se={X_SE} (errors in x: 20 checkpoints, each "
        "measured once and scored on every task; x_true ~ Normal(x_mu, x_sigma), x_mu ~ "
        "Normal(0, 0.5), x_sigma ~ Gamma(5, rate 5)), Gaussian identity, full model "
        "(12 tasks x 20 checkpoints)",
        sample_prior=partial(sample_errors_in_x, n_tasks=12, n_points=20),
        simulate=simulate_errors_in_x,
        fit=partial(fit_bayesslope, x_se=X_SE, priors=PRIORS_X_SE, **full),
        params=(*params, "sigma", "x_mu", "x_sigma", "x_true[0]")))
    register_variant(Variant(
        name="conditions", description="condition= with 2 levels (every task in both, 10 "
        "points each; condition_intercept, condition_slope ~ Normal(0, 0.5)), Gaussian "
        f"identity, {shape}",
        sample_prior=partial(sample_conditions, n_tasks=12),
        simulate=partial(simulate_conditions, n_points=20),
        fit=partial(fit_bayesslope, condition="condition", priors=PRIORS_CONDITION, **full),
        params=(*params, "sigma", "condition_intercept[0]", "condition_slope[0]",
                "slope_mu_condition[1]")))
    if _accepts("shape"):
        register_variant(Variant(
            name="hockey_stick", description="shape='hockey_stick' (flat until x0_t, then "
            "slope_t; intercept_t the mean at x_ref = 0; x0_t ~ Normal(x0_mu, x0_sigma), "
            "x0_mu ~ Normal(0, 0.5), x0_sigma ~ "
            "HalfNormal(0.3); smooth kink of width 0.05 robust sd of x), Gaussian identity, "
            "full model (8 tasks x 20 points)",
            sample_prior=partial(sample_hockey_stick, n_tasks=8),
            simulate=partial(simulate_hockey_stick, n_points=20),
            fit=partial(fit_bayesslope, shape="hockey_stick", priors=PRIORS_HOCKEY, **full),
            params=(*params, "sigma", "x0_mu", "x0_sigma", "x0[0]")))


# -- task_covariates= -----------------------------------------------------------------
PRIORS_COVARIATES = {**PRIORS,
                     "intercept_beta": {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
                     "slope_beta": {"dist": "Normal", "mu": 0.0, "sigma": 0.5}}


def sample_covariates(rng: np.random.Generator, n_tasks: int) -> dict:
    """Gaussian-model parameters whose population means depend on two task covariates.

    ``z_t ~ Normal(0, 1)`` (numeric) and ``kind_t`` = "b" for odd tasks, "a" for even ones
    (the reference). The design the package builds is ``Z = [(z - mean z) / sd z, [kind =
    b]]`` (sd with ddof 0, over tasks), written here again; ``intercept_beta``,
    ``slope_beta ~ Normal(0, 0.5)`` per column (:data:`PRIORS_COVARIATES`) and each task's
    coefficients are ``mu + Z_t beta`` plus the population's correlated deviation. Also
    ``slope_r2``/``intercept_r2``: ``1 - var_t(theta_t - mu_t) / var_t(theta_t)``, the
    group-level R^2 of the true coefficients (a function of parameters and covariates).
    """
    truth = sample_population(rng, n_tasks)
    z = rng.normal(size=n_tasks)
    kind = np.where(np.arange(n_tasks) % 2 == 1, "b", "a")
    design = np.column_stack([(z - z.mean()) / z.std(), (kind == "b").astype(float)])
    p = PRIORS_COVARIATES
    for name in ("intercept", "slope"):
        beta = rng.normal(p[f"{name}_beta"]["mu"], p[f"{name}_beta"]["sigma"], size=2)
        mu_t = truth[f"{name}_mu"] + design @ beta
        theta = truth[name] + design @ beta
        truth[f"{name}_beta"] = beta
        truth[name] = theta
        truth[f"{name}_r2"] = 1.0 - np.var(theta - mu_t) / np.var(theta)
    truth.update(z=z, kind=kind)
    return truth


def simulate_covariates(truth: dict, rng: np.random.Generator, n_points: int) -> pd.DataFrame:
    """:func:`simulate_gaussian` plus the task covariate columns ``z`` and ``kind``."""
    df = simulate_gaussian(truth, rng, n_points)
    idx = df["task"].str[1:].astype(int).to_numpy()
    return df.assign(z=np.asarray(truth["z"])[idx], kind=np.asarray(truth["kind"])[idx])


def group_r2_draws(fit) -> dict:
    """The package's per-draw group-level R^2 of slopes and intercepts (chain, draw)."""
    from bayesslope.summaries import variance_explained_draws

    return {f"{name}_r2": variance_explained_draws(fit.posterior, fit.covariates, name)
            for name in ("slope", "intercept")}


def _register_covariates() -> None:
    if not _accepts("task_covariates"):
        return
    register_variant(Variant(
        name="covariates", description="task_covariates=['z', 'kind'] (z ~ Normal(0, 1) "
        "standardized, kind a/b dummy; intercept_beta, slope_beta ~ Normal(0, 0.5)), "
        "Gaussian identity, collapsed (nutpie), 16 tasks x 10 points; slope_r2 / "
        "intercept_r2 the group-level R^2",
        sample_prior=partial(sample_covariates, n_tasks=16),
        simulate=partial(simulate_covariates, n_points=10),
        fit=partial(fit_bayesslope, task_covariates=["z", "kind"], priors=PRIORS_COVARIATES,
                    formulation="collapsed", sampler="nutpie", derived=group_r2_draws),
        params=(*POPULATION, "corr", "sigma", "slope_beta[0]", "slope_beta[1]",
                "intercept_beta[0]", "intercept_beta[1]", "slope_r2", "intercept_r2",
                "intercept[0]", "slope[0]")))


# -- shape="hockey_stick" --------------------------------------------------------------
PRIORS_HOCKEY = {**PRIORS, "x0_mu": {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
                 "x0_sigma": {"dist": "HalfNormal", "sigma": 0.3}}


def sample_hockey_stick(rng: np.random.Generator, n_tasks: int) -> dict:
    """Gaussian-model parameters plus thresholds ``x0_t ~ Normal(x0_mu, x0_sigma)``."""
    truth = sample_population(rng, n_tasks)
    p = PRIORS_HOCKEY
    x0_mu = rng.normal(p["x0_mu"]["mu"], p["x0_mu"]["sigma"])
    x0_sigma = half_normal(rng, p["x0_sigma"]["sigma"])
    truth.update(x0_mu=x0_mu, x0_sigma=x0_sigma,
                 x0=rng.normal(x0_mu, x0_sigma, size=n_tasks))
    return truth


def simulate_hockey_stick(truth: dict, rng: np.random.Generator, n_points: int
                          ) -> pd.DataFrame:
    """``y = intercept_t + slope_t (h(x - x0_t) - h(-x0_t)) + sigma eps``, ``x ~ Normal(0, 1)``
    (higher is better; the fit's ``x_ref = 0``, where the intercept is the mean), ``h(u) = w
    log(1 + exp(u / w))`` with ``w = 0.05 min(sd, 1.4826 MAD)`` of all x (docs/model.md,
    "Shapes"; written here again, independently of the package).
    """
    a, b, x0 = (np.asarray(truth[k]) for k in ("intercept", "slope", "x0"))
    task = np.repeat(np.arange(a.size), n_points)
    x = rng.normal(size=task.size)
    mad = 1.4826 * np.median(np.abs(x - np.median(x)))
    w = 0.05 * min(np.std(x), mad)
    hinge = w * (np.logaddexp(0.0, (x - x0[task]) / w) - np.logaddexp(0.0, -x0[task] / w))
    y = a[task] + b[task] * hinge + truth["sigma"] * rng.normal(size=task.size)
    return pd.DataFrame({"task": _task_names(a.size)[task], "x": x, "y": y})


register_all()
_register_covariates()
