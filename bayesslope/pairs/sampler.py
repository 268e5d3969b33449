"""The Gaussian fast path: NUTS on the population parameters, exact per-pair draws in JAX.

The pair coefficients are integrated out with :mod:`bayesslope.collapsed` (the one
likelihood shared with the PyMC models), so NUTS (blackjax, window adaptation; chains one
after the other on CPU, vmapped on accelerators) only sees the five population parameters
plus the residual scale(s). With one
shared residual scale, pairs of equal size have the same standardized design and are
pooled (:func:`~bayesslope.collapsed.group_sufficient_stats`), so each log-density
evaluation costs O(distinct pair sizes), not O(pairs). Every pair's
intercept and slope is then drawn from its exact conditional Gaussian, vectorized over
pairs in fixed-size chunks (one compiled function, padded last chunk) so memory stays
bounded whatever the number of pairs.

Importing this module imports JAX. Float64 (``jax.enable_x64``) is switched on only
inside the public functions here (a context manager, restored on exit), because the
sufficient statistics and the marginal likelihood need double precision while the rest
of the process may want JAX's float32 default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial, wraps
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats as jstats

from ..collapsed import (
    GroupedStats,
    SufficientStats,
    conditional_draw,
    conditional_moments,
    group_sufficient_stats,
    grouped_marginal_loglik,
    marginal_loglik,
)
from .priors import DEFAULT_PRIORS

__all__ = [
    "DEFAULT_PRIORS",
    "PopulationPosterior",
    "make_logdensity",
    "constrain",
    "sample_population",
    "draw_pairs",
    "draw_plan",
    "draw_range",
]

POPULATION = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr", "sigma")


def _float64(func: Callable) -> Callable:
    """Run ``func`` with JAX float64 enabled (restored afterwards); keeps its docstring."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return func(*args, **kwargs)

    return wrapper


class PopulationPosterior(NamedTuple):
    """Constrained population draws and sampler statistics, numpy arrays.

    Attributes
    ----------
    params : dict of str to ndarray
        ``intercept_mu``, ``slope_mu``, ``intercept_sigma``, ``slope_sigma``, ``corr`` of
        shape (chain, draw), and ``sigma`` of shape (chain, draw) or (chain, draw, P).
    diverging : ndarray of bool, shape (chain, draw)
    tree_depth : ndarray of int, shape (chain, draw)
        log2 of the number of integration steps + 1, as in Stan.
    acceptance_rate : ndarray, shape (chain, draw)
    step_size : ndarray, shape (chain,)
    """

    params: dict
    diverging: np.ndarray
    tree_depth: np.ndarray
    acceptance_rate: np.ndarray
    step_size: np.ndarray


def constrain(position: Mapping[str, Any]) -> dict:
    """Map an unconstrained position to the population parameters (JAX or numpy arrays).

    Scales are ``exp`` of their log; ``corr = 2 * sigmoid(corr_logodds) - 1``, i.e.
    ``(corr + 1) / 2`` on the log-odds scale (the Beta form of a 2x2 LKJ prior).
    """
    xp = jnp if any(isinstance(v, jax.Array) for v in position.values()) else np
    unit = 1.0 / (1.0 + xp.exp(-position["corr_logodds"]))
    return {
        "intercept_mu": position["intercept_mu"],
        "slope_mu": position["slope_mu"],
        "intercept_sigma": xp.exp(position["log_intercept_sigma"]),
        "slope_sigma": xp.exp(position["log_slope_sigma"]),
        "corr": 2.0 * unit - 1.0,
        "sigma": xp.exp(position["log_sigma"]),
    }


