"""Figure of a backtest: per task, training and held-out points, forecasts and baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .baselines import sigmoid
from .exceptions import DataValidationError
from .plots import metric_name
from .style import COLORS, panel_grid, shorten, thin_ticks

__all__ = ["plot_backtest"]

_COLORS = {"bayes": COLORS["fit"], "linear": COLORS["alt"], "sigmoid": COLORS["alt2"]}


def plot_backtest(result, *, tasks=None, axes=None, ax=None, kind: str = "observation",
                  random_seed=None, style: str | None = None):
    """Per-task panels of a :class:`~bayesslope.backtesting.BacktestResult`.

    Grey: training rows; black: held-out rows; blue: the Bayesian forecast (mean line and
    ``ci_prob`` band along x, for the covariates of the task's first held-out row, and the
    interval at each held-out row); orange / purple: the linear and sigmoid baselines.
    ``style`` draws inside :func:`bayesslope.figure_style`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .predict import predict
    from .style import maybe_style

    rows = result.rows
    names = list(dict.fromkeys(rows["task"])) if tasks is None else [str(t) for t in tasks]
    unknown = [t for t in names if t not in set(rows["task"])]
    if unknown:
        raise DataValidationError(f"task(s) {unknown} have no held-out rows in this backtest")
    axes = axes if axes is not None else ax
    if axes is not None and np.size(axes) < len(names):
        raise DataValidationError(
            f"{len(names)} tasks need {len(names)} axes but {np.size(axes)} were given "
            "(pass tasks=[...] to choose)")
    with maybe_style(style):
        fig, flat, _ = panel_grid(len(names), axes=axes, ncols=min(3, len(names)),
                                  panel_size=(3.4, 2.6))
        _draw(result, flat, names, kind, random_seed, predict)
    return fig


def _draw(result, flat, names, kind, random_seed, predict) -> None:
    rows = result.rows
    fit = result.fit
    cols = fit.design.columns
    train = result._train
    lb, ub = (c.removeprefix("bayes_") for c in rows.columns
              if c.startswith("bayes_eti") and c.endswith(("_lb", "_ub")))
    for ax, task in zip(flat, names, strict=False):
        tr = train[train[cols["task"]].astype(str) == task]
        te = rows[rows["task"] == task]
        xall = np.concatenate([pd.to_numeric(tr[cols["x"]]).to_numpy(float), te["x"].to_numpy()])
        xs = np.linspace(xall.min(), xall.max(), 80)
        ax.scatter(tr[cols["x"]], tr[cols["y"]], s=8, color="0.65", lw=0, label="fitted rows")
        grid = pd.concat([result._held.loc[[te.index[0]]]] * len(xs), ignore_index=True)
        grid[cols["x"]] = xs
        band = predict(fit, grid, kind=kind, ci_prob=result.ci_prob, random_seed=random_seed)
        ax.fill_between(xs, band[lb], band[ub], color=_COLORS["bayes"], alpha=0.2, lw=0)
        ax.plot(xs, band["mean"], color=_COLORS["bayes"], label="Bayesian forecast")
        err = [te["bayes_mean"] - te[f"bayes_{lb}"], te[f"bayes_{ub}"] - te["bayes_mean"]]
        ax.errorbar(te["x"], te["bayes_mean"], yerr=err,
                    fmt="none", ecolor=_COLORS["bayes"], alpha=0.6)
        for m in ("linear", "sigmoid"):
            p = result._baseline_params.get((m, task))
            if p is None:
                continue
            yv = p[0] + p[1] * xs if m == "linear" else sigmoid(xs, *p)
            ax.plot(xs, yv, color=_COLORS[m], ls="--", lw=1, label=f"{m} least squares")
        ax.scatter(te["x"], te["actual"], s=12, color="k", zorder=3, label="held out")
        ax.set_title(shorten(task, 30), fontsize="small")
        ax.set_xlabel(metric_name(fit, "x"), fontsize="small")
        ax.set_ylabel(metric_name(fit, "y"), fontsize="small")
        ax.tick_params(labelsize="x-small")
        thin_ticks(ax, nbins=4)
    flat[0].legend(fontsize="x-small")
