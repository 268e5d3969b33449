"""The collapsed formulation of the Gaussian transfer model: build, then complete draws.

For the Gaussian identity-link model the task coefficients can be integrated out
analytically (:mod:`bayesslope.collapsed`): NUTS then samples only the population
parameters and ``sigma`` (5-6 numbers whatever the number of tasks) against the marginal
likelihood, and every task's intercept and slope is drawn afterwards from its exact
conditional Gaussian, once per posterior draw. The joint posterior is the same as the
full model's; only the sampler's work changes.

The data enter only through per-task sufficient statistics held in ``pm.Data``, so a
built (and compiled) model can be reused for new data of the same number of tasks.
With task covariates the prior mean of each task is ``mu + Z_t @ beta`` (the covariate
matrix ``Z`` is data too); the marginal likelihood and the conditional draws take it per
task (:mod:`bayesslope.collapsed`, "Per-task prior means").
"""

from __future__ import annotations

import numpy as np

from .collapsed import (
    SufficientStats,
    draw_task_coefficients,
    marginal_loglik,
    task_sufficient_stats,
)
from .data import TransferDesign
from .priors import create_data_prior as _prior
from .priors import create_population_spread

__all__ = [
    "build_collapsed_model",
    "collapsed_data",
    "prior_data",
    "structure_key",
    "complete_collapsed_posterior",
    "COLLAPSED_FREE_VARS",
]

COLLAPSED_FREE_VARS = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr",
                       "sigma", "intercept_beta", "slope_beta")
_STAT_FIELDS = SufficientStats._fields


def collapsed_data(design: TransferDesign, covariates=None) -> dict[str, np.ndarray]:
    """The ``pm.Data`` values of the collapsed model for ``design``: per-task statistics.

    With task covariates also ``covariate_matrix`` (tasks x columns, standardized).
    """
    stats = task_sufficient_stats(design.xc, design.y, design.task_idx, design.n_tasks)
    out = {f"stat_{f}": np.asarray(getattr(stats, f), dtype="float64") for f in _STAT_FIELDS}
    if covariates is not None:
        out["covariate_matrix"] = np.asarray(covariates.matrix, dtype="float64")
    return out


def prior_data(priors: dict, correlated: bool = True) -> dict[str, float]:
    """The ``pm.Data`` values holding the prior hyperparameters (``prior_<name>_<param>``).

    Keeping hyperparameters as data (not constants) lets one compiled model serve every
    dataset with the same number of tasks and prior families, although default priors
    are rescaled to each dataset.
    """
    return {
        f"prior_{name}_{k}": float(v)
        for name, spec in priors.items()
        if correlated or name != "corr"
        for k, v in spec.items()
        if k != "dist"
    }


def structure_key(design: TransferDesign, config, covariates=None) -> tuple:
    """What a compiled collapsed model depends on besides its data."""
    families = tuple(
        (name, spec["dist"], tuple(sorted(k for k in spec if k != "dist")))
        for name, spec in sorted(config.priors.items())
    )
    n_cov = 0 if covariates is None else covariates.n_columns
    return ("collapsed", design.n_tasks, config.correlated, config.per_task_sigma, families,
            n_cov)