def _log_prior_unconstrained(position, priors):
    """Log prior density on the unconstrained scale, Jacobians included (as in PyMC)."""
    lp = jstats.norm.logpdf(position["intercept_mu"], priors["intercept_mu"]["mu"],
                            priors["intercept_mu"]["sigma"])
    lp += jstats.norm.logpdf(position["slope_mu"], priors["slope_mu"]["mu"],
                             priors["slope_mu"]["sigma"])
    for name in ("intercept_sigma", "slope_sigma", "sigma"):
        log_s = position["log_" + name]
        scale = priors[name]["sigma"]
        # HalfNormal(scale) at exp(log_s), plus log|d exp/d log_s| = log_s.
        term = (0.5 * math.log(2.0 / math.pi) - math.log(scale)
                - 0.5 * jnp.square(jnp.exp(log_s) / scale) + log_s)
        lp += jnp.sum(term)
    eta = priors["corr"]["eta"]
    u = position["corr_logodds"]
    # Beta(eta, eta) on w = sigmoid(u), plus log w(1-w); log w = -softplus(-u).
    log_w, log_1w = -jax.nn.softplus(-u), -jax.nn.softplus(u)
    lp += (eta - 1.0) * (log_w + log_1w) - (2.0 * jax.scipy.special.gammaln(eta)
                                            - jax.scipy.special.gammaln(2.0 * eta))
    lp += log_w + log_1w
    return lp


def make_logdensity(stats: SufficientStats | GroupedStats,
                    priors: Mapping[str, dict]) -> Callable:
    """Log posterior density (up to the evidence) of the unconstrained population position.

    Parameters
    ----------
    stats : SufficientStats or GroupedStats
        Per-pair statistics of the standardized data, float64 arrays of shape (P,), or the
        same pooled by design (shared ``sigma`` only).
    priors : mapping
        Specs as in :data:`DEFAULT_PRIORS`.

    Returns
    -------
    callable
        ``position -> scalar``; ``position`` holds ``intercept_mu``, ``slope_mu``,
        ``log_intercept_sigma``, ``log_slope_sigma``, ``corr_logodds`` and ``log_sigma``
        (scalar: shared; shape (P,): one per pair).
    """
    grouped = isinstance(stats, GroupedStats)
    loglik = grouped_marginal_loglik if grouped else marginal_loglik
    with jax.enable_x64(True):
        jstats_ = type(stats)(*(jnp.asarray(s, dtype=jnp.float64) for s in stats))

    def logdensity(position):
        with jax.enable_x64(True):
            p = constrain(position)
            if grouped and jnp.ndim(p["sigma"]) != 0:
                raise ValueError("grouped statistics need one shared sigma")
            lik = loglik(jstats_, p["intercept_mu"], p["slope_mu"], p["intercept_sigma"],
                         p["slope_sigma"], p["corr"], p["sigma"], xp=jnp)
            return lik + _log_prior_unconstrained(position, priors)

    return logdensity


def _initial_positions(key, n_chains: int, sigma_shape: tuple) -> dict:
    # Stan-style jitter around a sensible centre: scales near 0.5, correlation near 0.
    ks = jax.random.split(key, 6)

    def u(k, shape=()):
        return jax.random.uniform(k, (n_chains, *shape), minval=-0.5, maxval=0.5)

    return {
        "intercept_mu": u(ks[0]),
        "slope_mu": u(ks[1]),
        "log_intercept_sigma": math.log(0.5) + u(ks[2]),
        "log_slope_sigma": math.log(0.5) + u(ks[3]),
        "corr_logodds": u(ks[4]),
        "log_sigma": math.log(0.7) + u(ks[5], sigma_shape),
    }


def _pad_groups(groups: GroupedStats) -> GroupedStats:
    """Pad to a power-of-two number of groups with empty ones (count 0, n 0: they add 0).

    Transfer matrices whose pairs have a few distinct sizes then share one compiled NUTS
    program (a complete score table has a single group).
    """
    size = 1 << max(0, int(groups.count.size - 1).bit_length())
    return GroupedStats(*(np.pad(v, (0, size - v.size)) for v in groups))


