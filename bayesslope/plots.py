"""TransferFit -> matplotlib Figures for papers: per-task panels, slope forest, population.

Every function returns a Figure, draws into the caller's ``ax=`` / ``axes=`` when given,
never calls ``plt.show()`` and changes no global setting: ``style=`` draws inside
:func:`bayesslope.figure_style` (column width, print-size fonts, colorblind-safe colours).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .style import (
    COLORS,
    clear_of_ends,
    font_points,
    maybe_style,
    panel_grid,
    shorten,
    single_axes,
    thin_ticks,
)

__all__ = ["plot_tasks", "plot_slopes", "plot_population", "mean_curve", "metric_name",
           "set_probability_scale"]


def _stacked(fit, var: str, max_draws: int | None, rng_seed: int = 0) -> np.ndarray:
    """Posterior draws of ``var`` as (sample, ...) with at most ``max_draws`` samples."""
    da = fit.posterior["posterior"][var].transpose("chain", "draw", ...)
    arr = da.values.reshape(-1, *da.shape[2:])
    if max_draws is not None and arr.shape[0] > max_draws:
        idx = np.random.default_rng(rng_seed).choice(arr.shape[0], max_draws, replace=False)
        arr = arr[np.sort(idx)]
    return arr


def mean_curve(fit, task: str, grid: np.ndarray, max_draws: int = 400) -> np.ndarray:
    """Posterior draws (sample, grid) of task ``task``'s mean score on ``grid`` (data scale).

    Uses :func:`bayesslope.likelihoods.mean_response_draws`, so every link, shape and
    chance floor is drawn as the model defines it (the task's mean chance; reference
    condition, no group effect). At most ``max_draws`` evenly strided draws.
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


def metric_name(fit, axis: str) -> str:
    """Axis name of ``axis`` ("x" or "y").

    The recorded metric name when the design has one (``columns["x_metric"]``), else the
    column name.
    """
    cols = fit.design.columns
    return str(cols.get(f"{axis}_metric") or cols.get(axis, axis))


# -- probability axes -----------------------------------------------------------------------

_PROB_TICKS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95,
               0.98, 0.99, 0.999)
_EPS = 1e-4  # scores of 0 or 1 sit at probit -3.7: on the axis, not at infinity


def _link_functions(name: str):
    from scipy.special import expit, ndtr, ndtri

    if name == "probit":
        return (lambda p: ndtri(np.clip(p, _EPS, 1 - _EPS)), ndtr)
    if name == "logit":
        def forward(p):
            p = np.clip(p, _EPS, 1 - _EPS)
            return np.log(p / (1 - p))
        return forward, expit
    raise ValueError(f"yscale should be 'linear', 'probit' or 'logit', got {name!r}")


