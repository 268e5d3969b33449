"""Single-fit benchmarks of bayesslope, each measurement in a fresh Python process.

Two halves live in this file:

* **workers** run inside a fresh child process (``python bench_single.py WORKER JSON``):
  they import, load data, fit and summarize, then print one ``BENCH_RESULT {json}``
  line with their own timings and the sampling diagnostics (computed *after* the timed
  region, so they never count);
* **benchmarks** run in the parent (``benchmarks/run.py``): they launch the workers,
  interleave the contenders repeat by repeat so that machine noise hits both alike, and
  return :class:`BenchResult` tables.

Wall time of a fresh process is measured from just before the parent launches the
child to the moment the child finishes the summary (``time.time()`` on both sides, one
clock), so it counts interpreter start-up, imports, model building, compilation,
sampling and summary, and nothing after.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULT_TAG = "BENCH_RESULT "
POPULATION_VARS = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr", "sigma")
CHILD_TIMEOUT_S = 3600
# PyMC's log line saying how the chains ran ("Multiprocess sampling (4 chains in 2 jobs)").
SAMPLING_MODE = re.compile(r"(?:Multiprocess|Sequential|Parallel)\w* sampling \([^)]*\)")
# Extra environment of every measured process (run.py --src sets PYTHONPATH here).
CHILD_ENV: dict[str, str] = {}

# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def simulate_tasks(n_tasks: int, n_points: int, seed: int = 0):
    """Simulated transfer data: ``n_tasks`` tasks x ``n_points`` (x, y) points each.

    Correlated task intercepts and slopes around a population mean, x a loss-like score
    (lower is better) and y an accuracy-like one, Gaussian noise. Same seed, same data.

    Returns
    -------
    pandas.DataFrame
        Columns ``x``, ``y``, ``task``.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    sd = np.array([0.08, 0.05])
    corr = np.array([[1.0, -0.4], [-0.4, 1.0]])
    coef = rng.multivariate_normal([0.55, -0.10], corr * np.outer(sd, sd), size=n_tasks)
    task = np.repeat(np.arange(n_tasks), n_points)
    x = rng.uniform(2.0, 4.0, size=n_tasks * n_points)
    y = coef[task, 0] + coef[task, 1] * (x - 3.0) + rng.normal(0.0, 0.03, size=x.size)
    return pd.DataFrame({"x": x, "y": y, "task": [f"task_{t:04d}" for t in task]})


def load_data(spec: dict):
    """The DataFrame named by ``spec``: ``{"kind": "pythia"}`` or ``{"kind": "sim", ...}``."""
    if spec["kind"] == "pythia":
        from bayesslope.datasets import load_dataset

        return load_dataset("pythia")
    if spec["kind"] == "sim":
        return simulate_tasks(spec["n_tasks"], spec["n_points"], spec.get("seed", 0))
    raise ValueError(f"unknown data kind {spec['kind']!r}")


def jittered(df, seed: int):
    """Same shape as ``df`` (tasks, rows), different y: for a second fit in one process."""
    import numpy as np

    out = df.copy()
    scale = 0.1 * float(np.std(out["y"]))
    out["y"] = out["y"] + np.random.default_rng(seed).normal(0.0, scale, size=len(out))
    return out


def describe_data(spec: dict) -> str:
    """Human-readable name of a data spec."""
    if spec["kind"] == "pythia":
        return "Pythia demo (7 tasks, 1,148 rows)"
    return f"simulated, {spec['n_tasks']} tasks x {spec['n_points']} points"


# ---------------------------------------------------------------------------------------
# Diagnostics (run in the child, after the timed region)
# ---------------------------------------------------------------------------------------


def diagnostics_summary(tree, var_names: Sequence[str] | None = None) -> dict:
    """Min bulk ESS, max R-hat (with the variables they come from) and divergences."""
    from bayesslope.diagnostics import sampling_diagnostics

    table = sampling_diagnostics(tree, var_names)
    pop = [v for v in POPULATION_VARS if v in table.index]
    return {
        "min_ess_bulk": float(table["ess_bulk_min"].min()),
        "min_ess_bulk_var": str(table["ess_bulk_min"].idxmin()),
        "min_ess_tail": float(table["ess_tail_min"].min()),
        "max_rhat": float(table["r_hat_max"].max()),
        "max_rhat_var": str(table["r_hat_max"].idxmax()),
        "min_ess_bulk_population": float(table.loc[pop, "ess_bulk_min"].min()) if pop else None,
        "divergences": int(table.attrs["divergences"]),
    }