def nuts_chains(logdensity, init, warm_keys, draw_keys, *, draws: int, tune: int,
                target_accept: float, vectorize: bool):
    """Window adaptation + NUTS draws per chain (blackjax), traced inside a jitted caller.

    Returns ``(trace, step_size)``: per chain the positions, divergence flags, integration
    steps and acceptance rates of the ``draws`` kept draws, and the adapted step size.
    Chains: lax.map on CPU (a vmapped NUTS step waits for the deepest tree of the batch;
    10,100 pairs, shared sigma: compile + run 4.7 s vs 8.1 s, rerun 0.09 s vs 0.48 s),
    vmap on accelerators (``vectorize``).
    """
    warmup = blackjax.window_adaptation(blackjax.nuts, logdensity,
                                        target_acceptance_rate=target_accept)

    def one_chain(args):
        position, warm_key, draw_key = args
        (state, params), _ = warmup.run(warm_key, position, num_steps=tune)
        kernel = blackjax.nuts(logdensity, **params)

        def step(state, k):
            state, info = kernel.step(k, state)
            return state, (state.position, info.is_divergent, info.num_integration_steps,
                           info.acceptance_rate)

        _, trace = jax.lax.scan(step, state, jax.random.split(draw_key, draws))
        return trace, params["step_size"]

    if vectorize:
        return jax.vmap(one_chain)((init, warm_keys, draw_keys))
    return jax.lax.map(one_chain, (init, warm_keys, draw_keys))


@partial(jax.jit, static_argnums=(4, 5, 6, 7, 8))
def _run_nuts(stats, init, warm_keys, draw_keys, frozen_priors, draws, tune, target_accept,
              vectorize):
    # Module-level and jitted with the data as arguments, so fits of same-shaped problems
    # reuse one compilation (compiling window adaptation + NUTS costs seconds).
    priors = {k: dict(v) for k, v in frozen_priors}
    return nuts_chains(make_logdensity(stats, priors), init, warm_keys, draw_keys,
                       draws=draws, tune=tune, target_accept=target_accept,
                       vectorize=vectorize)


def _sample_population(
    key,
    stats: SufficientStats,
    priors: Mapping[str, dict],
    per_pair_sigma: bool,
    chains: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    target_accept: float = 0.9,
) -> PopulationPosterior:
    """NUTS (blackjax) with window adaptation on the collapsed posterior, chains vmapped.

    Parameters
    ----------
    key : jax.Array
        PRNG key.
    stats : SufficientStats
        Per-pair statistics, shape (P,).
    priors : mapping
        Prior specs.
    per_pair_sigma : bool
        One residual sd per pair (sampled jointly, P extra dimensions) or one shared.
    chains, draws, tune : int
        Chains, kept draws per chain, adaptation steps.
    target_accept : float
        NUTS target acceptance rate.

    Returns
    -------
    PopulationPosterior
    """
    n_pairs = int(np.shape(stats.n)[0])
    k_init, k_warm, k_draw = jax.random.split(key, 3)
    init = _initial_positions(k_init, chains, (n_pairs,) if per_pair_sigma else ())
    frozen = tuple(sorted((k, tuple(sorted(v.items()))) for k, v in priors.items()))
    # A shared sigma lets pairs of equal design be pooled: O(groups) per gradient.
    data = stats if per_pair_sigma else _pad_groups(group_sufficient_stats(stats))
    data = type(data)(*(jnp.asarray(s, dtype=jnp.float64) for s in data))
    (positions, diverging, n_steps, accept), step_size = _run_nuts(
        data, init, jax.random.split(k_warm, chains), jax.random.split(k_draw, chains),
        frozen, int(draws), int(tune), float(target_accept), jax.default_backend() != "cpu",
    )
    params = {k: np.asarray(v) for k, v in constrain(positions).items()}
    return PopulationPosterior(
        params=params,
        diverging=np.asarray(diverging),
        tree_depth=np.floor(np.log2(np.asarray(n_steps) + 1)).astype(int),
        acceptance_rate=np.asarray(accept),
        step_size=np.asarray(step_size),
    )


