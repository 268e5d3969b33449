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

__all__ = ["ModelConfig", "build_model", "choose_centered", "POSTERIOR_VARS"]

PARAMETERIZATIONS = ("auto", "centered", "non_centered")
POSTERIOR_VARS = (
    "intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr",
    "intercept", "slope", "sigma",
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
    """

    priors: dict
    correlated: bool = True
    per_task_sigma: bool = False
    parameterization: Literal["auto", "centered", "non_centered"] = "auto"
    centered_tasks: tuple[bool, ...] = field(default=())

    def to_dict(self) -> dict:
        """JSON-safe description."""
        return {
            "priors": self.priors,
            "correlated": self.correlated,
            "per_task_sigma": self.per_task_sigma,
            "parameterization": self.parameterization,
            "centered_tasks": list(self.centered_tasks),
        }


def choose_centered(design: TransferDesign) -> np.ndarray:
    """Decide per task whether to sample its coefficients centered.

    A centered task is sampled directly from its population distribution; a
    non-centered one as ``mu + L z``. Centered is efficient when the task's own data pin
    its coefficients down more tightly than the population spread does; otherwise the
    posterior has a funnel in (coefficient, scale) and centered sampling diverges
    (measured: weak tasks diverge centered; informative tasks need ~3x more leapfrog
    steps non-centered). The rule compares each task's OLS standard errors with the
    spread of OLS estimates across tasks.

    Returns
    -------
    ndarray of bool, shape (n_tasks,)
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
    if informative.sum() < 2:
        return np.zeros(T, dtype=bool)
    b = np.where(informative, sxy / np.where(informative, sxx, 1.0), 0.0)
    a = ybar - b * xbar  # intercept at x_ref (xc = 0)
    resid = dy - b[idx] * dx
    dof = np.maximum(n - 2, 1)
    s2 = np.bincount(idx, resid * resid, T) / dof
    s2_pool = np.sum(s2[informative] * dof[informative]) / np.sum(dof[informative])
    with np.errstate(divide="ignore", invalid="ignore"):
        se_b = np.sqrt(s2_pool / sxx)
        se_a = np.sqrt(s2_pool * (1.0 / n + xbar**2 / sxx))
    spread_b = np.std(b[informative], ddof=1)
    spread_a = np.std(a[informative], ddof=1)
    return informative & (se_b < spread_b) & (se_a < spread_a)


def _validate_config(config: ModelConfig) -> None:
    if config.parameterization not in PARAMETERIZATIONS:
        raise DataValidationError(
            f"parameterization should be one of {list(PARAMETERIZATIONS)}, "
            f"got {config.parameterization!r}"
        )


def build_model(design: TransferDesign, config: ModelConfig):
    """Build the full (uncollapsed) PyMC model of the transfer regression.

    Parameters
    ----------
    design : TransferDesign
        Validated data.
    config : ModelConfig
        Priors and structural options; ``centered_tasks`` must hold one flag per task.

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

    with pm.Model(coords=coords) as model:
        xc = pm.Data("xc", design.xc, dims="obs")
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
        if config.per_task_sigma:
            sigma = create_prior_variable("sigma", priors["sigma"], dims="task")
            sigma_obs = sigma[task_idx]
        else:
            sigma_obs = create_prior_variable("sigma", priors["sigma"])
        pm.Normal(
            "y",
            mu=intercept[task_idx] + slope[task_idx] * xc,
            sigma=sigma_obs,
            observed=design.y,
            dims="obs",
        )
    return model
