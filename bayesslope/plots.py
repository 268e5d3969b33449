"""TransferFit -> matplotlib Figures for papers. Never calls plt.show(); no global style."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plot_tasks", "plot_slopes"]


def _figure(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _stacked(fit, var: str, max_draws: int | None, rng_seed: int = 0) -> np.ndarray:
    """Posterior draws of ``var`` as (sample, ...) with at most ``max_draws`` samples."""
    da = fit.posterior["posterior"][var].transpose("chain", "draw", ...)
    arr = da.values.reshape(-1, *da.shape[2:])
    if max_draws is not None and arr.shape[0] > max_draws:
        idx = np.random.default_rng(rng_seed).choice(arr.shape[0], max_draws, replace=False)
        arr = arr[np.sort(idx)]
    return arr


def _bounded_curve(fit, k: int, grid: np.ndarray, max_draws: int) -> np.ndarray:
    """Mean score draws (sample, grid) of task ``k`` under a probit/logit link."""
    from .likelihoods import mean_response_draws

    d, v = fit.design, fit.variants
    post = fit.posterior["posterior"]
    n = post.sizes["chain"] * post.sizes["draw"]
    sub = post.isel(draw=slice(None, None, max(1, -(-n // max_draws))))
    new = {"x": grid, "task_idx": np.full(grid.size, k)}
    if v.chance is not None:
        new["chance"] = np.full(grid.size, v.chance[d.task_idx == k].mean())
    mean = mean_response_draws(sub, d, v, **new)
    return mean.reshape(-1, grid.size)


def plot_tasks(
    fit,
    *,
    ci_prob: float = 0.9,
    tasks=None,
    ncols: int | None = None,
    max_draws: int = 1000,
    panel_size: tuple[float, float] = (2.8, 2.3),
):
    """One panel per task: data points, posterior mean line and credible band.

    The band is the ``ci_prob`` equal-tailed interval of the regression line
    ``intercept + slope_data * (x - x_ref)`` in data units (uncertainty of the mean, not
    predictive). Each title gives the oriented transfer slope and P(negative transfer).

    Parameters
    ----------
    fit : TransferFit
    ci_prob : float, default 0.9
    tasks : sequence of str, optional
        Subset and order of tasks; default all.
    ncols : int, optional
    max_draws : int, default 1000
        Posterior draws used for the band.
    panel_size : (float, float)
        Size of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    d = fit.design
    names = list(d.tasks) if tasks is None else list(tasks)
    unknown = [t for t in names if t not in d.tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the fit has {list(d.tasks)}")
    ncols = ncols or min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False, layout="constrained",
    )
    a = _stacked(fit, "intercept", max_draws)
    b = _stacked(fit, "slope_data", max_draws)
    p_neg = fit.p_negative_transfer()
    slope_mean = fit.posterior["posterior"]["slope"].mean(("chain", "draw"))
    lo_q, hi_q = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    for ax, name in zip(axes.flat, names, strict=False):
        k = d.tasks.index(name)
        mask = d.task_idx == k
        xs, ys = d.x[mask], d.y[mask]
        span = d.x.max() - d.x.min()
        grid = np.linspace(xs.min() - 0.02 * span, xs.max() + 0.02 * span, 60)
        if fit.link == "identity" and fit.shape == "linear":
            lines = a[:, k, None] + b[:, k, None] * (grid - d.x_ref)
        else:  # bounded link or curved shape: the mean score curve, see likelihoods
            lines = _bounded_curve(fit, k, grid, max_draws)
        ax.fill_between(grid, *np.quantile(lines, [lo_q, hi_q], axis=0), color="C0",
                        alpha=0.3, lw=0, label=f"{ci_prob:.0%} band")
        ax.plot(grid, lines.mean(axis=0), color="C0", lw=1.5, label="posterior mean")
        ax.scatter(xs, ys, s=8, color="0.2", alpha=0.6, lw=0, label="data")
        ax.set_title(
            f"{name}\nslope {float(slope_mean.sel(task=name)):+.3g}, "
            f"P(neg) {p_neg[name]:.2f}", fontsize=9,
        )
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    cols = d.columns
    fig.supxlabel(f"{cols.get('x', 'x')} ({d.x_better} is better)", fontsize=10)
    fig.supylabel(cols.get("y", "y"), fontsize=10)
    axes.flat[0].legend(fontsize=7, loc="best")
    return fig


def plot_slopes(fit, *, ci_prob: float = 0.9, sort: bool = True, ax=None, standardized=False):
    """Forest plot of the oriented transfer slope per task, annotated with P(negative).

    Parameters
    ----------
    fit : TransferFit
    ci_prob : float, default 0.9
        Interval drawn as a thick line (the thin line is the 99% interval).
    sort : bool, default True
        Order tasks by posterior mean slope.
    ax : matplotlib.axes.Axes, optional
    standardized : bool, default False
        Plot ``slope_std`` (sd of y per sd of x) instead of data units.

    Returns
    -------
    matplotlib.figure.Figure
    """
    var = "slope_std" if standardized else "slope"
    draws = _stacked(fit, var, None)
    names = np.asarray(fit.design.tasks)
    mean = draws.mean(axis=0)
    order = np.argsort(mean) if sort else np.arange(len(names))
    p_neg = (fit.posterior["posterior"]["slope"] < 0).mean(("chain", "draw")).values
    fig, ax = _figure(ax, (6.0, 0.45 * len(names) + 1.2))
    pos = np.arange(len(names))
    q = lambda p: np.quantile(draws, p, axis=0)[order]  # noqa: E731
    ax.hlines(pos, q(0.005), q(0.995), color="C0", lw=1)
    ax.hlines(pos, q((1 - ci_prob) / 2), q((1 + ci_prob) / 2), color="C0", lw=3.5)
    neg = p_neg[order] > 0.5
    ax.scatter(mean[order], pos, color=np.where(neg, "C3", "C0"), zorder=3, s=25)
    ax.axvline(0, color="0.4", lw=0.8, ls="--")
    ax.set_yticks(pos, names[order], fontsize=9)
    ax.set_xlabel(
        "transfer slope " + ("(sd of y per sd of x)" if standardized else "(data units)")
        + "; > 0: better upstream, better downstream"
    )
    # P(negative transfer) in a right-hand column, in axes coordinates.
    trans = ax.get_yaxis_transform()
    ax.text(1.02, 1.0, "P(neg)", transform=ax.transAxes, fontsize=8, va="bottom")
    for y, p in zip(pos, p_neg[order], strict=True):
        ax.text(1.02, y, f"{p:.2f}", transform=trans, fontsize=8, va="center",
                color="C3" if p > 0.5 else "0.2")
    ax.set_title(f"Transfer slopes ({ci_prob:.0%} and 99% intervals)", fontsize=10)
    return fig
