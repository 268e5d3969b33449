"""TransferDesign + ModelConfig -> PyMC model. Builds, never samples.

The model, in data units (see docs/model.md)::

    y_i ~ Normal(intercept[t_i] + slope[t_i] * xc_i, sigma[t_i])
    xc_i = s[t_i] * (x_i - x_ref),   s = +1 or -1 from the orientation
    (intercept_t, slope_t) ~ MVNormal((intercept_mu, slope_mu), Sigma)
    Sigma = [[intercept_sigma^2, corr*intercept_sigma*slope_sigma], [..., slope_sigma^2]]

``slope`` is the transfer slope: positive when better upstream goes with better
downstream, whatever the direction in which each metric improves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .data import TransferDesign
from .exceptions import DataValidationError
from .priors import create_prior_variable

__all__ = [
    "ModelConfig", "build_model", "choose_centered", "choose_centered_variant",
    "choose_centered_log_sigma",
    "posterior_var_names", "model_priors", "link_scale_scores", "POSTERIOR_VARS",
    "VARIANT_VARS",
]

# A task is centered when its standard errors are below this fraction of the estimated
# population scale. Near se = tau neither form is good, and the costs are unequal: a
# wrong "centered" gives divergences and biased scales, a wrong "non-centered" only
# longer trajectories. The moment estimate of tau from ~10 tasks is itself noisy (SBC of
# per-task sigma: tau_intercept 0.028 estimated as 0.05, 31 divergences at margin 1).
CENTER_MARGIN = 0.5
PARAMETERIZATIONS = ("auto", "centered", "non_centered")
POSTERIOR_VARS = (
    "intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr",
    "intercept", "slope", "sigma",
)
# Posterior variables of the model variants, kept when present (see docs/model.md).
VARIANT_VARS = (
    "nu", "lapse", "overdispersion", "sigma_log_mu", "sigma_log_sd",
    "condition_intercept", "condition_slope", "intercept_mu_condition", "slope_mu_condition",
    "group_intercept_sigma", "group_slope_sigma", "group_intercept", "group_slope",
    "x_mu", "x_sigma", "x_true",
    "x0", "x0_mu", "x0_sigma", "curvature", "curvature_mu", "curvature_sigma",
)


@dataclass(frozen=True)
class ModelConfig:
    """Everything about the model besides the data.

    Attributes
    ----------
    priors : dict
        Resolved prior specs (see :mod:`bayesslope.priors`).
    correlated : bool
        Model the intercept-slope correlation (LKJ prior) or keep them independent.
    per_task_sigma : bool
        One noise scale per task instead of a shared one.
    parameterization : {"auto", "centered", "non_centered"}
        How task coefficients are sampled; "auto" decides per task (see
        :func:`choose_centered`).
    link : {"identity", "logit", "probit"}
        Link between the linear predictor and the mean score.
    likelihood : {"normal", "student_t", "binomial", "beta_binomial"}
        Observation model.
    lapse : bool or float
        Lapse rate of a bounded link: False (none), True (one per task, estimated) or a
        fixed value.
    shape : {"linear", "hockey_stick", "quadratic"}
        Mean function of x on the link scale (see
        :func:`bayesslope.likelihoods.shape_term`).

    ``per_task_sigma`` may also be ``"pooled"``: one noise scale per task with a
    population prior on log sigma; ``centered_log_sigma`` then says per task whether log
    sigma is sampled centered (default: :func:`choose_centered_log_sigma` of the data).
    """

    priors: dict
    correlated: bool = True
    per_task_sigma: bool | str = False
    parameterization: Literal["auto", "centered", "non_centered"] = "auto"
    centered_tasks: tuple[bool, ...] = field(default=())
    centered_log_sigma: tuple[bool, ...] = field(default=())
    link: str = "identity"
    likelihood: str = "normal"
    lapse: bool | float = False
    shape: str = "linear"

    def to_dict(self) -> dict:
        """JSON-safe description."""
        return {
            "priors": self.priors,
            "correlated": self.correlated,
            "per_task_sigma": self.per_task_sigma,
            "parameterization": self.parameterization,
            "centered_tasks": list(self.centered_tasks),
            "centered_log_sigma": list(self.centered_log_sigma),
            "link": self.link,
            "likelihood": self.likelihood,
            "lapse": self.lapse,
            "shape": self.shape,
        }


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


def choose_centered(design: TransferDesign, per_task_noise: bool = False) -> np.ndarray:
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
    tau_b = _between_task_sd(b[informative], se_b[informative])
    tau_a = _between_task_sd(a[informative], se_a[informative])
    return informative & (se_b < CENTER_MARGIN * tau_b) & (se_a < CENTER_MARGIN * tau_a)


def _between_task_sd(estimates: np.ndarray, se: np.ndarray) -> float:
    """DerSimonian-Laird estimate of the between-task sd from estimates and their se.

    ``tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))``, ``w = 1 / se^2``,
    ``Q = sum w (estimate - weighted mean)^2``. The precision weights matter when the
    standard errors differ a lot (per-task noise): an unweighted version lets a few noisy
    tasks hide the spread that the precise ones show (measured in SBC: every task then
    non-centered, R-hat 2.3).
    """
    est = np.asarray(estimates, dtype=float)
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


def link_scale_scores(design: TransferDesign, variants=None, lapse=False) -> np.ndarray:
    """Scores mapped to the link scale (clipped away from the floor and ceiling).

    ``z = F^{-1}(clip((y - chance) / (1 - chance - lapse), 0.025, 0.975))``; the scores
    themselves for the identity link. Used for data-scaled priors and to choose the
    parameterization, never in the likelihood.
    """
    from .likelihoods import link_function

    if variants is None or variants.link == "identity":
        return design.y
    c = variants.chance if variants.chance is not None else 0.0
    lap = float(lapse) if not isinstance(lapse, bool) else 0.0
    u = np.clip((design.y - c) / (1.0 - c - lap), 0.025, 0.975)
    return link_function(u, variants.link)


def choose_centered_variant(design: TransferDesign, variants=None, lapse=False,
                            per_task_noise: bool = False) -> np.ndarray:
    """:func:`choose_centered` on the link scale (the scores mapped by the link).

    Under a bounded link a task whose scores mostly sit on the chance floor (or the
    ceiling) does not identify its intercept and slope: the likelihood is flat along a
    ridge towards eta -> -inf. Such tasks (half or more of their scores within 2.5% of
    the floor or ceiling) are sampled non-centered, where the population prior keeps
    the ridge bounded.
    """
    import dataclasses

    if variants is None or variants.link == "identity":
        return choose_centered(design, per_task_noise)
    z = link_scale_scores(design, variants, lapse)
    centered = choose_centered(dataclasses.replace(design, y=z), per_task_noise)
    edge = np.abs(z) >= np.max(np.abs(z)) - 1e-12
    share = np.bincount(design.task_idx, edge, design.n_tasks) / np.bincount(
        design.task_idx, minlength=design.n_tasks)
    return centered & (share < 0.5)


def posterior_var_names(model) -> list[str]:
    """Names worth keeping in the posterior: the core and variant variables present."""
    return [v for v in POSTERIOR_VARS + VARIANT_VARS if v in model.named_vars]


def _validate_config(config: ModelConfig) -> None:
    from .likelihoods import LIKELIHOODS, LINKS

    if config.parameterization not in PARAMETERIZATIONS:
        raise DataValidationError(
            f"parameterization should be one of {list(PARAMETERIZATIONS)}, "
            f"got {config.parameterization!r}"
        )
    if config.link not in LINKS:
        raise DataValidationError(f"{config.link!r} is not a supported link. Must be one of: "
                                  f"{list(LINKS)}")
    if config.likelihood not in LIKELIHOODS:
        raise DataValidationError(f"{config.likelihood!r} is not a supported likelihood. Must "
                                  f"be one of: {list(LIKELIHOODS)}")
    if config.per_task_sigma not in (True, False, "pooled"):
        raise DataValidationError(
            f"per_task_sigma should be False, True or 'pooled' but got {config.per_task_sigma!r}"
        )
    from .likelihoods import SHAPES

    if config.shape not in SHAPES:
        raise DataValidationError(f"{config.shape!r} is not a supported shape. Must be one "
                                  f"of: {list(SHAPES)}")


def build_model(design: TransferDesign, config: ModelConfig, variants=None):
    """Build the full (uncollapsed) PyMC model of the transfer regression.

    Parameters
    ----------
    design : TransferDesign
        Validated data.
    config : ModelConfig
        Priors and structural options; ``centered_tasks`` must hold one flag per task.
    variants : bayesslope.variant_data.VariantData, optional
        Extra per-observation data of the model variants (counts, chance, x noise,
        condition and group codes). ``None`` is the core model.

    Returns
    -------
    pymc.Model
        With coords ``task`` and ``obs``; free variables include the population
        parameters and either ``coef_centered`` or ``coef_offset``; deterministics
        ``intercept`` and ``slope`` (dims ``task``) and, when correlated, ``corr``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    _validate_config(config)
    centered = np.asarray(config.centered_tasks, dtype=bool)
    if centered.shape != (design.n_tasks,):
        raise ValueError("config.centered_tasks needs one flag per task")
    c_idx = np.flatnonzero(centered)
    n_idx = np.flatnonzero(~centered)
    priors = config.priors
    coords = {"task": list(design.tasks), "obs": np.arange(design.n_obs)}
    v = variants
    if v is not None:
        if (v.link, v.likelihood) != (config.link, config.likelihood):
            raise ValueError("config and variants disagree about link/likelihood")
        if v.x_point is not None:
            coords["x_point"] = np.arange(v.n_x_points)
        if v.condition_idx is not None:
            coords["condition"] = list(v.conditions)
            coords["condition_contrast"] = list(v.conditions[1:])
        if v.group_idx is not None:
            coords["group"] = list(v.groups)
    elif config.link != "identity" or config.likelihood != "normal":
        raise ValueError(f"link={config.link!r}/likelihood={config.likelihood!r} need variants")

    with pm.Model(coords=coords) as model:
        task_idx = pm.Data("task_idx", design.task_idx, dims="obs")
        mu_a = create_prior_variable("intercept_mu", priors["intercept_mu"])
        mu_b = create_prior_variable("slope_mu", priors["slope_mu"])
        sd_a = create_prior_variable("intercept_sigma", priors["intercept_sigma"])
        sd_b = create_prior_variable("slope_sigma", priors["slope_sigma"])
        if config.correlated:
            # LKJ(eta) on a 2x2 correlation matrix is exactly (corr + 1) / 2 ~ Beta(eta, eta).
            eta = priors["corr"]["eta"]
            corr = pm.Deterministic("corr", 2.0 * pm.Beta("corr_unit", eta, eta) - 1.0)
        else:
            corr = pt.as_tensor_variable(0.0)
        # Cholesky factor of Sigma, written out for 2x2.
        chol = pt.stack(
            [
                pt.stack([sd_a, pt.zeros_like(sd_a)]),
                pt.stack([corr * sd_b, sd_b * pt.sqrt(1.0 - corr**2)]),
            ]
        )
        mean = pt.stack([mu_a, mu_b])
        coef = pt.zeros((design.n_tasks, 2))
        if c_idx.size:
            direct = pm.MvNormal("coef_centered", mu=mean, chol=chol, shape=(c_idx.size, 2))
            coef = pt.set_subtensor(coef[c_idx], direct)
        if n_idx.size:
            z = pm.Normal("coef_offset", 0.0, 1.0, shape=(n_idx.size, 2))
            coef = pt.set_subtensor(coef[n_idx], mean + z @ chol.T)
        intercept = pm.Deterministic("intercept", coef[:, 0], dims="task")
        slope = pm.Deterministic("slope", coef[:, 1], dims="task")

        if v is not None and v.x_point is not None:
            xc = _latent_x(pm, pt, design, v, priors)
        else:
            xc = pm.Data("xc", design.xc, dims="obs")
        a_obs = intercept[task_idx]
        b_obs = slope[task_idx]
        if v is not None and v.condition_idx is not None:
            a_cond, b_cond = _condition_effects(pm, pt, v, priors, mu_a, mu_b)
            a_obs = a_obs + a_cond[v.condition_idx]
            b_obs = b_obs + b_cond[v.condition_idx]
        if v is not None and v.group_idx is not None:
            a_grp, b_grp = _group_effects(pm, pt, v, priors)
            a_obs = a_obs + a_grp[v.group_idx]
            b_obs = b_obs + b_grp[v.group_idx]
        g, extra = _shape_terms(pm, pt, design, config, priors, xc)
        eta_obs = a_obs + b_obs * g + extra
        _likelihood(pm, pt, design, config, v, priors, eta_obs, task_idx)
    return model


