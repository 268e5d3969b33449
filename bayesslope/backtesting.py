"""Backtests (``bs.backtest``): fit without held-out rows, predict them, score baselines.

:func:`backtest` is the check of the scaling-law papers (fit the small models, predict the
large ones) made honest: the Bayesian forecast's predictive interval is scored by its
coverage, and its point errors are set beside two per-task least-squares baselines fitted
to exactly the same training rows (see :mod:`bayesslope.baselines`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .baselines import BASELINES, fit_baseline
from .data import prepare_design
from .exceptions import DataValidationError
from .options import check_ci_prob as _check_ci_prob
from .options import ci_names as _ci_names
from .options import rows_text as _rows

__all__ = ["backtest", "BacktestResult", "holdout_mask", "METHODS"]

METHODS = ("bayes", *BASELINES)
_RULE = re.compile(r"^(best|worst|lowest_x|highest_x):(\d+(?:\.\d+)?)(%?)$")


def holdout_mask(df: pd.DataFrame, holdout, *, x: str = "x", unit: str | None = None,
                 x_better: str = "lower") -> pd.Series:
    """Which rows of ``df`` to hold out, as a boolean Series indexed like ``df``.

    Parameters
    ----------
    df : pandas.DataFrame
    holdout : bool array / Series, str or callable
        A boolean mask (array of ``len(df)`` or a Series aligned on ``df.index``); the name
        of a boolean column; a rule ``"<which>:<k>"`` or ``"<which>:<p>%"`` holding out all
        rows of the ``k`` (or ``p`` percent, rounded up) units ranked first, where
        ``<which>`` is ``best`` (best x by ``x_better``: the largest models when x is a
        loss), ``worst``, ``lowest_x`` or ``highest_x``; or a callable ``f(df) -> mask``.
    x : str, default "x"
        The x column (for rules).
    unit : str, optional
        Column naming the unit a rule ranks and holds out whole (e.g. ``"model"``): a unit's
        x is its best x over its rows (e.g. its last checkpoint). Default: each distinct x
        value is a unit (one model evaluated on every task).
    x_better : {"lower", "higher"}, default "lower"

    Returns
    -------
    pandas.Series of bool

    Raises
    ------
    DataValidationError
        An unknown rule or column, a mask of the wrong length or type, or a hold-out that
        keeps no rows (or holds out none).
    """
    if callable(holdout) and not isinstance(holdout, pd.Series | np.ndarray | list):
        holdout = holdout(df)
    if isinstance(holdout, str):
        if holdout in df.columns:
            mask = df[holdout]
            what = f"column {holdout!r}"
        else:
            mask = _rule_mask(df, holdout, x=x, unit=unit, x_better=x_better)
            what = f"rule {holdout!r}"
    elif isinstance(holdout, pd.Series):
        missing = df.index.difference(holdout.index)
        if len(missing):
            raise DataValidationError(
                f"the holdout mask has no value for rows {_rows(missing)} of df")
        mask = holdout.reindex(df.index)
        what = "the holdout mask"
    else:
        arr = np.asarray(holdout)
        if arr.shape != (len(df),):
            raise DataValidationError(
                f"holdout should be a boolean mask of length {len(df)}, a column name, a rule "
                f"like 'best:3' or a callable; got shape {arr.shape}")
        mask = pd.Series(arr, index=df.index)
        what = "the holdout mask"
    if not (pd.api.types.is_bool_dtype(mask) and not mask.isna().any()):
        raise DataValidationError(f"{what} should be boolean (True = hold out), got {mask.dtype}")
    mask = mask.astype(bool)
    if not mask.any():
        raise DataValidationError(f"{what} holds out no rows")
    if mask.all():
        raise DataValidationError(f"{what} holds out every row: nothing is left to fit")
    return mask


def _rule_mask(df, rule: str, *, x: str, unit, x_better: str) -> pd.Series:
    m = _RULE.match(rule.strip())
    if m is None:
        raise DataValidationError(
            f"holdout={rule!r} is neither a column nor a rule; rules are '<which>:<k>' or "
            "'<which>:<p>%' with <which> one of ['best', 'worst', 'lowest_x', 'highest_x'], "
            "e.g. 'best:3' (the 3 units with the best x)")
    which, num, pct = m.groups()
    if x not in df.columns:
        raise DataValidationError(f"rule {rule!r} needs the x column {x!r}")
    xs = pd.to_numeric(df[x], errors="coerce")
    if which == "best":
        which = "lowest_x" if x_better == "lower" else "highest_x"
    elif which == "worst":
        which = "highest_x" if x_better == "lower" else "lowest_x"
    if unit is None:
        units = xs
    elif unit not in df.columns:
        raise DataValidationError(f"unit={unit!r} is not a column; df has {list(df.columns)}")
    else:
        units = df[unit]
    score = xs.groupby(units.to_numpy()).agg("min" if which == "lowest_x" else "max")
    score = score.sort_values(ascending=which == "lowest_x", kind="stable")
    k = math.ceil(float(num) * len(score) / 100) if pct else float(num)
    if k != int(k) or k < 1:
        raise DataValidationError(f"rule {rule!r}: the count should be a whole number >= 1")
    k = int(k)
    if k >= len(score):
        raise DataValidationError(
            f"rule {rule!r} would hold out all {len(score)} units"
            + ("" if unit is not None else " (distinct x values; pass unit='<column>')"))
    chosen = set(score.index[:k])
    return pd.Series(units.isin(chosen).to_numpy(), index=df.index)


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """What :func:`backtest` returns.

    Attributes
    ----------
    rows : pandas.DataFrame
        One row per held-out row (indexed like ``df``): ``task``, ``x``, ``actual``,
        ``new_task``, ``extrapolated`` and, per method (``bayes``, ``linear``,
        ``sigmoid``), ``<m>_mean``, ``<m>_eti90_lb``, ``<m>_eti90_ub``, ``<m>_covered``,
        ``<m>_abs_error``, ``<m>_rel_error`` (``abs_error / |actual|``, NaN at 0).
    by_task : pandas.DataFrame
        Indexed by (task, method): ``n`` (rows with a prediction), ``coverage``, ``mae``,
        ``mare``, ``mean_width`` (mean interval width).
    overall : pandas.DataFrame
        Indexed by method, the same columns over all held-out rows.
    fit : TransferFit
        The fit to the training rows.
    holdout : pandas.Series of bool
        The mask over ``df``.
    ci_prob : float
    notes : tuple of str
        Baseline fits that failed or were impossible (their predictions are NaN).
    """

    rows: pd.DataFrame
    by_task: pd.DataFrame
    overall: pd.DataFrame
    fit: object
    holdout: pd.Series
    ci_prob: float
    notes: tuple[str, ...] = ()
    _train: pd.DataFrame = field(default=None, repr=False)
    _held: pd.DataFrame = field(default=None, repr=False)
    _baseline_params: dict = field(default_factory=dict, repr=False)

    def plot(self, *, tasks=None, ax=None, axes=None, kind: str = "observation",
             random_seed=None):
        """Training points, held-out points, forecasts with intervals, baselines; per task.

        Parameters
        ----------
        tasks : list of str, optional
            Tasks to show (default all held-out tasks).
        ax, axes : matplotlib Axes or array of Axes, optional
            Where to draw: one Axes per task (``ax`` for a single task).
        kind : {"observation", "mean"}, default "observation"
            Which Bayesian band to draw along x.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plot_backtest import plot_backtest

        return plot_backtest(self, tasks=tasks, axes=axes if axes is not None else ax,
                             kind=kind, random_seed=random_seed)

    def __repr__(self) -> str:
        o = self.overall
        parts = ", ".join(f"{m}: coverage {o.loc[m, 'coverage']:.2f}, MAE {o.loc[m, 'mae']:.4g}"
                          for m in o.index)
        return f"BacktestResult({len(self.rows)} held-out rows; {parts})"


