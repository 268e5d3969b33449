"""Heatmap of a :class:`~bayesslope.pairs.result.TransferMatrix`."""

from __future__ import annotations

import numpy as np

from ..style import active_width, font_points, maybe_style, shorten, single_axes

__all__ = ["plot_transfer_matrix"]


def _order(tm, order) -> tuple[list, bool]:
    """Task order to draw, and whether ``tm.plot_data`` gives it directly.

    Clustered (``True`` / "cluster"), the fit's (``False`` / "name") or the caller's list.
    """
    if order is True or order == "cluster":
        return tm.task_order(), True
    if order is False or order is None or order == "name":
        return list(tm.design.tasks), False
    if isinstance(order, str):
        raise ValueError(f"order should be True/'cluster', False/'name' or a list of tasks, "
                         f"got {order!r}")
    tasks = list(order)
    if sorted(map(str, tasks)) != sorted(map(str, tm.design.tasks)):
        raise ValueError(f"order should list every task once: {list(tm.design.tasks)}")
    return tasks, False


def plot_transfer_matrix(tm, ax=None, order=True, standardized: bool = True,
                         p_threshold: float = 0.9, annotate: bool | None = None, *,
                         mark_positive: bool = True, max_label: int = 30,
                         style: str | None = None):
    """Draw directed slopes (rows: source, columns: target) with significance marks.

    Parameters
    ----------
    tm : TransferMatrix
        The fitted matrix.
    ax : matplotlib Axes, optional
        Target axes; a new figure when omitted. Nothing global is changed and nothing shown.
    order : bool, "cluster", "name" or list of tasks, default True
        ``True`` / "cluster": compatible tasks together (``tm.task_order()``: average-
        linkage clustering with optimal leaf order); ``False`` / "name": the fit's order;
        a list: that order.
    standardized : bool, default True
        Colour by the standardized slope (else data units, symmetric colour range).
    p_threshold : float, default 0.9
        Cells with ``P(negative) > p_threshold`` get an open circle; with
        ``mark_positive``, cells with ``P(positive) > p_threshold`` a small dot.
    annotate : bool, optional
        Print posterior means in the cells (default: at most 15 tasks).
    mark_positive : bool, default True
    max_label : int, default 30
        Longer task names are cut with an ellipsis.
    style : {"one-column", "two-column"}, optional
        Draw inside :func:`bayesslope.figure_style`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    tasks, direct = _order(tm, order)
    data = tm.plot_data(order=direct, standardized=standardized)
    if not direct and data["tasks"] != tasks:
        idx = [list(map(str, data["tasks"])).index(str(t)) for t in tasks]
        data = {"tasks": tasks, "values": data["values"][np.ix_(idx, idx)],
                "p_negative": data["p_negative"][np.ix_(idx, idx)]}
    tasks, values, p_neg = data["tasks"], data["values"], data["p_negative"]
    k = len(tasks)
    with maybe_style(style):
        width = active_width()
        size = min(16.0, max(3.3, 0.22 * k + 2.2))
        fig, ax = single_axes(ax, (width, 0.95 * width) if width else (size + 1.0, size))
        vmax = 1.0 if standardized else float(np.nanmax(np.abs(values)) or 1.0)
        # RdBu: a diverging map readable with the common colour-vision deficiencies.
        im = ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        label = "standardized slope" if standardized else "slope (target per source unit)"
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"oriented {label}")
        marker = max(6.0, min(60.0, 2400.0 / max(k, 1) ** 1.3))
        rows, cols = np.nonzero(p_neg > p_threshold)
        if rows.size:
            ax.scatter(cols, rows, s=marker, facecolors="none", edgecolors="black",
                       linewidths=0.9, label=f"P(negative) > {p_threshold:g}")
        if mark_positive:
            # A Line2D, not a scatter: a cell's marker type says which sign it is.
            prow, pcol = np.nonzero((1.0 - p_neg) > p_threshold)
            if prow.size:
                ax.plot(pcol, prow, ls="none", marker=".", color="black",
                        ms=max(1.5, np.sqrt(marker) * 0.45),
                        label=f"P(positive) > {p_threshold:g}")
        if rows.size or (mark_positive and prow.size):
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize="x-small",
                      frameon=False, handletextpad=0.2, borderaxespad=0.1,
                      ncols=2)
        if annotate is None:
            annotate = k <= 15
        if annotate:
            for i in range(k):
                for j in range(k):
                    if np.isfinite(values[i, j]):
                        ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center",
                                fontsize="xx-small" if k > 8 else "x-small",
                                color="white" if abs(values[i, j]) > 0.6 * vmax else "black")
        # Tick text no taller than ~80% of a cell (the axes is about 70% of the figure).
        cell_pt = 0.7 * min(fig.get_size_inches()) * 72 / k
        fontsize = min(font_points("ytick.labelsize"), max(3.0, 0.8 * cell_pt))
        names = [shorten(t, max_label) for t in tasks]
        ax.set_xticks(range(k), names, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(k), names, fontsize=fontsize)
        ax.set_xlabel("target")
        ax.set_ylabel("source")
    return fig
