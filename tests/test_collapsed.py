"""The collapsed Gaussian likelihood against dense and exact references.

References used, and why they are truth:

* ``scipy.stats.multivariate_normal.logpdf`` with the dense n x n marginal covariance
  ``X Sigma X' + sigma^2 I`` (the definition of the marginal), for well-conditioned data.
* Exact rational arithmetic (``fractions.Fraction``) on the same float64 inputs for the
  badly conditioned large-offset data, where any float64 dense computation itself loses
  digits: the only rounding left in the reference is the final conversion to float.
* ``numpy.linalg`` on the raw (uncentered) design for the conjugate conditional posterior.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from conftest import seed
from scipy import stats as sps

from bayesslope.collapsed import (
    ConditionalMoments,
    SufficientStats,
    conditional_draw,
    conditional_moments,
    draw_task_coefficients,
    group_sufficient_stats,
    grouped_marginal_loglik,
    marginal_loglik,
    task_marginal_loglik,
    task_sufficient_stats,
)

PARAM_NAMES = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr", "sigma")


# --------------------------------------------------------------------------------------
# Data and references
# --------------------------------------------------------------------------------------


def make_data(k: int = 0, sizes=(1, 2, 3, 6, 12, 4, 7), constant_x_task: int = 5):
    """Tasks of the given sizes (n=1 and n=2 included); one task has a constant x."""
    rng = np.random.default_rng(seed(k))
    idx = np.repeat(np.arange(len(sizes)), sizes)
    xc = rng.normal(0.3, 1.2, idx.size)
    xc[idx == constant_x_task] = 0.7
    a = rng.normal(0.5, 0.8, len(sizes))
    b = rng.normal(-0.3, 0.6, len(sizes))
    y = a[idx] + b[idx] * xc + rng.normal(0.0, 0.4, idx.size)
    return xc, y, idx, len(sizes)


def sigma_matrix(p) -> np.ndarray:
    sa, sb, rho = p["intercept_sigma"], p["slope_sigma"], p["corr"]
    return np.array([[sa**2, rho * sa * sb], [rho * sa * sb, sb**2]])


def task_sigma(p, t) -> float:
    sigma = np.asarray(p["sigma"], dtype=float)
    return float(sigma if sigma.ndim == 0 else sigma[t])


def dense_loglik(xc, y, idx, n_tasks, p) -> np.ndarray:
    """Per-task log N(y_t | X_t mu, X_t Sigma X_t' + sigma_t^2 I) with scipy."""
    mu = np.array([p["intercept_mu"], p["slope_mu"]])
    out = np.zeros(n_tasks)
    for t in range(n_tasks):
        m = idx == t
        if not m.any():
            continue
        design = np.column_stack([np.ones(m.sum()), xc[m]])
        cov = design @ sigma_matrix(p) @ design.T + task_sigma(p, t) ** 2 * np.eye(m.sum())
        out[t] = sps.multivariate_normal.logpdf(y[m], design @ mu, cov)
    return out


def _fr(v) -> Fraction:
    return Fraction(float(v))


def exact_loglik(xt, yt, p, sigma) -> float:
    """Exact log density of one task (rational Gaussian elimination), then rounded."""
    n = len(xt)
    sa, sb, rho = _fr(p["intercept_sigma"]), _fr(p["slope_sigma"]), _fr(p["corr"])
    mu_a, mu_b, s2 = _fr(p["intercept_mu"]), _fr(p["slope_mu"]), _fr(sigma) ** 2
    x = [_fr(v) for v in xt]
    r = [_fr(v) - mu_a - mu_b * xi for v, xi in zip(yt, x, strict=True)]
    cov = [
        [
            sa * sa + rho * sa * sb * (x[i] + x[j]) + sb * sb * x[i] * x[j] + (s2 if i == j else 0)
            for j in range(n)
        ]
        for i in range(n)
    ]
    # LDL' by elimination: det = prod of pivots, r'C^-1 r = sum (L^-1 r)_k^2 / pivot_k.
    det, quad = Fraction(1), Fraction(0)
    a, rhs = [row[:] for row in cov], r[:]
    for k in range(n):
        piv = a[k][k]
        det *= piv
        quad += rhs[k] * rhs[k] / piv
        for i in range(k + 1, n):
            f = a[i][k] / piv
            rhs[i] -= f * rhs[k]
            for j in range(k + 1, n):
                a[i][j] -= f * a[k][j]
    log_det = math.log(det.numerator) - math.log(det.denominator)
    return -0.5 * (n * math.log(2 * math.pi) + log_det + float(quad))


PARAM_SETS = [
    # independent effects, shared sigma
    dict(
        intercept_mu=0.4, slope_mu=-0.2, intercept_sigma=0.9, slope_sigma=0.5, corr=0.0, sigma=0.45
    ),
    # strong positive correlation, per-task sigma
    dict(
        intercept_mu=-0.3,
        slope_mu=0.6,
        intercept_sigma=1.7,
        slope_sigma=0.3,
        corr=0.9,
        sigma=np.array([0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.1]),
    ),
    # strong negative correlation, small noise (informative data)
    dict(
        intercept_mu=1.1, slope_mu=0.1, intercept_sigma=0.4, slope_sigma=1.4, corr=-0.9, sigma=0.08
    ),
    # near-degenerate correlation, prior mean far from the data, large noise
    dict(
        intercept_mu=-5.0,
        slope_mu=3.0,
        intercept_sigma=0.2,
        slope_sigma=0.15,
        corr=-0.99,
        sigma=np.array([2.0, 0.1, 1.0, 0.3, 0.05, 3.0, 0.6]),
    ),
]


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def stats(data):
    xc, y, idx, n_tasks = data
    return task_sufficient_stats(xc, y, idx, n_tasks)


@pytest.fixture
def jax_x64():
    """jax with 64-bit floats for the duration of one test (restored afterwards)."""
    jax = pytest.importorskip("jax")
    previous = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield jax
    finally:
        jax.config.update("jax_enable_x64", previous)


# --------------------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------------------


def test_sufficient_stats_match_pandas_groupby():
    xc, y, idx, n_tasks = make_data(k=3)
    idx = np.where(idx == 6, 7, idx)  # task 6 left empty, tasks 0..7
    stats = task_sufficient_stats(xc, y, idx, 8)
    assert isinstance(stats, SufficientStats)
    assert all(s.dtype == np.float64 and s.shape == (8,) for s in stats)

    df = pd.DataFrame({"task": idx, "x": xc, "y": y})
    g = df.groupby("task")
    df["dx"] = df["x"] - g["x"].transform("mean")
    df["dy"] = df["y"] - g["y"].transform("mean")
    ref = (
        df.groupby("task")
        .agg(
            n=("x", "size"),
            xbar=("x", "mean"),
            ybar=("y", "mean"),
        )
        .reindex(range(8))
    )
    sums = (
        df.assign(sxx=df.dx**2, sxy=df.dx * df.dy, syy=df.dy**2)
        .groupby("task")[["sxx", "sxy", "syy"]]
        .sum()
        .reindex(range(8))
    )
    ref = ref.join(sums).fillna(0.0)  # the empty task: n = 0, means and sums 0
    for name in SufficientStats._fields:
        np.testing.assert_allclose(
            getattr(stats, name), ref[name], rtol=1e-12, atol=1e-14, err_msg=name
        )
    # Constant x within a task (task 5) gives exactly zero spread and cross-product.
    assert stats.sxx[5] == 0.0 and stats.sxy[5] == 0.0
    assert stats.sxx[0] == stats.sxy[0] == stats.syy[0] == 0.0  # n = 1


def test_sufficient_stats_large_offsets_are_accurate():
    # x ~ 1e4 +- 1e-2, y ~ 1e3: uncentered float64 sums would lose ~all digits of sxx.
    rng = np.random.default_rng(seed(7))
    idx = np.repeat(np.arange(3), [5, 9, 4])
    xc = 1e4 + rng.uniform(-1e-2, 1e-2, idx.size)
    y = 1e3 + 0.7 * (xc - 1e4) + rng.normal(0, 1e-3, idx.size)
    stats = task_sufficient_stats(xc, y, idx, 3)
    for t in range(3):
        xs = [_fr(v) for v in xc[idx == t]]
        ys = [_fr(v) for v in y[idx == t]]
        n = len(xs)
        xb, yb = sum(xs) / n, sum(ys) / n
        exact = dict(
            xbar=xb,
            ybar=yb,
            sxx=sum((v - xb) ** 2 for v in xs),
            sxy=sum((u - xb) * (v - yb) for u, v in zip(xs, ys, strict=True)),
            syy=sum((v - yb) ** 2 for v in ys),
        )
        for name, value in exact.items():
            # Means to an ulp; centered sums to ~1e-12 relative (rounding of the
            # centered values x - xbar, whose ulp at 1e4 is 1.8e-12 against 1e-2).
            rtol = 1e-15 if name in ("xbar", "ybar") else 1e-9
            np.testing.assert_allclose(
                getattr(stats, name)[t], float(value), rtol=rtol, err_msg=f"{name}[{t}]"
            )
    naive_sxx = np.bincount(idx, xc**2) - np.bincount(idx, xc) ** 2 / np.bincount(idx)
    # Teeth: the uncentered sums are off by ~ulp(sum x^2) / sxx ~ 1e-4 .. 1e-2 relative.
    assert np.max(np.abs(naive_sxx / stats.sxx - 1)) > 1e-6


def test_sufficient_stats_validate_input():
    with pytest.raises(ValueError, match="task_idx must lie"):
        task_sufficient_stats([0.0, 1.0], [1.0, 2.0], [0, 2], 2)
    with pytest.raises(ValueError, match="equal length"):
        task_sufficient_stats([0.0, 1.0], [1.0], [0, 1], 2)
    with pytest.raises(ValueError, match="finite"):
        task_sufficient_stats([0.0, np.nan], [1.0, 2.0], [0, 1], 2)


# --------------------------------------------------------------------------------------
# Marginal likelihood
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", PARAM_SETS, ids=["corr0", "corr+0.9", "corr-0.9", "corr-0.99"])
def test_marginal_loglik_matches_dense_mvn(data, stats, p):
    xc, y, idx, n_tasks = data
    ref = dense_loglik(xc, y, idx, n_tasks, p)
    got = task_marginal_loglik(stats, *(p[k] for k in PARAM_NAMES))
    assert got.shape == (n_tasks,)
    # Observed max |diff| <= 6e-11 on values up to 6e3 (relative <= 1e-14), mostly scipy's
    # own rounding: against exact rational arithmetic ours is within 4e-12.
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    assert marginal_loglik(stats, *(p[k] for k in PARAM_NAMES)) == pytest.approx(
        ref.sum(), rel=1e-11, abs=1e-10
    )


def test_marginal_loglik_empty_task_contributes_zero():
    stats = task_sufficient_stats([0.5, 1.5], [1.0, 2.0], [0, 0], 2)
    got = task_marginal_loglik(stats, 0.1, 0.2, 1.0, 1.0, 0.3, 0.5)
    assert got[1] == 0.0 and np.isfinite(got[0])


def test_marginal_loglik_large_offsets_against_exact_arithmetic():
    # The caller did not center: x ~ 1e4 +- 1e-2, y ~ 1e3, and the intercept (at x = 0)
    # is a far extrapolation strongly anti-correlated with the slope.
    rng = np.random.default_rng(seed(11))
    sizes = (1, 2, 4, 5, 3)
    idx = np.repeat(np.arange(len(sizes)), sizes)
    xc = 1e4 + rng.uniform(-1e-2, 1e-2, idx.size)
    xc[idx == 4] = 1e4 + 3e-3  # constant x
    y = 1e3 + 0.3 * (xc - 1e4) + rng.normal(0.0, 0.02, idx.size)
    stats = task_sufficient_stats(xc, y, idx, len(sizes))
    cases = [
        dict(
            intercept_mu=-2000.0,
            slope_mu=0.3,
            intercept_sigma=50.0,
            slope_sigma=0.005,
            corr=-0.9,
            sigma=0.02,
        ),
        dict(
            intercept_mu=-1990.0,
            slope_mu=0.299,
            intercept_sigma=3.0,
            slope_sigma=0.01,
            corr=0.0,
            sigma=np.array([0.05, 0.01, 0.02, 0.03, 0.04]),
        ),
        dict(
            intercept_mu=1000.0,
            slope_mu=0.0,
            intercept_sigma=0.5,
            slope_sigma=2.0,
            corr=0.6,
            sigma=0.1,
        ),
    ]
    for p in cases:
        got = task_marginal_loglik(stats, *(p[k] for k in PARAM_NAMES))
        ref = np.array(
            [
                exact_loglik(xc[idx == t], y[idx == t], p, task_sigma(p, t))
                for t in range(len(sizes))
            ]
        )
        # Observed max |diff| ~1e-14. (scipy's dense float64 logpdf is off by up to ~3e-8
        # on these cases and rejects the third covariance as not positive definite.)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_marginal_loglik_batched_parameters(stats):
    # Leading batch dims: parameters (3, 1) against stats (T,) -> (3, T); sum over tasks.
    p = PARAM_SETS[1]
    mus = np.array([-0.3, 0.0, 0.8])[:, None]
    got = task_marginal_loglik(
        stats, mus, p["slope_mu"], p["intercept_sigma"], p["slope_sigma"], p["corr"], p["sigma"]
    )
    assert got.shape == (3, len(stats.n))
    for k, m in enumerate(mus[:, 0]):
        row = task_marginal_loglik(
            stats, m, p["slope_mu"], p["intercept_sigma"], p["slope_sigma"], p["corr"], p["sigma"]
        )
        np.testing.assert_array_equal(got[k], row)
    total = marginal_loglik(
        stats, mus, p["slope_mu"], p["intercept_sigma"], p["slope_sigma"], p["corr"], p["sigma"]
    )
    np.testing.assert_allclose(total, got.sum(axis=-1), rtol=1e-14)


def shared_design_data(k: int = 3):
    """Tasks that reuse four x vectors (one constant, one of length 1) with their own y."""
    rng = np.random.default_rng(seed(k))
    designs = [rng.normal(0.2, 1.1, 9), rng.normal(-0.5, 0.7, 5), np.full(4, 1.3),
               np.array([0.8])]
    uses = [5, 3, 2, 3]  # tasks per design
    xs, ys, idx, t = [], [], [], 0
    for x, k in zip(designs, uses, strict=True):
        for _ in range(k):
            a, b = rng.normal(0.5, 0.8), rng.normal(-0.3, 0.6)
            xs.append(x)
            ys.append(a + b * x + rng.normal(0.0, 0.4, x.size))
            idx.append(np.full(x.size, t))
            t += 1
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(idx), t


@pytest.mark.parametrize("p", [PARAM_SETS[0], PARAM_SETS[2],
                               dict(PARAM_SETS[3], sigma=0.6)],
                         ids=["corr0", "corr-0.9", "corr-0.99"])
def test_grouped_marginal_loglik_matches_dense_mvn(p):
    # Truth: the dense multivariate normal of every task, summed. The grouped form needs a
    # shared sigma; tasks sharing an x vector form one group.
    xc, y, idx, n_tasks = shared_design_data()
    groups = group_sufficient_stats(task_sufficient_stats(xc, y, idx, n_tasks))
    assert sorted(groups.count.tolist()) == [2.0, 3.0, 3.0, 5.0]  # the four x vectors
    ref = dense_loglik(xc, y, idx, n_tasks, p).sum()
    got = grouped_marginal_loglik(groups, *(p[k] for k in PARAM_NAMES))
    assert got == pytest.approx(ref, rel=1e-11, abs=1e-10)


def test_grouped_marginal_loglik_jax_and_batched(jax_x64):
    import jax.numpy as jnp

    xc, y, idx, n_tasks = shared_design_data(k=5)
    stats = task_sufficient_stats(xc, y, idx, n_tasks)
    groups = group_sufficient_stats(stats)
    p = PARAM_SETS[2]
    mus = np.array([-0.3, 0.0, 0.8])[:, None]  # batch (3, 1) against groups (G,)
    args = (mus, p["slope_mu"], p["intercept_sigma"], p["slope_sigma"], p["corr"], p["sigma"])
    ref = marginal_loglik(stats, *args)
    np.testing.assert_allclose(grouped_marginal_loglik(groups, *args), ref, rtol=1e-12)
    got_jax = jax_x64.jit(lambda g: grouped_marginal_loglik(g, *args, xp=jnp))(groups)
    np.testing.assert_allclose(np.asarray(got_jax), ref, rtol=1e-12)


def test_backends_agree_and_gradient_is_finite(stats, jax_x64):
    import jax.numpy as jnp
    import pytensor
    import pytensor.tensor as pt

    jax = jax_x64
    p = PARAM_SETS[3]  # per-task sigma, corr -0.99
    theta = np.array(
        [
            p["intercept_mu"],
            p["slope_mu"],
            np.log(p["intercept_sigma"]),
            np.log(p["slope_sigma"]),
            np.arctanh(p["corr"]),
        ]
    )
    log_sigma = np.log(p["sigma"])

    def loglik(th, ls, xp, st):
        return marginal_loglik(
            st, th[0], th[1], xp.exp(th[2]), xp.exp(th[3]), xp.tanh(th[4]), xp.exp(ls), xp=xp
        )

    ref = loglik(theta, log_sigma, np, stats)

    # JAX: jitted value and gradient.
    jval, (jg_theta, jg_ls) = jax.jit(
        jax.value_and_grad(lambda th, ls: loglik(th, ls, jnp, stats), argnums=(0, 1))
    )(theta, log_sigma)
    assert jval.dtype == jnp.float64

    # PyTensor: stats as symbolic inputs (as pm.Data would hold them), compiled float64.
    th = pt.dvector("theta")
    ls = pt.dvector("log_sigma")
    st_vars = SufficientStats(*(pt.dvector(f) for f in SufficientStats._fields))
    total = loglik(th, ls, pt, st_vars)
    fn = pytensor.function([th, ls, *st_vars], [total, *pytensor.grad(total, [th, ls])])
    pval, pg_theta, pg_ls = fn(theta, log_sigma, *stats)

    # Same function, three namespaces: agreement to rounding (observed ~1e-14).
    assert float(jval) == pytest.approx(ref, rel=1e-13)
    assert float(pval) == pytest.approx(ref, rel=1e-13)
    assert np.all(np.isfinite(pg_theta)) and np.all(np.isfinite(pg_ls))
    np.testing.assert_allclose(pg_theta, np.asarray(jg_theta), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pg_ls, np.asarray(jg_ls), rtol=1e-10, atol=1e-10)

    # Both gradients against central finite differences of the numpy value
    # (step 1e-6: truncation ~1e-12 * third derivative, rounding ~1e-16 * |f| / 1e-6).
    full = np.concatenate([theta, log_sigma])
    grad = np.concatenate([pg_theta, pg_ls])
    h = 1e-6
    for k in range(full.size):
        up, dn = full.copy(), full.copy()
        up[k] += h
        dn[k] -= h
        fd = (loglik(up[:5], up[5:], np, stats) - loglik(dn[:5], dn[5:], np, stats)) / (2 * h)
        assert grad[k] == pytest.approx(fd, rel=1e-5, abs=1e-6), k

    # Conditional moments are namespace-generic too.
    args = [p[k] for k in PARAM_NAMES]
    m_np = conditional_moments(stats, *args)
    m_jx = conditional_moments(stats, *args, xp=jnp)
    sym = [pt.dscalar(k) for k in PARAM_NAMES[:5]] + [pt.dvector("sigma")]
    m_pt = pytensor.function(sym, list(conditional_moments(stats, *sym, xp=pt)))(*args)
    for a, b, c in zip(m_np, m_jx, m_pt, strict=True):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(c, a, rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------------------
# Conditional posterior of the task coefficients
# --------------------------------------------------------------------------------------


def dense_posterior(xt, yt, p, sigma):
    """Conjugate posterior on the raw design: precision Sigma^-1 + X'X/s2."""
    design = np.column_stack([np.ones(len(xt)), xt])
    sig = sigma_matrix(p)
    mu = np.array([p["intercept_mu"], p["slope_mu"]])
    prec = np.linalg.inv(sig) + design.T @ design / sigma**2
    cov = np.linalg.inv(prec)
    mean = cov @ (np.linalg.solve(sig, mu) + design.T @ yt / sigma**2)
    return mean, cov


@pytest.mark.parametrize("p", PARAM_SETS[:3], ids=["corr0", "corr+0.9", "corr-0.9"])
def test_conditional_moments_match_dense_posterior(data, stats, p):
    xc, y, idx, n_tasks = data
    m = conditional_moments(stats, *(p[k] for k in PARAM_NAMES))
    assert isinstance(m, ConditionalMoments)
    for t in range(n_tasks):
        mean, cov = dense_posterior(xc[idx == t], y[idx == t], p, task_sigma(p, t))
        got_cov = np.array([[m.var_a[t], m.cov_ab[t]], [m.cov_ab[t], m.var_b[t]]])
        # Observed max |diff| ~ 1e-15 (values O(0.01-3)).
        np.testing.assert_allclose([m.mean_a[t], m.mean_b[t]], mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_cov, cov, rtol=1e-10, atol=1e-12)
        assert m.det[t] == pytest.approx(np.linalg.det(cov), rel=1e-9)


def test_conditional_moments_broadcast_over_draws(stats):
    # Parameters (chain, draw, 1) and per-task sigma (chain, draw, T) -> (chain, draw, T).
    rng = np.random.default_rng(seed(5))
    n_tasks = len(stats.n)
    shape = (2, 3, 1)
    p = dict(
        intercept_mu=rng.normal(size=shape),
        slope_mu=rng.normal(size=shape),
        intercept_sigma=rng.uniform(0.2, 2, shape),
        slope_sigma=rng.uniform(0.2, 2, shape),
        corr=rng.uniform(-0.9, 0.9, shape),
        sigma=rng.uniform(0.1, 1, (2, 3, n_tasks)),
    )
    m = conditional_moments(stats, *(p[k] for k in PARAM_NAMES))
    assert all(np.shape(v) == (2, 3, n_tasks) for v in m)
    for c in range(2):
        for d in range(3):
            one = conditional_moments(stats, *(p[k][c, d] for k in PARAM_NAMES))
            for a, b in zip(m, one, strict=True):
                np.testing.assert_allclose(a[c, d], b, rtol=1e-14, atol=1e-15)


def exact_posterior(xt, yt, p):
    """Exact conjugate posterior of one task: V = adj(P) / det P, P = Sigma^-1 + X'X/s2."""
    sa, sb, rho = _fr(p["intercept_sigma"]), _fr(p["slope_sigma"]), _fr(p["corr"])
    s2 = _fr(p["sigma"]) ** 2
    x = [_fr(v) for v in xt]
    yy = [_fr(v) for v in yt]
    det_s = sa * sa * sb * sb * (1 - rho * rho)
    inv_s = [[sb * sb / det_s, -rho * sa * sb / det_s], [-rho * sa * sb / det_s, sa * sa / det_s]]
    prec = [
        [inv_s[0][0] + len(x) / s2, inv_s[0][1] + sum(x) / s2],
        [inv_s[1][0] + sum(x) / s2, inv_s[1][1] + sum(v * v for v in x) / s2],
    ]
    det_p = prec[0][0] * prec[1][1] - prec[0][1] ** 2
    cov = [[prec[1][1] / det_p, -prec[0][1] / det_p], [-prec[0][1] / det_p, prec[0][0] / det_p]]
    mu = [_fr(p["intercept_mu"]), _fr(p["slope_mu"])]
    rhs = [
        inv_s[0][0] * mu[0] + inv_s[0][1] * mu[1] + sum(yy) / s2,
        inv_s[1][0] * mu[0]
        + inv_s[1][1] * mu[1]
        + sum(u * v for u, v in zip(x, yy, strict=True)) / s2,
    ]
    mean = [cov[0][0] * rhs[0] + cov[0][1] * rhs[1], cov[1][0] * rhs[0] + cov[1][1] * rhs[1]]
    return mean, cov, 1 / det_p


# A far reference point (x ~ 1e6 +- 1e-3): posterior 1 - corr(intercept, slope)^2 ~ 1e-15.
FAR_P = dict(
    intercept_mu=-299000.0,
    slope_mu=0.3,
    intercept_sigma=1e3,
    slope_sigma=1e-3,
    corr=-0.9,
    sigma=1e-4,
)


def far_task(n: int = 6):
    """One task at x ~ 1e6 +- 1e-3: a fixed, ill-conditioned numerical example (no rng:
    its conditioning, not a random sample, is what the tests below need)."""
    xt = 1e6 + 1e-3 * np.linspace(-1.0, 1.0, n)
    noise = np.resize([0.5, -1.0, 0.25, 1.0, -0.5, -0.25], n)
    yt = 1e3 + 0.3 * (xt - 1e6) + 1e-4 * noise
    return xt, yt, task_sufficient_stats(xt, yt, np.zeros(n, int), 1)


@pytest.mark.parametrize("far", [False, True], ids=["x~1e4", "x~1e6"])
def test_conditional_moments_large_offsets_against_exact(far):
    if far:
        xt, yt, stats = far_task()
        p = FAR_P
    else:
        rng = np.random.default_rng(seed(2))
        xt = 1e4 + rng.uniform(-1e-2, 1e-2, 6)
        yt = 1e3 + 0.3 * (xt - 1e4) + rng.normal(0, 0.02, 6)
        stats = task_sufficient_stats(xt, yt, np.zeros(6, int), 1)
        p = dict(
            intercept_mu=-2000.0,
            slope_mu=0.3,
            intercept_sigma=50.0,
            slope_sigma=0.005,
            corr=-0.9,
            sigma=0.02,
        )
    m = conditional_moments(stats, *(p[k] for k in PARAM_NAMES))
    mean, cov, det = exact_posterior(xt, yt, p)
    # Posterior 1 - corr^2 is ~3e-8 (x~1e4) and ~1e-15 (x~1e6), yet every entry and the
    # determinant hold to ~1e-15 relative (observed); var_a * var_b - cov_ab^2 in
    # float64 would keep ~8 and ~1 digits.
    assert m.mean_b[0] == pytest.approx(float(mean[1]), rel=1e-10)
    assert m.mean_a[0] == pytest.approx(float(mean[0]), rel=1e-10)
    assert m.var_a[0] == pytest.approx(float(cov[0][0]), rel=1e-10)
    assert m.cov_ab[0] == pytest.approx(float(cov[0][1]), rel=1e-10)
    assert m.var_b[0] == pytest.approx(float(cov[1][1]), rel=1e-10)
    assert m.det[0] == pytest.approx(float(det), rel=1e-10)


def test_conditional_draw_is_the_cholesky_map():
    # Unit normals in -> mean + L z out, L L' = covariance (checked exactly on a grid).
    m = ConditionalMoments(*(np.array([v]) for v in (1.0, -2.0, 4.0, 1.2, 0.5, 4.0 * 0.5 - 1.44)))
    e_a, e_b = conditional_draw(m, np.array([1.0]), np.array([0.0]))
    f_a, f_b = conditional_draw(m, np.array([0.0]), np.array([1.0]))
    chol = np.array([[e_a[0] - 1.0, f_a[0] - 1.0], [e_b[0] + 2.0, f_b[0] + 2.0]])
    np.testing.assert_allclose(chol @ chol.T, [[4.0, 1.2], [1.2, 0.5]], rtol=1e-14)
    assert chol[0, 1] == 0.0  # lower triangular


# --------------------------------------------------------------------------------------
# Draws
# --------------------------------------------------------------------------------------


def constant_params(p, n_chain, n_draw, n_tasks):
    out = {}
    for k in PARAM_NAMES:
        v = np.asarray(p[k], dtype=float)
        out[k] = np.broadcast_to(v, (n_chain, n_draw, n_tasks) if v.ndim else (n_chain, n_draw))
    return out


@pytest.mark.parametrize("p", [PARAM_SETS[1], PARAM_SETS[2]], ids=["sigma-per-task", "shared"])
def test_draws_match_moments(stats, p):
    n_chain, n_draw, n_tasks = 2, 20_000, len(stats.n)
    params = constant_params(p, n_chain, n_draw, n_tasks)
    a, b = draw_task_coefficients(np.random.default_rng(seed(123)), stats, params)
    assert a.shape == b.shape == (n_chain, n_draw, n_tasks)
    m = conditional_moments(stats, *(p[k] for k in PARAM_NAMES))
    a, b = a.reshape(-1, n_tasks), b.reshape(-1, n_tasks)
    n = a.shape[0]
    # Tolerance: 5 Monte Carlo standard errors of each estimate (independent draws),
    # i.e. a false alarm below ~1e-6 per check over these 7 tasks x 5 moments.
    z = 5.0
    se_mean_a, se_mean_b = np.sqrt(m.var_a / n), np.sqrt(m.var_b / n)
    np.testing.assert_array_less(np.abs(a.mean(0) - m.mean_a), z * se_mean_a)
    np.testing.assert_array_less(np.abs(b.mean(0) - m.mean_b), z * se_mean_b)
    # Var of the sample variance ~ 2 var^2 / n; of the sample covariance (va vb + c^2) / n.
    np.testing.assert_array_less(np.abs(a.var(0) - m.var_a), z * m.var_a * np.sqrt(2 / n))
    np.testing.assert_array_less(np.abs(b.var(0) - m.var_b), z * m.var_b * np.sqrt(2 / n))
    cov = ((a - a.mean(0)) * (b - b.mean(0))).mean(0)
    se_cov = np.sqrt((m.var_a * m.var_b + m.cov_ab**2) / n)
    np.testing.assert_array_less(np.abs(cov - m.cov_ab), z * se_cov)


def test_draws_keep_near_singular_covariance():
    # Far reference point: posterior 1 - corr(intercept, slope)^2 ~ 1e-15. The slope's
    # residual given the intercept must still have variance det / var_a.
    xt, yt, stats = far_task()
    m = conditional_moments(stats, *(FAR_P[k] for k in PARAM_NAMES))
    _, cov, det = exact_posterior(xt, yt, FAR_P)
    target = float(det / cov[0][0])
    assert 1 - m.cov_ab[0] ** 2 / (m.var_a[0] * m.var_b[0]) < 1e-12
    n_draws = 160_000
    # 5 Monte Carlo standard errors of a sample variance (sqrt(2/n) relative); the
    # float64 rounding of the residual (~eps * |b| per draw) adds ~1e-5 relative.
    tol = 5 * np.sqrt(2 / n_draws)
    # Teeth: the textbook L22^2 = var_b - cov^2 / var_a is off by more than that tolerance
    # here (4.7% for this task; 1.6% to 24% for random tasks of this kind).
    naive = m.var_b[0] - m.cov_ab[0] ** 2 / m.var_a[0]
    assert abs(naive / target - 1) > 1.3 * tol
    a, b = draw_task_coefficients(
        np.random.default_rng(seed(9)), stats, constant_params(FAR_P, 1, n_draws, 1)
    )
    a, b = a.ravel() - m.mean_a[0], b.ravel() - m.mean_b[0]
    resid = b - (m.cov_ab[0] / m.var_a[0]) * a
    assert np.var(resid) == pytest.approx(target, rel=tol)
    assert np.var(a) == pytest.approx(m.var_a[0], rel=tol)


def test_draws_do_not_depend_on_chunk_size(stats):
    rng = np.random.default_rng(seed(8))
    n_tasks = len(stats.n)
    shape = (3, 37)
    params = dict(
        intercept_mu=rng.normal(size=shape),
        slope_mu=rng.normal(size=shape),
        intercept_sigma=rng.uniform(0.2, 2, shape),
        slope_sigma=rng.uniform(0.2, 2, shape),
        corr=rng.uniform(-0.9, 0.9, shape),
        sigma=rng.uniform(0.1, 1, (*shape, n_tasks)),
    )
    runs = [
        draw_task_coefficients(np.random.default_rng(seed(2024)), stats, params, chunk_size=c)
        for c in (None, 1, 5, 36, 37, 1000)
    ]
    for a, b in runs[1:]:
        np.testing.assert_array_equal(a, runs[0][0])
        np.testing.assert_array_equal(b, runs[0][1])
    # Different draws of the population really change the draws (per-draw moments used),
    # and the per-draw standardized draws are standard normal.
    m = conditional_moments(
        stats, *(params[k][..., None] if params[k].ndim == 2 else params[k] for k in PARAM_NAMES)
    )
    za = (runs[0][0] - m.mean_a) / np.sqrt(m.var_a)
    assert abs(za.mean()) < 5 / np.sqrt(za.size) and abs(za.var() - 1) < 5 * np.sqrt(2 / za.size)
    # Shared sigma (chain, draw) and an omitted corr (independent effects) work too.
    shared = {k: v for k, v in params.items() if k != "corr"} | {"sigma": params["sigma"][..., 0]}
    a, _ = draw_task_coefficients(np.random.default_rng(seed(1)), stats, shared, chunk_size=4)
    assert a.shape == (*shape, n_tasks) and np.all(np.isfinite(a))


def test_draw_task_coefficients_validates_shapes(stats):
    params = {k: np.ones((2, 3)) for k in PARAM_NAMES}
    params["sigma"] = np.ones((2, 3, 99))
    with pytest.raises(ValueError, match="sigma"):
        draw_task_coefficients(np.random.default_rng(seed(0)), stats, params)