def _pooled_per_task(pm, name: str, priors):
    """``name[t] = name_mu + name_sigma * z_t`` (non-centered), dims task."""
    mu = create_prior_variable(f"{name}_mu", priors[f"{name}_mu"])
    sd = create_prior_variable(f"{name}_sigma", priors[f"{name}_sigma"])
    z = pm.Normal(f"{name}_offset", 0.0, 1.0, dims="task")
    return pm.Deterministic(name, mu + sd * z, dims="task")


def _shape_terms(pm, pt, design, config, priors, xc):
    """``(g, extra)`` of the mean function: ``eta = a + b g + extra`` (see shape_term).

    Hockey stick: per-task thresholds ``x0`` (data units) partially pooled, sampled
    non-centered (a threshold is often weakly informed: a task without a kink in its
    x range identifies it only by the population). Quadratic: per-task ``curvature``
    on the link scale per squared unit of x, likewise.
    """
    from .likelihoods import shape_term

    if config.shape == "linear":
        return xc, 0.0
    idx = design.task_idx
    if config.shape == "hockey_stick":
        x0 = _pooled_per_task(pm, "x0", priors)
        return shape_term(xc, design, idx, x0=x0[idx], xp=pt)
    q = _pooled_per_task(pm, "curvature", priors)
    return shape_term(xc, design, idx, curvature=q[idx], xp=pt)


