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

The transfer matrix (:func:`simulate_units`: checkpoint units of models, 5 tasks):
``matrix_rates`` (false alarms and detection, least-squares lines and fits),
``matrix_inflation`` (the factor against refits with ``group="model"``), ``matrix_cost``
(share of a 992-pair fit) and ``matrix_pythia`` (the bundled demo as a matrix).

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


def run_inflation(sets: int, seed: int, scenarios, checkpoint: Path | None = None,
                  resume: bool = False) -> dict:
    """Ungrouped and grouped refits; sets interleaved over scenarios (set k of each, then
    k + 1), so a run stopped early keeps the scenarios balanced. With ``resume`` the sets
    already in ``checkpoint`` are kept and skipped (their data are still drawn, so the
    others are those of an uninterrupted run)."""
    from bayesslope.dependence import posterior_residuals

    out = {"sets": sets, "seed": seed, "fit": FIT, "scenarios": {}, "runs": []}
    done = set()
    if resume and checkpoint is not None and checkpoint.exists():
        old = json.loads(checkpoint.read_text())
        out["runs"] = old["runs"]
        out["wall_before_resume_s"] = old.get("wall_s", 0.0) + old.get(
            "wall_before_resume_s", 0.0)
        done = {(r["scenario"], r["k"]) for r in out["runs"]}
    t0 = time.time()
    rngs = {name: np.random.default_rng([seed, list(SCENARIOS).index(name)])
            for name in scenarios}
    for k in range(sets):
        for name in scenarios:
            params = SCENARIOS[name]
            out["scenarios"][name] = params
            df = simulate(rngs[name], **params)
            if (name, k) in done:
                continue
            t_set = time.time()
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
                "p_model": float(table.loc["model", "p_value"]),
                "sd_plain": plain.summary()["sd"].to_dict(),
                "sd_grouped": grouped.summary()["sd"].to_dict(),
                "wall_s": time.time() - t_set,
                "divergences_grouped": int(grouped.posterior["sample_stats"]["diverging"].sum()),
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


def simulate_units(rng, *, n_models=8, per_model=6, n_tasks=5, icc=0.0,
                   noise_sd=0.4) -> pd.DataFrame:
    """Long frame for the transfer matrix, one unit per checkpoint.

    Each unit has two latent abilities (so its residuals are correlated across the pairs
    it is in) and, per task, noise of sd ``noise_sd`` of which a share ``icc`` is a
    (model x task) offset shared by the model's checkpoints. Candidate columns: ``model``
    (the true grouping) and ``lab`` (a random label per unit, 6 levels).
    """
    n_units = n_models * per_model
    model = np.repeat(np.arange(n_models), per_model)
    z = rng.normal(size=(n_units, 2))
    load = np.column_stack([rng.uniform(0.6, 1.2, n_tasks), rng.normal(0, 0.5, n_tasks)])
    offset = rng.normal(0.0, noise_sd * np.sqrt(icc), (n_models, n_tasks))[model]
    y = (z @ load.T + offset
         + rng.normal(0.0, noise_sd * np.sqrt(1.0 - icc), (n_units, n_tasks)))
    lab = rng.permutation(np.arange(n_units) % 6)
    unit = np.array([f"m{g}@{u}" for u, g in enumerate(model)])
    return pd.DataFrame({
        "unit": np.repeat(unit, n_tasks), "task": np.tile([f"t{t}" for t in range(n_tasks)],
                                                          n_units),
        "y": y.ravel(), "model": np.repeat([f"m{g}" for g in model], n_tasks),
        "lab": np.repeat([f"l{v}" for v in lab], n_tasks)})


def _ols_table(design) -> pd.DataFrame:
    """Per-pair least-squares lines on the standardized scores: intercept 0, slope r."""
    return pd.DataFrame({"intercept_mean": np.zeros(design.n_pairs), "mean": design.r})


