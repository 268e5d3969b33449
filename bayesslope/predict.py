"""Posterior prediction at new upstream values, and its inverse (the upstream a target needs).

:func:`predict` evaluates a fitted transfer model at the rows of a new frame: the mean
score of each row's task (``kind="mean"``) or a new observed score (``kind="observation"``,
adding the binomial / beta-binomial test-set noise or the residual noise), per posterior
draw, then summarised. Tasks (and groups) not in the fit are drawn from their population,
once per posterior draw, so every row of one new task shares its coefficients.
:func:`required_upstream` inverts the mean curve (line, hockey stick or quadratic) in
closed form, per draw.

Both reuse the one formula set of :mod:`bayesslope.likelihoods` (``response_mean``,
``predictive_draws``, ``link_function``); nothing here re-derives the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .exceptions import DataValidationError
from .likelihoods import (
    hinge_from_ref,
    hinge_width,
    link_function,
    predictive_draws,
    response_mean,
    smooth_hinge,
)
from .options import check_ci_prob as _check_ci_prob
from .options import ci_names as _ci_names
from .options import rows_text as _rows

__all__ = ["predict", "required_upstream", "label_kind", "label_kinds", "KINDS"]

KINDS = ("mean", "observation")
# Rows per block when no draws are returned: keeps the temporaries (rows x draws) in a
# few tens of MB instead of gigabytes at 10,000 rows x 4,000 draws.
_BLOCK_ELEMENTS = 4_000_000


def label_kind(values: pd.Series) -> str:
    """The kind of the labels in a column: "string", "integer", "floating", "boolean", ...

    Recorded for the task, group and condition columns of a fit so that :func:`predict`
    can refuse labels of another type (``1`` for a fit whose tasks were ``"1"``), which
    would otherwise silently name a new task.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = pd.Series(values.cat.categories)
    return pd.api.types.infer_dtype(values, skipna=True)


def label_kinds(df: pd.DataFrame, **columns: str | None) -> dict[str, str]:
    """:func:`label_kind` of each named column present, by role (``task=``, ``group=``...)."""
    return {role: label_kind(df[col]) for role, col in columns.items()
            if isinstance(col, str) and col in df.columns}


def _draws(post, name: str) -> np.ndarray:
    """Posterior draws flattened to (samples, ...)."""
    arr = post[name].transpose("chain", "draw", ...).values
    return arr.reshape(-1, *arr.shape[2:])


# numpy samplers of the usual scale/rate priors, by (dist, parameter names); any other
# prior is drawn with PyMC (compiling a small graph, about a second).
_NUMPY_PRIORS = {
    ("HalfNormal", ("sigma",)): lambda r, p, s: np.abs(p["sigma"] * r.standard_normal(s)),
    ("Gamma", ("alpha", "beta")): lambda r, p, s: r.gamma(p["alpha"], 1.0 / p["beta"], s),
    ("Beta", ("alpha", "beta")): lambda r, p, s: r.beta(p["alpha"], p["beta"], s),
    ("Exponential", ("lam",)): lambda r, p, s: r.exponential(1.0 / p["lam"], s),
    ("LogNormal", ("mu", "sigma")): lambda r, p, s: r.lognormal(p["mu"], p["sigma"], s),
    ("Uniform", ("lower", "upper")): lambda r, p, s: r.uniform(p["lower"], p["upper"], s),
    ("HalfCauchy", ("beta",)): lambda r, p, s: np.abs(p["beta"] * r.standard_cauchy(s)),
    ("HalfStudentT", ("nu", "sigma")): lambda r, p, s: np.abs(p["sigma"]
                                                               * r.standard_t(p["nu"], s)),
}


def _prior_draws(spec: Mapping, size, rng) -> np.ndarray:
    """Draws from a prior spec (``{"dist": "Gamma", ...}``), the way the model built it."""
    params = {k: v for k, v in spec.items() if k != "dist"}
    sampler = _NUMPY_PRIORS.get((spec["dist"], tuple(sorted(params))))
    if sampler is not None:
        return np.asarray(sampler(rng, params, size), dtype=float)
    import pymc as pm

    rv = getattr(pm, spec["dist"]).dist(**params, size=size)
    return np.asarray(pm.draw(rv, random_seed=rng), dtype=float)


def _check_labels(fit, frame: pd.DataFrame, column: str, role: str) -> None:
    kinds = fit.spec.get("label_kinds") or {}
    want = kinds.get(role)
    if want is None:
        return
    got = label_kind(frame[column])
    if got != want and got != "empty":
        example = frame[column].dropna().iloc[0]
        example = example.item() if isinstance(example, np.generic) else example
        raise DataValidationError(
            f"column {column!r} ({role}) holds {got} labels (e.g. {example!r}) but the fit's "
            f"{role} labels are {want}: convert them (a label of another type would name a "
            f"new {role})"
        )


