"""``linearity_check`` with three shapes on a 46-task x 104-model suite (issue 15, speed).

The issue's target: ``bs.linearity_check`` with shapes linear, sigmoid and hockey stick on
46 tasks x 104 models (about 4,800 rows, binomial likelihood) within 10 minutes on 2 cores.
The suite is the stand-in of ``benchmarks.bench_suite46`` (``simulate_suite(n_tasks=46,
averaged_tasks=5)``: 41 whole-count tasks and 5 MMLU-like averages, chance floors 0 / 0.25 /
0.5). The user's call, end to end, default sampling (4 chains x 1,000 draws after 1,000
tuning steps, ``cores`` = min(chains, CPUs))::

    python -m benchmarks.bench_linearity46 --out benchmarks/results_linearity46.json

``linearity_check(df, shapes=("linear", "sigmoid", "hockey_stick"), chance="chance",
n_eval="n_eval_examples", likelihood="binomial", counts="average", x_better="lower",
y_better="higher")``: the sigmoid fit is the binomial probit model with the chance floor
and a lapse rate per task; the linear and hockey-stick fits are Gaussian on the accuracy
with one noise scale per task (``linearity_check`` passes the count likelihood to the sigmoid
only). Each shape's fit is timed (wall of its ``fit_hierarchical`` call, and the sampler's own
clock) and diagnosed: max R-hat, min bulk / tail ESS, divergences, NUTS steps per draw and
tree depth.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np


def fit_diagnostics(fit) -> dict:
    """Max R-hat, min bulk / tail ESS (every posterior variable), divergences, NUTS steps."""
    diag = fit.diagnostics()
    stats = fit.posterior["sample_stats"].to_dataset()
    steps = stats["n_steps"].values if "n_steps" in stats else None
    depth = stats["tree_depth"].values if "tree_depth" in stats else None
    if depth is None and steps is not None:
        depth = np.log2(steps + 1)
    worst_rhat = diag["r_hat_max"].idxmax()
    worst_ess = diag["ess_bulk_min"].idxmin()
    return {
        "sampling_s": fit.posterior["posterior"].attrs.get("sampling_time"),
        "sampler": (fit.spec.get("sampler") or {}).get("sampler"),
        "formulation": fit.formulation,
        "rhat_max": float(diag["r_hat_max"].max()), "rhat_max_var": str(worst_rhat),
        "ess_bulk_min": float(diag["ess_bulk_min"].min()), "ess_bulk_min_var": str(worst_ess),
        "ess_tail_min": float(diag["ess_tail_min"].min()),
        "divergences": int(diag.attrs["divergences"]),
        "steps_per_draw": None if steps is None else float(np.mean(steps)),
        "tree_depth_mean": None if depth is None else float(np.mean(depth)),
        "tree_depth_max": None if depth is None else float(np.max(depth)),
        "draws": int(fit.posterior["posterior"].sizes["draw"]),
        "chains": int(fit.posterior["posterior"].sizes["chain"]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--shapes", nargs="+", default=["linear", "sigmoid", "hockey_stick"])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--n-tasks", type=int, default=46, help="smoke test: fewer tasks")
    p.add_argument("--lapse", choices=("true", "false"), default="true",
                   help="the sigmoid's lapse rates (linearity_check's default: true)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    import bayesslope as bs
    import bayesslope.fit as fit_module
    from benchmarks.suite_sim import simulate_suite

    df = simulate_suite(n_tasks=46, averaged_tasks=5, seed=args.seed)
    if args.n_tasks < 46:  # keep the averaged tasks (the last five) in the subset
        keep = sorted(df["task"].unique())[46 - args.n_tasks:]
        df = df[df["task"].isin(keep)].reset_index(drop=True)
    # Time each shape's fit_hierarchical call (linearity_check calls them one after another).
    calls: list[dict] = []
    real = fit_module.fit_hierarchical

    def timed(*a, **kw):
        t = time.perf_counter()
        out = real(*a, **kw)
        calls.append({"shape_arg": kw.get("shape"), "link": kw.get("link"),
                      "wall_s": time.perf_counter() - t})
        return out

    uptime_start = os.popen("uptime").read().strip()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, \
            mock.patch.object(fit_module, "fit_hierarchical", timed):
        warnings.simplefilter("always")
        check = bs.linearity_check(
            df, x="x", y="y", task="task", x_better="lower", y_better="higher",
            shapes=tuple(args.shapes), chance="chance", n_eval="n_eval_examples",
            likelihood="binomial", counts="average", lapse=args.lapse == "true",
            random_seed=args.seed,
            draws=args.draws, tune=args.tune, chains=args.chains, progressbar=False)
    wall = time.perf_counter() - t0
    table = check.table()
    per_shape = {}
    for shape, call in zip(check.fits, calls, strict=True):
        per_shape[shape] = {"wall_s": round(call["wall_s"], 1),
                            **fit_diagnostics(check.fits[shape])}
    record = {
        "call": "linearity_check(shapes=" + repr(tuple(args.shapes)) + ", chance='chance', "
                "n_eval='n_eval_examples', likelihood='binomial', counts='average', "
                f"lapse={args.lapse == 'true'}, "
                f"x_better='lower', y_better='higher', random_seed={args.seed}, "
                f"draws={args.draws}, tune={args.tune}, chains={args.chains})",
        "rows": len(df), "tasks": int(df["task"].nunique()),
        "models": int(df["model"].nunique()),
        "tasks_averaged": int(df.loc[df["averaged"], "task"].nunique()),
        "wall_s": round(wall, 1),
        "fits_wall_s": round(sum(c["wall_s"] for c in calls), 1),
        "loo_and_table_s": round(wall - sum(c["wall_s"] for c in calls), 1),
        "per_shape": per_shape,
        "verdicts": table["verdict"].value_counts().to_dict(),
        "best": table["best"].value_counts().to_dict(),
        "n_k_high": {s: int(table[f"n_k_high_{s}"].sum()) for s in check.fits},
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught}),
        "uptime_start": uptime_start,
        "uptime_end": os.popen("uptime").read().strip(),
        "cpus": os.cpu_count(),
    }
    args.out.write_text(json.dumps(record, indent=1, default=str))
    print(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
