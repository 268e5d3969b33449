"""Validated extra columns of the model variants: counts, chance, x noise, conditions, groups.

:func:`prepare_variants` reads the columns named by the variant options of
:func:`bayesslope.fit_hierarchical` (``n_eval``, ``chance``, ``x_se``, ``condition``,
``group``), checks them and returns :class:`VariantData`: numpy arrays in the row order
of the :class:`~bayesslope.data.TransferDesign`. Like :mod:`bayesslope.data` it never
imports PyMC, and every error names the column, rows and values at fault.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .data import TransferDesign, _numeric_column, _rows, ordered_levels
from .exceptions import BelowChanceWarning, DataValidationError
from .likelihoods import COUNTS, LIKELIHOODS, LINKS
from .options import MAX_LISTED, string_labels

__all__ = ["VariantData", "prepare_variants", "resolve_link_likelihood", "COUNT_TOLERANCE",
           "NESTINGS", "COUNTS", "check_counts"]

COUNT_TOLERANCE = 0.05  # |y * n - round(y * n)| allowed, in items
NESTINGS = ("crossed", "nested")
_COUNT_LIKELIHOODS = ("binomial", "beta_binomial")


@dataclass(frozen=True, eq=False)
class VariantData:
    """Per-observation arrays of the model variants, in the design's row order.

    Attributes
    ----------
    link : {"identity", "logit", "probit"}
    likelihood : {"normal", "student_t", "binomial", "beta_binomial"}
    lapse : bool or float
        Lapse rate (1 - ceiling) of a bounded link: False (none), True (one per task,
        estimated) or a fixed number in [0, 1).
    n_eval : ndarray of int64 or None
        Test-set size behind each score (count likelihoods).
    counts : {"whole", "average"}
        How a score becomes the success count of the count likelihoods: ``round(y * n)``
        ("whole"), or ``y * n`` as is with the continuous extension of the pmf
        ("average": accuracies averaged over subtasks).
    chance : ndarray of float or None
        Chance (floor) accuracy of each observation.
    x_se : ndarray of float or None
        Known measurement sd of x per observation.
    x_point : ndarray of int64 or None
        Index of the latent true x of each observation (rows with the same measured
        ``(x, x_se)`` share one, ``-1`` where ``x_se == 0``).
    n_x_points : int
        Number of latent true x values.
    condition_idx, group_idx : ndarray of int64 or None
        Codes of the condition and of the extra grouping level.
    conditions, groups : tuple of str
        Their labels (the first condition is the reference; nested groups are labelled
        ``"task:group"``).
    group_nesting : {"crossed", "nested"}
    columns : dict
        Column names (or constants) the arrays came from.
    """

    link: str = "identity"
    likelihood: str = "normal"
    lapse: bool | float = False
    n_eval: np.ndarray | None = None
    counts: str = "whole"
    chance: np.ndarray | None = None
    x_se: np.ndarray | None = None
    x_point: np.ndarray | None = None
    n_x_points: int = 0
    condition_idx: np.ndarray | None = None
    conditions: tuple[str, ...] = ()
    group_idx: np.ndarray | None = None
    groups: tuple[str, ...] = ()
    group_nesting: str = "crossed"
    columns: dict = field(default_factory=dict)

    _ARRAYS = ("n_eval", "chance", "x_se", "x_point", "condition_idx", "group_idx")

    @property
    def is_default(self) -> bool:
        """True for the core Gaussian identity model with no extra columns."""
        return (self.link == "identity" and self.likelihood == "normal"
                and self.lapse is False and all(getattr(self, a) is None for a in self._ARRAYS))

    def to_dict(self) -> dict:
        """JSON-safe description (everything but the arrays)."""
        return {
            "link": self.link,
            "likelihood": self.likelihood,
            "lapse": self.lapse,
            "counts": self.counts,
            "n_x_points": self.n_x_points,
            "conditions": list(self.conditions),
            "groups": list(self.groups),
            "group_nesting": self.group_nesting,
            "columns": dict(self.columns),
            "arrays": [a for a in self._ARRAYS if getattr(self, a) is not None],
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-observation arrays that are set."""
        return {a: getattr(self, a) for a in self._ARRAYS if getattr(self, a) is not None}

    @classmethod
    def from_parts(cls, info: Mapping, arrays: Mapping[str, np.ndarray]) -> VariantData:
        """Rebuild from :meth:`to_dict` and :meth:`arrays` (used by ``load_fit``)."""
        kinds = {"n_eval": np.int64, "x_point": np.int64, "condition_idx": np.int64,
                 "group_idx": np.int64, "chance": np.float64, "x_se": np.float64}
        return cls(
            link=info["link"],
            likelihood=info["likelihood"],
            lapse=info.get("lapse", False),
            counts=info.get("counts", "whole"),
            n_x_points=int(info["n_x_points"]),
            conditions=tuple(info["conditions"]),
            groups=tuple(info["groups"]),
            group_nesting=info["group_nesting"],
            columns=dict(info["columns"]),
            **{a: np.asarray(arrays[a]).astype(kinds[a]) for a in info["arrays"]},
        )


