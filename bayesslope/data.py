"""DataFrame -> validated, oriented design. Every input check lives here; no PyMC.

The model never sees the DataFrame: :func:`prepare_design` turns it into a
:class:`TransferDesign` (numpy arrays in a canonical order, orientation signs, the
reference point and data scales) or raises :class:`DataValidationError` naming the
column, rows and values at fault.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .exceptions import DataValidationError, DuplicateRowsWarning, WeakDataWarning
from .options import (
    BETTER_WORDS,
    MAX_LISTED,
    X_FLAG,
    Y_FLAG,
    check_y_better_arg,
    string_labels,
    y_better_words,
)
from .options import check_better as _check_better
from .options import flag_to_word as _flag_to_word
from .options import rows_text as _rows

__all__ = ["TransferDesign", "prepare_design", "BETTER_WORDS"]

_X_FLAG = X_FLAG
_Y_FLAG = Y_FLAG


@dataclass(frozen=True, eq=False)
class TransferDesign:
    """Validated data for the transfer model, in a canonical order.

    Rows are sorted by (task, x, y) and tasks by name, so the row order of the input
    frame cannot change a fit (same seed, same draws).

    Attributes
    ----------
    tasks : tuple of str
        Task names; position ``k`` is task index ``k``.
    task_idx : ndarray of int, shape (n_obs,)
        Task index of each observation.
    x, y : ndarray of float64, shape (n_obs,)
        Upstream and downstream scores in data units, as given.
    row_labels : ndarray, shape (n_obs,)
        Index label of each observation in the input frame.
    x_better : {"lower", "higher"}
        Which direction of x is better.
    y_better : tuple of {"lower", "higher"}
        Which direction of y is better, per task.
    x_ref : float
        Where intercepts are measured (x in data units).
    x_scale, y_scale : float
        Standard deviations of x and y over the frame: the units of standardized slopes
        and of the default priors.
    columns : dict
        The column names used for x, y and task.
    n_dropped : int
        Rows dropped because of missing values (only with ``dropna=True``).
    """

    tasks: tuple[str, ...]
    task_idx: np.ndarray
    x: np.ndarray
    y: np.ndarray
    row_labels: np.ndarray
    x_better: str
    y_better: tuple[str, ...]
    x_ref: float
    x_scale: float
    y_scale: float
    columns: dict = field(default_factory=dict)
    n_dropped: int = 0

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.tasks)

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        return len(self.x)

    @property
    def x_sign(self) -> float:
        """+1 when higher x is better, -1 when lower is."""
        return 1.0 if self.x_better == "higher" else -1.0

    @property
    def y_sign(self) -> np.ndarray:
        """Per task: +1 when higher y is better, -1 when lower is."""
        return np.array([1.0 if b == "higher" else -1.0 for b in self.y_better])

    @property
    def task_sign(self) -> np.ndarray:
        """Orientation sign per task: transfer slope = sign * (dy/dx in data units)."""
        return self.x_sign * self.y_sign

    @property
    def xc(self) -> np.ndarray:
        """Oriented, centered x: ``sign[task] * (x - x_ref)``; the model's covariate."""
        return self.task_sign[self.task_idx] * (self.x - self.x_ref)

    def task_table(self) -> pd.DataFrame:
        """Per-task counts and x range, indexed by task."""
        frame = pd.DataFrame({"task": np.asarray(self.tasks)[self.task_idx], "x": self.x})
        g = frame.groupby("task", sort=False)["x"]
        table = pd.DataFrame({"n": g.size(), "x_min": g.min(), "x_max": g.max()})
        table = table.reindex(list(self.tasks))
        table["x_range"] = table["x_max"] - table["x_min"]
        table["weak"] = [", ".join(self.weak_reasons().get(t, [])) for t in self.tasks]
        table.index.name = "task"
        return table

    def weak_reasons(self) -> dict[str, list[str]]:
        """Tasks whose own data barely inform a slope, with the reason(s)."""
        counts = np.bincount(self.task_idx, minlength=self.n_tasks)
        lo = np.full(self.n_tasks, np.inf)
        hi = np.full(self.n_tasks, -np.inf)
        np.minimum.at(lo, self.task_idx, self.x)
        np.maximum.at(hi, self.task_idx, self.x)
        reasons: dict[str, list[str]] = {}
        for k, name in enumerate(self.tasks):
            r = []
            if counts[k] <= 2:
                r.append(f"{counts[k]} point{'s' if counts[k] != 1 else ''}")
            if counts[k] >= 2 and hi[k] - lo[k] <= 1e-12 * max(1.0, abs(hi[k])):
                r.append("constant x")
            if r:
                reasons[name] = r
        return reasons

    def data_hash(self) -> str:
        """SHA-256 of the canonical (task, x, y) data: identifies the input of a fit."""
        h = hashlib.sha256()
        h.update("\x1f".join(self.tasks).encode())
        for arr in (self.task_idx.astype(np.int64), self.x, self.y):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def to_dict(self) -> dict:
        """JSON-safe description (everything but the arrays)."""
        return {
            "tasks": list(self.tasks),
            "x_better": self.x_better,
            "y_better": list(self.y_better),
            "x_ref": self.x_ref,
            "x_scale": self.x_scale,
            "y_scale": self.y_scale,
            "columns": dict(self.columns),
            "n_dropped": self.n_dropped,
            "n_obs": self.n_obs,
            "data_hash": self.data_hash(),
        }


