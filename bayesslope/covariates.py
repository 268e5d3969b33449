"""Task covariates of the slope meta-regression: table or column names -> validated design.

``fit_hierarchical(task_covariates=...)`` makes the population means of the intercept
and of the slope linear in per-task covariates (docs/model.md, "Task covariates")::

    intercept_mu_t = intercept_mu + Z_t @ intercept_beta
    slope_mu_t     = slope_mu     + Z_t @ slope_beta

:func:`prepare_covariates` builds ``Z`` (one row per task, in the design's task order):
numeric covariates standardized (their mean and sd recorded, so effects can be reported
per covariate unit), categorical ones as 0/1 dummies against a named reference level (the
first level in canonical order: categorical order, else sorted). Like
:mod:`bayesslope.data` it never imports PyMC, and every error names the column, task and
values at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import TransferDesign, ordered_levels
from .exceptions import DataValidationError
from .options import MAX_LISTED

__all__ = ["TaskCovariates", "prepare_covariates", "covariate_row", "new_task_rows"]


@dataclass(frozen=True, eq=False)
class TaskCovariates:
    """The validated covariate design of a fit.

    Attributes
    ----------
    columns : tuple of str
        Design columns (the coords of dim ``covariate``): a numeric covariate's own name,
        ``"<name>[<level>]"`` for each non-reference level of a categorical one.
    sources : tuple of str
        The covariate each design column comes from.
    center, scale : tuple of float
        Per design column: mean and sd (ddof 0, over tasks) of a numeric covariate, 0 and
        1 for a dummy. ``Z = (value - center) / scale``.
    levels : dict of str to list of str
        Levels of each categorical covariate; the first is the reference.
    matrix : ndarray, shape (n_tasks, n_columns)
        ``Z``, rows in the design's task order.
    tasks : tuple of str
        The design's tasks (row labels of ``matrix``).
    """

    columns: tuple[str, ...]
    sources: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    levels: dict
    matrix: np.ndarray
    tasks: tuple[str, ...]

    @property
    def n_columns(self) -> int:
        """Number of design columns (coefficients per population mean)."""
        return len(self.columns)

    @property
    def names(self) -> tuple[str, ...]:
        """The covariates as given (one per numeric or categorical covariate)."""
        return tuple(dict.fromkeys(self.sources))

    def units(self) -> list[str]:
        """What one unit of each design column is, for tables."""
        out = []
        for col, src in zip(self.columns, self.sources, strict=True):
            if src in self.levels:
                level = col[len(src) + 1:-1]
                out.append(f"{level} vs {self.levels[src][0]}")
            else:
                out.append(f"per unit of {src}")
        return out

    def to_dict(self) -> dict:
        """JSON-safe description, the matrix included (tasks x columns, small)."""
        return {
            "columns": list(self.columns),
            "sources": list(self.sources),
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
            "levels": {k: list(v) for k, v in self.levels.items()},
            "matrix": self.matrix.tolist(),
            "tasks": list(self.tasks),
        }

    @classmethod
    def from_dict(cls, info: Mapping) -> TaskCovariates:
        """Rebuild from :meth:`to_dict` (used by ``load_fit``)."""
        k = len(info["columns"])
        matrix = np.asarray(info["matrix"], dtype=np.float64).reshape(len(info["tasks"]), k)
        return cls(
            columns=tuple(info["columns"]), sources=tuple(info["sources"]),
            center=tuple(float(v) for v in info["center"]),
            scale=tuple(float(v) for v in info["scale"]),
            levels={k: list(v) for k, v in info["levels"].items()},
            matrix=matrix, tasks=tuple(info["tasks"]),
        )


def _listed(items: Sequence) -> str:
    shown = ", ".join(repr(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _table_from_columns(df: pd.DataFrame, names: Sequence[str], design: TransferDesign
                        ) -> pd.DataFrame:
    """Per-task table of columns of ``df`` that must be constant within each task."""
    from .variant_data import _positions

    missing = [c for c in names if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"task_covariates: column(s) {missing} not in the frame; it has columns "
            f"{list(df.columns)}"
        )
    reserved = set(design.columns.values()) & set(names)
    if reserved:
        raise DataValidationError(
            f"task_covariates: {sorted(reserved)} is the x, y or task column, not a covariate"
        )
    rows = df.iloc[_positions(df, design)]
    task = np.asarray(design.tasks)[design.task_idx]
    out = {}
    for name in names:
        col = rows[name].reset_index(drop=True)
        na = col.isna().to_numpy()
        if na.any():
            bad = list(dict.fromkeys(task[na]))
            raise DataValidationError(
                f"task_covariates: column {name!r} has missing values (NaN) in task(s) "
                f"{_listed(bad)}"
            )
        n_values = col.groupby(task, sort=False).nunique()
        varying = n_values[n_values > 1]
        if len(varying):
            t = varying.index[0]
            values = col[task == t].drop_duplicates().tolist()[:5]
            raise DataValidationError(
                f"task_covariates: column {name!r} varies within task {t!r} (values "
                f"{values}); a task covariate must be constant within each task "
                f"({len(varying)} task(s) vary: {_listed(list(varying.index))})"
            )
        first = col.groupby(task, sort=False).first()
        out[name] = first.reindex(list(design.tasks))
    table = pd.DataFrame(out)
    for name in names:  # keep a categorical dtype (it orders the levels)
        if isinstance(df[name].dtype, pd.CategoricalDtype):
            table[name] = pd.Categorical(table[name], categories=df[name].cat.categories)
    return table


def _table_from_frame(table: pd.DataFrame, design: TransferDesign) -> pd.DataFrame:
    """The rows of a task-indexed table for the design's tasks, in its order."""
    if table.shape[1] == 0:
        raise DataValidationError("task_covariates: the table has no columns")
    labels = pd.Index(table.index.astype(str))
    dup = labels[labels.duplicated()].unique()
    if len(dup):
        raise DataValidationError(
            f"task_covariates: the table lists task(s) {_listed(list(dup))} more than once; "
            "give one row per task"
        )
    missing = [t for t in design.tasks if t not in set(labels)]
    if missing:
        raise DataValidationError(
            f"task_covariates: the table has no row for task(s) {_listed(missing)} "
            f"({len(missing)} of {design.n_tasks} tasks); its index must hold every task"
        )
    out = table.set_axis(labels).loc[list(design.tasks)]
    for name in out.columns:
        na = out[name].isna().to_numpy()
        if na.any():
            raise DataValidationError(
                f"task_covariates: column {name!r} has missing values (NaN) for task(s) "
                f"{_listed(list(np.asarray(design.tasks)[na]))}"
            )
    return out