def _latent_x(pm, pt, design, v, priors):
    """Errors-in-variables: one latent true x per measured (x, x_se); returns oriented xc."""
    first = np.zeros(v.n_x_points, dtype=np.int64)
    noisy = np.flatnonzero(v.x_point >= 0)
    first[v.x_point[noisy]] = noisy  # any row of the point: they share x and x_se
    x_meas, se = design.x[first], v.x_se[first]
    x_mu = create_prior_variable("x_mu", priors["x_mu"])
    x_sigma = create_prior_variable("x_sigma", priors["x_sigma"])
    # Centered: the measurement pins each true x down to about x_se, which is small
    # against the population spread x_sigma whenever the data are worth fitting.
    # Chains start at the measurements: from a random start the joint posterior of
    # (x_true, slopes) has a second, sign-flipped mode (x_true reflected, every slope
    # negated) that a chain can fall into and never leave (found by SBC).
    x_true = pm.Normal("x_true", x_mu, x_sigma, dims="x_point", initval=x_meas)
    pm.Normal("x_measured", mu=x_true, sigma=se, observed=x_meas, dims="x_point")
    pt_idx = np.where(v.x_point >= 0, v.x_point, 0)
    x_row = pt.where(v.x_point >= 0, x_true[pt_idx], design.x)
    return design.task_sign[design.task_idx] * (x_row - design.x_ref)


