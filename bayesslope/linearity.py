"""Is the straight line adequate, task by task? A verdict per task by PSIS-LOO.

``linearity_check`` fits several shapes of the mean function and compares them within
each task.

Each shape is one :func:`bayesslope.fit_hierarchical` fit of the same frame:

- ``"linear"``: the straight line (identity link, Gaussian or Student-t noise).
- ``"hockey_stick"``: flat at a per-task level until a threshold ``x0``, then linear
  (``shape="hockey_stick"``, identity link).
- ``"sigmoid"``: the bounded-accuracy model (probit link, chance floor when ``chance=``
  is given, one lapse rate per task; binomial when ``n_eval=`` is given). Only for
  scores in [0, 1]; for unbounded scores (losses) ``"quadratic"`` takes its place
  (``shape="quadratic"``: a per-task curvature).

Every fit's pointwise log-likelihood is on the density scale of y (count likelihoods add
``log n``, see docs/variants.md), so the elpd values of all shapes are comparable. The
per-task elpd is the sum of the PSIS-LOO pointwise values (arviz-stats) over the task's
rows, and the standard error of a difference is ``sqrt(n_t var(d_i))`` over the task's
pointwise differences ``d_i``, as ArviZ computes it for a whole data set. See
docs/linearity.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .exceptions import DataValidationError

__all__ = ["linearity_check", "LinearityCheck", "LINEARITY_SHAPES", "PARETO_K_MAX"]

LINEARITY_SHAPES = ("linear", "sigmoid", "hockey_stick", "quadratic")
PARETO_K_MAX = 0.7  # PSIS-LOO values of rows above this are unreliable
_SE_FACTOR = 2.0  # linear is "adequate" within this many standard errors of the best
# ... or within this many elpd units: below about 4 the two shapes predict alike and the
# normal approximation of the difference (its se) is unreliable (Sivula, Magnusson, Matamoros
# and Vehtari 2022, "Uncertainty in Bayesian leave-one-out cross-validation based model
# comparison"; the loo FAQ). Measured: without it 3 of 22 straight-line tasks got a
# hockey-stick verdict at differences of 0.25-0.47 elpd with se 0.07-0.22
# (validation/LINEARITY.md, confusion table).
_SMALL_DIFF = 4.0
_BOUNDED_ONLY = ("chance", "n_eval", "counts", "lapse", "link")
_RESERVED = ("shape", "log_likelihood", "x", "y", "task")


@dataclass(frozen=True, eq=False)
class LinearityCheck:
    """Result of :func:`linearity_check`.

    Attributes
    ----------
    fits : dict of str to TransferFit
        One fit per shape, each with its pointwise log-likelihood.
    loo : dict of str to arviz_stats ELPDData
        The PSIS-LOO of each fit (pointwise).
    substituted : dict
        Shapes replaced by another (``{"sigmoid": "quadratic"}`` for unbounded y).
    """

    fits: dict
    loo: dict
    rope: tuple[float, float] | None = None
    ci_prob: float = 0.9
    substituted: dict = field(default_factory=dict)
    _table: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def shapes(self) -> tuple[str, ...]:
        """The shapes fitted, in order."""
        return tuple(self.fits)

    def table(self) -> pd.DataFrame:
        """One row per task: elpd per shape, best shape, linear vs best, x0, verdict.

        Columns: ``n``; ``elpd_<shape>`` (sum of PSIS-LOO pointwise elpd over the task's
        rows); ``best``; ``elpd_diff`` (linear minus best, <= 0) and ``elpd_diff_se``;
        ``n_k_high_<shape>`` (rows with Pareto k > 0.7); ``slope_mean``, ``slope_lb``,
        ``slope_ub`` (the linear fit's oriented slope and ``ci_prob`` interval);
        ``x0_mean``, ``x0_lb``, ``x0_ub`` (hockey-stick threshold, data units);
        ``linear_x_lo``, ``linear_x_hi`` (where the straight line is adequate);
        ``tied`` (the shapes the data cannot tell from the best, best first, joined by
        "|": within 2 se or 4 elpd of it) and ``verdict``.
        """
        return self._table.copy()

    def compare(self, method: str = "stacking") -> pd.DataFrame:
        """Population-level comparison of the shapes: :func:`arviz_stats.compare`."""
        from arviz_stats import compare

        trees = {s: f.posterior for s, f in self.fits.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pareto k: see table()
            return compare(trees, method=method)

    def plot(self, *, tasks=None, axes=None, ncols: int | None = None, max_draws: int = 400,
             panel_size: tuple[float, float] = (3.0, 2.4)):
        """Per-task small multiples: data, each shape's posterior mean and band, x0.

        Parameters
        ----------
        tasks : sequence of str, optional
            Subset and order of tasks; default all.
        axes : array of matplotlib Axes, optional
            One per task (flattened in order); default a new figure.
        ncols : int, optional
        max_draws : int, default 400
            Posterior draws per shape for the bands.
        panel_size : (float, float)

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plots_linearity import plot_linearity

        return plot_linearity(self, tasks=tasks, axes=axes, ncols=ncols, max_draws=max_draws,
                              panel_size=panel_size)


def _bounded(df: pd.DataFrame, y: str) -> bool:
    vals = pd.to_numeric(df[y], errors="coerce")
    return bool(vals.notna().any() and vals.min() >= 0 and vals.max() <= 1)


def _shape_kwargs(shape: str, fit_kwargs: dict) -> dict:
    """Arguments of fit_hierarchical for one shape, from the user's ``fit_kwargs``."""
    kw = dict(fit_kwargs)
    # One noise scale per task: a shared sigma lets the worst-fitting tasks widen every
    # task's predictive density, and the per-task elpd would compare that instead.
    if kw.get("likelihood") not in ("binomial", "beta_binomial"):
        kw.setdefault("per_task_sigma", True)
    if shape == "sigmoid":
        kw.setdefault("lapse", True)
        if kw.get("link") in (None, "identity"):
            kw["link"] = "probit"
        return {**kw, "shape": "linear"}
    for key in _BOUNDED_ONLY:
        kw.pop(key, None)
    if kw.get("likelihood") not in (None, "normal", "student_t"):
        kw.pop("likelihood")
    return {**kw, "shape": shape}


def _resolve_shapes(shapes, bounded: bool) -> tuple[list[str], dict]:
    if isinstance(shapes, str) or not len(shapes):
        raise DataValidationError(f"shapes should be a non-empty sequence of shape names, got "
                                  f"{shapes!r}")
    unknown = [s for s in shapes if s not in LINEARITY_SHAPES]
    if unknown:
        raise DataValidationError(f"{unknown[0]!r} is not a supported shape. Must be one of: "
                                  f"{list(LINEARITY_SHAPES)}")
    if "linear" not in shapes:
        raise DataValidationError(f"shapes must include 'linear' (the verdict compares it with "
                                  f"the best shape), got {list(shapes)}")
    out, substituted = [], {}
    for s in shapes:
        if s == "sigmoid" and not bounded:
            s = "quadratic"
            substituted["sigmoid"] = "quadratic"
        if s not in out:
            out.append(s)
    return out, substituted


def linearity_check(df: pd.DataFrame, *, x: str = "x", y: str = "y", task: str = "task",
                    shapes=("linear", "sigmoid", "hockey_stick"), rope=None,
                    ci_prob: float = 0.9, **fit_kwargs) -> LinearityCheck:
    """Fit the straight line and alternative shapes; a verdict per task by PSIS-LOO.

    Parameters
    ----------
    df : pandas.DataFrame
    x, y, task : str
        Columns, as in :func:`bayesslope.fit_hierarchical`.
    shapes : sequence of str, default ("linear", "sigmoid", "hockey_stick")
        Must include "linear". "sigmoid" (scores in [0, 1] only) is the probit model with
        the chance floor (``chance=``) and a lapse rate per task; for scores outside
        [0, 1] it is replaced by "quadratic" (recorded in ``.substituted``); with scores in
        [0, 1] it needs ``chance=`` (0 for no floor).
    rope : float or (float, float), optional
        Region of practical equivalence of the oriented slope of the linear fit (data
        units): a task whose ``ci_prob`` slope interval lies inside it is "flat".
    ci_prob : float, default 0.9
        Probability of the slope and threshold intervals.
    **fit_kwargs
        Passed to every :func:`bayesslope.fit_hierarchical` call (``group=``, sampler
        settings, ``random_seed``, ...). ``chance``, ``n_eval``, ``counts``, ``lapse`` and
        ``link`` go to the sigmoid fit only; a count likelihood likewise. ``per_task_sigma``
        defaults to True here (one noise scale per task, so that one task's misfit does
        not widen the predictive densities of the others).

    Returns
    -------
    LinearityCheck

    Notes
    -----
    ``verdict`` is "flat" when the linear fit's slope interval lies inside ``rope``;
    else "linear" when the linear fit's task elpd is within 2 standard errors, or within 4
    (a difference too small for its standard error to be trusted: Sivula et al. 2022), of
    the best shape's; else the best shape's name. ``tied`` lists every shape within that
    distance of the best: a hockey stick and a sigmoid with a chance floor often fit a
    bend equally well. ``linear_x_lo``/``linear_x_hi``: the whole
    x range of the task when the verdict is "linear" or "flat"; otherwise, when the
    hockey stick was fitted, the part of the task's x range beyond the threshold's
    ``ci_prob`` interval in the better direction (where the hockey stick is a straight
    line), NaN when that part is empty or no hockey stick was fitted.

    Examples
    --------
    Three shapes on two Pythia tasks, checkpoints grouped by model (about 3 minutes on 2
    cores at the default draws; docs/linearity.md runs it on every task):

    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> df = df[df["task"].isin(["arc_easy", "sciq"])]
    >>> chk = bs.linearity_check(df, shapes=("linear", "hockey_stick"), group="model",
    ...                          rope=0.01, random_seed=1)  # doctest: +SKIP
    >>> chk.table()[["verdict", "elpd_diff", "elpd_diff_se"]]  # doctest: +SKIP
    """
    from . import decisions
    from .fit import fit_hierarchical
    from .options import check_ci_prob

    check_ci_prob(ci_prob)
    bad = sorted(set(fit_kwargs) & set(_RESERVED))
    if bad:
        raise DataValidationError(f"linearity_check sets {bad} itself; drop them")
    rope_bounds = None if rope is None else decisions.parse_rope(rope)
    if y not in df.columns:
        raise DataValidationError(f"y={y!r} is not a column; the frame has columns "
                                  f"{list(df.columns)}")
    names, substituted = _resolve_shapes(tuple(shapes), _bounded(df, y))
    if "sigmoid" in names and fit_kwargs.get("chance") is None:
        raise DataValidationError(
            "shape 'sigmoid' is the chance-floor model and needs chance= (a column, a dict "
            "task -> value, or a number; chance=0 for no floor)"
        )
    fits, loos = {}, {}
    for s in names:
        fit = fit_hierarchical(df, x=x, y=y, task=task,
                               **{**_shape_kwargs(s, fit_kwargs), "log_likelihood": True})
        fits[s] = fit
        loos[s] = _loo(fit.posterior)
    table = _task_table(fits, loos, rope_bounds, ci_prob)
    return LinearityCheck(fits=fits, loo=loos, rope=rope_bounds, ci_prob=ci_prob,
                          substituted=substituted, _table=table)


def _loo(tree):
    from arviz_stats import loo

    with warnings.catch_warnings():
        # High Pareto k is reported per task in the table instead.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return loo(tree, pointwise=True, var_name="y")
        except ValueError as err:
            if "tail values are the same" not in str(err):
                raise
            # PSIS fits a Pareto tail to the largest ~20% of each observation's importance
            # ratios; with very few draws a tail can be all ties.
            post = tree["posterior"]
            n = post.sizes["chain"] * post.sizes["draw"]
            raise ValueError(
                f"PSIS-LOO failed on {n} posterior draws ({post.sizes['chain']} chains x "
                f"{post.sizes['draw']}): an observation's importance-ratio tail is all ties "
                f"(arviz-stats: {err}). Fix: more draws (the default, 4 x 1,000, works); "
                "a few hundred in all are too few for the comparison") from err


def _interval(draws: np.ndarray, ci_prob: float) -> tuple[np.ndarray, np.ndarray]:
    flat = draws.reshape(-1, draws.shape[-1])
    return tuple(np.quantile(flat, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0))


def _task_table(fits: dict, loos: dict, rope, ci_prob: float) -> pd.DataFrame:
    lin = fits["linear"]
    d = lin.design
    T = d.n_tasks
    idx = d.task_idx
    n = np.bincount(idx, minlength=T)
    out = pd.DataFrame(index=pd.Index(list(d.tasks), name="task"))
    out["n"] = n
    pointwise = {s: np.asarray(loos[s].elpd_i).reshape(-1) for s in fits}
    for s in fits:
        if not np.array_equal(fits[s].design.task_idx, idx):  # same frame, same row order
            raise RuntimeError("the shapes' fits do not share the row order")
        out[f"elpd_{s}"] = np.bincount(idx, pointwise[s], T)
    elpd = out[[f"elpd_{s}" for s in fits]].to_numpy()
    best = np.argmax(elpd, axis=1)
    shapes = list(fits)
    out["best"] = [shapes[b] for b in best]
    stacked = np.stack([pointwise[s] for s in shapes])
    best_i = stacked[best[idx], np.arange(idx.size)]
    out["elpd_diff"], out["elpd_diff_se"] = _task_diff(pointwise["linear"] - best_i, idx, T)
    tied = [[shapes[b]] for b in best]
    for j, s in enumerate(shapes):
        diff, se = _task_diff(stacked[j] - best_i, idx, T)
        for k in np.flatnonzero(_indistinguishable(diff, se) & (best != j)):
            tied[k].append(s)
    out["tied"] = ["|".join(t) for t in tied]
    for s in shapes:
        k = np.asarray(loos[s].pareto_k).reshape(-1)
        out[f"n_k_high_{s}"] = np.bincount(idx, k > PARETO_K_MAX, T).astype(int)
    slope = lin.posterior["posterior"]["slope"].transpose("chain", "draw", "task").values
    out["slope_mean"] = slope.reshape(-1, T).mean(axis=0)
    out["slope_lb"], out["slope_ub"] = _interval(slope, ci_prob)
    xmin = np.array([d.x[idx == k].min() for k in range(T)])
    xmax = np.array([d.x[idx == k].max() for k in range(T)])
    if "hockey_stick" in fits:
        x0 = fits["hockey_stick"].posterior["posterior"]["x0"].transpose(
            "chain", "draw", "task").values
        out["x0_mean"] = x0.reshape(-1, T).mean(axis=0)
        out["x0_lb"], out["x0_ub"] = _interval(x0, ci_prob)
    verdict = np.where(_indistinguishable(out["elpd_diff"].to_numpy(),
                                          out["elpd_diff_se"].to_numpy()),
                       "linear", out["best"]).astype(object)
    if rope is not None:
        flat = (out["slope_lb"] >= rope[0]) & (out["slope_ub"] <= rope[1])
        verdict[flat.to_numpy()] = "flat"
    out["verdict"] = verdict
    lo, hi = np.full(T, np.nan), np.full(T, np.nan)
    whole = np.isin(verdict, ["linear", "flat"])
    lo[whole], hi[whole] = xmin[whole], xmax[whole]
    if "hockey_stick" in fits:
        up = d.x_sign > 0  # higher x is better: linear beyond the threshold's upper bound
        start = np.where(up, np.maximum(out["x0_ub"], xmin), xmin)
        stop = np.where(up, xmax, np.minimum(out["x0_lb"], xmax))
        part = ~whole & (start < stop)
        lo[part], hi[part] = start[part], stop[part]
    out["linear_x_lo"], out["linear_x_hi"] = lo, hi
    out.attrs.update(ci_prob=ci_prob, rope=rope, pareto_k_max=PARETO_K_MAX,
                     se_factor=_SE_FACTOR, small_diff=_SMALL_DIFF)
    return out


def _task_diff(diff_i: np.ndarray, idx: np.ndarray, n_tasks: int):
    """Per-task sum of pointwise elpd differences and its se ``sqrt(n_t var(d_i))``."""
    n = np.bincount(idx, minlength=n_tasks)
    total = np.bincount(idx, diff_i, n_tasks)
    mean = total / np.maximum(n, 1)
    var = np.bincount(idx, (diff_i - mean[idx]) ** 2, n_tasks) / np.maximum(n - 1, 1)
    return total, np.sqrt(n * var)


def _indistinguishable(diff, se) -> np.ndarray:
    """Whether an elpd difference to the best (<= 0) is within 2 se or 4 elpd of it."""
    return np.asarray(diff) >= -np.maximum(_SE_FACTOR * np.asarray(se), _SMALL_DIFF)
