"""Posterior predictive checks and LOO-PIT of a :class:`~bayesslope.result.TransferFit`.

The statistics come from arviz-stats (``loo_pit``: PSIS-weighted probability integral
transform) and the calibration figure from arviz-plots (``plot_loo_pit``); the per-task
PPC figure only draws predictive quantiles. Every check uses the scores on the data
scale (proportions for count likelihoods; their log-likelihood includes ``log n``).
"""

from __future__ import annotations

import math

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


def plot_loo_pit(fit, random_seed=None, **kwargs):
    """ECDF of the LOO-PIT values with a simultaneous band (:func:`arviz_plots.plot_loo_pit`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import warnings

    from arviz_plots import plot_loo_pit as _plot

    tree = predictive_tree(fit, random_seed=random_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pc = _plot(tree, var_names=["y"], backend="matplotlib", **kwargs)
    # arviz-plots 1.3 keeps the matplotlib Figure under the "figure" node of its viz tree.
    fig = pc.get_viz("figure")
    return fig.item() if hasattr(fig, "item") else fig


def plot_ppc(fit, *, task=None, ci_prob: float = 0.9, random_seed=None, axes=None,
             ncols: int | None = None, panel_size=(3.0, 2.4)):
    """Data against posterior predictive intervals, one panel per task.

    Each row's ``ci_prob`` posterior predictive interval is a vertical bar at its x, the
    observed score a dot (red when outside); the title gives the share inside.

    Parameters
    ----------
    task : str or sequence of str, optional
        Task(s) to show; default all.
    ci_prob : float, default 0.9
    random_seed : int, optional
        Seed of the predictive draws.
    axes : array of matplotlib Axes, optional
        One per task.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from .options import check_ci_prob

    check_ci_prob(ci_prob)
    d = fit.design
    names = list(d.tasks) if task is None else ([task] if isinstance(task, str) else list(task))
    unknown = [t for t in names if t not in d.tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the fit has {list(d.tasks)}")
    pred = fit.posterior_predictive(random_seed=random_seed)
    pred = pred.reshape(-1, pred.shape[-1])
    lo, hi = np.quantile(pred, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
    if axes is None:
        ncols = ncols or min(4, len(names))
        nrows = math.ceil(len(names) / ncols)
        fig, grid = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                                 figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
        flat = list(grid.flat)
        for ax in flat[len(names):]:
            ax.set_visible(False)
    else:
        flat = list(np.asarray(axes, dtype=object).flat)
        if len(flat) < len(names):
            raise ValueError(f"axes has {len(flat)} panels for {len(names)} tasks")
        fig = flat[0].figure
    for ax, name in zip(flat, names, strict=False):
        m = d.task_idx == d.tasks.index(name)
        inside = (d.y[m] >= lo[m]) & (d.y[m] <= hi[m])
        ax.vlines(d.x[m], lo[m], hi[m], color="C0", alpha=0.35, lw=1.5,
                  label=f"{ci_prob:.0%} predictive")
        ax.scatter(d.x[m], d.y[m], s=7, lw=0, color=np.where(inside, "0.2", "C3"),
                   label="data", zorder=3)
        ax.set_title(f"{name}: {inside.mean():.0%} inside", fontsize=8)
        ax.tick_params(labelsize=7)
    flat[0].legend(fontsize=6, loc="best")
    return fig
