"""TransferDesign + ModelConfig -> PyMC model. Builds, never samples.

The model, in data units (see docs/model.md)::

    y_i ~ Normal(intercept[t_i] + slope[t_i] * xc_i, sigma[t_i])
    xc_i = s[t_i] * (x_i - x_ref),   s = +1 or -1 from the orientation
    (intercept_t, slope_t) ~ MVNormal((intercept_mu, slope_mu), Sigma)
        (with task covariates Z: (intercept_mu + Z_t @ intercept_beta,
                                  slope_mu + Z_t @ slope_beta))
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
    "ModelConfig", "build_model", "posterior_var_names", "POSTERIOR_VARS", "VARIANT_VARS",
    "PARAMETERIZATIONS",
]

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
    "intercept_beta", "slope_beta",
)


@dataclass(frozen=True)
class ModelConfig:
    """Everything about the model besides the data and the variant options.

    Made once per fit by :func:`bayesslope.resolve.resolve_model` and saved in the spec;
    the builders read it and never decide anything themselves. The link, likelihood,
    chance floor and lapse belong to :class:`~bayesslope.variant_data.VariantData`.

    Attributes
    ----------
    priors : dict
        Resolved prior specs (see :mod:`bayesslope.priors`).
    formulation : {"collapsed", "full"}
        Task coefficients integrated out analytically, or sampled by NUTS.
    correlated : bool
        Model the intercept-slope correlation (LKJ prior) or keep them independent.
    per_task_sigma : bool
        One noise scale per task instead of a shared one.
    parameterization : {"auto", "centered", "non_centered"}
        What the user asked for; ``centered_tasks`` holds the per-task outcome (see
        :func:`bayesslope.resolve.choose_centered`).
    centered_tasks : tuple of bool
        Per task: coefficients sampled centered (True) or non-centered.
    centered_basis : tuple of (a0, b0, l11, l21, l22), optional
        Per task, a fixed affine map for centered sampling: ``(intercept_t, slope_t) =
        (a0, b0) + L u`` with ``L = [[l11, 0], [l21, l22]]`` and ``u`` free (flat), the
        population density added as a potential (see
        :func:`bayesslope.resolve.centered_basis`). Empty: plain centered sampling.
    shape : {"linear", "hockey_stick", "quadratic"}
        Mean function of x on the link scale (see
        :func:`bayesslope.likelihoods.shape_term`).

    ``per_task_sigma`` may also be ``"pooled"``: one noise scale per task with a
    population prior on log sigma; ``centered_log_sigma`` then says per task whether log
    sigma is sampled centered (:func:`bayesslope.resolve.choose_centered_log_sigma`).
    """

    priors: dict
    formulation: str = "full"
    correlated: bool = True
    per_task_sigma: bool | str = False
    parameterization: Literal["auto", "centered", "non_centered"] = "auto"
    centered_tasks: tuple[bool, ...] = field(default=())
    centered_log_sigma: tuple[bool, ...] = field(default=())
    shape: str = "linear"
    centered_basis: tuple[tuple[float, ...], ...] = field(default=())

    def __post_init__(self):
        _validate_config(self)

    def to_dict(self) -> dict:
        """JSON-safe description."""
        return {
            "priors": self.priors,
            "formulation": self.formulation,
            "correlated": self.correlated,
            "per_task_sigma": self.per_task_sigma,
            "parameterization": self.parameterization,
            "centered_tasks": list(self.centered_tasks),
            "centered_log_sigma": list(self.centered_log_sigma),
            "shape": self.shape,
            "centered_basis": [list(b) for b in self.centered_basis],
        }


def posterior_var_names(model) -> list[str]:
    """Names worth keeping in the posterior: the core and variant variables present."""
    return [v for v in POSTERIOR_VARS + VARIANT_VARS if v in model.named_vars]


def _validate_config(config: ModelConfig) -> None:
    if config.formulation not in ("collapsed", "full"):
        raise DataValidationError(
            f"formulation should be 'collapsed' or 'full', got {config.formulation!r}"
        )
    if config.parameterization not in PARAMETERIZATIONS:
        raise DataValidationError(
            f"parameterization should be one of {list(PARAMETERIZATIONS)}, "
            f"got {config.parameterization!r}"
        )
    if config.centered_basis and (len(config.centered_basis) != len(config.centered_tasks)
                                  or any(len(b) != 5 for b in config.centered_basis)):
        raise DataValidationError(
            "centered_basis should hold one (a0, b0, l11, l21, l22) per task, got "
            f"{len(config.centered_basis)} for {len(config.centered_tasks)} tasks"
        )
    if config.per_task_sigma not in (True, False, "pooled"):
        raise DataValidationError(
            f"per_task_sigma should be False, True or 'pooled' but got {config.per_task_sigma!r}"
        )
    from .likelihoods import SHAPES

    if config.shape not in SHAPES:
        raise DataValidationError(f"{config.shape!r} is not a supported shape. Must be one "
                                  f"of: {list(SHAPES)}")


def build_model(design: TransferDesign, config: ModelConfig, variants=None, covariates=None):
    """Build the full (uncollapsed) PyMC model of the transfer regression.

    Parameters
    ----------
    design : TransferDesign
        Validated data.
    config : ModelConfig
        Priors and structural options; ``centered_tasks`` must hold one flag per task.
    variants : bayesslope.variant_data.VariantData, optional
        The variant options (link, likelihood, lapse) and per-observation data (counts,
        chance, x noise, condition and group codes). ``None`` is the core model.
    covariates : bayesslope.covariates.TaskCovariates, optional
        Task covariates: the population means become ``intercept_mu + Z_t @
        intercept_beta`` and ``slope_mu + Z_t @ slope_beta`` (dims ``covariate``).

    Returns
    -------
    pymc.Model
        With coords ``task`` and ``obs``; free variables include the population
        parameters and ``coef_centered`` (or ``coef_whitened`` with a centered basis)
        and/or ``coef_offset``; deterministics
        ``intercept`` and ``slope`` (dims ``task``) and, when correlated, ``corr``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from .variant_data import VariantData

    centered = np.asarray(config.centered_tasks, dtype=bool)
    if centered.shape != (design.n_tasks,):
        raise ValueError("config.centered_tasks needs one flag per task")
    c_idx = np.flatnonzero(centered)
    n_idx = np.flatnonzero(~centered)
    priors = config.priors
    v = VariantData() if variants is None else variants
    coords = {**label_coords(design, v, covariates), "obs": np.arange(design.n_obs)}
    if v.x_point is not None:
        coords["x_point"] = np.arange(v.n_x_points)

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
        mean_c = mean_n = mean
        if covariates is not None:
            # Per-task population means, linear in the standardized covariates.
            mean = _covariate_means(pt, covariates, priors, mu_a, mu_b)
            mean_c, mean_n = mean[c_idx], mean[n_idx]
        coef = pt.zeros((design.n_tasks, 2))
        if c_idx.size and config.centered_basis:
            direct = _whitened_centered(pm, pt, config, c_idx, mean_c, chol)
            coef = pt.set_subtensor(coef[c_idx], direct)
        elif c_idx.size:
            direct = pm.MvNormal("coef_centered", mu=mean_c, chol=chol, shape=(c_idx.size, 2))
            coef = pt.set_subtensor(coef[c_idx], direct)
        if n_idx.size:
            z = pm.Normal("coef_offset", 0.0, 1.0, shape=(n_idx.size, 2))
            coef = pt.set_subtensor(coef[n_idx], mean_n + z @ chol.T)
        intercept = pm.Deterministic("intercept", coef[:, 0], dims="task")
        slope = pm.Deterministic("slope", coef[:, 1], dims="task")

        if v.x_point is not None:
            xc = _latent_x(pm, pt, design, v, priors)
        else:
            xc = pm.Data("xc", design.xc, dims="obs")
        a_obs = intercept[task_idx]
        b_obs = slope[task_idx]
        if v.condition_idx is not None:
            a_cond, b_cond = _condition_effects(pm, pt, v, priors, mu_a, mu_b)
            a_obs = a_obs + a_cond[v.condition_idx]
            b_obs = b_obs + b_cond[v.condition_idx]
        if v.group_idx is not None:
            a_grp, b_grp = _group_effects(pm, pt, v, priors)
            a_obs = a_obs + a_grp[v.group_idx]
            b_obs = b_obs + b_grp[v.group_idx]
        g, extra = _shape_terms(pm, pt, design, config, priors, xc)
        eta_obs = a_obs + b_obs * g + extra
        _likelihood(pm, pt, design, config, v, priors, eta_obs, task_idx)
    return model