def ordered_levels(values: pd.Series) -> tuple[str, ...]:
    """Distinct labels as strings, in an order that row order cannot change.

    Categorical order for a categorical column (unused levels dropped), else sorted.
    """
    labels = values.astype(str)
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(labels)
        return tuple(str(c) for c in values.cat.categories if str(c) in present)
    return tuple(sorted(labels.unique()))


def _numeric_column(frame: pd.DataFrame, name: str, role: str) -> pd.Series:
    col = frame[name]
    is_bool = pd.api.types.is_bool_dtype(col) or (
        col.dtype == object and len(col) > 0
        and col.map(lambda v: isinstance(v, bool | np.bool_)).any()
    )
    if is_bool:
        raise DataValidationError(
            f"column {name!r} ({role}) is boolean (True/False), not numbers; if 0/1 is "
            f"meant, pass numbers: df[{name!r}] = df[{name!r}].astype(float)"
        )
    if not pd.api.types.is_numeric_dtype(col):
        coerced = pd.to_numeric(col, errors="coerce")
        text = coerced.isna() & col.notna()
        if text.any():
            bad = frame.index[text]
            examples = ", ".join(repr(v) for v in col[text].unique()[:3])
            raise DataValidationError(
                f"column {name!r} ({role}) must be numeric but has non-numeric values "
                f"{examples} at rows {_rows(bad)}"
            )
        col = coerced
    return col.astype("float64")


def _warn_duplicates(frame: pd.DataFrame) -> None:
    """Warn with the count of rows that exactly repeat an earlier row (all columns)."""
    try:
        dup = frame.duplicated(keep="first").to_numpy()
    except TypeError:  # unhashable cells (lists, dicts): not comparable row by row
        return
    if dup.any():
        warnings.warn(
            f"{int(dup.sum())} of {len(frame)} rows exactly repeat an earlier row (rows "
            f"{_rows(frame.index[dup])}); each is fitted as a separate observation (as for "
            "repeated evaluations). If they are copies, drop them: df.drop_duplicates().",
            DuplicateRowsWarning,
            stacklevel=4,
        )


