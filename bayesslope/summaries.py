"""Posterior DataTree -> tables: per-task slopes, P(negative transfer), population.

Thin layers over numpy quantiles and arviz-stats diagnostics; every function takes the
fit's DataTree (plus the design's per-task table where needed) and returns pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

__all__ = [
    "add_derived",
    "slope_summary",
    "prob_negative_transfer",
    "population_summary",
    "prob_negative_new_task",
    "data_scale_slope_summary",
    "condition_difference_summary",
    "task_population_means",
    "covariate_effect_summary",
    "variance_explained_draws",
    "variance_explained_summary",
]


def add_derived(posterior, task_sign: np.ndarray, x_scale: float, y_scale: float):
    """Add ``slope_data`` and ``slope_std`` (dims chain, draw, task) to the posterior group.

    ``slope`` is the oriented transfer slope in data units; ``slope_data`` is the plain
    dy/dx in data units (``sign * slope``); ``slope_std`` is the oriented slope per
    standard deviation (``slope * sd(x) / sd(y)``).
    """
    import xarray as xr

    post = posterior["posterior"].to_dataset()
    sign = xr.DataArray(np.asarray(task_sign, dtype=float), dims="task",
                        coords={"task": post["slope"]["task"]})
    post["slope_data"] = post["slope"] * sign
    post["slope_std"] = post["slope"] * (x_scale / y_scale)
    post["slope_data"].attrs["description"] = "dy/dx in data units (not oriented)"
    post["slope_std"].attrs["description"] = "oriented slope, sd of y per sd of x"
    posterior["posterior"] = post
    return posterior


def _draws(posterior, var: str) -> np.ndarray:
    da = posterior["posterior"][var]
    return da.transpose("chain", "draw", ...).values


def _ci_names(ci_prob: float) -> tuple[str, str]:
    from .options import ci_names

    return ci_names(ci_prob)


def _check_ci_prob(ci_prob: float) -> None:
    from .options import check_ci_prob

    check_ci_prob(ci_prob)


def _var_table(posterior, var: str, ci_prob: float, cache: dict | None = None
               ) -> pd.DataFrame:
    """Mean, sd, equal-tailed interval, R-hat and ESS of each element of ``var``.

    ``cache``: per-element diagnostics to reuse (see
    :func:`bayesslope.diagnostics.element_diagnostics`).
    """
    from .diagnostics import element_diagnostics

    draws = _draws(posterior, var)
    flat = draws.reshape(-1, *draws.shape[2:])
    lo, hi = np.quantile(flat, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
    diag = element_diagnostics(posterior, [var], cache)[var]
    lb, ub = _ci_names(ci_prob)
    return pd.DataFrame(
        {
            "mean": flat.mean(axis=0),
            "sd": flat.std(axis=0, ddof=1),
            lb: lo,
            ub: hi,
            "r_hat": np.atleast_1d(diag["r_hat"].values),
            "ess_bulk": np.atleast_1d(diag["ess_bulk"].values),
            "ess_tail": np.atleast_1d(diag["ess_tail"].values),
        }
    )


def prob_negative_transfer(posterior) -> pd.Series:
    """P(transfer slope < 0 | data) per task."""
    draws = _draws(posterior, "slope")
    p = (draws < 0).mean(axis=(0, 1))
    tasks = posterior["posterior"]["task"].values.astype(str)
    return pd.Series(p, index=pd.Index(tasks, name="task"), name="p_negative")


def slope_summary(posterior, task_table: pd.DataFrame, ci_prob: float = 0.9,
                  cache: dict | None = None) -> pd.DataFrame:
    """Per-task table of the oriented transfer slope.

    Parameters
    ----------
    posterior : xarray.DataTree
        Posterior with ``slope``, ``slope_data``, ``slope_std`` and ``intercept``.
    task_table : pandas.DataFrame
        Per-task ``n``, ``x_min``, ``x_max``, ``x_range``, ``weak`` (from the design).
    ci_prob : float, default 0.9
        Probability mass of the equal-tailed interval.
    cache : dict, optional
        Per-element diagnostics to reuse and fill (see
        :func:`bayesslope.diagnostics.element_diagnostics`).

    Returns
    -------
    pandas.DataFrame
        Indexed by task: ``mean``, ``sd``, ``eti<pct>_lb``, ``eti<pct>_ub`` of the
        oriented slope, ``p_negative``, ``r_hat``, ``ess_bulk``, ``ess_tail``,
        ``slope_data_mean``, ``slope_std_mean``, ``intercept_mean`` and the task table.
    """
    _check_ci_prob(ci_prob)
    tasks = posterior["posterior"]["task"].values.astype(str)
    table = _var_table(posterior, "slope", ci_prob, cache)
    table.index = pd.Index(tasks, name="task")
    table["p_negative"] = prob_negative_transfer(posterior).values
    for var in ("slope_data", "slope_std", "intercept"):
        table[f"{var}_mean"] = _draws(posterior, var).mean(axis=(0, 1))
    return table.join(task_table, how="left")


def prob_negative_new_task(posterior) -> float:
    """P(a new task has a negative transfer slope), integrated over the posterior.

    For each draw the population gives slope_new ~ Normal(slope_mu, slope_sigma), so
    P(slope_new < 0) = Phi(-slope_mu / slope_sigma); the answer is its posterior mean
    (not a plug-in of point estimates).
    """
    mu = _draws(posterior, "slope_mu")
    sd = _draws(posterior, "slope_sigma")
    return float(np.mean(ndtr(-mu / sd)))


def population_summary(posterior, ci_prob: float = 0.9, cache: dict | None = None,
                       covariates=None, z_new: np.ndarray | None = None) -> pd.DataFrame:
    """Population parameters and P(a new task has negative transfer).

    Parameters
    ----------
    posterior : xarray.DataTree
    ci_prob : float, default 0.9
    cache : dict, optional
        As in :func:`slope_summary`.
    covariates : bayesslope.covariates.TaskCovariates, optional
        The fit's task covariates. ``slope_mu`` is then the population mean at ``z = 0``
        (numeric covariates at their means, categorical ones at the reference level).
    z_new : ndarray, optional
        Standardized covariate row of a new task
        (:func:`bayesslope.covariates.covariate_row`): adds rows
        ``intercept_mu_at_covariates``, ``slope_mu_at_covariates`` and P(negative) is
        ``E[Phi(-(slope_mu + z_new @ slope_beta) / slope_sigma)]``. Without it (and with
        covariates) P(negative) is for a task whose covariates are those of a fitted task
        picked at random: the average of that over the fitted tasks.

    Returns
    -------
    pandas.DataFrame
        Rows ``slope_mu``, ``slope_sigma``, ``intercept_mu``, ``intercept_sigma``,
        ``corr`` (if modelled), ``sigma`` (if shared) with the columns of
        :func:`slope_summary`'s statistics, and a row ``p_negative_new_task`` whose
        ``mean`` is the probability.
    """
    _check_ci_prob(ci_prob)
    post = posterior["posterior"]
    rows = []
    for var in ("slope_mu", "slope_sigma", "intercept_mu", "intercept_sigma", "corr", "sigma"):
        if var in post and post[var].ndim == 2:
            t = _var_table(posterior, var, ci_prob, cache)
            t.index = [var]
            rows.append(t)
    table = pd.concat(rows)
    if covariates is None:
        table.loc["p_negative_new_task", "mean"] = prob_negative_new_task(posterior)
    else:
        table = _covariate_population_rows(posterior, table, covariates, z_new, ci_prob)
    table.index.name = "parameter"
    return table


def _covariate_population_rows(posterior, table: pd.DataFrame, covariates, z_new,
                               ci_prob: float) -> pd.DataFrame:
    """P(negative) of a new task under task covariates (see :func:`population_summary`)."""
    sd = _draws(posterior, "slope_sigma")[..., None]
    if z_new is None:
        mu = task_population_means(posterior, covariates, "slope")
        table.loc["p_negative_new_task", "mean"] = float(np.mean(ndtr(-mu / sd)))
        table.attrs["p_negative_new_task"] = "averaged over the fitted tasks' covariates"
        return table
    z = np.asarray(z_new, dtype=float)
    lb, ub = _ci_names(ci_prob)
    for name in ("slope", "intercept"):
        draws = (_draws(posterior, f"{name}_mu")
                 + _draws(posterior, f"{name}_beta") @ z).reshape(-1)
        stats = _quantile_table(draws[:, None], ci_prob)
        for key in ("mean", "sd", lb, ub):
            table.loc[f"{name}_mu_at_covariates", key] = float(np.ravel(stats[key])[0])
    mu = _draws(posterior, "slope_mu") + _draws(posterior, "slope_beta") @ z
    table.loc["p_negative_new_task", "mean"] = float(np.mean(ndtr(-mu / sd[..., 0])))
    table.attrs["p_negative_new_task"] = "at the given covariates"
    return table


def task_population_means(posterior, covariates, name: str = "slope") -> np.ndarray:
    """Per-draw population mean of each fitted task: ``mu + Z_t @ beta``.

    Parameters
    ----------
    posterior : xarray.DataTree
        With ``<name>_mu`` and ``<name>_beta`` (dims covariate).
    covariates : bayesslope.covariates.TaskCovariates
    name : {"slope", "intercept"}

    Returns
    -------
    ndarray, shape (chain, draw, task)
    """
    mu = _draws(posterior, f"{name}_mu")
    beta = _draws(posterior, f"{name}_beta")
    return mu[..., None] + beta @ np.asarray(covariates.matrix, dtype=float).T


def covariate_effect_summary(posterior, covariates, ci_prob: float = 0.9) -> pd.DataFrame:
    """Effects of the task covariates on the population means, per covariate unit.

    A coefficient per standardized unit is divided by the covariate's sd (1 for a dummy),
    per posterior draw: the change of the population mean slope (intercept) per unit of a
    numeric covariate, or a level's difference from the reference level.

    Returns
    -------
    pandas.DataFrame
        Indexed by (``covariate``, ``parameter`` in slope, intercept): ``mean``, ``sd``,
        interval bounds, ``p_positive``, ``per_sd_mean`` (the effect of one sd of the
        covariate), ``unit`` and ``covariate_sd``.
    """
    _check_ci_prob(ci_prob)
    scale = np.asarray(covariates.scale, dtype=float)
    rows, index = [], []
    units = covariates.units()
    for j, col in enumerate(covariates.columns):
        for name in ("slope", "intercept"):
            flat = _draws(posterior, f"{name}_beta")[..., j].reshape(-1)
            per_unit = flat / scale[j]
            row = {k: float(np.ravel(v)[0])
                   for k, v in _quantile_table(per_unit[:, None], ci_prob).items()}
            row["p_positive"] = float((per_unit > 0).mean())
            row["per_sd_mean"] = float(flat.mean()) if col not in covariates.levels else np.nan
            row["unit"] = units[j]
            row["covariate_sd"] = float(scale[j]) if covariates.sources[j] not in \
                covariates.levels else np.nan
            rows.append(row)
            index.append((col, name))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index,
                                                              names=["covariate", "parameter"]))


def variance_explained_draws(posterior, covariates, name: str = "slope") -> np.ndarray:
    """Per-draw share of the between-task variance that the covariates explain.

    ``R^2 = 1 - var_t(theta_t - mu_t) / var_t(theta_t)`` over the fitted tasks, with
    ``theta_t`` the task's slope (intercept) and ``mu_t = mu + Z_t @ beta`` its
    covariate-predicted population mean (Gelman and Pardoe 2006, the group-level R^2).

    Returns
    -------
    ndarray, shape (chain, draw)
    """
    theta = _draws(posterior, name)
    resid = theta - task_population_means(posterior, covariates, name)
    return 1.0 - resid.var(axis=-1) / theta.var(axis=-1)


def variance_explained_summary(posterior, covariates, ci_prob: float = 0.9) -> pd.DataFrame:
    """Posterior of the group-level R^2 of the slopes and intercepts.

    Returns
    -------
    pandas.DataFrame
        Rows ``slope``, ``intercept``: ``mean``, ``sd`` and interval bounds of
        :func:`variance_explained_draws`. ``R^2`` can fall below 0 in a draw where the
        covariate-predicted means fit the tasks worse than their common mean.
    """
    _check_ci_prob(ci_prob)
    rows = {}
    for name in ("slope", "intercept"):
        flat = variance_explained_draws(posterior, covariates, name).reshape(-1)
        rows[name] = {k: float(np.ravel(v)[0])
                      for k, v in _quantile_table(flat[:, None], ci_prob).items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "parameter"
    return table


def _quantile_table(flat: np.ndarray, ci_prob: float) -> dict:
    lo, hi = np.quantile(flat, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
    lb, ub = _ci_names(ci_prob)
    return {"mean": flat.mean(axis=0), "sd": flat.std(axis=0, ddof=1), lb: lo, ub: hi}


def data_scale_slope_summary(fit, at_x: float | None = None, ci_prob: float = 0.9) -> pd.DataFrame:
    """Oriented derivative of the expected score with respect to x, per task, at ``at_x``.

    ``dp/dx~ = (1 - chance_t - lapse_t) F'(eta_t(at_x)) slope_t`` under a probit/logit
    link (chance_t the task's mean chance; reference condition, no group effect),
    ``slope_t`` under the identity link.

    Returns
    -------
    pandas.DataFrame
        Indexed by task: ``mean``, ``sd``, interval bounds, ``p_negative`` and ``at_x``.
    """
    from .likelihoods import inverse_link_deriv

    _check_ci_prob(ci_prob)
    d = fit.design
    x0 = d.x_ref if at_x is None else float(at_x)
    a = _draws(fit.posterior, "intercept")
    b = _draws(fit.posterior, "slope")
    v = fit.variants
    if fit.shape != "linear":
        deriv = _shape_derivative(fit, x0)
    elif v.link == "identity":
        deriv = b
    else:
        eta = a + b * d.task_sign * (x0 - d.x_ref)
        chance = np.zeros(d.n_tasks)
        if v.chance is not None:
            chance = np.bincount(d.task_idx, v.chance, d.n_tasks) / np.bincount(
                d.task_idx, minlength=d.n_tasks)
        lap = _draws(fit.posterior, "lapse") if v.lapse is True else float(v.lapse)
        deriv = (1.0 - chance - lap) * inverse_link_deriv(eta, v.link) * b
    flat = deriv.reshape(-1, deriv.shape[-1])
    table = pd.DataFrame(_quantile_table(flat, ci_prob), index=pd.Index(d.tasks, name="task"))
    table["p_negative"] = (flat < 0).mean(axis=0)
    table["at_x"] = x0
    return table


def _shape_derivative(fit, at_x: float) -> np.ndarray:
    """Oriented d(mean score)/dx at ``at_x`` per draw and task for a curved ``shape``.

    A central difference of :func:`bayesslope.likelihoods.mean_response_draws` (step
    1e-4 sd of x; the mean is smooth, the hockey stick's kink included), so it follows the
    shape, link, chance floor and lapse exactly as the model defines them.
    """
    from .likelihoods import mean_response_draws

    d, v = fit.design, fit.variants
    tidx = np.arange(d.n_tasks)
    new = {"task_idx": tidx}
    if v.chance is not None:
        new["chance"] = np.bincount(d.task_idx, v.chance, d.n_tasks) / np.bincount(
            d.task_idx, minlength=d.n_tasks)
    h = 1e-4 * (d.x_scale if d.x_scale > 0 else 1.0)
    post = fit.posterior["posterior"]
    up = mean_response_draws(post, d, v, x=np.full(d.n_tasks, at_x + h),
                             **new)
    down = mean_response_draws(post, d, v,
                               x=np.full(d.n_tasks, at_x - h), **new)
    return d.task_sign * (up - down) / (2.0 * h)


def condition_difference_summary(posterior, rope: float = 0.0, ci_prob: float = 0.9
                                 ) -> pd.DataFrame:
    """Pairwise differences of the per-condition population slopes.

    Parameters
    ----------
    posterior : xarray.DataTree
        With ``slope_mu_condition`` (dims chain, draw, condition).
    rope : float, default 0
        Region of practical equivalence: ``p_outside_rope`` is P(|difference| > rope).
    ci_prob : float, default 0.9

    Returns
    -------
    pandas.DataFrame
        One row per pair ``"b - a"`` (b after a in the condition order): ``mean``, ``sd``,
        interval bounds, ``p_positive`` and ``p_outside_rope``.
    """
    _check_ci_prob(ci_prob)
    if rope < 0:
        raise ValueError(f"rope should be >= 0 but got {rope!r}")
    post = posterior["posterior"]
    if "slope_mu_condition" not in post:
        raise ValueError("this fit has no conditions: fit with condition='<column>'")
    draws = _draws(posterior, "slope_mu_condition")
    flat = draws.reshape(-1, draws.shape[-1])
    names = post["condition"].values.astype(str)
    rows, labels = [], []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            diff = flat[:, j] - flat[:, i]
            row = {k: float(np.ravel(v)[0])
                   for k, v in _quantile_table(diff[:, None], ci_prob).items()}
            row["p_positive"] = float((diff > 0).mean())
            row["p_outside_rope"] = float((np.abs(diff) > rope).mean())
            rows.append(row)
            labels.append(f"{names[j]} - {names[i]}")
    table = pd.DataFrame(rows, index=pd.Index(labels, name="difference"))
    table.attrs["rope"] = rope
    return table