def label_coords(design: TransferDesign, variants=None, covariates=None) -> dict:
    """The labelled dims of a fit: task, and condition, group, covariate when present.

    Shared by both model builders and by the relabelling of a reused compiled model.
    """
    coords = {"task": list(design.tasks)}
    if variants is not None and variants.condition_idx is not None:
        coords["condition"] = list(variants.conditions)
        coords["condition_contrast"] = list(variants.conditions[1:])
    if variants is not None and variants.group_idx is not None:
        coords["group"] = list(variants.groups)
    if covariates is not None:
        coords["covariate"] = list(covariates.columns)
    return coords


def _whitened_centered(pm, pt, config, c_idx, mean_c, chol):
    """Centered coefficients ``(a0, b0) + L u`` (``u`` flat) with the population density.

    A fixed linear map of the centered coefficients: the density of ``u`` is the
    population's MvNormal at the mapped point (times the constant ``|L|``), so the
    posterior of ``(intercept, slope)`` is the plain centered model's.
    """
    basis = np.asarray(config.centered_basis, dtype="float64")[c_idx]
    u = pm.Flat("coef_whitened", shape=(c_idx.size, 2))
    a = basis[:, 0] + basis[:, 2] * u[:, 0]
    b = basis[:, 1] + basis[:, 3] * u[:, 0] + basis[:, 4] * u[:, 1]
    direct = pt.stack([a, b], axis=1)
    population = pm.MvNormal.dist(mu=mean_c, chol=chol, shape=(c_idx.size, 2))
    pm.Potential("coef_population", pm.logp(population, direct).sum())
    return direct


