"""The full (uncollapsed) model with every data-dependent value in ``pm.Data``.

:func:`bayesslope.model.build_model` bakes the data, the data-scaled priors and the
per-task parameterization into the graph as constants, so nutpie's compiled code serves
one data set only. :func:`build_data_model` builds the same posterior with all of them as
``pm.Data`` (:func:`full_data` gives their values), so one compiled model serves every
data set of the same *structure* (:func:`structure_key`: sizes, options, prior families):
a refit swaps a data buffer (:func:`bayesslope.sampling.sample_compiled`).

The per-task centered / non-centered choice becomes data too. Every task has one raw
pair ``u_t`` (flat), a 0/1 flag ``c_t`` and a fixed affine map ``(m_t, B_t)`` (the
whitened basis of :func:`bayesslope.resolve.centered_basis`; ``m = 0, B = I`` for plain
centered sampling)::

    coef_t = c_t (m_t + B_t u_t) + (1 - c_t) (mean_t + L u_t)
    log p  = c_t log MvNormal(coef_t | mean_t, L L') + (1 - c_t) log N(u_t | 0, I)

which is, term by term, the log density of :func:`~bayesslope.model.build_model`
(``coef_centered``, ``coef_whitened`` + its potential, ``coef_offset``; the whitened
map's constant Jacobian is left out there as here), so the posterior of the coefficients
is the same. The pooled per-task ``log sigma`` gets the same treatment.

Errors in x (latent true x, ``x_se=``) are not covered: :func:`supports` says so, and
those fits keep :func:`~bayesslope.model.build_model`.
"""

from __future__ import annotations

import math

import numpy as np

from .data import TransferDesign
from .model import ModelConfig, label_coords
from .priors import create_data_prior as _prior
from .priors import create_population_spread

__all__ = ["supports", "full_data", "structure_key", "build_data_model", "observed_values",
           "RAW_VARS"]

# Free variables of this model that build_model does not have (dropped from the posterior).
RAW_VARS = ("coef_raw", "sigma_log_raw")
_LOG_2PI = math.log(2.0 * math.pi)


def supports(variants) -> bool:
    """Whether :func:`build_data_model` covers these variants (not errors in x)."""
    return variants is None or variants.x_point is None


def _task_flags(config: ModelConfig, n_tasks: int):
    """(centered mask, (T, 5) basis) with the identity map for tasks without a basis."""
    mask = np.asarray(config.centered_tasks, dtype="float64")
    if mask.shape != (n_tasks,):
        raise ValueError("config.centered_tasks needs one flag per task")
    basis = np.tile(np.array([0.0, 0.0, 1.0, 0.0, 1.0]), (n_tasks, 1))
    if config.centered_basis:
        given = np.asarray(config.centered_basis, dtype="float64")
        basis[mask > 0] = given[mask > 0]
    return mask, basis


def observed_values(design: TransferDesign, variants) -> np.ndarray:
    """The observed ``y`` of the model: scores, or success counts for count likelihoods."""
    from .likelihoods import successes

    if variants is None or variants.likelihood in ("normal", "student_t"):
        return np.asarray(design.y, dtype="float64")
    k = successes(design.y, variants.n_eval, variants.counts)
    return k.astype(np.int64) if variants.counts == "whole" else k