def _is_numeric(col: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
            and not isinstance(col.dtype, pd.CategoricalDtype))


def _design_columns(table: pd.DataFrame, tasks: tuple[str, ...]) -> TaskCovariates:
    """Standardize numeric columns and expand categorical ones into dummies."""
    columns, sources, center, scale, parts = [], [], [], [], []
    levels: dict[str, list[str]] = {}
    for name in table.columns:
        col = table[name]
        name = str(name)
        if _is_numeric(col):
            v = col.to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(v)):
                bad = [t for t, ok in zip(tasks, np.isfinite(v), strict=True) if not ok]
                raise DataValidationError(
                    f"task_covariates: column {name!r} has non-finite values for task(s) "
                    f"{_listed(bad)}"
                )
            mean, sd = float(np.mean(v)), float(np.std(v))
            if not sd > 1e-12 * max(1.0, abs(mean)):
                raise DataValidationError(
                    f"task_covariates: column {name!r} is equal for all tasks "
                    f"({float(v[0])!r}): it cannot explain differences between tasks; drop it"
                )
            columns.append(name)
            sources.append(name)
            center.append(mean)
            scale.append(sd)
            parts.append(((v - mean) / sd)[:, None])
            continue
        labels = col.astype(str)
        lv = list(ordered_levels(col))
        if len(lv) < 2:
            raise DataValidationError(
                f"task_covariates: column {name!r} is equal for all tasks ({lv[0]!r}): "
                "it cannot explain differences between tasks; drop it"
            )
        levels[name] = lv
        for level in lv[1:]:
            columns.append(f"{name}[{level}]")
            sources.append(name)
            center.append(0.0)
            scale.append(1.0)
            parts.append((labels.to_numpy() == level).astype(np.float64)[:, None])
    matrix = np.hstack(parts)
    return TaskCovariates(columns=tuple(columns), sources=tuple(sources),
                          center=tuple(center), scale=tuple(scale), levels=levels,
                          matrix=matrix, tasks=tuple(tasks))


def _check_identifiable(cov: TaskCovariates) -> None:
    """At most n_tasks - 1 columns, and none a linear combination of the others."""
    n_tasks, k = cov.matrix.shape
    if k > n_tasks - 1:
        raise DataValidationError(
            f"task_covariates: {k} covariate column(s) ({list(cov.columns)}) for {n_tasks} "
            f"tasks; with the population means' own intercept at most {n_tasks - 1} can be "
            "estimated. Use fewer covariates (or fewer categorical levels)."
        )
    full = np.hstack([np.ones((n_tasks, 1)), cov.matrix])
    for j in range(k):
        if np.linalg.matrix_rank(full[:, : j + 2]) < j + 2:
            raise DataValidationError(
                f"task_covariates: column {cov.columns[j]!r} is a linear combination of the "
                f"constant and the columns before it ({list(cov.columns[:j])}) over the "
                "tasks: its effect cannot be told apart from theirs; drop it"
            )


