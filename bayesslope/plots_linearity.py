"""Figures of :mod:`bayesslope.linearity`: per-task data with each shape's mean curve."""

from __future__ import annotations

import numpy as np

from .plots import mean_curve
from .style import COLORS, PALETTE, maybe_style, panel_grid, shorten, thin_ticks

__all__ = ["plot_linearity", "mean_curve"]

_COLORS = {"linear": COLORS["negative"], "sigmoid": PALETTE[0], "hockey_stick": PALETTE[2],
           "quadratic": PALETTE[5]}


def plot_linearity(check, *, tasks=None, axes=None, ax=None, ncols=None,
                   max_draws: int = 400, panel_size=(2.8, 2.2), style: str | None = None):
    """Small multiples for a :class:`~bayesslope.linearity.LinearityCheck`.

    Each panel: the task's data, each shape's posterior mean curve and ``ci_prob`` band
    of the mean, the hockey-stick threshold's posterior mean (dashed) and interval
    (shaded), and the verdict in the title. See :meth:`LinearityCheck.plot`; ``style``
    draws inside :func:`bayesslope.figure_style`.
    """
    from .plots import metric_name

    table = check.table()
    lin = check.fits["linear"]
    d = lin.design
    names = list(d.tasks) if tasks is None else list(tasks)
    unknown = [t for t in names if t not in d.tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the fits have {list(d.tasks)}")
    with maybe_style(style):
        fig, flat, created = panel_grid(len(names), axes=axes if axes is not None else ax,
                                        ncols=ncols, panel_size=panel_size)
        _draw(check, table, d, flat, names, max_draws)
        if created:
            fig.supxlabel(f"{metric_name(lin, 'x')} ({d.x_better} is better)",
                          fontsize="medium")
            fig.supylabel(metric_name(lin, "y"), fontsize="medium")
    return fig


def _draw(check, table, d, flat, names, max_draws) -> None:
    q = ((1 - check.ci_prob) / 2, (1 + check.ci_prob) / 2)
    for ax, name in zip(flat, names, strict=True):
        k = d.tasks.index(name)
        mask = d.task_idx == k
        xs, ys = d.x[mask], d.y[mask]
        span = max(xs.max() - xs.min(), 1e-12)
        grid = np.linspace(xs.min() - 0.02 * span, xs.max() + 0.02 * span, 80)
        ax.scatter(xs, ys, s=7, color=COLORS["data"], alpha=0.6, lw=0, label="data")
        for shape, fit in check.fits.items():
            curves = mean_curve(fit, name, grid, max_draws)
            color = _COLORS.get(shape, PALETTE[3])
            ax.fill_between(grid, *np.quantile(curves, q, axis=0), color=color, alpha=0.2,
                            lw=0)
            ax.plot(grid, curves.mean(axis=0), color=color, lw=1.3, label=shape)
        row = table.loc[name]
        if "x0_mean" in table:
            # The threshold's interval can lie far outside the data (no kink in the task's
            # range): shade only what falls inside the panel, so the data keep their axis.
            lim = ax.get_xlim()
            lo, hi = max(row["x0_lb"], lim[0]), min(row["x0_ub"], lim[1])
            if lo < hi:
                ax.axvspan(lo, hi, color=_COLORS["hockey_stick"], alpha=0.08)
            if lim[0] <= row["x0_mean"] <= lim[1]:
                ax.axvline(row["x0_mean"], color=_COLORS["hockey_stick"], ls="--", lw=0.8)
            ax.set_xlim(lim)
        ax.set_title(f"{shorten(name, 24)}: {row['verdict']}\nlinear - best "
                     f"{row['elpd_diff']:.1f} ({row['elpd_diff_se']:.1f})", fontsize="small")
        ax.tick_params(labelsize="x-small")
        thin_ticks(ax, nbins=4)
    flat[0].legend(fontsize="x-small", loc="best")
