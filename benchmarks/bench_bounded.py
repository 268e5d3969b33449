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
    python benchmarks/bench_bounded.py agree --draws 1000 --tune 1000 --chains 2 --out ...

``agree`` fits SBC-sized data sets with both arms and compares the posteriors (see
:func:`agree`).
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
        for sampler in (s for s in args.samplers if s != "none"):
            rows.append(run_arm(df, lik, "after", sampler=sampler, draws=args.draws,
                                tune=args.tune, chains=args.chains, seed=args.seed))
            if args.refit_seed is not None:
                # A second suite of the same structure in this process (nutpie: the
                # compiled model is reused, only the data buffer changes).
                rows.append({**run_arm(simulate_suite(seed=args.refit_seed), lik, "after",
                                       sampler=sampler, draws=args.draws, tune=args.tune,
                                       chains=args.chains, seed=args.seed), "refit": True})
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


def agree(args) -> list[dict]:
    """Before and after arms on SBC-sized data (12 tasks x 20 points, n_eval 200).

    Data sets of the ``binomial_probit`` SBC variant (validation/variants.py, its fixed
    priors); for every posterior scalar (population parameters, each task's intercept
    and slope) the difference of the two arms' means in units of their combined Monte
    Carlo standard error. Not a substitute for SBC: it checks that the new
    parameterization reaches the same posterior as the old one where both mix.
    """
    import arviz as az

    from bayesslope.data import prepare_design
    from bayesslope.posterior import sample_posterior
    from bayesslope.resolve import resolve_model
    from bayesslope.sampling import SamplerConfig
    from bayesslope.variant_data import prepare_variants
    from validation.variants import PRIORS_PROBIT, sample_probit, simulate_binomial_probit

    rows = []
    for k in range(args.agree_sets):
        rng = np.random.default_rng(args.seed + k)
        df = simulate_binomial_probit(sample_probit(rng, n_tasks=12), rng, n_points=20,
                                      n_eval=200)
        design = prepare_design(df, x_better="higher", y_better="higher", x_ref=0.0,
                                warn_weak=False)
        variants = prepare_variants(df, design, link="probit", likelihood="binomial",
                                    n_eval="n")
        after = resolve_model(design, variants, priors=PRIORS_PROBIT)
        before = dataclasses.replace(after, centered_basis=(), centered_tasks=tuple(
            bool(c) for c in legacy_centered(design, variants)))
        sc = SamplerConfig(draws=args.draws, tune=args.tune, chains=args.chains,
                           random_seed=args.seed + k, cores=min(args.chains, 2))
        posts = []
        for config in (before, after):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = sample_posterior(design, config, variants, sc)
            posts.append((tree, diagnostics(tree)))
        z = []
        for v in ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr",
                  "intercept", "slope"):
            m = [p[0]["posterior"][v].mean(("chain", "draw")).values for p in posts]
            se = [az.mcse(p[0]["posterior"].to_dataset()[[v]], method="mean")[v].values
                  for p in posts]
            z.append(np.abs(m[0] - m[1]).ravel() / np.sqrt(se[0] ** 2 + se[1] ** 2).ravel())
        z = np.concatenate(z)
        out = {"set": k, "centered_before": int(sum(before.centered_tasks)),
               "centered_after": int(sum(after.centered_tasks)),
               "z_max": float(z.max()), "z_over_3": int((z > 3).sum()), "n_scalars": z.size,
               "before": posts[0][1], "after": posts[1][1]}
        print(json.dumps(out), flush=True)
        rows.append(out)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("suite", "scaling", "agree"))
    p.add_argument("--agree-sets", type=int, default=4)
    p.add_argument("--likelihoods", nargs="+", default=["binomial", "beta_binomial"])
    p.add_argument("--samplers", nargs="+", default=["pymc"],
                   help="samplers of the after arm ('none': before arm only)")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--before-iters", type=int, default=60)
    p.add_argument("--before-chains", type=int, default=2)
    p.add_argument("--tasks", type=int, nargs="+", default=[10, 20, 41])
    p.add_argument("--rows", type=int, nargs="+", default=[100, 400, 1600])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--refit-seed", type=int, default=None,
                   help="suite: also fit a second suite (this seed) in the same process")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    start = time.time()
    rows = {"suite": suite, "scaling": scaling, "agree": agree}[args.mode](args)
    record = {"mode": args.mode, "argv": sys.argv, "uptime_end": _uptime(),
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