def full_data(design: TransferDesign, config: ModelConfig, variants=None,
              covariates=None) -> dict[str, np.ndarray]:
    """The values of every ``pm.Data`` of :func:`build_data_model` for this data set."""
    from .collapsed_model import prior_data
    from .likelihoods import hinge_width

    mask, basis = _task_flags(config, design.n_tasks)
    out = {
        "task_idx": np.asarray(design.task_idx, dtype=np.int64),
        "xc": np.asarray(design.xc, dtype="float64"),
        "y_obs": observed_values(design, variants),
        "centered_mask": mask,
        "centered_basis": basis,
        **prior_data(config.priors, config.correlated),
    }
    if config.shape == "hockey_stick":
        out.update(y_sign=np.asarray(design.y_sign, dtype="float64"),
                   x_sign=np.asarray(float(design.x_sign)),
                   x_ref=np.asarray(float(design.x_ref)),
                   hinge_width=np.asarray(hinge_width(design.x)))
    if config.per_task_sigma == "pooled":
        out["centered_log_sigma"] = np.asarray(config.centered_log_sigma, dtype="float64")
    if covariates is not None:
        out["covariate_matrix"] = np.asarray(covariates.matrix, dtype="float64")
    if variants is not None:
        if variants.condition_idx is not None:
            out["condition_idx"] = np.asarray(variants.condition_idx, dtype=np.int64)
        if variants.group_idx is not None:
            out["group_idx"] = np.asarray(variants.group_idx, dtype=np.int64)
        if variants.chance is not None and variants.link != "identity":
            out["chance"] = np.asarray(variants.chance, dtype="float64")
        if variants.lapse is not True and variants.link != "identity":
            out["lapse_rate"] = np.asarray(float(variants.lapse))
        if variants.n_eval is not None and variants.likelihood in ("binomial", "beta_binomial"):
            out["n_eval"] = np.asarray(variants.n_eval, dtype=np.int64)
    return out


def structure_key(design: TransferDesign, config: ModelConfig, variants=None,
                  covariates=None) -> tuple:
    """What a compiled :func:`build_data_model` depends on besides :func:`full_data`."""
    from .variant_data import VariantData

    v = VariantData() if variants is None else variants
    families = tuple(
        (name, spec["dist"], tuple(sorted(k for k in spec if k != "dist")))
        for name, spec in sorted(config.priors.items())
    )
    return (
        "full", design.n_tasks, design.n_obs, config.correlated, config.per_task_sigma,
        config.shape, families, 0 if covariates is None else covariates.n_columns,
        v.link, v.likelihood, v.counts, v.chance is not None, v.lapse is True,
        0 if v.condition_idx is None else len(v.conditions),
        0 if v.group_idx is None else len(v.groups),
    )




