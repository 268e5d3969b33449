"""Long-format scores -> validated, oriented, per-pair standardized sufficient statistics.

Every ordered pair ``source -> target`` (source != target) is a regression of the target's
oriented score on the source's, across the units (models, checkpoints) scored on both.
Both scores are standardized within the pair (mean 0, sd 1 with ``ddof=1`` over the shared
units), so the pair's data enter only through ``n`` and the correlation ``r``; the scales are
kept to report slopes in data units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import DataValidationError

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


def _orientation(better, df: pd.DataFrame, task: str, tasks: list) -> dict:
    """Resolve ``better`` (str, mapping, or column name) to ``{task: higher_is_better}``."""
    def parse(value, where: str) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("higher", "lower"):
            return value.lower() == "higher"
        raise DataValidationError(
            f"{where}: orientation must be 'higher', 'lower' or a bool; got {value!r}"
        )

    if isinstance(better, str) and better.lower() in ("higher", "lower"):
        return dict.fromkeys(tasks, better.lower() == "higher")
    if isinstance(better, Mapping):
        unknown = sorted(map(str, set(better) - set(tasks)))
        if unknown:
            raise DataValidationError(f"better names tasks not in the data: {unknown}")
        absent = [t for t in tasks if t not in better]
        if absent:
            raise DataValidationError(f"better gives no orientation for tasks {absent[:10]}")
        return {t: parse(better[t], f"better[{t!r}]") for t in tasks}
    if isinstance(better, str) and better in df.columns:
        values = constant_within(df, task, better, tasks, "task")
        return {t: parse(v, f"column {better!r}, task {t!r}") for t, v in values.items()}
    raise DataValidationError(
        f"better must be 'higher', 'lower', a dict task -> 'higher'/'lower', or a column "
        f"name of the frame; got {better!r}"
    )


def build_pair_design(
    df: pd.DataFrame,
    unit: str = "model",
    task: str = "task",
    score: str = "y",
    better: str | Mapping = "higher",
    tasks: list | None = None,
    min_shared: int = 3,
    group: str | None = None,
) -> PairDesign:
    """Validate long-format scores and build every ordered pair's standardized data.

    Parameters
    ----------
    df : DataFrame
        One row per (unit, task) score.
    unit, task, score : str
        Column names of the unit label, the task label and the score.
    better : {'higher', 'lower'}, mapping or str
        Orientation: one for all tasks, a mapping task -> 'higher'/'lower' (or bool), or the
        name of a column holding either per row (constant within a task).
    tasks : list, optional
        Tasks to use (default: all, in order of first appearance).
    min_shared : int, default 3
        Fewest shared units a pair may have (a slope and a residual need at least 3).
    group : str, optional
        Column with the group of each unit (constant within a unit), e.g. the model of a
        checkpoint.

    Returns
    -------
    PairDesign

    Raises
    ------
    DataValidationError
        Missing columns, duplicated (unit, task) rows, non-numeric or infinite scores, fewer
        than two tasks, a task with a constant score, or pairs with fewer than
        ``min_shared`` shared units or a constant score over the shared units.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing_cols = [c for c in (unit, task, score, *([group] if group else []))
                    if c not in df.columns]
    if missing_cols:
        raise DataValidationError(
            f"columns {missing_cols} not in the frame (columns: {list(df.columns)})"
        )
    if int(min_shared) < 3:
        raise DataValidationError(f"min_shared must be at least 3, got {min_shared}")
    if df[unit].isna().any() or df[task].isna().any():
        rows = df.index[df[unit].isna() | df[task].isna()].tolist()[:10]
        raise DataValidationError(f"missing {unit!r} or {task!r} labels in rows {rows}")
    try:
        values = pd.to_numeric(df[score], errors="raise").astype("float64")
    except (TypeError, ValueError) as err:
        raise DataValidationError(f"column {score!r} must be numeric: {err}") from None
    if np.isinf(values).any():
        rows = df.index[np.isinf(values)].tolist()[:10]
        raise DataValidationError(f"column {score!r} has infinite values in rows {rows}")

    all_tasks = list(pd.unique(df[task]))
    if tasks is None:
        tasks = all_tasks
    else:
        tasks = list(tasks)
        unknown = [t for t in tasks if t not in set(all_tasks)]
        if unknown:
            raise DataValidationError(f"tasks {unknown} are not in column {task!r}")
        if len(set(tasks)) != len(tasks):
            raise DataValidationError(f"tasks has duplicates: {tasks}")
    if len(tasks) < 2:
        raise DataValidationError(f"need at least two tasks in column {task!r}, got {tasks}")

    sub = df.loc[df[task].isin(tasks), [unit, task]].assign(_score=values)
    dup = sub.duplicated([unit, task], keep=False)
    if dup.any():
        pairs = sub.loc[dup, [unit, task]].drop_duplicates().head(5).to_records(index=False)
        raise DataValidationError(
            f"{int(dup.sum())} rows share a ({unit}, {task}) combination, e.g. "
            f"{[tuple(p) for p in pairs]}; aggregate them (e.g. mean over seeds) first"
        )
    hib = _orientation(better, df.loc[sub.index], task, tasks)

    wide = sub.pivot(index=unit, columns=task, values="_score").reindex(columns=tasks)
    raw = wide.to_numpy(dtype=np.float64)
    sign = np.array([1.0 if hib[t] else -1.0 for t in tasks])
    scores = raw * sign
    present = np.isfinite(scores)
    missing = {str(t): int(m) for t, m in zip(tasks, (~present).sum(0), strict=True) if m}

    sd_task = np.array([np.nanstd(c) if np.isfinite(c).sum() > 1 else 0.0 for c in scores.T])
    const = [t for t, s in zip(tasks, sd_task, strict=True) if not s > 0]
    if const:
        raise DataValidationError(
            f"tasks with a constant (or single) score in column {score!r}: {const[:10]}; "
            f"they carry no information about transfer: leave them out with tasks=[...]"
        )

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
            f"{examples}; leave the sparse tasks out with tasks=[...]"
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

    unit_group, groups = None, ()
    if group is not None:
        unit_group, groups = _unit_groups(df, unit, group, wide.index)

    # Flatten pair-major (column-major over (M, P)) so pair_idx is sorted.
    order = both.T
    pair_idx = np.nonzero(order)[0]
    return PairDesign(
        tasks=tuple(tasks),
        units=tuple(wide.index),
        scores=scores,
        higher_is_better=hib,
        source=src,
        target=tgt,
        n=n,
        n_dropped=n_dropped,
        r=r,
        x_scale=x_scale,
        y_scale=y_scale,
        x=xz.T[order],
        y=yz.T[order],
        pair_idx=pair_idx,
        missing=missing,
        unit_group=unit_group,
        groups=groups,
    )


def _unit_groups(df: pd.DataFrame, unit: str, group: str, units) -> tuple:
    """Group code of every unit (in ``units`` order) and the group labels."""
    if df[group].isna().any():
        rows = df.index[df[group].isna()].tolist()[:10]
        raise DataValidationError(f"missing {group!r} labels in rows {rows}")
    labels = constant_within(df, unit, group, list(units), "unit")
    codes, uniques = pd.factorize(pd.Series([labels[u] for u in units]))
    return codes.astype(np.int64), tuple(uniques)