def sampling_time(tree) -> float | None:
    """Seconds PyMC/nutpie report for sampling alone (``posterior.attrs['sampling_time']``)."""
    value = tree["posterior"].attrs.get("sampling_time")
    return float(value) if value is not None else None


def _warning_names(caught: list) -> list[str]:
    """Short ``Category: message`` strings of caught warnings, deduplicated."""
    seen: dict[str, None] = {}
    for w in caught:
        seen[f"{w.category.__name__}: {str(w.message)[:90]}..."] = None
    return list(seen)


# ---------------------------------------------------------------------------------------
# Workers (child side)
# ---------------------------------------------------------------------------------------


def worker_import(args: dict) -> dict:
    """``import bayesslope`` alone; with ``resolve``, also touch ``fit_hierarchical``."""
    t0 = time.time()
    import bayesslope as bs

    t1 = time.time()
    if args.get("resolve"):
        _ = bs.fit_hierarchical
    t2 = time.time()
    return {"import_s": t1 - t0, "resolve_s": t2 - t1, "t_done": t2}


def worker_features(args: dict) -> dict:
    """What the installed bayesslope/extras support, for skipping absent benchmarks."""
    from importlib.util import find_spec

    from bayesslope.fit import fit_hierarchical

    params = inspect.signature(fit_hierarchical).parameters
    formulation = params.get("formulation")
    annotation = str(formulation.annotation) if formulation is not None else ""
    import bayesslope

    return {
        "bayesslope_file": str(Path(bayesslope.__file__).resolve().parent),
        "formulation": formulation is not None,
        "collapsed": formulation is not None and "collapsed" in annotation,
        "formulation_annotation": annotation,
        "nutpie": find_spec("nutpie") is not None,
        "sampler_default": params["sampler"].default if "sampler" in params else None,
        "bambi": find_spec("bambi") is not None,
    }


def worker_bayesslope_fit(args: dict) -> dict:
    """Import, load, ``fit_hierarchical`` (``n_fits`` times, same shape), summary.

    ``t_done`` is taken right after the first fit's summary; later fits are timed on
    their own (``fits[i]["fit_s"]``) and are for the same-process refit benchmark.
    """
    t0 = time.time()
    import bayesslope as bs

    t1 = time.time()
    df = load_data(args["data"])
    t2 = time.time()
    fits, timings, caught_all = [], [], []
    t_done = None
    for i in range(args.get("n_fits", 1)):
        data = df if i == 0 else jittered(df, seed=i)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ta = time.time()
            fit = bs.fit_hierarchical(data, x="x", y="y", task="task", **args["fit"])
            tb = time.time()
            fit.summary()
            tc = time.time()
        caught_all += caught
        t_done = tc if t_done is None else t_done
        fits.append(fit)
        timings.append({"fit_s": tb - ta, "summary_s": tc - tb,
                        "sampling_time_s": sampling_time(fit.posterior)})
    for fit, timing in zip(fits, timings, strict=True):
        diag_vars = list(fit.diagnostics().index)
        timing.update(diagnostics_summary(fit.posterior, diag_vars))
        timing["formulation"] = fit.formulation
        timing["sampler"] = fit.spec.get("sampler", {}).get("sampler")
    return {
        "import_s": t1 - t0, "load_s": t2 - t1,
        "t_done": t_done, "fits": timings, "warnings": _warning_names(caught_all),
    }


def worker_bambi_fit(args: dict) -> dict:
    """Import bambi, build ``y ~ x + (x|task)``, fit (PyMC NUTS), ``az.summary``."""
    from bayesslope.datasets import load_dataset

    df = load_dataset("pythia")
    t0 = time.time()
    import arviz as az
    import bambi as bmb

    t1 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = bmb.Model(args.get("formula", "y ~ x + (x|task)"), df)
        t2 = time.time()
        idata = model.fit(draws=args["draws"], tune=args["tune"], chains=args["chains"],
                          cores=args.get("cores"), random_seed=args.get("random_seed"))
        t3 = time.time()
        az.summary(idata)
        t4 = time.time()
    fit = {"build_s": t2 - t1, "fit_s": t3 - t2, "summary_s": t4 - t3,
           "sampling_time_s": sampling_time(idata)}
    fit.update(diagnostics_summary(idata))
    return {"import_s": t1 - t0, "t_done": t4, "fits": [fit],
            "warnings": _warning_names(caught)}