def build_data_model(design: TransferDesign, config: ModelConfig, variants=None,
                     covariates=None):
    """The model of :func:`bayesslope.model.build_model`, data and priors as ``pm.Data``.

    Parameters and returned variables as :func:`~bayesslope.model.build_model`, except
    the raw task coefficients: one flat ``coef_raw`` (task x 2) for every task (and
    ``sigma_log_raw`` for ``per_task_sigma="pooled"``), see the module docstring.
    Errors in x are not supported (:func:`supports`).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from .variant_data import VariantData

    v = VariantData() if variants is None else variants
    if not supports(v):
        raise ValueError("build_data_model does not cover errors in x; use build_model")
    values = full_data(design, config, v, covariates)
    priors = config.priors
    # No "obs" coordinate: nothing sampled has that dim, and a cached description keeps
    # coordinates as JSON lists, which nutpie takes only as strings.
    coords = label_coords(design, v, covariates)

    with pm.Model(coords=coords) as model:
        data = {name: pm.Data(name, value) for name, value in values.items()
                if not name.startswith("prior_")}
        task_idx = data["task_idx"]
        mu_a = _prior("intercept_mu", priors["intercept_mu"])
        mu_b = _prior("slope_mu", priors["slope_mu"])
        sd_a, sd_b, corr = create_population_spread(priors, config.correlated)
        if covariates is not None:
            beta_a = _prior("intercept_beta", priors["intercept_beta"], dims="covariate")
            beta_b = _prior("slope_beta", priors["slope_beta"], dims="covariate")
            z = data["covariate_matrix"]
            mean_a, mean_b = mu_a + z @ beta_a, mu_b + z @ beta_b
        else:
            mean_a = mu_a * pt.ones(design.n_tasks)
            mean_b = mu_b * pt.ones(design.n_tasks)
        coef = _task_coefficients(pm, pt, design.n_tasks, data, mean_a, mean_b, sd_a, sd_b,
                                  corr)
        intercept = pm.Deterministic("intercept", coef[:, 0], dims="task")
        slope = pm.Deterministic("slope", coef[:, 1], dims="task")

        xc = data["xc"]
        a_obs = intercept[task_idx]
        b_obs = slope[task_idx]
        if v.condition_idx is not None:
            d_a = _prior("condition_intercept", priors["condition_intercept"],
                         dims="condition_contrast")
            d_b = _prior("condition_slope", priors["condition_slope"],
                         dims="condition_contrast")
            # 0 for the reference condition (as model._condition_effects).
            a_cond = pt.concatenate([pt.zeros((1,)), d_a])
            b_cond = pt.concatenate([pt.zeros((1,)), d_b])
            pm.Deterministic("intercept_mu_condition", mu_a + a_cond, dims="condition")
            pm.Deterministic("slope_mu_condition", mu_b + b_cond, dims="condition")
            a_obs = a_obs + a_cond[data["condition_idx"]]
            b_obs = b_obs + b_cond[data["condition_idx"]]
        if v.group_idx is not None:
            s_a = _prior("group_intercept_sigma", priors["group_intercept_sigma"])
            s_b = _prior("group_slope_sigma", priors["group_slope_sigma"])
            zg = pm.Normal("group_offset", 0.0, 1.0, shape=(len(v.groups), 2))
            a_grp = pm.Deterministic("group_intercept", s_a * zg[:, 0], dims="group")
            b_grp = pm.Deterministic("group_slope", s_b * zg[:, 1], dims="group")
            a_obs = a_obs + a_grp[data["group_idx"]]
            b_obs = b_obs + b_grp[data["group_idx"]]
        g, extra = _shape_terms(pm, pt, config, priors, data, xc, task_idx)
        _likelihood(pm, pt, design, config, v, priors, data, a_obs + b_obs * g + extra,
                    task_idx)
    return model


def _task_coefficients(pm, pt, n_tasks, data, mean_a, mean_b, sd_a, sd_b, corr):
    """(T, 2) coefficients from ``coef_raw`` and the per-task mask (module docstring)."""
    u = pm.Flat("coef_raw", shape=(n_tasks, 2))
    c = data["centered_mask"]
    basis = data["centered_basis"]
    root = pt.sqrt(1.0 - corr**2)
    # Centered: (a0, b0) + B u; non-centered: mean + L u with L the population's Cholesky.
    a_c = basis[:, 0] + basis[:, 2] * u[:, 0]
    b_c = basis[:, 1] + basis[:, 3] * u[:, 0] + basis[:, 4] * u[:, 1]
    a_n = mean_a + sd_a * u[:, 0]
    b_n = mean_b + sd_b * (corr * u[:, 0] + root * u[:, 1])
    a = c * a_c + (1.0 - c) * a_n
    b = c * b_c + (1.0 - c) * b_n
    # Whitened residuals L^-1 (coef - mean) of the centered tasks, u of the others: the
    # population MvNormal is -log 2pi - log|L| - |z|^2 / 2, the standard normal the same
    # without log|L|.
    z1 = (a_c - mean_a) / sd_a
    z2 = ((b_c - mean_b) / sd_b - corr * z1) / root
    z1 = c * z1 + (1.0 - c) * u[:, 0]
    z2 = c * z2 + (1.0 - c) * u[:, 1]
    log_det = pt.log(sd_a) + pt.log(sd_b) + pt.log(root)
    pm.Potential("coef_density", pt.sum(-_LOG_2PI - 0.5 * (z1**2 + z2**2) - c * log_det))
    return pt.stack([a, b], axis=1)


def _pooled_per_task(pm, name: str, priors):
    """``name[t] = name_mu + name_sigma * z_t`` (non-centered), dims task."""
    mu = _prior(f"{name}_mu", priors[f"{name}_mu"])
    sd = _prior(f"{name}_sigma", priors[f"{name}_sigma"])
    z = pm.Normal(f"{name}_offset", 0.0, 1.0, dims="task")
    return pm.Deterministic(name, mu + sd * z, dims="task")


def _shape_terms(pm, pt, config, priors, data, xc, task_idx):
    """``(g, extra)`` as :func:`bayesslope.model._shape_terms`, the hinge's inputs as data."""
    from .likelihoods import hinge_from_ref

    if config.shape == "linear":
        return xc, 0.0
    if config.shape == "hockey_stick":
        x0 = _pooled_per_task(pm, "x0", priors)[task_idx]
        # likelihoods.shape_term with the design's constants read from data.
        sy = data["y_sign"][task_idx]
        c = data["x_sign"] * (x0 - data["x_ref"])
        return sy * hinge_from_ref(sy * xc, c, data["hinge_width"], pt), 0.0
    q = _pooled_per_task(pm, "curvature", priors)[task_idx]
    return xc, q * xc * xc