@dataclass(frozen=True)
class _Rows:
    """New rows resolved against a fit: codes into the (extended) coefficient arrays."""

    x: np.ndarray
    task_code: np.ndarray          # < n_tasks: a fitted task; >= n_tasks: a new one
    new_tasks: tuple[str, ...]
    task_sign: np.ndarray          # per row
    condition_code: np.ndarray | None
    group_code: np.ndarray | None  # < n_groups: a fitted group; >= n_groups: a new one
    new_groups: tuple[str, ...]
    chance: np.ndarray | float
    n_eval: np.ndarray | None
    x_se: np.ndarray | None
    new_z: np.ndarray | None = None  # standardized task covariates of the new tasks


def _numeric(frame: pd.DataFrame, column: str, role: str) -> np.ndarray:
    from .data import _numeric_column

    vals = _numeric_column(frame, column, role).to_numpy(dtype=float)
    bad = ~np.isfinite(vals)
    if bad.any():
        raise DataValidationError(
            f"column {column!r} ({role}) has missing or non-finite values "
            f"({vals[bad][0]!r}) at rows {_rows(frame.index[bad])}"
        )
    return vals


def _per_task_value(fit, values: np.ndarray | None) -> np.ndarray | None:
    """Per-task mean of a per-observation array of the fit (chance, n_eval)."""
    if values is None:
        return None
    d = fit.design
    return np.bincount(d.task_idx, values, d.n_tasks) / np.bincount(d.task_idx,
                                                                    minlength=d.n_tasks)


def _row_values(fit, frame, codes_known, role: str, fitted: np.ndarray | None, check):
    """A per-row value of a variant column (chance, n_eval).

    From ``frame`` when it has the column, else the fit's value: constant over the fit,
    or constant within the row's task.
    """
    v = fit.variants
    col = v.columns.get(role)
    # Only the fit's own column: a same-named column of a fit that used a constant (or a
    # dict) may mean something else (the bundled data's ``chance`` with chance=0.25).
    if isinstance(col, str) and col in frame.columns:
        vals = _numeric(frame, col, role)
        check(vals, col, frame.index)
        return vals
    d = fit.design
    out = np.full(len(frame), np.nan)
    if np.ptp(fitted) == 0:
        return np.full(len(frame), float(fitted[0]))
    lo = np.full(d.n_tasks, np.inf)
    hi = np.full(d.n_tasks, -np.inf)
    np.minimum.at(lo, d.task_idx, fitted)
    np.maximum.at(hi, d.task_idx, fitted)
    known = codes_known >= 0
    const = np.zeros(len(frame), dtype=bool)
    const[known] = lo[codes_known[known]] == hi[codes_known[known]]
    out[const] = lo[codes_known[const]]
    if not const.all():
        raise DataValidationError(
            f"the fit's {role} varies between rows (column {v.columns.get(role)!r}); new_df "
            f"needs that column for rows {_rows(frame.index[~const])} (new tasks, or tasks "
            f"whose {role} varied)"
        )
    return out


