"""Ranks and negative-transfer decisions for the 57 MMLU subjects of the Pythia evaluations.

Data: /work/shared/data/pythia_lambada/pythia_lambada_vs_mmlu.csv (see its README): x = LAMBADA
log-perplexity (lower is better), y = 5-shot MMLU accuracy per subject, 16 Pythia models x 15
checkpoints. Kept: step >= 13000 (the README's linear range) and not the flagged pythia-2.8b
rows (a duplicated checkpoint upload).

Two fits of the Gaussian model with one noise sd per subject:

- ``group="model"``: a random intercept and slope per Pythia model, shared by all subjects
  (the checkpoints of one model are a trajectory, not independent evidence);
- no group: every checkpoint independent (the usual, over-confident analysis), for contrast.

Writes ``docs/decisions_mmlu_<fit>_every<N>.json`` (all numbers quoted in docs/decisions.md)
and ``docs/img/decisions_mmlu_ranks_<fit>_every<N>.png``. Usage (from the repository root)::

    nice -n 10 .venv/bin/python docs/scripts/decisions_mmlu.py [--tasks N] [--draws D]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("/work/shared/data/pythia_lambada/pythia_lambada_vs_mmlu.csv")
ROPE = 0.01  # accuracy per nat of LAMBADA log-perplexity: 1 point per nat is "practically zero"
LEVEL = 0.05
NAIVE = 0.9


def load(every: int = 1) -> pd.DataFrame:
    """The MMLU frame, linear range, flagged rows out; every ``every``-th subject by name."""
    df = pd.read_csv(DATA)
    df = df[(df["step"] >= 13000) & df["flag"].isna()].copy()
    df["task"] = df["task"].str.removeprefix("hendrycksTest-")
    keep = sorted(df["task"].unique())[::every]
    df = df[df["task"].isin(keep)]
    return df


def fit(df: pd.DataFrame, group: str | None, args) -> tuple[object, float]:
    """One fit (one noise sd per subject); prints bayesslope's warnings; returns its wall time."""
    import bayesslope as bs

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = bs.fit_hierarchical(df, x="x", y="y", task="task", x_better="lower",
                                y_better="higher", per_task_sigma=True, group=group,
                                draws=args.draws, tune=args.tune, chains=args.chains,
                                cores=args.cores, random_seed=args.seed)
    for w in caught:
        if issubclass(w.category, (bs.SamplingWarning, bs.WeakDataWarning)):
            print(f"  {w.category.__name__}: {w.message}")
    return f, time.perf_counter() - t0


def decisions(f) -> dict:
    """The tables docs/decisions.md quotes."""
    summ = f.summary(rope=ROPE, decision_prob=0.95)
    p_neg = f.p_negative_transfer()
    ranks = f.rank_tasks(k=5)
    neg = f.negative_tasks(LEVEL)
    naive = p_neg[p_neg > NAIVE].sort_values(ascending=False)
    diag = f.diagnostics()
    return {
        "ranks_top10": ranks.head(10).round(4).reset_index().to_dict(orient="records"),
        "negative_tasks": neg.round(4).reset_index().to_dict(orient="records"),
        "naive_p_gt_0.9": {k: round(float(v), 4) for k, v in naive.items()},
        "naive_expected_false_sign_rate": round(float((1 - naive).mean()), 4)
        if len(naive) else None,
        "n_p_negative_gt_0.5": int((p_neg > 0.5).sum()),
        "decision_counts": summ["decision"].value_counts().to_dict(),
        "rope_negative": summ.index[summ["decision"] == "negative"].tolist(),
        "population": f.population().round(5)["mean"].to_dict(),
        "max_r_hat": round(float(diag["r_hat_max"].max()), 4),
        "min_ess_bulk": round(float(diag["ess_bulk_min"].min()), 1),
        "divergences": int(diag.attrs["divergences"]),
    }


def main(argv=None) -> int:
    """Fit, tabulate, plot; see the module docstring."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=1,
                    help="keep every N-th subject in alphabetical order (default all)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--fits", nargs="+", default=["grouped", "independent"],
                    choices=["grouped", "independent"])
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    df = load(args.every)
    record = {"command": "nice -n 10 .venv/bin/python docs/scripts/decisions_mmlu.py "
                         + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
              "n_rows": len(df), "n_tasks": int(df["task"].nunique()),
              "n_models": int(df["model"].nunique()),
              "tasks": sorted(df["task"].unique()), "rope": ROPE, "level": LEVEL,
              "settings": vars(args)}
    for name in args.fits:
        print(f"fitting {name} ...", flush=True)
        f, wall = fit(df, "model" if name == "grouped" else None, args)
        out = {**record, "fit": name, "group": "model" if name == "grouped" else None,
               "wall_s": round(wall, 1), **decisions(f)}
        print(json.dumps(out, indent=1, default=str), flush=True)
        tag = f"{name}_every{args.every}"
        (ROOT / "docs" / f"decisions_mmlu_{tag}.json").write_text(
            json.dumps(out, indent=1, default=str))
        fig = f.plot_ranks(k=5)
        fig.savefig(ROOT / "docs" / "img" / f"decisions_mmlu_ranks_{tag}.png", dpi=110,
                    bbox_inches="tight")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