WORKERS: dict[str, Callable[[dict], dict]] = {
    "import": worker_import,
    "features": worker_features,
    "bayesslope_fit": worker_bayesslope_fit,
    "bambi_fit": worker_bambi_fit,
}


def child_main(argv: Sequence[str]) -> int:
    """Entry point of a child: run one worker and print its ``BENCH_RESULT`` line."""
    name, payload = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    result = WORKERS[name](payload)
    sys.stdout.flush()
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------
# Launching children (parent side)
# ---------------------------------------------------------------------------------------


class ChildFailed(RuntimeError):
    """A benchmark child exited non-zero or printed no result."""


def run_child(worker: str, args: dict | None = None, *, python: str | None = None,
              env: dict | None = None) -> dict:
    """Run ``worker`` in a fresh process; return its result plus ``wall_s`` and ``exit_s``.

    ``wall_s``: launch -> end of the timed work (``t_done``); ``exit_s``: launch -> exit.
    """
    cmd = [python or sys.executable, str(Path(__file__).resolve()), worker,
           json.dumps(args or {})]
    load_before = os.getloadavg()[0]
    cpu_before = _children_cpu_s()
    t_launch = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                          env={**os.environ, **CHILD_ENV, **(env or {})}, cwd=HERE.parent)
    t_exit = time.time()
    cpu_s = _children_cpu_s() - cpu_before
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise ChildFailed(f"{worker} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_TAG):])
    result["exit_s"] = t_exit - t_launch
    result["cpu_s"] = cpu_s
    if "t_done" in result:
        result["wall_s"] = result["t_done"] - t_launch
    result["loadavg_before"] = load_before
    result["sampling_mode"] = sorted(set(SAMPLING_MODE.findall(proc.stderr)))
    result["log_tail"] = proc.stderr[-2000:]
    result["loadavg_after"] = os.getloadavg()[0]
    return result


def _children_cpu_s() -> float:
    """User + system CPU seconds of all reaped descendants (sampler workers included)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def features(python: str | None = None) -> dict:
    """Installed capabilities (formulation argument, nutpie, bambi), from a child."""
    return run_child("features", python=python)


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------


@dataclass
class BenchResult:
    """One benchmark's table, ready to print as markdown."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    raw: dict = field(default_factory=dict)


def skipped(name: str, title: str, reason: str) -> BenchResult:
    """A benchmark that did not run, and why."""
    return BenchResult(name=name, title=title, columns=[], skipped=reason)


def median(values: Sequence[float | None]) -> float | None:
    """Median of the non-None values (None if there are none)."""
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(value: Any, digits: int = 1) -> str:
    """Compact table cell: floats rounded, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def per_repeat(values: Sequence[float | None], digits: int = 1) -> str:
    """``median (a / b / c)`` when several repeats, else the single value."""
    vals = [v for v in values if v is not None]
    if len(vals) <= 1:
        return fmt(vals[0] if vals else None, digits)
    inner = " / ".join(fmt(v, digits) for v in vals)
    return f"{fmt(median(vals), digits)} ({inner})"


def fit_row(label: str, runs: list[dict], fit_index: int = 0) -> dict[str, Any]:
    """Aggregate one contender's repeats: wall, sampling, setup, ESS, R-hat, ESS/s."""
    fits = [r["fits"][fit_index] for r in runs]
    walls = [r["wall_s"] for r in runs]
    samp = [f.get("sampling_time_s") for f in fits]
    setup = [f["fit_s"] - s if s is not None else None for f, s in zip(fits, samp, strict=True)]
    ess = [f["min_ess_bulk"] for f in fits]
    return {
        "label": label, "wall": walls, "fit": [f["fit_s"] for f in fits], "sampling": samp,
        "setup": setup, "ess": ess, "ess_pop": [f.get("min_ess_bulk_population") for f in fits],
        "ess_var": fits[0]["min_ess_bulk_var"], "rhat": max(f["max_rhat"] for f in fits),
        "rhat_var": fits[0]["max_rhat_var"], "div": [f["divergences"] for f in fits],
        "ess_per_s": [e / w for e, w in zip(ess, walls, strict=True)],
        "ess_per_sampling_s": [e / t if t else None for e, t in zip(ess, samp, strict=True)],
        "import": [r.get("import_s") for r in runs],
        "cpu": [r.get("cpu_s") for r in runs],
    }


def contender(runs: list[dict], prefix: str = "bayesslope") -> str:
    """``prefix (formulation, sampler)`` as the fits actually ran (from their spec)."""
    fit = runs[0]["fits"][0]
    return f"{prefix} ({fit.get('formulation')}, {fit.get('sampler')} NUTS)"


def mode_note(runs_by_label: dict[str, list[dict]]) -> str:
    """How each contender's chains ran, from PyMC's log (empty for nutpie)."""
    parts = [f"{label}: " + (", ".join(sorted({m for r in runs for m in r["sampling_mode"]}))
                             or "no PyMC sampling line (nutpie or not logged)")
             for label, runs in runs_by_label.items()]
    return "Chains, from the sampler log: " + "; ".join(parts) + "."


def load_note(runs_by_label: dict[str, list[dict]]) -> str:
    """The 1-minute load average before each measurement (2 CPUs: >2 means contention)."""
    parts = [f"{label}: " + " / ".join(f"{r['loadavg_before']:.1f}" for r in runs)
             for label, runs in runs_by_label.items()]
    return "1-min load average before each run (other jobs share the machine): " + \
        "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------
# Benchmarks (parent side)
# ---------------------------------------------------------------------------------------

PYTHIA = {"kind": "pythia"}
CPU_NOTE = ("CPU = user + system seconds of the whole measured process tree (sampler "
            "workers included, and the diagnostics computed after the timed region); less "
            "sensitive than wall time to other jobs on the machine.")

# Sampling settings of every fit (run.py --quick lowers draws/tune for smoke tests).
SAMPLING = {"draws": 1000, "tune": 1000, "chains": 4}


def sampling_text() -> str:
    """``4 chains x 1,000 draws after 1,000 tuning steps`` for the current SAMPLING."""
    return (f"{SAMPLING['chains']} chains x {SAMPLING['draws']:,} draws after "
            f"{SAMPLING['tune']:,} tuning steps")


def bench_import(repeats: int, python: str | None = None) -> BenchResult:
    """Fresh-process ``import bayesslope``, and the same plus PyMC (``fit_hierarchical``)."""
    cases = [("`python -c pass` (interpreter only)", None),
             ("`import bayesslope`", {"resolve": False}),
             ("`import bayesslope; bayesslope.fit_hierarchical` (pulls in PyMC)",
              {"resolve": True})]
    runs: dict[str, list[dict]] = {label: [] for label, _ in cases}
    n = max(repeats, 5)
    for _ in range(n):
        for label, args in cases:
            runs[label].append(_bare_interpreter(python) if args is None
                               else run_child("import", args, python=python))
    res = BenchResult("import", "Import time (fresh process)",
                      ["what", "process wall, s", "in-process import, s"])
    for label, _ in cases:
        rs = runs[label]
        inner = [r.get("import_s", 0.0) + r.get("resolve_s", 0.0) for r in rs]
        res.rows.append([label, per_repeat([r["exit_s"] for r in rs], 3),
                         per_repeat(inner, 3) if label != cases[0][0] else "-"])
    res.notes.append(f"{n} repeats each, interleaved; process wall = launch to exit.")
    res.raw = runs
    return res


def _bare_interpreter(python: str | None) -> dict:
    """Wall time of ``python -c pass`` (interpreter start-up), for reference."""
    t0 = time.time()
    subprocess.run([python or sys.executable, "-c", "pass"], check=True)
    return {"exit_s": time.time() - t0}


def bench_pythia_vs_bambi(repeats: int, python: str | None = None, seed: int = 1,
                          bambi_cores: int | None = 2) -> BenchResult:
    """Issue 2: bayesslope vs Bambi on the Pythia demo, fresh process each, interleaved.

    bayesslope runs with its defaults, plus ``formulation="full"`` as a second row when
    the ``formulation`` argument exists. Bambi runs with its defaults, where PyMC picks
    ``cores = cpu_count() // 2`` (1 on a 2-CPU machine: chains one after the other), and
    again with ``cores=bambi_cores`` (bayesslope's default on 2 CPUs) unless None.
    """
    title = "Pythia demo: bayesslope `fit_hierarchical` vs Bambi `y ~ x + (x|task)`"
    feats = features(python)
    if not feats["bambi"]:
        return skipped("pythia", title, "bambi is not installed (pip install -e '.[bench]')")
    cases = [("bs-default", "bayesslope_fit", {"data": PYTHIA,
                                               "fit": {**SAMPLING, "random_seed": seed}})]
    if feats["formulation"]:
        cases.append(("bs-full", "bayesslope_fit",
                      {"data": PYTHIA, "fit": {**SAMPLING, "random_seed": seed,
                                               "formulation": "full"}}))
    cases.append(("bambi", "bambi_fit", {**SAMPLING, "random_seed": seed}))
    if bambi_cores:
        cases.append(("bambi-cores", "bambi_fit",
                      {**SAMPLING, "random_seed": seed, "cores": bambi_cores}))
    runs: dict[str, list[dict]] = {key: [] for key, _, _ in cases}
    for i in range(repeats):
        for key, worker, args in cases if i % 2 == 0 else cases[::-1]:
            _log(f"pythia repeat {i + 1}/{repeats}: {key}")
            runs[key].append(run_child(worker, args, python=python))
    labels = {key: contender(runs[key]) for key in runs if key.startswith("bs")}
    labels["bambi"] = "Bambi defaults (PyMC NUTS)"
    if bambi_cores:
        labels["bambi-cores"] = f"Bambi, cores={bambi_cores} (PyMC NUTS)"
    labels["bs-default"] = labels["bs-default"].replace("bayesslope", "bayesslope default")
    rows = [fit_row(labels[key], runs[key]) for key in runs]
    res = _fit_table("pythia", title, rows, baseline=list(runs).index("bambi"))
    res.notes += [
        f"{repeats} repeat(s) per contender, order reversed every other repeat; cells with "
        "several repeats show `median (run 1 / run 2 / ...)`.",
        f"All: {sampling_text()}, random_seed={seed}. Bambi: its defaults otherwise (PyMC "
        "NUTS, independent group effects, target_accept 0.8, init='auto'; PyMC's default "
        "cores = cpu_count() // 2 = 1 here, so its chains run one after the other); "
        "bayesslope: its defaults (correlated LKJ, target_accept 0.9, "
        "parameterization='auto', cores = min(chains, cpu_count()) = 2).",
        "Wall = fresh `python` process from launch to the end of the summary (interpreter "
        "start-up + imports + model build/compile + sampling + `summary()` / `az.summary`).",
        CPU_NOTE,
        "Sampling = `posterior.attrs['sampling_time']` (the sampler's own clock); setup = "
        "fit call - sampling (model build, compilation, worker start-up, conversion).",
        "Min ESS / max R-hat: bayesslope over `fit.diagnostics()` (all posterior variables, "
        "derived slopes included); Bambi over all variables of its posterior.",
        "In-process import: " + "; ".join(
            f"{labels[k]} {per_repeat([r['import_s'] for r in runs[k]], 2)} s" for k in runs)
        + " (bayesslope: `import bayesslope` is lazy, PyMC loads inside the fit call).",
        load_note({labels[k]: runs[k] for k in runs}),
        mode_note({labels[k]: runs[k] for k in runs}),
        f"bayesslope imported from `{feats['bayesslope_file']}`.",
    ]
    res.notes += _warning_notes({labels[k]: runs[k] for k in runs})
    res.raw = {"features": feats, **runs}
    return res


def bench_formulation(repeats: int, python: str | None = None, seed: int = 1) -> BenchResult:
    """Issue 4: ``formulation="collapsed"`` vs ``"full"`` on the Pythia demo, fresh processes.

    ``full`` with its default sampler; ``collapsed`` with PyMC's NUTS and with nutpie,
    so that the formulation and the sampler can be told apart.
    """
    title = "Pythia demo: `formulation=\"collapsed\"` vs `\"full\"`"
    feats = features(python)
    if not feats["collapsed"]:
        return skipped("formulation", title,
                       "fit_hierarchical has no formulation='collapsed' yet "
                       f"(formulation argument: {feats['formulation']})")
    cases = [("full", {"formulation": "full"}),
             ("collapsed-pymc", {"formulation": "collapsed", "sampler": "pymc"}),
             ("collapsed-nutpie", {"formulation": "collapsed", "sampler": "nutpie"})]
    runs = _interleave(cases, repeats, PYTHIA, seed, python)
    rows = [fit_row(contender(runs[key]), runs[key]) for key, _ in cases]
    res = _fit_table("formulation", title, rows, baseline=0)
    res.notes += [
        f"{repeats} repeat(s), order reversed every other repeat; {sampling_text()}, "
        f"random_seed={seed}; wall = fresh process from launch to "
        "the end of `summary()`. Full with its default sampler, collapsed with each "
        f"sampler (signature default: sampler={feats.get('sampler_default')!r}).",
        CPU_NOTE,
        load_note(runs),
        mode_note(runs),
    ]
    res.notes += _warning_notes(runs)
    res.raw = {"features": feats, **runs}
    return res


def bench_refit(repeats: int, python: str | None = None, seed: int = 1) -> BenchResult:
    """Issue 4: first vs second fit of the same shape in one process (per formulation)."""
    title = "Second fit of the same shape in the same process (Pythia demo, y jittered)"
    feats = features(python)
    cases = [("full", {"formulation": "full"} if feats["formulation"] else {})]
    if feats["collapsed"]:
        cases.append(("collapsed-pymc", {"formulation": "collapsed", "sampler": "pymc"}))
        if feats["nutpie"]:
            cases.append(("collapsed-nutpie", {"formulation": "collapsed", "sampler": "nutpie"}))
    runs = _interleave(cases, repeats, PYTHIA, seed, python, n_fits=2)
    res = BenchResult("refit", title, ["formulation, sampler", "fit 1, s", "fit 2, s",
                                       "fit 2 / fit 1", "sampling 1, s", "sampling 2, s",
                                       "min ESS fit 1 / fit 2"])
    for key, _ in cases:
        rs = runs[key]
        f1 = [r["fits"][0]["fit_s"] for r in rs]
        f2 = [r["fits"][1]["fit_s"] for r in rs]
        ess = [f"{r['fits'][0]['min_ess_bulk']:.0f} / {r['fits'][1]['min_ess_bulk']:.0f}"
               for r in rs]
        res.rows.append([contender(rs, "").strip(" ()").replace(" NUTS", ""),
                         per_repeat(f1), per_repeat(f2),
                         fmt(median([b / a for a, b in zip(f1, f2, strict=True)]), 2) + "x",
                         per_repeat([r["fits"][0]["sampling_time_s"] for r in rs]),
                         per_repeat([r["fits"][1]["sampling_time_s"] for r in rs]),
                         ", ".join(ess)])
    if not feats["collapsed"]:
        res.notes.append("SKIPPED collapsed row: fit_hierarchical has no "
                         "formulation='collapsed' yet.")
    res.notes += [
        f"{repeats} repeat(s). One fresh process per repeat does fit 1 on the data, then fit 2 "
        "on the same data with y + N(0, (0.1 sd(y))^2) noise (same tasks, same rows); times "
        f"are the `fit_hierarchical` call alone (no import, no summary), {sampling_text()}, "
        f"random_seed={seed}; samplers as named (the nutpie path caches the compiled "
        "model per structure, so fit 2 skips compilation).",
        load_note(runs),
        mode_note(runs),
    ]
    res.notes += _warning_notes(runs)
    res.raw = {"features": feats, **runs}
    return res


def bench_scale(repeats: int, python: str | None = None, seed: int = 1,
                n_tasks: int = 500, n_points: int = 20) -> BenchResult:
    """Issue 4: 500 tasks x 20 points, min-ESS per wall second, collapsed vs nutpie full."""
    data = {"kind": "sim", "n_tasks": n_tasks, "n_points": n_points, "seed": 0}
    title = f"{describe_data(data).capitalize()}: min ESS per second of wall time"
    feats = features(python)
    missing = [why for ok, why in ((feats["collapsed"], "formulation='collapsed'"),
                                   (feats["nutpie"], "nutpie")) if not ok]
    if missing:
        return skipped("scale", title, "needs " + " and ".join(missing) + ", not available")
    cases = [("collapsed", {"formulation": "collapsed"}),
             ("collapsed-nutpie", {"formulation": "collapsed", "sampler": "nutpie"}),
             ("full-centered-nutpie", {"formulation": "full", "parameterization": "centered",
                                       "sampler": "nutpie"})]
    runs = _interleave(cases, repeats, data, seed, python)
    rows = [fit_row(contender(runs[key]) + (" centered" if "centered" in key else ""),
                    runs[key]) for key, _ in cases]
    res = _fit_table("scale", title, rows, baseline=len(rows) - 1, ess_per_s=True)
    res.notes += [
        f"{repeats} repeat(s), order reversed every other repeat; {sampling_text()}, "
        f"random_seed={seed}; data from "
        "`benchmarks/bench_single.py:simulate_tasks` (seed 0); the first row is collapsed "
        f"with the default sampler (sampler={feats.get('sampler_default')!r}).",
        "Min ESS over `fit.diagnostics()` (every variable, task coefficients included); "
        "'min ESS (pop.)' over the population parameters and sigma only. "
        "ESS/s = min ESS / fresh-process wall (start-up + import + build + compile + sample "
        "+ summary); 'min ESS / sampling s' divides by the sampler's own clock (tuning + "
        "draws, compilation excluded: `posterior.attrs['sampling_time']`, which bayesslope "
        "also records around `nutpie.sample` for the compile-once path).",
        CPU_NOTE,
        load_note(runs),
        mode_note(runs),
    ]
    res.notes += _warning_notes(runs)
    res.raw = {"features": feats, **runs}
    return res


def _interleave(cases: list[tuple[str, dict]], repeats: int, data: dict, seed: int,
                python: str | None, n_fits: int = 1) -> dict[str, list[dict]]:
    """Run each case ``repeats`` times in fresh processes, alternating the order."""
    runs: dict[str, list[dict]] = {label: [] for label, _ in cases}
    for i in range(repeats):
        for label, extra in cases if i % 2 == 0 else cases[::-1]:
            _log(f"repeat {i + 1}/{repeats}: {label}")
            args = {"data": data, "fit": {**SAMPLING, "random_seed": seed, **extra},
                    "n_fits": n_fits}
            runs[label].append(run_child("bayesslope_fit", args, python=python))
    return runs


def _fit_table(name: str, title: str, rows: list[dict], baseline: int,
               ess_per_s: bool = False) -> BenchResult:
    """Markdown table of fit rows, with wall ratios against ``rows[baseline]``."""
    base = median(rows[baseline]["wall"])
    base_cpu = median(rows[baseline]["cpu"])
    cols = ["contender", "wall, s", f"wall / wall of {rows[baseline]['label']}",
            "CPU, s", "CPU / CPU of baseline",
            "sampling, s", "setup, s", "min bulk ESS (variable)", "max R-hat (variable)",
            "divergences"]
    if ess_per_s:
        cols += ["min ESS (pop.)", "min ESS / wall s", "min ESS / sampling s",
                 "ESS/sampling s vs baseline"]
    res = BenchResult(name, title, cols)
    for r in rows:
        cells = [r["label"], per_repeat(r["wall"]), fmt(median(r["wall"]) / base, 2) + "x",
                 per_repeat(r["cpu"]), fmt(median(r["cpu"]) / base_cpu, 2) + "x",
                 per_repeat(r["sampling"]), per_repeat(r["setup"]),
                 f"{per_repeat(r['ess'], 0)} ({r['ess_var']})",
                 f"{r['rhat']:.4f} ({r['rhat_var']})", "/".join(str(d) for d in r["div"])]
        if ess_per_s:
            base_eps = median(rows[baseline]["ess_per_sampling_s"])
            eps = median(r["ess_per_sampling_s"])
            cells += [per_repeat(r["ess_pop"], 0), per_repeat(r["ess_per_s"], 2),
                      per_repeat(r["ess_per_sampling_s"], 1),
                      fmt(eps / base_eps, 1) + "x" if eps and base_eps else "-"]
        res.rows.append(cells)
    return res


def _warning_notes(runs_by_label: dict[str, list[dict]]) -> list[str]:
    """One note per contender that raised Python warnings in the fit (deduplicated)."""
    notes = []
    for label, runs in runs_by_label.items():
        names = sorted({w for r in runs for w in r.get("warnings", [])})
        if names:
            notes.append(f"Warnings from {label}: " + "; ".join(names))
    return notes


def _log(message: str) -> None:
    """Progress line on stderr (keeps stdout for the markdown)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


BENCHMARKS: dict[str, Callable[..., BenchResult]] = {
    "import": bench_import,
    "pythia": bench_pythia_vs_bambi,
    "formulation": bench_formulation,
    "refit": bench_refit,
    "scale": bench_scale,
}


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