def resolve_link_likelihood(link, likelihood, *, n_eval=None, chance=None) -> tuple[str, str]:
    """Defaults and allowed combinations of ``link`` and ``likelihood``.

    ``likelihood=None`` means binomial when ``n_eval`` is given, else normal;
    ``link=None`` means probit for counts or a chance floor, else identity.
    """
    if likelihood is None:
        likelihood = "binomial" if n_eval is not None else "normal"
    if likelihood not in LIKELIHOODS:
        raise DataValidationError(
            f"{likelihood!r} is not a supported likelihood. Must be one of: {list(LIKELIHOODS)}"
        )
    if link is None:
        bounded = likelihood in _COUNT_LIKELIHOODS or chance is not None
        link = "probit" if bounded else "identity"
    if link not in LINKS:
        raise DataValidationError(
            f"{link!r} is not a supported link. Must be one of: {list(LINKS)}"
        )
    if likelihood in _COUNT_LIKELIHOODS:
        if n_eval is None:
            raise DataValidationError(
                f"likelihood={likelihood!r} needs the test-set size: pass n_eval='<column>' "
                "(e.g. n_eval='n_eval_examples') or an integer"
            )
        if link == "identity":
            raise DataValidationError(
                f"likelihood={likelihood!r} models a success probability in [0, 1]: use "
                "link='probit' or link='logit' (the identity link can leave [0, 1])"
            )
    elif n_eval is not None:
        raise DataValidationError(
            f"n_eval is only used by likelihood='binomial' or 'beta_binomial', not {likelihood!r};"
            " drop n_eval or choose a count likelihood"
        )
    if chance is not None and link == "identity":
        raise DataValidationError(
            "a chance floor needs a bounded link: pass link='probit' or link='logit' "
            "(or leave link=None)"
        )
    return link, likelihood


def check_counts(counts, n_eval) -> None:
    """``counts`` is one of :data:`COUNTS` and, when "average", comes with ``n_eval``."""
    if not isinstance(counts, str) or counts not in COUNTS:
        raise DataValidationError(
            f"{counts!r} is not a supported counts. Must be one of: {list(COUNTS)} (\"average\" "
            "for accuracies averaged over subtasks, where y * n_eval is not a whole number)"
        )
    if counts == "average" and n_eval is None:
        raise DataValidationError(
            "counts='average' applies to the count likelihoods: pass n_eval='<column>' (the "
            "test-set size) with likelihood='binomial' or 'beta_binomial', or drop counts"
        )


def _positions(df: pd.DataFrame, design: TransferDesign) -> np.ndarray:
    """Positional index into ``df`` of each design row (the order prepare_design uses)."""
    cols = design.columns
    xs = pd.to_numeric(df[cols["x"]], errors="coerce").to_numpy(dtype="float64")
    ys = pd.to_numeric(df[cols["y"]], errors="coerce").to_numpy(dtype="float64")
    ts = df[cols["task"]]
    keep = ~(np.isnan(xs) | np.isnan(ys) | ts.isna().to_numpy())
    pos = np.flatnonzero(keep)
    code = {t: k for k, t in enumerate(design.tasks)}
    t_idx = ts.astype(str).map(code).to_numpy()[keep].astype(np.int64)
    order = np.lexsort((ys[keep], xs[keep], t_idx))
    out = pos[order]
    if not (np.array_equal(xs[out], design.x) and np.array_equal(ys[out], design.y)
            and np.array_equal(t_idx[order], design.task_idx)):
        raise DataValidationError(
            "the data frame does not match the design it was prepared with; pass the same frame"
        )
    return out


