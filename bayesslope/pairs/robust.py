"""Non-Gaussian pairs: per-pair NUTS (blackjax) over pairs and chains, in chunks.

Three pair models: Student-t residuals on the standardized target (``"student_t"``),
binomial counts of a target accuracy with a probit link (``"binomial_probit"``), and
Gaussian residuals plus a random intercept per unit group (``"normal_grouped"``, e.g.
checkpoints of one model). None is handled by the collapsed fast path, so each pair's
coefficients are sampled by NUTS. The pairs are
independent given the population prior, so one compiled program runs window adaptation and
NUTS for a whole chunk of pairs and is reused for every chunk (the last one padded); two
chunks run at a time on separate threads (JAX releases the GIL).

On CPU the pairs and chains of a chunk run one after the other (``jax.lax.map``): a
vmapped NUTS step lasts until the deepest tree of the batch is finished, every lane paying
for it, and the sequential loop was 2.1x faster per pair (64 pairs x 4 chains: 0.050 vs
0.105 s per pair, one thread). On an accelerator (JAX's default backend not the CPU) they
are vmapped, which is what wide hardware needs (not measured here: no GPU).

The population prior of ``(intercept, slope)`` is a plug-in (empirical Bayes): the
posterior means of the population parameters of the Gaussian fast path on the same
standardized data. Its uncertainty is not propagated; with many pairs it is small next to
each pair's own (see docs/transfer_matrix.md). NUTS moves the coefficients in units of
these population sds (:func:`pair_target`), so a chunk's cost does not grow as the
intercept sd shrinks with the number of pairs.

Per pair, with the source standardized (``z_A``)::

    student_t:        z_B,i ~ StudentT(nu_p, a_p + b_p z_A,i, sigma_p)
                      sigma_p ~ HalfNormal(prior sigma),  nu_p ~ Gamma(2, rate 0.1)
    binomial_probit:  k_B,i ~ Binomial(n_B, Phi(a_p + b_p z_A,i))
    normal_grouped:   z_B,i ~ Normal(a_p + b_p z_A,i + tau_p w_p,g(i), sigma_p)
                      w_p,g ~ Normal(0, 1) (integrated out analytically),
                      tau_p ~ HalfNormal(1),  sigma_p as above
    all:              (a_p, b_p) ~ MVNormal(mu, Sigma)          (population plug-in)

Importing this module imports JAX; float64 is switched on only inside the public function.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from functools import partial

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, log_ndtr

__all__ = ["NU_PRIOR", "MODELS", "padded_pairs", "student_t_loglik", "binomial_probit_loglik",
           "grouped_normal_loglik", "pair_target", "sample_pairs",
           "nuts_plan", "nuts_range", "pair_threads"]

THREADS_ENV = "BAYESSLOPE_PAIR_THREADS"
NU_PRIOR = {"alpha": 2.0, "rate": 0.1}  # Gamma(2, 0.1), as fit_hierarchical's student_t


def padded_pairs(pair_idx: np.ndarray, n_pairs: int, *values: np.ndarray) -> list:
    """Concatenated per-pair data (pair-major) -> ``(P, n_max)`` arrays, then a 0/1 mask."""
    n = np.bincount(pair_idx, minlength=n_pairs)
    width = int(n.max())
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    col = np.arange(pair_idx.size) - start[pair_idx]  # pair_idx is sorted (pair-major)
    out = []
    for v in (*values, np.ones(pair_idx.size)):
        padded = np.zeros((n_pairs, width))
        padded[pair_idx, col] = v
        out.append(padded)
    return out


def student_t_loglik(y, loc, sigma, nu, mask):
    """Summed Student-t log density of the masked points, the normalizer computed once.

    ``jax.scipy.stats.t.logpdf`` evaluates ``gammaln`` at every point; here the
    point-independent part is multiplied by the number of points (a test pins the value
    to :func:`scipy.stats.t.logpdf`).
    """
    log_norm = (gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu)
                - 0.5 * jnp.log(nu * math.pi) - jnp.log(sigma))
    u = (y - loc) / sigma
    return jnp.sum(mask) * log_norm - 0.5 * (nu + 1.0) * jnp.sum(mask * jnp.log1p(u * u / nu))


def binomial_probit_loglik(k, trials, eta, mask):
    """Summed binomial log mass of the masked points with ``p = Phi(eta)``.

    Without the binomial coefficients (constant in the parameters); ``log_ndtr`` keeps both
    tails accurate.
    """
    return jnp.sum(mask * (k * log_ndtr(eta) + (trials - k) * log_ndtr(-eta)))


def _log_prior_coef(a, b, mu, chol_inv):
    z = chol_inv @ (jnp.stack([a, b]) - mu)
    return -0.5 * jnp.sum(z * z)


def _logdensity_student_t(position, x, y, aux, mask, mu, chol_inv, sigma_scale):
    """Unconstrained log posterior of one pair (Jacobians of the log transforms included)."""
    a, b = position["intercept"], position["slope"]
    sigma, nu = jnp.exp(position["log_sigma"]), jnp.exp(position["log_nu"])
    lp = _log_prior_coef(a, b, mu, chol_inv)
    lp += -0.5 * jnp.square(sigma / sigma_scale) + position["log_sigma"]
    lp += ((NU_PRIOR["alpha"] - 1.0) * position["log_nu"] - NU_PRIOR["rate"] * nu
           + position["log_nu"])
    return lp + student_t_loglik(y, a + b * x, sigma, nu, mask)


def _logdensity_binomial_probit(position, x, y, aux, mask, mu, chol_inv, sigma_scale):
    """Log posterior of one pair: ``y`` holds the successes, ``aux`` the counts."""
    a, b = position["intercept"], position["slope"]
    return (_log_prior_coef(a, b, mu, chol_inv)
            + binomial_probit_loglik(y, aux, a + b * x, mask))


def grouped_normal_loglik(r, group, mask, sigma, tau, n_groups):
    """Summed log density of masked residuals with a Normal(0, tau) offset per unit group.

    The offsets are integrated out. Within group ``g`` (``n_g`` points, residual sum
    ``S_g``) the covariance is ``sigma^2 I + tau^2 11'``, with log determinant
    ``(n_g - 1) log sigma^2 + log(sigma^2 + n_g tau^2)`` and inverse
    ``(I - tau^2 / (sigma^2 + n_g tau^2) 11') / sigma^2`` (Sherman-Morrison); a group
    without points adds nothing. A test pins it to the dense multivariate normal.
    """
    w = jax.nn.one_hot(group.astype(jnp.int32), n_groups) * mask[:, None]  # (n, G)
    n_g, s_g = jnp.sum(w, axis=0), w.T @ r
    s2, t2 = sigma * sigma, tau * tau
    d_g = s2 + n_g * t2
    n = jnp.sum(mask)
    logdet = (n - n_groups) * jnp.log(s2) + jnp.sum(jnp.log(d_g))
    quad = (jnp.sum(mask * r * r) - t2 * jnp.sum(s_g * s_g / d_g)) / s2
    return -0.5 * (n * math.log(2.0 * math.pi) + logdet + quad)


def _logdensity_normal_grouped(position, x, y, aux, mask, mu, chol_inv, sigma_scale,
                               n_groups=1):
    """One pair with a random intercept per unit group (``aux``: group index per point).

    The group intercepts are integrated out (:func:`grouped_normal_loglik`), leaving
    four dimensions; sampling them explicitly (non-centered) took ~0.3 s per pair with a
    few divergences in the tau funnel.
    """
    a, b = position["intercept"], position["slope"]
    log_sigma, log_tau = position["log_sigma"], position["log_tau"]
    sigma, tau = jnp.exp(log_sigma), jnp.exp(log_tau)
    lp = _log_prior_coef(a, b, mu, chol_inv)
    lp += -0.5 * jnp.square(sigma / sigma_scale) + log_sigma
    lp += -0.5 * jnp.square(tau) + log_tau  # tau ~ HalfNormal(1)
    return lp + grouped_normal_loglik(y - a - b * x, aux, mask, sigma, tau, n_groups)


def _init_student_t(u):
    return {"log_sigma": math.log(0.7) + u[2], "log_nu": math.log(10.0) + u[3]}


def _init_binomial_probit(u):
    return {}


def _init_normal_grouped(u):
    return {"log_sigma": math.log(0.7) + u[2], "log_tau": math.log(0.3) + u[3]}


# name -> (log density of (intercept, slope, ...), initial position of the parameters other
# than the coefficients from 4 uniforms)
MODELS = {
    "student_t": (_logdensity_student_t, _init_student_t),
    "binomial_probit": (_logdensity_binomial_probit, _init_binomial_probit),
    "normal_grouped": (_logdensity_normal_grouped, _init_normal_grouped),
}


def pair_target(model: str, x, y, aux, mask, prior_arrays, n_groups: int = 0) -> tuple:
    """One pair's NUTS target in prior-scaled coefficients, and the maps around it.

    NUTS moves ``intercept_z``, ``slope_z`` with ``intercept = mu_a + sd_a intercept_z``
    (``sd_a`` the plug-in population sd; likewise the slope), not the coefficients
    themselves: the same posterior (a constant Jacobian), but its scale no longer follows
    the population sd. On standardized scores every pair's least-squares intercept is 0,
    so the plug-in intercept sd shrinks as pairs are added (0.005 at 870 pairs, 0.001 at
    20,022); sampled as is, that dimension forced tiny steps during window adaptation
    (identity mass matrix) and, through the mass matrix's regularization, while sampling:
    a chunk of 64 grouped pairs took 3.0 s at 870 pairs and 6.8 s at 20,022 (commit
    3e05123), and takes 2.0 s at both now (``benchmarks/bench_pairs.py --parts
    chunk_scaling``, issue 19).

    Returns
    -------
    logdensity : callable
        ``position -> scalar``.
    initial : callable
        ``(u, line) -> position``: ``u`` four uniforms on (-0.5, 0.5) (the jitter), ``line``
        the pair's starting ``(intercept, slope)``.
    coefficients : callable
        ``position -> (intercept, slope)``.
    """
    mu, chol_inv, sigma_scale, coef_scale = prior_arrays
    density, init_rest = MODELS[model]
    extra = {"n_groups": n_groups} if model == "normal_grouped" else {}

    def coefficients(position):
        return (mu[0] + coef_scale[0] * position["intercept_z"],
                mu[1] + coef_scale[1] * position["slope_z"])

    def logdensity(position):
        a, b = coefficients(position)
        return density({**position, "intercept": a, "slope": b}, x=x, y=y, aux=aux,
                       mask=mask, mu=mu, chol_inv=chol_inv, sigma_scale=sigma_scale, **extra)

    def initial(u, line):
        # Near the pair's line, jittered by up to half a population sd.
        z = (line - mu) / coef_scale + u[:2]
        return {"intercept_z": z[0], "slope_z": z[1], **init_rest(u)}

    return logdensity, initial, coefficients


@partial(jax.jit, static_argnums=(7, 8, 9, 10, 11, 12, 13))
def _run_chunk(x, y, aux, mask, keys, prior_arrays, init_line, model, chains, draws, tune,
               target_accept, vectorize, n_groups):
    # x, y, aux, mask: (C, n_max); keys: (C,) per-pair keys; init_line: (C, 2) a0, b0;
    # prior_arrays: mu, chol_inv, sigma_scale, coefficient scales (nuts_plan's "prior").

    def one_pair(xp, yp, tp, mp, key, line):
        logdensity, initial, coefficients = pair_target(model, xp, yp, tp, mp, prior_arrays,
                                                        n_groups)
        warmup = blackjax.window_adaptation(blackjax.nuts, logdensity,
                                            target_acceptance_rate=target_accept)

        def one_chain(chain_key):
            k_init, k_warm, k_draw = jax.random.split(chain_key, 3)
            u = jax.random.uniform(k_init, (4,), minval=-0.5, maxval=0.5)
            (state, params), _ = warmup.run(k_warm, initial(u, line), num_steps=tune)
            kernel = blackjax.nuts(logdensity, **params)

            def step(state, k):
                state, info = kernel.step(k, state)
                return state, (*coefficients(state.position), info.is_divergent)

            _, trace = jax.lax.scan(step, state, jax.random.split(k_draw, draws))
            return trace

        chain_keys = jax.random.split(key, chains)
        return jax.vmap(one_chain)(chain_keys) if vectorize else jax.lax.map(one_chain,
                                                                            chain_keys)

    # (C, chain, draw) each
    if vectorize:
        return jax.vmap(one_pair)(x, y, aux, mask, keys, init_line)
    return jax.lax.map(lambda args: one_pair(*args), (x, y, aux, mask, keys, init_line))


def sample_pairs(
    model: str,
    key,
    x: np.ndarray,
    y: np.ndarray,
    aux: np.ndarray | None,
    mask: np.ndarray,
    init_line: np.ndarray,
    population: Mapping[str, float],
    sigma_scale: float,
    chains: int,
    draws: int,
    tune: int,
    target_accept: float,
    chunk_size: int,
    on_chunk: Callable,
    progress: Callable[[int], None] | None = None,
    vectorize: bool | None = None,
    n_groups: int = 0,
) -> None:
    """Per-pair NUTS, chunk by chunk; each chunk's draws go to ``on_chunk``.

    Pair ``p`` uses ``fold_in(key, p)``, so (with ``lax.map``) results do not depend on
    ``chunk_size``; the last chunk is padded with copies of its last pair (discarded) so
    that one compiled program serves every chunk.

    Parameters
    ----------
    model : {'student_t', 'binomial_probit', 'normal_grouped'}
        Pair model (:data:`MODELS`).
    key : jax.Array
        PRNG key.
    x, y, mask : ndarray, shape (P, n_max)
        Standardized source scores, the target (standardized scores, or successes for the
        binomial) per pair, padded; ``mask`` 1 on real points.
    aux : ndarray, shape (P, n_max), optional
        Per-point data of the model: binomial counts (``binomial_probit``) or the unit's
        group index (``normal_grouped``).
    init_line : ndarray, shape (P, 2)
        Intercept and slope near which each pair's chains start.
    population : mapping
        Plug-in population: ``intercept_mu``, ``slope_mu``, ``intercept_sigma``,
        ``slope_sigma``, ``corr`` (floats).
    sigma_scale : float
        Scale of the HalfNormal prior of each pair's residual sd (``student_t``,
        ``normal_grouped``).
    chains, draws, tune : int
        Chains per pair, kept draws per chain, adaptation steps.
    target_accept : float
        NUTS target acceptance rate.
    chunk_size : int
        Pairs per compiled call.
    on_chunk : callable
        ``on_chunk(start, stop, intercept, slope, n_divergent)``: draws of shape
        (chain, draw, stop - start) and divergences per pair.
    progress : callable, optional
        Called with the number of pairs done after each chunk.
    vectorize : bool, optional
        ``jax.vmap`` over pairs and chains (wide accelerators) instead of ``lax.map`` (CPU:
        no lane waits for another's deeper tree); default: vmap unless JAX's default
        backend is the CPU. With vmap the draws depend on the chunk size (rounding of
        vectorized math differs with the batch width and NUTS amplifies it).
    n_groups : int, default 0
        Unit groups (``normal_grouped``: one random intercept each, in every pair).
    """
    plan = nuts_plan(model, key, x, y, aux, mask, init_line, population, sigma_scale,
                     chains, draws, tune, target_accept, chunk_size, vectorize, n_groups)
    from .parallel import run_in_order

    for start, stop, (a, b, div) in run_in_order(
            partial(nuts_range, plan), plan["bounds"], pair_threads()):
        on_chunk(start, stop, a, b, div)
        if progress is not None:
            progress(stop - start)


def pair_threads() -> int:
    """Threads running per-pair NUTS chunks side by side (JAX releases the GIL).

    ``BAYESSLOPE_PAIR_THREADS`` if set, else ``min(2, cores)``.
    """
    value = os.environ.get(THREADS_ENV)
    if value:
        return max(1, int(value))
    return max(1, min(os.cpu_count() or 1, 2))


def nuts_plan(model: str, key, x, y, aux, mask, init_line, population: Mapping[str, float],
              sigma_scale: float, chains: int, draws: int, tune: int, target_accept: float,
              chunk_size: int, vectorize: bool | None = None, n_groups: int = 0) -> dict:
    """Everything :func:`nuts_range` needs, as numpy arrays and numbers (picklable).

    ``bounds`` lists the chunks ``(start, stop)``.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    if vectorize is None:
        vectorize = jax.default_backend() != "cpu"
    if aux is None:
        aux = np.ones_like(y)
    sa, sb, rho = population["intercept_sigma"], population["slope_sigma"], population["corr"]
    cov = np.array([[sa * sa, rho * sa * sb], [rho * sa * sb, sb * sb]], dtype=np.float64)
    n_pairs = x.shape[0]
    chunk_size = int(max(1, min(chunk_size, n_pairs)))
    return {
        "model": model, "key": np.asarray(jax.random.key_data(key)),
        "data": tuple(np.asarray(v, dtype=np.float64) for v in (x, y, aux, mask, init_line)),
        "prior": (np.asarray([population["intercept_mu"], population["slope_mu"]],
                             dtype=np.float64),
                  np.linalg.inv(np.linalg.cholesky(cov)), np.float64(sigma_scale),
                  np.asarray([sa, sb], dtype=np.float64)),
        "static": (int(chains), int(draws), int(tune), float(target_accept),
                   bool(vectorize), int(n_groups)),
        "chunk_size": chunk_size,
        "bounds": [(s, min(s + chunk_size, n_pairs)) for s in range(0, n_pairs, chunk_size)],
    }


def nuts_range(plan: dict, start: int, stop: int) -> tuple:
    """Per-pair NUTS of pairs ``start:stop``: intercept, slope (chain, draw, C), divergences.

    The chunk is padded to ``chunk_size`` with copies of its last pair (discarded), so one
    compiled program serves every chunk.
    """
    with jax.enable_x64(True):  # the context is thread-local
        x, y, aux, mask, line = plan["data"]
        idx = np.arange(start, start + plan["chunk_size"])
        take = np.minimum(idx, stop - 1)  # padding repeats the last real pair
        key = jax.random.wrap_key_data(jnp.asarray(plan["key"]))
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(idx))
        out = _run_chunk(jnp.asarray(x[take]), jnp.asarray(y[take]), jnp.asarray(aux[take]),
                         jnp.asarray(mask[take]), keys,
                         tuple(jnp.asarray(v) for v in plan["prior"]),
                         jnp.asarray(line[take]), plan["model"], *plan["static"])
        a, b, div = (np.asarray(v)[: stop - start] for v in out)
        return np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1), div.sum(axis=(1, 2))
