"""Options + validated data -> one frozen :class:`~bayesslope.model.ModelConfig`.

Every modelling decision of :func:`bayesslope.fit_hierarchical` is taken here, once:
the formulation (collapsed or full), the resolved priors, and per task whether the
coefficients (and, with pooled noise, log sigma) are sampled centered or non-centered.
The result is saved in the fit's spec; the model builders (:mod:`bayesslope.model`,
:mod:`bayesslope.collapsed_model`) only read it. The variant options (link, likelihood,
chance, lapse, counts, conditions, groups) are owned by
:class:`~bayesslope.variant_data.VariantData`, which :func:`resolve_model` consumes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .data import TransferDesign
from .exceptions import DataValidationError
from .model import PARAMETERIZATIONS, ModelConfig
from .options import check_bool
from .priors import (
    covariate_default_priors,
    default_priors,
    link_default_priors,
    resolve_priors,
    shape_default_priors,
    variant_default_priors,
)
from .sampling import SamplerConfig
from .variant_data import VariantData

__all__ = [
    "resolve_model", "resolve_sampler", "check_model_options", "collapsible",
    "choose_centered", "choose_centered_variant", "choose_centered_counts",
    "task_count_fits", "centered_basis", "whitened_counts",
    "choose_centered_log_sigma", "link_scale_scores", "model_priors", "FORMULATIONS",
    "PARAMETERIZATIONS", "CENTER_MARGIN",
]

FORMULATIONS = ("auto", "full", "collapsed")
DEFAULT_TARGET_ACCEPT = 0.9
LAPSE_TARGET_ACCEPT = 0.98
# A task is centered when its standard errors are below this fraction of the estimated
# population scale. Near se = tau neither form is good, and the costs are unequal: a
# wrong "centered" gives divergences and biased scales, a wrong "non-centered" only
# longer trajectories. The moment estimate of tau from ~10 tasks is itself noisy (SBC of
# per-task sigma: tau_intercept 0.028 estimated as 0.05, 31 divergences at margin 1).
CENTER_MARGIN = 0.5
COUNT_LIKELIHOODS = ("binomial", "beta_binomial")


def resolve_model(
    design: TransferDesign,
    variants: VariantData,
    *,
    priors=None,
    correlated=True,
    per_task_sigma=False,
    parameterization: str = "auto",
    formulation: str = "auto",
    shape: str = "linear",
    covariates=None,
) -> ModelConfig:
    """Check the model options and take every modelling decision for this data.

    Parameters
    ----------
    design : TransferDesign
    variants : VariantData
        The validated variant options and columns (link, likelihood, lapse, ...).
    priors, correlated, per_task_sigma, parameterization, formulation, shape
        As in :func:`bayesslope.fit_hierarchical`.
    covariates : bayesslope.covariates.TaskCovariates, optional
        Task covariates: adds the default priors of their effects, and the
        parameterization compares each task with the residual spread of the population
        around its covariate-predicted mean.

    Returns
    -------
    ModelConfig
        Frozen; ``formulation`` is "collapsed" or "full", ``centered_tasks`` has one flag
        per task and ``centered_log_sigma`` one per task when the noise is pooled.

    Raises
    ------
    DataValidationError
        For an option outside its allowed values, or ``formulation="collapsed"`` for a
        model that cannot be collapsed.
    """
    check_model_options(correlated=correlated, per_task_sigma=per_task_sigma,
                        parameterization=parameterization, formulation=formulation,
                        shape=shape)
    correlated = check_bool("correlated", correlated)
    per_task_sigma = check_bool("per_task_sigma", per_task_sigma, allow=("pooled",))
    can_collapse = collapsible(variants, per_task_sigma=per_task_sigma, shape=shape)
    if formulation == "auto":
        formulation = "collapsed" if can_collapse else "full"
    elif formulation == "collapsed" and not can_collapse:
        raise DataValidationError(
            "formulation='collapsed' is valid only for the Gaussian identity model without "
            "variants (link, likelihood, n_eval, chance, lapse, x_se, condition, group, "
            "pooled sigma, a curved shape); use formulation='full' or 'auto'"
        )
    resolved = model_priors(priors, design, variants, per_task_sigma=per_task_sigma,
                            shape=shape, covariates=covariates)
    fits = basis = None
    if whitened_counts(variants, shape):
        fits = task_count_fits(design, variants)
        basis = centered_basis(design, variants, fits)
    if parameterization == "auto":
        centered = (choose_centered_counts(design, variants, covariates, fits, whitened=True)
                    if fits is not None else
                    choose_centered_variant(design, variants,
                                            per_task_noise=bool(per_task_sigma),
                                            covariates=covariates))
    else:
        centered = np.full(design.n_tasks, parameterization == "centered")
    return ModelConfig(
        priors=resolved,
        formulation=formulation,
        correlated=correlated,
        per_task_sigma=per_task_sigma,
        parameterization=parameterization,
        centered_tasks=tuple(bool(c) for c in centered),
        centered_basis=basis or (),
        centered_log_sigma=(tuple(bool(c) for c in choose_centered_log_sigma(design))
                            if per_task_sigma == "pooled" else ()),
        shape=shape,
    )


def resolve_sampler(*, draws, tune, chains, target_accept, random_seed, sampler, progressbar,
                    cores, latent_x: bool, formulation: str | None = None,
                    lapse_rates: bool = False) -> SamplerConfig:
    """The NUTS settings of a fit (validated by :class:`~bayesslope.sampling.SamplerConfig`).

    ``sampler=None``: nutpie; PyMC's NUTS when ``tune=0`` (nuts-rs needs tuning steps) or
    with errors in x (``latent_x``: nutpie cannot start them unjittered).
    ``target_accept=None``: 0.9, or 0.98 for a model with lapse rates (``lapse_rates``).
    ``progressbar=None``: on in an interactive session (a terminal or IPython/Jupyter).
    ``latent_x`` (errors in x) turns off the jitter of the starting points.
    """
    if sampler is None:
        # nutpie for both formulations. Its compiled code is cached on disk per model
        # structure (bayesslope.numba_model), and it is faster at every stage
        # (benchmarks/RESULTS.md, "fresh" and "fresh_full"): a first full fit of a structure
        # 25-28 s against PyMC's 38 s, a refit 1-2 s against 19-20 s, a warm process 5-10 s.
        # Every variant it samples by default passes SBC on it (validation/NOTES.md,
        # 2026-12-02); the hockey stick's SBC does not pass on PyMC's NUTS (sigma rejected).
        # Errors in x: PyMC's NUTS. Their chains start unjittered (below), and nutpie
        # refuses a starting point where a gradient entry is exactly 0 ("bad initial
        # gradient"), which the support points of symmetric priors give.
        sampler = "nutpie" if tune != 0 and not latent_x else "pymc"
    elif sampler == "nutpie" and latent_x:
        raise DataValidationError(
            "sampler='nutpie' cannot fit errors in x (x_se=): the chains must start at the "
            "measurements without jitter, and nutpie cannot start where a gradient entry is "
            "exactly 0. Use sampler='pymc' (the default for fits with x_se)")
    if target_accept is None:
        # validation/NOTES.md: the SBC of binomial_probit_chance_lapse rejects
        # intercept_sigma at 0.9 (74 of 200 fits divergent) and passes at 0.98.
        target_accept = LAPSE_TARGET_ACCEPT if lapse_rates else DEFAULT_TARGET_ACCEPT
    if progressbar is None:
        from .sampling import interactive_session

        progressbar = interactive_session()
    return SamplerConfig(
        draws=draws, tune=tune, chains=chains, target_accept=target_accept,
        random_seed=random_seed, sampler=sampler, progressbar=progressbar, cores=cores,
        # Errors in x: the latent true x start at the measurements; jitter (on the scale of
        # x itself) can throw a chain into the reflected mode, where it stays (SBC: R-hat
        # 1.87 in a fit whose measurement error was comparable to the spread of x).
        jitter=not latent_x,
    )


def check_model_options(*, correlated, per_task_sigma, parameterization, formulation,
                        shape) -> None:
    """Refuse model options outside their allowed values (before any data is read)."""
    from .likelihoods import SHAPES

    check_bool("correlated", correlated)
    check_bool("per_task_sigma", per_task_sigma, allow=("pooled",))
    for name, value, allowed in (("formulation", formulation, FORMULATIONS),
                                 ("parameterization", parameterization, PARAMETERIZATIONS)):
        if value not in allowed:
            raise DataValidationError(f"{name} should be one of {list(allowed)}, got {value!r}")
    if shape not in SHAPES:
        raise DataValidationError(
            f"{shape!r} is not a supported shape. Must be one of: {list(SHAPES)}"
        )


def collapsible(variants: VariantData, *, per_task_sigma=False, shape: str = "linear") -> bool:
    """Whether the task coefficients can be integrated out exactly.

    The one definition of "the core model": Gaussian likelihood, identity link, straight
    line, no variant columns, and sigma shared or per task without a population prior.
    """
    return variants.is_default and per_task_sigma != "pooled" and shape == "linear"


def _task_ols(design: TransferDesign) -> dict:
    """Per-task least squares of y on the oriented xc.

    The data-only facts the parameterization choices use: n, slope, intercept at
    xc = 0, residual variance s2 on dof = max(n - 2, 1) degrees of freedom, sxx, mean
    xc, and whether the task identifies a slope (>= 3 points and non-constant x).
    """
    T = design.n_tasks
    n = np.bincount(design.task_idx, minlength=T).astype(float)
    xc, y, idx = design.xc, design.y, design.task_idx
    xbar = np.bincount(idx, xc, T) / n
    ybar = np.bincount(idx, y, T) / n
    dx, dy = xc - xbar[idx], y - ybar[idx]
    sxx = np.bincount(idx, dx * dx, T)
    sxy = np.bincount(idx, dx * dy, T)
    informative = (n >= 3) & (sxx > 1e-12 * max(1.0, sxx.max()))
    b = np.where(informative, sxy / np.where(informative, sxx, 1.0), 0.0)
    resid = dy - b[idx] * dx
    dof = np.maximum(n - 2, 1)
    return {"n": n, "slope": b, "intercept": ybar - b * xbar, "s2": np.bincount(
        idx, resid * resid, T) / dof, "dof": dof, "sxx": sxx, "xbar": xbar,
        "informative": informative}


def choose_centered_log_sigma(design: TransferDesign) -> np.ndarray:
    """Decide per task whether log sigma_t is sampled centered (``per_task_sigma="pooled"``).

    The same rule as :func:`choose_centered`, for the population on log sigma: a task's
    residual log sd is known to about ``1 / sqrt(2 dof)``; it is centered only when that
    is smaller than a DerSimonian-Laird estimate of the between-task sd of log sigma.
    (The earlier rule, centered whenever n >= 10, put tasks in a funnel when all noise
    scales were alike: sigma_log_sd near 0.)

    Returns
    -------
    ndarray of bool, shape (n_tasks,)
    """
    ols = _task_ols(design)
    ok = (ols["n"] >= 3) & (ols["s2"] > 0)
    if ok.sum() < 2:
        return np.zeros(design.n_tasks, dtype=bool)
    log_s = 0.5 * np.log(np.where(ok, ols["s2"], 1.0))
    se = 1.0 / np.sqrt(2.0 * ols["dof"])
    tau = _between_task_sd(log_s[ok], se[ok])
    return ok & (se < CENTER_MARGIN * tau)


def choose_centered(design: TransferDesign, per_task_noise: bool = False,
                    covariates=None) -> np.ndarray:
    """Decide per task whether to sample its coefficients centered.

    A centered task is sampled directly from its population distribution; a
    non-centered one as ``mu + L z``. Centered is efficient when the task's own data pin
    its coefficients down more tightly than the population spread does; otherwise the
    posterior has a funnel in (coefficient, scale) and centered sampling diverges
    (measured: weak tasks diverge centered; informative tasks need ~3x more leapfrog
    steps non-centered). The rule compares each task's OLS standard errors with a
    method-of-moments estimate of the between-task scale; a task is centered only when
    its data are more precise than the population spread for both coefficients.

    Parameters
    ----------
    design : TransferDesign
    per_task_noise : bool, default False
        The model has one noise scale per task: standard errors then use each task's
        residual variance (averaged with the pooled one for a 3-point task, which
        has a single residual degree of freedom) instead of the pooled one. With
        noise scales that differ between tasks, the pooled variance calls a noisy task
        informative (a funnel when centered) and a precise one weak (long trajectories
        when non-centered); found by SBC of ``per_task_sigma=True``.
    covariates : bayesslope.covariates.TaskCovariates, optional
        Task covariates: the population scale is then the residual spread around the
        covariate-predicted means (a meta-regression moment estimate), which can be much
        smaller than the raw spread of the estimates.

    Returns
    -------
    ndarray of bool, shape (n_tasks,)
    """
    T = design.n_tasks
    ols = _task_ols(design)
    n, b, a, s2, dof = ols["n"], ols["slope"], ols["intercept"], ols["s2"], ols["dof"]
    sxx, xbar, informative = ols["sxx"], ols["xbar"], ols["informative"]
    if informative.sum() < 2:
        return np.zeros(T, dtype=bool)
    s2_pool = np.sum(s2[informative] * dof[informative]) / np.sum(dof[informative])
    # One residual (3 points) says little about a task's noise: blend it with the pool.
    s2_task = (np.where(dof >= 2, s2, (s2 + s2_pool) / 2.0) if per_task_noise else s2_pool)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_b = np.sqrt(s2_task / sxx)
        se_a = np.sqrt(s2_task * (1.0 / n + xbar**2 / sxx))
    # Method-of-moments between-task spread: the variance of the OLS estimates is the
    # population variance plus the mean sampling variance. Comparing se with the raw
    # spread of estimates (which contains se itself) picks centered for about half
    # the tasks when the population scale is near zero: exactly the funnel case.
    z = None if covariates is None else covariates.matrix[informative]
    tau_b = _between_task_sd(b[informative], se_b[informative], z)
    tau_a = _between_task_sd(a[informative], se_a[informative], z)
    return informative & (se_b < CENTER_MARGIN * tau_b) & (se_a < CENTER_MARGIN * tau_a)


def _between_task_sd(estimates: np.ndarray, se: np.ndarray, z: np.ndarray | None = None
                     ) -> float:
    """DerSimonian-Laird estimate of the between-task sd from estimates and their se.

    ``tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))``, ``w = 1 / se^2``,
    ``Q = sum w (estimate - weighted mean)^2``. The precision weights matter when the
    standard errors differ a lot (per-task noise): an unweighted version lets a few noisy
    tasks hide the spread that the precise ones show (measured in SBC: every task then
    non-centered, R-hat 2.3).

    With task covariates ``z`` (rows of the estimates), the method-of-moments estimate of
    the residual between-task sd of a meta-regression on ``X = [1, z]`` (Raudenbush 2009):
    ``tau^2 = max(0, (Q_E - (k - p)) / tr(P))``, ``Q_E`` the weighted residual sum of
    squares and ``tr(P) = sum w - tr((X'WX)^-1 X'W^2 X)``; for ``X = 1`` this is the
    formula above.
    """
    est = np.asarray(estimates, dtype=float)
    if z is not None:
        return _between_task_sd_regression(est, np.asarray(se, dtype=float), z)
    # A perfect fit (se = 0) has huge but finite weight; the floor is relative to the
    # spread so that the arithmetic stays finite.
    floor = 1e-6 * (np.std(est) + np.max(se) + 1e-300)
    w = 1.0 / np.maximum(np.asarray(se, dtype=float), floor) ** 2
    w = w / w.max()  # tau^2 is invariant to a common factor on w except through k - 1
    scale = 1.0 / np.maximum(np.asarray(se, dtype=float), floor).min() ** 2
    mean = np.sum(w * est) / np.sum(w)
    q = scale * np.sum(w * (est - mean) ** 2)
    denom = scale * (np.sum(w) - np.sum(w**2) / np.sum(w))
    if not denom > 0:
        return 0.0
    return float(np.sqrt(max(0.0, (q - (est.size - 1)) / denom)))


def _between_task_sd_regression(est: np.ndarray, se: np.ndarray, z: np.ndarray) -> float:
    """Residual between-task sd around a weighted regression of ``est`` on ``[1, z]``."""
    k = est.size
    x = np.hstack([np.ones((k, 1)), np.asarray(z, dtype=float).reshape(k, -1)])
    p = x.shape[1]
    if k <= p:
        return 0.0
    floor = 1e-6 * (np.std(est) + np.max(se) + 1e-300)
    w = 1.0 / np.maximum(se, floor) ** 2
    w = w / w.max()  # tau^2 scales with 1 / common factor: undone through `scale` below
    scale = 1.0 / np.maximum(se, floor).min() ** 2
    xtwx = x.T @ (w[:, None] * x)
    try:
        inv = np.linalg.pinv(xtwx)
    except np.linalg.LinAlgError:
        return 0.0
    coef = inv @ (x.T @ (w * est))
    q = scale * np.sum(w * (est - x @ coef) ** 2)
    trace = scale * (np.sum(w) - np.trace(inv @ (x.T @ ((w**2)[:, None] * x))))
    if not trace > 0:
        return 0.0
    return float(np.sqrt(max(0.0, (q - (k - p)) / trace)))


def link_scale_scores(design: TransferDesign, variants: VariantData) -> np.ndarray:
    """Scores mapped to the link scale (clipped away from the floor and ceiling).

    ``z = F^{-1}(clip((y - chance) / (1 - chance - lapse), 0.025, 0.975))`` (an estimated
    lapse counts as 0 here); the scores
    themselves for the identity link. Used for data-scaled priors and to choose the
    parameterization, never in the likelihood.
    """
    from .likelihoods import link_function

    if variants.link == "identity":
        return design.y
    c = variants.chance if variants.chance is not None else 0.0
    lap = 0.0 if isinstance(variants.lapse, bool) else float(variants.lapse)
    u = np.clip((design.y - c) / (1.0 - c - lap), 0.025, 0.975)
    return link_function(u, variants.link)


def task_count_fits(design: TransferDesign, variants: VariantData, iters: int = 60) -> dict:
    """Per-task fit of the count model alone: estimates, Fisher information, dispersion.

    For each task, ``k_i ~ Binomial(n_i, c_i + (1 - c_i - lapse) F(a + b xc_i))`` is fitted
    by Fisher scoring (vectorized over tasks; a weak ridge, sd ``2.5 s`` on ``a`` and
    ``2.5 s / sd(xc)`` on ``b`` with ``s`` the link's scale, keeps a task on the floor or
    the ceiling finite). ``k = y n`` is not rounded (averaged accuracies work as they are).
    The expected information of ``(a, b)`` is
    ``I_t = sum_i n_i F'(eta_i)^2 (1 - c_i - lapse)^2 / (p_i (1 - p_i)) [1, xc_i][1, xc_i]^T``:
    a task of 104 models x thousands of items is known to a few thousandths on the link
    scale, a task on the chance floor hardly at all (``F' ~ 0``), which the Gaussian rule
    on clipped link-scale scores cannot see. ``dispersion`` is the Pearson statistic per
    residual degree of freedom (at least 1), the factor by which extra-binomial
    variation widens a beta-binomial posterior.

    Returns
    -------
    dict
        ``estimate`` (T, 2), ``info`` (T, 2, 2) without the ridge, ``ridge`` (2,) its
        precisions, ``dispersion`` (T,), ``informative`` (T,) bool: >= 3 rows, x not
        constant and an invertible information matrix.
    """
    from scipy.special import ndtr

    from .likelihoods import inverse_link_deriv, link_function

    T, idx, xc = design.n_tasks, design.task_idx, design.xc
    n = np.asarray(variants.n_eval, dtype=float)
    k = np.clip(design.y * n, 0.0, n)
    c = np.broadcast_to(0.0 if variants.chance is None else variants.chance, xc.shape)
    lapse = 0.0 if isinstance(variants.lapse, bool) else float(variants.lapse)
    span = 1.0 - c - lapse
    link = variants.link
    s = 1.0 if link == "probit" else 1.7
    ridge = np.array([1.0 / (2.5 * s) ** 2, 1.0 / (2.5 * s / max(np.std(xc), 1e-12)) ** 2])
    count = np.bincount(idx, minlength=T).astype(float)

    def inv_link(eta):
        if link == "probit":
            return ndtr(eta)
        return 0.5 * (1.0 + np.tanh(0.5 * eta))

    def mean(a, b):
        eta = a[idx] + b[idx] * xc
        return eta, np.clip(c + span * inv_link(eta), 1e-12, 1.0 - 1e-12)

    def objective(a, b):
        _, p = mean(a, b)
        ll = np.bincount(idx, k * np.log(p) + (n - k) * np.log1p(-p), T)
        return ll - 0.5 * (ridge[0] * a**2 + ridge[1] * b**2)

    def information(a, b):
        eta, p = mean(a, b)
        dp = span * inverse_link_deriv(eta, link)
        w = n * dp**2 / (p * (1.0 - p))
        info = np.empty((T, 2, 2))
        info[:, 0, 0] = np.bincount(idx, w, T)
        info[:, 0, 1] = info[:, 1, 0] = np.bincount(idx, w * xc, T)
        info[:, 1, 1] = np.bincount(idx, w * xc * xc, T)
        return info, (k - n * p) / (p * (1.0 - p)) * dp, p

    z = link_function(np.clip((k / n - c) / span, 0.025, 0.975), link)
    a, b = np.bincount(idx, z, T) / count, np.zeros(T)
    current = objective(a, b)
    for _ in range(iters):
        info, r, _ = information(a, b)
        g = np.stack([np.bincount(idx, r, T) - ridge[0] * a,
                      np.bincount(idx, r * xc, T) - ridge[1] * b], axis=1)
        step = np.linalg.solve(info + np.diag(ridge), g[..., None])[..., 0]
        t = np.ones(T)
        for _ in range(30):  # halve the step of a task until its objective does not drop
            new = objective(a + t * step[:, 0], b + t * step[:, 1])
            worse = ~(new >= current - 1e-10)
            if not worse.any():
                break
            t = np.where(worse, 0.5 * t, t)
        t = np.where(worse, 0.0, t)
        a, b = a + t * step[:, 0], b + t * step[:, 1]
        current = np.where(worse, current, new)
        if np.max(np.abs(t[:, None] * step)) < 1e-10:
            break
    info, _, p = information(a, b)
    pearson = np.bincount(idx, (k - n * p) ** 2 / (n * p * (1.0 - p)), T)
    dispersion = np.maximum(1.0, pearson / np.maximum(count - 2.0, 1.0))
    det = info[:, 0, 0] * info[:, 1, 1] - info[:, 0, 1] ** 2
    ols = _task_ols(design)
    informative = ols["informative"] & (det > 1e-12 * info[:, 0, 0] * info[:, 1, 1])
    return {"estimate": np.stack([a, b], axis=1), "info": info, "ridge": ridge,
            "dispersion": dispersion, "informative": informative}


def whitened_counts(variants: VariantData, shape: str = "linear") -> bool:
    """Whether centered tasks get the whitening map of :func:`centered_basis`.

    For the count likelihoods with the straight line and no condition, group or latent-x
    terms: then a task's own count model is the one :func:`task_count_fits` fits, and its
    information is the task's likelihood curvature. (Any fixed affine map would leave
    the posterior unchanged; elsewhere it would only be a worse guess of the scales.)
    """
    return (variants.likelihood in COUNT_LIKELIHOODS and shape == "linear"
            and variants.condition_idx is None and variants.group_idx is None
            and variants.x_point is None)


def choose_centered_counts(design: TransferDesign, variants: VariantData, covariates=None,
                           fits: dict | None = None, whitened: bool = False) -> np.ndarray:
    """:func:`choose_centered` for the count likelihoods, from each task's information.

    Estimates and standard errors come from :func:`task_count_fits`: ``se^2 =
    diag(I_t^{-1})``, times the task's dispersion for the beta-binomial. A task is
    centered when its data are more precise than the population. With ``whitened``
    (centered tasks sampled in :func:`centered_basis`) and no covariates, the population
    covariance has the 95% Q-profile lower bounds of the between-task sds
    (:func:`_between_task_sd_lower`) and the correlation of the task estimates, and a task
    is centered when its covariance is smaller in every direction (largest eigenvalue of
    ``Sigma^-1 C_t`` below 1); otherwise (task covariates, curved shapes, conditions,
    groups, latent x) both standard errors must be below ``CENTER_MARGIN`` times the
    DerSimonian-Laird estimate, as in :func:`choose_centered`.
    A task whose data are more precise than the population spread is sampled efficiently
    centered; the margin guards against a population scale that may be near 0, which the
    lower bound does directly (12 noisy tasks with a small spread give 0: every task
    non-centered).

    A task on the chance floor (or the ceiling) has almost no information and is
    non-centered, as under the rule for other bounded links; a task near the ceiling with
    tens of thousands of items is strongly informed and centered (the link-scale rule,
    which reads a score of 0.99 as "at the edge", made such tasks non-centered: a
    posterior pinned by the data along ``mu + L z``, measured 1,023 leapfrog steps per
    draw on a 41-task suite).
    """
    fits = task_count_fits(design, variants) if fits is None else fits
    ok = fits["informative"]
    if ok.sum() < 2:
        return np.zeros(design.n_tasks, dtype=bool)
    scale = fits["dispersion"] if variants.likelihood == "beta_binomial" else 1.0
    det = fits["info"][:, 0, 0] * fits["info"][:, 1, 1] - fits["info"][:, 0, 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        se_a = np.sqrt(np.where(ok, scale * fits["info"][:, 1, 1] / det, np.inf))
        se_b = np.sqrt(np.where(ok, scale * fits["info"][:, 0, 0] / det, np.inf))
    est = fits["estimate"]
    if covariates is not None or not whitened:
        z = None if covariates is None else covariates.matrix[ok]
        tau_a = CENTER_MARGIN * _between_task_sd(est[ok, 0], se_a[ok], z)
        tau_b = CENTER_MARGIN * _between_task_sd(est[ok, 1], se_b[ok], z)
        return ok & (se_a < tau_a) & (se_b < tau_b)
    tau_a = _between_task_sd_lower(est[ok, 0], se_a[ok])
    tau_b = _between_task_sd_lower(est[ok, 1], se_b[ok])
    if not (tau_a > 0 and tau_b > 0):
        return np.zeros(design.n_tasks, dtype=bool)
    # The population's correlation matters: with sd 0.1 for the intercepts and correlation
    # -0.93, the conditional spread of an intercept given the slope is 0.04, a funnel for
    # a task whose intercept is known to 0.02 (measured: 10 divergences centered).
    cov = np.zeros_like(fits["info"])
    cov[ok] = np.linalg.inv(fits["info"][ok]) * np.broadcast_to(scale, ok.shape)[ok, None, None]
    rho = _population_correlation(est, cov, ok & (se_a < tau_a) & (se_b < tau_b))
    pop = np.array([[tau_a**2, rho * tau_a * tau_b], [rho * tau_a * tau_b, tau_b**2]])
    worst = np.array([np.max(np.real(np.linalg.eigvals(np.linalg.solve(pop, c)))) for c in cov])
    return ok & (worst < 1.0)


def _population_correlation(est: np.ndarray, cov: np.ndarray, precise: np.ndarray) -> float:
    """Moment estimate of the correlation of intercepts and slopes across tasks.

    The covariance of the estimates less their mean sampling covariance (the raw
    correlation is diluted by the noise), over the tasks measured more precisely than the
    population's spread: one task on the chance floor (standard errors ~100 on the probit
    scale, Pythia's logiqa) would otherwise swamp the mean sampling covariance, leave a
    negative "spread" and, clipped, a correlation of +-0.99 that made precisely measured
    tasks non-centered. Fewer than three such tasks, or no spread left: 0 (no evidence).
    """
    if precise.sum() < 3:
        return 0.0
    spread = np.cov(est[precise].T) - cov[precise].mean(axis=0)
    if not (spread[0, 0] > 0 and spread[1, 1] > 0):
        return 0.0
    return float(np.clip(spread[0, 1] / np.sqrt(spread[0, 0] * spread[1, 1]), -0.99, 0.99))


def _between_task_sd_lower(estimates: np.ndarray, se: np.ndarray, level: float = 0.95
                           ) -> float:
    """Lower confidence bound of the between-task sd by the Q-profile method.

    The generalized statistic ``Q(tau^2) = sum w_i (est_i - mean_w)^2`` with ``w_i = 1 /
    (se_i^2 + tau^2)`` is chi-square on ``k - 1`` degrees of freedom at the true ``tau``
    and decreases in ``tau^2``; the bound solves ``Q(tau^2) = chi2_{k-1}(level)`` (0 when
    ``Q(0)`` is below it) (Viechtbauer 2007). Used by the whitened count chooser: a task
    is centered when its data are more precise than the smallest population scale the
    tasks allow, so a population scale that may be near 0 (few or noisy tasks) centers
    nothing, and 41 precisely measured tasks pin tau down well enough to center a task
    whose standard error is 70% of the estimate.
    """
    from scipy.stats import chi2

    est, var = np.asarray(estimates, float), np.asarray(se, float) ** 2
    target = chi2.ppf(level, est.size - 1)

    def q(tau2):
        w = 1.0 / (var + tau2)
        return float(np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2))

    if est.size < 2 or not q(0.0) > target:
        return 0.0
    lo, hi = 0.0, max(float(np.var(est)) * 4.0, 1e-12)
    while q(hi) > target:
        hi *= 4.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if q(mid) > target else (lo, mid)
    return float(np.sqrt(lo))


def centered_basis(design: TransferDesign, variants: VariantData,
                   fits: dict | None = None) -> tuple[tuple[float, ...], ...]:
    """Per task a fixed affine map that whitens its coefficients' likelihood.

    A centered task's ``(a_t, b_t)`` is sampled as ``(a0, b0) + L u`` with ``u`` free,
    ``(a0, b0)`` the task's own estimate and ``L L^T`` its approximate posterior covariance
    from its own data (:func:`task_count_fits`: inverse of information plus ridge, times
    the dispersion for the beta-binomial). The map is fixed before sampling and linear, so
    the model and its posterior are unchanged (the Jacobian is a constant); it only puts
    every task's coefficients on unit scale and removes their correlation, which a
    diagonal mass matrix cannot: with a probit curve informed only by the best models,
    intercept and slope of one task correlate at -0.9 and more.

    Returns
    -------
    tuple of (a0, b0, l11, l21, l22), one per task
    """
    fits = task_count_fits(design, variants) if fits is None else fits
    scale = fits["dispersion"] if variants.likelihood == "beta_binomial" else np.ones(
        design.n_tasks)
    cov = np.linalg.inv(fits["info"] + np.diag(fits["ridge"])) * scale[:, None, None]
    chol = np.linalg.cholesky(cov)
    est = fits["estimate"]
    return tuple((float(est[t, 0]), float(est[t, 1]), float(chol[t, 0, 0]),
                  float(chol[t, 1, 0]), float(chol[t, 1, 1])) for t in range(design.n_tasks))


def choose_centered_variant(design: TransferDesign, variants: VariantData,
                            per_task_noise: bool = False, covariates=None) -> np.ndarray:
    """:func:`choose_centered` on the link scale (the scores mapped by the link).

    Under a bounded link a task whose scores mostly sit on the chance floor (or the
    ceiling) does not identify its intercept and slope: the likelihood is flat along a
    ridge towards eta -> -inf. Such tasks (half or more of their scores within 2.5% of
    the floor or ceiling) are sampled non-centered, where the population prior keeps
    the ridge bounded. The count likelihoods know each score's test-set size and use
    :func:`choose_centered_counts` instead.
    """
    if variants.link == "identity":
        return choose_centered(design, per_task_noise, covariates)
    if variants.likelihood in COUNT_LIKELIHOODS:
        return choose_centered_counts(design, variants, covariates)
    z = link_scale_scores(design, variants)
    centered = choose_centered(dataclasses.replace(design, y=z), per_task_noise, covariates)
    edge = np.abs(z) >= np.max(np.abs(z)) - 1e-12
    share = np.bincount(design.task_idx, edge, design.n_tasks) / np.bincount(
        design.task_idx, minlength=design.n_tasks)
    return centered & (share < 0.5)




def model_priors(user, design: TransferDesign, variants: VariantData | None = None, *,
                 per_task_sigma=False, shape: str = "linear", covariates=None) -> dict:
    """Resolved priors of a (variant) model: data-scaled defaults, then the user's.

    For a bounded link the intercept and slope defaults live on the link scale (see
    :func:`bayesslope.priors.link_default_priors`); the variant parameters that are
    switched on get :func:`bayesslope.priors.variant_default_priors`, task covariates
    :func:`bayesslope.priors.covariate_default_priors`. A user prior for a
    parameter the model does not have is an error (it would be silently ignored).
    """
    if per_task_sigma not in (True, False, "pooled"):
        raise DataValidationError(
            f"per_task_sigma should be False, True or 'pooled' but got {per_task_sigma!r}"
        )
    variants = VariantData() if variants is None else variants
    defaults = default_priors(float(np.mean(design.y)), design.x_scale, design.y_scale)
    if variants.link != "identity":
        z = link_scale_scores(design, variants)
        defaults.update(link_default_priors(float(np.mean(z)), design.x, variants.link))
    if variants.likelihood in ("binomial", "beta_binomial"):
        defaults.pop("sigma")
    extra = variant_default_priors(
        defaults,
        y_scale=design.y_scale,
        x_mean=float(np.mean(design.x)),
        x_scale=design.x_scale,
        likelihood=variants.likelihood,
        lapse=variants.lapse,
        pooled_sigma=per_task_sigma == "pooled",
        condition=variants.condition_idx is not None,
        group=variants.group_idx is not None,
        x_se=variants.x_point is not None,
    )
    if per_task_sigma == "pooled":
        defaults.pop("sigma", None)
    defaults.update(extra)
    defaults.update(shape_default_priors(shape, defaults, design.x))
    if covariates is not None:
        defaults.update(covariate_default_priors(defaults))
    unused = sorted(set(user or {}) - set(defaults))
    if unused:
        raise DataValidationError(
            f"prior(s) {unused} are not parameters of this model (it has {sorted(defaults)}); "
            "they would be ignored"
        )
    return resolve_priors(user, defaults)
