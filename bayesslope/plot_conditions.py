"""Figure of a fit with conditions: each condition's population slope against the reference.

Fits with ``condition=`` (e.g. 0- vs 5-shot, deduplicated vs standard training data) have
one population slope per condition (``slope_mu_condition``; the first level is the
reference). The question such a fit answers is whether a condition changes the slope,
so the figure shows the posterior of each difference from the reference, its interval
and P(difference > 0), the numbers of :meth:`TransferFit.condition_differences`.
"""

from __future__ import annotations

import numpy as np

from .style import COLORS, maybe_style, shorten, single_axes, thin_ticks

__all__ = ["plot_condition_differences", "condition_difference_draws"]


def condition_difference_draws(fit) -> tuple[str, list[str], np.ndarray]:
    """Draws of each condition's population slope minus the reference condition's.

    Returns
    -------
    (str, list of str, numpy.ndarray)
        The reference condition, the other conditions (in the fit's order) and the
        differences, shape ``(chains * draws, n_conditions - 1)`` (oriented, data units).

    Raises
    ------
    ValueError
        The fit has no conditions, or only one.
    """
    post = fit.posterior["posterior"]
    if "slope_mu_condition" not in post:
        raise ValueError("this fit has no conditions: fit with condition='<column>'")
    da = post["slope_mu_condition"].transpose("chain", "draw", "condition")
    names = [str(c) for c in da["condition"].values]
    if len(names) < 2:
        raise ValueError(f"one condition ({names}) has nothing to be compared with")
    flat = da.values.reshape(-1, len(names))
    return names[0], names[1:], flat[:, 1:] - flat[:, :1]


def plot_condition_differences(fit, *, ax=None, ci_prob: float = 0.9,
                               style: str | None = None):
    """Posterior of each condition's population slope difference from the reference.

    One row per non-reference condition (in the fit's order, top to bottom): the posterior
    density of ``slope_mu_condition[c] - slope_mu_condition[reference]`` (oriented slope,
    data units: positive means the condition transfers more), its mean (dot) and
    equal-tailed ``ci_prob`` interval (bar), and P(difference > 0) on the right. The
    dashed line marks no difference.

    Parameters
    ----------
    fit : TransferFit
        Fitted with ``condition=``.
    ax : matplotlib.axes.Axes, optional
    ci_prob : float, default 0.9
    style : {"one-column", "two-column"}, optional
        Draw inside :func:`bayesslope.figure_style`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fit = bs.fit_hierarchical(df, condition="shots", group="model")  # doctest: +SKIP
    >>> fit.plot_condition_differences()  # doctest: +SKIP
    """
    from scipy.stats import gaussian_kde

    from .options import check_ci_prob
    from .report_format import format_prob

    check_ci_prob(ci_prob)
    reference, names, diff = condition_difference_draws(fit)
    n = len(names)
    q = ((1 - ci_prob) / 2, (1 + ci_prob) / 2)
    lo, hi = min(diff.min(), 0.0), max(diff.max(), 0.0)
    pad = 0.04 * (hi - lo or 1.0)
    grid = np.linspace(lo - pad, hi + pad, 300)
    with maybe_style(style):
        fig, ax = single_axes(ax, (6.0, 0.6 + 0.55 * n))
        ys = np.arange(n)[::-1]  # the first condition on top
        p_labels = []
        for y, name, d in zip(ys, names, diff.T, strict=True):
            if np.ptp(d) > 0:  # a density needs spread; a constant difference is a point
                dens = gaussian_kde(d)(grid)
                ax.fill_between(grid, y, y + 0.8 * dens / dens.max(), color=COLORS["fit"],
                                alpha=0.3, lw=0)
            b_lo, b_hi = np.quantile(d, q)
            ax.plot([b_lo, b_hi], [y, y], color=COLORS["fit"], lw=2.2,
                    solid_capstyle="butt", gid=f"interval:{name}")
            ax.plot([d.mean()], [y], "o", color=COLORS["data"], ms=3.5, gid=f"mean:{name}")
            p = format_prob((d > 0).mean())  # "0.973", or "< 0.001" / "> 0.999"
            p_labels.append(f"P(> 0) {p}" if p[0] in "<>" else f"P(> 0) = {p}")
        ax.axvline(0, color="0.4", lw=0.7, ls="--")
        ax.set_ylim(-0.35, n - 0.1)
        thin_ticks(ax, nbins=4)  # x: few ticks, none at the ends; y: replaced just below
        ax.set_yticks(ys, labels=[shorten(c, 28) for c in names])
        right = ax.secondary_yaxis("right")
        right.set_yticks(ys, labels=p_labels)
        right.tick_params(length=0)
        ax.set_xlabel(f"population slope minus {shorten(reference, 24)}'s "
                      f"(dot: mean, bar: {ci_prob:.0%})")
        ax.spines[["top"]].set_visible(False)
    return fig