def _resolve_rows(fit, new_df: pd.DataFrame) -> _Rows:
    d = fit.design
    v = fit.variants
    if not isinstance(new_df, pd.DataFrame):
        raise DataValidationError(f"new_df must be a pandas DataFrame, got {type(new_df).__name__}")
    xcol, tcol = d.columns["x"], d.columns["task"]
    missing = [c for c in (xcol, tcol) if c not in new_df.columns]
    if missing:
        raise DataValidationError(
            f"new_df is missing column(s) {missing} (the fit's x and task columns); it has "
            f"columns {list(new_df.columns)}"
        )
    if len(new_df) == 0:
        raise DataValidationError("new_df is empty: there is nothing to predict")
    x = _numeric(new_df, xcol, "x")
    tasks = new_df[tcol]
    if tasks.isna().any():
        raise DataValidationError(
            f"column {tcol!r} (task) has missing values at rows {_rows(new_df.index[tasks.isna()])}"
        )
    _check_labels(fit, new_df, tcol, "task")
    labels = tasks.astype(str).to_numpy()
    known = {t: k for k, t in enumerate(d.tasks)}
    unknown = [t for t in dict.fromkeys(labels) if t not in known]
    code = {**known, **{t: d.n_tasks + j for j, t in enumerate(unknown)}}
    task_code = np.array([code[t] for t in labels], dtype=np.int64)
    known_code = np.where(task_code < d.n_tasks, task_code, -1)

    # Orientation of a new task: y_better of the fit when all tasks agree.
    signs = d.task_sign
    if unknown and np.ptp(signs) > 0:
        raise DataValidationError(
            f"task(s) {_rows(unknown)} are not in the fit, and the fit's tasks differ in "
            "y_better: the orientation of a new task is unknown"
        )
    sign_ext = np.concatenate([signs, np.full(len(unknown), signs[0])])

    cond_code = None
    if v.condition_idx is not None:
        ccol = v.columns["condition"]
        if ccol not in new_df.columns:
            raise DataValidationError(
                f"the fit has conditions (column {ccol!r}); new_df needs that column"
            )
        _check_labels(fit, new_df, ccol, "condition")
        cl = new_df[ccol].astype(str).to_numpy()
        cmap = {c: k for k, c in enumerate(v.conditions)}
        bad = np.array([c not in cmap for c in cl])
        if bad.any():
            raise DataValidationError(
                f"column {ccol!r} (condition) has level(s) {sorted(set(cl[bad]))} that are not "
                f"in the fit {list(v.conditions)} at rows {_rows(new_df.index[bad])}"
            )
        cond_code = np.array([cmap[c] for c in cl], dtype=np.int64)

    group_code, new_groups = None, ()
    if v.group_idx is not None:
        gcol = v.columns["group"]
        if gcol not in new_df.columns:
            raise DataValidationError(
                f"the fit has a group level (column {gcol!r}); new_df needs that column "
                "(a label not in the fit is a new group, drawn from the group population)"
            )
        _check_labels(fit, new_df, gcol, "group")
        gl = new_df[gcol].astype(str).to_numpy().astype(object)
        if v.group_nesting == "nested":
            gl = labels.astype(object) + ":" + gl
        gmap = {g: k for k, g in enumerate(v.groups)}
        new_groups = tuple(g for g in dict.fromkeys(gl) if g not in gmap)
        gmap.update({g: len(v.groups) + j for j, g in enumerate(new_groups)})
        group_code = np.array([gmap[g] for g in gl], dtype=np.int64)

    chance: np.ndarray | float = 0.0
    if v.chance is not None:
        def _check_chance(vals, col, index):
            bad = (vals < 0) | (vals >= 1)
            if bad.any():
                raise DataValidationError(
                    f"column {col!r} (chance) should be in [0, 1) but has {vals[bad][0]!r} at "
                    f"rows {_rows(index[bad])}"
                )
        chance = _row_values(fit, new_df, known_code, "chance", v.chance, _check_chance)

    n_eval = None
    if v.n_eval is not None:
        def _check_n(vals, col, index):
            bad = (vals <= 0) | (np.abs(vals - np.round(vals)) > 1e-9)
            if bad.any():
                raise DataValidationError(
                    f"column {col!r} (n_eval) must be positive integers but has {vals[bad][0]!r}"
                    f" at rows {_rows(index[bad])}"
                )
        n_eval = np.round(_row_values(fit, new_df, known_code, "n_eval",
                                      v.n_eval.astype(float), _check_n)).astype(np.int64)

    x_se = None
    se_col = v.columns.get("x_se")
    if v.x_point is not None and isinstance(se_col, str) and se_col in new_df.columns:
        x_se = _numeric(new_df, se_col, "x_se")
        if (x_se < 0).any():
            raise DataValidationError(f"column {se_col!r} (x_se) should be >= 0")

    new_z = None
    cov = fit.covariates
    if cov is not None and unknown:
        from .covariates import new_task_rows

        new_z = new_task_rows(cov, new_df, tcol, unknown)

    return _Rows(x=x, task_code=task_code, new_tasks=tuple(unknown),
                 task_sign=sign_ext[task_code], condition_code=cond_code,
                 group_code=group_code, new_groups=new_groups, chance=chance,
                 n_eval=n_eval, x_se=x_se, new_z=new_z)