@partial(jax.jit, static_argnums=(5, 6))
def _draw_chunk(key, pop, stats_c, sigma_c, idx, n_chain, n_draw):
    # Module level with everything as arguments: one compilation serves every chunk and
    # every later fit of the same shapes.
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)
    z = jax.vmap(lambda k: jax.random.normal(k, (2, n_chain, n_draw)))(keys)
    z = jnp.moveaxis(z, 0, -1)  # (2, chain, draw, C)
    moments = conditional_moments(stats_c, pop["intercept_mu"], pop["slope_mu"],
                                  pop["intercept_sigma"], pop["slope_sigma"],
                                  pop["corr"], sigma_c, xp=jnp)
    return conditional_draw(moments, z[0], z[1], xp=jnp)


def _draw_pairs(
    key,
    stats: SufficientStats,
    params: Mapping[str, np.ndarray],
    chunk_size: int,
    on_chunk: Callable[[int, int, np.ndarray, np.ndarray], None],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Exact conditional draws of every pair's (intercept, slope), chunk by chunk.

    Pair ``p`` uses the normals of ``fold_in(key, p)``, so the draws do not depend on the
    chunk size; the last chunk is padded (with empty pairs, which stay finite) so that one
    compiled function serves all chunks.

    Parameters
    ----------
    key : jax.Array
        PRNG key of the draw stage.
    stats : SufficientStats
        Per-pair statistics, shape (P,).
    params : mapping
        Population draws from :func:`sample_population` (``sigma`` (chain, draw) or
        (chain, draw, P)).
    chunk_size : int
        Pairs per chunk.
    on_chunk : callable
        Called as ``on_chunk(start, stop, intercept, slope)`` with numpy arrays of shape
        (chain, draw, stop - start).
    progress : callable, optional
        Called with the number of pairs done after each chunk.
    """
    plan = draw_plan(key, stats, params, chunk_size)
    for start, stop in plan["bounds"]:
        intercept, slope = _draw_range(plan, start, stop)
        on_chunk(start, stop, intercept, slope)
        if progress is not None:
            progress(stop - start)


def draw_plan(key, stats: SufficientStats, params: Mapping[str, np.ndarray],
              chunk_size: int) -> dict:
    """What :func:`draw_range` needs, as numpy arrays (picklable: shipped to workers).

    ``bounds`` lists the chunks ``(start, stop)``; ``key`` is the raw key data.
    """
    stats = SufficientStats(*(np.asarray(s, dtype=np.float64) for s in stats))
    n_pairs = stats.n.shape[0]
    chunk_size = int(max(1, min(chunk_size, n_pairs)))
    return {"key": np.asarray(jax.random.key_data(key)), "stats": stats,
            "pop": {k: np.asarray(params[k], dtype=np.float64) for k in POPULATION},
            "chunk_size": chunk_size,
            "bounds": [(s, min(s + chunk_size, n_pairs))
                       for s in range(0, n_pairs, chunk_size)]}


def _draw_range(plan: dict, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Intercept and slope draws of pairs ``start:stop`` (one chunk of ``plan``)."""
    stats, chunk_size = plan["stats"], plan["chunk_size"]
    key = jax.random.wrap_key_data(jnp.asarray(plan["key"]))
    pop = {k: jnp.asarray(v)[..., None] for k, v in plan["pop"].items() if k != "sigma"}
    sigma = plan["pop"]["sigma"]
    n_chain, n_draw = sigma.shape[:2]
    pad = chunk_size - (stop - start)
    stats_c = SufficientStats(*(np.pad(s[start:stop], (0, pad)) for s in stats))
    if sigma.ndim == 3:  # one sigma per pair
        sigma_c = np.pad(sigma[..., start:stop], ((0, 0), (0, 0), (0, pad)),
                         constant_values=1.0)
    else:
        sigma_c = sigma[..., None]
    idx = np.arange(start, start + chunk_size)
    intercept, slope = _draw_chunk(key, pop, stats_c, jnp.asarray(sigma_c),
                                   jnp.asarray(idx), n_chain, n_draw)
    keep = stop - start
    return np.asarray(intercept)[..., :keep], np.asarray(slope)[..., :keep]


sample_population = _float64(_sample_population)
draw_pairs = _float64(_draw_pairs)
draw_range = _float64(_draw_range)
