"""Figures of :mod:`bayesslope.linearity`: per-task data with each shape's mean curve."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plot_linearity", "mean_curve"]

_COLORS = {"linear": "C3", "sigmoid": "C0", "hockey_stick": "C2", "quadratic": "C4"}


def mean_curve(fit, task: str, grid: np.ndarray, max_draws: int = 400) -> np.ndarray:
    """Posterior draws (sample, grid) of task ``task``'s mean score on ``grid`` (data scale).

    Uses :func:`bayesslope.likelihoods.mean_response_draws`, so every shape, link and
    chance floor is drawn as the model defines it (the task's mean chance; no group
    or condition effect).
    """
    from .likelihoods import mean_response_draws

    d, v = fit.design, fit.variants
    k = d.tasks.index(task)
    post = fit.posterior["posterior"]
    n = post.sizes["chain"] * post.sizes["draw"]
    sub = post.isel(draw=slice(None, None, max(1, -(-n // max_draws))))
    new = {"x": grid, "task_idx": np.full(grid.size, k)}
    if v.chance is not None:
        new["chance"] = np.full(grid.size, v.chance[d.task_idx == k].mean())
    return mean_response_draws(sub, d, v, **new).reshape(-1, grid.size)


def plot_linearity(check, *, tasks=None, axes=None, ncols=None, max_draws: int = 400,
                   panel_size=(3.0, 2.4)):
    """Small multiples for a :class:`~bayesslope.linearity.LinearityCheck`.

    Each panel: the task's data, each shape's posterior mean curve and ``ci_prob`` band
    of the mean, the hockey-stick threshold's posterior mean (dashed) and interval
    (shaded), and the verdict in the title. See :meth:`LinearityCheck.plot`.
    """
    import matplotlib.pyplot as plt

    table = check.table()
    lin = check.fits["linear"]
    d = lin.design
    names = list(d.tasks) if tasks is None else list(tasks)
    unknown = [t for t in names if t not in d.tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the fits have {list(d.tasks)}")
    if axes is None:
        ncols = ncols or min(4, len(names))
        nrows = math.ceil(len(names) / ncols)
        fig, grid_axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                                      figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
        flat = list(grid_axes.flat)
        for ax in flat[len(names):]:
            ax.set_visible(False)
    else:
        flat = list(np.asarray(axes, dtype=object).flat)
        if len(flat) < len(names):
            raise ValueError(f"axes has {len(flat)} panels for {len(names)} tasks")
        fig = flat[0].figure
    q = ((1 - check.ci_prob) / 2, (1 + check.ci_prob) / 2)
    for ax, name in zip(flat, names, strict=False):
        k = d.tasks.index(name)
        mask = d.task_idx == k
        xs, ys = d.x[mask], d.y[mask]
        span = max(xs.max() - xs.min(), 1e-12)
        grid = np.linspace(xs.min() - 0.02 * span, xs.max() + 0.02 * span, 80)
        ax.scatter(xs, ys, s=7, color="0.25", alpha=0.6, lw=0, label="data")
        for shape, fit in check.fits.items():
            curves = mean_curve(fit, name, grid, max_draws)
            color = _COLORS.get(shape, "C7")
            ax.fill_between(grid, *np.quantile(curves, q, axis=0), color=color, alpha=0.2,
                            lw=0)
            ax.plot(grid, curves.mean(axis=0), color=color, lw=1.3, label=shape)
        row = table.loc[name]
        if "x0_mean" in table:
            ax.axvspan(row["x0_lb"], row["x0_ub"], color=_COLORS["hockey_stick"], alpha=0.08)
            ax.axvline(row["x0_mean"], color=_COLORS["hockey_stick"], ls="--", lw=0.8)
        ax.set_title(f"{name}: {row['verdict']}\nlinear - best {row['elpd_diff']:.1f} "
                     f"({row['elpd_diff_se']:.1f})", fontsize=8)
        ax.tick_params(labelsize=7)
    flat[0].legend(fontsize=6, loc="best")
    if axes is None:
        cols = d.columns
        fig.supxlabel(f"{cols.get('x', 'x')} ({d.x_better} is better)", fontsize=9)
        fig.supylabel(cols.get("y", "y"), fontsize=9)
    return fig
