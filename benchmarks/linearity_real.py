"""``bs.linearity_check`` on real data: Pythia (accuracy vs LAMBADA log-perplexity), the
OLMo ladder (loss vs loss) and OpenCLIP (accuracy vs ImageNet accuracy). Writes the per-task
tables and figures used by docs/linearity.md.

Subsets (documented in docs/linearity.md) keep each run within minutes on a shared 2-core
machine::

    nice -n 10 python benchmarks/linearity_real.py pythia --tasks arc_easy piqa sciq \
        --standard-only --out docs/linearity_pythia
    nice -n 10 python benchmarks/linearity_real.py olmo --every 16 --settings grouped \
        --shapes linear quadratic hockey_stick --out docs/linearity_olmo
    nice -n 10 python benchmarks/linearity_real.py openclip --settings grouped \
        --out docs/linearity_openclip

Each run fits every shape with ``group=`` (checkpoints of one model / one training run, or
models sharing pretraining data, are not independent evidence: a random intercept and slope per
group) and, unless ``--settings grouped``, without it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import pandas as pd

import bayesslope as bs

SAMPLING = {"draws": 500, "tune": 500, "chains": 2, "cores": 1}  # target_accept: the default


def pythia_frame(tasks, standard_only: bool = False) -> pd.DataFrame:
    df = bs.load_dataset("pythia_tasks")
    df = df[(df["shots"] == 0) & df["task"].isin(tasks)]
    if standard_only:  # the 8 standard (not deduplicated) models, all 27 checkpoints each
        df = df[~df["deduped"].astype(bool)]
    return df.reset_index(drop=True)


def olmo_frame(every: int, tasks) -> pd.DataFrame:
    df = bs.load_dataset("olmo_ladder")
    if tasks:
        df = df[df["task"].isin(tasks)]
    # every `every`-th logged step of each run (the loss curves are smooth between them)
    steps = df.groupby("run")["step"].transform(lambda s: s.rank(method="dense"))
    return df[(steps - 1) % every == 0].reset_index(drop=True)


OPENCLIP_TASKS = ("ImageNet v2", "ImageNet-R", "ObjectNet", "Flickr", "SVHN",
                  "KITTI Vehicle Distance", "CLEVR Distance", "PatchCamelyon")


def openclip_frame(tasks) -> pd.DataFrame:
    df = bs.load_dataset("openclip")
    return df[df["task"].isin(tasks)].reset_index(drop=True)


def shape_diagnostics(fit) -> dict:
    """Divergences, max R-hat, min bulk ESS, sampling time and NUTS steps of one fit."""
    diag = fit.diagnostics()
    post = fit.posterior
    stats = post["sample_stats"].to_dataset()
    steps = stats["n_steps"].values if "n_steps" in stats else None
    depth = stats["tree_depth"].values if "tree_depth" in stats else None
    return {"divergences": int(diag.attrs["divergences"]),
            "r_hat_max": float(diag["r_hat_max"].max()),
            "ess_bulk_min": float(diag["ess_bulk_min"].min()) if "ess_bulk_min" in diag
            else None,
            "sampling_s": post["posterior"].attrs.get("sampling_time"),
            "steps_per_draw": None if steps is None else float(steps.mean()),
            "tree_depth_max": None if depth is None else int(depth.max())}


def run(name: str, df: pd.DataFrame, group: str, shapes, out: Path,
        settings=("grouped", "independent"), **kw) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    record = {"dataset": name, "rows": len(df), "tasks": int(df["task"].nunique()),
              "shapes": list(shapes), "sampling": SAMPLING, "fits": {}}
    for label, extra in (("grouped", {"group": group}), ("independent", {})):
        if label not in settings:
            continue
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check = bs.linearity_check(df, shapes=shapes, random_seed=20261201,
                                       check_dependence=False, **SAMPLING, **kw, **extra)
        wall = time.perf_counter() - t0
        table = check.table()
        table.to_csv(out / f"table_{label}.csv")
        fig = check.plot()
        fig.savefig(out / f"shapes_{label}.png", dpi=110, bbox_inches="tight")
        diag = {s: shape_diagnostics(f) for s, f in check.fits.items()}
        record["fits"][label] = {"wall_s": round(wall, 1), "substituted": check.substituted,
                                 "compare": check.compare().round(2).astype(str).to_dict(),
                                 "diagnostics": diag,
                                 "warnings": sorted({str(w.category.__name__) for w in caught}),
                                 "uptime": os.popen("uptime").read().strip(),
                                 # docs/linearity.md quotes these (tests/test_docs_linearity.py)
                                 "table": json.loads(table.reset_index().to_json(
                                     orient="records", double_precision=6))}
        print(label, f"{wall:.0f} s", flush=True)
        print(table.round(3).to_string(), flush=True)
    (out / "record.json").write_text(json.dumps(record, indent=1, default=str))
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", choices=("pythia", "olmo", "openclip"))
    p.add_argument("--tasks", nargs="*", default=None)
    p.add_argument("--every", type=int, default=8, help="OLMo: keep every n-th step per run")
    p.add_argument("--standard-only", action="store_true",
                   help="Pythia: only the 8 models trained on the standard (not deduplicated) Pile")
    p.add_argument("--shapes", nargs="+", default=["linear", "sigmoid", "hockey_stick"])
    p.add_argument("--settings", nargs="+", default=["grouped", "independent"],
                   choices=("grouped", "independent"))
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.dataset == "pythia":
        tasks = args.tasks or ["arc_easy", "piqa", "sciq"]
        df = pythia_frame(tasks, args.standard_only)
        run("pythia_tasks (zero-shot)", df, "model", tuple(args.shapes),
            args.out, settings=args.settings, chance="chance")
    elif args.dataset == "openclip":
        # accuracies in [0, 1] without a chance column: the sigmoid's floor is 0; models
        # sharing pretraining data are grouped
        df = openclip_frame(args.tasks or OPENCLIP_TASKS)
        run("openclip (8 tasks)", df, "pretrain_family", tuple(args.shapes), args.out,
            settings=args.settings, chance=0.0)
    else:
        df = olmo_frame(args.every, args.tasks)
        run("olmo_ladder", df, "run", tuple(args.shapes), args.out,
            settings=args.settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
