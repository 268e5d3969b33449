"""Averaged accuracies on real data: the MMLU average of Pythia with ``counts="average"``.

Writes ``docs/averaged_counts_mmlu.json``, the record of the numbers quoted in docs/model.md
("Averaged accuracies") and docs/variants.md:

1. The variance-matching size of MMLU's plain mean over its 57 subjects,
   ``n_eff = J^2 / sum(1 / n_j)``, against the total ``N`` (seconds).
2. With ``--fit``: one ``fit_hierarchical`` call with ``likelihood="binomial"``,
   ``link="probit"``, ``chance="chance"``, ``counts="average"`` on the 5-shot Pythia
   checkpoints (16 models x 15 steps): six whole-count tasks (arc_easy, arc_challenge, piqa,
   sciq, winogrande, logiqa; the tasks of docs/variants.md) and ``mmlu_avg``, the plain mean
   of the 57 MMLU subjects (y * n not whole), with ``n_eval = n_eff``. Wall time,
   diagnostics and the slope table are recorded. ``--compare-total`` adds the same fit with
   MMLU's total ``N`` as its n_eval (what passing the test-set size would claim).

Usage (a long run: through the heavy lock, see /work/notes/COMMON.md)::

    python docs/scripts/averaged_counts_mmlu.py --fit [--compare-total] [--draws 500]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "pythia_lambada"
OUT = HERE.parent / "averaged_counts_mmlu.json"
TASKS = ("arc_easy", "arc_challenge", "piqa", "sciq", "winogrande", "logiqa")


def mmlu_sizes(mmlu: pd.DataFrame) -> dict:
    """Subject sizes of MMLU, their total and the plain mean's variance-matching size."""
    n = mmlu.groupby("task")["n_eval_examples"].first()
    j = len(n)
    n_eff = j**2 / float(np.sum(1.0 / n))
    return {"subjects": j, "n_total": int(n.sum()), "n_min": int(n.min()), "n_max": int(n.max()),
            "n_eff": n_eff, "total_over_eff": float(n.sum() / n_eff),
            "sd_ratio": float(np.sqrt(n.sum() / n_eff))}


def frame(mmlu: pd.DataFrame, tasks: pd.DataFrame, n_mmlu: int) -> pd.DataFrame:
    """The six 5-shot tasks plus ``mmlu_avg`` (plain mean over subjects), same checkpoints."""
    keys = ["model", "step"]
    avg = (mmlu.groupby(keys).agg(x=("x", "first"), y=("y", "mean"), subjects=("task", "size"))
           .reset_index())
    assert (avg["subjects"] == mmlu["task"].nunique()).all()
    avg = avg.assign(task="mmlu_avg", chance=0.25, n_eval_examples=n_mmlu)
    five = tasks[(tasks["shots"] == 5) & tasks["task"].isin(TASKS)]
    five = five.merge(avg[keys], on=keys)
    cols = ["model", "step", "x", "task", "y", "chance", "n_eval_examples"]
    return pd.concat([five[cols], avg[cols]], ignore_index=True)


def fit_record(df: pd.DataFrame, args) -> dict:
    """One fit of ``df``: wall time, diagnostics and the slope table."""
    import bayesslope as bs

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit_hierarchical(
            df, x_better="lower", y_better="higher", n_eval="n_eval_examples",
            counts="average", likelihood="binomial", link="probit", chance="chance",
            x_ref=2.5, draws=args.draws, tune=args.tune, chains=args.chains,
            target_accept=0.95, random_seed=args.seed, check_dependence=False)
    wall = time.perf_counter() - t0
    table = fit.summary(ci_prob=0.9)
    stats = fit.posterior["sample_stats"]
    from bayesslope.diagnostics import sampling_diagnostics

    diag = sampling_diagnostics(fit.posterior, ["intercept", "slope", "slope_mu"])
    return {
        "wall_s": wall,
        "n_obs": int(len(df)),
        "divergences": int(stats["diverging"].sum()),
        "r_hat_max": float(diag["r_hat_max"].max()),
        "ess_bulk_min": float(diag["ess_bulk_min"].min()),
        "warnings": sorted({str(w.message)[:160] for w in caught}),
        "summary": [{"task": t, **{k: float(r[k]) for k in ("mean", "sd", "eti90_lb",
                                                               "eti90_ub", "p_negative")}}
                    for t, r in table.iterrows()],
    }


def main(argv=None) -> int:
    """Write the record (sizes; with ``--fit`` the fits)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit", action="store_true")
    p.add_argument("--compare-total", action="store_true")
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--tune", type=int, default=500)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=20261201)
    args = p.parse_args(argv)
    mmlu = pd.read_csv(DATA / "pythia_lambada_vs_mmlu.csv")
    rec = {"mmlu_sizes": mmlu_sizes(mmlu), "python": platform.python_version()}
    print(json.dumps(rec["mmlu_sizes"], indent=1))
    if args.fit:
        import bayesslope as bs

        tasks = pd.read_csv(DATA / "pythia_lambada_vs_tasks.csv")
        n_eff = int(round(rec["mmlu_sizes"]["n_eff"]))
        rec["settings"] = {"draws": args.draws, "tune": args.tune, "chains": args.chains,
                           "seed": args.seed, "target_accept": 0.95, "x_ref": 2.5,
                           "bayesslope": bs.__version__}
        rec["fit_n_eff"] = fit_record(frame(mmlu, tasks, n_eff), args)
        print("n_eff fit", rec["fit_n_eff"]["wall_s"], rec["fit_n_eff"]["summary"][-1])
        if args.compare_total:
            rec["fit_n_total"] = fit_record(
                frame(mmlu, tasks, rec["mmlu_sizes"]["n_total"]), args)
            print("N fit", rec["fit_n_total"]["wall_s"], rec["fit_n_total"]["summary"][-1])
    elif OUT.exists():  # keep the fits of an earlier --fit run
        old = json.loads(OUT.read_text())
        rec = {**old, **rec}
    OUT.write_text(json.dumps(rec, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