def _population_draws(post, n_new: int, rng, z: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(intercept, slope) of ``n_new`` new tasks per draw: shape (samples, n_new) each.

    With task covariates, ``z`` (shape (n_new, n_columns)) moves each new task's population
    means to ``mu + beta @ z`` (as :meth:`TransferFit.population` with ``covariates=``).
    """
    mu_a, mu_b = _draws(post, "intercept_mu"), _draws(post, "slope_mu")
    sd_a, sd_b = _draws(post, "intercept_sigma"), _draws(post, "slope_sigma")
    rho = _draws(post, "corr") if "corr" in post else np.zeros_like(mu_a)
    z1 = rng.standard_normal((mu_a.size, n_new))
    z2 = rng.standard_normal((mu_a.size, n_new))
    mean_a, mean_b = mu_a[:, None], mu_b[:, None]
    if z is not None:
        mean_a = mean_a + _draws(post, "intercept_beta") @ z.T
        mean_b = mean_b + _draws(post, "slope_beta") @ z.T
    a = mean_a + sd_a[:, None] * z1
    b = mean_b + sd_b[:, None] * (rho[:, None] * z1 + np.sqrt(1 - rho**2)[:, None] * z2)
    return a, b


class _Params:
    """Per-draw parameters, extended to new tasks and groups; arrays are (units, samples)."""

    def __init__(self, fit, rows: _Rows, rng):
        post = fit.posterior["posterior"]
        model = fit.spec["model"]
        v = fit.variants
        n_new = len(rows.new_tasks)
        a, b = _draws(post, "intercept"), _draws(post, "slope")
        if n_new:
            an, bn = _population_draws(post, n_new, rng, rows.new_z)
            a, b = np.concatenate([a, an], axis=1), np.concatenate([b, bn], axis=1)
        self.S = a.shape[0]
        self.a, self.b = a.T.copy(), b.T.copy()
        # Shapes (hockey stick threshold x0, quadratic curvature): per task, pooled.
        self.shape = {}
        for name in ("x0", "curvature"):
            if name in post:
                val = _draws(post, name)
                if n_new:
                    mu = _draws(post, f"{name}_mu")[:, None]
                    sd = _draws(post, f"{name}_sigma")[:, None]
                    val = np.concatenate([val, mu + sd * rng.standard_normal((self.S, n_new))],
                                         axis=1)
                self.shape[name] = val.T.copy()
        self.cond_a = self.cond_b = None
        if rows.condition_code is not None:
            mu_a, mu_b = _draws(post, "intercept_mu"), _draws(post, "slope_mu")
            self.cond_a = (_draws(post, "intercept_mu_condition") - mu_a[:, None]).T
            self.cond_b = (_draws(post, "slope_mu_condition") - mu_b[:, None]).T
        self.grp_a = self.grp_b = None
        if rows.group_code is not None:
            ga, gb = _draws(post, "group_intercept"), _draws(post, "group_slope")
            k = len(rows.new_groups)
            if k:
                sa = _draws(post, "group_intercept_sigma")[:, None]
                sb = _draws(post, "group_slope_sigma")[:, None]
                ga = np.concatenate([ga, sa * rng.standard_normal((self.S, k))], axis=1)
                gb = np.concatenate([gb, sb * rng.standard_normal((self.S, k))], axis=1)
            self.grp_a, self.grp_b = ga.T.copy(), gb.T.copy()
        # Lapse per task (prior draws for new tasks: lapse rates are not pooled).
        lapse = v.lapse
        if lapse is True:
            lap = _draws(post, "lapse")
            if n_new:
                lap = np.concatenate(
                    [lap, _prior_draws(model["priors"]["lapse"], (self.S, n_new), rng)], axis=1)
            self.lapse = lap.T.copy()
        else:
            self.lapse = float(lapse)
        # Observation parameters.
        self.sigma = self.nu = self.overdispersion = None
        if v.likelihood in ("normal", "student_t"):
            s = _draws(post, "sigma")
            if s.ndim == 2:  # per task
                if n_new:
                    if model.get("per_task_sigma") == "pooled":
                        lm = _draws(post, "sigma_log_mu")[:, None]
                        ls = _draws(post, "sigma_log_sd")[:, None]
                        sn = np.exp(lm + ls * rng.standard_normal((self.S, n_new)))
                    else:
                        sn = _prior_draws(model["priors"]["sigma"], (self.S, n_new), rng)
                    s = np.concatenate([s, sn], axis=1)
                self.sigma = s.T.copy()
            else:
                self.sigma = s[None, :]
            if v.likelihood == "student_t":
                self.nu = _draws(post, "nu")[None, :]
        elif v.likelihood == "beta_binomial":
            od = _draws(post, "overdispersion")
            if n_new:
                od = np.concatenate(
                    [od, _prior_draws(model["priors"]["overdispersion"], (self.S, n_new), rng)],
                    axis=1)
            self.overdispersion = od.T.copy()
        self.x_mu = self.x_sigma = None
        if rows.x_se is not None:
            self.x_mu = _draws(post, "x_mu")[None, :]
            self.x_sigma = _draws(post, "x_sigma")[None, :]


def _block_draws(fit, rows: _Rows, P: _Params, sl: slice, kind: str, rng) -> np.ndarray:
    """Draws of the predicted score for rows ``sl``: shape (rows, samples)."""
    d = fit.design
    v = fit.variants
    t = rows.task_code[sl]
    x = rows.x[sl][:, None]
    if rows.x_se is not None:
        se = rows.x_se[sl][:, None]
        noisy = se > 0
        if noisy.any():
            prec = np.where(noisy, 1.0 / np.where(noisy, se, 1.0) ** 2, 0.0) + 1.0 / P.x_sigma**2
            m = (np.where(noisy, x / np.where(noisy, se, 1.0) ** 2, 0.0)
                 + P.x_mu / P.x_sigma**2) / prec
            xt = m + rng.standard_normal((x.shape[0], P.S)) / np.sqrt(prec)
            x = np.where(noisy, xt, x)
    xc = rows.task_sign[sl][:, None] * (x - d.x_ref)
    a, b = P.a[t], P.b[t]
    if P.cond_a is not None:
        c = rows.condition_code[sl]
        a = a + P.cond_a[c]
        b = b + P.cond_b[c]
    if P.grp_a is not None:
        g = rows.group_code[sl]
        a = a + P.grp_a[g]
        b = b + P.grp_b[g]
    g, extra = xc, 0.0
    if "x0" in P.shape:  # hockey stick: see likelihoods.shape_term
        x0 = P.shape["x0"][t]
        sy = rows.task_sign[sl][:, None] * d.x_sign
        g = sy * hinge_from_ref(sy * xc, d.x_sign * (x0 - d.x_ref), hinge_width(d.x))
    if "curvature" in P.shape:
        extra = P.shape["curvature"][t] * xc * xc
    eta = a + b * g + extra
    if v.link == "identity":
        mean = eta
    else:
        chance = rows.chance[sl][:, None] if isinstance(rows.chance, np.ndarray) else rows.chance
        lapse = P.lapse[t] if isinstance(P.lapse, np.ndarray) else P.lapse
        mean = response_mean(eta, v.link, chance, lapse)
    if kind == "mean":
        return mean
    params: dict = {}
    if v.likelihood in ("normal", "student_t"):
        params["sigma"] = P.sigma[t] if P.sigma.shape[0] > 1 else P.sigma
        if P.nu is not None:
            params["nu"] = np.broadcast_to(P.nu, mean.shape)
    else:
        params["n"] = rows.n_eval[sl][:, None]
        if P.overdispersion is not None:
            params["overdispersion"] = P.overdispersion[t]
    return predictive_draws(rng, v.likelihood, mean, **params)


def _summarise(draws: np.ndarray, ci_prob: float, keep: bool = False) -> dict:
    """Mean, sd and equal-tailed interval of each row of ``draws`` (rows, samples).

    The interval is numpy's default (linear) quantile, computed by one partial sort of
    each row (about twice as fast as ``np.quantile``); ``keep=False`` lets it reorder
    ``draws`` in place.
    """
    n = draws.shape[1]
    mean = draws.mean(axis=1)
    sd = draws.std(axis=1, ddof=1) if n > 1 else np.full(draws.shape[0], np.nan)
    pos = np.array([(1 - ci_prob) / 2, (1 + ci_prob) / 2]) * (n - 1)
    lo_i = np.floor(pos).astype(np.int64)
    hi_i = np.minimum(lo_i + 1, n - 1)
    frac = pos - lo_i
    work = draws.copy() if keep else draws
    work.partition(sorted({*lo_i.tolist(), *hi_i.tolist()}), axis=1)
    bounds = [work[:, lo_i[k]] + frac[k] * (work[:, hi_i[k]] - work[:, lo_i[k]])
              for k in range(2)]
    lb, ub = _ci_names(ci_prob)
    return {"mean": mean, "sd": sd, lb: bounds[0], ub: bounds[1]}


def extrapolation(fit, x: np.ndarray) -> np.ndarray:
    """Distance of ``x`` beyond the fitted x range, in units of that range (0 inside)."""
    lo, hi = float(np.min(fit.design.x)), float(np.max(fit.design.x))
    return np.maximum.reduce([lo - x, x - hi, np.zeros_like(x)]) / (hi - lo)


def predict(fit, new_df: pd.DataFrame, *, kind: str = "mean", ci_prob: float = 0.9,
            random_seed=None, return_draws: bool = False):
    """Posterior (predictive) distribution of the score at the rows of ``new_df``.

    Parameters
    ----------
    fit : TransferFit
    new_df : pandas.DataFrame
        Needs the fit's x and task columns; also its condition and group columns when the
        fit has them, and its ``chance`` / ``n_eval`` columns where these varied within a
        task of the fit (else the fit's value for the row's task is used). A task (or
        group) label not in the fit is a new task (group) drawn from the population, once
        per posterior draw and shared by all rows with that label; for a fit with
        ``task_covariates`` its population means are those at its covariates (columns of
        ``new_df``, constant within the new task; see ``fit.population(covariates=...)``).
        With ``x_se``, a row that has the fit's x_se column is a noisy measurement of x
        and the prediction integrates over the true x; otherwise x is taken as exact.
    kind : {"mean", "observation"}, default "mean"
        "mean": the expected score of the row's task at x (under a bounded link within
        ``[chance, 1 - lapse]``). "observation": a new score, adding the likelihood's
        noise (binomial / beta-binomial with the row's ``n_eval``, Normal / Student-t
        residuals). A fit of averaged accuracies (``counts="average"``) draws
        ``k ~ Binomial(n, p)`` as well: ``k / n`` has the average's mean and variance
        when ``n`` is the variance-matching size (docs/model.md, "Averaged accuracies").
    ci_prob : float, default 0.9
        Mass of the equal-tailed interval (columns ``eti90_lb``, ``eti90_ub`` for 0.9).
    random_seed : int or numpy.random.Generator, optional
        Seeds the new-task, new-group and observation draws (same seed, same result).
    return_draws : bool, default False
        Also return the draws as an xarray.DataArray with dims (chain, draw, row).

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, xarray.DataArray)
        Indexed like ``new_df``: ``mean``, ``sd``, interval bounds, ``extrapolated``
        (distance beyond the fitted x range in units of that range, 0 inside),
        ``new_task`` and, for group fits, ``new_group``.

    Raises
    ------
    DataValidationError
        Missing x or task column, non-numeric / NaN / infinite x, task labels of another
        type than the fit's, an unknown condition, or a missing chance / n_eval column
        where the fit needs one.
    """
    if kind not in KINDS:
        raise DataValidationError(f"kind should be one of {list(KINDS)} but got {kind!r}")
    _check_ci_prob(ci_prob)
    rows = _resolve_rows(fit, new_df)
    rng = np.random.default_rng(random_seed)
    P = _Params(fit, rows, rng)
    n = len(rows.x)
    if return_draws:
        draws = _block_draws(fit, rows, P, slice(0, n), kind, rng)
        stats = _summarise(draws, ci_prob, keep=True)
    else:
        step = max(1, _BLOCK_ELEMENTS // P.S)
        parts = [_summarise(_block_draws(fit, rows, P, slice(i, i + step), kind, rng), ci_prob)
                 for i in range(0, n, step)]
        stats = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    table = pd.DataFrame(stats, index=new_df.index)
    table["extrapolated"] = extrapolation(fit, rows.x)
    table["new_task"] = rows.task_code >= fit.design.n_tasks
    if rows.group_code is not None:
        table["new_group"] = rows.group_code >= len(fit.variants.groups)
    table.attrs.update(kind=kind, ci_prob=ci_prob)
    if not return_draws:
        return table
    import xarray as xr

    post = fit.posterior["posterior"]
    C, D = post.sizes["chain"], post.sizes["draw"]
    da = xr.DataArray(draws.T.reshape(C, D, n), dims=("chain", "draw", "row"),
                      coords={"chain": post["chain"].values, "draw": post["draw"].values,
                              "row": np.asarray(new_df.index)},
                      name="y_pred", attrs={"kind": kind})
    return table, da


# -- inverse prediction -------------------------------------------------------------------


def _log_expm1(v: np.ndarray) -> np.ndarray:
    """``log(exp(v) - 1)`` for ``v > 0`` (the inverse of softplus), without overflow."""
    v = np.asarray(v, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        small = np.log(np.expm1(np.minimum(v, 30.0)))
        return np.where(v > 30.0, v + np.log1p(-np.exp(-np.maximum(v, 30.0))), small)


def _rising_root(rhs: np.ndarray, b: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Root ``t`` of ``q t^2 + b t = rhs`` on the branch where the left side rises with t.

    That branch is ``2 q t + b > 0``: right of the vertex for ``q > 0``, left of it for
    ``q < 0``, the whole line for ``q = 0, b > 0``. Both cases are the root
    ``(sqrt(D) - b) / (2 q) = 2 rhs / (b + sqrt(D))`` with ``D = b^2 + 4 q rhs``; the second
    form is used for ``b >= 0`` (no cancellation, and it tends to the line's ``rhs / b``
    as ``q -> 0``). Without a root on that branch: ``-inf`` when the curve lies above
    ``rhs`` everywhere (``q > 0``, below the vertex: reached at every t), ``+inf`` when it
    never gets there (``q < 0`` above the vertex, or ``q = 0, b <= 0``).
    """
    disc = b * b + 4.0 * q * rhs
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        t = np.where(b >= 0, 2.0 * rhs / (b + sq), (sq - b) / (2.0 * q))
    t = np.where(disc < 0, np.where(q > 0, -np.inf, np.inf), t)
    t = np.where((q == 0) & (b <= 0), np.inf, t)
    # rhs = +-inf (a target at chance under a bounded link): the limit, not inf - inf
    return np.where(np.isnan(t), np.where(rhs < 0, -np.inf, np.inf), t)