def prepare_covariates(task_covariates, df: pd.DataFrame, design: TransferDesign
                       ) -> TaskCovariates | None:
    """Validate ``task_covariates`` and build the standardized per-task design.

    Parameters
    ----------
    task_covariates : pandas.DataFrame, str, sequence of str or None
        A table indexed by task (labels compared as text; extra tasks are ignored), or
        names of columns of ``df`` that are constant within each task.
    df : pandas.DataFrame
        The frame the design was prepared from.
    design : TransferDesign

    Returns
    -------
    TaskCovariates or None
        None when ``task_covariates`` is None.

    Raises
    ------
    DataValidationError
        A covariate that varies within a task (naming the task and values), missing or
        non-finite values, a covariate equal for all tasks, a table without a row for a
        task, more design columns than ``n_tasks - 1``, or collinear columns.
    """
    if task_covariates is None:
        return None
    if isinstance(task_covariates, pd.Series):
        task_covariates = task_covariates.to_frame()
    if isinstance(task_covariates, pd.DataFrame):
        table = _table_from_frame(task_covariates, design)
    else:
        names = [task_covariates] if isinstance(task_covariates, str) else task_covariates
        if (not isinstance(names, Sequence) or not names
                or not all(isinstance(n, str) for n in names)):
            raise DataValidationError(
                "task_covariates should be a DataFrame indexed by task or a list of column "
                f"names, got {task_covariates!r}"
            )
        if len(set(names)) != len(names):
            raise DataValidationError(f"task_covariates: repeated column names in {names}")
        table = _table_from_columns(df, list(names), design)
    cov = _design_columns(table, design.tasks)
    _check_identifiable(cov)
    return cov


def covariate_row(cov: TaskCovariates, values: Mapping) -> np.ndarray:
    """The standardized design row ``z`` (shape (n_columns,)) of a new task's covariates.

    Parameters
    ----------
    cov : TaskCovariates
    values : mapping of covariate name -> value
        Every covariate of the fit: a number for a numeric one (its own units), a level
        for a categorical one.

    Raises
    ------
    DataValidationError
        A missing or unknown covariate, a non-numeric value of a numeric covariate, or a
        level the fit has not seen.
    """
    if not isinstance(values, Mapping):
        raise DataValidationError(
            f"covariates should be a dict of covariate -> value, got {values!r}")
    names = cov.names
    missing = [n for n in names if n not in values]
    unknown = [n for n in values if n not in names]
    if missing or unknown:
        raise DataValidationError(
            f"covariates: the fit's covariates are {list(names)}; missing {missing}, "
            f"unknown {unknown}"
        )
    z = np.zeros(cov.n_columns)
    for j, (col, src) in enumerate(zip(cov.columns, cov.sources, strict=True)):
        value = values[src]
        if src in cov.levels:
            label = str(value)
            if label not in cov.levels[src]:
                raise DataValidationError(
                    f"covariates: {src}={value!r} is not a level the fit has seen "
                    f"({cov.levels[src]})"
                )
            z[j] = float(col == f"{src}[{label}]")
        else:
            try:
                if isinstance(value, bool | np.bool_):
                    raise TypeError
                v = float(value)
            except (TypeError, ValueError):
                raise DataValidationError(
                    f"covariates: {src} is numeric; got {value!r}") from None
            if not np.isfinite(v):
                raise DataValidationError(f"covariates: {src} must be finite, got {value!r}")
            z[j] = (v - cov.center[j]) / cov.scale[j]
    return z


def new_task_rows(cov: TaskCovariates, frame: pd.DataFrame, task: str,
                  new_tasks: Sequence[str]) -> np.ndarray:
    """Standardized covariate rows (shape (len(new_tasks), n_columns)) of new tasks.

    Read from ``frame`` (e.g. ``fit.predict``'s ``new_df``): every covariate of the fit
    must be a column, constant within each new task; then :func:`covariate_row` per task.

    Parameters
    ----------
    cov : TaskCovariates
    frame : pandas.DataFrame
    task : str
        The task column of ``frame``.
    new_tasks : sequence of str
        Task labels (as text) not in the fit.

    Raises
    ------
    DataValidationError
        A covariate column missing (named, with the tasks that need it), a missing value
        or one that varies within a new task (naming the task and values), or a value
        :func:`covariate_row` refuses.
    """
    if not new_tasks:
        return np.zeros((0, cov.n_columns))
    missing = [n for n in cov.names if n not in frame.columns]
    if missing:
        raise DataValidationError(
            f"task(s) {_listed(list(new_tasks))} are not in the fit, whose population mean "
            f"depends on the task covariates {list(cov.names)}: new_df needs column(s) "
            f"{missing} for them (values constant within each new task)"
        )
    labels = frame[task].astype(str)
    rows = []
    for t in new_tasks:
        sub = frame.loc[labels == t, list(cov.names)]
        values = {}
        for name in cov.names:
            col = sub[name]
            if col.isna().any():
                raise DataValidationError(
                    f"new task {t!r}: covariate column {name!r} has missing values")
            distinct = pd.unique(col)
            if len(distinct) > 1:
                raise DataValidationError(
                    f"new task {t!r}: covariate column {name!r} varies within the task "
                    f"({_listed([str(v) for v in distinct])}); a task has one value")
            values[name] = distinct[0]
        try:
            rows.append(covariate_row(cov, values))
        except DataValidationError as exc:
            raise DataValidationError(f"new task {t!r}: {exc}") from None
    return np.vstack(rows)