def _condition_effects(pm, pt, v, priors, mu_a, mu_b):
    """Shifts of intercepts and slopes per condition (0 for the reference condition)."""
    d_a = create_prior_variable("condition_intercept", priors["condition_intercept"],
                                dims="condition_contrast")
    d_b = create_prior_variable("condition_slope", priors["condition_slope"],
                                dims="condition_contrast")
    zero = pt.zeros((1,))
    a = pt.concatenate([zero, d_a])
    b = pt.concatenate([zero, d_b])
    pm.Deterministic("intercept_mu_condition", mu_a + a, dims="condition")
    pm.Deterministic("slope_mu_condition", mu_b + b, dims="condition")
    return a, b


def _group_effects(pm, pt, v, priors):
    """Partially pooled intercept and slope deviations per group (non-centered)."""
    s_a = create_prior_variable("group_intercept_sigma", priors["group_intercept_sigma"])
    s_b = create_prior_variable("group_slope_sigma", priors["group_slope_sigma"])
    z = pm.Normal("group_offset", 0.0, 1.0, shape=(len(v.groups), 2))
    a = pm.Deterministic("group_intercept", s_a * z[:, 0], dims="group")
    b = pm.Deterministic("group_slope", s_b * z[:, 1], dims="group")
    return a, b


def _noise_scale(pm, pt, design, config, priors, task_idx):
    """Sigma per observation: shared, per task, or per task with a population on log sigma."""
    if config.per_task_sigma == "pooled":
        log_mu = create_prior_variable("sigma_log_mu", priors["sigma_log_mu"])
        log_sd = create_prior_variable("sigma_log_sd", priors["sigma_log_sd"])
        centered = (np.asarray(config.centered_log_sigma, dtype=bool)
                    if config.centered_log_sigma else choose_centered_log_sigma(design))
        if centered.shape != (design.n_tasks,):
            raise ValueError("config.centered_log_sigma needs one flag per task")
        cen, non = np.flatnonzero(centered), np.flatnonzero(~centered)
        log_sigma = pt.zeros(design.n_tasks)
        if cen.size:
            direct = pm.Normal("sigma_log_centered", log_mu, log_sd, shape=cen.size)
            log_sigma = pt.set_subtensor(log_sigma[cen], direct)
        if non.size:
            zs = pm.Normal("sigma_log_offset", 0.0, 1.0, shape=non.size)
            log_sigma = pt.set_subtensor(log_sigma[non], log_mu + log_sd * zs)
        sigma = pm.Deterministic("sigma", pt.exp(log_sigma), dims="task")
        return sigma[task_idx]
    if config.per_task_sigma:
        sigma = create_prior_variable("sigma", priors["sigma"], dims="task")
        return sigma[task_idx]
    return create_prior_variable("sigma", priors["sigma"])


