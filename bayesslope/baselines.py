"""Per-task least-squares forecasts: the baselines a backtest sets beside the Bayesian one.

Two curves of one task's y on x, each fitted by least squares to the task's training rows
alone, with a prediction interval for a new observation:

``linear``
    ``y = a + b x``; the exact Student-t prediction interval of ordinary least squares,
    ``yhat +- t_{n-2} s sqrt(1 + 1/n + (x - xbar)^2 / Sxx)``.
``sigmoid``
    ``y = lo + height / (1 + exp(-k (x - x0)))``, the 4-parameter curve of the task-ladder
    papers (Bhagia et al. 2024, arXiv:2412.04403: accuracy as a sigmoid of task loss),
    fitted with :func:`scipy.optimize.curve_fit`; the interval is the delta-method one,
    ``yhat +- t_{n-4} sqrt(J C J' + s^2)`` (C the parameter covariance, J the gradient).

A fit that is impossible (too few points, constant x) or fails to converge gives NaN and a
note instead of an exception, so one awkward task cannot stop a backtest.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["BASELINES", "BaselineForecast", "fit_baseline", "sigmoid"]

BASELINES = ("linear", "sigmoid")


@dataclass(frozen=True)
class BaselineForecast:
    """Predictions of one baseline for one task: mean and interval per new x."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    params: tuple | None = None
    note: str = ""


def sigmoid(x, lo, height, k, x0):
    """``lo + height / (1 + exp(-k (x - x0)))`` (overflow-safe)."""
    from scipy.special import expit

    return lo + height * expit(k * (np.asarray(x, dtype=float) - x0))


def _nan(n: int, note: str, params=None) -> BaselineForecast:
    empty = np.full(n, np.nan)
    return BaselineForecast(empty, empty.copy(), empty.copy(), params, note)


def _linear(x, y, xn, ci_prob) -> BaselineForecast:
    from scipy import stats

    n = len(x)
    if n < 2 or np.ptp(x) == 0:
        return _nan(len(xn), f"linear fit impossible ({n} training points or constant x)")
    xbar = x.mean()
    sxx = np.sum((x - xbar) ** 2)
    b = np.sum((x - xbar) * (y - y.mean())) / sxx
    a = y.mean() - b * xbar
    mean = a + b * xn
    if n < 3:
        nan = np.full(len(xn), np.nan)
        return BaselineForecast(mean, nan, nan.copy(), (a, b), "2 training points: no interval")
    s2 = np.sum((y - a - b * x) ** 2) / (n - 2)
    half = stats.t.ppf((1 + ci_prob) / 2, n - 2) * np.sqrt(
        s2 * (1 + 1 / n + (xn - xbar) ** 2 / sxx))
    return BaselineForecast(mean, mean - half, mean + half, (a, b))


def _sigmoid(x, y, xn, ci_prob) -> BaselineForecast:
    from scipy import stats
    from scipy.optimize import curve_fit
    from scipy.special import expit

    n = len(x)
    if n < 4 or np.ptp(x) == 0:
        return _nan(len(xn), f"sigmoid fit impossible ({n} training points; it has 4 parameters)")
    direction = np.sign(np.corrcoef(x, y)[0, 1]) if np.ptp(y) > 0 else 1.0
    direction = direction if direction != 0 else 1.0
    p0 = (float(y.min()), float(max(np.ptp(y), 1e-6)), float(direction * 4.0 / np.ptp(x)),
          float(np.median(x)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            popt, pcov = curve_fit(sigmoid, x, y, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError, FloatingPointError) as err:
        return _nan(len(xn), f"sigmoid fit failed ({type(err).__name__}: {err})")
    lo, height, k, x0 = popt
    mean = sigmoid(xn, *popt)
    if not np.all(np.isfinite(mean)):
        return _nan(len(xn), "sigmoid fit gave non-finite predictions", tuple(popt))
    if n < 5 or not np.all(np.isfinite(pcov)):
        nan = np.full(len(xn), np.nan)
        return BaselineForecast(mean, nan, nan.copy(), tuple(popt),
                                "sigmoid fit: parameter covariance not identified, no interval")
    e = expit(k * (xn - x0))
    de = height * e * (1 - e)
    jac = np.stack([np.ones_like(xn), e, de * (xn - x0), -de * k], axis=1)
    s2 = np.sum((y - sigmoid(x, *popt)) ** 2) / (n - 4)
    var = np.einsum("ij,jk,ik->i", jac, pcov, jac) + s2
    half = stats.t.ppf((1 + ci_prob) / 2, n - 4) * np.sqrt(np.maximum(var, 0.0))
    return BaselineForecast(mean, mean - half, mean + half, tuple(popt))


def fit_baseline(method: str, x, y, x_new, ci_prob: float = 0.9) -> BaselineForecast:
    """Fit one baseline to one task's training rows and predict at ``x_new``.

    Parameters
    ----------
    method : {"linear", "sigmoid"}
    x, y : array_like
        The task's training rows.
    x_new : array_like
        Where to predict.
    ci_prob : float, default 0.9
        Mass of the prediction interval for a new observation.

    Returns
    -------
    BaselineForecast
        NaN predictions and a ``note`` when the fit is impossible or fails.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xn = np.asarray(x_new, dtype=float)
    if method == "linear":
        return _linear(x, y, xn, ci_prob)
    if method == "sigmoid":
        return _sigmoid(x, y, xn, ci_prob)
    raise ValueError(f"unknown baseline {method!r}; should be one of {list(BASELINES)}")