def _oriented_inverse(fit, a, b, e, tidx, post) -> np.ndarray:
    """Per draw and task, ``t* = s_x (x* - x_ref)``: how far x must improve past x_ref.

    ``a``, ``b`` (samples, tasks) are the intercept and oriented slope, ``e`` the target on
    the link scale. ``t = s_y xc`` rises as x improves, whatever the task's orientation;
    ``-inf``: the mean reaches the target at every x; ``+inf``: never by improving x.
    """
    d = fit.design
    sy = np.array([1.0 if b_ == "higher" else -1.0 for b_ in d.y_better])[tidx]
    if "x0" in post:
        # s_y eta = s_y a + b (h_w(t - c) - h_w(-c)), c = s_x (x0 - x_ref), h_w the smooth
        # hinge rising from 0 to infinity; the plateau (the worst level) is
        # a - s_y b h_w(-c). One crossing when b > 0 and the target is better than the
        # plateau (r > 0); a target no better than it is reached at every x.
        c = d.x_sign * (_draws(post, "x0")[:, tidx] - d.x_ref)
        w = hinge_width(d.x)
        plateau = a - sy * b * smooth_hinge(-c, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = sy * (e - plateau) / b
        above = r > 0
        t = np.where(above, c + w * _log_expm1(np.where(above, r, 1.0) / w), -np.inf)
        return np.where(b > 0, t, np.inf)
    rhs = sy * (e - a)
    if "curvature" in post:
        # phi(t) = s_y eta = s_y a + b t + s_y q t^2: reaches s_y e on its rising branch
        return _rising_root(rhs, b, sy * _draws(post, "curvature")[:, tidx])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, rhs / b, np.inf)


