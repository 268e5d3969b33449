"""Cost of the residual dependence check (issue 22) on the Pythia demo, and its verdicts.

Fits the bundled Pythia demo twice with the package defaults (4 chains x 1,000 draws,
random_seed=1): without ``group=`` and with ``group="model", group_nesting="nested"``.
Each fit's wall time is measured with the check switched off (``check_dependence=False``);
the check is then timed on the finished fit (median of ``--repeats`` calls of
:func:`bayesslope.dependence.check_dependence`, the function ``fit_hierarchical`` calls),
and its table, its warning and the slope sds of both fits are recorded.

Usage (from the repository root)::

    nice -n 10 .venv/bin/python benchmarks/bench_dependence.py \
        --json benchmarks/results_dependence.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np


def _check_timed(df, fit, repeats: int, group: str | None):
    from bayesslope.dependence import check_dependence, warn_dependence

    times, cpu = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        table = check_dependence(df, fit.design, fit.posterior, fit.variants,
                                 random_seed=fit.spec["sampler"].get(
                                     "random_seed"))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        warn_dependence(table, grouped=group)
    msgs = [str(w.message) for w in rec]
    return table, times, cpu, msgs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--save-dir", type=Path, default=None,
                        help="also write each fit to SAVE_DIR/LABEL.nc")
    parser.add_argument("--saved", type=Path, default=None,
                        help="time the check on SAVED/LABEL.nc (written by --save-dir) instead "
                             "of fitting; fit wall times are then read from --fit-times")
    parser.add_argument("--fit-times", type=Path, default=None,
                        help="a previous --json output whose fit_wall_s values to reuse")
    args = parser.parse_args(argv)

    import bayesslope as bs

    df = bs.load_dataset("pythia")
    out = {"dataset": "pythia", "n_rows": len(df), "repeats": args.repeats,
           "python": platform.python_version(),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip(),
           "fits": {}}
    sds = {}
    for label, kw in (("ungrouped", {}),
                      ("group_model_nested", {"group": "model", "group_nesting": "nested"})):
        if args.saved:
            fit = bs.load_fit(args.saved / f"{label}.nc")
            fit_s = json.loads(args.fit_times.read_text())["fits"][label]["fit_wall_s"]
        else:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = bs.fit_hierarchical(df, random_seed=1, check_dependence=False, **kw)
            fit_s = time.perf_counter() - t0
        if args.save_dir:
            args.save_dir.mkdir(parents=True, exist_ok=True)
            fit.to_netcdf(args.save_dir / f"{label}.nc")
        table, times, cpu, msgs = _check_timed(df, fit, args.repeats, kw.get("group"))
        summary = fit.summary()
        sds[label] = summary["sd"]
        out["fits"][label] = {
            "kwargs": kw,
            "formulation": fit.formulation,
            "fit_wall_s": fit_s,
            "fit_from": str(args.fit_times) if args.saved else "measured in this run",
            "check_s": times,
            "check_median_s": statistics.median(times),
            "check_share_of_fit": statistics.median(times) / fit_s,
            "check_cpu_s": cpu,
            "check_cpu_median_s": statistics.median(cpu),
            "table": table.reset_index().to_dict(orient="records"),
            "skipped": table.attrs["skipped"],
            "n_permutations": table.attrs["n_permutations"],
            "warnings": msgs,
            "slope_mean": summary["mean"].to_dict(),
            "slope_sd": summary["sd"].to_dict(),
        }
        print(f"{label}: fit {fit_s:.1f} s, check median {statistics.median(times):.3f} s wall, "
              f"{statistics.median(cpu):.3f} s CPU "
              f"({100 * statistics.median(times) / fit_s:.2f}% of the fit)")
        print(table.to_string())
        for m in msgs:
            print("  WARNING:", m)
    ratio = sds["group_model_nested"] / sds["ungrouped"]
    out["sd_ratio_grouped_over_ungrouped"] = ratio.to_dict()
    out["sd_ratio_median"] = float(np.median(ratio))
    row = out["fits"]["ungrouped"]["table"]
    out["predicted_inflation_model"] = next(r["inflation"] for r in row if r["column"] == "model")
    print("sd ratio per task:", ratio.round(2).to_dict())
    print("predicted inflation ('model'):", out["predicted_inflation_model"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
