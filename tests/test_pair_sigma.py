"""Per-pair sigma integrated by quadrature (bayesslope.pairs.pair_sigma).

Pinned against brute-force integration (scipy.integrate.quad) and against the joint NUTS
over every pair's log sigma (bayesslope.pairs.sampler with ``per_pair_sigma=True``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import seed
from scipy import integrate

from bayesslope.collapsed import (
    SufficientStats,
    conditional_moments,
    task_marginal_loglik,
    task_sufficient_stats,
)

jax = pytest.importorskip("jax")
jnp = jax.numpy
ps = pytest.importorskip("bayesslope.pairs.pair_sigma")

POP_NAMES = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr")


def _standardized(n: int, r: float) -> SufficientStats:
    s = n - 1.0
    return SufficientStats(*(np.array([v], dtype=float) for v in (n, 0.0, 0.0, s, s * r, s)))


def _log_integrand_np(st, pop, u, s0=1.0):
    """l(u) written again in numpy from its definition (HalfNormal prior, Jacobian e^u)."""
    sig = math.exp(u)
    lik = float(task_marginal_loglik(st, *(pop[k] for k in POP_NAMES), sig)[0])
    return lik + 0.5 * math.log(2 / math.pi) - math.log(s0) - 0.5 * (sig / s0) ** 2 + u


def _quad(st, pop, g=lambda u: 1.0):
    """log int exp(l(u)) g(u) du by adaptive quadrature around the numerically found peak."""
    us = np.linspace(-25.0, 5.0, 3001)
    vals = np.array([_log_integrand_np(st, pop, u) for u in us])
    top, peak = vals.max(), us[vals.argmax()]
    val, _ = integrate.quad(lambda u: math.exp(_log_integrand_np(st, pop, u) - top) * g(u),
                            -40.0, 8.0, points=[peak], limit=400, epsabs=0, epsrel=1e-12)
    return val, top


def _jax_pop(pop):
    return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in pop.items()}


# Small and large pairs, strong correlations, and population lines far from the data
# (two modes in log sigma for small n).
CASES = [
    (3, 0.9, dict(intercept_mu=0.2, slope_mu=0.6, intercept_sigma=0.7, slope_sigma=0.1,
                  corr=-0.8)),
    (5, 0.999, dict(intercept_mu=-0.4, slope_mu=2.2, intercept_sigma=0.2, slope_sigma=0.2,
                    corr=-0.7)),
    (20, 0.3, dict(intercept_mu=0.0, slope_mu=0.3, intercept_sigma=0.05, slope_sigma=0.4,
                   corr=0.1)),
    (20, -0.95, dict(intercept_mu=0.1, slope_mu=0.8, intercept_sigma=0.3, slope_sigma=0.2,
                     corr=0.5)),
    (240, 0.99, dict(intercept_mu=-0.6, slope_mu=-0.8, intercept_sigma=0.3, slope_sigma=3.6,
                     corr=0.3)),
    (1000, 0.999, dict(intercept_mu=-0.4, slope_mu=-1.6, intercept_sigma=0.1, slope_sigma=0.6,
                       corr=-0.1)),
]


@pytest.mark.parametrize(("n", "r", "pop"), CASES)
def test_log_marginal_matches_brute_force_quadrature(n, r, pop):
    """The 64-node rule equals scipy's adaptive quadrature to 1e-8 (documented bound)."""
    st = _standardized(n, r)
    val, top = _quad(st, pop)
    with jax.enable_x64(True):
        got = float(ps.log_marginal(SufficientStats(*(jnp.asarray(v) for v in st)),
                                    _jax_pop(pop), 1.0)[0])
    assert abs(got - (math.log(val) + top)) < 1e-8


def test_gradient_is_that_of_the_rule():
    """Autodiff gradient w.r.t. the population equals central differences of the rule."""
    st = _standardized(20, 0.7)
    pop = dict(CASES[2][2])
    with jax.enable_x64(True):
        stj = SufficientStats(*(jnp.asarray(v) for v in st))

        def f(slope_mu):
            return ps.log_marginal(stj, _jax_pop({**pop, "slope_mu": slope_mu}), 1.0)[0]

        g = float(jax.grad(f)(jnp.asarray(0.3)))
        eps = 1e-5
        fd = (float(f(jnp.asarray(0.3 + eps))) - float(f(jnp.asarray(0.3 - eps)))) / (2 * eps)
    assert abs(g - fd) < 1e-6 * max(1.0, abs(fd))


def test_interpolated_sum_equals_direct_sum():
    """Summing 600 standardized pairs through the z-interpolant loses < 1e-6 in total."""
    rng = np.random.default_rng(seed(3))
    n_pairs = 600
    r = np.tanh(rng.normal(0.6, 0.7, n_pairs))
    n = np.where(rng.random(n_pairs) < 0.8, 20.0, 17.0)  # two sizes: two groups
    zero = np.zeros(n_pairs)
    stats = SufficientStats(n, zero, zero.copy(), n - 1, (n - 1) * r, n - 1)
    nodes = ps.build_nodes(stats)
    assert (nodes.weight != 0).sum() < n_pairs / 3  # really interpolated
    with jax.enable_x64(True):
        for pop in (CASES[2][2], CASES[3][2]):
            direct = float(jnp.sum(ps.log_marginal(
                SufficientStats(*(jnp.asarray(v) for v in stats)), _jax_pop(pop), 1.0)))
            interp = float(jnp.sum(jnp.asarray(nodes.weight) * ps.log_marginal(
                SufficientStats(*(jnp.asarray(v) for v in nodes.stats)), _jax_pop(pop), 1.0,
                jnp.asarray(nodes.margin))))
            assert abs(interp - direct) < 1e-6


