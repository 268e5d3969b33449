"""Collapsed (marginalized) Gaussian hierarchical likelihood: one source of truth.

The Gaussian transfer model, per task ``t`` with observations ``(xc_i, y_i)``::

    y_i = a_t + b_t * xc_i + e_i,                 e_i ~ Normal(0, sigma_t^2)
    (a_t, b_t) ~ MVNormal((intercept_mu, slope_mu), Sigma)
    Sigma = [[sa^2, rho*sa*sb], [rho*sa*sb, sb^2]]

Integrating ``(a_t, b_t)`` out leaves ``y_t ~ MVN(X_t mu, X_t Sigma X_t' + sigma_t^2 I)``
with ``X_t = [1, xc]``. Its density, and the conjugate Gaussian of ``(a_t, b_t)`` given
the population parameters, depend on the data only through six per-task sufficient
statistics and need only 2x2 algebra (matrix determinant lemma and Woodbury).

Every formula here is written once against an array namespace ``xp`` and runs unchanged
with :mod:`numpy`, :mod:`jax.numpy` and :mod:`pytensor.tensor`, so the PyMC potential,
a JAX sampler and the numpy post-processing share literally the same code. Only
arithmetic, broadcasting, ``xp.log``, ``xp.sqrt``, ``xp.maximum``, ``xp.where`` and
``xp.sum`` are used: no ``xp.linalg``, no in-place updates, no Python branching on values.

Numerical design
----------------
* The intercept is re-expressed at the task's mean x, ``a' = a + b * xbar``; in those
  coordinates ``X'X = diag(n, sxx)`` and the data enter through centered sums, so large
  offsets in x or y do not cancel catastrophically.
* Every determinant is assembled as a sum of non-negative terms: ``det Sigma`` is
  ``(sa*sb)^2 (1 - rho)(1 + rho)`` and is invariant under the recentering, and the
  quadratic form of the marginal density is written as a sum of squares.
* ``sxx = 0`` (one observation, or a constant x) and ``n = 0`` (no observations) stay
  finite: the prior keeps the marginal proper and no term divides by ``sxx``.

Per-task prior means
--------------------
The population means may differ between tasks (task covariates: ``intercept_mu_t =
intercept_mu + Z_t @ intercept_beta``, likewise for the slope): every formula is per task
and only ever uses the task's own prior mean, so ``intercept_mu`` and ``slope_mu`` may be
arrays of shape (T,) (or ``(..., T)``), broadcast like a per-task ``sigma``. The conjugate
algebra is unchanged: ``y_t ~ MVN(X_t mu_t, X_t Sigma X_t' + sigma_t^2 I)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "SufficientStats",
    "GroupedStats",
    "ConditionalMoments",
    "task_sufficient_stats",
    "group_sufficient_stats",
    "task_marginal_loglik",
    "marginal_loglik",
    "grouped_marginal_loglik",
    "conditional_moments",
    "conditional_draw",
    "draw_task_coefficients",
]

_LOG_2PI = math.log(2.0 * math.pi)
# Normals generated per chunk in draw_task_coefficients are bounded by this many values
# (chain * draws-in-chunk * tasks * 2) when no chunk size is given.
_AUTO_CHUNK_VALUES = 1 << 22


class SufficientStats(NamedTuple):
    """Per-task sufficient statistics of ``(xc, y)``, each a float64 array of shape (T,).

    Attributes
    ----------
    n : ndarray
        Number of observations of the task (as float).
    xbar, ybar : ndarray
        Task means of ``xc`` and ``y`` (0 for a task without observations).
    sxx : ndarray
        ``sum (xc - xbar)^2`` over the task.
    sxy : ndarray
        ``sum (xc - xbar) (y - ybar)`` over the task.
    syy : ndarray
        ``sum (y - ybar)^2`` over the task.
    """

    n: Any
    xbar: Any
    ybar: Any
    sxx: Any
    sxy: Any
    syy: Any


class GroupedStats(NamedTuple):
    """Sufficient statistics of groups of tasks that share a design, shape (G,) each.

    Tasks with equal ``(n, xbar, sxx)`` (the same ``X'X``) have marginal likelihoods that
    differ only through ``ybar``, the least-squares slope ``bhat`` and the residual sum of
    squares, and a sum over such tasks needs only the first and second moments of
    ``(ybar, bhat)`` and the summed RSS. With shared ``sigma`` the total likelihood then
    costs ``O(G)`` rather than ``O(T)``: for a transfer matrix, whose pairs are standardized
    so that ``X'X`` depends on ``n`` alone, ``G`` is the number of distinct pair sizes.

    Attributes
    ----------
    count : ndarray
        Tasks in the group (as float).
    n, xbar, sxx : ndarray
        The design shared by the group's tasks.
    ybar_mean, bhat_mean : ndarray
        Group means of ``ybar`` and of ``bhat = sxy / sxx`` (0 where ``sxx == 0``).
    s_yy, s_yb, s_bb : ndarray
        Centered sums of squares and cross-products of ``(ybar, bhat)`` over the group.
    rss : ndarray
        Summed least-squares residual sums of squares ``syy - sxy * bhat``.
    """

    count: Any
    n: Any
    xbar: Any
    sxx: Any
    ybar_mean: Any
    bhat_mean: Any
    s_yy: Any
    s_yb: Any
    s_bb: Any
    rss: Any


class ConditionalMoments(NamedTuple):
    """Gaussian conditional posterior of each task's ``(intercept, slope)``.

    Attributes
    ----------
    mean_a, mean_b : array
        Conditional means of the intercept (at ``xc = 0``) and the slope.
    var_a, cov_ab, var_b : array
        Entries of the 2x2 conditional covariance.
    det : array
        ``var_a * var_b - cov_ab**2``, computed without that cancellation; it keeps the
        Cholesky factor of :func:`conditional_draw` accurate when the two coefficients
        are almost perfectly correlated (a far-away reference point).
    """

    mean_a: Any
    mean_b: Any
    var_a: Any
    cov_ab: Any
    var_b: Any
    det: Any


# --------------------------------------------------------------------------------------
# Sufficient statistics (numpy only: they are data, computed once)
# --------------------------------------------------------------------------------------


def task_sufficient_stats(xc, y, task_idx, n_tasks: int) -> SufficientStats:
    """Per-task count, means and centered sums of squares and cross-products.

    Computed in float64 with a corrected two-pass algorithm (means, then centered sums
    minus the square of the residual sum of deviations), which is exact under a common
    shift of x or y up to rounding of the centered values themselves.

    Parameters
    ----------
    xc : array_like, shape (n_obs,)
        Oriented, centered upstream values.
    y : array_like, shape (n_obs,)
        Downstream values.
    task_idx : array_like of int, shape (n_obs,)
        Task of each observation, in ``[0, n_tasks)``.
    n_tasks : int
        Number of tasks ``T`` (tasks without observations get ``n = 0`` and zero sums).

    Returns
    -------
    SufficientStats
        Float64 arrays of shape (T,).

    Raises
    ------
    ValueError
        If the arrays are not one-dimensional of equal length, a task index is out of
        range, or a value is not finite.
    """
    xc = np.asarray(xc, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    idx = np.asarray(task_idx)
    n_tasks = int(n_tasks)
    if xc.ndim != 1 or y.shape != xc.shape or idx.shape != xc.shape:
        raise ValueError(
            f"xc, y and task_idx must be 1-d of equal length; got shapes "
            f"{xc.shape}, {y.shape}, {idx.shape}"
        )
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"task_idx must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.intp, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= n_tasks):
        raise ValueError(f"task_idx must lie in [0, {n_tasks}); got [{idx.min()}, {idx.max()}]")
    if not (np.all(np.isfinite(xc)) and np.all(np.isfinite(y))):
        raise ValueError("xc and y must be finite")

    def tsum(w: np.ndarray) -> np.ndarray:
        return np.bincount(idx, weights=w, minlength=n_tasks)

    n = tsum(np.ones_like(xc))
    safe_n = np.where(n > 0, n, 1.0)  # empty tasks: means 0, sums 0

    def refined_mean(v: np.ndarray) -> np.ndarray:
        # One correction step: the first mean is off by rounding of a sum of large values;
        # the mean of the residuals recovers it to about one ulp of the mean.
        m = tsum(v) / safe_n
        return m + tsum(v - m[idx]) / safe_n

    xbar = refined_mean(xc)
    ybar = refined_mean(y)
    u = xc - xbar[idx]
    v = y - ybar[idx]
    su, sv = tsum(u), tsum(v)
    # Corrected two-pass sums (Chan, Golub & LeVeque): subtract what the residual error of
    # the mean contributes, so a constant-x task gives sxx == 0 rather than rounding noise.
    sxx = np.maximum(tsum(u * u) - su * su / safe_n, 0.0)
    syy = np.maximum(tsum(v * v) - sv * sv / safe_n, 0.0)
    sxy = tsum(u * v) - su * sv / safe_n
    # Cauchy-Schwarz, enforced against rounding: keeps the residual sum of squares
    # syy - sxy^2/sxx non-negative and sxy == 0 wherever sxx == 0.
    bound = np.sqrt(sxx * syy)
    sxy = np.clip(sxy, -bound, bound)
    return SufficientStats(n=n, xbar=xbar, ybar=ybar, sxx=sxx, sxy=sxy, syy=syy)


def group_sufficient_stats(stats: SufficientStats) -> GroupedStats:
    """Pool tasks with identical ``(n, xbar, sxx)`` into :class:`GroupedStats`.

    Exact: :func:`grouped_marginal_loglik` of the result equals :func:`marginal_loglik`
    of ``stats`` (up to rounding) for a shared ``sigma``. Grouping is on exact equality,
    so it only pays off when designs repeat (e.g. standardized transfer-matrix pairs).

    Parameters
    ----------
    stats : SufficientStats
        Per-task statistics, shape (T,).

    Returns
    -------
    GroupedStats
        One entry per distinct design, in sorted order of ``(n, xbar, sxx)``.
    """
    stats = SufficientStats(*(np.asarray(s, dtype=np.float64) for s in stats))
    keys = np.stack([stats.n, stats.xbar, stats.sxx], axis=1)
    design, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_groups = design.shape[0]
    bhat, rss = _least_squares(stats.sxx, stats.sxy, stats.syy, np)

    def gsum(w: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=w, minlength=n_groups)

    count = gsum(np.ones_like(stats.n))
    ybar_mean = gsum(stats.ybar) / count
    bhat_mean = gsum(bhat) / count
    # Centered before squaring, so the within-group spread does not cancel.
    dy = stats.ybar - ybar_mean[inverse]
    db = bhat - bhat_mean[inverse]
    return GroupedStats(
        count=count, n=design[:, 0], xbar=design[:, 1], sxx=design[:, 2],
        ybar_mean=ybar_mean, bhat_mean=bhat_mean,
        s_yy=gsum(dy * dy), s_yb=gsum(dy * db), s_bb=gsum(db * db), rss=gsum(rss),
    )


# --------------------------------------------------------------------------------------
# Shared 2x2 algebra (generic over xp)
# --------------------------------------------------------------------------------------


def _as_stats(stats: SufficientStats, xp: ModuleType) -> SufficientStats:
    # numpy arrays mixed into traced JAX code or symbolic PyTensor graphs are converted
    # up front; this branches on the namespace, never on array values.
    convert = getattr(xp, "asarray", None) or xp.as_tensor_variable
    return SufficientStats(*(convert(s) for s in stats))


class _Pieces(NamedTuple):
    s2: Any  # sigma^2
    det_s: Any  # det Sigma (= det of the recentered prior covariance)
    rho1: Any  # 1 - rho^2
    det_m: Any  # det(I + S' D / s2), S' = recentered prior cov, D = diag(n, sxx)
    e1: Any  # ybar - prior mean of the task's line at xbar
    d: Any  # least-squares slope sxy / sxx minus slope_mu (-slope_mu where sxx == 0)
    rss: Any  # least-squares residual sum of squares


def _least_squares(sxx, sxy, syy, xp):
    # Least-squares slope and residual sum of squares. Division by sxx only through a
    # data-side guard: sxx == 0 (n = 1, constant x) means no information on the slope, and
    # every term using bhat is multiplied by sxx.
    has_spread = sxx > 0
    bhat = xp.where(has_spread, sxy / xp.where(has_spread, sxx, 1.0), 0.0)
    return bhat, xp.maximum(syy - sxy * bhat, 0.0)


def _design_pieces(n, xbar, sxx, sa, sb, rho, sigma, xp):
    # The parts that depend on the design (n, xbar, sxx) and the parameters only.
    s2 = xp.square(sigma)
    rho1 = (1.0 - rho) * (1.0 + rho)  # 1 - rho^2 without cancellation near |rho| = 1
    det_s = xp.square(sa * sb) * rho1
    # Prior of (a', b) with a' = a + b*xbar: mean (mu_a + mu_b*xbar, mu_b) and covariance
    # S' = L Sigma L', L = [[1, xbar], [0, 1]]; S'aa written as a sum of squares.
    saa = xp.square(sa + rho * xbar * sb) + rho1 * xp.square(xbar * sb)
    sbb = xp.square(sb)
    # det(I_2 + S' diag(n, sxx) / s2) by expansion: every term is non-negative.
    det_m = 1.0 + (n * saa + sxx * sbb) / s2 + det_s * n * sxx / xp.square(s2)
    return s2, det_s, rho1, det_m


def _pieces(stats, intercept_mu, slope_mu, intercept_sigma, slope_sigma, corr, sigma, xp):
    n, xbar, ybar, sxx, sxy, syy = stats
    s2, det_s, rho1, det_m = _design_pieces(n, xbar, sxx, intercept_sigma, slope_sigma,
                                            corr, sigma, xp)
    e1 = ybar - (intercept_mu + slope_mu * xbar)
    bhat, rss = _least_squares(sxx, sxy, syy, xp)
    return _Pieces(s2, det_s, rho1, det_m, e1, bhat - slope_mu, rss)


def _assemble_loglik(n, sxx, sa, count, s2, rho1, det_m, lead2, d2, e12, rss, xp):
    """Log marginal density of ``count`` tasks sharing a design, from summed squares.

    ``lead2``, ``d2``, ``e12`` are sums over the tasks of ``lead^2``, ``d^2`` and
    ``e1^2`` (see :func:`task_marginal_loglik`) and ``rss`` the summed residual sums of
    squares; with ``count = 1`` they are one task's own values.
    """
    # q = n*sxx*[lead^2 + (1 - rho^2)*sa^2*d^2] + s2*(n*e1^2 + sxx*d^2), summed.
    # It is g' adj(s2 I + S'D) D^-1 g with g = X'(y - X mu) in centered coordinates,
    # regrouped so that no term divides by sxx and all terms are squares.
    q = n * sxx * (lead2 + rho1 * xp.square(sa) * d2) + s2 * (n * e12 + sxx * d2)
    quad = (rss + q / (s2 * det_m)) / s2
    log_det = n * xp.log(s2) + xp.log(det_m)
    return -0.5 * (count * (n * _LOG_2PI + log_det) + quad)


def task_marginal_loglik(
    stats: SufficientStats,
    intercept_mu,
    slope_mu,
    intercept_sigma,
    slope_sigma,
    corr,
    sigma,
    xp: ModuleType = np,
):
    """Per-task log marginal density of ``y_t`` with the task coefficients integrated out.

    ``log N(y_t | X_t mu, X_t Sigma X_t' + sigma_t^2 I)`` from sufficient statistics::

        log det C = n log s2 + log det M,      M = I + S' diag(n, sxx) / s2
        y'C^-1 y  = [RSS + q / (s2 det M)] / s2

    where ``S'`` is the prior covariance of the intercept at ``xbar`` and the slope, RSS
    the least-squares residual sum of squares, and ``q`` a sum of squares in the
    deviations of the task's least-squares line from the prior mean line.

    Parameters
    ----------
    stats : SufficientStats
        Arrays of shape (T,) (numpy, or the namespace's own arrays / tensors).
    intercept_mu, slope_mu : scalar or array
        Population means of intercept (at ``xc = 0``) and slope: shared, or per task
        (shape (T,); task covariates).
    intercept_sigma, slope_sigma : scalar or array
        Population standard deviations (> 0).
    corr : scalar or array
        Correlation of intercept and slope, in (-1, 1).
    sigma : scalar or array
        Residual standard deviation: shared, or per task (shape (T,)).
    xp : module, default numpy
        Array namespace: ``numpy``, ``jax.numpy`` or ``pytensor.tensor``.

    Returns
    -------
    array
        Shape: the broadcast of (T,) with the parameters' shapes (parameters with leading
        batch dimensions must end in a length-1 or length-T axis).
    """
    stats = _as_stats(stats, xp)
    sa, sb, rho = intercept_sigma, slope_sigma, corr
    p = _pieces(stats, intercept_mu, slope_mu, sa, sb, rho, sigma, xp)
    # lead = sb*(ahat - mu_a) - rho*sa*(bhat - mu_b), with ahat - mu_a = e1 - xbar*d.
    lead = sb * (p.e1 - stats.xbar * p.d) - rho * sa * p.d
    return _assemble_loglik(stats.n, stats.sxx, sa, 1.0, p.s2, p.rho1, p.det_m,
                            xp.square(lead), xp.square(p.d), xp.square(p.e1), p.rss, xp)


def marginal_loglik(
    stats: SufficientStats,
    intercept_mu,
    slope_mu,
    intercept_sigma,
    slope_sigma,
    corr,
    sigma,
    xp: ModuleType = np,
):
    """Total log marginal likelihood: :func:`task_marginal_loglik` summed over tasks.

    Parameters
    ----------
    stats, intercept_mu, slope_mu, intercept_sigma, slope_sigma, corr, sigma, xp
        As in :func:`task_marginal_loglik`.

    Returns
    -------
    scalar or array
        The sum over the last (task) axis; leading batch dimensions, if any, remain.
    """
    per_task = task_marginal_loglik(
        stats, intercept_mu, slope_mu, intercept_sigma, slope_sigma, corr, sigma, xp=xp
    )
    return xp.sum(per_task, axis=-1)


def grouped_marginal_loglik(
    groups: GroupedStats,
    intercept_mu,
    slope_mu,
    intercept_sigma,
    slope_sigma,
    corr,
    sigma,
    xp: ModuleType = np,
):
    """Total log marginal likelihood from :class:`GroupedStats`, for a shared ``sigma``.

    Equal to :func:`marginal_loglik` of the ungrouped statistics: within a group the
    deviations ``e1`` and ``d`` of each task's least-squares line from the prior mean line
    are the group mean's deviation plus a parameter-free offset, so their summed squares
    are ``count * mean_dev^2`` plus the centered sums of :class:`GroupedStats`.

    Parameters
    ----------
    groups : GroupedStats
        From :func:`group_sufficient_stats`, shape (G,).
    intercept_mu, slope_mu, intercept_sigma, slope_sigma, corr : scalar or array
        As in :func:`task_marginal_loglik`.
    sigma : scalar or array
        Residual standard deviation shared by all tasks (leading batch dimensions must end
        in a length-1 axis); a per-task ``sigma`` cannot be grouped.
    xp : module, default numpy
        Array namespace: ``numpy``, ``jax.numpy`` or ``pytensor.tensor``.

    Returns
    -------
    scalar or array
        The sum over groups; leading batch dimensions, if any, remain.
    """
    convert = getattr(xp, "asarray", None) or xp.as_tensor_variable
    g = GroupedStats(*(convert(v) for v in groups))
    sa, sb, rho = intercept_sigma, slope_sigma, corr
    s2, _, rho1, det_m = _design_pieces(g.n, g.xbar, g.sxx, sa, sb, rho, sigma, xp)
    e1 = g.ybar_mean - (intercept_mu + slope_mu * g.xbar)  # the group means' deviations
    d = g.bhat_mean - slope_mu
    c = sb * g.xbar + rho * sa  # lead = sb*e1 - c*d
    lead2 = (g.count * xp.square(sb * e1 - c * d)
             + xp.square(sb) * g.s_yy - 2.0 * sb * c * g.s_yb + xp.square(c) * g.s_bb)
    d2 = g.count * xp.square(d) + g.s_bb
    e12 = g.count * xp.square(e1) + g.s_yy
    per_group = _assemble_loglik(g.n, g.sxx, sa, g.count, s2, rho1, det_m,
                                 lead2, d2, e12, g.rss, xp)
    return xp.sum(per_group, axis=-1)


def conditional_moments(
    stats: SufficientStats,
    intercept_mu,
    slope_mu,
    intercept_sigma,
    slope_sigma,
    corr,
    sigma,
    xp: ModuleType = np,
) -> ConditionalMoments:
    """Conjugate Gaussian of each task's ``(intercept, slope)`` given the population.

    Posterior precision ``Sigma^-1 + X'X / s2``; its determinant is ``det M / det Sigma``
    (the recentering has unit determinant), so the covariance is the adjugate of the
    precision times ``det Sigma / det M``, every entry a sum of same-signed terms (the
    off-diagonal one aside, whose error stays relative to ``sqrt(var_a * var_b)``).

    Parameters
    ----------
    stats : SufficientStats
        Arrays of shape (T,).
    intercept_mu, slope_mu, intercept_sigma, slope_sigma, corr, sigma : scalar or array
        As in :func:`task_marginal_loglik`; may carry leading dimensions, e.g.
        ``(chain, draw, 1)`` (or ``(chain, draw, T)`` for a per-task ``sigma``).
    xp : module, default numpy
        Array namespace: ``numpy``, ``jax.numpy`` or ``pytensor.tensor``.

    Returns
    -------
    ConditionalMoments
        Arrays of the broadcast shape, e.g. ``(chain, draw, T)``.
    """
    stats = _as_stats(stats, xp)
    n, xbar, _, sxx, _, _ = stats
    sa, sb, rho = intercept_sigma, slope_sigma, corr
    p = _pieces(stats, intercept_mu, slope_mu, sa, sb, rho, sigma, xp)
    ratio = p.det_s / p.s2
    # Adjugate of the raw-design precision times det Sigma / det M; sxx + n*xbar^2 is the
    # raw sum of squares of xc.
    var_a = (xp.square(sa) + ratio * (sxx + n * xp.square(xbar))) / p.det_m
    cov_ab = (rho * sa * sb - ratio * n * xbar) / p.det_m
    var_b = (xp.square(sb) + ratio * n) / p.det_m
    # Covariances with a' = a + b*xbar, the coordinate in which X'X is diagonal.
    cov_ap_a = (sa * (sa + rho * xbar * sb) + ratio * sxx) / p.det_m
    cov_ap_b = sb * (rho * sa + xbar * sb) / p.det_m
    # mean = mu + Cov((a, b), (a', b)) g / s2 with g = (n*e1, sxx*(bhat - mu_b)).
    g_a = n * p.e1
    g_b = sxx * p.d
    mean_a = intercept_mu + (cov_ap_a * g_a + cov_ab * g_b) / p.s2
    mean_b = slope_mu + (cov_ap_b * g_a + var_b * g_b) / p.s2
    det = p.det_s / p.det_m
    return ConditionalMoments(mean_a, mean_b, var_a, cov_ab, var_b, det)


def conditional_draw(moments: ConditionalMoments, z_a, z_b, xp: ModuleType = np):
    """Exact draws of ``(intercept, slope)`` from standard normals, via a 2x2 Cholesky.

    ``intercept = mean_a + L11 z_a`` and ``slope = mean_b + L21 z_a + L22 z_b`` with
    ``L11 = sqrt(var_a)``, ``L21 = cov_ab / L11`` and ``L22 = sqrt(det / var_a)`` (the
    stable determinant, not ``var_b - L21^2``). The random numbers come from the caller,
    so numpy and JAX share the formula and the RNG.

    Parameters
    ----------
    moments : ConditionalMoments
        From :func:`conditional_moments`.
    z_a, z_b : array
        Independent standard normals broadcastable to the moments' shape.
    xp : module, default numpy
        Array namespace.

    Returns
    -------
    tuple of array
        ``(intercept, slope)``.
    """
    l11 = xp.sqrt(moments.var_a)
    l21 = moments.cov_ab / l11
    l22 = xp.sqrt(moments.det / moments.var_a)
    intercept = moments.mean_a + l11 * z_a
    slope = moments.mean_b + l21 * z_a + l22 * z_b
    return intercept, slope


# --------------------------------------------------------------------------------------
# numpy convenience: complete a collapsed posterior with task coefficients
# --------------------------------------------------------------------------------------

_PARAM_NAMES = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr", "sigma")
# Parameters that may be given per task, shape (chain, draw, T).
_PER_TASK_OK = ("intercept_mu", "slope_mu", "sigma")


def draw_task_coefficients(
    rng: np.random.Generator,
    stats: SufficientStats,
    params: Mapping[str, Any],
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw every task's intercept and slope once per posterior draw (numpy).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the standard normals.
    stats : SufficientStats
        Arrays of shape (T,).
    params : mapping of str to array
        ``intercept_mu``, ``slope_mu``, ``intercept_sigma``, ``slope_sigma`` and ``corr``
        of shape (chain, draw) (``corr`` may be omitted: independent effects), and
        ``sigma`` of shape (chain, draw) or (chain, draw, T). ``intercept_mu`` and
        ``slope_mu`` may also be per task, shape (chain, draw, T) (task covariates).
    chunk_size : int, optional
        Draws processed at a time, to bound memory; default: as many as keep a chunk to
        about four million normals. The output does not depend on it.

    Returns
    -------
    intercept, slope : ndarray of float64, shape (chain, draw, T)

    Notes
    -----
    The normals are consumed from ``rng`` in draw-major order, ``(draw, {a, b}, chain,
    task)``, one contiguous block per chunk; numpy's generators fill arrays sequentially,
    so chunking the draws only splits the same stream and the result is identical for
    every ``chunk_size``.
    """
    stats = SufficientStats(*(np.asarray(s, dtype=np.float64) for s in stats))
    n_tasks = stats.n.shape[0]
    shape = np.shape(params["slope_sigma"])
    if len(shape) != 2:
        raise ValueError(f"population parameters must have shape (chain, draw); got {shape}")
    n_chain, n_draw = shape

    values = {}
    for name in _PARAM_NAMES:
        if name == "corr" and name not in params:
            value = np.zeros(shape)
        else:
            value = np.asarray(params[name], dtype=np.float64)
        per_task = name in _PER_TASK_OK
        if value.shape == shape:
            value = value[..., None]  # broadcast against the task axis
        elif not (per_task and value.shape == (*shape, n_tasks)):
            expected = f"{shape} or {(*shape, n_tasks)}" if per_task else f"{shape}"
            raise ValueError(f"params[{name!r}] must have shape {expected}; got {value.shape}")
        values[name] = value

    if chunk_size is None:
        chunk_size = max(1, _AUTO_CHUNK_VALUES // max(1, 2 * n_chain * n_tasks))
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size}")

    intercept = np.empty((n_chain, n_draw, n_tasks))
    slope = np.empty((n_chain, n_draw, n_tasks))
    for start in range(0, n_draw, chunk_size):
        stop = min(start + chunk_size, n_draw)
        block = {k: v[:, start:stop] for k, v in values.items()}
        moments = conditional_moments(stats, **block, xp=np)
        z = rng.standard_normal((stop - start, 2, n_chain, n_tasks))
        z_a = np.moveaxis(z[:, 0], 0, 1)  # (chain, draws-in-chunk, T)
        z_b = np.moveaxis(z[:, 1], 0, 1)
        intercept[:, start:stop], slope[:, start:stop] = conditional_draw(moments, z_a, z_b)
    return intercept, slope
