r"""Task covariates on real data (docs/task_covariates.md, issue 17 deliverable 5).

Three questions, each one ``--part``:

- ``openclip``: do the OpenCLIP evaluation groups (``task_group``: classification,
  retrieval, VTAB, distribution shift, ...) have different transfer slopes from ImageNet
  zero-shot accuracy? ``task_covariates="task_group"``, one point per model.
- ``shots``: is the LAMBADA -> task slope different at 5 shots than at 0 shots? Pythia
  core tasks, task units ``<task>@<shots>`` with ``shots`` as a categorical covariate,
  checkpoints >= step 13000 (the dataset README's linear range), flagged rows out,
  ``group="model"`` (the checkpoints of one model are one trajectory, not independent
  evidence).
- ``shots_paired``: the same with the base task as a second (categorical) covariate, so
  that the shots effect is estimated within task (each task at both shot counts).
- ``mmlu``: which MMLU subjects have negative transfer from LAMBADA: the multiplicity-aware
  ``negative_tasks`` list against the naive P(negative) > 0.9 list, ``group="model"``,
  every ``--mmlu-every``-th subject by name (the full 57 costs hours on 2 cores).
- ``mmlu_independent``: the same without ``group`` (every checkpoint independent
  evidence: the over-confident analysis), for contrast; collapsed, so all subjects are cheap.

Every fit has one noise sd per task (``per_task_sigma=True``: metrics and test-set sizes
differ); fits use ``sampler="pymc"``.

Writes ``docs/task_covariates.json`` (one key per part, merged with what is there) and
``docs/img/task_covariates_<part>.png``. Usage (from the repository root; a long run, so
through the shared lock)::

    flock /work/notes/heavy.lock nice -n 5 .venv/bin/python \\
        docs/scripts/task_covariates_real.py --part openclip shots
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
OUT_JSON = ROOT / "docs" / "task_covariates.json"
LEVEL = 0.05  # max expected false-sign rate of the negative list
NAIVE = 0.9  # the naive rule: call a task negative when P(negative) > 0.9


def _fit(df: pd.DataFrame, args, **kw):
    """One fit; prints bayesslope's warnings; returns (fit, wall seconds, warnings)."""
    import bayesslope as bs

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit_hierarchical(df, x="x", y="y", task="task", draws=args.draws,
                                  sampler="pymc",
                                  tune=args.tune, chains=args.chains, cores=args.cores,
                                  target_accept=args.target_accept,
                                  random_seed=args.seed, **kw)
    notes = [f"{w.category.__name__}: {w.message}" for w in caught
             if issubclass(w.category, (bs.SamplingWarning, bs.WeakDataWarning,
                                        bs.DependenceWarning))]
    for n in notes:
        print("  " + n, flush=True)
    return fit, round(time.perf_counter() - t0, 1), notes


def _records(table: pd.DataFrame, digits: int = 4) -> list[dict]:
    out = table.reset_index()
    return json.loads(out.round(digits).to_json(orient="records"))


def _diagnostics(fit) -> dict:
    diag = fit.diagnostics()
    return {"max_r_hat": round(float(diag["r_hat_max"].max()), 4),
            "min_ess_bulk": round(float(diag["ess_bulk_min"].min()), 1),
            "divergences": int(diag.attrs["divergences"])}


def _covariate_record(fit) -> dict:
    """Covariate effects, variance explained, P(negative) of a new task per level."""
    eff = fit.covariate_effects(ci_prob=0.9)
    r2 = fit.variance_explained(ci_prob=0.9)
    cov = fit.covariates
    by_level = {}
    for name, levels in cov.levels.items():
        for level in levels:
            pop = fit.population(0.9, covariates={name: level})
            row = pop.loc["slope_mu_at_covariates"]
            by_level[f"{name}={level}"] = {
                "slope_mu_mean": round(float(row["mean"]), 5),
                "slope_mu_eti90": [round(float(row["eti90_lb"]), 5),
                                   round(float(row["eti90_ub"]), 5)],
                "p_negative_new_task": round(float(pop.loc["p_negative_new_task", "mean"]), 4),
            }
    return {"covariate_effects": _records(eff, 5), "variance_explained": _records(r2, 4),
            "new_task_by_level": by_level, "reference_levels":
            {k: v[0] for k, v in cov.levels.items()}}


def part_openclip(args) -> dict:
    """``task_group`` as a covariate of the ImageNet -> task slope (OpenCLIP)."""
    import bayesslope as bs

    df = bs.load_dataset("openclip")
    groups = df.groupby("task")["task_group"].first()
    fit, wall, notes = _fit(df, args, x_better="higher", y_better="higher",
                            per_task_sigma=True, task_covariates="task_group")
    ranks = fit.rank_tasks(k=3, ci_prob=0.9)
    fig = fit.plot_population(covariates={g: {"task_group": g}
                                           for g in fit.covariates.levels["task_group"]},
                              style="two-column")
    fig.savefig(ROOT / "docs" / "img" / "task_covariates_openclip.png", dpi=150,
                bbox_inches="tight")
    return {"n_rows": len(df), "n_tasks": int(df["task"].nunique()),
            "n_models": int(df["model"].nunique()),
            "tasks_per_group": groups.value_counts().sort_index().to_dict(),
            "wall_s": wall, "warnings": notes, **_diagnostics(fit), **_covariate_record(fit),
            "flattest5": _records(ranks.head(5)[["mean_rank", "p_flattest", "p_negative",
                                                 "slope_mean"]]),
            "negative_tasks": _records(fit.negative_tasks(LEVEL))}


