"""Figures of the decision tables (bayesslope.decisions). Never calls plt.show()."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_ranks"]


def plot_ranks(fit, *, k: int = 3, ci_prob: float = 0.9, ax=None, max_label: int = 40,
               style: str | None = None):
    """Posterior rank of each task by transfer slope, with intervals and P(flattest).

    Tasks run top to bottom from the flattest (rank 1, most negative slope) by mean rank;
    a dot marks the mean rank, a line the ``ci_prob`` equal-tailed rank interval. The
    right-hand axis gives P(flattest) and P(among the ``k`` flattest).

    Parameters
    ----------
    fit : TransferFit
    k : int, default 3
    ci_prob : float, default 0.9
    ax : matplotlib.axes.Axes, optional
    max_label : int, default 40
        Task labels longer than this are shortened with an ellipsis.
    style : {"one-column", "two-column"}, optional
        Draw inside :func:`bayesslope.figure_style`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import MaxNLocator

    from .decisions import rank_summary
    from .style import COLORS, font_points, maybe_style, shorten, single_axes

    table = rank_summary(fit.posterior, k=k, ci_prob=ci_prob)
    lb, ub = (c for c in table.columns if c.startswith("rank_eti"))
    n = len(table)
    pos = np.arange(n)
    neg = table["p_negative"].to_numpy() > 0.5
    colors = np.where(neg, COLORS["negative"], COLORS["fit"])
    with maybe_style(style):
        row_h = max(0.14, 2.0 * font_points("ytick.labelsize") / 72)
        fig, ax = single_axes(ax, (6.5, row_h * n + 1.1))
        ax.hlines(pos, table[lb], table[ub], color=colors, lw=2.5)
        ax.scatter(table["mean_rank"], pos, color=colors, s=16, zorder=3,
                   edgecolors="white", linewidths=0.4)
        size = "x-small" if n > 20 else "small"
        ax.set_yticks(pos, [shorten(t, max_label) for t in table.index], fontsize=size)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(0.5, n + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        ax.set_xlabel("rank by transfer slope (1 = flattest / most negative)")
        ax.grid(axis="x", color="0.9", lw=0.6)
        right = ax.secondary_yaxis("right")
        right.set_yticks(pos, [f"{p1:.2f}  {pk:.2f}" for p1, pk in
                               zip(table["p_flattest"], table[f"p_bottom_{k}"], strict=True)],
                         fontsize=size)
        right.tick_params(length=0)
        right.set_ylabel(f"P(1st), P(\u2264{k})", fontsize="small")
        ax.set_title(f"Ranks, {ci_prob:.0%} intervals (vermillion: P(slope < 0) > 0.5)",
                     fontsize="small", loc="left")
    return fig