def _column_or_constant(df, pos, value, role: str, design: TransferDesign
                        ) -> tuple[np.ndarray, str]:
    """Values per design row from a column name, a per-task dict or one number."""
    labels = design.row_labels
    if isinstance(value, str):
        if value not in df.columns:
            raise DataValidationError(
                f"{role}={value!r} is not a column; the frame has columns {list(df.columns)}"
            )
        col = _numeric_column(df.iloc[pos].set_axis(labels), value, role)
        if col.isna().any():
            raise DataValidationError(
                f"column {value!r} ({role}) has missing values at rows "
                f"{_rows(col.index[col.isna()])}"
            )
        arr = col.to_numpy(dtype="float64")
        src = value
    elif isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - set(design.tasks))
        absent = [t for t in design.tasks if t not in {str(k) for k in value}]
        if unknown or absent:
            raise DataValidationError(
                f"{role} dict must name every task exactly: unknown {unknown}, missing {absent}"
            )
        per_task = {str(k): v for k, v in value.items()}
        try:
            vals = np.array([float(per_task[t]) for t in design.tasks])
        except (TypeError, ValueError):
            raise DataValidationError(
                f"{role} dict values must be numbers, got {value!r}"
            ) from None
        arr = vals[design.task_idx]
        src = "dict"
    elif isinstance(value, int | float | np.number) and not isinstance(value, bool):
        arr = np.full(design.n_obs, float(value))
        src = repr(float(value))
    else:
        raise DataValidationError(
            f"{role} should be a column name, a dict of task -> value or a number, got {value!r}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataValidationError(f"{role} has non-finite values at rows {_rows(labels[bad])}")
    return arr, src


def _check_below_chance(design: TransferDesign, chance: np.ndarray, given) -> None:
    """Name the scores below their chance floor; refuse a task (or frame) entirely below.

    The floor model has ``p >= chance``, so scores below it are read as chance-level noise.
    That is expected near chance, but a task whose every score is below its floor has no
    score the model can place above it: its slope is not identified (the floor is wrong).
    """
    below = design.y < chance
    if not below.any():
        return
    if isinstance(given, str):
        source = f"chance column {given!r}"
    elif isinstance(given, Mapping):
        source = "chance per task"
    else:
        source = f"chance={float(given)!r}"
    tasks = np.asarray(design.tasks)
    n_below = np.bincount(design.task_idx[below], minlength=design.n_tasks)
    n_all = np.bincount(design.task_idx, minlength=design.n_tasks)
    ycol = design.columns["y"]
    if below.all():
        raise DataValidationError(
            f"every score of {ycol!r} ({design.n_obs} rows) lies below its chance floor "
            f"({source}): the floor model cannot fit them. Check chance (a fraction "
            "in [0, 1), e.g. 0.25 for 4 choices) and that y is an accuracy."
        )
    whole = [k for k in range(design.n_tasks) if n_below[k] == n_all[k]]
    if whole:
        first = design.task_idx == whole[0]
        raise DataValidationError(
            f"every score of task(s) {_rows([str(t) for t in tasks[whole]])} lies below its "
            f"chance floor ({source}; e.g. in {str(tasks[whole[0]])!r} the highest score is "
            f"{float(design.y[first].max())!r} < chance {float(chance[first].min())!r}): "
            "their slopes cannot be estimated. Check chance for these tasks, or drop them."
        )
    hit = np.flatnonzero(n_below)
    listed = ", ".join(f"{str(tasks[k])!r} ({n_below[k]} of {n_all[k]})"
                       for k in hit[:MAX_LISTED])
    more = f" and {len(hit) - MAX_LISTED} more" if len(hit) > MAX_LISTED else ""
    warnings.warn(
        f"{int(below.sum())} of {design.n_obs} scores of {ycol!r} lie below their chance "
        f"floor ({source}) in {len(hit)} task(s): {listed}{more}. The model's floor "
        "keeps p >= chance, so they are read as chance-level noise; if many are far below, "
        "check chance.",
        BelowChanceWarning,
        stacklevel=4,
    )


def _codes(df, pos, column: str, role: str, labels) -> tuple[np.ndarray, tuple[str, ...]]:
    if not isinstance(column, str) or column not in df.columns:
        raise DataValidationError(
            f"{role}={column!r} is not a column; the frame has columns {list(df.columns)}"
        )
    col = df[column].iloc[pos]
    if col.isna().any():
        raise DataValidationError(
            f"column {column!r} ({role}) has missing values at rows "
            f"{_rows(labels[col.isna().to_numpy()])}"
        )
    string_labels(col, column)
    levels = ordered_levels(col)
    code = {v: k for k, v in enumerate(levels)}
    return col.astype(str).map(code).to_numpy(dtype=np.int64), levels


def prepare_variants(
    df: pd.DataFrame,
    design: TransferDesign,
    *,
    link: str | None = None,
    likelihood: str | None = None,
    n_eval: str | int | None = None,
    chance: str | float | Mapping[str, float] | None = None,
    lapse: bool | float = False,
    x_se: str | float | None = None,
    condition: str | None = None,
    group: str | None = None,
    group_nesting: str = "crossed",
    counts: str = "whole",
) -> VariantData:
    """Validate the variant columns and align them with ``design``.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame ``design`` was prepared from.
    design : TransferDesign
    link, likelihood : str, optional
        See :func:`resolve_link_likelihood`.
    n_eval : str or int, optional
        Column (or one number) of test-set sizes; each score becomes ``k = y * n``
        successes out of ``n``.
    counts : {"whole", "average"}, default "whole"
        "whole": ``y * n`` must be a whole number (within ``COUNT_TOLERANCE``) and is
        rounded. "average": scores averaged over subtasks (``y * n`` need not be whole)
        are fitted with the continuous extension of the count pmf in ``k = y * n``.
    chance : str, float or dict of task -> float, optional
        Chance accuracy (the floor), in [0, 1).
    lapse : bool or float, default False
        Lapse rate (1 - ceiling): False for none, True to estimate one per task, or a
        fixed number in [0, 1).
    x_se : str or float, optional
        Column (or one number) with the known measurement sd of x (>= 0).
    condition, group : str, optional
        Columns of the condition (per-condition population slopes) and of a further
        partially pooled grouping level.
    group_nesting : {"crossed", "nested"}, default "crossed"
        Whether group effects are shared across tasks ("crossed") or separate within
        each task ("nested").

    Returns
    -------
    VariantData

    Raises
    ------
    DataValidationError
        For scores outside [0, 1] under a bounded link (naming the rows and the largest
        value), non-integer or non-positive counts, ``y * n`` far from an integer
        (with ``counts="whole"``), an unknown ``counts`` or one without ``n_eval``,
        chance outside [0, 1), chance + lapse >= 1, negative ``x_se``, a condition or
        group with one level, or an unsupported option.
    """
    link, likelihood = resolve_link_likelihood(link, likelihood, n_eval=n_eval, chance=chance)
    check_counts(counts, n_eval)
    pos = _positions(df, design)
    labels = design.row_labels
    y = design.y
    columns: dict = {}
    out: dict = {"link": link, "likelihood": likelihood}

    if link != "identity":
        bad = (y < 0) | (y > 1)
        if bad.any():
            worst = y[bad][np.argmax(np.abs(y[bad] - 0.5))]
            raise DataValidationError(
                f"link={link!r} models scores in [0, 1], but {int(bad.sum())} value(s) of "
                f"{design.columns['y']!r} lie outside (most extreme {float(worst)!r}) at rows "
                f"{_rows(labels[bad])}. Rescale y to a proportion or use link='identity'."
            )

    if isinstance(lapse, bool):
        lapse_fixed = 0.0
    elif isinstance(lapse, int | float) and 0.0 <= float(lapse) < 1.0:
        lapse_fixed = float(lapse)
    else:
        raise DataValidationError(
            f"lapse should be False, True (estimate it) or a number in [0, 1) but got {lapse!r}"
        )
    if lapse is not False and link == "identity":
        raise DataValidationError("a lapse rate needs link='probit' or link='logit'")
    out["lapse"] = True if lapse is True else (False if lapse is False else lapse_fixed)

    if n_eval is not None:
        n_arr, columns["n_eval"] = _column_or_constant(df, pos, n_eval, "n_eval", design)
        bad = (n_arr <= 0) | (np.abs(n_arr - np.round(n_arr)) > 1e-9)
        if bad.any():
            raise DataValidationError(
                f"n_eval must be positive integers (test-set sizes) but has "
                f"{float(n_arr[bad][0])!r} at rows {_rows(labels[bad])}"
            )
        n_int = np.round(n_arr).astype(np.int64)
        k = y * n_int
        off = np.abs(k - np.round(k)) > COUNT_TOLERANCE
        if counts == "whole" and off.any():
            i = np.flatnonzero(off)[0]
            raise DataValidationError(
                f"y * n_eval should be a whole number of correct answers (k = round(y * n)), "
                f"but is {k[i]:.3f} (y={float(y[i])!r}, n={n_int[i]}) at rows "
                f"{_rows(labels[off])}. If these scores are averages (e.g. over the "
                "subtasks of MMLU), pass counts='average' (the count likelihood continuous "
                "in k = y * n); otherwise check that n_eval is the test-set size behind "
                "each score"
            )
        out["n_eval"] = n_int
        out["counts"] = counts

    if chance is not None:
        c_arr, columns["chance"] = _column_or_constant(df, pos, chance, "chance", design)
        bad = (c_arr < 0) | (c_arr >= 1)
        if bad.any():
            raise DataValidationError(
                f"chance should be in [0, 1) but got {float(c_arr[bad][0])!r} at rows "
                f"{_rows(labels[bad])}"
            )
        if lapse_fixed:
            over = c_arr + lapse_fixed >= 1
            if over.any():
                raise DataValidationError(
                    f"chance + lapse should be < 1 but chance={float(c_arr[over][0])!r} with "
                    f"lapse={lapse_fixed!r} at rows {_rows(labels[over])}"
                )
        _check_below_chance(design, c_arr, chance)
        out["chance"] = c_arr

    if x_se is not None:
        se, columns["x_se"] = _column_or_constant(df, pos, x_se, "x_se", design)
        bad = se < 0
        if bad.any():
            raise DataValidationError(
                f"x_se is a standard deviation and should be >= 0 but got {float(se[bad][0])!r} at "
                f"rows {_rows(labels[bad])}"
            )
        if not (se > 0).any():
            raise DataValidationError("x_se is 0 everywhere: there is no noise in x to model")
        noisy = se > 0
        pairs = pd.MultiIndex.from_arrays([design.x[noisy], se[noisy]])
        codes, uniq = pd.factorize(pairs, sort=True)
        point = np.full(design.n_obs, -1, dtype=np.int64)
        point[noisy] = codes
        out.update(x_se=se, x_point=point, n_x_points=len(uniq))

    if condition is not None:
        idx, levels = _codes(df, pos, condition, "condition", labels)
        if len(levels) < 2:
            raise DataValidationError(
                f"condition column {condition!r} has one level ({levels[0]!r}); per-condition "
                "slopes need at least 2"
            )
        columns["condition"] = condition
        out.update(condition_idx=idx, conditions=levels)

    if group is not None:
        if group_nesting not in NESTINGS:
            raise DataValidationError(
                f"{group_nesting!r} is not a supported group_nesting. Must be one of: "
                f"{list(NESTINGS)}"
            )
        if group == design.columns["task"]:
            raise DataValidationError(f"group={group!r} is the task column itself")
        idx, levels = _codes(df, pos, group, "group", labels)
        if len(levels) < 2:
            raise DataValidationError(
                f"group column {group!r} has one level ({levels[0]!r}); a grouping level "
                "needs at least 2"
            )
        if group_nesting == "nested":
            cell = np.asarray(design.tasks)[design.task_idx].astype(object) + ":" + \
                np.asarray(levels)[idx].astype(object)
            codes, uniq = pd.factorize(cell, sort=True)
            idx, levels = codes.astype(np.int64), tuple(str(u) for u in uniq)
        columns["group"] = group
        out.update(group_idx=idx, groups=levels, group_nesting=group_nesting)

    return VariantData(columns=columns, **out)