def _noise_scale(pm, pt, design, config, priors, data, task_idx):
    """Sigma per observation, as :func:`bayesslope.model._noise_scale`."""
    if config.per_task_sigma == "pooled":
        log_mu = _prior("sigma_log_mu", priors["sigma_log_mu"])
        log_sd = _prior("sigma_log_sd", priors["sigma_log_sd"])
        c = data["centered_log_sigma"]
        r = pm.Flat("sigma_log_raw", shape=design.n_tasks)
        log_sigma = c * r + (1.0 - c) * (log_mu + log_sd * r)
        # Centered: Normal(r | mu, sd); non-centered: Normal(r | 0, 1).
        z = c * (r - log_mu) / log_sd + (1.0 - c) * r
        pm.Potential("sigma_log_density",
                     pt.sum(-0.5 * _LOG_2PI - 0.5 * z**2 - c * pt.log(log_sd)))
        sigma = pm.Deterministic("sigma", pt.exp(log_sigma), dims="task")
        return sigma[task_idx]
    if config.per_task_sigma:
        return _prior("sigma", priors["sigma"], dims="task")[task_idx]
    return _prior("sigma", priors["sigma"])


def _likelihood(pm, pt, design, config, v, priors, data, eta_obs, task_idx):
    """The observation model, as :func:`bayesslope.model._likelihood`."""
    from .likelihoods import P_EPS, beta_binomial_phi, count_logpmf, response_mean

    link, lik = v.link, v.likelihood
    y = data["y_obs"]
    if link == "identity":
        mean = eta_obs
    else:
        chance = data["chance"] if "chance" in data else 0.0
        if v.lapse is True:
            lapse = _prior("lapse", priors["lapse"], dims="task")[task_idx]
        else:
            lapse = data["lapse_rate"]
        mean = response_mean(eta_obs, link, chance, lapse, xp=pt)
    if lik in ("normal", "student_t"):
        sigma_obs = _noise_scale(pm, pt, design, config, priors, data, task_idx)
        if lik == "normal":
            pm.Normal("y", mu=mean, sigma=sigma_obs, observed=y)
        else:
            nu = _prior("nu", priors["nu"])
            pm.StudentT("y", nu=nu, mu=mean, sigma=sigma_obs, observed=y)
        return
    p = pt.clip(mean, P_EPS, 1.0 - P_EPS)
    n = data["n_eval"]
    phi = None
    if lik == "beta_binomial":
        d = _prior("overdispersion", priors["overdispersion"], dims="task")
        phi = beta_binomial_phi(d, xp=pt)[task_idx]
    if v.counts == "average":
        def logp(value, n, p, *phi):
            return count_logpmf(value, n, p, phi[0] if phi else None, xp=pt)

        n_f = pt.cast(n, "float64")
        params = (n_f, p) if phi is None else (n_f, p, phi)
        pm.CustomDist("y", *params, logp=logp, observed=y)
        return
    if lik == "binomial":
        pm.Binomial("y", n=n, p=p, observed=y)
        return
    pm.BetaBinomial("y", n=n, alpha=p * phi, beta=(1.0 - p) * phi, observed=y)
