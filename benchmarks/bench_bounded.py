"""Bounded-accuracy fits at the size of a real suite (issue 25): before/after and scaling.

The data are :func:`benchmarks.suite_sim.simulate_suite` (104 models x 41 tasks, probit
curves with chance floors 0 / 0.25 / 0.5, test-set sizes 100 to 60,000). The model is
``fit_hierarchical(df, link="probit", n_eval="n_eval_examples", chance="chance",
likelihood=...)``; every arm goes through the library's own steps (design, variants,
resolved config, :func:`bayesslope.posterior.sample_posterior`) and differs only in

- ``before``: the per-task parameterization of the code before issue 25 (the Gaussian
  link-scale rule plus "half the scores at the floor or ceiling -> non-centered", plain
  centered coefficients), PyMC's NUTS;
- ``after``: today's defaults (:func:`bayesslope.resolve.resolve_model`: the count-aware
  chooser and the whitened centered basis), with the sampler named by ``--sampler``.

Every ``before`` draw hits NUTS's maximum tree depth (1,023 leapfrog steps), so its time
is linear in the number of iterations: it runs at ``--before-iters`` (tune = draws) and the
table also gives its time extrapolated to the full run, labelled as such
(``--before-iters 0`` skips it).

For each arm: wall time of the sampling step (build + compile + sample), the sampler's
own sampling time, max R-hat and min bulk/tail ESS over the population parameters and
every task's intercept and slope, divergences, mean leapfrog steps per draw and tree
depth, and the cost of one gradient of the model's log density (median of timed
``compile_dlogp`` calls at the initial point).

Usage (through the heavy lock, see /work/notes/COMMON.md)::

    python benchmarks/bench_bounded.py suite --out benchmarks/results_bounded_suite.json
    python benchmarks/bench_bounded.py scaling --out benchmarks/results_bounded_scaling.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suite_sim import simulate_suite, subset  # noqa: E402

KEY_VARS = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr",
            "intercept", "slope", "overdispersion")


def legacy_centered(design, variants) -> np.ndarray:
    """The parameterization choice before issue 25 (link-scale OLS rule + edge rule)."""
    from bayesslope.resolve import choose_centered, link_scale_scores

    z = link_scale_scores(design, variants)
    centered = choose_centered(dataclasses.replace(design, y=z))
    edge = np.abs(z) >= np.max(np.abs(z)) - 1e-12
    share = np.bincount(design.task_idx, edge, design.n_tasks) / np.bincount(
        design.task_idx, minlength=design.n_tasks)
    return centered & (share < 0.5)


def prepare(df, likelihood: str, arm: str):
    """Design, variants and the arm's resolved ModelConfig."""
    from bayesslope.data import prepare_design
    from bayesslope.resolve import resolve_model
    from bayesslope.variant_data import prepare_variants

    design = prepare_design(df, x="x", y="y", task="task", x_better="lower",
                            y_better="higher", warn_weak=False)
    variants = prepare_variants(df, design, link="probit", likelihood=likelihood,
                                n_eval="n_eval_examples", chance="chance")
    config = resolve_model(design, variants)
    if arm == "before":
        config = dataclasses.replace(
            config, centered_basis=(),
            centered_tasks=tuple(bool(c) for c in legacy_centered(design, variants)))
    return design, variants, config


