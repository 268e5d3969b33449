"""The :class:`TransferMatrix` result: per-pair summaries, optional draws, diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import decisions
from ..diagnostics import ESS_MIN, RHAT_MAX
from ..exceptions import DataValidationError
from ..options import check_ci_prob, ci_names
from .design import PairDesign

__all__ = ["TransferMatrix"]


@dataclass(frozen=True)
class TransferMatrix:
    """Directed transfer slopes between every ordered pair of tasks.

    Result of :func:`bayesslope.fit_transfer_matrix`. Slopes are *oriented* (both tasks
    higher-is-better), so a negative slope is negative transfer. ``slope`` is
    standardized (per sd of the source, in sd of the target, within the pair's shared
    units); ``slope_data`` is in data units (oriented target units per source unit).

    Attributes
    ----------
    design : PairDesign
        Tasks, orientation, pair structure and standardized data.
    table : DataFrame
        Fit-time per-pair summaries, indexed by (source, target): read them through
        :meth:`summary`.
    population : xarray.Dataset
        Draws (chain, draw) of the population parameters (standardized units); ``sigma``
        only when shared across pairs.
    sampler_stats : xarray.Dataset
        ``diverging``, ``tree_depth``, ``acceptance_rate`` (chain, draw) of the NUTS run.
    draws : xarray.Dataset or None
        ``slope`` and ``intercept`` (standardized) over (source, target, chain, draw) when
        the draws were kept (``keep_draws``).
    priors : dict
        Priors used (standardized units).
    spec : dict
        The resolved options (likelihood, ``per_pair_sigma``, method, sampler settings,
        seed, chunk size), timings and library versions; saved with the result.

    Examples
    --------
    Every ordered pair of the 7 Pythia tasks, one unit per checkpoint, checkpoints of one
    model sharing offsets (about 1 minute on 2 cores):

    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> long_df = df.assign(unit=df["model"] + "@" + df["step"].astype(str))
    >>> tm = bs.fit_transfer_matrix(long_df, unit="unit", task="task", y="y",
    ...                             group="model", random_seed=1)  # doctest: +SKIP
    >>> tm.summary()[["mean", "eti90_lb", "eti90_ub", "p_negative"]]  # doctest: +SKIP
    >>> tm.slope.mean(("chain", "draw"))  # doctest: +SKIP
    >>> tm.diagnostics()  # doctest: +SKIP
    >>> fig = tm.plot()  # doctest: +SKIP
    """

    design: PairDesign
    table: pd.DataFrame
    population: xr.Dataset
    sampler_stats: xr.Dataset
    draws: xr.Dataset | None
    priors: dict
    spec: dict = field(default_factory=dict)

    @property
    def likelihood(self) -> str:
        """Observation model of the pairs: "normal", "student_t" or "binomial"."""
        return self.spec["likelihood"]

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
        return self._matrix("mean").rename("slope")

    @property
    def slope_data(self) -> xr.DataArray:
        """Oriented slopes in data units (target per source unit): draws if kept, else means."""
        scale = self._matrix("scale_ratio")
        if self.draws is not None:
            return (self.draws["slope"] * scale).rename("slope_data")
        return (self._matrix("mean") * scale).rename("slope_data")

    @property
    def compatibility(self) -> xr.DataArray:
        """Symmetric compatibility: mean of the two directed standardized slope means.

        ``(E[slope A->B] + E[slope B->A]) / 2``, 1 on the diagonal. On standardized data
        both directed least-squares slopes equal the correlation, so this is a shrunken,
        posterior version of the correlation of the two tasks' oriented scores. Its
        uncertainty: :meth:`compatibility_summary`.
        """
        m = self._matrix("mean").values
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
    def summary(self, ci_prob: float = 0.9, rope=None, decision_prob: float = 0.95
                ) -> pd.DataFrame:
        """One row per (source, target), columns named as ``TransferFit.summary``'s.

        Parameters
        ----------
        ci_prob : float, default 0.9
            Probability of the equal-tailed intervals. Computed from the kept draws; when
            the draws were not kept (``keep_draws=False``) only the probabilities stored
            at fit time are available (:data:`~.summaries.STORED_CI_PROBS`) and another
            one raises a ``DataValidationError``.
        rope : float or (float, float), optional
            Region of practical equivalence of the *standardized* slope (sd of the target
            per sd of the source; a half-width ``r`` means ``[-r, r]``), as in
            ``TransferFit.summary(rope=...)`` and computed by the same functions
            (:mod:`bayesslope.decisions`): ``p_negative`` becomes P(slope < lo), followed
            by ``p_rope`` and ``p_positive`` (the three sum to 1) and ``decision``
            ("negative", "practically zero", "positive" or "undecided"). Needs the kept
            draws.
        decision_prob : float, default 0.95
            Posterior probability, in (0.5, 1), a region needs for a decision.

        Returns
        -------
        pandas.DataFrame
            Indexed by (source, target). Of the oriented standardized slope (``slope``):
            ``mean``, ``sd``, ``eti<pct>_lb``, ``eti<pct>_ub``, ``p_negative``, ``r_hat``,
            ``ess_bulk``; ``n_divergent`` (per-pair NUTS; 0 on the collapsed path); the
            same interval in data units (``slope_data_mean``, ``slope_data_sd``,
            ``slope_data_eti<pct>_lb``/``_ub``: oriented target units per source unit);
            ``intercept_mean``, ``intercept_sd``, ``sigma_mean`` (NaN for per-pair NUTS);
            ``n`` (shared units), ``n_dropped`` (units scored on only one of the two),
            ``r`` (sample correlation); ``x_better`` / ``y_better``: the orientation of
            the source and of the target.
        """
        ci_prob = check_ci_prob(ci_prob)
        lb, ub = ci_names(ci_prob)
        t = self.table
        # Draws on disk (a Zarr store opened by bs.load) are read only for an interval
        # that was not stored at fit time (the stored ones come from the same draws).
        lazy = self.draws is not None and not isinstance(self.draws["slope"].data, np.ndarray)
        if self.draws is not None and not (lazy and lb in t.columns):
            slope = self.draws["slope"].values[self.design.source, self.design.target]
            lo, hi = np.quantile(slope, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=(1, 2))
        elif lb in t.columns:
            lo, hi = t[lb].to_numpy(), t[ub].to_numpy()
        else:
            from .summaries import STORED_CI_PROBS

            raise DataValidationError(
                f"ci_prob={ci_prob!r} needs the pair draws, which this fit did not keep "
                f"(keep_draws=False); without them summary() offers ci_prob in "
                f"{list(STORED_CI_PROBS)}")
        scale = t["scale_ratio"].to_numpy()
        out = pd.DataFrame({"mean": t["mean"], "sd": t["sd"], lb: lo, ub: hi}, index=t.index)
        for col in ("p_negative", "r_hat", "ess_bulk", "n_divergent"):
            out[col] = t[col]
        out["slope_data_mean"] = t["mean"] * scale
        out["slope_data_sd"] = t["sd"] * scale
        out[f"slope_data_{lb}"] = lo * scale
        out[f"slope_data_{ub}"] = hi * scale
        for col in ("intercept_mean", "intercept_sd", "sigma_mean", "n", "n_dropped", "r"):
            out[col] = t[col]
        word = {True: "higher", False: "lower"}
        hib = self.design.higher_is_better
        out["x_better"] = [word[hib[a]] for a in t.index.get_level_values("source")]
        out["y_better"] = [word[hib[b]] for b in t.index.get_level_values("target")]
        if rope is not None:
            out = decisions.insert_rope_columns(out, self._rope_probabilities(rope),
                                                decision_prob)
        return out

    def _pair_draws(self, what: str) -> np.ndarray:
        """Standardized slope draws, shape (sample, pair) in the table's order."""
        if self.draws is None:
            raise DataValidationError(
                f"{what} needs the pair draws, which this fit did not keep "
                f"(keep_draws=False); refit with keep_draws=True")
        slope = self.draws["slope"].values[self.design.source, self.design.target]
        return slope.reshape(slope.shape[0], -1).T

    def _rope_probabilities(self, rope) -> pd.DataFrame:
        decisions.parse_rope(rope)  # a bad rope is named before the draws are needed
        return decisions.rope_probabilities_from_draws(
            self._pair_draws("rope="), self.table.index, rope)

    def negative_pairs(self, max_false_sign_rate: float = 0.05, rope=None) -> pd.DataFrame:
        """The largest list of ordered pairs to call negative at an expected false-sign rate.

        Pairs by decreasing P(negative) while the mean of ``1 - P(negative)`` over the list
        stays at most ``max_false_sign_rate`` (the list ``TransferFit.negative_tasks``
        makes for tasks, by the same function:
        :func:`bayesslope.decisions.negative_task_set`); with ``rope`` "negative" means
        below the ROPE of the standardized slope (as in :meth:`summary`).

        Parameters
        ----------
        max_false_sign_rate : float, default 0.05
            In (0, 1).
        rope : float or (float, float), optional
            Needs the kept draws; without it the stored P(slope < 0) is used.

        Returns
        -------
        pandas.DataFrame
            Indexed by (source, target), in call order: ``p_negative``,
            ``false_sign_prob``, ``expected_false_sign_rate``. ``attrs``:
            ``max_false_sign_rate``, ``n_tasks`` (the number of pairs considered) and
            ``rope`` when given.

        Examples
        --------
        >>> import bayesslope as bs
        >>> df = bs.load_dataset("pythia")
        >>> long_df = df.assign(unit=df["model"] + "@" + df["step"].astype(str))
        >>> tm = bs.fit_transfer_matrix(long_df, unit="unit", task="task", y="y",
        ...                             group="model", random_seed=1)  # doctest: +SKIP
        >>> tm.negative_pairs(0.05)  # doctest: +SKIP
        >>> tm.summary(rope=0.1)["decision"].value_counts()  # doctest: +SKIP
        """
        if rope is None:
            p = self.table["p_negative"]
        else:
            p = self._rope_probabilities(rope)["p_negative"]
        table = decisions.negative_task_set(p, max_false_sign_rate)
        if rope is not None:
            table.attrs["rope"] = decisions.parse_rope(rope)
        return table

    def _direction_pairs(self, ci_prob: float, what: str, average: bool) -> pd.DataFrame:
        """A->B minus (or averaged with) B->A per unordered pair: draws or normal approx."""
        from .summaries import contrast_table, unordered_pairs

        ci_prob = check_ci_prob(ci_prob)
        ab, ba, task_a, task_b = unordered_pairs(self.design)
        index = pd.MultiIndex.from_arrays([task_a, task_b], names=["task_a", "task_b"])
        mean = self.table["mean"].to_numpy()

        def combine(ab_values, ba_values):
            return 0.5 * (ab_values + ba_values) if average else ab_values - ba_values

        if self.draws is not None:
            draws = self._pair_draws(what)
            out = contrast_table(combine(draws[:, ab], draws[:, ba]), index, ci_prob)
            method = "draws"
        else:
            # Without the draws: the directions' means and sds, taken as independent (as
            # they are given the population parameters), with a normal approximation.
            sd = self.table["sd"].to_numpy()
            out = contrast_table(combine(mean[ab], mean[ba]), index, ci_prob,
                                 sd=(0.5 if average else 1.0) * np.hypot(sd[ab], sd[ba]))
            method = "normal approximation"
        out.insert(0, "slope_ab_mean", mean[ab])
        out.insert(1, "slope_ba_mean", mean[ba])
        out.attrs.update(ci_prob=ci_prob, method=method)
        return out

    def asymmetry(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Posterior of (standardized slope A -> B) - (B -> A) per unordered task pair.

        Computed per posterior draw from the kept pair draws: at each (chain, draw) both
        directions are drawn given the same population draw, and the model treats the two
        directed regressions as conditionally independent given it, so the difference of
        the two draws is a draw of the difference. Without the kept draws
        (``keep_draws=False``) the stored means and sds give a normal approximation (the
        sds added in quadrature; ``attrs['method']`` says which).

        Under ``likelihood="normal"`` the two directions have the *same* posterior: on
        standardized scores a pair's data enter through its size and correlation only,
        equal in both directions. The asymmetry is then zero up to Monte Carlo noise (its
        interval covers 0) and is informative only for ``student_t`` and ``binomial``
        fits, where outliers, leverage points or the probit scale act differently on the
        source and on the target. Under ``binomial`` a slope is in probit units of the
        target per sd of the source, so the difference also carries the two tasks' probit
        scales (a task near chance or ceiling has a stretched one).

        Parameters
        ----------
        ci_prob : float, default 0.9
            Probability of the equal-tailed interval.

        Returns
        -------
        pandas.DataFrame
            Indexed by (``task_a``, ``task_b``), ``task_a`` before ``task_b`` in task
            order, only pairs fitted in both directions: ``slope_ab_mean`` and
            ``slope_ba_mean`` (the two directions' posterior means), then of the
            difference ``mean``, ``sd``, ``eti<pct>_lb``, ``eti<pct>_ub``, ``p_positive``
            (P(A -> B steeper than B -> A)) and ``p_negative``. ``attrs``: ``ci_prob``,
            ``method`` ("draws" or "normal approximation").

        Examples
        --------
        A Gaussian fit gives differences centred on 0 (see above); the same call with
        ``likelihood="student_t"`` gives informative ones.

        >>> import bayesslope as bs
        >>> df = bs.load_dataset("pythia")
        >>> long_df = df.assign(unit=df["model"] + "@" + df["step"].astype(str))
        >>> tm = bs.fit_transfer_matrix(long_df, unit="unit", task="task", y="y",
        ...                             group="model", random_seed=1)  # doctest: +SKIP
        >>> tm.asymmetry(ci_prob=0.9).sort_values("mean")  # doctest: +SKIP
        """
        return self._direction_pairs(ci_prob, "asymmetry()", average=False)

    def compatibility_summary(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """:attr:`compatibility` with its uncertainty, per unordered task pair.

        The posterior of ``(slope A -> B + slope B -> A) / 2`` (standardized), per draw as
        in :meth:`asymmetry` (normal approximation without the kept draws). Its ``mean``
        equals the :attr:`compatibility` matrix's entry.

        Parameters
        ----------
        ci_prob : float, default 0.9
            Probability of the equal-tailed interval.

        Returns
        -------
        pandas.DataFrame
            Indexed by (``task_a``, ``task_b``): ``slope_ab_mean``, ``slope_ba_mean``,
            ``mean``, ``sd``, ``eti<pct>_lb``, ``eti<pct>_ub``, ``p_positive``,
            ``p_negative`` (P(the two tasks are incompatible on average)). ``attrs``:
            ``ci_prob``, ``method``.

        Examples
        --------
        >>> import bayesslope as bs
        >>> df = bs.load_dataset("pythia")
        >>> long_df = df.assign(unit=df["model"] + "@" + df["step"].astype(str))
        >>> tm = bs.fit_transfer_matrix(long_df, unit="unit", task="task", y="y",
        ...                             group="model", random_seed=1)  # doctest: +SKIP
        >>> tm.compatibility_summary(0.9).sort_values("mean").head()  # doctest: +SKIP
        """
        return self._direction_pairs(ci_prob, "compatibility_summary()", average=True)

    def p_negative_transfer(self) -> pd.Series:
        """P(oriented slope < 0 | data) per (source, target): a Series named ``p_negative``."""
        return self.table["p_negative"].copy()

    def diagnostics(self) -> pd.DataFrame:
        """Convergence diagnostics, one row per variable (as ``TransferFit.diagnostics``).

        Returns
        -------
        pandas.DataFrame
            Indexed by ``variable``: the population parameters (R-hat and ESS of their
            NUTS run) and ``slope`` (over pairs: max R-hat, min bulk ESS; the tail ESS is
            not computed per pair, NaN). Columns ``r_hat_max``, ``ess_bulk_min``,
            ``ess_tail_min``. ``attrs``: ``divergences`` (those of the population run,
            which concern every pair, plus those of per-pair NUTS runs), ``n_pairs``,
            ``n_rhat_high`` / ``rhat_high`` (pairs with R-hat > 1.01), ``n_ess_low`` /
            ``ess_low`` (bulk ESS < 400), ``divergent`` (pairs with per-pair
            divergences), ``ok`` (no divergence and >= 99% of pairs pass both checks).
        """
        from arviz_stats.base import array_stats

        t = self.table
        rows = {}
        for name, da in self.population.data_vars.items():
            v = da.transpose("chain", "draw").values
            rows[name] = {
                "r_hat_max": float(array_stats.rhat(v, chain_axis=0, draw_axis=1)),
                "ess_bulk_min": float(array_stats.ess(v, chain_axis=0, draw_axis=1)),
                "ess_tail_min": float(array_stats.ess(v, chain_axis=0, draw_axis=1,
                                                      method="tail", prob=0.05)),
            }
        rows["slope"] = {"r_hat_max": float(t["r_hat"].max()),
                         "ess_bulk_min": float(t["ess_bulk"].min()), "ess_tail_min": np.nan}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "variable"
        high = t.index[~(t["r_hat"] <= RHAT_MAX)]
        low = t.index[~(t["ess_bulk"] >= ESS_MIN)]
        per_pair = t["n_divergent"]
        n_div = int(self.sampler_stats["diverging"].sum()) + int(per_pair.sum())
        n = len(t)
        table.attrs.update({
            "divergences": n_div, "n_pairs": n, "n_rhat_high": len(high),
            "rhat_high": list(high), "n_ess_low": len(low), "ess_low": list(low),
            "divergent": list(t.index[per_pair > 0]),
            "ok": n_div == 0 and max(len(high), len(low)) <= 0.01 * n,
        })
        return table

    def dependence(self) -> pd.DataFrame | None:
        """Residual clustering by a column grouping the units (e.g. the model of checkpoints).

        Returns
        -------
        pandas.DataFrame or None
            One row per candidate column of the fitted frame: ``n_rows``, ``n_levels``,
            ``statistic``, ``p_value`` (permutation of the levels over units), ``icc``
            (pooled over pairs), ``inflation`` (median over pairs of the predicted slope
            sd ratio with ``group=column``) and ``flagged``; ``attrs``: ``alpha``,
            ``threshold``, ``n_permutations``, ``skipped`` (untested columns and why).
            None when fitted with ``check_dependence=False``. See
            :func:`bayesslope.dependence.check_transfer_dependence`.
        """
        from ..dependence import dependence_from_dict

        info = self.spec.get("dependence")
        return None if info is None else dependence_from_dict(info)

    def plot_data(self, order: bool = True, standardized: bool = True) -> dict:
        """What :meth:`plot` draws: task order, slope matrix, P(negative) matrix.

        Returns
        -------
        dict
            ``tasks`` (list), ``values`` and ``p_negative`` (arrays, rows source,
            columns target, in ``tasks`` order).
        """
        tasks = self.task_order() if order else list(self.design.tasks)
        values = self._matrix("mean")
        if not standardized:
            values = values * self._matrix("scale_ratio")
        sel = dict(source=tasks, target=tasks)
        return {"tasks": tasks, "values": values.sel(**sel).values,
                "p_negative": self._matrix("p_negative").sel(**sel).values}

    # ------------------------------------------------------------------ storage
    def to_netcdf(self, path: str | Path) -> Path:
        """Write the whole result to one netCDF file (no pickle); read it with ``bs.load``.

        Returns
        -------
        pathlib.Path
        """
        from .storage import write_transfer_matrix

        return write_transfer_matrix(self, Path(path))

    def plot(self, ax=None, order: bool = True, standardized: bool = True,
             p_threshold: float = 0.9, annotate: bool | None = None, **kwargs):
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
        **kwargs
            ``mark_positive``, ``max_label``, ``style``: see
            :func:`~bayesslope.pairs.plots.plot_transfer_matrix` (``order`` also takes
            "cluster", "name" or a list of tasks).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plots import plot_transfer_matrix

        return plot_transfer_matrix(self, ax=ax, order=order, standardized=standardized,
                                    p_threshold=p_threshold, annotate=annotate, **kwargs)

    def __repr__(self) -> str:
        return (f"TransferMatrix({self.design.n_tasks} tasks, {len(self.table)} pairs, "
                f"{len(self.design.units)} units)")