def _score(rows: pd.DataFrame, method: str, lb: str, ub: str) -> None:
    pred = rows[f"{method}_mean"]
    actual = rows["actual"]
    lo, hi = rows[f"{method}_{lb}"], rows[f"{method}_{ub}"]
    covered = ((actual >= lo) & (actual <= hi)).astype("boolean")
    covered[lo.isna() | hi.isna()] = pd.NA
    rows[f"{method}_covered"] = covered
    err = (pred - actual).abs()
    rows[f"{method}_abs_error"] = err
    rows[f"{method}_rel_error"] = err / actual.abs().replace(0.0, np.nan)


def _aggregate(rows: pd.DataFrame, lb: str, ub: str, by=None) -> pd.DataFrame:
    out = []
    for m in METHODS:
        frame = pd.DataFrame({
            "predicted": rows[f"{m}_mean"].notna(),
            "covered": rows[f"{m}_covered"].astype("Float64"),
            "abs_error": rows[f"{m}_abs_error"],
            "rel_error": rows[f"{m}_rel_error"],
            "width": rows[f"{m}_{ub}"] - rows[f"{m}_{lb}"],
        })
        if by is not None:
            frame["task"] = rows[by].to_numpy()
            g = frame.groupby("task", sort=False)
        else:
            g = frame.groupby(np.zeros(len(frame)), sort=False)
        t = pd.DataFrame({
            "n": g["predicted"].sum().astype(int),
            "coverage": g["covered"].mean().astype(float),
            "mae": g["abs_error"].mean(),
            "mare": g["rel_error"].mean(),
            "mean_width": g["width"].mean(),
        })
        t["method"] = m
        out.append(t)
    table = pd.concat(out)
    if by is None:
        return table.set_index("method")
    table.index.name = "task"
    return table.set_index("method", append=True).sort_index(level=0, sort_remaining=False)