def test_draws_match_brute_force_moments():
    """With the population fixed, drawn sigma and slope moments equal quad's within MC error.

    The reference integrates the conditional Gaussian's moments against the exact density
    of log sigma (scipy.integrate.quad); 2 x 2,000 draws per pair.
    """
    pop = dict(CASES[3][2])
    pairs = [(20, 0.3), (8, 0.95), (60, -0.5)]
    stats = SufficientStats(*(np.array(v, dtype=float) for v in zip(
        *(tuple(_standardized(n, r)[i][0] for i in range(6)) for n, r in pairs), strict=True)))
    shape = (2, 2000)
    params = {k: np.full(shape, v) for k, v in pop.items()}
    got = {}

    def keep(start, stop, _a, b):
        got.setdefault("slope", []).append(b)

    sig_mean = ps.draw_pairs(jax.random.key(seed(5)), stats, params, 1.0, 2, keep)
    slope = np.concatenate(got["slope"], axis=-1).reshape(-1, len(pairs))
    for p, (n, r) in enumerate(pairs):
        st = _standardized(n, r)

        def mom(u, k, st=st):
            m = conditional_moments(st, *(pop[q] for q in POP_NAMES), math.exp(u))
            return {0: 1.0, 1: float(m.mean_b[0]),
                    2: float(m.var_b[0] + m.mean_b[0] ** 2), 3: math.exp(u)}[k]

        z = _quad(st, pop)[0]
        e_sig = _quad(st, pop, lambda u, st=st: mom(u, 3))[0] / z
        e_b = _quad(st, pop, lambda u, st=st: mom(u, 1))[0] / z
        sd_b = math.sqrt(_quad(st, pop, lambda u, st=st: mom(u, 2))[0] / z - e_b**2)
        n_draws = slope.shape[0]
        assert abs(slope[:, p].mean() - e_b) < 5 * sd_b / math.sqrt(n_draws)
        assert abs(slope[:, p].std() / sd_b - 1) < 0.06
        # sigma's mean over the drawn grid values; its sd is at most e_sig (loose se bound).
        assert abs(sig_mean[p] - e_sig) < 5 * e_sig / math.sqrt(n_draws)


def test_agrees_with_joint_nuts_over_log_sigma():
    """20 simulated pairs: quadrature path vs NUTS sampling every pair's log sigma.

    Same model and priors; both are Monte Carlo, so slope means must agree within 5
    combined Monte Carlo standard errors (ESS-free bound: 2,000 draws per path, sd / sqrt
    (draws) inflated 3x for autocorrelation) and sds within 15%. The 200-pair version
    with the 0.05-sd / 5% bar is validation/pair_sigma_vs_nuts.py.
    """
    from bayesslope.pairs.sampler import DEFAULT_PRIORS, draw_pairs, sample_population

    rng = np.random.default_rng(seed(11))
    n_pairs, n = 20, 25
    coef = rng.multivariate_normal([0.0, 0.4], [[0.04, 0.0], [0.0, 0.09]], size=n_pairs)
    sig = rng.uniform(0.3, 1.0, n_pairs)
    idx = np.repeat(np.arange(n_pairs), n)
    x = rng.normal(size=idx.size)
    y = coef[idx, 0] + coef[idx, 1] * x + sig[idx] * rng.normal(size=idx.size)
    stats = task_sufficient_stats(x, y, idx, n_pairs)
    out = {}

    def keeper(name):
        def keep(start, stop, _a, b):
            out.setdefault(name, np.empty((2, 1000, n_pairs)))[..., start:stop] = b
        return keep

    kw = dict(chains=2, draws=1000, tune=500)
    post = sample_population(jax.random.key(seed(1)), stats, DEFAULT_PRIORS,
                             per_pair_sigma=True, **kw)
    draw_pairs(jax.random.key(seed(2)), stats, post.params, n_pairs, keeper("nuts"))
    post_q = ps.sample_population(jax.random.key(seed(3)), stats, DEFAULT_PRIORS, **kw)
    sigma_q = ps.draw_pairs(jax.random.key(seed(4)), stats, post_q.params, 1.0, n_pairs,
                            keeper("quad"))
    a, b = out["nuts"].reshape(-1, n_pairs), out["quad"].reshape(-1, n_pairs)
    se = 3.0 * np.sqrt(a.var(0) / a.shape[0] + b.var(0) / b.shape[0])
    assert np.all(np.abs(a.mean(0) - b.mean(0)) < 5 * se)
    assert np.all(np.abs(b.std(0) / a.std(0) - 1) < 0.15)
    sigma_nuts = post.params["sigma"].mean(axis=(0, 1))
    assert np.all(np.abs(sigma_q / sigma_nuts - 1) < 0.05)


def test_chunk_size_does_not_change_draws(monkeypatch):
    """Pair p's random numbers come from fold_in(key, p): chunking is invisible."""
    rng = np.random.default_rng(seed(7))
    r = np.tanh(rng.normal(0.5, 0.5, 7))
    n = np.full(7, 15.0)
    zero = np.zeros(7)
    stats = SufficientStats(n, zero, zero.copy(), n - 1, (n - 1) * r, n - 1)
    params = {k: np.full((2, 50), v) for k, v in CASES[2][2].items()}
    runs = []
    for chunk, values in ((1, 2 * 50 * ps.DRAW_NODES), (7, ps._VALUES_PER_CHUNK)):
        monkeypatch.setattr(ps, "_VALUES_PER_CHUNK", values)  # 1 pair per sub-chunk, or 7
        got = np.empty((2, 50, 7))

        def keep(start, stop, _a, b, got=got):
            got[..., start:stop] = b

        ps.draw_pairs(jax.random.key(0), stats, params, 1.0, chunk, keep)
        runs.append(got)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-12, atol=1e-12)
