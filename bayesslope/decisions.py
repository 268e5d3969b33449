"""Posterior draws -> decisions: task ranks, ROPE decisions, a multiplicity-aware negative list.

Every function here is pure: it takes the fit's posterior DataTree (or plain probabilities)
and returns pandas. Each answer is computed per posterior draw and then averaged, so the
uncertainty of the slopes carries into the ranks and decisions (nothing is decided on
posterior means).

Definitions (oriented transfer slope ``slope``, data units; positive = better upstream goes
with better downstream):

- **rank** of a task in a draw: its position when the draw's task slopes are sorted
  ascending, 1 = the flattest / most negative slope.
- **ROPE** (region of practical equivalence) ``[lo, hi]`` with ``lo <= 0 <= hi``: a task is
  *negative* when ``slope < lo``, *practically zero* when ``lo <= slope <= hi`` and
  *positive* when ``slope > hi``; the three probabilities sum to 1.
- **decision** at ``decision_prob`` (> 0.5): the region holding at least that posterior
  probability, else "undecided".
- **expected false-sign rate** of a list of tasks called negative: the mean of
  ``1 - P(negative)`` over the list, the posterior expected share of wrong calls (a Bayesian
  false discovery rate; Müller, Parmigiani and Rice 2006; Stephens 2017, "lfsr").
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd

from .exceptions import DataValidationError
from .summaries import _ci_names

__all__ = [
    "DECISIONS",
    "slope_draws",
    "rank_draws",
    "rank_summary",
    "parse_rope",
    "rope_probabilities_from_draws",
    "rope_probabilities",
    "rope_decisions",
    "add_rope_columns",
    "insert_rope_columns",
    "negative_task_set",
]

DECISIONS = ("negative", "practically zero", "positive", "undecided")
# Cumulative false-sign rates are compared with the level allowing for rounding, so that
# e.g. P(negative) = 0.95 is accepted at level 0.05 (1 - 0.95 = 0.050000000000000044).
_RATE_TOL = 1e-12


def _check_prob(name: str, value, lo: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not lo < value < 1:
        raise DataValidationError(f"{name} should be in ({lo:g}, 1) but got {value!r}")
    return float(value)


def slope_draws(posterior, var: str = "slope") -> tuple[np.ndarray, np.ndarray]:
    """Posterior draws of a per-task variable, flattened over chains.

    Parameters
    ----------
    posterior : xarray.DataTree
        A fit's posterior (group ``posterior`` with ``var`` of dims chain, draw, task).
    var : str, default "slope"
        The oriented transfer slope; ``slope_std`` gives the same ranks and signs.

    Returns
    -------
    draws : numpy.ndarray, shape (sample, task)
    tasks : numpy.ndarray of str
    """
    post = posterior["posterior"]
    if var not in post:
        raise DataValidationError(f"the posterior has no variable {var!r}")
    da = post[var]
    if set(da.dims) != {"chain", "draw", "task"}:
        raise DataValidationError(f"{var!r} should have dims (chain, draw, task) but has {da.dims}")
    arr = da.transpose("chain", "draw", "task").values
    return arr.reshape(-1, arr.shape[-1]), post["task"].values.astype(str)


def rank_draws(draws: np.ndarray) -> np.ndarray:
    """Rank of every task in every draw, 1 = smallest slope.

    Parameters
    ----------
    draws : numpy.ndarray, shape (sample, task)

    Returns
    -------
    numpy.ndarray of int, shape (sample, task)
        A permutation of ``1..n_tasks`` per row (ties, which have probability 0 for
        continuous draws, are broken by task order).
    """
    draws = np.asarray(draws)
    order = np.argsort(draws, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, draws.shape[-1] + 1)[None, :], axis=-1)
    return ranks


def rank_summary(posterior, *, k: int = 3, ci_prob: float = 0.9, var: str = "slope"
                 ) -> pd.DataFrame:
    """Posterior of each task's rank by transfer slope (1 = flattest / most negative).

    Parameters
    ----------
    posterior : xarray.DataTree
    k : int, default 3
        Size of the "bottom k" set: ``p_bottom_<k>`` is P(rank <= k).
    ci_prob : float, default 0.9
        Mass of the equal-tailed rank interval (integer bounds: the lower and upper
        ``(1 - ci_prob) / 2`` quantiles of the rank draws, ``inverted_cdf``).
    var : str, default "slope"

    Returns
    -------
    pandas.DataFrame
        Indexed by task, sorted by ``mean_rank``: ``mean_rank``, ``sd_rank``,
        ``rank_eti<pct>_lb``, ``rank_eti<pct>_ub``, ``p_flattest`` (P(rank = 1); sums to 1
        over tasks), ``p_bottom_<k>`` (sums to ``k``), ``p_negative`` (P(slope < 0)) and
        ``slope_mean``. ``attrs``: ``k``, ``ci_prob``, ``n_draws``.

    Raises
    ------
    DataValidationError
        ``k`` not an integer in ``1..n_tasks``, or ``ci_prob`` outside (0, 1).
    """
    ci_prob = _check_prob("ci_prob", ci_prob)
    draws, tasks = slope_draws(posterior, var)
    n_tasks = tasks.size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_tasks:
        raise DataValidationError(
            f"k should be an integer in 1..{n_tasks} (the number of tasks) but got {k!r}")
    ranks = rank_draws(draws)
    lo, hi = np.quantile(ranks, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0,
                         method="inverted_cdf")
    lb, ub = _ci_names(ci_prob)
    table = pd.DataFrame(
        {
            "mean_rank": ranks.mean(axis=0),
            "sd_rank": ranks.std(axis=0, ddof=1) if ranks.shape[0] > 1 else np.nan,
            f"rank_{lb}": lo.astype(int),
            f"rank_{ub}": hi.astype(int),
            "p_flattest": (ranks == 1).mean(axis=0),
            f"p_bottom_{int(k)}": (ranks <= k).mean(axis=0),
            "p_negative": (draws < 0).mean(axis=0),
            "slope_mean": draws.mean(axis=0),
        },
        index=pd.Index(tasks, name="task"),
    )
    table = table.sort_values(["mean_rank", "slope_mean"], kind="stable")
    table.attrs.update(k=int(k), ci_prob=ci_prob, n_draws=int(draws.shape[0]))
    return table


def parse_rope(rope) -> tuple[float, float]:
    """A ROPE as ``(lo, hi)``: a half-width ``r > 0`` gives ``(-r, r)``.

    Raises
    ------
    DataValidationError
        Not a positive finite number or a pair ``lo < hi`` with ``lo <= 0 <= hi``.
    """
    if isinstance(rope, Real) and not isinstance(rope, bool):
        r = float(rope)
        if not (np.isfinite(r) and r > 0):
            raise DataValidationError(
                f"rope should be a half-width > 0 or a pair (lo, hi) but got {rope!r}")
        return -r, r
    try:
        lo, hi = (float(v) for v in rope)
    except (TypeError, ValueError):
        raise DataValidationError(
            f"rope should be a half-width > 0 or a pair (lo, hi) but got {rope!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi and lo <= 0 <= hi):
        raise DataValidationError(
            f"rope (lo, hi) should be finite with lo < hi and lo <= 0 <= hi (a region "
            f"around zero) but got {tuple(rope)!r}")
    return lo, hi


def rope_probabilities_from_draws(draws: np.ndarray, index: pd.Index, rope) -> pd.DataFrame:
    """P(negative), P(practically zero), P(positive) per column of a draws array.

    The array core shared by :func:`rope_probabilities` (tasks of a fit) and
    ``TransferMatrix.summary(rope=...)`` (ordered task pairs).

    Parameters
    ----------
    draws : numpy.ndarray, shape (sample, item)
    index : pandas.Index
        One label per item (a task, or a (source, target) pair).
    rope : float or (float, float)
        See :func:`parse_rope`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``index``: ``p_negative`` = P(draw < lo), ``p_rope`` = P(lo <= draw <=
        hi), ``p_positive`` = P(draw > hi); each row sums to 1. ``attrs['rope']`` = (lo, hi).
    """
    lo, hi = parse_rope(rope)
    draws = np.asarray(draws, dtype=float)
    p_neg = (draws < lo).mean(axis=0)
    p_pos = (draws > hi).mean(axis=0)
    table = pd.DataFrame({"p_negative": p_neg, "p_rope": 1.0 - p_neg - p_pos,
                          "p_positive": p_pos}, index=index)
    table.attrs["rope"] = (lo, hi)
    return table


def rope_probabilities(posterior, rope, var: str = "slope") -> pd.DataFrame:
    """P(negative), P(practically zero), P(positive) per task for a ROPE.

    Parameters
    ----------
    posterior : xarray.DataTree
    rope : float or (float, float)
        Half-width ``r`` (the region ``[-r, r]``) or bounds ``(lo, hi)``, ``lo <= 0 <= hi``,
        in the units of ``var`` (the oriented slope in data units by default).
    var : str, default "slope"

    Returns
    -------
    pandas.DataFrame
        Indexed by task: ``p_negative`` = P(slope < lo), ``p_rope`` = P(lo <= slope <= hi),
        ``p_positive`` = P(slope > hi); each row sums to 1. ``attrs['rope']`` = (lo, hi).
    """
    parse_rope(rope)  # a bad rope is named before the draws are read
    draws, tasks = slope_draws(posterior, var)
    return rope_probabilities_from_draws(draws, pd.Index(tasks, name="task"), rope)


def rope_decisions(probs: pd.DataFrame, decision_prob: float = 0.95) -> pd.Series:
    """The decision per row of :func:`rope_probabilities` at ``decision_prob``.

    Parameters
    ----------
    probs : pandas.DataFrame
        Columns ``p_negative``, ``p_rope``, ``p_positive``.
    decision_prob : float, default 0.95
        In (0.5, 1), so at most one region can reach it.

    Returns
    -------
    pandas.Series of str
        "negative", "practically zero" or "positive" where that region's probability is
        at least ``decision_prob``, else "undecided".
    """
    decision_prob = _check_prob("decision_prob", decision_prob, lo=0.5)
    out = pd.Series("undecided", index=probs.index, name="decision", dtype=object)
    for col, word in (("p_negative", "negative"), ("p_rope", "practically zero"),
                      ("p_positive", "positive")):
        out[probs[col].to_numpy() >= decision_prob] = word
    return out


def add_rope_columns(table: pd.DataFrame, posterior, rope, decision_prob: float = 0.95,
                     var: str = "slope") -> pd.DataFrame:
    """A copy of a per-task ``table`` with the ROPE probabilities and the decision.

    ``p_negative`` (if present) is replaced by P(slope < lo); ``p_rope``, ``p_positive``
    and ``decision`` follow it. ``attrs`` gain ``rope`` and ``decision_prob``.
    """
    decision_prob = _check_prob("decision_prob", decision_prob, lo=0.5)
    return insert_rope_columns(table, rope_probabilities(posterior, rope, var), decision_prob)


def insert_rope_columns(table: pd.DataFrame, probs: pd.DataFrame, decision_prob: float = 0.95
                        ) -> pd.DataFrame:
    """A copy of ``table`` with the ROPE probabilities ``probs`` and the decision.

    Parameters
    ----------
    table : pandas.DataFrame
        Any summary whose index ``probs`` shares (tasks, or (source, target) pairs).
    probs : pandas.DataFrame
        From :func:`rope_probabilities_from_draws`.
    decision_prob : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        ``p_negative`` (if present) replaced by ``probs``'s, followed by ``p_rope``,
        ``p_positive`` and ``decision`` (:func:`rope_decisions`); ``attrs`` gain ``rope``
        and ``decision_prob``.
    """
    decision_prob = _check_prob("decision_prob", decision_prob, lo=0.5)
    probs = probs.copy()
    probs["decision"] = rope_decisions(probs, decision_prob)
    out = table.copy()
    at = (list(out.columns).index("p_negative") if "p_negative" in out.columns
          else len(out.columns))
    out = out.drop(columns=[c for c in probs.columns if c in out.columns])
    for j, col in enumerate(probs.columns):
        out.insert(at + j, col, probs[col].reindex(out.index))
    out.attrs.update(rope=probs.attrs["rope"], decision_prob=decision_prob)
    return out


def negative_task_set(p_negative: pd.Series, max_false_sign_rate: float = 0.05
                      ) -> pd.DataFrame:
    """The largest list of tasks to call negative at an expected false-sign rate.

    Tasks are taken in decreasing order of P(negative); the list is the longest prefix
    whose mean of ``1 - P(negative)`` (the posterior expected share of wrongly signed
    calls) is at most ``max_false_sign_rate``. The running mean never decreases along the
    order, so this prefix is also the largest set of any composition meeting the level.

    Parameters
    ----------
    p_negative : pandas.Series
        P(negative) per task (index: task), or per item of any other index (e.g. the
        (source, target) pairs of a transfer matrix, kept as they are).
    max_false_sign_rate : float, default 0.05
        In (0, 1).

    Returns
    -------
    pandas.DataFrame
        Indexed by task, in call order: ``p_negative``, ``false_sign_prob``
        (``1 - p_negative``) and ``expected_false_sign_rate`` (running mean up to and
        including the row). Empty (same columns) when not even the first task qualifies.
        ``attrs``: ``max_false_sign_rate``, ``n_tasks`` (considered).
    """
    level = _check_prob("max_false_sign_rate", max_false_sign_rate)
    p = pd.Series(p_negative, dtype=float)
    if p.isna().any() or ((p < 0) | (p > 1)).any():
        bad = p[p.isna() | (p < 0) | (p > 1)]
        raise DataValidationError(
            f"P(negative) should be in [0, 1]; task {bad.index[0]!r} has {float(bad.iloc[0])!r}")
    order = np.argsort(-p.to_numpy(), kind="stable")
    p = p.iloc[order]
    false_sign = 1.0 - p.to_numpy()
    running = np.cumsum(false_sign) / np.arange(1, p.size + 1)
    n_call = int(np.sum(running <= level + _RATE_TOL))
    index = (p.index if isinstance(p.index, pd.MultiIndex)
             else pd.Index(p.index.astype(str), name="task"))
    table = pd.DataFrame({"p_negative": p.to_numpy(), "false_sign_prob": false_sign,
                          "expected_false_sign_rate": running}, index=index).iloc[:n_call]
    table.attrs.update(max_false_sign_rate=level, n_tasks=int(p.size))
    return table