def backtest(df: pd.DataFrame, *, holdout, unit: str | None = None, ci_prob: float = 0.9,
             fit_kwargs: dict | None = None, **kwargs) -> BacktestResult:
    """Fit without the held-out rows, predict them, and score against two baselines.

    The Bayesian forecast is ``fit.predict(held_out, kind="observation")``: the predictive
    distribution of a new score (with the test-set noise of the likelihood), for held-out
    tasks or groups absent from the training rows drawn from their population. Baselines,
    fitted per task to the same training rows (:mod:`bayesslope.baselines`): least squares
    on a straight line, and least squares on the 4-parameter sigmoid
    ``y = lo + height / (1 + exp(-k (x - x0)))`` of Bhagia et al. (2024), "Establishing
    Task Scaling Laws via Compute-Efficient Model Ladders" (arXiv:2412.04403), whose
    second step maps a task loss to accuracy with this curve; here it maps the upstream x.

    Parameters
    ----------
    df : pandas.DataFrame
        All rows (training and held out).
    holdout : bool mask, column name, rule or callable
        See :func:`holdout_mask`; e.g. ``"best:3"`` with ``unit="model"`` holds out every
        row of the 3 models with the best x (the scaling-paper check).
    unit : str, optional
        The column a rule ranks and holds out whole (default: distinct x values).
    ci_prob : float, default 0.9
        Mass of every interval (Bayesian and baselines).
    fit_kwargs : dict, optional
        Arguments of :func:`bayesslope.fit_hierarchical` (may also be given as keywords);
        ``random_seed`` also seeds the prediction.
    **kwargs
        Further arguments of :func:`bayesslope.fit_hierarchical`, merged over ``fit_kwargs``.

    Returns
    -------
    BacktestResult
        ``.rows``, ``.by_task``, ``.overall``, ``.fit``, ``.notes``, ``.plot()``.

    Raises
    ------
    DataValidationError
        Bad data or fit arguments, or a hold-out that selects nothing or everything.

    Examples
    --------
    Leave the two best Pythia models out (every checkpoint), forecast them from the other
    ten (about 1 minute on 2 cores at the default draws):

    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> res = bs.backtest(df, holdout="best:2", unit="model", group="model",
    ...                   group_nesting="nested", random_seed=1)  # doctest: +SKIP
    >>> res.overall  # doctest: +SKIP
    """
    from .fit import fit_hierarchical
    from .predict import predict

    _check_ci_prob(ci_prob)
    kw = {**(fit_kwargs or {}), **kwargs}
    cols = {k: kw.get(k, k) for k in ("x", "y", "task")}
    design = prepare_design(df, x=cols["x"], y=cols["y"], task=cols["task"],
                            x_better=kw.get("x_better"), y_better=kw.get("y_better"),
                            dropna=kw.get("dropna", False), warn_weak=False)
    mask = holdout_mask(df, holdout, x=cols["x"], unit=unit, x_better=design.x_better)
    train, test = df[~mask], df[mask]
    fit = fit_hierarchical(train, **kw)
    pred = predict(fit, test, kind="observation", ci_prob=ci_prob,
                   random_seed=kw.get("random_seed"))
    lb, ub = _ci_names(ci_prob)
    rows = pd.DataFrame({
        "task": test[cols["task"]].astype(str).to_numpy(),
        "x": pd.to_numeric(test[cols["x"]]).to_numpy(dtype=float),
        "actual": pd.to_numeric(test[cols["y"]]).to_numpy(dtype=float),
    }, index=test.index)
    for c in ("new_task", "new_group", "extrapolated"):
        if c in pred:
            rows[c] = pred[c]
    rows["bayes_mean"], rows[f"bayes_{lb}"], rows[f"bayes_{ub}"] = (
        pred["mean"], pred[lb], pred[ub])
    notes: list[str] = []
    params: dict = {}
    tr_task = train[cols["task"]].astype(str).to_numpy()
    tr_x = pd.to_numeric(train[cols["x"]]).to_numpy(dtype=float)
    tr_y = pd.to_numeric(train[cols["y"]]).to_numpy(dtype=float)
    for m in BASELINES:
        for c in ("mean", lb, ub):
            rows[f"{m}_{c}"] = np.nan
    for t in pd.unique(rows["task"]):
        sel = tr_task == t
        at = (rows["task"] == t).to_numpy()
        for m in BASELINES:
            res = fit_baseline(m, tr_x[sel], tr_y[sel], rows["x"].to_numpy()[at], ci_prob)
            if res.note:
                notes.append(f"{m}, task {t!r}: {res.note}")
            params[(m, t)] = res.params
            rows.loc[at, f"{m}_mean"] = res.mean
            rows.loc[at, f"{m}_{lb}"] = res.lower
            rows.loc[at, f"{m}_{ub}"] = res.upper
    for m in METHODS:
        _score(rows, m, lb, ub)
    return BacktestResult(
        rows=rows,
        by_task=_aggregate(rows, lb, ub, by="task"),
        overall=_aggregate(rows, lb, ub),
        fit=fit,
        holdout=mask,
        ci_prob=ci_prob,
        notes=tuple(notes),
        _train=train,
        _held=test,
        _baseline_params=params,
    )

