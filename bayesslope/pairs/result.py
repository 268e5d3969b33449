"""The :class:`TransferMatrix` result: per-pair summaries, optional draws, diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from .design import PairDesign

__all__ = ["TransferMatrix"]

RHAT_MAX = 1.01
ESS_MIN = 400


@dataclass(frozen=True)
class TransferMatrix:
    """Directed transfer slopes between every ordered pair of tasks.

    Slopes are *oriented* (both tasks higher-is-better), so a negative slope is negative
    transfer. ``slope`` is standardized (per sd of the source, in sd of the target, within
    the pair's shared units); ``slope_data`` is in data units (target units per source unit).

    Attributes
    ----------
    design : PairDesign
        Tasks, orientation, pair structure and standardized data.
    table : DataFrame
        One row per pair, indexed by (source, target): see :meth:`summary`.
    population : xarray.Dataset
        Draws (chain, draw) of the population parameters (standardized units); ``sigma``
        only when shared across pairs.
    sampler_stats : xarray.Dataset
        ``diverging``, ``tree_depth``, ``acceptance_rate`` (chain, draw) of the NUTS run.
    draws : xarray.Dataset or None
        ``slope`` and ``intercept`` (standardized) over (source, target, chain, draw) when
        ``keep_draws`` was set.
    priors : dict
        Priors used (standardized units).
    settings : dict
        Sampler settings, seed, chunk size, timings.
    """

    design: PairDesign
    table: pd.DataFrame
    population: xr.Dataset
    sampler_stats: xr.Dataset
    draws: xr.Dataset | None
    priors: dict
    settings: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ matrices
    def _matrix(self, column: str, diagonal: float = np.nan) -> xr.DataArray:
        k = self.design.n_tasks
        out = np.full((k, k), diagonal)
        out[self.design.source, self.design.target] = self.table[column].to_numpy()
        tasks = list(self.design.tasks)
        return xr.DataArray(out, dims=("source", "target"),
                            coords={"source": tasks, "target": tasks}, name=column)

    @property
    def slope(self) -> xr.DataArray:
        """Standardized oriented slopes: draws if kept, else posterior means (diagonal NaN)."""
        if self.draws is not None:
            return self.draws["slope"]
        return self._matrix("slope_mean").rename("slope")

    @property
    def slope_data(self) -> xr.DataArray:
        """Oriented slopes in data units (target per source unit): draws if kept, else means."""
        scale = self._matrix("scale_ratio")
        if self.draws is not None:
            return (self.draws["slope"] * scale).rename("slope_data")
        return self._matrix("slope_data_mean").rename("slope_data")

    @property
    def p_negative(self) -> xr.DataArray:
        """Posterior probability of negative transfer, P(oriented slope < 0), (source, target)."""
        return self._matrix("p_negative")

    @property
    def compatibility(self) -> xr.DataArray:
        """Symmetric compatibility: mean of the two directed standardized slope means.

        ``(E[slope A->B] + E[slope B->A]) / 2``, 1 on the diagonal. On standardized data
        both directed least-squares slopes equal the correlation, so this is a shrunken,
        posterior version of the correlation of the two tasks' oriented scores.
        """
        m = self._matrix("slope_mean").values
        sym = 0.5 * (m + m.T)
        np.fill_diagonal(sym, 1.0)
        tasks = list(self.design.tasks)
        return xr.DataArray(sym, dims=("task_a", "task_b"),
                            coords={"task_a": tasks, "task_b": tasks}, name="compatibility")

    def task_order(self) -> list:
        """Tasks ordered so that compatible ones sit together.

        Average-linkage hierarchical clustering on ``1 - compatibility`` with optimal leaf
        ordering (:mod:`scipy.cluster.hierarchy`).
        """
        from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
        from scipy.spatial.distance import squareform

        tasks = list(self.design.tasks)
        if len(tasks) < 3:
            return tasks
        dist = np.clip(1.0 - self.compatibility.values, 0.0, 2.0)
        np.fill_diagonal(dist, 0.0)
        condensed = squareform(0.5 * (dist + dist.T), checks=False)
        tree = optimal_leaf_ordering(linkage(condensed, method="average"), condensed)
        return [tasks[i] for i in leaves_list(tree)]

    # ------------------------------------------------------------------ tables
    def summary(self) -> pd.DataFrame:
        """One row per (source, target).

        Columns: ``n`` (shared units), ``n_dropped`` (units scored on only one of the two),
        ``r`` (sample correlation), standardized ``slope_mean``, ``slope_sd``,
        ``slope_eti_low``/``slope_eti_high`` (equal-tailed interval, ``settings['ci_prob']``),
        the same with ``slope_data_`` in data units, ``p_negative``, ``intercept_mean``,
        ``sigma_mean`` (NaN for ``likelihood='student_t'``), the slope's ``r_hat`` and
        ``ess_bulk``, and ``n_divergent`` (per-pair NUTS runs; 0 on the Gaussian path).
        """
        return self.table.drop(columns=["scale_ratio"]).copy()

    def diagnostics(self) -> dict:
        """Roll-up of convergence diagnostics.

        Returns
        -------
        dict
            ``n_pairs``; ``n_rhat_high`` / ``rhat_high`` (pairs with R-hat > 1.01);
            ``n_ess_low`` / ``ess_low`` (bulk ESS < 400); ``n_divergences``: those of the
            population NUTS run (they concern every pair: on the Gaussian path the pair
            draws are exact given the population) plus, for ``likelihood='student_t'``,
            those of the per-pair runs (``divergent`` lists the pairs that had any);
            ``population`` (R-hat and ESS of the population parameters); ``ok`` (no
            divergence and >= 99% of pairs pass both checks).
        """
        from arviz_stats.base import array_stats

        t = self.table
        high = t.index[~(t["r_hat"] <= RHAT_MAX)]
        low = t.index[~(t["ess_bulk"] >= ESS_MIN)]
        pop = {}
        for name, da in self.population.data_vars.items():
            v = da.transpose("chain", "draw").values
            pop[name] = {"r_hat": float(array_stats.rhat(v, chain_axis=0, draw_axis=1)),
                         "ess_bulk": float(array_stats.ess(v, chain_axis=0, draw_axis=1))}
        per_pair = (t["n_divergent"] if "n_divergent" in t
                    else pd.Series(0, index=t.index))
        n_div = int(self.sampler_stats["diverging"].sum()) + int(per_pair.sum())
        n = len(t)
        return {
            "n_pairs": n,
            "n_rhat_high": len(high),
            "rhat_high": list(high),
            "n_ess_low": len(low),
            "ess_low": list(low),
            "n_divergences": n_div,
            "divergent": list(t.index[per_pair > 0]),
            "population": pop,
            "ok": n_div == 0 and max(len(high), len(low)) <= 0.01 * n,
        }

    def plot(self, ax=None, order: bool = True, standardized: bool = True,
             p_threshold: float = 0.9, annotate: bool | None = None):
        """Heatmap of transfer slopes with P(negative transfer) marked.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw (default: a new figure).
        order : bool, default True
            Order tasks by :meth:`task_order` (compatible tasks together).
        standardized : bool, default True
            Standardized slopes (comparable across pairs) or data units.
        p_threshold : float, default 0.9
            Cells with ``p_negative`` above it get a marker.
        annotate : bool, optional
            Write the slope in each cell (default: when there are at most 15 tasks).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plots import plot_transfer_matrix

        return plot_transfer_matrix(self, ax=ax, order=order, standardized=standardized,
                                    p_threshold=p_threshold, annotate=annotate)

    def __repr__(self) -> str:
        return (f"TransferMatrix({self.design.n_tasks} tasks, {len(self.table)} pairs, "
                f"{len(self.design.units)} units)")
