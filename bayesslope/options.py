"""Argument checks shared by both entry points: one implementation of each.

``fit_hierarchical`` and ``fit_transfer_matrix`` take the same words for the same
concepts; this module parses them, so they also accept the same values and fail with the
same messages: orientation (``y_better`` and the ``y_higher_is_better`` column), sampler
settings (``draws``, ``tune``, ``chains``, ``target_accept``, ``random_seed``), boolean
switches, ``ci_prob`` and missing values (``dropna``). Nothing here imports PyMC or JAX.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .exceptions import DataValidationError

__all__ = [
    "BETTER_WORDS",
    "X_FLAG",
    "Y_FLAG",
    "rows_text",
    "check_better",
    "check_y_better_arg",
    "flag_to_word",
    "y_better_words",
    "check_bool",
    "check_sampler_settings",
    "check_ci_prob",
    "ci_names",
    "drop_missing",
    "string_labels",
]

BETTER_WORDS = ("lower", "higher")
X_FLAG = "x_higher_is_better"
Y_FLAG = "y_higher_is_better"
MAX_LISTED = 10  # labels quoted in an error message; the count is always given


def rows_text(labels) -> str:
    """``[a, b, ...] (and n more)``: at most :data:`MAX_LISTED` labels of a message."""
    labels = list(labels)
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in labels[:MAX_LISTED])
    more = f" (and {len(labels) - MAX_LISTED} more)" if len(labels) > MAX_LISTED else ""
    return f"[{shown}]{more}"


# -- orientation -------------------------------------------------------------------


def check_better(value, what: str) -> str:
    """``value`` if it is ``"lower"`` or ``"higher"``, else a DataValidationError."""
    if not isinstance(value, str) or value not in BETTER_WORDS:
        raise DataValidationError(
            f"{what} should be one of {list(BETTER_WORDS)} but got {value!r}"
        )
    return value


def check_y_better_arg(y_better) -> None:
    """Check the ``y_better`` argument: None, a word, or a mapping of task -> word."""
    if y_better is None:
        return
    if isinstance(y_better, str):
        check_better(y_better, "y_better")
    elif isinstance(y_better, Mapping):
        for t, word in y_better.items():
            check_better(word, f"y_better[{t!r}]")
    else:
        raise DataValidationError(
            f"y_better should be 'lower', 'higher' or a dict of task -> word, got {y_better!r}"
        )


def flag_to_word(frame: pd.DataFrame, column: str, by: pd.Series | None) -> object:
    """Read a boolean orientation column; constant overall (by=None) or per task.

    Returns ``"higher"`` / ``"lower"`` (``by=None``) or a dict of ``str(task)`` -> word.
    """
    col = frame[column]
    if col.isna().any():
        raise DataValidationError(
            f"column {column!r} has missing values at rows {rows_text(frame.index[col.isna()])}"
        )
    vals = col.map(lambda v: {True: True, False: False, "True": True, "False": False}.get(v, v))
    if not vals.isin([True, False]).all():
        bad = frame.index[~vals.isin([True, False])]
        raise DataValidationError(
            f"column {column!r} should be boolean but has {col[bad[0]]!r} at rows {rows_text(bad)}"
        )
    if by is None:
        uniq = vals.unique()
        if len(uniq) > 1:
            raise DataValidationError(
                f"column {column!r} mixes True and False; x must have one orientation: "
                "pass x_better='lower' or 'higher'"
            )
        return "higher" if bool(uniq[0]) else "lower"
    per_task = vals.groupby(by, sort=False).nunique()
    mixed = per_task.index[per_task > 1]
    if len(mixed):
        raise DataValidationError(
            f"column {column!r} mixes True and False within task(s) {rows_text(mixed)}; "
            "pass y_better explicitly"
        )
    first = vals.groupby(by, sort=False).first()
    return {str(t): ("higher" if bool(v) else "lower") for t, v in first.items()}


def y_better_words(y_better, frame: pd.DataFrame, task_labels: pd.Series,
                   tasks: tuple[str, ...]) -> tuple[str, ...]:
    """Which direction of the score is better, per task (in ``tasks`` order).

    Explicit words win, then a boolean ``y_higher_is_better`` column of ``frame``, then
    ``"higher"`` (an accuracy). ``y_better`` must have passed :func:`check_y_better_arg`;
    ``task_labels`` are the frame's task labels as strings.
    """
    if y_better is None:
        y_better = flag_to_word(frame, Y_FLAG, task_labels) if Y_FLAG in frame.columns \
            else "higher"
    if isinstance(y_better, str):
        return tuple(y_better for _ in tasks)
    unknown = sorted(set(map(str, y_better)) - set(tasks))
    absent = [t for t in tasks if t not in {str(k) for k in y_better}]
    if unknown or absent:
        raise DataValidationError(
            f"y_better dict must name every task exactly: unknown {unknown}, missing {absent}"
        )
    words = {str(k): v for k, v in y_better.items()}
    return tuple(words[t] for t in tasks)


# -- switches and sampler settings ----------------------------------------------------


def check_bool(name: str, value, *, allow: tuple = ()) -> object:
    """``bool(value)`` for a bool (numpy bools too); ``value`` if it is one of ``allow``.

    Anything else (``"no"``, ``1``, ``None``) raises: a string is truthy, so taking it
    as a switch would silently turn the option on.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if any(value is a or (isinstance(a, str) and value == a) for a in allow):
        return value
    extra = "".join(f" or {a!r}" for a in allow)
    raise DataValidationError(f"{name} should be True or False{extra}, got {value!r}")


