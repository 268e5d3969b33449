"""Long-format scores -> validated, oriented, per-pair standardized sufficient statistics.

Every ordered pair ``source -> target`` (source != target) is a regression of the target's
oriented score on the source's, across the units (models, checkpoints) scored on both.
Both scores are standardized within the pair (mean 0, sd 1 with ``ddof=1`` over the shared
units), so the pair's data enter only through ``n`` and the correlation ``r``; the scales are
kept to report slopes in data units.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data import ordered_levels
from ..exceptions import DataValidationError
from ..options import check_y_better_arg, drop_missing, rows_text, string_labels, y_better_words

__all__ = ["PairDesign", "build_pair_design"]


@dataclass(frozen=True)
class PairDesign:
    """Validated pair structure and the standardized data of every ordered pair.

    Attributes
    ----------
    tasks : tuple of str
        Task labels, in the order of the task axis.
    units : tuple
        Unit labels (rows of :attr:`scores`).
    scores : ndarray, shape (M, K)
        Oriented scores (higher is better), NaN where a unit lacks a task.
    higher_is_better : dict of str to bool
        Orientation used per task.
    source, target : ndarray of int, shape (P,)
        Task index of each pair's source and target.
    n : ndarray of int, shape (P,)
        Units shared by the pair.
    n_dropped : ndarray of int, shape (P,)
        Units with a score on one task of the pair but not the other (left out of that pair).
    r : ndarray, shape (P,)
        Pearson correlation of the oriented scores over the shared units.
    x_scale, y_scale : ndarray, shape (P,)
        Standard deviations (``ddof=1``) of the source and target over the shared units.
    x : ndarray, shape (n_obs,)
        Standardized source scores of all pairs, concatenated (pair-major).
    y : ndarray, shape (n_obs,)
        Standardized target scores, aligned with ``x``.
    pair_idx : ndarray of int, shape (n_obs,)
        Pair of each observation.
    missing : dict of str to int
        Units without a score per task (only tasks that miss some).
    unit_group : ndarray of int, shape (M,), optional
        Group of each unit (e.g. the model a checkpoint belongs to), when given.
    groups : tuple
        Group labels (empty without groups).
    n_eval : dict of str to int, optional
        Questions per evaluation of each task (``likelihood='binomial'``).
    columns : dict
        The column names used (``unit``, ``task``, ``y``, and ``group`` when given).
    n_rows_dropped : int
        Rows dropped for missing values (``dropna=True``).
    """

    tasks: tuple
    units: tuple
    scores: np.ndarray
    higher_is_better: dict
    source: np.ndarray
    target: np.ndarray
    n: np.ndarray
    n_dropped: np.ndarray
    r: np.ndarray
    x_scale: np.ndarray
    y_scale: np.ndarray
    x: np.ndarray
    y: np.ndarray
    pair_idx: np.ndarray
    missing: dict
    unit_group: np.ndarray | None = None
    groups: tuple = ()
    n_eval: dict | None = None
    columns: dict = field(default_factory=dict)
    n_rows_dropped: int = 0

    @property
    def n_pairs(self) -> int:
        """Number of ordered pairs."""
        return int(self.source.shape[0])

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.tasks)

    def sufficient_stats(self):
        """Per-pair :class:`~bayesslope.collapsed.SufficientStats` of the standardized data.

        Written from ``n`` and ``r`` by the definition of the standardization (means 0,
        sums of squares ``n - 1``, cross-product ``(n - 1) r``) rather than re-summed, so
        that pairs of equal size share their design exactly and can be pooled.
        """
        from ..collapsed import SufficientStats

        n = self.n.astype(np.float64)
        zero = np.zeros_like(n)
        return SufficientStats(n=n, xbar=zero, ybar=zero.copy(), sxx=n - 1.0,
                               sxy=(n - 1.0) * self.r, syy=n - 1.0)

    def observation_units(self) -> np.ndarray:
        """Unit (row of :attr:`scores`) of every observation, aligned with :attr:`x`."""
        present = np.isfinite(self.scores)
        both = present[:, self.source] & present[:, self.target]
        return np.nonzero(both.T)[1]

    def data_hash(self) -> str:
        """SHA-256 of the canonical data (tasks, units, oriented scores, groups, n_eval)."""
        h = hashlib.sha256()
        for labels in (self.tasks, self.units, self.groups):
            h.update("\x1f".join(map(str, labels)).encode() + b"\x1e")
        h.update(np.ascontiguousarray(self.scores, dtype=np.float64).tobytes())
        if self.unit_group is not None:
            h.update(np.ascontiguousarray(self.unit_group, dtype=np.int64).tobytes())
        if self.n_eval is not None:
            h.update(repr(sorted(self.n_eval.items())).encode())
        return h.hexdigest()

    def pair_labels(self) -> pd.MultiIndex:
        """``(source, target)`` labels of the pairs, as a :class:`pandas.MultiIndex`."""
        t = np.asarray(self.tasks, dtype=object)
        return pd.MultiIndex.from_arrays([t[self.source], t[self.target]],
                                         names=["source", "target"])


def constant_within(df: pd.DataFrame, key: str, column: str, keys: list, what: str) -> dict:
    """``{k: value}`` of ``column`` for each ``k`` of ``keys`` (values of ``df[key]``).

    Raises a :class:`DataValidationError` naming the first offenders when ``column`` is
    not constant within a ``key`` group (``what`` names the group in the message).
    """
    per = df.groupby(key, sort=False)[column].agg(lambda s: s.unique().tolist())
    mixed = {k: per[k] for k in keys if len(per[k]) != 1}
    if mixed:
        examples = dict(list(mixed.items())[:3])
        raise DataValidationError(
            f"column {column!r} must be constant within a {what}; e.g. {examples}")
    return {k: per[k][0] for k in keys}


def build_pair_design(
    df: pd.DataFrame,
    *,
    unit: str = "model",
    task: str = "task",
    y: str = "y",
    y_better: str | Mapping | None = None,
    min_shared: int = 3,
    group: str | None = None,
    n_eval: int | Mapping | str | None = None,
    dropna: bool = False,
) -> PairDesign:
    """Validate long-format scores and build every ordered pair's standardized data.

    Parameters
    ----------
    df : DataFrame
        One row per (unit, task) score.
    unit, task, y : str
        Column names of the unit label, the task label and the score.
    y_better : {"lower", "higher"} or mapping of task -> word, optional
        Which direction of the score is better, for all tasks or per task. Default: from
        a boolean ``y_higher_is_better`` column when present, else ``"higher"``; parsed
        by :mod:`bayesslope.options` exactly as ``fit_hierarchical`` parses it.
    min_shared : int, default 3
        Fewest shared units a pair may have (a slope and a residual need at least 3).
    group : str, optional
        Column with the group of each unit (constant within a unit), e.g. the model of a
        checkpoint.
    n_eval : int, mapping or str, optional
        Questions per evaluation: one for all tasks, per task, or a column (constant
        within a task).
    dropna : bool, default False
        Drop rows with a missing unit, task, score (or group) and warn, instead of raising.

    Returns
    -------
    PairDesign
        Tasks in canonical order (sorted, or the categories' order for a categorical
        column) and units sorted, so the row order of ``df`` cannot change a fit.

    Raises
    ------
    DataValidationError
        Missing columns or values, duplicated (unit, task) rows, non-numeric or infinite
        scores, labels that collide as text, fewer than two tasks, a task with a constant
        score, or pairs with fewer than ``min_shared`` shared units or a constant score
        over the shared units.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    for role, name in (("unit", unit), ("task", task), ("y", y), ("group", group)):
        if not isinstance(name, str) and not (role == "group" and name is None):
            raise DataValidationError(f"{role}= must be a column name (str), got {name!r}")
    missing_cols = [c for c in (unit, task, y, *([group] if group else []))
                    if c not in df.columns]
    if missing_cols:
        raise DataValidationError(
            f"columns {missing_cols} not in the frame (columns: {list(df.columns)})"
        )
    if isinstance(min_shared, bool) or not isinstance(min_shared, (int, np.integer)) \
            or min_shared < 3:
        raise DataValidationError(f"min_shared must be an integer >= 3, got {min_shared!r}")
    check_y_better_arg(y_better)
    frame, values = _complete_rows(df, unit, task, y, group, dropna)
    units_s = string_labels(frame[unit], unit)
    task_s = string_labels(frame[task], task)
    tasks = ordered_levels(frame[task])
    if len(tasks) < 2:
        raise DataValidationError(f"need at least two tasks in column {task!r}, got {list(tasks)}")

    sub = pd.DataFrame({"unit": units_s, "task": task_s, "score": values}, index=frame.index)
    dup = sub.duplicated(["unit", "task"], keep=False)
    if dup.any():
        pairs = frame.loc[dup, [unit, task]].drop_duplicates().head(5).to_records(index=False)
        raise DataValidationError(
            f"{int(dup.sum())} rows share a ({unit}, {task}) combination, e.g. "
            f"{[tuple(p) for p in pairs]}; aggregate them (e.g. mean over seeds) first"
        )
    words = y_better_words(y_better, frame, task_s, tasks)
    hib = {t: w == "higher" for t, w in zip(tasks, words, strict=True)}

    wide = sub.pivot(index="unit", columns="task", values="score").reindex(columns=list(tasks))
    raw = wide.to_numpy(dtype=np.float64)
    sign = np.array([1.0 if hib[t] else -1.0 for t in tasks])
    scores = raw * sign
    present = np.isfinite(scores)
    missing = {t: int(m) for t, m in zip(tasks, (~present).sum(0), strict=True) if m}
    _check_constant_tasks(scores, tasks, y)
    pairs = _pair_statistics(scores, present, tasks, min_shared)

    unit_group, groups = None, ()
    if group is not None:
        unit_group, groups = _unit_groups(frame, units_s, group, wide.index)
    return PairDesign(
        tasks=tasks,
        units=tuple(wide.index),
        scores=scores,
        higher_is_better=hib,
        missing=missing,
        unit_group=unit_group,
        groups=groups,
        n_eval=(None if n_eval is None
                else _resolve_n_eval(n_eval, frame, task_s, tasks)),
        columns={"unit": unit, "task": task, "y": y, **({"group": group} if group else {})},
        n_rows_dropped=len(df) - len(frame),
        **pairs,
    )


