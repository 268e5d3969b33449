"""Figures of the decision tables (bayesslope.decisions). Never calls plt.show()."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_ranks"]


def plot_ranks(fit, *, k: int = 3, ci_prob: float = 0.9, ax=None, max_label: int = 40):
    """Posterior rank of each task by transfer slope, with intervals and P(flattest).

    Tasks run top to bottom from the flattest (rank 1, most negative slope) by mean rank;
    a dot marks the mean rank, a line the ``ci_prob`` equal-tailed rank interval. A
    right-hand column gives P(flattest) and P(among the ``k`` flattest).

    Parameters
    ----------
    fit : TransferFit
    k : int, default 3
    ci_prob : float, default 0.9
    ax : matplotlib.axes.Axes, optional
    max_label : int, default 40
        Task labels longer than this are shortened with an ellipsis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .decisions import rank_summary

    table = rank_summary(fit.posterior, k=k, ci_prob=ci_prob)
    lb, ub = (c for c in table.columns if c.startswith("rank_eti"))
    n = len(table)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 0.24 * n + 1.3), layout="constrained")
    else:
        fig = ax.figure
    pos = np.arange(n)
    neg = table["p_negative"].to_numpy() > 0.5
    ax.hlines(pos, table[lb], table[ub], color="C0", lw=2.5)
    ax.scatter(table["mean_rank"], pos, color=np.where(neg, "C3", "C0"), s=22, zorder=3)
    labels = [t if len(t) <= max_label else t[: max_label - 1] + "\u2026" for t in table.index]
    ax.set_yticks(pos, labels, fontsize=8 if n > 20 else 9)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0.5, n + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rank by transfer slope (1 = flattest / most negative)")
    ax.grid(axis="x", color="0.9", lw=0.6)
    trans = ax.get_yaxis_transform()
    ax.text(1.02, 1.0, f"P(1st)  P(\u2264{k})", transform=ax.transAxes, fontsize=7.5,
            va="bottom")
    for y, p1, pk in zip(pos, table["p_flattest"], table[f"p_bottom_{k}"], strict=True):
        ax.text(1.02, y, f"{p1:.2f}    {pk:.2f}", transform=trans, fontsize=7.5, va="center")
    ax.set_title(f"Ranks, {ci_prob:.0%} intervals (red: P(slope < 0) > 0.5)",
                 fontsize=9, loc="left")
    return fig
