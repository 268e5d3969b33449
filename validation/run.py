"""Entry point of ``make validate``: SBC, coverage and p_negative calibration per variant.

Usage::

    python -m validation.run                      # every registered variant, 200 sims each
    python -m validation.run --sims 50 --variants gaussian collapsed --workers 2 --seed 1
    python -m validation.run --list               # registered variants
    python -m validation.run --report-only        # rebuild RESULTS.md from results/*.json
    python -m validation.run --variants full --seed 7 --replication   # another seed


Each variant writes ``validation/results/<variant>.json`` (every table and the raw
ranks), ``validation/<variant>_ranks.png`` and ``validation/<variant>_ecdf.png``;
``validation/RESULTS.md`` is then rebuilt from all result files present. A run with
``--replication`` (another ``--seed`` of a variant already reported) writes only
``validation/results/replications/<variant>-seed<S>.json``, listed in its own table.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import catalog, sbc
from .figures import plot_ecdf_differences, plot_rank_histograms

__all__ = ["main", "write_results_markdown"]

HERE = Path(__file__).resolve().parent


def _git_state() -> str:
    """Commit of the package under test (``VALIDATION_PACKAGE_COMMIT`` for a snapshot)."""
    if os.environ.get("VALIDATION_PACKAGE_COMMIT"):
        return os.environ["VALIDATION_PACKAGE_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "bayesslope"], cwd=HERE.parent,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (bayesslope/ had uncommitted changes)" if dirty else "")


def _package_source() -> str:
    import bayesslope

    return str(Path(bayesslope.__file__).resolve().parent)


def _table_records(table: pd.DataFrame) -> list[dict]:
    out = table.reset_index()
    return json.loads(out.to_json(orient="records"))


def result_to_json(result: sbc.SBCResult, summary: dict, command: str) -> dict:
    """Everything RESULTS.md needs, plus the raw ranks, as JSON-safe values."""
    variant = catalog.get_variant(result.variant)
    return {
        "variant": result.variant,
        "description": variant.description,
        "n_sims": len(result.records),
        "n_rank_draws": result.n_rank_draws,
        "seed": result.seed,
        "workers": result.workers,
        "wall_s": result.wall_s,
        "command": command,
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "git": _git_state(),
        "package": _package_source(),
        "ranks": _table_records(summary["ranks"]),
        "pooled": {k: {"t2": v[0], "p": v[1]} for k, v in summary["pooled"].items()},
        "coverage": _table_records(summary["coverage"]),
        "p_negative": _table_records(summary["p_negative"]),
        "diagnostics": summary["diagnostics"],
        "passes": summary["passes"],
        "bounds": {k: list(v) if isinstance(v, tuple) else v
                   for k, v in summary["bounds"].items()},
        "raw_ranks": {p: result.ranks(p).tolist() for p in result.params},
        "tasks": {k: (np.round(v, 5).tolist() if k == "p_negative" else v.astype(int).tolist())
                  for k, v in sbc.task_outcomes(result).items()},
    }


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "**NO**"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _variant_markdown(res: dict) -> list[str]:
    b = res["bounds"]
    per_sim = res["wall_s"] * res["workers"] / max(res["n_sims"], 1)
    lines = [
        f"### `{res['variant']}`: {res['description']}",
        "",
        f"{res['n_sims']} simulations, L = {res['n_rank_draws']} thinned draws per fit, "
        f"seed {res['seed']}; wall time {res['wall_s'] / 60:.1f} min on {res['workers']} "
        f"worker(s) ({per_sim:.1f} s per simulation per worker; median fit "
        f"{res['diagnostics']['fit_wall_median_s']:.1f} s). Run {res['date_utc']} UTC on "
        f"commit {res['git']}.",
        "",
        f"Bar: uniformity {_fmt(res['passes']['uniformity'])}, 90% coverage in "
        f"[{b['cov90'][0]}, {b['cov90'][1]}] {_fmt(res['passes']['coverage90'])}, "
        f"p_negative within +-{b['pneg_tol']} (bins >= {b['pneg_min']} tasks) "
        f"{_fmt(res['passes']['p_negative'])}.",
        "",
        "| parameter | chi-square (df) | chi2 p | ECDF pot_c p | in 99% ECDF band | max ECDF dev |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["ranks"]:
        lines.append(
            f"| `{r['parameter']}` | {r['chi2']:.1f} ({r['chi2_df']}) | {_fmt(r['chi2_p'])} | "
            f"{_fmt(r['pot_c_p'])} | {_fmt(bool(r['ecdf_in_band']))} | "
            f"{_fmt(r['max_ecdf_dev'])} |"
        )
    for var, t in res.get("pooled", {}).items():
        lines += ["", f"`{var}` of every task pooled (dependent within a simulation): "
                  f"Hotelling T-squared over simulations of uniform ranks (10 bins) = "
                  f"{t['t2']:.1f}, p = {t['p']:.3f}."]
    lines += ["", "| interval | task slopes | coverage | MC se |", "|---|---|---|---|"]
    for r in res["coverage"]:
        lines.append(f"| {r['ci_prob']:.0%} | {r['n_tasks']} | {_fmt(r['coverage'])} | "
                     f"{_fmt(r['mc_se'])} |")
    lines += ["", *_calibration_markdown(pd.DataFrame(res["p_negative"]))]
    d = res["diagnostics"]
    lines += [
        "",
        f"Sampler: {d['fits_with_divergences']} of {res['n_sims']} fits had divergences "
        f"({d['divergences_total']} in all); max R-hat {d['r_hat_max']:.3f} "
        f"({d['fits_r_hat_gt_1.01']} fits > 1.01); smallest bulk ESS {d['ess_bulk_min']:.0f} "
        f"({d['fits_ess_lt_100']} fits with ESS < 100).",
        "",
        f"![{res['variant']} ranks]({res.get('figures', res['variant'])}_ranks.png)",
        f"![{res['variant']} ECDF]({res.get('figures', res['variant'])}_ecdf.png)",
        "",
    ]
    return lines


def _calibration_markdown(table: pd.DataFrame) -> list[str]:
    lines = ["| p_negative bin | tasks (sims) | mean p_negative | fraction truly negative | "
             "difference | binomial se | cluster se |", "|---|---|---|---|---|---|---|"]
    for r in table.reset_index().to_dict(orient="records"):
        lines.append(f"| {r['bin']} | {r['n_tasks']} ({r.get('n_sims', '-')}) | "
                     f"{_fmt(r['mean_p'])} | {_fmt(r['frac_negative'])} | {_fmt(r['diff'])} | "
                     f"{_fmt(r['mc_se'])} | {_fmt(r.get('cluster_se'))} |")
    return lines


def _pooled_calibration(results: list[dict]) -> list[str]:
    """p_negative calibration over the tasks of every variant (more tasks per bin)."""
    pooled = [r for r in results if "tasks" in r]
    if len(pooled) < 2:
        return []
    p = np.concatenate([r["tasks"]["p_negative"] for r in pooled])
    neg = np.concatenate([r["tasks"]["negative"] for r in pooled]).astype(bool)
    sim = np.concatenate([np.asarray(r["tasks"]["sim"]) + 10**6 * i
                          for i, r in enumerate(pooled)])
    table = sbc.calibration_table(p, neg, sim)
    names = ", ".join(f"`{r['variant']}`" for r in pooled)
    return ["## p_negative calibration, all variants pooled", "",
            f"Tasks of {names} ({len(p)} tasks): the middle bins are thin in any one variant "
            "(most tasks are decided), so pooling is the sharper check.", "",
            *_calibration_markdown(table), ""]


def _replications_markdown(out_dir: Path) -> list[str]:
    """One row per replication run (another seed of a reported variant)."""
    files = sorted((out_dir / "results" / "replications").glob("*.json"))
    if not files:
        return []
    lines = ["## Replications with other seeds", "",
             "Independent reruns (fresh simulated data sets) of variants reported below, "
             "written by `--replication`; the rank tests' smallest p-value over the "
             "parameters and the pooled tests.", "",
             "| variant | seed | sims | uniformity (smallest p) | 90% coverage | 50% coverage "
             "| p_negative | run | command |", "|---|---|---|---|---|---|---|---|---|"]
    for f in files:
        r = json.loads(f.read_text())
        cov = {c["ci_prob"]: c["coverage"] for c in r["coverage"]}
        p_min = min([min(t["chi2_p"], t["pot_c_p"]) for t in r["ranks"]]
                    + [t["p"] for t in r.get("pooled", {}).values()])
        lines.append(
            f"| `{r['variant']}` | {r['seed']} | {r['n_sims']} | "
            f"{_fmt(r['passes']['uniformity'])} ({p_min:.3f}) | {_fmt(cov.get(0.9))} "
            f"{_fmt(r['passes']['coverage90'])} | {_fmt(cov.get(0.5))} | "
            f"{_fmt(r['passes']['p_negative'])} | {r['date_utc']} on {r['git']} | "
            f"`{r['command']}` |")
    return [*lines, ""]


def write_results_markdown(out_dir: Path, notes: str = "") -> Path:
    """Rebuild ``RESULTS.md`` from every ``results/*.json`` in ``out_dir``."""
    files = sorted((out_dir / "results").glob("*.json"))
    # Only SBC records (other validation scripts keep their own JSON in results/ too).
    results = [r for r in map(json.loads, (f.read_text() for f in files))
               if isinstance(r, dict) and {"variant", "ranks", "coverage"} <= r.keys()]
    lines = [
        "# Validation results: simulation-based calibration",
        "",
        "Generated by `python -m validation.run` (`make validate`); do not edit by hand "
        "(the notes come from `validation/NOTES.md`).",
        "",
        "Method: per simulation, draw every parameter from fixed priors (numpy, independent "
        "of the package), simulate x ~ Normal(0, 1) and y from the model, fit with "
        "`fit_hierarchical(priors=..., x_ref=0.0)`, thin the posterior to L = 99 evenly "
        "spaced draws and record the rank of the truth (Talts et al. 2018). Uniformity: "
        "Pearson chi-square on equal-width rank bins, and on the randomized PIT "
        "(rank + U)/(L + 1) the arviz-stats `pot_c` ECDF test and the simultaneous 99% "
        "ECDF band of `ecdf_pit` (Säilynoja et al. 2022). `slope[0]`, `intercept[0]`: "
        "the first task (tasks are exchangeable; pooled ranks over tasks are dependent "
        "and only plotted). Coverage: central (equal-tailed) intervals of every task's "
        "slope from `fit.summary(ci_prob=...)`; p_negative from `fit.p_negative_transfer()`.",
        "",
        "| variant | sims | wall (min) | workers | uniformity | 90% coverage | "
        "p_negative | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cov90 = next((c["coverage"] for c in r["coverage"] if c["ci_prob"] == 0.9), None)
        lines.append(
            f"| `{r['variant']}` | {r['n_sims']} | {r['wall_s'] / 60:.1f} | {r['workers']} | "
            f"{_fmt(r['passes']['uniformity'])} | {_fmt(cov90)} "
            f"{_fmt(r['passes']['coverage90'])} | {_fmt(r['passes']['p_negative'])} | "
            f"`{r['command']}` |"
        )
    lines.append("")
    notes_file = out_dir / "NOTES.md"
    if notes_file.exists():
        lines += [notes_file.read_text().rstrip(), ""]
    if notes:
        lines += [notes, ""]
    lines += _replications_markdown(out_dir)
    lines += _pooled_calibration(results)
    lines.append("## Per variant")
    lines.append("")
    for r in results:
        lines += _variant_markdown(r)
    path = out_dir / "RESULTS.md"
    path.write_text("\n".join(lines))
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m validation.run", description=__doc__.split("\n")[0])
    p.add_argument("--sims", type=int, default=200, help="simulations per variant (200)")
    p.add_argument("--variants", nargs="+", default=None,
                   help="variants to run (default: all registered)")
    p.add_argument("--seed", type=int, default=20261128, help="base seed")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (default: min(2, cpus))")
    p.add_argument("--out", type=Path, default=HERE, help="output folder (validation/)")
    p.add_argument("--list", action="store_true", help="list the registered variants and exit")
    p.add_argument("--no-checkpoint", action="store_true",
                   help="do not save or reuse finished simulations "
                        "(default: results/checkpoints/<variant>-seed<seed>/)")
    p.add_argument("--from-checkpoints", action="store_true",
                   help="fit nothing: summarize, per variant, the finished simulations "
                        "0..n-1 of its checkpoint folder (at most --sims)")
    p.add_argument("--replication", action="store_true",
                   help="a rerun with another --seed: write only "
                        "results/replications/<variant>-seed<S>.json (no figures; the "
                        "variant's main result is kept)")
    p.add_argument("--sampler", choices=("pymc", "nutpie"), default=None,
                   help="fit with this NUTS instead of the package's default for the variant "
                        "(same data sets: seeds depend on the variant name only); results in "
                        "results/<variant>-<sampler>.json, checkpoints in "
                        "<variant>-seed<S>-<sampler>/")
    p.add_argument("--target-accept", type=float, default=None,
                   help="NUTS target acceptance instead of the harness's 0.9 (same data sets; "
                        "results tagged -ta<value> like --sampler)")
    p.add_argument("--report-only", action="store_true",
                   help="only rebuild RESULTS.md from the saved results")
    return p


def _finished(folder: Path, at_most: int) -> int:
    """Length of the run of finished replicates 0, 1, 2, ... in a checkpoint folder."""
    done = {int(f.stem.split("_")[1]) for f in folder.glob("sim_*.pkl")}
    n = 0
    while n in done and n < at_most:
        n += 1
    return n


def _fit_command(folder: Path, command: str | None) -> str:
    """The command that fitted a checkpoint folder: saved when fitting, read otherwise."""
    path = folder / "command.txt"
    if command is not None and folder.exists():
        path.write_text(command.strip())
    return path.read_text().strip() if path.exists() else (command or "unknown").strip()


def _accumulate_wall(folder: Path, wall_s: float, n_sims: int) -> float:
    """Total wall time over resumed runs of one checkpoint folder (``wall.json``)."""
    if not folder.exists():
        return wall_s
    path = folder / "wall.json"
    total = json.loads(path.read_text())["wall_s"] if path.exists() else 0.0
    total += wall_s
    path.write_text(json.dumps({"wall_s": total, "n_sims": n_sims}))
    return total


def _progress(name: str, start: float):
    def report(done: int, total: int, record: sbc.SimRecord) -> None:
        if done % 10 == 0 or done == total:
            el = time.perf_counter() - start
            print(f"  {name}: {done}/{total} sims, {el / 60:.1f} min "
                  f"(last fit {record.wall_s:.1f} s)", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the SBC of the chosen variants and rebuild ``RESULTS.md``; returns 0 if all pass."""
    args = _parser().parse_args(argv)
    if args.list:
        for name, v in catalog.VARIANTS.items():
            print(f"{name}: {v.description}")
        return 0
    out = args.out
    (out / "results").mkdir(parents=True, exist_ok=True)
    if args.report_only:
        print(write_results_markdown(out))
        return 0
    names = args.variants or list(catalog.VARIANTS)
    command = "python -m validation.run " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    all_pass = True
    for name in names:
        variant = catalog.get_variant(name)
        override = {k: v for k, v in (("sampler", args.sampler),
                                      ("target_accept", args.target_accept)) if v is not None}
        tag = "".join([f"-{args.sampler}" if args.sampler else "",
                       f"-ta{args.target_accept:g}" if args.target_accept else ""])
        if override:
            variant = dataclasses.replace(variant,
                                          fit=functools.partial(variant.fit, **override))
        checkpoint = out / "results" / "checkpoints" / f"{name}-seed{args.seed}{tag}"
        n_sims = _finished(checkpoint, args.sims) if args.from_checkpoints else args.sims
        if n_sims == 0:
            print(f"{name}: no finished simulations, skipped", flush=True)
            continue
        print(f"{name}: {n_sims} simulations on {args.workers} worker(s)", flush=True)
        result = sbc.run_sbc(variant, n_sims, seed=args.seed, workers=args.workers,
                             progress=_progress(name, time.perf_counter()),
                             checkpoint=None if args.no_checkpoint else checkpoint)
        if args.no_checkpoint:  # a run of its own: an old folder's totals are not its time
            fitted_by = command
        else:
            result.wall_s = _accumulate_wall(checkpoint, result.wall_s, len(result.records))
            fitted_by = _fit_command(checkpoint, None if args.from_checkpoints else command)
        summary = sbc.summarize(result)
        all_pass &= all(v is not False for v in summary["passes"].values())
        record = result_to_json(result, summary, fitted_by)
        if override:
            record["variant"] = name + "".join(f", {k}={v}" for k, v in override.items())
            record["figures"] = f"{name}{tag}"
        if args.replication:
            folder = out / "results" / "replications"
            folder.mkdir(exist_ok=True)
            (folder / f"{name}-seed{args.seed}{tag}.json").write_text(
                json.dumps(record, indent=1))
        else:
            (out / "results" / f"{name}{tag}.json").write_text(json.dumps(record, indent=1))
            plot_rank_histograms(result, out / f"{name}{tag}_ranks.png")
            plot_ecdf_differences(result, out / f"{name}{tag}_ecdf.png")
        print(summary["ranks"].round(3).to_string())
        print(summary["coverage"].round(3).to_string())
        print(summary["passes"], f"wall {result.wall_s / 60:.1f} min", flush=True)
    print(write_results_markdown(out))
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