def _complete_rows(df: pd.DataFrame, unit: str, task: str, y: str, group: str | None,
                   dropna: bool) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric scores and the rows without missing values (raise, or drop with dropna)."""
    col = df[y]
    if pd.api.types.is_bool_dtype(col):
        raise DataValidationError(f"column {y!r} (y) is boolean: scores must be numbers")
    try:
        values = pd.to_numeric(col, errors="raise").astype("float64")
    except (TypeError, ValueError) as err:
        raise DataValidationError(f"column {y!r} (y) must be numeric: {err}") from None
    if np.isinf(values).any():
        rows = df.index[np.isinf(values)]
        raise DataValidationError(f"column {y!r} has infinite values in rows {rows_text(rows)}")
    checked = {unit: df[unit], task: df[task], y: values,
               **({group: df[group]} if group else {})}
    frame, keep, _ = drop_missing(df, checked, dropna, stacklevel=5)
    return frame, values[keep]


def _check_constant_tasks(scores: np.ndarray, tasks: tuple, y: str) -> None:
    sd_task = np.array([np.nanstd(c) if np.isfinite(c).sum() > 1 else 0.0 for c in scores.T])
    const = [t for t, s in zip(tasks, sd_task, strict=True) if not s > 0]
    if const:
        raise DataValidationError(
            f"tasks with a constant (or single) score in column {y!r}: {const[:10]}; "
            f"they carry no information about transfer: drop them from the frame"
        )


def _pair_statistics(scores: np.ndarray, present: np.ndarray, tasks: tuple,
                     min_shared: int) -> dict:
    """Every ordered pair's shared units, correlation, scales and standardized data."""
    k = len(tasks)
    src, tgt = np.nonzero(~np.eye(k, dtype=bool))  # every ordered pair, A -> A excluded
    both = present[:, src] & present[:, tgt]  # (M, P)
    n = both.sum(0)
    either = present[:, src] | present[:, tgt]
    n_dropped = either.sum(0) - n
    few = np.nonzero(n < min_shared)[0]
    if few.size:
        examples = [(tasks[src[i]], tasks[tgt[i]], int(n[i])) for i in few[:5]]
        raise DataValidationError(
            f"{few.size} pairs share fewer than {min_shared} units (source, target, n): "
            f"{examples}; drop the sparse tasks from the frame"
        )
    xs = np.where(both, scores[:, src], 0.0)
    ys = np.where(both, scores[:, tgt], 0.0)
    xm = xs.sum(0) / n
    ym = ys.sum(0) / n
    xd = np.where(both, xs - xm, 0.0)
    yd = np.where(both, ys - ym, 0.0)
    x_scale = np.sqrt((xd * xd).sum(0) / (n - 1))
    y_scale = np.sqrt((yd * yd).sum(0) / (n - 1))
    flat = np.nonzero(~((x_scale > 0) & (y_scale > 0)))[0]
    if flat.size:
        examples = [(tasks[src[i]], tasks[tgt[i]]) for i in flat[:5]]
        raise DataValidationError(
            f"{flat.size} pairs have a constant score over their shared units, e.g. {examples}"
        )
    xz = xd / x_scale
    yz = yd / y_scale
    r = np.clip((xz * yz).sum(0) / (n - 1), -1.0, 1.0)
    # Flatten pair-major (column-major over (M, P)) so pair_idx is sorted.
    order = both.T
    return {"source": src, "target": tgt, "n": n, "n_dropped": n_dropped, "r": r,
            "x_scale": x_scale, "y_scale": y_scale, "x": xz.T[order], "y": yz.T[order],
            "pair_idx": np.nonzero(order)[0]}