def set_probability_scale(ax, name: str, nbins: int = 5) -> None:
    """Put ``ax``'s y axis on a probit or logit scale with probability tick labels.

    Ticks are chosen from 0.001 ... 0.999 and thinned to at most ``nbins`` evenly spread
    on the transformed axis, so a narrow panel keeps legible labels.
    """
    from matplotlib.ticker import FuncFormatter, Locator, MaxNLocator, NullLocator

    forward, inverse = _link_functions(name)

    class ProbabilityLocator(Locator):
        def __call__(self):
            return clear_of_ends(self.axis, self.tick_values(*self.axis.get_view_interval()))

        def tick_values(self, vmin, vmax):
            vmin, vmax = sorted((vmin, vmax))
            cand = [p for p in _PROB_TICKS if vmin <= p <= vmax]
            if len(cand) < 2:  # a narrow range: plain ticks inside it
                return MaxNLocator(nbins=3).tick_values(vmin, vmax)
            f = forward(np.asarray(cand))
            step = (f[-1] - f[0]) / max(nbins - 1, 1) * 0.999
            keep, last = [cand[0]], f[0]
            for p, v in zip(cand[1:], f[1:], strict=True):
                if v - last >= step:
                    keep.append(p)
                    last = v
            return keep

    ax.set_yscale("function", functions=(forward, inverse))
    ax.yaxis.set_major_locator(ProbabilityLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


# -- per-task small multiples ---------------------------------------------------------------


def _chance_per_task(fit, chance) -> dict:
    """Chance level to draw per task: {} (none), the fit's floor, one value or a mapping."""
    d, v = fit.design, fit.variants
    if chance is False:
        return {}
    if chance is None or chance is True:
        if v.chance is None:
            if chance is True:
                raise ValueError("chance=True but the fit has no chance floor: pass a value")
            return {}
        return {t: float(v.chance[d.task_idx == k].mean()) for k, t in enumerate(d.tasks)}
    if isinstance(chance, Mapping):
        return {str(t): float(c) for t, c in chance.items()}
    return dict.fromkeys(d.tasks, float(chance))


def plot_tasks(
    fit,
    *,
    ci_prob: float = 0.9,
    inner_prob: float | None = 0.5,
    tasks=None,
    axes=None,
    ax=None,
    ncols: int | None = None,
    max_draws: int = 1000,
    panel_size: tuple[float, float] = (2.6, 2.1),
    better_right: bool = True,
    chance=None,
    yscale: str = "linear",
    sharex: bool = True,
    sharey: bool = False,
    xlabel: str | None = None,
    ylabel: str | None = None,
    stats: bool = True,
    max_label: int = 28,
    legend: bool = True,
    style: str | None = None,
):
    """One panel per task: data, posterior mean curve, 50% and ``ci_prob`` bands.

    The bands are equal-tailed intervals of the task's mean score (uncertainty of the
    mean, not predictive) as the model defines it: the line ``intercept + slope_data *
    (x - x_ref)`` under the identity link, the floor-to-one curve under probit/logit.
    Each title gives the task, its oriented transfer slope and P(negative transfer).

    Parameters
    ----------
    fit : TransferFit
    ci_prob : float, default 0.9
        Outer band.
    inner_prob : float or None, default 0.5
        Inner band (None: none).
    tasks : sequence of str, optional
        Subset and order of tasks; default all.
    axes, ax : matplotlib Axes or array of Axes, optional
        One Axes per task; default a new figure.
    ncols : int, optional
        Grid columns (default about square; at most 8).
    max_draws : int, default 1000
        Posterior draws used for the bands.
    panel_size : (float, float)
        Size of one panel in inches (outside :func:`~bayesslope.figure_style`, whose width
        sets the figure's).
    better_right : bool, default True
        Orient the axes so that better is to the right and up: a loss x axis (lower is
        better) and a loss y axis are inverted, so a positive transfer slope rises.
    chance : None, bool, float or mapping of task -> float
        Horizontal chance line: None draws the fit's chance floor when it has one, a
        number that level in every panel, a mapping each task's level, False none.
    yscale : {"linear", "probit", "logit"}, default "linear"
        Probit or logit y axis for accuracies (probability tick labels).
    sharex, sharey : bool, default True, False
        Shared or free scales. ``sharey`` needs every task's y oriented alike when
        ``better_right``.
    xlabel, ylabel : str, optional
        Axis names; default the metric names of the data (else the column names), with
        the better direction.
    stats : bool, default True
        Slope and P(negative) under each title.
    max_label : int, default 28
        Longer task names are cut with an ellipsis.
    legend : bool, default True
    style : {"one-column", "two-column"}, optional
        Draw inside :func:`bayesslope.figure_style`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .options import check_ci_prob

    check_ci_prob(ci_prob)
    if inner_prob is not None:
        check_ci_prob(inner_prob)
    d = fit.design
    names = list(d.tasks) if tasks is None else [str(t) for t in tasks]
    unknown = [t for t in names if t not in d.tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the fit has {list(d.tasks)}")
    y_low = {t: d.y_better[d.tasks.index(t)] == "lower" for t in names}
    if better_right and sharey and len(set(y_low.values())) > 1:
        raise ValueError("sharey=True with better_right=True needs every task's y oriented "
                         "alike (some are lower-is-better): pass sharey=False")
    if yscale != "linear":
        _link_functions(yscale)  # validate before drawing
    chance_at = _chance_per_task(fit, chance)
    with maybe_style(style):
        fig, flat, created = panel_grid(
            len(names), axes=axes if axes is not None else ax, ncols=ncols,
            panel_size=panel_size, sharex=sharex, sharey=sharey)
        narrow = fig.get_figwidth() / max(1, _ncols(flat)) < 1.4
        slope_mean = fit.posterior["posterior"]["slope"].mean(("chain", "draw"))
        p_neg = fit.p_negative_transfer()
        span = d.x.max() - d.x.min()
        for a, name in zip(flat, names, strict=True):
            k = d.tasks.index(name)
            mask = d.task_idx == k
            xs, ys = d.x[mask], d.y[mask]
            grid = np.linspace(xs.min() - 0.02 * span, xs.max() + 0.02 * span, 60)
            curves = mean_curve(fit, name, grid, max_draws)
            a.fill_between(grid, *np.quantile(curves, [(1 - ci_prob) / 2, (1 + ci_prob) / 2],
                                              axis=0),
                           color=COLORS["fit"], alpha=0.2, lw=0, label=f"{ci_prob:.0%} interval")
            if inner_prob is not None:
                a.fill_between(grid, *np.quantile(
                    curves, [(1 - inner_prob) / 2, (1 + inner_prob) / 2], axis=0),
                    color=COLORS["fit"], alpha=0.35, lw=0, label=f"{inner_prob:.0%} interval")
            a.plot(grid, curves.mean(axis=0), color=COLORS["fit"], label="posterior mean")
            a.scatter(xs, ys, s=6 if narrow else 9, color=COLORS["data"], alpha=0.6, lw=0,
                      label="data", zorder=3)
            if name in chance_at:
                a.axhline(chance_at[name], color=COLORS["chance"], ls=":", lw=0.9,
                          label="chance")
            if yscale != "linear":
                set_probability_scale(a, yscale, nbins=3 if narrow else 5)
            title = shorten(name, max_label)
            if stats:
                title += (f"\n{float(slope_mean.sel(task=name)):+.2g}, "
                          f"P(neg) {p_neg[name]:.2f}")
            a.set_title(title, fontsize="x-small" if narrow else "medium")
            a.tick_params(labelsize="x-small" if narrow else "small")
            thin_ticks(a, nbins=3 if narrow else 4)
            if better_right:
                if d.x_better == "lower":
                    a.xaxis.set_inverted(True)
                if y_low[name]:
                    a.yaxis.set_inverted(True)
        xname, yname = _axis_names(fit, names, better_right, xlabel, ylabel)
        if created:
            fig.supxlabel(xname, fontsize="medium")
            fig.supylabel(yname, fontsize="medium")
            if legend:  # every kind of mark once (a chance line may be in some panels only)
                entries = {}
                for a in flat:
                    for h, lab in zip(*a.get_legend_handles_labels(), strict=True):
                        entries.setdefault(lab, h)
                fig.legend(list(entries.values()), list(entries), loc="outside upper center",
                           ncols=len(entries), fontsize="small", frameon=False)
        else:
            for a in flat:
                a.set_xlabel(xname)
                a.set_ylabel(yname)
            if legend:
                flat[0].legend(fontsize="x-small", loc="best")
    return fig


def _ncols(flat) -> int:
    """Columns of the grid the axes sit in (1 for free-standing axes)."""
    spec = flat[0].get_subplotspec()
    return spec.get_gridspec().ncols if spec is not None else 1


def _axis_names(fit, names, better_right, xlabel, ylabel) -> tuple[str, str]:
    d = fit.design
    xname = xlabel or metric_name(fit, "x")
    yname = ylabel or metric_name(fit, "y")
    if better_right:
        return f"{xname} (better \u2192)", f"{yname} (better \u2191)"
    ybetter = {d.y_better[d.tasks.index(t)] for t in names}
    ysuffix = f" ({ybetter.pop()} is better)" if len(ybetter) == 1 else ""
    return f"{xname} ({d.x_better} is better)", yname + ysuffix


# -- forest plot of the slopes --------------------------------------------------------------


def plot_slopes(
    fit,
    *,
    ci_prob: float = 0.9,
    sort: bool = True,
    ax=None,
    standardized: bool = False,
    rope=None,
    decision_prob: float = 0.95,
    top_k: int | None = None,
    max_tasks: int = 40,
    max_label: int = 40,
    style: str | None = None,
):
    """Forest plot of the oriented transfer slope per task, with P(negative) and decisions.

    A dot marks the posterior mean, a thick line the ``ci_prob`` interval and a thin one
    the 99% interval; tasks run from the most negative (top) down. The right-hand axis
    gives P(negative) of each task; with ``rope`` it is P(slope below the ROPE), the ROPE
    is shaded, the dots are coloured by decision and the decision is written next to the
    probability (see :meth:`TransferFit.summary`).

    Parameters
    ----------
    fit : TransferFit
    ci_prob : float, default 0.9
    sort : bool, default True
        Order tasks by posterior mean slope (else the fit's task order).
    ax : matplotlib.axes.Axes, optional
    standardized : bool, default False
        Plot ``slope_std`` (sd of y per sd of x) instead of data units; the ROPE (in data
        units) is then not shaded, but the probabilities and decisions still use it.
    rope : float or (float, float), optional
        Region of practical equivalence of the slope (data units).
    decision_prob : float, default 0.95
        Posterior probability a decision needs (with ``rope``).
    top_k : int, optional
        Show only the ``top_k`` most negative and ``top_k`` most positive tasks; default
        ``max_tasks // 2`` when there are more than ``max_tasks`` tasks.
    max_tasks : int, default 40
    max_label : int, default 40
        Longer task names are cut with an ellipsis.
    style : {"one-column", "two-column"}, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .decisions import rope_decisions, rope_probabilities
    from .options import check_ci_prob

    check_ci_prob(ci_prob)
    var = "slope_std" if standardized else "slope"
    draws = _stacked(fit, var, None)
    names = np.asarray(fit.design.tasks)
    mean = draws.mean(axis=0)
    if rope is None:
        p_neg = (_stacked(fit, "slope", None) < 0).mean(axis=0)
        decision = None
    else:
        probs = rope_probabilities(fit.posterior, rope)
        p_neg = probs["p_negative"].reindex(names).to_numpy()
        decision = rope_decisions(probs, decision_prob).reindex(names).to_numpy()
    by_mean = np.argsort(mean, kind="stable")
    n = len(names)
    if top_k is None and n > max_tasks:
        top_k = max_tasks // 2
    hidden = 0
    if top_k is not None and 2 * top_k < n:  # the two ends, always in slope order
        chosen = np.concatenate([by_mean[:top_k], by_mean[-top_k:]])
        hidden = n - 2 * top_k
    else:
        chosen = by_mean if sort else np.arange(n)
    pos = np.arange(len(chosen), dtype=float)
    if hidden:  # a gap row between the two ends
        pos[len(chosen) // 2:] += 1
    q = np.quantile(draws[:, chosen], [0.005, (1 - ci_prob) / 2, (1 + ci_prob) / 2, 0.995],
                    axis=0)
    if decision is None:
        colors = np.where(p_neg[chosen] > 0.5, COLORS["negative"], COLORS["fit"])
    else:
        palette = {"negative": COLORS["negative"], "positive": COLORS["positive"],
                   "practically zero": COLORS["neutral"], "undecided": COLORS["data"]}
        colors = np.array([palette[w] for w in decision[chosen]])
    with maybe_style(style):
        rows = len(pos) + (1 if hidden else 0)
        row_h = max(0.14, 2.0 * font_points("ytick.labelsize") / 72)  # two lines of tick text
        fig, ax = single_axes(ax, (6.0, row_h * rows + 1.0))
        if rope is not None and not standardized:
            from .decisions import parse_rope

            lo, hi = parse_rope(rope)
            ax.axvspan(lo, hi, color=COLORS["neutral"], alpha=0.18, lw=0, label="ROPE")
        ax.axvline(0, color="0.4", lw=0.7, ls="--")
        ax.hlines(pos, q[0], q[3], color=colors, lw=0.8)
        ax.hlines(pos, q[1], q[2], color=colors, lw=3.0)
        ax.scatter(mean[chosen], pos, color=colors, zorder=3, s=14,
                   edgecolors="white", linewidths=0.4)
        labels = [shorten(t, max_label) for t in names[chosen]]
        size = "x-small" if rows > 25 else "small"
        ax.set_yticks(pos, labels, fontsize=size)
        ax.set_ylim(pos[-1] + 0.7, -0.7)
        if hidden:
            ax.text(0.5, len(chosen) // 2, f"\u22ee {hidden} tasks not shown \u22ee",
                    transform=ax.get_yaxis_transform(), ha="center", va="center",
                    fontsize=size, color="0.35")
        right = ax.secondary_yaxis("right")
        word = {"negative": "neg", "positive": "pos", "practically zero": "zero",
                "undecided": "?"}
        if decision is None:
            rlabels = [f"{p:.2f}" for p in p_neg[chosen]]
            right.set_ylabel("P(slope < 0)", fontsize="small")
        else:
            rlabels = [f"{p:.2f} {word[w]}" for p, w in zip(p_neg[chosen], decision[chosen],
                                                             strict=True)]
            right.set_ylabel("P(below ROPE), decision", fontsize="small")
        right.set_yticks(pos, rlabels, fontsize=size)
        right.tick_params(length=0)
        unit = "sd of y per sd of x" if standardized else "data units"
        ax.set_xlabel(f"transfer slope ({unit}; > 0: better \u2192 better)")
        ax.set_title(f"{ci_prob:.0%} and 99% intervals", fontsize="small", loc="left")
    return fig


# -- population of slopes -------------------------------------------------------------------


def population_density(fit, grid: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
    """Posterior predictive density of a new task's slope on ``grid``.

    The exact mixture ``mean over draws of Normal(grid; slope_mu, slope_sigma)`` (oriented
    data units; the reference condition), whose mass below 0 is P(new task negative).
    With ``z`` (a standardized covariate row, :func:`bayesslope.covariates.covariate_row`)
    the mean is ``slope_mu + slope_beta @ z``: a new task with those covariates.
    """
    from scipy.stats import norm

    mu, sd = _population_draws(fit, z, 4000)
    return norm.pdf(grid[None, :], mu[:, None], sd[:, None]).mean(axis=0)


def _population_draws(fit, z, max_draws) -> tuple[np.ndarray, np.ndarray]:
    """Draws of a new task's population mean slope (at covariate row ``z``) and sd."""
    mu = _stacked(fit, "slope_mu", max_draws)
    if z is not None:
        mu = mu + _stacked(fit, "slope_beta", max_draws) @ np.asarray(z, dtype=float)
    return mu, _stacked(fit, "slope_sigma", max_draws)


def _covariate_curves(fit, covariates) -> list[tuple[str | None, np.ndarray | None, dict]]:
    """(label, z row, covariate values) per curve of :func:`plot_population`."""
    from collections.abc import Mapping

    from .covariates import covariate_row
    from .exceptions import DataValidationError

    if covariates is None:
        return [(None, None, None)]
    cov = fit.covariates
    if cov is None:
        raise DataValidationError(
            "covariates= needs a fit with task_covariates=; this fit has none")
    if not isinstance(covariates, Mapping) or not covariates:
        raise DataValidationError(
            "covariates should be a dict of covariate -> value (one new task) or of "
            f"label -> such a dict (one curve each), got {covariates!r}")
    if all(isinstance(v, Mapping) for v in covariates.values()):
        return [(str(k), covariate_row(cov, v), dict(v)) for k, v in covariates.items()]
    label = ", ".join(f"{k}={v}" for k, v in covariates.items())
    return [(label, covariate_row(cov, covariates), dict(covariates))]


def plot_population(fit, *, ax=None, show_tasks: bool = True, ci_prob: float = 0.9,
                    covariates=None, style: str | None = None):
    """Density of the slope of a new task, with P(new task has negative transfer).

    The posterior predictive density of a new task's oriented slope (the population
    Normal(slope_mu, slope_sigma) averaged over the posterior); the area below 0 is
    shaded and equals :meth:`TransferFit.population`'s ``p_negative_new_task``. A bar
    shows the ``ci_prob`` interval of the population mean ``slope_mu`` and ticks the
    tasks' posterior mean slopes.

    Parameters
    ----------
    fit : TransferFit
    ax : matplotlib.axes.Axes, optional
    show_tasks : bool, default True
        A rug of the per-task posterior mean slopes.
    ci_prob : float, default 0.9
    covariates : dict, optional
        For a fit with ``task_covariates``: the covariates of a new task (covariate ->
        value, as in ``fit.population(covariates=...)``), or a dict of label -> such a
        dict for one curve per kind of task (e.g. one per ``task_group`` level). Each
        curve is the density at ``slope_mu + slope_beta @ z`` with its P(new task < 0)
        (equal to ``fit.population(covariates=...)``'s) and its mean's interval in the
        legend. Without it, the density at ``slope_mu``: for a covariate fit, a task at
        the covariates' means and reference levels.
    style : {"one-column", "two-column"}, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import bayesslope as bs
    >>> df = bs.load_dataset("openclip")
    >>> fit = bs.fit_hierarchical(df, x="x", y="y", task="task",
    ...                           task_covariates="task_group", random_seed=1)  # doctest: +SKIP
    >>> fig = fit.plot_population(covariates={
    ...     g: {"task_group": g} for g in fit.covariates.levels["task_group"]})  # doctest: +SKIP
    """
    from .options import check_ci_prob
    from .summaries import prob_negative_new_task

    check_ci_prob(ci_prob)
    curves = _covariate_curves(fit, covariates)
    draws = [_population_draws(fit, z, None) for _, z, _ in curves]
    task_means = fit.posterior["posterior"]["slope"].mean(("chain", "draw")).values
    lo = min(min(np.quantile(mu - 4 * sd, 0.05) for mu, sd in draws), task_means.min(), 0.0)
    hi = max(max(np.quantile(mu + 4 * sd, 0.95) for mu, sd in draws), task_means.max(), 0.0)
    pad = 0.05 * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, 400)
    grid = np.union1d(grid, [0.0])  # the shaded area ends exactly at 0
    dens = [population_density(fit, grid, z) for _, z, _ in curves]
    top = max(d.max() for d in dens)
    palette = [COLORS["fit"], COLORS["data"], COLORS["alt"], COLORS["negative"], "0.45",
               "tab:purple", "tab:olive", "tab:cyan", "tab:brown", "tab:pink"]
    with maybe_style(style):
        fig, ax = single_axes(ax, (4.5, 2.6))
        neg = grid <= 0
        if covariates is None:
            p_new = prob_negative_new_task(fit.posterior)
            mu = draws[0][0]
            ax.fill_between(grid[neg], dens[0][neg], color=COLORS["negative"], alpha=0.35,
                            lw=0, label=_p_label(p_new))
            ax.plot(grid, dens[0], color=COLORS["fit"], label="new task's slope")
            m_lo, m_hi = np.quantile(mu, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
            ax.hlines(-0.06 * top, m_lo, m_hi, color=COLORS["data"], lw=2.5,
                      label=f"mean slope_mu, {ci_prob:.0%}")
            ax.plot([mu.mean()], [-0.06 * top], "o", color=COLORS["data"], ms=3)
        else:
            for j, ((label, _, values), (mu, _), d) in enumerate(zip(curves, draws, dens,
                                                                    strict=True)):
                color = palette[j % len(palette)]
                p_new = float(fit.population(ci_prob, covariates=values)
                              .loc["p_negative_new_task", "mean"])
                ax.fill_between(grid[neg], d[neg], color=color, alpha=0.2, lw=0)
                ax.plot(grid, d, color=color, label=f"{label}: {_p_label(p_new)}")
                m_lo, m_hi = np.quantile(mu, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
                y = -(0.04 + 0.04 * j) * top
                ax.hlines(y, m_lo, m_hi, color=color, lw=2.0)
                ax.plot([mu.mean()], [y], "o", color=color, ms=3)
        ax.axvline(0, color="0.4", lw=0.7, ls="--")
        n_bars = 1 if covariates is None else len(curves)
        rug = -(0.07 + 0.04 * n_bars) * top
        if show_tasks:
            ax.plot(task_means, np.full(task_means.size, rug), "|",
                    color=COLORS["alt"] if covariates is None else "0.3", ms=6, mew=0.8,
                    label="task means")
        thin_ticks(ax, nbins=5)
        ax.set_ylim(rug - 0.05 * top, 1.08 * top)
        ax.set_yticks([])  # a density: its height has no unit worth reading
        ax.spines[["left", "right", "top"]].set_visible(False)
        ax.set_xlabel("transfer slope of a new task (data units)")
        ax.legend(fontsize="x-small", loc="upper left", frameon=False)
        if covariates is not None:
            ax.set_title(f"bars: {ci_prob:.0%} interval of the mean slope; shaded: P(< 0)",
                         fontsize="x-small")
    return fig


def _p_label(p_new: float) -> str:
    return f"P(new task < 0) = {p_new:.3f}" if p_new >= 0.001 else "P(new task < 0) < 0.001"
