"""Measure, over many BAYESSLOPE_TEST_SEED shifts, what the sampling tests assert.

The statistical tests of tests/ fit small models (2 chains x 500 draws). Their thresholds
must hold for every seed on every machine, so they are set from the distribution of each
statistic over seed shifts, not from one seed. For each shift this script builds the
test fixtures exactly as pytest does (the fixture functions of the test modules, with
``conftest.SEED_SHIFT`` set), records the sampler diagnostics and the recovery z-scores
``(posterior mean - truth) / posterior sd``, and runs the test functions themselves.

Usage (one JSON line per fit and per test, appended to the output file)::

    nice -n 10 .venv/bin/python scripts/measure_test_margins.py --shifts 0-9 \
        --out scripts/measure_test_margins.jsonl [--cases variants,recovery,...]
    .venv/bin/python scripts/measure_test_margins.py --summarize scripts/measure_test_margins.jsonl
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CASES = ("variants", "structure", "recovery", "real_data", "weak")


def _diag(fit) -> dict:
    diag = fit.diagnostics()
    return {"divergences": int(diag.attrs["divergences"]),
            "r_hat_max": float(diag["r_hat_max"].max()),
            "r_hat_slope": float(diag.loc["slope", "r_hat_max"]),
            "ess_bulk_min": float(diag["ess_bulk_min"].min()),
            "ess_slope": float(diag.loc["slope", "ess_bulk_min"])}


def _z(fit, var, truth) -> np.ndarray:
    da = fit.posterior["posterior"][var]
    mean = da.mean(("chain", "draw"))
    sd = da.std(("chain", "draw"))
    if "task" in da.dims:
        tasks = list(da["task"].values)
        t = np.array([truth[str(k)] for k in tasks])
        return ((mean.values - t) / sd.values)
    return np.atleast_1d((mean.values - np.asarray(truth)) / sd.values)


def _fixture(mod, name, *args):
    return getattr(mod, name).__wrapped__(*args)


def _run_test(mod, name, *args) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(mod, name)(*args)
        return {"test": name, "passed": True}
    except AssertionError as err:
        first = (str(err).splitlines() or ["(no message)"])[0]
        return {"test": name, "passed": False, "error": first[:300],
                "trace": traceback.format_exc()[-600:]}
    except Exception as err:  # noqa: BLE001 - record, go on with the other tests
        return {"test": name, "passed": False,
                "error": f"{type(err).__name__}: {err}"[:300],
                "trace": traceback.format_exc()[-600:]}


def case_variants(emit):
    """The six fits of tests/test_variants.py and their recovery tests."""
    import test_variants as tv

    tv = importlib.reload(tv)
    specs = {
        "binom": ("binom_data", "binom_fit", ["test_binomial_probit_chance_recovers_slopes"]),
        "logit": ("logit_data", "logit_fit", ["test_binomial_logit_chance_recovers_slopes"]),
        "lapse": ("lapse_data", "lapse_fit", ["test_lapse_ceiling_recovered"]),
        "betabinom": ("betabinom_data", "betabinom_fit",
                      ["test_beta_binomial_recovers_slopes_and_overdispersion"]),
        "robust": ("robust_data", "robust_fit",
                   ["test_student_t_recovers_slopes_despite_outliers"]),
        "pooled": ("pooled_data", "pooled_fit", ["test_pooled_sigma_recovers_per_task_noise"]),
    }
    for name, (data_name, fit_name, tests) in specs.items():
        t0 = time.time()
        data = _fixture(tv, data_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = _fixture(tv, fit_name, data)
        _, truth = data
        rec = {"case": f"variants.{name}", "seconds": round(time.time() - t0, 1), **_diag(fit)}
        rec["z_slope_absmax"] = float(np.abs(_z(fit, "slope", truth["slope"])).max())
        if "slope_mu" in truth:
            rec["z_slope_mu"] = float(_z(fit, "slope_mu", truth["slope_mu"])[0])
        if "sigma" in truth and name == "pooled":
            post = fit.posterior["posterior"]
            logs = np.log(post["sigma"])
            z = (logs.mean(("chain", "draw")).values
                 - np.log([truth["sigma"][str(t)] for t in post["task"].values])
                 ) / logs.std(("chain", "draw")).values
            rec["z_log_sigma_absmax"] = float(np.abs(z).max())
        if name == "robust":
            post = fit.posterior["posterior"]
            rec["nu_median"] = float(post["nu"].median())
            rec["sigma_q05"] = float(post["sigma"].quantile(0.05))
            rec["sigma_q95"] = float(post["sigma"].quantile(0.95))
        if name == "lapse":
            post = fit.posterior["posterior"]
            z = (post["lapse"].mean(("chain", "draw")) - truth["lapse"]) / post["lapse"].std(
                ("chain", "draw"))
            rec["z_lapse_absmax"] = float(np.abs(z).max())
            lo = post["lapse"].quantile(0.005, ("chain", "draw"))
            hi = post["lapse"].quantile(0.995, ("chain", "draw"))
            rec["lapse_width99_max"] = float((hi - lo).max())
        if name == "betabinom":
            post = fit.posterior["posterior"]
            od = post["overdispersion"]
            rec["od_q005_max"] = float(od.quantile(0.005, ("chain", "draw")).max())
            rec["od_q995_n_above"] = int((od.quantile(0.995, ("chain", "draw")) > 0.08).sum())
            z = (od.mean(("chain", "draw")) - 0.08) / od.std(("chain", "draw"))
            rec["z_od_absmax"] = float(np.abs(z).max())
        emit(rec)
        for test in tests:
            emit({"case": f"variants.{name}", **_run_test(tv, test, fit, data)})


def case_structure(emit):
    """The errors-in-x and condition/group fits of tests/test_variants_structure.py."""
    import test_variants_structure as ts

    ts = importlib.reload(ts)
    t0 = time.time()
    data = _fixture(ts, "eiv_data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = _fixture(ts, "eiv_fits", data)
    naive, eiv = fits
    _, truth = data
    rec = {"case": "structure.eiv", "seconds": round(time.time() - t0, 1), **_diag(eiv)}
    rec["z_slope_mu"] = float(_z(eiv, "slope_mu", truth["slope_mu"])[0])
    rec["z_naive_slope_mu"] = float(_z(naive, "slope_mu", truth["slope_mu"])[0])
    emit(rec)
    emit({"case": "structure.eiv", **_run_test(
        ts, "test_eiv_ignoring_noise_attenuates_and_modelling_recovers", fits, data)})
    t0 = time.time()
    data = _fixture(ts, "cond_data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = _fixture(ts, "cond_fit", data)
    _, truth = data
    rec = {"case": "structure.cond", "seconds": round(time.time() - t0, 1), **_diag(fit)}
    z = _z(fit, "slope_mu_condition", truth["slope_mu_condition"])
    rec["z_slope_mu_condition_absmax"] = float(np.abs(z).max())
    emit(rec)
    emit({"case": "structure.cond", **_run_test(
        ts, "test_condition_slopes_and_differences", fit, data)})


def case_recovery(emit):
    """The four recovery fits of tests/conftest.py and tests/test_recovery.py."""
    import conftest
    import test_recovery as tr

    tr = importlib.reload(tr)
    t0 = time.time()
    sims = _fixture(conftest, "simulations")
    fits = _fixture(conftest, "recovery_fits", sims)
    for k, fit in fits.items():
        truth = {str(t): v for t, v in sims[k].slope.items()}
        emit({"case": f"recovery.{k}", "seconds": round((time.time() - t0) / len(fits), 1),
              **_diag(fit), "z_slope_absmax": float(np.abs(_z(fit, "slope", truth)).max())})
    for test in ("test_truth_inside_90pct_intervals_at_nominal_rate",
                 "test_point_estimates_close_to_truth", "test_planted_negative_task_detected"):
        emit({"case": "recovery", **_run_test(tr, test, sims, fits)})
    emit({"case": "recovery", **_run_test(tr, "test_recovery_fits_converged", fits)})


def case_real_data(emit):
    """The Pythia fit of tests/test_real_data.py."""
    import test_real_data as trd

    trd = importlib.reload(trd)
    t0 = time.time()
    pythia = _fixture(trd, "pythia")
    fit = _fixture(trd, "pythia_fit", pythia)
    emit({"case": "real_data.pythia", "seconds": round(time.time() - t0, 1), **_diag(fit)})
    emit({"case": "real_data", **_run_test(trd, "test_pythia_fit_diagnostics", fit)})
    emit({"case": "real_data", **_run_test(trd, "test_clear_task_slopes_match_ols", pythia, fit)})


def case_weak(emit):
    """The weak-data fit of tests/test_result.py."""
    import test_result as tres

    tres = importlib.reload(tres)
    t0 = time.time()
    fit_rec = _fixture(tres, "weak_fit_and_warnings")
    emit({"case": "weak", "seconds": round(time.time() - t0, 1), **_diag(fit_rec[0])})
    for test in ("test_weak_tasks_fitted_flagged_and_warned",
                 "test_weak_fit_has_no_divergence_explosion"):
        emit({"case": "weak", **_run_test(tres, test, fit_rec)})


def _shifts(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def summarize(path: Path) -> None:
    """Per case: max/quantiles of each statistic over shifts; failed tests by shift."""
    import pandas as pd

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    fits = df[df["test"].isna()] if "test" in df else df
    stats = [c for c in fits.columns if c not in ("case", "shift", "test", "passed", "error",
                                                  "trace")]
    for case, g in fits.groupby("case"):
        print(f"\n== {case}: {len(g)} shifts ({sorted(g['shift'].unique())})")
        desc = g[stats].dropna(axis=1, how="all").describe(percentiles=[0.5, 0.9]).T
        print(desc[["min", "50%", "90%", "max"]].to_string(float_format=lambda v: f"{v:.4g}"))
    if "test" in df:
        tests = df[df["test"].notna()].assign(passed=lambda t: t["passed"].astype(bool))
        print("\n== tests: passed / run")
        print(tests.groupby("test")["passed"].agg(["sum", "count"]).astype(int).to_string())
        failed = tests[~tests["passed"].astype(bool)]
        for _, r in failed.iterrows():
            print(f"FAILED shift {r['shift']} {r['test']}: {r.get('error')}")


def main(argv=None) -> int:
    """Run the cases for each shift, or summarize a results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shifts", default="0-4")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", default=str(ROOT / "scripts" / "measure_test_margins.jsonl"))
    parser.add_argument("--summarize", default=None)
    args = parser.parse_args(argv)
    if args.summarize:
        summarize(Path(args.summarize))
        return 0
    import conftest

    out = Path(args.out)
    for shift in _shifts(args.shifts):
        conftest.SEED_SHIFT = shift

        def emit(rec, shift=shift):
            rec = {"shift": shift, **rec}
            with out.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)

        for case in args.cases.split(","):
            globals()[f"case_{case}"](emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