def build_collapsed_model(design: TransferDesign, config, covariates=None):
    """Build the collapsed PyMC model: population parameters + marginal likelihood.

    Parameters
    ----------
    design : TransferDesign
    config : bayesslope.model.ModelConfig
        Priors, ``correlated`` and ``per_task_sigma`` are used; the parameterization is
        irrelevant here (there are no task coefficients to sample).
    covariates : bayesslope.covariates.TaskCovariates, optional
        Task covariates: adds ``intercept_beta`` and ``slope_beta`` (dims ``covariate``)
        and makes each task's prior mean ``mu + Z_t @ beta``.

    Returns
    -------
    pymc.Model
        Free variables: ``intercept_mu``, ``slope_mu``, ``intercept_sigma``,
        ``slope_sigma``, ``corr_unit`` (if correlated) and ``sigma``; a ``pm.Potential``
        holds the marginal log-likelihood.
    """
    import pymc as pm
    import pytensor.tensor as pt

    priors = config.priors
    coords = {"task": list(design.tasks)}
    if covariates is not None:
        coords["covariate"] = list(covariates.columns)
    # No bound checks: every free variable is sampled on its transformed (unconstrained)
    # scale and the prior parameters are validated in bayesslope.priors, so PyMC's
    # switch(valid, logp, -inf) guards never fire; dropping them leaves the density
    # unchanged and cuts the numba compilation of a first fit by ~10%.
    with pm.Model(coords=coords, check_bounds=False) as model:
        values = collapsed_data(design, covariates)
        data = {k: pm.Data(k, v, dims="task") for k, v in values.items()
                if k.startswith("stat_")}
        stats = SufficientStats(**{f: data[f"stat_{f}"] for f in _STAT_FIELDS})
        mu_a = _prior("intercept_mu", priors["intercept_mu"])
        mu_b = _prior("slope_mu", priors["slope_mu"])
        if covariates is not None:
            z = pm.Data("covariate_matrix", values["covariate_matrix"],
                        dims=("task", "covariate"))
            beta_a = _prior("intercept_beta", priors["intercept_beta"], dims="covariate")
            beta_b = _prior("slope_beta", priors["slope_beta"], dims="covariate")
            # Per-task prior means: the marginal likelihood is per task (collapsed.py).
            mu_a = mu_a + z @ beta_a
            mu_b = mu_b + z @ beta_b
        sd_a, sd_b, corr = create_population_spread(priors, config.correlated)
        sigma = _prior("sigma", priors["sigma"], **({"dims": "task"} if config.per_task_sigma
                                                     else {}))
        pm.Potential(
            "marginal_loglik",
            marginal_loglik(stats, mu_a, mu_b, sd_a, sd_b, corr, sigma, xp=pt),
        )
    return model


def complete_collapsed_posterior(tree, design: TransferDesign, seed, covariates=None) -> None:
    """Add exact conditional draws of ``intercept`` and ``slope`` to the posterior group.

    Parameters
    ----------
    tree : xarray.DataTree
        Posterior of the collapsed model (population parameters and ``sigma``).
    design : TransferDesign
    seed : int or None or numpy.random.SeedSequence
        Seeds the conditional draws (same seed, same draws).
    covariates : bayesslope.covariates.TaskCovariates, optional
        Task covariates: each task's prior mean is ``mu + Z_t @ beta`` per draw.
    """
    import xarray as xr

    post = tree["posterior"].to_dataset()
    stats = task_sufficient_stats(design.xc, design.y, design.task_idx, design.n_tasks)
    params = {}
    for name in ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "sigma"):
        params[name] = post[name].transpose("chain", "draw", ...).values
    params["corr"] = (
        post["corr"].transpose("chain", "draw").values if "corr" in post
        else np.zeros_like(params["slope_mu"])
    )
    if covariates is not None:
        z = np.asarray(covariates.matrix, dtype=np.float64)
        for name in ("intercept", "slope"):
            beta = post[f"{name}_beta"].transpose("chain", "draw", "covariate").values
            params[f"{name}_mu"] = params[f"{name}_mu"][..., None] + beta @ z.T
    rng = np.random.default_rng(seed)
    intercept, slope = draw_task_coefficients(rng, stats, params)
    coords = {"chain": post["chain"], "draw": post["draw"], "task": list(design.tasks)}
    post["intercept"] = xr.DataArray(intercept, dims=("chain", "draw", "task"), coords=coords)
    post["slope"] = xr.DataArray(slope, dims=("chain", "draw", "task"), coords=coords)
    tree["posterior"] = post
    # The full model's DataTree has the observations; keep the result indistinguishable.
    tree["observed_data"] = xr.DataTree(
        xr.Dataset({"y": ("obs", design.y)}, coords={"obs": np.arange(design.n_obs)})
    )
