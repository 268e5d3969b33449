"""Do two implementations of the per-task-sigma Gaussian model give the same posterior?

An SBC rank pattern that survives reruns (a mean rank below 49.5 for ``intercept[0]``)
can come from the simulated data, from the simulator disagreeing with the model, or from
the fit. This check separates them with far more power than ranks: on data sets drawn from
the same fixed priors it fits each one twice, with ``fit_hierarchical(per_task_sigma=True,
formulation=...)`` and with the transfer matrix's independent JAX engine
(``validation.variants.fit_pairs_core``: blackjax NUTS on the collapsed posterior, exact
conditional draws; its own SBC is ``pairs_core``), both 4 x (1,000 + 1,000), and reports
per variable the mean of ``(mean_package - mean_engine) / sd_engine`` and of the sd ratio.
A bias of 0.1 posterior sd (what a mean rank of ~46 of 99 means) would stand out by tens
of standard errors.

``--engine-sbc N`` instead runs SBC of that engine on the same shape (N simulations, seed
777), which ties the engine to the numpy simulator.

Usage::

    python -m validation.engine_agreement --formulation collapsed --datasets 60
    python -m validation.engine_agreement --formulation full --datasets 24
    python -m validation.engine_agreement --engine-sbc 1000
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from . import sbc
from . import variants as V

VARIABLES = ("intercept", "slope", "sigma", "intercept_mu", "slope_mu", "intercept_sigma",
             "slope_sigma")


def agreement(formulation: str, n_datasets: int, n_tasks: int = 10, n_points: int = 15,
              seed: int = 99) -> dict[str, tuple[float, float, int]]:
    """Mean standardized difference and sd ratio per variable: ``(mean, se, n)``."""
    import bayesslope as bs

    chains, draws = 4, 1000
    saved = V.SAMPLING
    V.SAMPLING = {**saved, "chains": chains, "draws": draws, "tune": 1000}
    z: dict[str, list] = {}
    try:
        for i in range(n_datasets):
            rng = np.random.default_rng([seed, i])
            truth = V.sample_population(rng, n_tasks, per_task_sigma=True)
            df = V.simulate_gaussian(truth, rng, n_points)
            ref = V.fit_pairs_core(df, 1000 + i).draws
            extra = {"sampler": "nutpie"} if formulation == "collapsed" else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = bs.fit_hierarchical(
                    df, x_ref=0.0, x_better="higher", y_better="higher", priors=V.PRIORS,
                    per_task_sigma=True, formulation=formulation, draws=draws, tune=1000,
                    chains=chains, random_seed=i, progressbar=False, **extra)
            post = fit.posterior["posterior"]
            for k in VARIABLES:
                a = post[k].transpose("chain", "draw", ...).values.reshape(chains * draws, -1)
                b = np.asarray(ref[k]).reshape(chains * draws, -1)
                z.setdefault(k, []).append((a.mean(0) - b.mean(0)) / b.std(0))
                z.setdefault(f"{k} sd ratio", []).append(a.std(0) / b.std(0))
    finally:
        V.SAMPLING = saved
    out = {}
    for k, v in z.items():
        v = np.concatenate(v)
        out[k] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)), int(v.size))
    return out


def engine_sbc(n_sims: int, n_tasks: int = 10, n_points: int = 15, seed: int = 777):
    """SBC of the JAX engine (``fit_pairs_core``) on the per-task-sigma data of this shape."""
    from functools import partial

    variant = sbc.Variant(
        name=f"pairs_core_{n_tasks}x{n_points}", description="",
        sample_prior=partial(V.sample_population, n_tasks=n_tasks, per_task_sigma=True),
        simulate=partial(V.simulate_gaussian, n_points=n_points), fit=V.fit_pairs_core,
        params=(*V.POPULATION, "corr", "sigma[0]", "intercept[0]", "slope[0]"),
        pooled=("slope", "intercept"))
    return sbc.run_sbc(variant, n_sims, seed=seed, workers=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m validation.engine_agreement",
                                description=__doc__.split("\n")[0])
    p.add_argument("--formulation", choices=("collapsed", "full"), default="collapsed")
    p.add_argument("--datasets", type=int, default=60)
    p.add_argument("--engine-sbc", type=int, default=0, metavar="N")
    args = p.parse_args(argv)
    start = time.perf_counter()
    if args.engine_sbc:
        res = engine_sbc(args.engine_sbc)
        print(sbc.rank_table(res).round(3).to_string())
        for var in ("intercept[0]", "slope[0]"):
            r = res.ranks(var)
            print(f"{var}: mean rank {r.mean():.2f} +- {28.87 / np.sqrt(r.size):.2f}")
        r = res.pooled("intercept")
        print(f"pooled intercept: mean rank {r.mean():.2f} over {r.size} ranks")
        print(sbc.slope_coverage(res).round(4).to_string())
        print(f"{time.perf_counter() - start:.0f} s")
        return 0
    res = agreement(args.formulation, args.datasets)
    print(f"formulation={args.formulation}, {args.datasets} data sets (10 tasks x 15 points), "
          f"{time.perf_counter() - start:.0f} s")
    print("| variable | mean | se | n |\n|---|---|---|---|")
    for k, (m, se, n) in res.items():
        print(f"| {k} | {m:+.4f} | {se:.4f} | {n} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
