"""Per-pair summaries of the transfer matrix, filled chunk by chunk as the draws arrive.

The draws of 10,000 pairs do not fit in memory at once, so every summary a result needs
later is computed here while a chunk's draws exist: mean, sd, P(negative), R-hat, bulk
ESS and the equal-tailed intervals of :data:`STORED_CI_PROBS` (the probabilities
``TransferMatrix.summary(ci_prob=...)`` offers when the draws were not kept).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..options import ci_names
from .stage import chunk_columns

__all__ = ["STORED_CI_PROBS", "quantile_levels", "ChunkSummaries", "pair_table",
           "unordered_pairs", "contrast_table"]

# Interval probabilities stored per pair at fit time (ArviZ's 0.89 and 0.94 included).
STORED_CI_PROBS = (0.5, 0.8, 0.89, 0.9, 0.94, 0.95, 0.99)


def quantile_levels() -> tuple[list[str], np.ndarray]:
    """Column names and probabilities of the stored interval bounds."""
    names, levels = [], []
    for p in STORED_CI_PROBS:
        names += list(ci_names(p))
        levels += [(1.0 - p) / 2.0, (1.0 + p) / 2.0]
    return names, np.array(levels)


class ChunkSummaries:
    """Per-pair summaries (and optionally the draws) filled chunk by chunk.

    R-hat and bulk ESS go through ``pool`` (a :class:`~.parallel.DiagnosticsPool`, or a
    :class:`~.parallel.DeviceDiagnostics` on accelerators), so with worker processes they
    overlap the drawing of the next chunks; :meth:`finish` collects them.
    """

    def __init__(self, n_pairs: int, chains: int, draws: int, keep_draws: bool, pool):
        self.q_names, self.q_levels = quantile_levels()
        self.cols = {c: np.empty(n_pairs) for c in (
            "mean", "sd", *self.q_names, "p_negative", "intercept_mean", "intercept_sd",
            "r_hat", "ess_bulk")}
        self.cols["n_divergent"] = np.zeros(n_pairs, dtype=int)
        self.kept = ({v: np.empty((n_pairs, chains, draws)) for v in ("slope", "intercept")}
                     if keep_draws else {})
        self.pool = pool
        self.pending = []
        self.diag_s = 0.0  # main-process seconds computing or waiting for R-hat/ESS

    def add(self, start: int, stop: int, intercept: np.ndarray, slope: np.ndarray,
            n_divergent: np.ndarray | None = None) -> None:
        """Summarize pairs ``start:stop`` from draws of shape (chain, draw, stop - start)."""
        cols, sl = self.cols, slice(start, stop)
        t0 = time.perf_counter()
        # Quarter chunks for the workers, so that they finish close together at the end.
        n = stop - start
        step = max(1, -(-n // 4)) if self.pool.workers else n
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            self.pending.append((slice(start + lo, start + hi),
                                 self.pool.submit(slope[..., lo:hi])))
        # Bounded memory: at most a few chunks of draws wait for a worker.
        while len(self.pending) > 8 * max(1, self.pool.workers):
            self._collect_oldest()
        self.diag_s += time.perf_counter() - t0
        for name, values in chunk_columns(intercept, slope, self.q_names,
                                          self.q_levels).items():
            cols[name][sl] = values
        if n_divergent is not None:
            cols["n_divergent"][sl] = n_divergent
        if self.kept:
            self.kept["slope"][sl] = np.moveaxis(slope, -1, 0)
            self.kept["intercept"][sl] = np.moveaxis(intercept, -1, 0)

    def put(self, start: int, stop: int, cols: dict, draws: dict | None = None) -> None:
        """Store the finished summaries of pairs ``start:stop`` (from a worker or a store).

        ``cols``: columns as :func:`~.stage.summarize_chunk` returns them (``sigma_mean``
        included with per-pair sigma); ``draws``: kept draws shaped (C, chain, draw).
        """
        sl = slice(start, stop)
        for name, values in cols.items():
            if name not in self.cols:
                self.cols[name] = np.full(len(self.cols["mean"]), np.nan)
            self.cols[name][sl] = values
        if self.kept and draws is not None:
            for v in ("slope", "intercept"):
                self.kept[v][sl] = draws[v]

    def _collect_oldest(self) -> None:
        sl, future = self.pending.pop(0)
        self.cols["r_hat"][sl], self.cols["ess_bulk"][sl] = future.result()

    def finish(self) -> None:
        """Wait for and store every chunk's R-hat and ESS."""
        t0 = time.perf_counter()
        while self.pending:
            self._collect_oldest()
        self.diag_s += time.perf_counter() - t0


def pair_table(design, cols: dict, sigma_mean: np.ndarray, scale: np.ndarray) -> pd.DataFrame:
    """The fit-time table of a :class:`~.result.TransferMatrix`, indexed by (source, target).

    ``scale`` turns a standardized slope into data units (target per source unit).
    """
    table = pd.DataFrame({"n": design.n, "n_dropped": design.n_dropped, "r": design.r},
                         index=design.pair_labels())
    for name, values in cols.items():
        table[name] = values
    table["sigma_mean"] = sigma_mean
    table["scale_ratio"] = scale
    return table


def unordered_pairs(design) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Rows of the pair table for A -> B and B -> A, one entry per unordered pair.

    Returns
    -------
    ab, ba : numpy.ndarray of int
        Positions (in the fit-time table's order) of the two directions, for every pair
        of tasks ``a`` before ``b`` in ``design.tasks`` with both directions fitted.
    task_a, task_b : list of str
    """
    k = design.n_tasks
    row = np.full((k, k), -1)
    row[design.source, design.target] = np.arange(len(design.source))
    a, b = np.triu_indices(k, 1)
    keep = (row[a, b] >= 0) & (row[b, a] >= 0)
    a, b = a[keep], b[keep]
    tasks = list(design.tasks)
    return row[a, b], row[b, a], [tasks[i] for i in a], [tasks[i] for i in b]


def contrast_table(values, index: pd.Index, ci_prob: float, sd=None) -> pd.DataFrame:
    """Mean, sd, equal-tailed interval, P(> 0) and P(< 0) of a per-pair quantity.

    Parameters
    ----------
    values : numpy.ndarray
        Draws, shape (sample, item); or, with ``sd``, the means (shape (item,)) of a
        normal approximation.
    index : pandas.Index
    ci_prob : float
    sd : numpy.ndarray, optional
        Standard deviations of the normal approximation (no draws kept).

    Returns
    -------
    pandas.DataFrame
        ``mean``, ``sd``, ``eti<pct>_lb``, ``eti<pct>_ub``, ``p_positive``, ``p_negative``.
    """
    from scipy import stats

    lb, ub = ci_names(ci_prob)
    tails = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
    if sd is None:
        draws = np.asarray(values, dtype=float)
        mean = draws.mean(axis=0)
        sd = draws.std(axis=0, ddof=1)
        lo, hi = np.quantile(draws, tails, axis=0)
        p_pos, p_neg = (draws > 0).mean(axis=0), (draws < 0).mean(axis=0)
    else:
        mean, sd = np.asarray(values, dtype=float), np.asarray(sd, dtype=float)
        lo, hi = (mean + stats.norm.ppf(q) * sd for q in tails)
        p_pos = stats.norm.sf(0.0, loc=mean, scale=sd)
        p_neg = 1.0 - p_pos
    return pd.DataFrame({"mean": mean, "sd": sd, lb: lo, ub: hi, "p_positive": p_pos,
                         "p_negative": p_neg}, index=index)