def _likelihood(pm, pt, design, config, v, priors, eta_obs, task_idx):
    from .likelihoods import P_EPS, response_mean

    link, lik = config.link, config.likelihood
    if link == "identity":
        mean = eta_obs
    else:
        chance = v.chance if v.chance is not None else 0.0
        if config.lapse is True:
            lapse = create_prior_variable("lapse", priors["lapse"], dims="task")[task_idx]
        else:
            lapse = float(config.lapse)
        mean = response_mean(eta_obs, link, chance, lapse, xp=pt)
    if lik in ("normal", "student_t"):
        sigma_obs = _noise_scale(pm, pt, design, config, priors, task_idx)
        if lik == "normal":
            pm.Normal("y", mu=mean, sigma=sigma_obs, observed=design.y, dims="obs")
        else:
            nu = create_prior_variable("nu", priors["nu"])
            pm.StudentT("y", nu=nu, mu=mean, sigma=sigma_obs, observed=design.y, dims="obs")
        return
    p = pt.clip(mean, P_EPS, 1.0 - P_EPS)
    k = np.round(design.y * v.n_eval).astype(np.int64)
    if lik == "binomial":
        pm.Binomial("y", n=v.n_eval, p=p, observed=k, dims="obs")
        return
    # beta-binomial: p ~ Beta(p * phi, (1 - p) * phi) per observation, phi = 1/d^2 per task
    d = create_prior_variable("overdispersion", priors["overdispersion"], dims="task")
    phi = 1.0 / pt.square(d)[task_idx]
    pm.BetaBinomial("y", n=v.n_eval, alpha=p * phi, beta=(1.0 - p) * phi, observed=k,
                    dims="obs")


def model_priors(user, design: TransferDesign, variants=None, *, lapse=False,
                 per_task_sigma=False, shape: str = "linear") -> dict:
    """Resolved priors of a (variant) model: data-scaled defaults, then the user's.

    For a bounded link the intercept and slope defaults live on the link scale (see
    :func:`bayesslope.priors.link_default_priors`); the variant parameters that are
    switched on get :func:`bayesslope.priors.variant_default_priors`. A user prior for a
    parameter the model does not have is an error (it would be silently ignored).
    """
    from .priors import (
        default_priors,
        link_default_priors,
        resolve_priors,
        variant_default_priors,
    )

    if per_task_sigma not in (True, False, "pooled"):
        raise DataValidationError(
            f"per_task_sigma should be False, True or 'pooled' but got {per_task_sigma!r}"
        )
    from .priors import shape_default_priors

    defaults = default_priors(float(np.mean(design.y)), design.x_scale, design.y_scale)
    if variants is None and shape == "linear":
        return resolve_priors(user, defaults)
    if variants is None:
        from .variant_data import VariantData

        variants = VariantData()
    if variants.link != "identity":
        z = link_scale_scores(design, variants, lapse)
        defaults.update(link_default_priors(float(np.mean(z)), design.x, variants.link))
    if variants.likelihood in ("binomial", "beta_binomial"):
        defaults.pop("sigma")
    extra = variant_default_priors(
        defaults,
        y_scale=design.y_scale,
        x_mean=float(np.mean(design.x)),
        x_scale=design.x_scale,
        likelihood=variants.likelihood,
        lapse=lapse,
        pooled_sigma=per_task_sigma == "pooled",
        condition=variants.condition_idx is not None,
        group=variants.group_idx is not None,
        x_se=variants.x_point is not None,
    )
    if per_task_sigma == "pooled":
        defaults.pop("sigma", None)
    defaults.update(extra)
    defaults.update(shape_default_priors(shape, defaults, design.x))
    unused = sorted(set(user or {}) - set(defaults))
    if unused:
        raise DataValidationError(
            f"prior(s) {unused} are not parameters of this model (it has {sorted(defaults)}); "
            "they would be ignored"
        )
    return resolve_priors(user, defaults)
