"""Heatmap of a :class:`~bayesslope.pairs.result.TransferMatrix`."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_transfer_matrix"]


def plot_transfer_matrix(tm, ax=None, order: bool = True, standardized: bool = True,
                         p_threshold: float = 0.9, annotate: bool | None = None):
    """Draw directed slopes (rows: source, columns: target) with P(negative) markers.

    Parameters
    ----------
    tm : TransferMatrix
        The fitted matrix.
    ax : matplotlib Axes, optional
        Target axes; a new figure when omitted. Nothing global is changed and nothing shown.
    order : bool, default True
        Group compatible tasks (``tm.task_order()``).
    standardized : bool, default True
        Colour by the standardized slope (else data units, symmetric colour range).
    p_threshold : float, default 0.9
        Mark cells with ``p_negative > p_threshold`` (an open circle).
    annotate : bool, optional
        Print posterior means in the cells (default: at most 15 tasks).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    data = tm.plot_data(order=order, standardized=standardized)
    tasks, values, p_neg = data["tasks"], data["values"], data["p_negative"]
    k = len(tasks)
    if ax is None:
        size = min(16.0, max(4.0, 0.28 * k + 2.5))
        fig, ax = plt.subplots(figsize=(size + 1.2, size))
    else:
        fig = ax.figure
    vmax = 1.0 if standardized else float(np.nanmax(np.abs(values)) or 1.0)
    im = ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    label = "standardized slope" if standardized else "slope (target per source unit)"
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"oriented {label}")
    rows, cols = np.nonzero(p_neg > p_threshold)
    if rows.size:
        ax.scatter(cols, rows, s=max(8.0, 900.0 / max(k, 1)), facecolors="none",
                   edgecolors="black", linewidths=1.0,
                   label=f"P(negative transfer) > {p_threshold:g}")
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize="small",
                  frameon=False, handletextpad=0.2, borderaxespad=0.1)
    if annotate is None:
        annotate = k <= 15
    if annotate:
        for i in range(k):
            for j in range(k):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center",
                            fontsize="x-small",
                            color="white" if abs(values[i, j]) > 0.6 * vmax else "black")
    fontsize = "small" if k <= 20 else ("x-small" if k <= 40 else 5)
    ax.set_xticks(range(k), [str(t) for t in tasks], rotation=90, fontsize=fontsize)
    ax.set_yticks(range(k), [str(t) for t in tasks], fontsize=fontsize)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    ax.set_title("Transfer matrix (source -> target)", loc="left", fontsize="medium")
    return fig