def _integer(name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        kind = "a positive integer" if minimum > 0 else "a non-negative integer"
        raise DataValidationError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_sampler_settings(draws, tune, chains, target_accept, random_seed) -> dict:
    """Validated NUTS settings as plain Python numbers (numpy scalars accepted).

    ``draws`` and ``chains`` positive integers, ``tune`` a non-negative integer,
    ``target_accept`` in (0, 1), ``random_seed`` None or a non-negative integer.

    Returns
    -------
    dict
        The five settings, numpy integers turned into ``int``.
    """
    out = {"draws": _integer("draws", draws, 1), "tune": _integer("tune", tune, 0),
           "chains": _integer("chains", chains, 1)}
    ta = target_accept
    if isinstance(ta, (bool, np.bool_)) or not isinstance(ta, (int, float, np.integer,
                                                               np.floating)) or not 0 < ta < 1:
        raise DataValidationError(f"target_accept should be in (0, 1) but got {ta!r}")
    out["target_accept"] = float(ta)
    seed = random_seed
    if seed is not None and (isinstance(seed, (bool, np.bool_))
                             or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise DataValidationError(
            f"random_seed must be an integer or None, got {seed!r} (a non-negative integer "
            "gives reproducible draws)"
        )
    out["random_seed"] = None if seed is None else int(seed)
    return out


def check_ci_prob(ci_prob) -> float:
    """``ci_prob`` as a float in (0, 1), else a DataValidationError."""
    if isinstance(ci_prob, (bool, np.bool_)) or not isinstance(
            ci_prob, (int, float, np.integer, np.floating)) or not 0 < ci_prob < 1:
        raise DataValidationError(f"ci_prob should be in (0, 1) but got {ci_prob!r}")
    return float(ci_prob)


def ci_names(ci_prob: float) -> tuple[str, str]:
    """Column names of an equal-tailed interval: ``eti90_lb``, ``eti90_ub`` (``eti89_5_lb``)."""
    pct = round(100 * ci_prob, 6)
    tag = f"{pct:g}".replace(".", "_")
    return f"eti{tag}_lb", f"eti{tag}_ub"


# -- frames ----------------------------------------------------------------------------


def drop_missing(frame: pd.DataFrame, columns: Mapping[str, pd.Series], dropna: bool,
                 stacklevel: int = 3) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Rows with a missing value in any of ``columns``: raise, or drop them with a warning.

    Parameters
    ----------
    frame : DataFrame
        The input frame (its index labels name the rows in messages).
    columns : mapping of column name -> Series
        The (already parsed) values to check, aligned with ``frame``.
    dropna : bool
        Drop the rows (and warn with their count) instead of raising.
    stacklevel : int
        Of the warning.

    Returns
    -------
    (DataFrame, ndarray of bool, int)
        The kept rows, the mask of kept rows and the number dropped.
    """
    mask = np.zeros(len(frame), dtype=bool)
    for s in columns.values():
        mask |= s.isna().to_numpy()
    if not mask.any():
        return frame, ~mask, 0
    names = "/".join(columns)
    if not dropna:
        parts = [f"column {name!r} at rows {rows_text(frame.index[s.isna().to_numpy()])}"
                 for name, s in columns.items() if s.isna().any()]
        raise DataValidationError(
            f"missing values (NaN) in {int(mask.sum())} row(s): " + "; ".join(parts)
            + ". Fix them, or pass dropna=True to drop these rows."
        )
    n = int(mask.sum())
    warnings.warn(f"dropna=True: dropped {n} row(s) with missing {names} "
                  f"(rows {rows_text(frame.index[mask])})", UserWarning, stacklevel=stacklevel)
    if n == len(frame):
        raise DataValidationError("no rows left after dropping missing values")
    return frame[~mask], ~mask, n


def string_labels(values: pd.Series, column: str) -> pd.Series:
    """Labels as strings; raise if two distinct labels print the same (``1`` and ``"1"``)."""
    labels = values.astype(str)
    combos = pd.DataFrame({"raw": values.to_numpy(dtype=object), "str": labels.to_numpy()})
    combos = combos.drop_duplicates()
    clash = combos[combos["str"].duplicated(keep=False)]
    if len(clash):
        examples = clash.groupby("str", sort=False)["raw"].agg(list).head(3).tolist()
        raise DataValidationError(
            f"column {column!r} has distinct labels that read the same as text, e.g. "
            f"{examples}: make them one type (e.g. df[{column!r}].astype(str))"
        )
    return labels
