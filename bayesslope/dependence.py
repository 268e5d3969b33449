"""Residual clustering by an unmodelled grouping column: the check, its table, its warning.

A fit treats its rows as independent given the task's line. When rows share a unit the
model does not know about (checkpoints of one model, seeds of one run), their residuals
are correlated and every interval is too narrow. After a fit, :func:`check_dependence`
looks for that trace, column by column:

1. **Residuals** (:func:`posterior_residuals`): the posterior mean residual of each row on
   the scale of the linear predictor. For the identity link this is ``y - E[eta]``; for a
   bounded link it is the GLM *working residual* ``(y - p) / ((1 - chance - lapse) F'(eta))``
   at the posterior mean ``eta`` (``p`` its mean score): the first-order link-scale residual
   that needs no smoothing of 0 or 1 proportions and is the quantity whose clustering
   inflates the variance of a link-scale slope.
2. **Candidates** (:func:`candidate_columns`): columns of the original frame other than
   those the model uses, whose levels repeat within tasks. Skipped, with the reason: a
   single level, all-unique levels within every task, only missing values, numeric
   measurements (non-integer numbers with mostly unique values). Missing values of a
   candidate drop those rows from its test only.
3. **Statistic** (:func:`clustering_table`): the share of within-task variance between the
   task x level cells (one-way ANOVA pooled over tasks, ``sum_t SSB_t / sum_t SST_t``) of the
   residuals plus that of the x-weighted residuals ``(x - mean_t x) r`` (clustered slopes),
   against its permutation null: residuals shuffled within task, x and labels kept with their
   rows. A column is flagged when its permutation p-value is at most ``alpha / K``
   (Bonferroni over the ``K`` columns tested), so the chance of any false alarm in a fit with
   independent rows is at most ``alpha``.
4. **Size, in words.** The ANOVA intraclass correlation of the residuals within cells, and
   an interval-inflation factor for the slopes (:func:`slope_inflation`): the ratio of the
   slope sd the recommended fix (``group=column, group_nesting="nested"``) would give to the
   one the fit gave, from moment estimates of the nested model's variance components
   (:func:`variance_components`) and the generalized least-squares slope variance under
   them; the median over tasks. validation/DEPENDENCE.md measures how well it predicts the
   refits.

The transfer matrix (:func:`check_transfer_dependence`) runs the same statistic with the
pair in the role of the task, on columns that are properties of the units
(:func:`unit_candidate_columns`) and on residuals standardized per pair
(:func:`pair_residuals`); its null permutes the levels over units, the same permutation in
every pair, because the pairs share their units.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from .exceptions import DependenceWarning

__all__ = [
    "ALPHA",
    "posterior_residuals",
    "candidate_columns",
    "clustering_table",
    "variance_components",
    "slope_inflation",
    "check_dependence",
    "unit_candidate_columns",
    "pair_residuals",
    "check_transfer_dependence",
    "warn_dependence",
    "dependence_to_dict",
    "dependence_from_dict",
]

ALPHA = 0.05  # family-wise false-alarm rate of one fit's check
_MIN_PERMUTATIONS = 199
_ORIENTATION_FLAGS = ("x_higher_is_better", "y_higher_is_better")
_MEASUREMENT_UNIQUE_SHARE = 0.5  # a non-integer column with more unique values is a measurement
_TABLE_COLUMNS = ["n_rows", "n_levels", "statistic", "p_value", "icc", "inflation", "flagged"]


def posterior_residuals(post, design, variants) -> np.ndarray:
    """Posterior mean residual of each design row on the linear-predictor scale.

    Parameters
    ----------
    post : xarray.Dataset or DataTree node
        The posterior group of a fit.
    design : TransferDesign
    variants : VariantData
        Link, chance floor and lapse of the fit.

    Returns
    -------
    numpy.ndarray, shape (n_obs,)
        ``y - E[eta]`` for the identity link; for a bounded link the working residual
        ``(y - p) / ((1 - chance - lapse) F'(eta))`` at the posterior mean ``eta``.
    """
    from .likelihoods import _lapse_obs, inverse_link_deriv, linear_predictor, response_mean

    post = post.to_dataset() if hasattr(post, "to_dataset") else post
    if not any(v in post for v in ("x_true", "x0")):
        # eta is linear in the parameters (no latent x, no hockey-stick kink): its
        # posterior mean is eta at their posterior means.
        post = post.mean(dim=("chain", "draw")).expand_dims(chain=1, draw=1)
    eta = linear_predictor(post, design, variants).mean(axis=(0, 1))
    if variants.link == "identity":
        return design.y - eta
    lapse = np.asarray(_lapse_obs(post, variants, design.task_idx))
    lapse = lapse.mean(axis=(0, 1)) if lapse.ndim == 3 else float(lapse)
    chance = 0.0 if variants.chance is None else variants.chance
    p = response_mean(eta, variants.link, chance, lapse)
    scale = (1.0 - chance - lapse) * inverse_link_deriv(eta, variants.link)
    return (design.y - p) / np.maximum(scale, 1e-12)


def _positions(df: pd.DataFrame, design) -> np.ndarray:
    from .variant_data import _positions as positions

    return positions(df, design)


def candidate_columns(df: pd.DataFrame, design, used=()) -> tuple[dict, dict]:
    """Columns of the frame that could group rows the model treats as independent.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame the design was prepared from (before any ``dropna``).
    design : TransferDesign
    used : iterable of str
        Further columns the model already uses (n_eval, chance, x_se, condition, group).

    Returns
    -------
    candidates : dict of str to ndarray of int64
        Level codes per design row (``-1`` where the value is missing).
    skipped : dict of str to str
        Why each other column was not tested.
    """
    excluded = set(design.columns.values()) | set(_ORIENTATION_FLAGS) | set(used)
    pos = _positions(df, design)
    task_idx = design.task_idx
    candidates: dict = {}
    skipped: dict = {}
    for name in df.columns:
        if name in excluded:
            continue
        key = str(name)
        col = df[name].iloc[pos]
        present = col.notna().to_numpy()
        if not present.any():
            skipped[key] = "only missing values"
            continue
        values = col[present]
        is_number = (pd.api.types.is_numeric_dtype(values)
                     and not pd.api.types.is_bool_dtype(values))
        n_unique = values.nunique()
        if n_unique < 2:
            skipped[key] = "a single level"
            continue
        if is_number:
            numbers = values.to_numpy(dtype="float64")
            integral = np.all(np.isfinite(numbers) & (numbers == np.round(numbers)))
            if not integral and n_unique > _MEASUREMENT_UNIQUE_SHARE * len(values):
                skipped[key] = "a numeric measurement (mostly unique values)"
                continue
        labels = values.astype(str).to_numpy()
        _, codes_present = np.unique(labels, return_inverse=True)
        codes = np.full(design.n_obs, -1, dtype=np.int64)
        codes[present] = codes_present
        if not _repeats_within_tasks(codes, task_idx):
            skipped[key] = ("no level repeats within a task with another level "
                            "(all-unique or constant within every task)")
            continue
        candidates[key] = codes
    return candidates, skipped


def _repeats_within_tasks(codes: np.ndarray, task_idx: np.ndarray) -> bool:
    """True when some task has >= 2 levels and a level with >= 2 rows."""
    ok = codes >= 0
    if not ok.any():
        return False
    pairs, sizes = np.unique(np.column_stack([task_idx[ok], codes[ok]]), axis=0,
                             return_counts=True)
    levels = np.bincount(pairs[:, 0])
    biggest = np.zeros(levels.size, dtype=np.int64)
    np.maximum.at(biggest, pairs[:, 0], sizes)
    return bool(((levels >= 2) & (biggest >= 2)).any())


def _cells(task: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Compact cell index of each row (task x level)."""
    return np.unique(task * (codes.max() + 1) + codes, return_inverse=True)[1]


def _starts(sorted_idx: np.ndarray) -> np.ndarray:
    """First position of each block of a sorted index array."""
    return np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])