def run_matrix_rates(sets: int, fits: int, icc: float, seed: int) -> dict:
    """False alarms and detection of the transfer-matrix check.

    ``sets`` frames per arm (no offset; offset of intraclass correlation ``icc``) checked
    at their per-pair least-squares lines, each with the check's null (levels permuted
    over units, the same permutation in every pair) and, for comparison, the per-pair
    shuffle of the residuals (``clustering_table`` without ``units``); then ``fits``
    frames per arm fitted with ``fit_transfer_matrix`` (the check at the posterior mean
    lines, as users get it).
    """
    import bayesslope as bs
    from bayesslope.dependence import (
        check_transfer_dependence,
        clustering_table,
        pair_residuals,
        unit_candidate_columns,
    )
    from bayesslope.pairs.design import build_pair_design

    out = {"sets": sets, "fits": fits, "icc": icc, "seed": seed, "runs": [], "fit_runs": []}
    t0 = time.time()
    for effect in (0.0, icc):
        rng = np.random.default_rng([seed, int(effect * 1000), 1])
        for k in range(sets):
            df = simulate_units(rng, icc=effect)
            design = build_pair_design(df, unit="unit")
            table = check_transfer_dependence(df, design, _ols_table(design), "normal",
                                              random_seed=k)
            cands, _ = unit_candidate_columns(df, design)
            units = design.observation_units()
            naive = clustering_table(pair_residuals(design, _ols_table(design), "normal"),
                                     design.x, design.pair_idx,
                                     {c: v[units] for c, v in cands.items()}, rng=k)
            out["runs"].append({
                "icc_true": effect, "k": k,
                "flagged": [str(c) for c in table.index[table["flagged"]]],
                "naive_flagged": [str(c) for c in naive.index[naive["flagged"]]],
                "p_model": float(table.loc["model", "p_value"]),
                "p_lab": float(table.loc["lab", "p_value"]),
                "icc_model": float(table.loc["model", "icc"]),
            })
        rng = np.random.default_rng([seed, int(effect * 1000), 2])
        for k in range(fits):
            df = simulate_units(rng, icc=effect)
            with warnings.catch_warnings(record=True) as rec:
                warnings.simplefilter("always")
                tm = bs.fit_transfer_matrix(df, unit="unit", draws=400, tune=400, chains=2,
                                            random_seed=seed + k)
            table = tm.dependence()
            out["fit_runs"].append({
                "icc_true": effect, "k": k,
                "warned": any(issubclass(w.category, bs.DependenceWarning) for w in rec),
                "flagged": [str(c) for c in table.index[table["flagged"]]],
                "check_s": tm.spec["timings"]["dependence_s"],
            })
        print(f"matrix rates, icc {effect}: done ({time.time() - t0:.0f} s)", flush=True)
    out["wall_s"] = time.time() - t0
    return out


