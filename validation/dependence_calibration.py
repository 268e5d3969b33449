"""Calibration of the residual dependence check (issue 22): false alarms, detection, inflation.

Simulated "checkpoints of models" data: ``T`` tasks, ``G`` models per task, ``m`` rows
(checkpoints) per model; x (a loss, lower is better) has a per-model centre plus a
per-checkpoint progression; y = task line + nested (task x model) random intercept and
slope + noise. Two parts:

``rates``
    ``--sets`` data sets without a group effect and ``--sets`` with a nested random
    intercept of intraclass correlation ``--icc`` (share of the noise variance), each
    fitted without ``group=`` (collapsed Gaussian, nutpie, compiled once). The frame has
    two candidate columns: ``model`` (the true unit; x clusters by it) and ``lab`` (labels
    drawn at random per row). Records whether any DependenceWarning fired and which
    columns were flagged: the false-alarm rate (null) and the detection rate (effect).

``inflation``
    Per scenario (how x varies: between models, within models, both; with or without a
    random slope), ``--sets`` data sets fitted twice: without ``group=`` and with
    ``group="model", group_nesting="nested"`` (the model the warning recommends). Records
    the check's predicted factor and the observed ratio of slope posterior sds
    (grouped / ungrouped, per task), plus the ungrouped residuals so other predictors can
    be evaluated without refitting.

Usage (repository root; results go to validation/results/dependence_<part>.json)::

    nice -n 10 .venv/bin/python -m validation.dependence_calibration rates --sets 200
    nice -n 10 .venv/bin/python -m validation.dependence_calibration inflation --sets 6

``report`` prints the summary tables of validation/DEPENDENCE.md from the JSON files.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 20261201
FIT = dict(chains=2, draws=400, tune=400, cores=1, progressbar=False)

# x structure and group effects per inflation scenario. sd_between: spread of the models'
# x centres; progression: x range covered by one model's checkpoints; icc: share of the
# noise variance in the nested random intercept; slope_sd: sd of the nested random slope.
_SMALL = dict(n_tasks=4, n_groups=8, per_group=8)  # the grouped (full-model) fits are slow
SCENARIOS = {
    "between": dict(sd_between=0.5, progression=0.05, icc=0.5, slope_sd=0.0, **_SMALL),
    "within": dict(sd_between=0.0, progression=1.0, icc=0.5, slope_sd=0.0, **_SMALL),
    "mixed": dict(sd_between=0.3, progression=0.6, icc=0.5, slope_sd=0.0, **_SMALL),
    "mixed_slopes": dict(sd_between=0.3, progression=0.6, icc=0.3, slope_sd=0.03, **_SMALL),
}


def simulate(rng, *, n_tasks=6, n_groups=8, per_group=10, sd_between=0.3, progression=0.6,
             icc=0.0, slope_sd=0.0, noise_sd=0.02) -> pd.DataFrame:
    """Checkpoints of models x tasks; see the module docstring."""
    centre = 3.0 + rng.normal(0.0, sd_between, n_groups) if sd_between > 0 \
        else np.full(n_groups, 3.0)
    steps = np.linspace(progression / 2, -progression / 2, per_group)
    rows = []
    for t in range(n_tasks):
        a, b = rng.normal(0.6, 0.05), rng.normal(0.1, 0.03)
        u = rng.normal(0.0, noise_sd * np.sqrt(icc), n_groups)
        v = rng.normal(0.0, slope_sd, n_groups) if slope_sd > 0 else np.zeros(n_groups)
        for g in range(n_groups):
            x = centre[g] + steps + rng.normal(0.0, 0.01, per_group)
            y = (a + u[g] - (b + v[g]) * (x - 3.0)
                 + rng.normal(0.0, noise_sd * np.sqrt(1.0 - icc), per_group))
            rows.append(pd.DataFrame({"task": f"t{t}", "model": f"m{g}", "x": x, "y": y}))
    df = pd.concat(rows, ignore_index=True)
    df["lab"] = rng.choice([f"l{k}" for k in range(n_groups)], len(df))
    return df


def _fit(df, **kw):
    import bayesslope as bs

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = bs.fit_hierarchical(df, x_better="lower", y_better="higher", **FIT, **kw)
    dep = [str(w.message) for w in rec if issubclass(w.category, bs.DependenceWarning)]
    return fit, dep


def run_rates(sets: int, icc: float, seed: int) -> dict:
    out = {"sets": sets, "icc": icc, "seed": seed, "fit": FIT, "runs": []}
    t0 = time.time()
    for effect in (0.0, icc):
        rng = np.random.default_rng([seed, int(effect * 1000)])
        for k in range(sets):
            df = simulate(rng, icc=effect)
            fit, dep = _fit(df, random_seed=seed + k, sampler="nutpie")
            table = fit.dependence()
            out["runs"].append({
                "icc_true": effect, "k": k, "warned": bool(dep),
                "flagged": [str(c) for c in table.index[table["flagged"]]],
                "p_model": float(table.loc["model", "p_value"]),
                "p_lab": float(table.loc["lab", "p_value"]),
                "icc_model": float(table.loc["model", "icc"]),
            })
            if k % 20 == 0:
                print(f"icc {effect}: {k}/{sets} ({time.time() - t0:.0f} s)", flush=True)
    out["wall_s"] = time.time() - t0
    return out


def run_inflation(sets: int, seed: int, scenarios, checkpoint: Path | None = None) -> dict:
    from bayesslope.dependence import posterior_residuals

    out = {"sets": sets, "seed": seed, "fit": FIT, "scenarios": {}, "runs": []}
    t0 = time.time()
    for name in scenarios:
        params = SCENARIOS[name]
        out["scenarios"][name] = params
        rng = np.random.default_rng([seed, list(SCENARIOS).index(name)])
        for k in range(sets):
            df = simulate(rng, **params)
            plain, dep = _fit(df, random_seed=seed + k, sampler="nutpie")
            grouped, _ = _fit(df, random_seed=seed + k, group="model", group_nesting="nested")
            sd_ratio = grouped.summary()["sd"] / plain.summary()["sd"]
            table = plain.dependence()
            d = plain.design
            codes = pd.Series(df["model"]).astype("category").cat.codes.to_numpy()
            from bayesslope.variant_data import _positions

            pos = _positions(df, d)
            out["runs"].append({
                "scenario": name, "k": k, "warned": bool(dep),
                "predicted": float(table.loc["model", "inflation"]),
                "icc": float(table.loc["model", "icc"]),
                "sd_ratio": sd_ratio.to_dict(),
                "sd_ratio_median": float(np.median(sd_ratio)),
                "residuals": posterior_residuals(plain.posterior["posterior"], d,
                                                 plain.variants).tolist(),
                "xc": d.xc.tolist(), "task_idx": d.task_idx.tolist(),
                "codes": codes[pos].tolist(),
            })
            if checkpoint is not None:  # after every set: an interrupted run keeps its sets
                checkpoint.write_text(json.dumps({**out, "wall_s": time.time() - t0}))
            print(f"{name} {k}: predicted {table.loc['model', 'inflation']:.2f}, observed "
                  f"{np.median(sd_ratio):.2f} ({time.time() - t0:.0f} s)", flush=True)
    out["wall_s"] = time.time() - t0
    return out


def run_predicted(sets: int, seed: int, scenarios) -> dict:
    """The ungrouped fits of ``inflation`` alone (same data and seeds): the predicted factor."""
    out = {"sets": sets, "seed": seed, "runs": []}
    for name in scenarios:
        rng = np.random.default_rng([seed, list(SCENARIOS).index(name)])
        for k in range(sets):
            df = simulate(rng, **SCENARIOS[name])
            plain, dep = _fit(df, random_seed=seed + k, sampler="nutpie")
            table = plain.dependence()
            out["runs"].append({"scenario": name, "k": k, "warned": bool(dep),
                                "predicted": float(table.loc["model", "inflation"]),
                                "icc": float(table.loc["model", "icc"])})
            print(f"{name} {k}: predicted {table.loc['model', 'inflation']:.2f}", flush=True)
    return out


def report() -> None:
    from scipy import stats

    path = RESULTS / "dependence_rates.json"
    if path.exists():
        res = json.loads(path.read_text())
        runs = pd.DataFrame(res["runs"])
        print(f"rates: {res['sets']} sets per arm, wall {res['wall_s'] / 60:.1f} min")
        for effect, grp in runs.groupby("icc_true"):
            k, n = int(grp["warned"].sum()), len(grp)
            lo, hi = stats.binomtest(k, n).proportion_ci(0.95)
            flagged_model = np.mean([("model" in f) for f in grp["flagged"]])
            flagged_lab = np.mean([("lab" in f) for f in grp["flagged"]])
            print(f"  ICC {effect}: warned {k}/{n} = {k / n:.3f} (95% CI {lo:.3f}-{hi:.3f}); "
                  f"'model' flagged {flagged_model:.3f}, 'lab' flagged {flagged_lab:.3f}; "
                  f"median ICC estimate {grp['icc_model'].median():.2f}")
    files = sorted(RESULTS.glob("dependence_inflation*.json"))
    if files:
        parts = [json.loads(f.read_text()) for f in files]
        res = {"sets": "/".join(str(p["sets"]) for p in parts),
               "wall_s": sum(p["wall_s"] for p in parts)}
        runs = pd.DataFrame([r for p in parts for r in p["runs"]])
        # The factor of the code as it is now, from the stored residuals (no refit).
        from bayesslope.dependence import slope_inflation

        runs["predicted"] = [
            float(np.nanmedian(slope_inflation(np.asarray(r.residuals), np.asarray(r.xc),
                                               np.asarray(r.task_idx), np.asarray(r.codes))))
            for r in runs.itertuples()]
        runs["rel_err"] = runs["predicted"] / runs["sd_ratio_median"] - 1
        print(f"inflation: {res['sets']} sets per scenario, wall {res['wall_s'] / 60:.1f} min")
        print("| scenario | sets | warned | observed sd ratio (median over sets) | predicted | "
              "predicted / observed - 1: median (min, max) | within 25% |")
        print("|---|---|---|---|---|---|---|")
        for name, grp in runs.groupby("scenario", sort=False):
            err = grp["rel_err"]
            print(f"| {name} | {len(grp)} | {int(grp['warned'].sum())} | "
                  f"{grp['sd_ratio_median'].median():.2f} | {grp['predicted'].median():.2f} | "
                  f"{err.median():+.2f} ({err.min():+.2f}, {err.max():+.2f}) | "
                  f"{int((err.abs() <= 0.25).sum())}/{len(grp)} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["rates", "inflation", "predicted", "report"])
    parser.add_argument("--sets", type=int, default=200)
    parser.add_argument("--icc", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    if args.part == "report":
        report()
        return 0
    out = RESULTS / f"dependence_{args.part}{args.tag}.json"
    if args.part == "predicted":
        res = run_predicted(args.sets, args.seed, args.scenarios)
    elif args.part == "rates":
        res = run_rates(args.sets, args.icc, args.seed)
    else:
        res = run_inflation(args.sets, args.seed, args.scenarios, checkpoint=out)
    res["command"] = ("python -m validation.dependence_calibration " + args.part
                      + f" --sets {args.sets}"
                      + (f" --icc {args.icc}" if args.part == "rates" else "")
                      + (f" --scenarios {' '.join(args.scenarios)}"
                         if args.part in ("inflation", "predicted") else "")
                      + (f" --tag {args.tag}" if args.tag else ""))
    out.write_text(json.dumps(res, indent=0))
    report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