def required_upstream(fit, target, *, ci_prob: float = 0.9, condition: str | None = None,
                      return_draws: bool = False):
    """Posterior of the upstream value at which a task's mean score reaches ``target``.

    Per posterior draw the mean curve is inverted in closed form on the link scale, with
    ``u = (target - chance_t) / (1 - chance_t - lapse_t)`` and ``g`` the link function
    (``u = target`` under the identity link), ``s_t`` the orientation sign:

    * straight line: ``x* = x_ref + s_t (g(u) - intercept_t) / slope_t``;
    * hockey stick (``eta = a + s_y b (h_w(s_x (x - x0)) - h_w(s_x (x_ref - x0)))``,
      ``h_w`` the smooth hinge, ``s_x``, ``s_y`` the orientations of x and y):
      ``x* = x0 + s_x w log(exp(r / w) - 1)`` with ``r = s_y (g(u) - a_0) / b`` and
      ``a_0 = a - s_y b h_w(s_x (x_ref - x0))`` the plateau (the worst level). A target no
      better than the plateau is reached at every x (``x* = -inf`` in the better direction);
    * quadratic (``eta = a + b xc + q xc^2``): not monotone, so ``x*`` is the root on the
      *rising branch*, where the mean increases as x improves (beyond the vertex when the
      curve is convex in the better direction, before it when concave). A concave curve
      whose maximum lies below the target never reaches it; a convex one whose minimum
      lies above it reaches it at every x. A convex curve also exceeds the target on its
      falling branch (x worse than the vertex), and a concave one falls back below it
      beyond the second root: both are left out (improving x there lowers the score).

    A draw *reaches* the target when improving x gets the mean there: for the line and
    the hockey stick when the oriented slope is positive, for the quadratic when its
    rising branch crosses the target; and under a bounded link when the target lies below
    that draw's ceiling ``1 - lapse``. Otherwise the draw's ``x*`` is infinitely far in the
    better direction (so the interval may be open).

    Parameters
    ----------
    fit : TransferFit
    target : float or dict of task -> float
        Target mean score (data units); one number for every task, or per task.
    ci_prob : float, default 0.9
    condition : str, optional
        For a fit with conditions, the condition the task is in (default the reference
        condition). Group effects are left out: the answer is for a typical group.
    return_draws : bool, default False
        Also return the draws of ``x*`` as an xarray.DataArray with dims (chain, draw,
        task) (``+inf`` / ``-inf`` as above).

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, xarray.DataArray)
        Indexed by task: ``target``, ``median``, interval bounds, ``p_reachable``,
        ``x_best_observed`` (the best x of the task in the fit), ``p_beyond_observed``
        (P(x* lies beyond it, in the better direction; unreachable draws count as
        beyond)) and ``beyond_observed`` (whether the median does).

    Raises
    ------
    DataValidationError
        A task not in the fit, a non-finite target, or (bounded link) a target outside
        ``[chance, 1 - lapse]`` (naming the task and the value).
    """
    _check_ci_prob(ci_prob)
    d = fit.design
    v = fit.variants
    post = fit.posterior["posterior"]
    if isinstance(target, Mapping):
        _check_label_types(fit, list(target))
        targets = {str(k): val for k, val in target.items()}
        unknown = [t for t in targets if t not in d.tasks]
        if unknown:
            raise DataValidationError(
                f"task(s) {_rows(unknown)} in target are not tasks of the fit {_rows(d.tasks)}")
    else:
        targets = {t: target for t in d.tasks}
    for t, val in targets.items():
        if isinstance(val, bool) or not isinstance(val, int | float | np.number) \
                or not np.isfinite(val):
            raise DataValidationError(
                f"target for task {t!r} must be a finite number, got {_plain(val)!r}")
    names = [t for t in d.tasks if t in targets]
    tidx = np.array([d.tasks.index(t) for t in names])
    y = np.array([float(targets[t]) for t in names])

    a = _draws(post, "intercept")[:, tidx]
    b = _draws(post, "slope")[:, tidx]
    if condition is not None:
        if v.condition_idx is None:
            raise DataValidationError("condition= needs a fit with conditions")
        if str(condition) not in v.conditions:
            raise DataValidationError(
                f"condition {condition!r} is not in the fit {list(v.conditions)}")
        c = v.conditions.index(str(condition))
        shift_a = _draws(post, "intercept_mu_condition")[:, c] - _draws(post, "intercept_mu")
        shift_b = _draws(post, "slope_mu_condition")[:, c] - _draws(post, "slope_mu")
        a, b = a + shift_a[:, None], b + shift_b[:, None]
    in_range = np.ones_like(a, dtype=bool)
    if v.link == "identity":
        eta = np.broadcast_to(y, a.shape)
    else:
        chance = _per_task_value(fit, v.chance)
        chance = np.zeros(len(names)) if chance is None else chance[tidx]
        lapse = v.lapse
        lap_fixed = 0.0 if lapse is True else float(lapse)
        for t, val, c in zip(names, y, chance, strict=True):
            if not c <= val <= 1.0 - lap_fixed:
                raise DataValidationError(
                    f"target {float(val)!r} for task {t!r} lies outside the reachable range "
                    f"[chance, 1 - lapse] = [{c:g}, {1.0 - lap_fixed:g}] of link={v.link!r}")
        lap = _draws(post, "lapse")[:, tidx] if lapse is True else lap_fixed
        u = (y - chance) / (1.0 - chance - lap)
        in_range = np.broadcast_to(u < 1.0, a.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.broadcast_to(link_function(np.clip(u, 0.0, 1.0), v.link), a.shape)
    tstar = _oriented_inverse(fit, a, b, eta, tidx, post)
    tstar = np.where(in_range, tstar, np.inf)
    reach = tstar < np.inf
    better = 1.0 if d.x_better == "higher" else -1.0
    xstar = d.x_ref + better * tstar
    q = [0.5, (1 - ci_prob) / 2, (1 + ci_prob) / 2]
    # Order statistics (no interpolation): draws that never reach the target are infinite.
    med, lo, hi = np.quantile(xstar, q, axis=0, method="inverted_cdf")
    table_x = d.task_table()
    best = (table_x["x_max"] if better > 0 else table_x["x_min"]).to_numpy()[tidx]
    lb, ub = _ci_names(ci_prob)
    out = pd.DataFrame({
        "target": y, "median": med, lb: lo, ub: hi,
        "p_reachable": reach.mean(axis=0),
        "x_best_observed": best,
        "p_beyond_observed": (better * (xstar - best) > 0).mean(axis=0),
        "beyond_observed": better * (med - best) > 0,
    }, index=pd.Index(names, name="task"))
    out.attrs["ci_prob"] = ci_prob
    if not return_draws:
        return out
    import xarray as xr

    C, D = post.sizes["chain"], post.sizes["draw"]
    da = xr.DataArray(xstar.reshape(C, D, len(names)), dims=("chain", "draw", "task"),
                      coords={"chain": post["chain"].values, "draw": post["draw"].values,
                              "task": names}, name="x_required")
    return out, da


def _plain(value):
    """A numpy scalar as the Python value (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_label_types(fit, keys) -> None:
    want = (fit.spec.get("label_kinds") or {}).get("task")
    if want is None:
        return
    got = label_kind(pd.Series(list(keys)))
    if got != want:
        raise DataValidationError(
            f"the target's task keys are {got} labels (e.g. {_plain(keys[0])!r}) but the "
            f"fit's task labels are {want}")