def run_matrix_inflation(sets: int, icc: float, seed: int,
                         checkpoint: Path | None = None) -> dict:
    """The matrix check's factor against refits with ``group="model"``.

    ``sets`` frames (:func:`simulate_units`, offset of intraclass correlation ``icc``)
    fitted without and with ``group="model"`` (2 chains x 400 draws); observed: median
    over pairs of the ratio of slope posterior sds; predicted: the check's ``inflation``.
    """
    import bayesslope as bs

    out = {"sets": sets, "icc": icc, "seed": seed, "runs": []}
    t0 = time.time()
    rng = np.random.default_rng([seed, int(icc * 1000), 4])
    kw = dict(unit="unit", draws=400, tune=400, chains=2)
    for k in range(sets):
        df = simulate_units(rng, icc=icc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = bs.fit_transfer_matrix(df, random_seed=seed + k, **kw)
            grouped = bs.fit_transfer_matrix(df, random_seed=seed + k, group="model", **kw)
        ratio = grouped.table["sd"] / plain.table["sd"]
        table = plain.dependence()
        out["runs"].append({"k": k, "predicted": float(table.loc["model", "inflation"]),
                            "icc": float(table.loc["model", "icc"]),
                            "flagged": bool(table.loc["model", "flagged"]),
                            "sd_ratio_median": float(ratio.median()),
                            "sd_ratio_q25": float(ratio.quantile(0.25)),
                            "sd_ratio_q75": float(ratio.quantile(0.75))})
        if checkpoint is not None:
            checkpoint.write_text(json.dumps({**out, "wall_s": time.time() - t0}))
        print(out["runs"][-1], f"({time.time() - t0:.0f} s)", flush=True)
    out["wall_s"] = time.time() - t0
    return out


def run_matrix_pythia() -> dict:
    """The bundled Pythia demo as a matrix (unit = checkpoint), without and with
    ``group="model"`` (package defaults, random_seed=1): warnings, tables, slope sd ratio."""
    import bayesslope as bs

    df = bs.load_dataset("pythia")
    long_df = df.assign(unit=df["model"] + "@" + df["step"].astype(str))
    out = {"dataset": "pythia", "fits": {}}
    tms = {}
    for label, kw in (("ungrouped", {}), ("group_model", {"group": "model"})):
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            tm = bs.fit_transfer_matrix(long_df, unit="unit", task="task", y="y",
                                        random_seed=1, **kw)
        table = tm.dependence()
        tms[label] = tm
        out["fits"][label] = {
            "wall_s": time.perf_counter() - t0, "check_s": tm.spec["timings"]["dependence_s"],
            "n_pairs": int(tm.design.n_pairs),
            "warnings": [str(w.message) for w in rec
                         if issubclass(w.category, bs.DependenceWarning)],
            "table": table.reset_index().to_dict(orient="records"),
            "skipped": table.attrs["skipped"]}
        print(label, out["fits"][label]["warnings"], f"{out['fits'][label]['wall_s']:.1f} s",
              flush=True)
        print(table.round(4), flush=True)
    ratio = tms["group_model"].table["sd"] / tms["ungrouped"].table["sd"]
    out["sd_ratio_median"] = float(ratio.median())
    out["sd_ratio_q10_q90"] = [float(ratio.quantile(0.1)), float(ratio.quantile(0.9))]
    print("sd ratio grouped / ungrouped: median", out["sd_ratio_median"], flush=True)
    return out


def run_matrix_cost(seed: int, repeats: int = 3) -> dict:
    """Share of a ~1,000-pair matrix fit's wall time taken by the check (package defaults).

    32 tasks (992 ordered pairs) x 168 checkpoint units of 12 models with a model offset
    (ICC 0.3), so that the candidate columns (``model``, ``lab``, ``step``) are tested.
    """
    import bayesslope as bs
    from bayesslope.dependence import check_transfer_dependence

    rng = np.random.default_rng([seed, 3])
    df = simulate_units(rng, n_models=12, per_model=14, n_tasks=32, icc=0.3)
    df["step"] = df["unit"].str.split("@").str[1].astype(int) % 14
    out = {"seed": seed, "n_units": int(df["unit"].nunique()), "n_tasks": 32, "runs": []}
    for r in range(2):  # the first fit includes JAX compilation (cached on disk)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm = bs.fit_transfer_matrix(df, unit="unit", random_seed=seed + r)
        wall = time.perf_counter() - t0
        check = tm.spec["timings"]["dependence_s"]
        alone = []
        for _ in range(repeats):
            t1 = time.perf_counter()
            table = check_transfer_dependence(df, tm.design, tm.table, "normal",
                                              random_seed=seed + r)
            alone.append(time.perf_counter() - t1)
        out["runs"].append({"fit_wall_s": wall, "check_in_fit_s": check,
                            "check_alone_median_s": float(np.median(alone)),
                            "share": check / wall, "n_pairs": int(tm.design.n_pairs),
                            "n_permutations": int(table.attrs["n_permutations"]),
                            "flagged": [str(c) for c in table.index[table["flagged"]]]})
        print(out["runs"][-1], flush=True)
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
    for path in sorted(RESULTS.glob("dependence_inflation*.json")):
        _report_inflation(path)
    _report_matrix()


def _report_inflation(path: Path) -> None:
    """Reported / observed factor: per scenario and its distribution over all sets."""
    from bayesslope.dependence import slope_inflation

    res = json.loads(path.read_text())
    runs = pd.DataFrame(res["runs"])
    # The factor of the code as it is now, from the stored residuals (no refit).
    runs["predicted"] = [
        float(np.nanmedian(slope_inflation(np.asarray(r.residuals), np.asarray(r.xc),
                                           np.asarray(r.task_idx), np.asarray(r.codes))))
        for r in runs.itertuples()]
    runs["ratio"] = runs["predicted"] / runs["sd_ratio_median"]
    wall = res.get("wall_s", 0.0) + res.get("wall_before_resume_s", 0.0)
    print(f"\n{path.name}: {len(runs)} sets, wall {wall / 60:.1f} min, "
          f"command: {res.get('command', '(interrupted; see the log)')}")
    print("| scenario | sets | warned | observed sd ratio: median (range) | reported: median | "
          "reported / observed: median (IQR) | within 25% |")
    print("|---|---|---|---|---|---|---|")

    def row(name, grp):
        q = grp["ratio"].quantile([0.25, 0.5, 0.75]).to_numpy()
        within = int(((grp["ratio"] - 1).abs() <= 0.25).sum())
        obs = grp["sd_ratio_median"]
        print(f"| {name} | {len(grp)} | {int(grp['warned'].sum())} | {obs.median():.2f} "
              f"({obs.min():.2f}-{obs.max():.2f}) | {grp['predicted'].median():.2f} | "
              f"{q[1]:.3f} ({q[0]:.3f}-{q[2]:.3f}) | {within}/{len(grp)} "
              f"({within / len(grp):.0%}) |")

    for name, grp in runs.groupby("scenario", sort=False):
        row(f"`{name}`", grp)
    row("**all**", runs)
    if "divergences_grouped" in runs:
        clean = runs[runs["divergences_grouped"] == 0]
        row("all, grouped fit without divergences", clean)


def _report_matrix() -> None:
    from scipy import stats

    for path in sorted(RESULTS.glob("dependence_matrix_rates*.json")):
        res = json.loads(path.read_text())
        print(f"\nmatrix rates ({res['command']}), wall {res['wall_s'] / 60:.1f} min")
        for key, label in (("runs", "least-squares lines"), ("fit_runs", "fitted")):
            if not res[key]:
                continue
            runs = pd.DataFrame(res[key])
            for effect, grp in runs.groupby("icc_true"):
                any_flag = grp["flagged"].map(bool)
                k, n = int(any_flag.sum()), len(grp)
                lo, hi = stats.binomtest(k, n).proportion_ci(0.95)
                share = {c: grp["flagged"].map(lambda f, c=c: c in f).mean()
                         for c in ("model", "lab")}
                text = (f"  {label}, ICC {effect}: flagged {k}/{n} = {k / n:.3f} (95% CI "
                        f"{lo:.3f}-{hi:.3f}); 'model' {share['model']:.3f}, "
                        f"'lab' {share['lab']:.3f}")
                if "naive_flagged" in grp:
                    naive = grp["naive_flagged"].map(bool).mean()
                    text += f"; per-pair shuffles would flag {naive:.3f}"
                if "warned" in grp:
                    text += f"; warned {int(grp['warned'].sum())}/{n}"
                print(text)
    path = RESULTS / "dependence_matrix_inflation.json"
    if path.exists():
        res = json.loads(path.read_text())
        runs = pd.DataFrame(res["runs"])
        ratio = runs["predicted"] / runs["sd_ratio_median"]
        print(f"\nmatrix inflation ({res.get('command', 'interrupted')}): {len(runs)} sets; "
              f"observed median {runs['sd_ratio_median'].median():.2f}, reported median "
              f"{runs['predicted'].median():.2f}; reported / observed median "
              f"{ratio.median():.3f} (IQR {ratio.quantile(0.25):.3f}-"
              f"{ratio.quantile(0.75):.3f}), within 25%: {int(((ratio - 1).abs() <= 0.25).sum())}"
              f"/{len(runs)}")
    path = RESULTS / "dependence_matrix_cost.json"
    if path.exists():
        res = json.loads(path.read_text())
        print(f"\nmatrix cost ({res['command']}):")
        for r in res["runs"]:
            print(f"  {r['n_pairs']} pairs: fit {r['fit_wall_s']:.1f} s, check in fit "
                  f"{r['check_in_fit_s']:.2f} s ({r['share']:.1%}), alone (median) "
                  f"{r['check_alone_median_s']:.2f} s, {r['n_permutations']} permutations, "
                  f"flagged {r['flagged']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["rates", "inflation", "predicted", "matrix_rates",
                                         "matrix_inflation", "matrix_cost",
                                         "matrix_pythia", "report"])
    parser.add_argument("--fits", type=int, default=50,
                        help="matrix_rates: fitted frames per arm")
    parser.add_argument("--sets", type=int, default=200)
    parser.add_argument("--icc", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    parser.add_argument("--resume", action="store_true",
                        help="inflation: keep and skip the sets already in the results file")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    if args.part == "report":
        report()
        return 0
    out = RESULTS / f"dependence_{args.part}{args.tag}.json"
    if args.part == "predicted":
        res = run_predicted(args.sets, args.seed, args.scenarios)
    elif args.part == "matrix_rates":
        res = run_matrix_rates(args.sets, args.fits, args.icc, args.seed)
    elif args.part == "matrix_inflation":
        res = run_matrix_inflation(args.sets, args.icc, args.seed, checkpoint=out)
    elif args.part == "matrix_cost":
        res = run_matrix_cost(args.seed)
    elif args.part == "matrix_pythia":
        res = run_matrix_pythia()
    elif args.part == "rates":
        res = run_rates(args.sets, args.icc, args.seed)
    else:
        res = run_inflation(args.sets, args.seed, args.scenarios, checkpoint=out,
                            resume=args.resume)
    res["command"] = ("python -m validation.dependence_calibration " + args.part
                      + (f" --sets {args.sets}"
                         if args.part not in ("matrix_cost", "matrix_pythia") else "")
                      + (f" --icc {args.icc}" if args.part in (
                          "rates", "matrix_rates", "matrix_inflation") else "")
                      + (f" --fits {args.fits}" if args.part == "matrix_rates" else "")
                      + (f" --scenarios {' '.join(args.scenarios)}"
                         if args.part in ("inflation", "predicted") else "")
                      + (f" --seed {args.seed}" if args.seed != SEED else "")
                      + (f" --tag {args.tag}" if args.tag else "")
                      + (" --resume" if args.resume else ""))
    out.write_text(json.dumps(res, indent=0))
    report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