def _covariate_means(pt, covariates, priors, mu_a, mu_b):
    """``(T, 2)`` population means ``(mu_a + Z beta_a, mu_b + Z beta_b)`` of the tasks."""
    beta_a = create_prior_variable("intercept_beta", priors["intercept_beta"], dims="covariate")
    beta_b = create_prior_variable("slope_beta", priors["slope_beta"], dims="covariate")
    z = pt.as_tensor_variable(np.asarray(covariates.matrix, dtype="float64"))
    return pt.stack([mu_a + z @ beta_a, mu_b + z @ beta_b], axis=1)


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
        centered = np.asarray(config.centered_log_sigma, dtype=bool)
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
    from .likelihoods import P_EPS, beta_binomial_phi, response_mean

    link, lik = v.link, v.likelihood
    if link == "identity":
        mean = eta_obs
    else:
        chance = v.chance if v.chance is not None else 0.0
        if v.lapse is True:
            lapse = create_prior_variable("lapse", priors["lapse"], dims="task")[task_idx]
        else:
            lapse = float(v.lapse)
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
    if lik == "beta_binomial":
        # p ~ Beta(p * phi, (1 - p) * phi) per observation, phi ~ 1/d^2 per task (capped)
        d = create_prior_variable("overdispersion", priors["overdispersion"], dims="task")
        phi = beta_binomial_phi(d, xp=pt)[task_idx]
    if v.counts == "average":
        _averaged_counts(pm, pt, design, v, p, phi if lik == "beta_binomial" else None)
        return
    k = np.round(design.y * v.n_eval).astype(np.int64)
    if lik == "binomial":
        pm.Binomial("y", n=v.n_eval, p=p, observed=k, dims="obs")
        return
    pm.BetaBinomial("y", n=v.n_eval, alpha=p * phi, beta=(1.0 - p) * phi, observed=k,
                    dims="obs")


def _averaged_counts(pm, pt, design, v, p, phi):
    """``counts="average"``: the count log pmf continuous in ``k = y * n`` (not rounded).

    Same formula as the numpy log-likelihood (:func:`~bayesslope.likelihoods.count_logpmf`),
    an observed ``y`` of dims ``obs`` like the whole-count models.
    """
    from .likelihoods import count_logpmf, successes

    k = successes(design.y, v.n_eval, "average")
    n = pt.as_tensor_variable(v.n_eval.astype(np.float64))

    def logp(value, n, p, *phi):
        return count_logpmf(value, n, p, phi[0] if phi else None, xp=pt)

    params = (n, p) if phi is None else (n, p, phi)
    pm.CustomDist("y", *params, logp=logp, observed=k, dims="obs")
