"""All 46 tasks of a suite in one call, averaged tasks included (issues 24 and 25).

The public suite of issues 24/25 (104 language models x 46 tasks, accuracy vs C4 loss, five
tasks averaged over subtasks) is not in ``../shared/data``; ``benchmarks.suite_sim`` draws a
stand-in of the same size (41 whole-count tasks + 5 MMLU-like averages). This times the
user's call, end to end, with default sampling (4 chains x 1,000 draws after 1,000 tuning
steps)::

    python -m benchmarks.bench_suite46 --out benchmarks/results_suite46.json

``fit_hierarchical(..., link="probit", chance="chance", n_eval="n_eval_examples",
likelihood="binomial", counts="average", log_likelihood=True)``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--likelihood", default="binomial", choices=("binomial", "beta_binomial"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    import bayesslope as bs
    from benchmarks.bench_bounded import diagnostics
    from benchmarks.suite_sim import simulate_suite

    df = simulate_suite(n_tasks=46, averaged_tasks=5, seed=args.seed)
    whole = np.isclose(df["y"] * df["n_eval_examples"],
                       np.round(df["y"] * df["n_eval_examples"]))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit_hierarchical(
            df, x="x", y="y", task="task", x_better="lower", y_better="higher",
            link="probit", chance="chance", n_eval="n_eval_examples",
            likelihood=args.likelihood, counts="average", log_likelihood=True,
            random_seed=args.seed, progressbar=False)
    wall = time.perf_counter() - t0
    record = {
        "call": "fit_hierarchical(link='probit', chance=, n_eval=, likelihood="
                f"'{args.likelihood}', counts='average', log_likelihood=True), defaults",
        "rows": len(df), "tasks": int(df["task"].nunique()),
        "models": int(df["model"].nunique()),
        "tasks_averaged": int(df.loc[df["averaged"], "task"].nunique()),
        "rows_not_whole": int((~whole).sum()),
        "wall_s": round(wall, 1),
        "sampling_s": fit.posterior["posterior"].attrs.get("sampling_time"),
        "sampler": fit.spec.get("sampler", {}).get("sampler") if isinstance(
            fit.spec.get("sampler"), dict) else None,
        **diagnostics(fit.posterior),
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught}),
        "uptime": os.popen("uptime").read().strip(),
    }
    args.out.write_text(json.dumps(record, indent=1, default=str))
    print(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
