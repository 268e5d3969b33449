"""Calibration of the decision tables (bayesslope.decisions) on simulated data.

Each simulation draws every parameter of the hierarchical Gaussian model from FIXED priors
(numpy, independent of the package), simulates ``n_points`` points per task with
``x ~ Normal(0, 1)``, fits with ``fit_hierarchical(priors=<the same priors>)`` (collapsed
path, nutpie: compiled once, refitted per data set) and records, per task, the reported
P(flattest), P(negative), the ROPE probabilities and decision, and whether the task is in
``negative_tasks(level)``, next to the truth. Because the simulation prior is the fit's
prior, a correct posterior is calibrated *on average over simulations*:

(a) among tasks reported with P(flattest) ~ p, a share ~ p is the true flattest;
(b) the share of wrongly signed calls in ``negative_tasks(level)``, pooled over data sets,
    is at most ``level`` (its expectation is the mean reported ``1 - P(negative)`` of the
    calls, itself <= level);
(c) among ROPE decisions made at ``decision_prob``, the share that are wrong is at most
    ``1 - decision_prob`` for each decision.

Usage::

    nice -n 10 python -m validation.decision_calibration --sims 400 --seed 20261201

Per-task records go to ``validation/results/decision_calibration_seed<S>.csv`` (resumable: rerun
with a larger ``--sims`` to add simulations); the tables to ``validation/DECISIONS.md``
(``--report-only`` rewrites the markdown from the CSV).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPORT = HERE / "DECISIONS.md"

N_TASKS = 10
N_POINTS = 8
ROPE = 0.1
DECISION_PROB = 0.95
LEVELS = (0.05, 0.10)
# Fixed priors (data units), used to simulate and to fit. The slope spread and the noise
# are chosen so that per-task slopes are uncertain (slope se ~ sigma / sqrt(8) ~ 0.3 for a
# typical sigma, comparable to the spread of slopes), which is where ranks and decisions
# are hard and calibration is informative.
PRIORS = {
    "intercept_mu": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "slope_mu": {"dist": "Normal", "mu": 0.0, "sigma": 0.3},
    "intercept_sigma": {"dist": "HalfNormal", "sigma": 1.0},
    "slope_sigma": {"dist": "HalfNormal", "sigma": 0.3},
    "sigma": {"dist": "HalfNormal", "sigma": 1.0},
    "corr": {"dist": "LKJ", "eta": 2.0},
}
SAMPLING = {"draws": 500, "tune": 500, "chains": 2, "cores": 1, "target_accept": 0.9,
            "sampler": "nutpie"}


def sample_truth(rng: np.random.Generator, n_tasks: int = N_TASKS) -> dict:
    """Every parameter from :data:`PRIORS` (LKJ(eta) in 2-d: (corr + 1) / 2 ~ Beta(eta, eta))."""
    p = PRIORS
    mu_a = rng.normal(0.0, p["intercept_mu"]["sigma"])
    mu_b = rng.normal(0.0, p["slope_mu"]["sigma"])
    sd_a = abs(rng.normal(0.0, p["intercept_sigma"]["sigma"]))
    sd_b = abs(rng.normal(0.0, p["slope_sigma"]["sigma"]))
    corr = 2.0 * rng.beta(p["corr"]["eta"], p["corr"]["eta"]) - 1.0
    z = rng.normal(size=(n_tasks, 2))
    return {"intercept": mu_a + sd_a * z[:, 0],
            "slope": mu_b + sd_b * (corr * z[:, 0] + np.sqrt(1 - corr**2) * z[:, 1]),
            "sigma": abs(rng.normal(0.0, p["sigma"]["sigma"])), "slope_mu": mu_b,
            "slope_sigma": sd_b}


def simulate(truth: dict, rng: np.random.Generator, n_points: int = N_POINTS) -> pd.DataFrame:
    """``y = intercept_t + slope_t x + sigma eps``, ``x ~ Normal(0, 1)`` (x higher is better)."""
    a, b = truth["intercept"], truth["slope"]
    task = np.repeat(np.arange(a.size), n_points)
    x = rng.normal(size=task.size)
    y = a[task] + b[task] * x + truth["sigma"] * rng.normal(size=task.size)
    names = np.array([f"t{k:02d}" for k in range(a.size)])
    return pd.DataFrame({"task": names[task], "x": x, "y": y})


def run_one(sim: int, seed: int) -> pd.DataFrame:
    """Simulate, fit and record one data set (one row per task)."""
    import bayesslope as bs

    rng = np.random.default_rng([seed, sim])
    truth = sample_truth(rng)
    df = simulate(truth, rng)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit_hierarchical(df, x_better="higher", y_better="higher", x_ref=0.0,
                                  priors=PRIORS, random_seed=seed + sim, **SAMPLING)
    wall = time.perf_counter() - t0
    tasks = list(fit.design.tasks)
    ranks = fit.rank_tasks(k=3).reindex(tasks)
    table = fit.summary(rope=ROPE, decision_prob=DECISION_PROB)
    out = pd.DataFrame({
        "sim": sim, "task": tasks, "true_slope": truth["slope"],
        "true_flattest": truth["slope"] == truth["slope"].min(),
        "p_flattest": ranks["p_flattest"].to_numpy(),
        "p_bottom_3": ranks["p_bottom_3"].to_numpy(),
        "true_bottom_3": np.argsort(np.argsort(truth["slope"])) < 3,
        "p_negative": ranks["p_negative"].to_numpy(),
        "p_below_rope": table["p_negative"].to_numpy(),
        "p_rope": table["p_rope"].to_numpy(), "p_above_rope": table["p_positive"].to_numpy(),
        "decision": table["decision"].to_numpy(),
    })
    for level in LEVELS:
        called = fit.negative_tasks(level).index
        out[f"called_{level:g}"] = out["task"].isin(called)
    out["divergences"] = int(fit.posterior["sample_stats"]["diverging"].values.sum())
    out["sampling_warning"] = any(issubclass(w.category, bs.SamplingWarning) for w in caught)
    out["fit_wall_s"] = wall
    return out


def csv_path(seed: int, shard: tuple[int, int] = (0, 1)) -> Path:
    """Where the per-task records of one seed (and one worker's shard) are kept."""
    tag = "" if shard == (0, 1) else f"_shard{shard[0]}of{shard[1]}"
    return HERE / "results" / f"decision_calibration_seed{seed}{tag}.csv"


def load_records(seed: int) -> pd.DataFrame:
    """Every recorded task row of ``seed`` (all shards), one per (sim, task)."""
    files = sorted((HERE / "results").glob(f"decision_calibration_seed{seed}*.csv"))
    if not files:
        return pd.DataFrame(columns=["sim", "task"])
    rec = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return rec.drop_duplicates(["sim", "task"]).sort_values(["sim", "task"], ignore_index=True)


def run(n_sims: int, seed: int, shard: tuple[int, int] = (0, 1)) -> float:
    """Run simulations ``0..n_sims-1`` of this shard (``sim % n == i``) not yet recorded.

    Returns the wall time (s). Shards run as separate processes write separate files.
    """
    out = csv_path(seed, shard)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set(load_records(seed)["sim"])
    t0 = time.perf_counter()
    for sim in range(shard[0], n_sims, shard[1]):
        if sim in done:
            continue
        rows = run_one(sim, seed)
        rows.to_csv(out, mode="a", header=not out.exists(), index=False)
        print(f"sim {sim}: {time.perf_counter() - t0:.0f} s", flush=True)
    return time.perf_counter() - t0


# -- tables -------------------------------------------------------------------------------


def flattest_calibration(rec: pd.DataFrame, n_bins: int = 5, prob: str = "p_flattest",
                         truth: str = "true_flattest", top_only: bool = False) -> pd.DataFrame:
    """Reported rank probability vs observed frequency of the event, per bin.

    ``top_only``: only the task with the largest ``prob`` of each data set (its "best
    guess"), which spreads the probabilities over (1 / n_tasks, 1].
    """
    from validation.sbc import calibration_table

    if top_only:
        rec = rec.loc[rec.groupby("sim")[prob].idxmax()]
    table = calibration_table(rec[prob].to_numpy(), rec[truth].to_numpy().astype(bool),
                              rec["sim"].to_numpy(), n_bins)
    table = table.rename(columns={"frac_negative": "observed"})
    table["within_0.05"] = table["diff"].abs() <= 0.05
    # Standard error under calibration: the larger of the binomial one (independent tasks)
    # and the cluster-robust one (tasks of a data set share the population draw).
    table["se"] = np.fmax(table["mc_se"], table["cluster_se"])
    table["within_2se"] = table["diff"].abs() <= 2 * table["se"]
    return table.drop(columns=["mc_se", "cluster_se"])


def false_sign_rates(rec: pd.DataFrame) -> pd.DataFrame:
    """Realized false-sign rate of ``negative_tasks(level)`` and of the naive lists."""
    rows = []
    wrong = rec["true_slope"] >= 0
    for level in LEVELS:
        called = rec[f"called_{level:g}"]
        rows.append(_rate_row(f"negative_tasks({level:g})", called, wrong, rec, level))
    for cut in (0.9, 0.95):
        called = rec["p_negative"] > cut
        rows.append(_rate_row(f"naive P(negative) > {cut:g}", called, wrong, rec, np.nan))
    return pd.DataFrame(rows).set_index("list")


def _rate_row(name, called, wrong, rec, level) -> dict:
    n_calls = int(called.sum())
    n_wrong = int((called & wrong).sum())
    per_sim = rec.assign(c=called, w=called & wrong).groupby("sim")[["c", "w"]].sum()
    # Cluster-robust se of the pooled ratio (delta method over simulations).
    r = n_wrong / n_calls if n_calls else np.nan
    resid = per_sim["w"] - r * per_sim["c"]
    se = float(np.sqrt((resid**2).sum()) / n_calls) if n_calls else np.nan
    return {"list": name, "level": level, "calls": n_calls,
            "sims_with_calls": int((per_sim["c"] > 0).sum()),
            "calls_per_sim": n_calls / per_sim.shape[0], "wrong": n_wrong,
            "realized_rate": r, "cluster_se": se,
            "expected_rate": float((1 - rec.loc[called, "p_negative"]).mean())
            if n_calls else np.nan}


def rope_errors(rec: pd.DataFrame) -> pd.DataFrame:
    """Per decision: how often made, and the share where the truth is in another region."""
    truth = np.where(rec["true_slope"] < -ROPE, "negative",
                     np.where(rec["true_slope"] > ROPE, "positive", "practically zero"))
    rows = []
    for word in ("negative", "practically zero", "positive", "undecided"):
        sel = (rec["decision"] == word).to_numpy()
        n = int(sel.sum())
        err = float((truth[sel] != word).mean()) if n and word != "undecided" else np.nan
        rows.append({"decision": word, "n": n, "share": n / len(rec), "error_rate": err,
                     "mc_se": float(np.sqrt(err * (1 - err) / n)) if n and np.isfinite(err)
                     else np.nan})
    return pd.DataFrame(rows).set_index("decision")


def _md(table: pd.DataFrame) -> str:
    """A pipe table (floats to 3 decimals) without optional dependencies."""
    def cell(v):
        if isinstance(v, bool | np.bool_):
            return "yes" if v else "no"
        if isinstance(v, int | np.integer):
            return str(v)
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else f"{v:.3f}"
        return str(v)

    head = [table.index.name or "", *map(str, table.columns)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx, row in zip(table.index, table.itertuples(index=False), strict=True):
        rows.append("| " + " | ".join([str(idx), *map(cell, row)]) + " |")
    return "\n".join(rows)


def _calibration_verdict(table: pd.DataFrame) -> str:
    """Bins within +-0.05; bins where 0.05 is below two standard errors are named."""
    filled = table[table["n_tasks"] > 0]
    resolvable = filled["se"] <= 0.025
    ok = filled["within_0.05"]
    lines = [f"{int(ok.sum())} of {len(filled)} non-empty bins within +-0.05; "
             f"{int(filled['within_2se'].sum())} of {len(filled)} within 2 se."]
    bad = filled[resolvable & ~ok]
    lines.append("Bins with enough data to resolve +-0.05 (se <= 0.025): "
                 f"{int(resolvable.sum())}, of which outside +-0.05: "
                 + (", ".join(f"{b} (diff {d:+.3f})" for b, d in bad["diff"].items())
                    if len(bad) else "none") + ".")
    return " ".join(lines)


def write_report(rec: pd.DataFrame, command: str, wall_s: float | str | None) -> str:
    """Markdown with the three tables and the verdicts."""
    n_sims = rec["sim"].nunique()
    flat = flattest_calibration(rec)
    top = flattest_calibration(rec, top_only=True)
    bottom = flattest_calibration(rec, 10, "p_bottom_3", "true_bottom_3")
    rates = false_sign_rates(rec)
    rope = rope_errors(rec)
    fs = rates.loc["negative_tasks(0.05)"]
    if isinstance(wall_s, str):
        wall = wall_s
    else:
        wall = f"{wall_s / 60:.1f} min" if wall_s is not None else "see the log"
    lines = [
        "# Decision calibration: ranks, negative_tasks, ROPE decisions",
        "",
        "Generated by `validation/decision_calibration.py` (do not edit by hand).",
        "",
        f"- Command: `{command}`; wall time: {wall} (nice 10, on a 2-core "
        "machine shared with other jobs).",
        f"- {n_sims} simulated data sets x {N_TASKS} tasks x {N_POINTS} points, "
        "hierarchical Gaussian model (collapsed path, `sampler=\"nutpie\"`, 2 chains x 500 "
        "draws, 500 tune). Priors (simulation = fit): `slope_mu ~ N(0, 0.3)`, "
        "`slope_sigma ~ HalfNormal(0.3)`, `sigma ~ HalfNormal(1)`, `intercept_mu ~ N(0, 1)`, "
        "`intercept_sigma ~ HalfNormal(1)`, LKJ(2); x ~ N(0, 1).",
        f"- ROPE half-width {ROPE}, decision_prob {DECISION_PROB}.",
        f"- Sampling: {int((rec.groupby('sim')['divergences'].first() > 0).sum())} fits with "
        f"divergences, {int(rec.groupby('sim')['sampling_warning'].first().sum())} with a "
        "SamplingWarning (kept: the check is of the whole procedure as a user runs it); "
        f"median fit {rec.groupby('sim')['fit_wall_s'].first().median():.2f} s.",
        "",
        "## (a) Rank probabilities: calibration",
        "",
        "Bins of a reported probability against the observed frequency of the event over "
        "all tasks of all data sets. `se`: standard error of `diff` (observed - "
        "reported) under calibration, the larger of the binomial one and the cluster-robust "
        "one (each data set a cluster). Criterion of issue 17: |diff| <= "
        "0.05 per bin; where a bin holds too few tasks for its standard error to resolve "
        "0.05, `within_2se` says whether the difference is within sampling noise.",
        "",
        "**P(flattest)** (the task is the true flattest):",
        "",
        _md(flat),
        "",
        "**Verdict:** " + _calibration_verdict(flat),
        "",
        "**The most likely flattest task of each data set** (its P(flattest) against "
        "whether it is the true flattest; one row per data set):",
        "",
        _md(top),
        "",
        "**Verdict:** " + _calibration_verdict(top),
        "",
        "**P(among the 3 flattest)** (`p_bottom_3`):",
        "",
        _md(bottom),
        "",
        "**Verdict:** " + _calibration_verdict(bottom),
        "",
        "## (b) Realized false-sign rate of the negative lists",
        "",
        "Pooled over data sets: wrong calls (true slope >= 0) / calls. `expected_rate`: the "
        "mean reported 1 - P(negative) over the calls. Naive lists for comparison.",
        "",
        _md(rates),
        "",
        f"**Verdict:** negative_tasks(0.05) realized {fs['realized_rate']:.3f} "
        f"(cluster se {fs['cluster_se']:.3f}) over {int(fs['calls'])} calls: "
        + ("at or below 0.05." if fs["realized_rate"] <= 0.05 else "ABOVE 0.05."),
        "",
        "## (c) ROPE decision error rates",
        "",
        f"A decision is wrong when the true slope lies in another region (negative: < "
        f"-{ROPE}, practically zero: in [-{ROPE}, {ROPE}], positive: > {ROPE}). Each "
        f"decision's error rate should be at most 1 - decision_prob = "
        f"{1 - DECISION_PROB:.2f}.",
        "",
        _md(rope),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--shard", default="0/1",
                    help="i/n: run the simulations with sim %% n == i (one process per shard)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--wall-note", default=None,
                    help="with --report-only: the wall time of the runs, as text")
    args = ap.parse_args(argv)
    shard = tuple(int(v) for v in args.shard.split("/"))
    wall = args.wall_note
    if not args.report_only:
        wall = run(args.sims, args.seed, shard)
    rec = load_records(args.seed)
    rec = rec[rec["sim"] < args.sims]
    command = (f"nice -n 10 python -m validation.decision_calibration --sims {args.sims} "
               f"--seed {args.seed} [--shard i/n]")
    REPORT.write_text(write_report(rec, command, wall))
    print(REPORT.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
