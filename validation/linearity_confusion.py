"""Confusion table of ``bs.linearity_check`` verdicts on simulated data of known shape.

Each simulated data set has 6 tasks, two of each true shape, 25 points per task (``--points``)
with x uniform on [1, 6] (a loss: lower is better) and accuracies with Gaussian noise (sd 0.02):

- linear:       y = 0.5 + b (3.5 - x),                       b ~ U(0.05, 0.08)
- sigmoid:      y = 0.25 + 0.7 Phi(a + c (3.5 - x)),          a ~ U(-0.5, 0.5), c ~ U(1.5, 2.5)
- hockey_stick: y = 0.25 + b max(x0 - x, 0),                 x0 ~ U(3, 4.5), b ~ U(0.08, 0.15)

(clear effects: each curve spans 0.3-0.5 in accuracy against noise 0.02). Every data set
is checked with ``shapes=("linear", "sigmoid", "hockey_stick")`` and ``chance=0.25``
(the sigmoid fit's floor). Writes one JSON line per data set (verdict per task) and, with
``--report``, the confusion table::

    nice -n 10 python -m validation.linearity_confusion --sets 10 --seed 1 \
        --out validation/results/linearity_confusion.jsonl
    python -m validation.linearity_confusion --report validation/results/linearity_confusion.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

TRUTHS = ("linear", "sigmoid", "hockey_stick")
N_POINTS = 25
NOISE = 0.02
SAMPLING = {"draws": 500, "tune": 500, "chains": 2, "cores": 1}


def simulate(rng: np.random.Generator, n_points: int = N_POINTS) -> pd.DataFrame:
    """Six tasks, two per true shape (names ``<shape>_<k>``), ``n_points`` each."""
    rows = []
    for shape in TRUTHS:
        for k in range(2):
            x = np.sort(rng.uniform(1.0, 6.0, n_points))
            u = 3.5 - x
            if shape == "linear":
                mean = 0.5 + rng.uniform(0.05, 0.08) * u
            elif shape == "sigmoid":
                mean = 0.25 + 0.7 * ndtr(rng.uniform(-0.5, 0.5) + rng.uniform(1.5, 2.5) * u)
            else:
                x0 = rng.uniform(3.0, 4.5)
                mean = 0.25 + rng.uniform(0.08, 0.15) * np.maximum(x0 - x, 0.0)
            y = np.clip(mean + NOISE * rng.standard_normal(n_points), 0.0, 1.0)
            rows += [{"task": f"{shape}_{k}", "x": a, "y": b} for a, b in zip(x, y, strict=True)]
    df = pd.DataFrame(rows)
    df["chance"] = 0.25
    return df


def run(n_sets: int, seed: int, out: Path, sampler: str | None = None,
        n_points: int = N_POINTS) -> None:
    import bayesslope as bs

    out.parent.mkdir(parents=True, exist_ok=True)
    done = sum(1 for _ in out.open()) if out.exists() else 0
    for i in range(done, n_sets):
        rng = np.random.default_rng([seed, i])
        df = simulate(rng, n_points)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check = bs.linearity_check(df, x_better="lower", y_better="higher",
                                       shapes=TRUTHS, chance="chance", random_seed=seed * 1000 + i,
                                       check_dependence=False, **SAMPLING,
                                       **({"sampler": sampler} if sampler else {}))
        table = check.table()
        record = {"set": i, "seed": seed, "n_points": n_points,
                  "wall_s": round(time.perf_counter() - t0, 1),
                  "verdict": table["verdict"].to_dict(), "best": table["best"].to_dict(),
                  "elpd_diff": table["elpd_diff"].round(2).to_dict(),
                  "elpd_diff_se": table["elpd_diff_se"].round(2).to_dict(),
                  "tied": table["tied"].to_dict(),
                  "elpd": {s: table[f"elpd_{s}"].round(2).to_dict() for s in TRUTHS},
                  "n_k_high": {s: table[f"n_k_high_{s}"].to_dict() for s in TRUTHS},
                  "divergences": {s: int(f.posterior["sample_stats"]["diverging"].sum())
                                  for s, f in check.fits.items()}}
        with out.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def report(path: Path) -> pd.DataFrame:
    """Confusion table: rows the true shape, columns the verdict, counts of tasks."""
    rows = []
    for line in path.open():
        rec = json.loads(line)
        for task, verdict in rec["verdict"].items():
            truth = task.rsplit("_", 1)[0]
            tied = rec.get("tied", {}).get(task)
            rows.append({"truth": truth, "verdict": verdict,
                         "in_tied": None if tied is None else truth in tied.split("|")})
    df = pd.DataFrame(rows)
    table = pd.crosstab(df["truth"], df["verdict"]).reindex(index=list(TRUTHS), fill_value=0)
    table["n"] = table.sum(axis=1)
    right = [table.loc[t, t] if t in table.columns else 0 for t in table.index]
    table["share_true_shape"] = (np.asarray(right) / table["n"]).round(3)
    # not called linear: "non-linear detected" (for the linear truth, the false-alarm rate)
    nonlin = df.assign(nl=df["verdict"] != "linear").groupby("truth")["nl"].mean()
    table["share_not_linear"] = nonlin.reindex(table.index).round(3)
    if df["in_tied"].notna().all():
        tied = df.groupby("truth")["in_tied"].mean()
        table["share_truth_among_tied"] = tied.reindex(table.index).round(3)
    return table


def markdown(table: pd.DataFrame) -> str:
    """The confusion table as a markdown table (no tabulate dependency)."""
    cols = ["truth", *map(str, table.columns)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for truth, row in table.iterrows():
        lines.append("| " + " | ".join([str(truth), *map(str, row.tolist())]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("validation/results/linearity_confusion.jsonl"))
    p.add_argument("--report", type=Path)
    p.add_argument("--sampler", choices=("pymc", "nutpie"), default=None,
                   help="NUTS of every fit (default: the package's default)")
    p.add_argument("--points", type=int, default=N_POINTS,
                   help=f"points per task (default {N_POINTS})")
    args = p.parse_args(argv)
    if args.report:
        print(markdown(report(args.report)))
        return 0
    run(args.sets, args.seed, args.out, args.sampler, args.points)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