def shots_frame(step_every: int = 1) -> pd.DataFrame:
    """Pythia core tasks, one task unit per (task, shots); the linear range.

    LAMBADA accuracy is left out (x is LAMBADA perplexity: the same evaluation). Every
    ``step_every``-th checkpoint from the last one (143000) down to step 13000.
    """
    import bayesslope as bs

    df = bs.load_dataset("pythia_tasks")
    df = df[(df["step"] >= 13000) & df["flag"].isna() & (df["task"] != "lambada_openai")]
    steps = sorted(df["step"].unique())[::-1][::step_every]
    df = df[df["step"].isin(steps)].copy()
    df["shots"] = df["shots"].map(lambda s: f"{int(s)}-shot")
    df["base_task"] = df["task"]
    df["task"] = df["task"] + "@" + df["shots"]
    return df


def part_shots(args) -> dict:
    """0- vs 5-shot as a covariate of the LAMBADA -> task slope (Pythia)."""
    df = shots_frame(args.step_every)
    fit, wall, notes = _fit(df, args, x_better="lower", y_better="higher",
                            per_task_sigma=True, task_covariates="shots", group="model")
    summ = fit.summary()
    paired = (summ["mean"].rename("slope_mean").to_frame()
              .assign(base_task=lambda t: t.index.str.split("@").str[0],
                      shots=lambda t: t.index.str.split("@").str[1])
              .pivot(index="base_task", columns="shots", values="slope_mean"))
    fig = fit.plot_population(covariates={s: {"shots": s}
                                           for s in fit.covariates.levels["shots"]},
                              style="two-column")
    fig.savefig(ROOT / "docs" / "img" / "task_covariates_shots.png", dpi=150,
                bbox_inches="tight")
    return {"n_rows": len(df), "n_task_units": int(df["task"].nunique()),
            "steps": sorted(int(s) for s in df["step"].unique()),
            "n_models": int(df["model"].nunique()), "wall_s": wall, "warnings": notes,
            **_diagnostics(fit), **_covariate_record(fit),
            "slope_mean_by_task_and_shots": _records(paired.rename_axis(columns=None), 5)}


def part_shots_paired(args) -> dict:
    """The same with the base task as a second covariate: the shots effect within task."""
    df = shots_frame(args.step_every)
    fit, wall, notes = _fit(df, args, x_better="lower", y_better="higher",
                            per_task_sigma=True, task_covariates=["shots", "base_task"],
                            group="model")
    eff = fit.covariate_effects(ci_prob=0.9)
    return {"n_rows": len(df), "n_task_units": int(df["task"].nunique()),
            "steps": sorted(int(s) for s in df["step"].unique()),
            "n_models": int(df["model"].nunique()), "wall_s": wall, "warnings": notes,
            **_diagnostics(fit),
            "shots_effect": _records(eff.loc[["shots[5-shot]"]], 5),
            "variance_explained": _records(fit.variance_explained(ci_prob=0.9), 4)}


def part_mmlu(args, group: str | None = "model") -> dict:
    """Multiplicity-aware negative list vs the naive P > 0.9 list (MMLU subjects)."""
    import bayesslope as bs

    df = bs.load_dataset("pythia_mmlu")
    df = df[(df["step"] >= 13000) & df["flag"].isna()].copy()
    keep = sorted(df["task"].unique())[::args.mmlu_every]
    steps = sorted(df["step"].unique())[::-1][::args.step_every]
    df = df[df["task"].isin(keep) & df["step"].isin(steps)]
    fit, wall, notes = _fit(df, args, x_better="lower", y_better="higher",
                            per_task_sigma=True, group=group)
    p_neg = fit.p_negative_transfer().sort_values(ascending=False)
    naive = p_neg[p_neg > NAIVE]
    listed = fit.negative_tasks(LEVEL)
    if group is not None:
        fig = fit.plot_ranks(k=5)
        fig.savefig(ROOT / "docs" / "img" / "task_covariates_mmlu_ranks.png", dpi=150,
                    bbox_inches="tight")
    return {"group": group, "n_rows": len(df), "n_tasks": len(keep), "every": args.mmlu_every,
            "steps": sorted(int(s) for s in df["step"].unique()),
            "n_models": int(df["model"].nunique()), "wall_s": wall, "warnings": notes,
            **_diagnostics(fit), "level": LEVEL, "naive_threshold": NAIVE,
            "negative_tasks": _records(listed),
            "naive_list": {k: round(float(v), 4) for k, v in naive.items()},
            "naive_expected_false_sign_rate":
                round(float((1 - naive).mean()), 4) if len(naive) else None,
            "top10_p_negative": {k: round(float(v), 4) for k, v in p_neg.head(10).items()}}


PARTS = {"openclip": part_openclip, "shots": part_shots, "shots_paired": part_shots_paired,
         "mmlu": part_mmlu,
         "mmlu_independent": lambda args: part_mmlu(args, group=None)}


def main(argv=None) -> int:
    """Run the chosen parts; merge their records into docs/task_covariates.json."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", nargs="+", choices=list(PARTS), default=["openclip", "shots"])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--target-accept", type=float, default=0.9)
    ap.add_argument("--mmlu-every", type=int, default=3)
    ap.add_argument("--step-every", type=int, default=1,
                    help="shots and mmlu parts: every N-th checkpoint from the last one down "
                         "to step 13000")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    record = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {}
    argv_used = argv if argv is not None else sys.argv[1:]
    for part in args.part:
        print(f"part {part} ...", flush=True)
        out = PARTS[part](args)
        out["command"] = (".venv/bin/python docs/scripts/task_covariates_real.py "
                          + " ".join(argv_used))
        out["settings"] = {k: v for k, v in vars(args).items() if k != "part"}
        out["load_average"] = [round(x, 2) for x in np.array(__import__("os").getloadavg())]
        record[part] = out
        OUT_JSON.write_text(json.dumps(record, indent=1, default=str) + "\n")
        print(json.dumps(out, indent=1, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