def prepare_design(
    df: pd.DataFrame,
    *,
    x: str = "x",
    y: str = "y",
    task: str = "task",
    x_better: str | None = None,
    y_better: str | Mapping[str, str] | None = None,
    x_ref: float | None = None,
    dropna: bool = False,
    warn_weak: bool = True,
) -> TransferDesign:
    """Validate a tidy frame and build the oriented design of the transfer model.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per (model or checkpoint) x task.
    x, y, task : str
        Column names of the upstream score, the downstream score and the task label.
    x_better : {"lower", "higher"}, optional
        Which direction of x is better. Default: from a boolean ``x_higher_is_better``
        column when present, else ``"lower"`` (a loss).
    y_better : {"lower", "higher"} or mapping of task -> word, optional
        Which direction of y is better (overall or per task). Default: from a boolean
        ``y_higher_is_better`` column when present, else ``"higher"`` (an accuracy).
    x_ref : float, optional
        Where intercepts are measured. Default: the mean of x.
    dropna : bool, default False
        Drop rows with a missing x, y or task (and warn how many) instead of raising.
    warn_weak : bool, default True
        Emit :class:`WeakDataWarning` naming tasks with 1-2 points or constant x.

    Returns
    -------
    TransferDesign

    Raises
    ------
    DataValidationError
        On a missing column, non-numeric or non-finite values, an empty frame, fewer
        than two tasks, x constant over the frame, or an invalid orientation word.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    for role, name in (("x", x), ("y", y), ("task", task)):
        if not isinstance(name, str):
            raise DataValidationError(f"{role}= must be a column name (str), got {name!r}")
    missing = [c for c in (x, y, task) if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {missing}; the frame has columns {list(df.columns)}"
        )
    if len(df) == 0:
        raise DataValidationError("the data frame is empty: there is nothing to fit")
    if x_better is not None:
        _check_better(x_better, "x_better")
    check_y_better_arg(y_better)

    frame = df
    xs = _numeric_column(frame, x, "x")
    ys = _numeric_column(frame, y, "y")
    ts = frame[task]

    missing_mask = xs.isna() | ys.isna() | ts.isna()
    n_dropped = 0
    if missing_mask.any():
        if not dropna:
            parts = []
            for name, s in ((x, xs), (y, ys), (task, ts)):
                if s.isna().any():
                    parts.append(f"column {name!r} at rows {_rows(frame.index[s.isna()])}")
            raise DataValidationError(
                f"missing values (NaN) in {int(missing_mask.sum())} row(s): "
                + "; ".join(parts)
                + ". Fix them, or pass dropna=True to drop these rows."
            )
        n_dropped = int(missing_mask.sum())
        warnings.warn(
            f"dropna=True: dropped {n_dropped} row(s) with missing {x}/{y}/{task} "
            f"(rows {_rows(frame.index[missing_mask])})",
            UserWarning,
            stacklevel=3,
        )
        keep = ~missing_mask
        frame, xs, ys, ts = frame[keep], xs[keep], ys[keep], ts[keep]
        if len(frame) == 0:
            raise DataValidationError("no rows left after dropping missing values")

    for name, s in ((x, xs), (y, ys)):
        inf = ~np.isfinite(s.to_numpy())
        if inf.any():
            bad = frame.index[inf]
            raise DataValidationError(
                f"column {name!r} has non-finite values ({float(s[inf].iloc[0])!r}) "
                f"at rows {_rows(bad)}"
            )

    for name, s in ((x, xs), (y, ys)):
        # The model centres and scales by the mean and sd: a spread that overflows float64
        # (values near 1e300) turns them into inf/nan deep inside PyMC.
        with np.errstate(over="ignore", invalid="ignore"):
            spread = float(np.std(s.to_numpy())) if len(s) else 0.0
            square = float(np.max(np.abs(s.to_numpy())) ** 2) if len(s) else 0.0
        if not (np.isfinite(spread) and np.isfinite(square)):
            big = frame.index[np.abs(s.to_numpy()) > np.sqrt(np.finfo(float).max)]
            raise DataValidationError(
                f"column {name!r}: values overflow (largest |value| "
                f"{float(np.max(np.abs(s.to_numpy()))):.3g} at rows {_rows(big)}): their "
                "squares exceed the float64 range. Rescale the column (e.g. to its log or "
                "to other units)."
            )

    task_str = string_labels(ts, task)
    _warn_duplicates(frame)
    tasks = ordered_levels(ts)
    if len(tasks) < 2:
        raise DataValidationError(
            f"only one task ({tasks[0]!r}) in column {task!r}: the hierarchical model pools "
            "slopes across tasks and needs at least 2 tasks (fit one regression instead)"
        )

    x_arr = xs.to_numpy(dtype="float64")
    if np.ptp(x_arr) <= 1e-12 * max(1.0, np.abs(x_arr).max()):
        raise DataValidationError(
            f"column {x!r} is constant ({float(x_arr[0])!r}) over the whole frame: no slope can be "
            "estimated"
        )

    # Orientation: explicit words win, then the bundled boolean columns, then defaults.
    if x_better is None:
        x_better = _flag_to_word(frame, _X_FLAG, None) if _X_FLAG in frame.columns else "lower"
    y_words = y_better_words(y_better, frame, task_str, tasks)

    # Canonical order: tasks by name (or category order), rows by (task, x, y).
    code = {t: k for k, t in enumerate(tasks)}
    t_idx = task_str.map(code).to_numpy(dtype=np.int64)
    y_arr = ys.to_numpy(dtype="float64")
    order = np.lexsort((y_arr, x_arr, t_idx))

    # Statistics on the canonically ordered arrays: floating-point sums depend on the
    # order of their terms, and a last-bit change in x_ref or a scale changes the draws.
    x_arr, y_arr, t_idx = x_arr[order], y_arr[order], t_idx[order]
    if x_ref is None:
        x_ref = float(np.mean(x_arr))
    elif (isinstance(x_ref, bool) or not isinstance(x_ref, int | float | np.number)
          or not np.isfinite(x_ref)):
        raise DataValidationError(
            f"x_ref must be a finite number (a value of {x!r}) or None, got {x_ref!r}"
        )

    design = TransferDesign(
        tasks=tasks,
        task_idx=t_idx,
        x=x_arr,
        y=y_arr,
        row_labels=np.asarray(frame.index)[order],
        x_better=x_better,
        y_better=y_words,
        x_ref=float(x_ref),
        x_scale=float(np.std(x_arr)),
        y_scale=float(np.std(y_arr)) or 1.0,
        columns={"x": x, "y": y, "task": task, **_metric_names(frame)},
        n_dropped=n_dropped,
    )
    weak = design.weak_reasons()
    if weak and warn_weak:
        items = list(weak.items())
        listed = "; ".join(f"{t!r} ({', '.join(r)})" for t, r in items[:MAX_LISTED])
        if len(items) > MAX_LISTED:
            listed += f"; and {len(items) - MAX_LISTED} more"
        warnings.warn(
            f"{len(weak)} task(s) have data that barely inform their own slope: {listed}. "
            "They are fitted; their slopes come mostly from the population prior "
            "(see the 'n', 'x_range' and 'weak' columns of summary()).",
            WeakDataWarning,
            stacklevel=3,
        )
    return design


def _metric_names(frame: pd.DataFrame) -> dict:
    """``x_metric`` / ``y_metric`` when the frame names one metric for all its rows.

    The bundled datasets carry these columns (e.g. ``lambada_openai_log_ppl``, ``acc``);
    figures and reports label their axes with them. Several names (a y metric per task)
    are not recorded: the axis then falls back to the column name.
    """
    out = {}
    for col in ("x_metric", "y_metric"):
        if col in frame.columns:
            names = frame[col].dropna().unique()
            if len(names) == 1 and isinstance(names[0], str):
                out[col] = names[0]
    return out