def _unit_groups(frame: pd.DataFrame, units_s: pd.Series, group: str, units) -> tuple:
    """Group code of every unit (in ``units`` order) and the group labels (sorted)."""
    g = string_labels(frame[group], group)
    labels = constant_within(pd.DataFrame({"unit": units_s, group: g}), "unit", group,
                             list(units), "unit")
    groups = ordered_levels(frame[group])
    code = {lab: i for i, lab in enumerate(groups)}
    return np.array([code[labels[u]] for u in units], dtype=np.int64), groups


def _resolve_n_eval(n_eval, frame: pd.DataFrame, task_s: pd.Series, tasks) -> dict:
    """``n_eval`` (int, mapping task -> int, or column name) -> ``{task: int}``."""
    if isinstance(n_eval, str):
        if n_eval not in frame.columns:
            raise DataValidationError(
                f"n_eval={n_eval!r} is not a column of the frame (columns: {list(frame.columns)})")
        values = constant_within(pd.DataFrame({"task": task_s, n_eval: frame[n_eval]}),
                                 "task", n_eval, list(tasks), "task")
    elif isinstance(n_eval, Mapping):
        given = {str(k): v for k, v in n_eval.items()}
        absent = [t for t in tasks if t not in given]
        if absent:
            raise DataValidationError(f"n_eval gives no count for tasks {rows_text(absent)}")
        values = {t: given[t] for t in tasks}
    else:
        values = dict.fromkeys(tasks, n_eval)
    out = {}
    for t, v in values.items():
        if isinstance(v, (bool, np.bool_)) or not (
                isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer())) \
                or v < 1:
            raise DataValidationError(f"n_eval for task {t!r} must be a positive integer, "
                                      f"got {v!r}")
        out[t] = int(v)
    return out