def _within_task_permutations(v: np.ndarray, task: np.ndarray, n_perm: int, rng) -> np.ndarray:
    """``v`` under ``n_perm`` random permutations within task, shape (n_perm, n).

    ``task`` must be sorted (contiguous blocks), so position ``i`` keeps its task.
    """
    out = np.empty((n_perm, v.size))
    starts = _starts(task)
    for lo, hi in zip(starts, np.r_[starts[1:], task.size], strict=True):
        out[:, lo:hi] = rng.permuted(np.broadcast_to(v[lo:hi], (n_perm, hi - lo)), axis=1)
    return out


def _between(v, v_perm, cell, task):
    """Pooled within-task between-cell and total sums of squares.

    Rows must be sorted by cell (and so by task). Returns ``(ssb, sst)`` of ``v`` (shape
    (n,)) and the same two arrays for the rows of ``v_perm`` (``v`` under permutations).
    """
    c_start, t_start = _starts(cell), _starts(task)
    cell_n = np.diff(np.r_[c_start, cell.size])
    task_n = np.diff(np.r_[t_start, task.size])

    def parts(u):
        u2 = np.atleast_2d(u)
        t_part = (np.square(np.add.reduceat(u2, t_start, axis=1)) / task_n).sum(axis=1)
        ssb = (np.square(np.add.reduceat(u2, c_start, axis=1)) / cell_n).sum(axis=1) - t_part
        return ssb, np.square(u2).sum(axis=1) - t_part

    ssb, sst = parts(v)
    return float(ssb[0]), float(sst[0]), *parts(v_perm)