def gradient_cost(design, variants, config, repeats: int = 200) -> float:
    """Median seconds of one log-density gradient (PyTensor C) at the initial point."""
    from bayesslope.model import build_model

    model = build_model(design, config, variants)
    f = model.compile_dlogp()
    point = model.initial_point()
    f(point)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeats // 5):
            f(point)
        times.append((time.perf_counter() - t) / (repeats // 5))
    return float(np.median(times))


def diagnostics(tree) -> dict:
    """Max R-hat, min bulk/tail ESS, divergences, steps per draw, tree depth."""
    import arviz as az

    post = tree["posterior"].to_dataset()
    names = [v for v in KEY_VARS if v in post]
    rhat = az.rhat(post[names])
    ess_b = az.ess(post[names], method="bulk")
    ess_t = az.ess(post[names], method="tail")

    def extreme(ds, fn):
        return float(fn([float(fn(ds[v].values)) for v in ds.data_vars]))

    stats = tree["sample_stats"].to_dataset()
    steps = stats["n_steps"].values if "n_steps" in stats else None
    depth = stats["tree_depth"].values if "tree_depth" in stats else None
    if depth is None and steps is not None:
        depth = np.log2(steps + 1)
    return {
        "rhat_max": extreme(rhat, np.max),
        "ess_bulk_min": extreme(ess_b, np.min),
        "ess_tail_min": extreme(ess_t, np.min),
        "divergences": int(stats["diverging"].values.sum()),
        "steps_per_draw": float(np.mean(steps)) if steps is not None else None,
        "tree_depth_mean": float(np.mean(depth)) if depth is not None else None,
        "tree_depth_max": float(np.max(depth)) if depth is not None else None,
        "draws": int(post.sizes["draw"]), "chains": int(post.sizes["chain"]),
    }


def run_arm(df, likelihood: str, arm: str, *, sampler: str, draws: int, tune: int,
            chains: int, seed: int) -> dict:
    """One fit of one arm; returns its timings and diagnostics."""
    from bayesslope.posterior import sample_posterior
    from bayesslope.sampling import SamplerConfig

    design, variants, config = prepare(df, likelihood, arm)
    grad = gradient_cost(design, variants, config)
    sc = SamplerConfig(draws=draws, tune=tune, chains=chains, random_seed=seed,
                       sampler=sampler, cores=min(chains, 2))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = sample_posterior(design, config, variants, sc)
    wall = time.perf_counter() - t
    out = {"likelihood": likelihood, "arm": arm, "sampler": sampler, "tune": tune,
           "n_tasks": design.n_tasks, "n_obs": design.n_obs,
           "centered": int(sum(config.centered_tasks)), "whitened": bool(config.centered_basis),
           "wall_s": wall, "sampling_s": tree["posterior"].attrs.get("sampling_time"),
           "gradient_ms": 1e3 * grad, **diagnostics(tree)}
    print(json.dumps(out), flush=True)
    return out


def suite(args) -> list[dict]:
    """Before/after on the 41 x 104 suite, binomial and beta-binomial."""
    df = simulate_suite(seed=args.seed)
    rows = []
    for lik in args.likelihoods:
        if args.before_iters:
            rows.append(run_arm(df, lik, "before", sampler="pymc", draws=args.before_iters,
                                tune=args.before_iters, chains=args.before_chains,
                                seed=args.seed))
        for sampler in args.samplers:
            rows.append(run_arm(df, lik, "after", sampler=sampler, draws=args.draws,
                                tune=args.tune, chains=args.chains, seed=args.seed))
    return rows


def scaling(args) -> list[dict]:
    """Wall time, gradient cost and steps per draw of the after arm by size."""
    rows = []
    big = {}
    for rows_per_task in args.rows:
        n_models = max(104, rows_per_task)
        big[rows_per_task] = simulate_suite(n_models=n_models, n_tasks=max(args.tasks),
                                            seed=args.seed)
    for n_tasks in args.tasks:
        for rows_per_task in args.rows:
            df = subset(big[rows_per_task], n_tasks, rows_per_task, seed=args.seed)
            for sampler in args.samplers:
                rows.append(run_arm(df, args.likelihoods[0], "after", sampler=sampler,
                                    draws=args.draws, tune=args.tune, chains=args.chains,
                                    seed=args.seed))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("suite", "scaling"))
    p.add_argument("--likelihoods", nargs="+", default=["binomial", "beta_binomial"])
    p.add_argument("--samplers", nargs="+", default=["pymc"])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--before-iters", type=int, default=60)
    p.add_argument("--before-chains", type=int, default=2)
    p.add_argument("--tasks", type=int, nargs="+", default=[10, 20, 41])
    p.add_argument("--rows", type=int, nargs="+", default=[100, 400, 1600])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    start = time.time()
    rows = suite(args) if args.mode == "suite" else scaling(args)
    record = {"mode": args.mode, "argv": sys.argv, "uptime_start": _uptime(),
              "elapsed_s": time.time() - start, "cpus": os.cpu_count(), "rows": rows}
    args.out.write_text(json.dumps(record, indent=1))
    return 0


def _uptime() -> str:
    try:
        return os.popen("uptime").read().strip()
    except OSError:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
