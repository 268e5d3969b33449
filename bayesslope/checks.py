"""Posterior predictive checks and LOO-PIT of a :class:`~bayesslope.result.TransferFit`.

The statistics come from arviz-stats (``loo_pit``: PSIS-weighted probability integral
transform); the figures draw the ECDF of those values (with a simulated simultaneous
band) and per-task predictive quantiles. Every check uses the scores on the data
scale (proportions for count likelihoods; their log-likelihood includes ``log n``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["predictive_tree", "loo_pit", "plot_loo_pit", "plot_ppc"]


def predictive_tree(fit, random_seed=None):
    """The DataTree arviz-stats expects for predictive checks of ``fit``.

    Groups ``posterior``, ``log_likelihood``, ``posterior_predictive`` and
    ``observed_data`` (variable ``y``, dims ``obs``; data scale).
    """
    import xarray as xr

    post = fit.posterior["posterior"]
    coords = {"chain": post["chain"].values, "draw": post["draw"].values,
              "obs": np.arange(fit.design.n_obs)}
    dims = ("chain", "draw", "obs")
    tree = xr.DataTree()
    tree["posterior"] = xr.DataTree(post.to_dataset())
    tree["log_likelihood"] = xr.DataTree(
        xr.Dataset({"y": (dims, fit.log_likelihood())}, coords=coords))
    tree["posterior_predictive"] = xr.DataTree(
        xr.Dataset({"y": (dims, fit.posterior_predictive(random_seed=random_seed))},
                   coords=coords))
    tree["observed_data"] = xr.DataTree(
        xr.Dataset({"y": ("obs", fit.design.y)}, coords={"obs": coords["obs"]}))
    return tree


def loo_pit(fit, random_seed=None) -> pd.DataFrame:
    """LOO-PIT value of every row (:func:`arviz_stats.loo_pit`).

    For a calibrated model the values are uniform on [0, 1]; a U shape means predictive
    intervals too narrow, a hump too wide. Count likelihoods get randomized PIT values
    (``random_seed``), as arviz-stats does for discrete data.

    Returns
    -------
    pandas.DataFrame
        Indexed by row label: ``task``, ``x``, ``y``, ``loo_pit``.
    """
    import warnings

    from arviz_stats import loo_pit as _loo_pit

    tree = predictive_tree(fit, random_seed=random_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k: see the fit's LOO instead
        pit = _loo_pit(tree, var_names="y", random_state=random_seed)
    d = fit.design
    return pd.DataFrame({"task": np.asarray(d.tasks)[d.task_idx], "x": d.x, "y": d.y,
                         "loo_pit": np.asarray(pit["y"]).reshape(-1)},
                        index=pd.Index(d.row_labels, name="row"))


def _ecdf_band(n: int, prob: float, z: np.ndarray, rng, n_sim: int = 1000) -> np.ndarray:
    """Half-width of a simultaneous ``prob`` band of ECDF(z) - z for ``n`` uniform values.

    Simulated: the ``prob`` quantile over uniform samples of the largest standardized
    deviation ``max_z |ECDF(z) - z| / sqrt(z (1 - z) / n)`` scales the pointwise sd, so
    the whole ECDF stays inside with probability ``prob`` under calibration.
    """
    sd = np.sqrt(z * (1 - z) / n)
    worst = np.empty(n_sim)
    for i in range(0, n_sim, 100):  # blocks of 100 samples keep memory at 100 x n
        u = np.sort(rng.uniform(size=(min(100, n_sim - i), n)), axis=1)
        ecdf = np.stack([np.searchsorted(row, z, side="right") for row in u]) / n
        worst[i:i + len(u)] = np.max(np.abs(ecdf - z) / sd, axis=1)
    return np.quantile(worst, prob) * sd


def plot_loo_pit(fit, random_seed=None, *, ax=None, envelope_prob: float = 0.95,
                 style: str | None = None):
    """ECDF of the LOO-PIT values minus the uniform CDF, with a simultaneous band.

    Under calibration the LOO-PIT values are uniform, so ECDF(u) - u stays near 0 and
    inside the ``envelope_prob`` simultaneous band (simulated from uniform samples of the
    same size). Values piled up in the middle (predictive intervals too wide) make the
    curve dip below 0 and then rise above it; values piled up at 0 and 1 (intervals too
    narrow) the mirror image; a curve above 0 throughout means scores below prediction.
    The values are :func:`loo_pit`'s (arviz-stats).

    Parameters
    ----------
    random_seed : int, optional
        Seed of the predictive draws (count likelihoods) and of the band's simulation.
    ax : matplotlib.axes.Axes, optional
    envelope_prob : float, default 0.95
    style : {"one-column", "two-column"}, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .options import check_ci_prob
    from .style import COLORS, maybe_style, single_axes

    check_ci_prob(envelope_prob)
    pit = np.sort(loo_pit(fit, random_seed=random_seed)["loo_pit"].to_numpy())
    z = np.linspace(0.005, 0.995, 199)
    diff = np.searchsorted(pit, z, side="right") / pit.size - z
    half = _ecdf_band(pit.size, envelope_prob, z, np.random.default_rng(random_seed))
    with maybe_style(style):
        fig, ax = single_axes(ax, (4.0, 2.8))
        ax.fill_between(z, -half, half, color=COLORS["neutral"], alpha=0.3, lw=0,
                        label=f"{envelope_prob:.0%} simultaneous band")
        ax.axhline(0, color="0.4", lw=0.6)
        ax.step(z, diff, where="post", color=COLORS["fit"], label="LOO-PIT ECDF - uniform")
        outside = np.abs(diff) > half
        ax.set_xlim(0, 1)
        ax.set_xlabel("LOO-PIT value u")
        ax.set_ylabel("ECDF(u) - u")
        ax.set_title(f"LOO-PIT, {pit.size} rows"
                     + (f": {outside.mean():.0%} of u outside the band" if outside.any()
                        else ": inside the band"), fontsize="small", loc="left")
        ax.legend(fontsize="x-small", frameon=False, loc="best")
    return fig


