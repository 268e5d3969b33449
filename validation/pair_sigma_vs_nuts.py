"""Per-pair sigma by quadrature vs NUTS over every pair's log sigma, on 200 pairs (issue 21).

Simulates ``--pairs`` pairs from the transfer model (population fixed, per-pair sigma),
fits them twice with the same priors:

* reference: :func:`bayesslope.pairs.sampler.sample_population` with
  ``per_pair_sigma=True`` (NUTS over the population and every pair's log sigma, the
  previous default) + exact conditional draws of the coefficients;
* :mod:`bayesslope.pairs.pair_sigma` (sigma integrated out by quadrature, 5-D NUTS, exact
  draws of sigma and the coefficients),

each with ``--draws`` draws on 4 chains, and reports per pair the difference of the slope
means in posterior sds and the ratio of the slope sds. The bar of issue 21: every pair
within 0.05 sd and 5%; the Monte Carlo error of both runs is printed next to it::

    .venv/bin/python -m validation.pair_sigma_vs_nuts --pairs 200 --draws 5000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> dict:
    """Run the comparison; print and return the summary."""
    import jax

    from bayesslope.collapsed import task_sufficient_stats
    from bayesslope.pairs import pair_sigma as ps
    from bayesslope.pairs.sampler import DEFAULT_PRIORS, draw_pairs, sample_population

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--draws", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--out", help="write the summary as JSON here")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    n_pairs, n = args.pairs, args.points
    coef = rng.multivariate_normal([0.0, 0.4], [[0.04, 0.0], [0.0, 0.09]], size=n_pairs)
    sig = rng.uniform(0.2, 1.0, n_pairs)
    idx = np.repeat(np.arange(n_pairs), n)
    x = rng.normal(size=idx.size)
    y = coef[idx, 0] + coef[idx, 1] * x + sig[idx] * rng.normal(size=idx.size)
    stats = task_sufficient_stats(x, y, idx, n_pairs)
    kw = dict(chains=4, draws=args.draws, tune=1000)
    out = {}

    def keeper(name):
        def keep(start, stop, _a, b):
            out.setdefault(name, np.empty((4, args.draws, n_pairs)))[..., start:stop] = b
        return keep

    t0 = time.perf_counter()
    post = sample_population(jax.random.key(1), stats, DEFAULT_PRIORS, per_pair_sigma=True,
                             **kw)
    draw_pairs(jax.random.key(2), stats, post.params, n_pairs, keeper("nuts"))
    t_nuts = time.perf_counter() - t0
    t0 = time.perf_counter()
    post_q = ps.sample_population(jax.random.key(3), stats, DEFAULT_PRIORS, **kw)
    sigma_q = ps.draw_pairs(jax.random.key(4), stats, post_q.params, 1.0, n_pairs,
                            keeper("quad"))
    t_quad = time.perf_counter() - t0

    from arviz_stats.base import array_stats

    a, b = out["nuts"], out["quad"]
    sd = a.reshape(-1, n_pairs).std(0)
    dmean = (b.mean((0, 1)) - a.mean((0, 1))) / sd
    ratio = b.reshape(-1, n_pairs).std(0) / sd
    ess_a = np.array([array_stats.ess(a[..., p], method="bulk") for p in range(n_pairs)])
    ess_b = np.array([array_stats.ess(b[..., p], method="bulk") for p in range(n_pairs)])
    mcse = np.sqrt(1.0 / ess_a + 1.0 / ess_b)  # of the difference of means, in sds
    summary = {
        "pairs": n_pairs, "points": n, "draws": args.draws, "seed": args.seed,
        "max_abs_mean_diff_sd": float(np.abs(dmean).max()),
        "frac_mean_within_0.05sd": float((np.abs(dmean) <= 0.05).mean()),
        "sd_ratio_min": float(ratio.min()), "sd_ratio_max": float(ratio.max()),
        "frac_sd_within_5pct": float((np.abs(ratio - 1) <= 0.05).mean()),
        "median_mcse_of_diff_sd": float(np.median(mcse)),
        "max_abs_mean_diff_in_mcse": float(np.abs(dmean / mcse).max()),
        "sigma_mean_ratio_range": [float(v) for v in np.quantile(
            sigma_q / post.params["sigma"].mean((0, 1)), [0, 1])],
        "divergences": [int(post.diverging.sum()), int(post_q.diverging.sum())],
        "seconds": {"nuts_log_sigma": t_nuts, "quadrature": t_quad},
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh, indent=1)
    return summary


if __name__ == "__main__":
    main()