def _unit_permutation_null(values, task, units, codes, strata, n_perm: int, rng,
                           batch: int = 64, cache: dict | None = None) -> list:
    """``(ssb, sst)`` of each of ``values`` when the levels are permuted over units.

    The same sums of squares as :func:`_between`, for ``n_perm`` permutations of the
    unit -> level map (within ``strata``), each applied to every task at once. A task's
    total and its sum of squares do not depend on the levels; only the cells' sums
    ``S[t, l]`` do. When every unit is in every task, the cells' sizes are the levels'
    sizes ``N_l`` and ``sum_t S[t, l]^2 = sum_{u, v in l} G[u, v]`` with ``G`` the units'
    Gram matrix over tasks: per permutation a gather of ``sum_l N_l^2`` entries of ``G``,
    whatever the number of tasks. Otherwise, per batch of permutations, matrix products
    of the (unit x task) table with the one-hot (unit x level) maps. ``cache`` keeps the
    tables of ``values`` for the next column tested on the same rows. Products by
    ``einsum`` (no BLAS): on a loaded machine multi-threaded BLAS calls on these small
    matrices were 300x slower.
    """
    uu, u_first, u_inv = np.unique(units, return_index=True, return_inverse=True)
    tt, t_inv = np.unique(task, return_inverse=True)
    n_u, n_t = uu.size, tt.size
    level = np.asarray(codes)[u_first]  # levels are properties of units
    n_lev = int(level.max()) + 1
    lev_n = np.bincount(level, minlength=n_lev)
    present = np.zeros((n_u, n_t))
    present[u_inv, t_inv] = 1.0
    task_n = present.sum(axis=0)
    block_pairs = int(np.square(lev_n).sum())
    gram = bool(present.all()) and block_pairs <= n_u * n_t
    cache = {} if cache is None else cache
    if cache.get("gram") != gram:
        cache.clear()
        cache["gram"] = gram
        cache["tables"], cache["fixed"] = [], []
        for v in values:
            table = np.zeros((n_u, n_t))
            table[u_inv, t_inv] = v
            t_part = float((np.square(table.sum(axis=0)) / task_n).sum())
            cache["fixed"].append((t_part, float(np.square(v).sum()) - t_part))
            cache["tables"].append(np.einsum("ut,vt->uv", table, table) if gram else table)
    tables, fixed = cache["tables"], cache["fixed"]
    # Permutations of the levels among units of one stratum (sorted blocks).
    stratum = (np.zeros(n_u, dtype=np.int64) if strata is None
               else np.asarray(strata, dtype=np.int64)[uu])
    by = np.argsort(stratum, kind="stable")
    perms = np.empty((n_perm, n_u), dtype=np.int64)
    perms[:, by] = _within_task_permutations(level[by], stratum[by], n_perm, rng)
    q = np.zeros((len(values), n_perm))
    if gram:
        # Positions (i, j) inside each level's block of the units sorted by level.
        starts = np.r_[0, np.cumsum(lev_n)[:-1]]
        blk_i = np.concatenate([s + np.repeat(np.arange(n), n)
                                for s, n in zip(starts, lev_n, strict=True)])
        blk_j = np.concatenate([s + np.tile(np.arange(n), n)
                                for s, n in zip(starts, lev_n, strict=True)])
        weight = np.repeat(1.0 / np.maximum(lev_n, 1), np.square(lev_n))
        step = max(1, 4_000_000 // max(block_pairs, 1))
        for lo in range(0, n_perm, step):
            order = np.argsort(perms[lo:lo + step], axis=1, kind="stable")
            flat = order[:, blk_i] * n_u + order[:, blk_j]
            for i, g in enumerate(tables):
                q[i, lo:lo + step] = np.einsum("bk,k->b", np.take(g.ravel(), flat), weight)
    else:
        from scipy import sparse

        # The (perm x level, unit) one-hot maps as a sparse matrix: a product with a
        # (unit x task) table costs units x tasks per permutation, not x levels too (the
        # dense one-hot product took ~30 s per column for 121 units x 1,332 pairs x 69
        # levels x 2,000 permutations). Batches keep each (perm x level, task) array small.
        step = max(1, min(batch * 64, 2_000_000 // max(n_lev * n_t, 1)))
        for lo in range(0, n_perm, step):
            hi = min(lo + step, n_perm)
            rows = (np.arange(hi - lo)[:, None] * n_lev + perms[lo:hi]).ravel()
            cols = np.tile(np.arange(n_u), hi - lo)
            onehot = sparse.csr_matrix((np.ones(rows.size), (rows, cols)),
                                       shape=((hi - lo) * n_lev, n_u))
            cell_n = onehot @ present  # (perm x level, task)
            inv_n = np.where(cell_n > 0, 1.0 / np.maximum(cell_n, 1.0), 0.0)
            for i, table in enumerate(tables):
                sums = onehot @ table
                q[i, lo:hi] = (np.square(sums) * inv_n).sum(axis=1).reshape(
                    hi - lo, n_lev).sum(axis=1)
    return [(q[i] - t_part, np.full(n_perm, sst)) for i, (t_part, sst) in enumerate(fixed)]


def _share(ssb, sst):
    ssb, sst = np.asarray(ssb, dtype=float), np.asarray(sst, dtype=float)
    return np.where(sst > 0, ssb / np.where(sst > 0, sst, 1.0), 0.0)


def _moments(x, e, idx):
    """Per-group n, sum x, sum x^2, sum e, sum x e, sum e^2 (rows of ``idx``)."""
    n = int(idx.max()) + 1
    return [np.bincount(idx, weights=w, minlength=n)
            for w in (np.ones_like(x), x, x * x, e, x * e, e * e)]


def _task_ols_residuals(r, xc, task):
    """Residuals of ``r`` after a least-squares line per task (the ungrouped model's mean)."""
    n, sx, sxx, sr, sxr, _ = _moments(xc, r, task)
    n = np.maximum(n, 1)
    xbar, rbar = sx / n, sr / n
    cxx = sxx - n * xbar**2
    slope = np.where(cxx > 0, (sxr - n * xbar * rbar) / np.where(cxx > 0, cxx, 1.0), 0.0)
    return r - rbar[task] - slope[task] * (xc - xbar[task])


def variance_components(r, xc, task, codes, *, random_slopes: bool = True) -> dict:
    """Moment estimates of the grouped model's variance components from residuals.

    The nested grouped model adds to each task x level cell an independent random
    intercept (variance ``tau2``) and slope (variance ``omega2``, on the model's covariate
    ``xc``). From the residuals with each task's least-squares line removed:

    * ``sigma2``: pooled residual variance around a line per cell (cells with >= 3 rows and
      varying x), else around each cell's mean;
    * ``omega2``: the DerSimonian-Laird estimate from the cells' slopes and their
      sampling variances ``sigma2 / Sxx_g`` (the heterogeneity statistic ``Q`` less its
      null mean, floored at 0), at most what the cells' means allow;
    * ``tau2``: between-cell variance of the cell means, less their sampling variance and
      the part the random slopes explain, with the degrees of freedom the task lines used.

    With ``random_slopes=False`` (the fix has random intercepts only, as
    ``fit_transfer_matrix(group=...)``), ``omega2`` is 0.

    Returns
    -------
    dict
        ``D`` (diag(tau2, omega2)), ``tau2``, ``omega2``, ``sigma2`` and ``total2`` (the
        residual variance the ungrouped model sees).
    """
    e = _task_ols_residuals(r, xc, task)
    tasks = np.unique(task)
    total2 = float(np.square(e).sum() / max(e.size - 2 * tasks.size, 1))
    cell = _cells(task, codes)
    n, sx, sxx, se, sxe, see = _moments(xc, e, cell)
    ct = np.zeros(n.size, dtype=np.int64)
    ct[cell] = task
    xbar, ebar = sx / n, se / n
    cxx = sxx - n * xbar**2  # within-cell Sxx
    ok = (n >= 3) & (cxx > 1e-12 * np.maximum(sxx, 1e-300))
    omega2 = 0.0
    if ok.any() and (n[ok] - 2).sum() > 0:
        slope = np.where(ok, (sxe - n * xbar * ebar) / np.where(ok, cxx, 1.0), 0.0)
        rss = (see - n * ebar**2) - slope**2 * cxx
        sigma2 = float(rss[ok].sum() / (n[ok] - 2).sum())
        w = np.where(ok, cxx / max(sigma2, 1e-300), 0.0)
        sw = np.bincount(ct, weights=w)
        swb = np.bincount(ct, weights=w * slope)
        sw2 = np.bincount(ct, weights=w * w)
        k_ok = np.bincount(ct, weights=ok.astype(float))
        used = k_ok >= 2
        bbar = np.where(sw > 0, swb / np.where(sw > 0, sw, 1.0), 0.0)
        q = float((w * (slope - bbar[ct]) ** 2)[used[ct]].sum())
        df_q = float((k_ok[used] - 1).sum())
        c = float((sw - sw2 / np.where(sw > 0, sw, 1.0))[used].sum())
        # Plain DL (Q less its null mean, df). The factor predicts the grouped *Bayesian*
        # fit, whose random-slope sd keeps posterior mass away from 0 even when the data
        # barely inform it; a conservative estimate (Q less its null 95% quantile) made
        # the factor 10% low on 64 refits, DL 6% (validation/DEPENDENCE.md, section 3).
        if c > 0 and df_q > 0 and random_slopes:
            omega2 = max(0.0, (q - df_q) / c)
    else:
        within_df = int((n - 1).sum())
        sigma2 = float((see - n * ebar**2).sum() / within_df) if within_df > 0 else total2
    # Cell means, centred per task (unweighted), and the df the task lines took from them.
    k = np.bincount(ct).astype(float)
    emean = np.bincount(ct, weights=ebar) / np.maximum(k, 1)
    tn, tsx, tsxx, *_ = _moments(xc, xc, task)
    t_xbar = tsx / np.maximum(tn, 1)
    t_cxx = tsxx - tn * t_xbar**2
    between_x = np.bincount(ct, weights=n * (xbar - t_xbar[ct]) ** 2)
    share_between = np.where(t_cxx > 0, between_x / np.where(t_cxx > 0, t_cxx, 1.0), 0.0)
    df_b = float((k - 1 - np.clip(share_between, 0.0, 1.0))[k >= 2].sum())
    if df_b > 0:
        multi = (k >= 2)[ct]
        between = float(((ebar - emean[ct]) ** 2)[multi].sum() / df_b)
        excess = max(0.0, between - float(np.mean((sigma2 / n)[multi])))
        # The cells' means bound how much variance random slopes can have at their x.
        x2 = float(np.mean(xbar[multi] ** 2))
        if x2 > 0:
            omega2 = min(omega2, excess / x2)
        tau2 = max(0.0, excess - omega2 * x2)
    else:
        tau2 = 0.0
    return {"D": np.diag([tau2, omega2]), "tau2": tau2, "omega2": omega2,
            "sigma2": float(sigma2), "total2": total2}


def slope_inflation(r, xc, task, codes, *, random_slopes: bool = True) -> np.ndarray:
    """Per task: predicted (grouped / ungrouped) ratio of the slope's posterior sd.

    The ungrouped model's slope variance is ``total2 / Sxx``; the grouped model's is that
    of the generalized least-squares slope with the cells' random intercepts and slopes
    (:func:`variance_components`): ``[(sum_g X_g' V_g^-1 X_g)^-1]_11`` with
    ``V_g = sigma2 I + X_g D X_g'``, ``X_g = [1, xc]`` the rows of cell ``g``. Between-cell
    x variation then counts less and within-cell variation more: with all x variation
    between cells this is the design effect ``sqrt(1 + (m - 1) ICC)``; with all of it
    within cells it is ``sqrt(1 - ICC)``, below 1. ``random_slopes=False``: the fix has
    random intercepts only (:func:`variance_components`).

    Returns
    -------
    numpy.ndarray
        One ratio per task index present in ``task`` (sorted), NaN where undefined.
    """
    comp = variance_components(r, xc, task, codes, random_slopes=random_slopes)
    D, s2, tot2 = comp["D"], comp["sigma2"], comp["total2"]
    tasks = np.unique(task)
    tn, tsx, tsxx, *_ = _moments(xc, xc, task)
    sxx_t = (tsxx - tsx**2 / np.maximum(tn, 1))[tasks]
    if s2 <= 0:
        return np.full(tasks.size, np.nan)
    cell = _cells(task, codes)
    n, sx, sxx, *_ = _moments(xc, xc, cell)
    cell_task = np.zeros(n.size, dtype=np.int64)
    cell_task[cell] = task
    M = np.stack([np.stack([n, sx], -1), np.stack([sx, sxx], -1)], -2) / s2
    per_cell = np.linalg.solve(np.eye(2) + M @ D, M)  # X' V^-1 X of each cell
    prec = np.zeros((int(task.max()) + 1, 2, 2))
    np.add.at(prec, cell_task, per_cell)
    prec = prec[tasks]
    det = prec[:, 0, 0] * prec[:, 1, 1] - prec[:, 0, 1] * prec[:, 1, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        var_gls = prec[:, 0, 0] / det
        out = np.sqrt(var_gls / (tot2 / sxx_t))
    return np.where((sxx_t > 0) & (det > 0), out, np.nan)


def _summary_inflation(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def clustering_table(residuals, xc, task_idx, candidates: dict, *, alpha: float = ALPHA,
                     n_permutations: int | None = None, rng=None, units=None, strata=None,
                     random_slopes: bool = True) -> pd.DataFrame:
    """Test each candidate column for clustering of the residuals within tasks.

    Parameters
    ----------
    residuals, xc, task_idx : ndarray, shape (n_obs,)
        Residuals, the model's (oriented, centered) covariate and the task index per row.
    candidates : dict of str to ndarray of int64
        Level codes per row (``-1`` = missing: the row is left out of that column's test).
    alpha : float, default 0.05
        Family-wise false-alarm rate: a column is flagged when ``p <= alpha / K``.
    n_permutations : int, optional
        Permutations of the null; default enough that ``alpha / K`` is 20 permutations
        (at least 199).
    rng : numpy.random.Generator or int, optional
    units : ndarray of int, shape (n_obs,), optional
        The unit of each row, when one unit has rows in several tasks (the pairs of a
        transfer matrix share their units). The levels are then properties of units and
        the null permutes them over units, the same permutation in every task, instead of
        the residuals within each task: a unit's residuals are correlated across tasks,
        and independent per-task shuffles would make the null far too narrow (false
        alarms well above ``alpha``).
    strata : ndarray of int, shape (n_units,), optional
        With ``units``: levels are permuted only among units of one stratum (the groups
        the model already has).
    random_slopes : bool, default True
        Whether the fix the ``inflation`` column predicts has random slopes
        (:func:`slope_inflation`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``column``: ``n_rows`` and ``n_levels`` tested, ``statistic`` (share of
        within-task residual variance between cells), ``p_value`` (permutation),
        ``icc`` (ANOVA intraclass correlation of residuals within cells, floored at 0),
        ``inflation`` (predicted ratio of slope sds, grouped / this fit; < 1 possible)
        and ``flagged``; sorted by ``p_value`` then ``icc``. ``attrs``: ``alpha``,
        ``threshold`` and ``n_permutations``.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha should be in (0, 1) but got {alpha!r}")
    rng = np.random.default_rng(rng)
    k = max(len(candidates), 1)
    threshold = alpha / k
    if n_permutations is None:
        n_permutations = max(_MIN_PERMUTATIONS, math.ceil(20 / threshold) - 1)
    r_all = np.asarray(residuals, dtype=float)
    xc_all = np.asarray(xc, dtype=float)
    t_all = np.asarray(task_idx, dtype=np.int64)
    rows = {}
    perm_cache: dict = {}
    for name, codes_all in candidates.items():
        keep = np.asarray(codes_all) >= 0
        rows_kept = np.flatnonzero(keep)
        codes_kept = np.asarray(codes_all)[keep]
        # Rows sorted by cell (task x level), hence by task: blocks for the sums below.
        cell_kept = _cells(t_all[keep], codes_kept)
        sort = np.argsort(cell_kept, kind="stable")
        order, cell, codes = rows_kept[sort], cell_kept[sort], codes_kept[sort]
        r, t = r_all[order], t_all[order]
        n_cells = int(cell.max()) + 1
        # One set of within-task permutations per set of rows kept: the rows here are
        # sorted by task like those permuted, so each task block is a uniformly random
        # permutation of this task's residuals whatever the order of the rows inside it.
        key = keep.tobytes()
        if units is None and key not in perm_cache:
            by_task = rows_kept[np.argsort(t_all[keep], kind="stable")]
            perm_cache[key] = _within_task_permutations(r_all[by_task], t_all[by_task],
                                                        n_permutations, rng)
        # Residuals and x-weighted residuals (task-centred x): clustering of intercepts
        # and of slopes. One statistic, the sum of their between-cell shares. Only the
        # residuals are permuted: x stays with its row and label (it may well cluster by
        # label; the null is that the residuals do not).
        x = xc_all[order]
        x = x - (np.bincount(t, weights=x) / np.maximum(np.bincount(t), 1))[t]
        if units is None:
            r_perm = perm_cache[key]
            obs, sst, null_r, sst_r = _between(r, r_perm, cell, t)
            obs_w, sst_w, null_w, sst_wp = _between(x * r, x * r_perm, cell, t)
        else:
            obs, sst, *_ = _between(r, r, cell, t)
            obs_w, sst_w, *_ = _between(x * r, x * r, cell, t)
            (null_r, sst_r), (null_w, sst_wp) = _unit_permutation_null(
                (r, x * r), t, np.asarray(units)[order], codes, strata, n_permutations, rng,
                cache=perm_cache.setdefault(key, {}))
        stat = _share(obs, sst) + _share(obs_w, sst_w)
        null = _share(null_r, sst_r) + _share(null_w, sst_wp)
        p_value = (1 + np.count_nonzero(null >= stat - 1e-12 * abs(stat))) / (n_permutations + 1)
        t_n = np.bincount(t)
        valid = t_n > 0
        # ANOVA ICC pooled over tasks: cells nested in tasks.
        cell_n = np.bincount(cell)
        n_tasks = int(valid.sum())
        df_b = n_cells - n_tasks
        df_w = r.size - n_cells
        cell_task = np.zeros(n_cells, dtype=np.int64)
        cell_task[cell] = t
        if df_b > 0 and df_w > 0 and sst > 0:
            msb = obs / df_b
            msw = (sst - obs) / df_w
            m0 = (r.size - (np.square(cell_n) / t_n[cell_task]).sum()) / df_b
            icc = max(0.0, float((msb - msw) / (msb + (m0 - 1.0) * msw)))
        else:
            icc = float("nan")
        rows[name] = {
            "n_rows": int(r.size),
            "n_levels": int(np.unique(codes).size),
            "statistic": float(stat),
            "p_value": float(p_value),
            "icc": icc,
            "inflation": _summary_inflation(slope_inflation(r, xc_all[order], t, codes,
                                                            random_slopes=random_slopes)),
            "flagged": bool(p_value <= threshold),
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=_TABLE_COLUMNS)
    table.index.name = "column"
    if len(table):
        table = table.sort_values(["p_value", "icc"], ascending=[True, False], kind="stable")
    table["flagged"] = table["flagged"].astype(bool)
    table.attrs.update(alpha=float(alpha), threshold=float(threshold),
                       n_permutations=int(n_permutations))
    return table


def check_dependence(df: pd.DataFrame, design, posterior, variants, *,
                     alpha: float = ALPHA, n_permutations: int | None = None,
                     random_seed: int | None = None) -> pd.DataFrame:
    """Residual clustering table of a fit (see the module docstring).

    Parameters
    ----------
    df : pandas.DataFrame
        The frame the fit was made from.
    design : TransferDesign
    posterior : xarray.DataTree
        The fit's DataTree (its ``posterior`` group is read).
    variants : VariantData
    alpha, n_permutations
        As in :func:`clustering_table`.
    random_seed : int, optional
        Seed of the permutations (default a fixed one: the check is deterministic).

    Returns
    -------
    pandas.DataFrame
        :func:`clustering_table`; ``attrs["skipped"]`` maps untested columns to the reason.
    """
    used = [c for c in variants.columns.values() if isinstance(c, str) and c in df.columns]
    candidates, skipped = candidate_columns(df, design, used)
    residuals = (posterior_residuals(posterior["posterior"], design, variants)
                 if candidates else np.zeros(design.n_obs))
    seq = np.random.SeedSequence(0 if random_seed is None else random_seed, spawn_key=(22,))
    table = clustering_table(residuals, design.xc, design.task_idx, candidates, alpha=alpha,
                             n_permutations=n_permutations, rng=np.random.default_rng(seq))
    table.attrs["skipped"] = skipped
    return table


def unit_candidate_columns(df: pd.DataFrame, design, used=()) -> tuple[dict, dict]:
    """Columns of a transfer matrix's frame that could group its units.

    A candidate is a property of the unit (constant over the unit's rows), e.g. the
    ``model`` of a checkpoint, whose levels repeat over units.

    Parameters
    ----------
    df : pandas.DataFrame
        The long frame the matrix was fitted from.
    design : PairDesign
    used : iterable of str
        Further columns the fit uses (e.g. an ``n_eval`` column).

    Returns
    -------
    candidates : dict of str to ndarray of int64
        Level code of each unit of ``design.units`` (``-1`` where missing).
    skipped : dict of str to str
        Why each other column was not tested.
    """
    cols = design.columns
    excluded = ({cols["unit"], cols["task"], cols["y"], cols.get("group")}
                | set(_ORIENTATION_FLAGS) | set(used))
    unit_col = df[cols["unit"]]
    keep = unit_col.notna().to_numpy().copy()
    keep[keep] = unit_col[keep].astype(str).isin(set(design.units)).to_numpy()
    unit_s = unit_col[keep].astype(str).to_numpy()
    sub = df.loc[keep]
    index = pd.Index(design.units)
    group = design.unit_group
    candidates: dict = {}
    skipped: dict = {}
    for name in sub.columns:
        if name in excluded:
            continue
        key = str(name)
        col = sub[name]
        present = col.notna().to_numpy()
        if not present.any():
            skipped[key] = "only missing values"
            continue
        labels = col[present].astype(str).to_numpy()
        per_unit = pd.DataFrame({"u": unit_s[present], "v": labels}).groupby("u")["v"]
        if (per_unit.nunique() > 1).any():
            skipped[key] = "varies within a unit (not a property of the unit)"
            continue
        unit_label = per_unit.first().reindex(index)
        found = unit_label.notna().to_numpy()
        values = col[present]
        n_unique = int(unit_label[found].nunique())
        if n_unique < 2:
            skipped[key] = "a single level"
            continue
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.to_numpy(dtype="float64")
            integral = np.all(np.isfinite(numbers) & (numbers == np.round(numbers)))
            if not integral and n_unique > _MEASUREMENT_UNIQUE_SHARE * found.sum():
                skipped[key] = "a numeric measurement (mostly unique values)"
                continue
        _, codes_found = np.unique(unit_label[found].to_numpy(dtype=str), return_inverse=True)
        codes = np.full(len(index), -1, dtype=np.int64)
        codes[found] = codes_found
        if np.bincount(codes_found).max() < 2:
            skipped[key] = "all-unique (each unit its own level)"
            continue
        if group is not None and _nested_in(codes, group):
            skipped[key] = (f"constant within each level of group={cols['group']!r} "
                            "(already modelled)")
            continue
        candidates[key] = codes
    return candidates, skipped


def _nested_in(codes: np.ndarray, group: np.ndarray) -> bool:
    """True when every group has at most one level of ``codes`` (missing ignored)."""
    ok = codes >= 0
    pairs = np.unique(np.column_stack([group[ok], codes[ok]]), axis=0)
    return bool(np.bincount(pairs[:, 0]).max() <= 1)


def pair_residuals(design, table: pd.DataFrame, likelihood: str) -> np.ndarray:
    """Residual of every pair observation at the posterior mean line, standardized per pair.

    ``y - (a + b x)`` on the pair's standardized scores (normal, Student-t); the probit
    working residual ``(k / n - Phi(eta)) / phi(eta)`` for the binomial. With groups (the
    fit's ``group=``) each pair x group mean is removed, a stand-in for the group
    intercepts the fit does not keep. Divided by each pair's residual sd, so that every
    pair weighs the same in the pooled test.

    Returns
    -------
    numpy.ndarray, shape (n_obs,)
        Aligned with ``design.x``.
    """
    pair = design.pair_idx
    a = table["intercept_mean"].to_numpy()[pair]
    b = table["mean"].to_numpy()[pair]
    eta = a + b * design.x
    if likelihood == "binomial":
        from scipy.special import ndtr

        from .pairs.fit import _binomial_counts

        counts = _binomial_counts(design)
        dens = np.exp(-0.5 * eta**2) / np.sqrt(2.0 * np.pi)
        r = (counts["k"] / counts["n"] - ndtr(eta)) / np.maximum(dens, 1e-12)
    else:
        r = design.y - eta
    n = np.bincount(pair, minlength=design.n_pairs).astype(float)
    dof = n - 2.0
    if design.unit_group is not None:
        g = design.unit_group[design.observation_units()]
        cell = _cells(pair, g)
        r = r - (np.bincount(cell, weights=r) / np.bincount(cell))[cell]
        dof = n - 1.0 - np.bincount(pair, weights=1.0 / np.bincount(cell)[cell])
    sd = np.sqrt(np.bincount(pair, weights=r * r, minlength=design.n_pairs)
                 / np.maximum(dof, 1.0))
    return r / np.where(sd > 0, sd, 1.0)[pair]


def check_transfer_dependence(df: pd.DataFrame, design, table: pd.DataFrame,
                              likelihood: str, *, used=(), alpha: float = ALPHA,
                              n_permutations: int | None = None,
                              random_seed: int | None = None) -> pd.DataFrame:
    """Residual clustering table of a transfer matrix, pooled over its pairs.

    Per candidate column (:func:`unit_candidate_columns`), the statistic of
    :func:`clustering_table` with the pair in the role of the task (cells: pair x level)
    on :func:`pair_residuals`. Its null permutes the column's levels over units, the same
    permutation in every pair (within the fit's groups, when it has ``group=``): the
    pairs share their units, so per-pair shuffles would understate the null's spread.
    ``icc`` is the ANOVA ICC pooled over pairs; ``inflation`` the median over pairs of the
    predicted slope sd ratio under ``group=column`` (random intercepts per pair and group).

    Parameters
    ----------
    df : pandas.DataFrame
        The frame the matrix was fitted from.
    design : PairDesign
    table : pandas.DataFrame
        The matrix's fit-time per-pair table (``intercept_mean``, ``mean``).
    likelihood : str
    used : iterable of str
        Other columns the fit uses.
    alpha, n_permutations, random_seed
        As in :func:`check_dependence`.

    Returns
    -------
    pandas.DataFrame
        :func:`clustering_table`; ``attrs["skipped"]`` maps untested columns to the reason.
    """
    cand_units, skipped = unit_candidate_columns(df, design, used)
    units = design.observation_units()
    residuals = (pair_residuals(design, table, likelihood) if cand_units
                 else np.zeros(design.x.size))
    seq = np.random.SeedSequence(0 if random_seed is None else random_seed, spawn_key=(22,))
    out = clustering_table(residuals, design.x, design.pair_idx,
                           {c: codes[units] for c, codes in cand_units.items()},
                           alpha=alpha, n_permutations=n_permutations,
                           rng=np.random.default_rng(seq), units=units,
                           strata=design.unit_group, random_slopes=False)
    out.attrs["skipped"] = skipped
    return out


def warn_dependence(table: pd.DataFrame, *, grouped: str | None = None,
                    stacklevel: int = 2, matrix: bool = False) -> None:
    """Emit one :class:`DependenceWarning` naming the flagged columns, if any.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`check_dependence`.
    grouped : str, optional
        The column the fit already models with ``group=`` (the fix then names both).
    stacklevel : int
        Passed to :func:`warnings.warn`.
    matrix : bool, default False
        The table is a transfer matrix's (:func:`check_transfer_dependence`): the words
        and the fix are those of ``fit_transfer_matrix``.
    """
    flagged = table[table["flagged"]]
    if flagged.empty:
        return
    flagged = flagged.sort_values(["icc", "statistic"], ascending=False, kind="stable")
    top = flagged.index[0]
    row = flagged.iloc[0]
    p_text = (f"p < {1 / (table.attrs['n_permutations'] + 1) + 1e-12:.2g}"
              if row["p_value"] <= 1 / (table.attrs["n_permutations"] + 1) + 1e-12
              else f"p = {row['p_value']:.2g}")
    others = [str(c) for c in flagged.index[1:]]
    also = (f" Residuals also cluster by {', '.join(repr(c) for c in others)}."
            if others else "")
    args = f"group={top!r}" + ("" if matrix else ", group_nesting='nested'")
    what, where, result = (("units", "task pairs", "tm") if matrix
                           else ("rows", "tasks", "fit"))
    if grouped is None:
        fix = (f"If {what} sharing {top!r} "
               + ("belong to one system" if matrix else "are repeated measurements of one unit")
               + f" (e.g. checkpoints of one model), fit with {args}.")
    else:
        fix = (f"The fit models group={grouped!r}; if {top!r} is what the {what} repeat, "
               f"fit with {args} instead; if its levels recur across the groups (as a "
               f"training step does across models), the {what} share a pattern along "
               f"{top!r} that the straight lines miss.")
    warnings.warn(
        f"residuals of {what} sharing {top!r} are correlated within {where}: ICC "
        f"{row['icc']:.2f} ({p_text}, permutation test over {len(table)} candidate "
        f"column(s)); {_width_words(row['inflation'])} "
        f"{fix}{also} See {result}.dependence(); check_dependence=False turns this "
        "check off.",
        DependenceWarning,
        stacklevel=stacklevel + 1,
    )


def _width_words(factor: float) -> str:
    if not np.isfinite(factor):
        return "the slope estimates may change when the grouping is modelled."
    if factor >= 1.1:
        return f"slope intervals may be about {factor:.1f}x too narrow."
    return (f"the slope intervals' width may be about right (estimated factor {factor:.1f}), "
            "but the slope estimates may change when the grouping is modelled.")


def dependence_to_dict(table: pd.DataFrame) -> dict:
    """JSON-safe form of a :func:`check_dependence` table (kept in a fit's spec)."""
    records = []
    for name, row in table.iterrows():
        rec = {"column": str(name)}
        for c in _TABLE_COLUMNS:
            v = row[c]
            if c == "flagged":
                rec[c] = bool(v)
            elif c in ("n_rows", "n_levels"):
                rec[c] = int(v)
            else:
                rec[c] = None if not np.isfinite(v) else float(v)
        records.append(rec)
    return {"table": records, **{k: v for k, v in table.attrs.items()}}


def dependence_from_dict(info: dict) -> pd.DataFrame:
    """Inverse of :func:`dependence_to_dict`."""
    records = info.get("table", [])
    table = pd.DataFrame.from_records(records, columns=["column", *_TABLE_COLUMNS])
    table = table.set_index("column")
    for c in ("statistic", "p_value", "icc", "inflation"):
        table[c] = table[c].astype(float)
    table["flagged"] = table["flagged"].astype(bool)
    table["n_rows"] = table["n_rows"].astype(np.int64)
    table["n_levels"] = table["n_levels"].astype(np.int64)
    table.attrs.update({k: v for k, v in info.items() if k != "table"})
    return table