def plot_ppc(fit, *, task=None, ci_prob: float = 0.9, random_seed=None, axes=None,
             ax=None, ncols: int | None = None, panel_size=(2.6, 2.1),
             better_right: bool = True, xlabel: str | None = None, ylabel: str | None = None,
             style: str | None = None):
    """Data against posterior predictive intervals, one panel per task.

    Each row's ``ci_prob`` posterior predictive interval is a vertical bar at its x, the
    observed score a dot (vermillion when outside); the title gives the share inside.

    Parameters
    ----------
    task : str or sequence of str, optional
        Task(s) to show; default all.
    ci_prob : float, default 0.9
    random_seed : int, optional
        Seed of the predictive draws.
    axes, ax : matplotlib Axes or array of Axes, optional
        One per task.
    ncols : int, optional
    panel_size : (float, float)
        One panel, in inches (outside a paper style).
    better_right : bool, default True
        Invert a lower-is-better x or y axis, as :func:`~bayesslope.plots.plot_tasks`.
    xlabel, ylabel : str, optional
        Axis names (default the metric or column names).
    style : {"one-column", "two-column"}, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .options import check_ci_prob
    from .plots import metric_name
    from .style import COLORS, maybe_style, panel_grid, shorten, thin_ticks

    check_ci_prob(ci_prob)
    d = fit.design
    names = list(d.tasks) if task is None else ([task] if isinstance(task, str) else list(task))
    unknown = [t for t in names if t not in d.tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the fit has {list(d.tasks)}")
    pred = fit.posterior_predictive(random_seed=random_seed)
    pred = pred.reshape(-1, pred.shape[-1])
    lo, hi = np.quantile(pred, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
    with maybe_style(style):
        fig, flat, created = panel_grid(len(names), axes=axes if axes is not None else ax,
                                        ncols=ncols, panel_size=panel_size)
        for a, name in zip(flat, names, strict=True):
            k = d.tasks.index(name)
            m = d.task_idx == k
            inside = (d.y[m] >= lo[m]) & (d.y[m] <= hi[m])
            a.vlines(d.x[m], lo[m], hi[m], color=COLORS["fit"], alpha=0.35, lw=1.5,
                     label=f"{ci_prob:.0%} predictive")
            a.scatter(d.x[m], d.y[m], s=7, lw=0,
                      color=np.where(inside, COLORS["data"], COLORS["negative"]),
                      label="data", zorder=3)
            a.set_title(f"{shorten(name, 28)}: {inside.mean():.0%} inside", fontsize="small")
            a.tick_params(labelsize="x-small")
            thin_ticks(a, nbins=4)
            if better_right and d.x_better == "lower":
                a.xaxis.set_inverted(True)
            if better_right and d.y_better[k] == "lower":
                a.yaxis.set_inverted(True)
        flat[0].legend(fontsize="x-small", loc="best")
        if created:
            arrow = " (better \u2192)" if better_right else f" ({d.x_better} is better)"
            fig.supxlabel((xlabel or metric_name(fit, "x")) + arrow, fontsize="medium")
            fig.supylabel(ylabel or metric_name(fit, "y"), fontsize="medium")
    return fig
