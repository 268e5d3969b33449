"""Transfer-matrix benchmark: fast path vs closed form vs a loop of PyMC fits, plus real data.

Every part runs in its own subprocess (fresh JAX/PyMC state, its own peak RSS), side by
side in one invocation::

    /tmp/venvtest/bin/python benchmarks/bench_pairs.py --tasks 101 --units 20 \
        --loop-pairs 3 --real --out benchmarks/RESULTS_pairs.md

``--tasks 101`` gives 101 * 100 = 10,100 ordered pairs. Parts: ``fast`` (fit_transfer_matrix,
summaries only, cold = first call in a process incl. JIT compilation, with an empty JAX
compilation cache, then warm = a second fit of the same shapes; ``--runs`` also takes
``warm_keep_draws``), ``fast_cached`` (run after ``fast``: a cold fit in a fresh process that
finds the compiled programs ``fast`` left in the persistent cache), ``closed`` (conjugate draws of
every pair with the population fixed, numpy, 4 x 1000 draws + the same summaries), ``loop``
(``pm.sample(nuts_sampler="pymc")`` on a few single pairs, extrapolated), ``real``
(OpenCLIP 37 tasks + ImageNet, Pythia 57 MMLU subjects with checkpoints as independent
units and with ``group="model"``; heatmaps to docs/img/; ``--real-only`` picks some),
``mmlu_grouped`` (19 MMLU subjects, checkpoints as independent units vs ``group="model"``),
``grouped_threads`` (grouped per-pair NUTS on ``--robust-tasks`` tasks: chunk threads, spawned
chunk processes ``procN`` or a Dask cluster ``daskN``, ``--threads``),
``dask_gaussian`` (``--tasks`` tasks on a ``--dask-workers`` LocalCluster, streamed to Zarr),
``chunk_scaling`` (seconds per chunk of grouped per-pair NUTS at ``--scaling-tasks`` task
counts, a few chunks each: predicts the pair stage of a large matrix),
``gpu`` (the fast path at ``--gpu-tasks`` sizes on an accelerator: throughput, device memory),
``robust`` (``likelihood="student_t"``, or ``"binomial"`` with ``--robust-likelihood binomial``
on accuracies over 500 questions, or ``group=`` with ``--robust-likelihood grouped``, on
``--robust-tasks`` tasks: per-pair NUTS, cold and warm)
and ``robust_loop`` (the same pair model, one ``pm.sample`` per pair, on ``--loop-pairs``
pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("BAYESSLOPE_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def simulate(n_tasks: int, n_units: int, seed: int = 0) -> pd.DataFrame:
    """Scores of n_units models on n_tasks tasks from 3 latent abilities plus noise."""
    rng = np.random.default_rng(seed)
    lat = rng.normal(size=(n_units, 3))
    load = rng.normal(size=(n_tasks, 3))
    s = lat @ load.T + 0.7 * rng.normal(size=(n_units, n_tasks))
    return pd.DataFrame({
        "model": np.repeat([f"m{i}" for i in range(n_units)], n_tasks),
        "task": np.tile([f"t{k:03d}" for k in range(n_tasks)], n_units),
        "y": s.ravel(),
    })


N_EVAL = 500  # questions per task in the binomial benchmark


def simulate_accuracy(n_tasks: int, n_units: int, seed: int = 0) -> pd.DataFrame:
    """Accuracies on N_EVAL questions: probit of the latent scores of :func:`simulate`."""
    from scipy.special import ndtr

    df = simulate(n_tasks, n_units, seed)
    rng = np.random.default_rng(seed + 1)
    p = ndtr(0.4 * df["y"].to_numpy())
    return df.assign(y=rng.binomial(N_EVAL, p) / N_EVAL)


def simulate_grouped(n_tasks: int, n_units: int, seed: int = 0, size: int = 4) -> pd.DataFrame:
    """:func:`simulate` with units in groups of ``size`` (e.g. checkpoints of one model)
    sharing a random offset per task."""
    df = simulate(n_tasks, n_units, seed)
    rng = np.random.default_rng(seed + 2)
    unit = df["model"].str[1:].astype(int).to_numpy()
    task = df["task"].str[1:].astype(int).to_numpy()
    offset = 0.5 * rng.normal(size=(n_units // size + 1, n_tasks))
    return df.assign(family=[f"f{u // size}" for u in unit],
                     y=df["y"].to_numpy() + offset[unit // size, task])


def _robust_frame(args) -> tuple[pd.DataFrame, dict]:
    if args.robust_likelihood == "grouped":
        return (simulate_grouped(args.robust_tasks, args.units),
                {"likelihood": "normal", "group": "family"})
    if args.robust_likelihood == "binomial":
        return (simulate_accuracy(args.robust_tasks, args.units),
                {"likelihood": "binomial", "n_eval": N_EVAL})
    return simulate(args.robust_tasks, args.units), {"likelihood": "student_t"}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def diag_line(tm) -> dict:
    d = tm.diagnostics().attrs
    n = d["n_pairs"]
    t = tm.summary()
    both = float(((t["r_hat"] <= 1.01) & (t["ess_bulk"] >= 400)).mean())
    return {"pairs": n, "rhat_high": d["n_rhat_high"], "ess_low": d["n_ess_low"],
            "divergences": d["divergences"], "frac_pass": both,
            "ess_bulk_min": float(t["ess_bulk"].min()), "r_hat_max": float(t["r_hat"].max())}


def part_fast(args) -> dict:
    from bayesslope.pairs import fit_transfer_matrix

    df = simulate(args.tasks, args.units)
    out = {}
    runs = [r for r in [("cold", 1, False), ("warm", 2, False), ("warm_keep_draws", 3, True)]
            if r[0] in args.runs.split(",")]
    for label, seed, keep in runs:
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm = fit_transfer_matrix(df, random_seed=seed, keep_draws=keep,
                                     per_pair_sigma=args.sigma == "pair")
        wall = time.perf_counter() - t0
        out[label] = {"wall_s": wall, "cpu_s": time.process_time() - c0,
                      **tm.spec["timings"], **diag_line(tm),
                      "peak_rss_mb": peak_mb(), "load_avg": os.getloadavg()}
    return out


def part_closed(args) -> dict:
    from bayesslope.collapsed import draw_task_coefficients, task_sufficient_stats
    from bayesslope.pairs.design import build_pair_design

    df = simulate(args.tasks, args.units)
    d = build_pair_design(df)
    t0 = time.perf_counter()
    stats = task_sufficient_stats(d.x, d.y, d.pair_idx, d.n_pairs)
    shape = (4, 1000)
    params = {"intercept_mu": np.zeros(shape), "slope_mu": np.full(shape, 0.1),
              "intercept_sigma": np.full(shape, 0.1), "slope_sigma": np.full(shape, 0.5),
              "corr": np.zeros(shape), "sigma": np.full(shape, 0.7)}
    rng = np.random.default_rng(0)
    a, b = draw_task_coefficients(rng, stats, params)
    draws_s = time.perf_counter() - t0
    b = b.reshape(-1, b.shape[-1])
    mean, sd = b.mean(0), b.std(0, ddof=1)
    np.quantile(b, [0.025, 0.975], axis=0)
    (b < 0).mean(0)
    return {"pairs": d.n_pairs, "wall_s": time.perf_counter() - t0, "draws_s": draws_s,
            "cpu_s": time.process_time(),
            "peak_rss_mb": peak_mb(), "slope_mean_avg": float(mean.mean()),
            "slope_sd_avg": float(sd.mean())}


def part_loop(args) -> dict:
    import pymc as pm

    from bayesslope.pairs.design import build_pair_design

    df = simulate(args.tasks, args.units)
    d = build_pair_design(df)
    times = []
    for p in range(args.loop_pairs):
        x, y = d.x[d.pair_idx == p], d.y[d.pair_idx == p]
        t0 = time.perf_counter()
        with pm.Model():
            a = pm.Normal("intercept", 0.0, 1.0)
            b = pm.Normal("slope", 0.0, 1.0)
            s = pm.HalfNormal("sigma", 1.0)
            pm.Normal("y", a + b * x, s, observed=y)
            pm.sample(draws=1000, tune=1000, chains=4, cores=2, nuts_sampler="pymc",
                      random_seed=p, progressbar=False, compute_convergence_checks=False)
        times.append(time.perf_counter() - t0)
    return {"per_pair_s": times, "load_avg": os.getloadavg(), "mean_s": float(np.mean(times)),
            "extrapolated_s": float(np.mean(times)) * d.n_pairs, "pairs": d.n_pairs}


def part_robust(args) -> dict:
    from bayesslope.pairs import fit_transfer_matrix

    df, kw = _robust_frame(args)
    out = {"likelihood": args.robust_likelihood}
    for label, seed in (("cold", 1), ("warm", 2)):
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm = fit_transfer_matrix(df, random_seed=seed, keep_draws=False, **kw)
        wall = time.perf_counter() - t0
        out[label] = {"wall_s": wall, "cpu_s": time.process_time() - c0,
                      "per_pair_s": wall / tm.design.n_pairs, **tm.spec["timings"],
                      **diag_line(tm), "peak_rss_mb": peak_mb(), "load_avg": os.getloadavg()}
    return out


def part_robust_loop(args) -> dict:
    import pymc as pm

    from bayesslope.pairs.design import build_pair_design

    df, kw = _robust_frame(args)
    d = build_pair_design(df, group=kw.get("group"))
    units = d.observation_units()
    times = []
    for p in range(args.loop_pairs):
        m = d.pair_idx == p
        x, y = d.x[m], d.y[m]
        t0 = time.perf_counter()
        with pm.Model():
            coef = pm.Normal("coef", 0.0, 1.0, shape=2)
            if args.robust_likelihood == "grouped":
                g = d.unit_group[units[m]]
                s = pm.HalfNormal("sigma", 1.0)
                tau = pm.HalfNormal("tau", 1.0)
                z = pm.Normal("z", 0.0, 1.0, shape=len(d.groups))
                pm.Normal("y", coef[0] + coef[1] * x + tau * z[g], s, observed=y)
            elif args.robust_likelihood == "binomial":
                k = np.round(d.scores[units[m], d.target[p]] * N_EVAL)
                pm.Binomial("k", n=N_EVAL, p=pm.math.invprobit(coef[0] + coef[1] * x),
                            observed=k)
            else:
                s = pm.HalfNormal("sigma", 1.0)
                nu = pm.Gamma("nu", alpha=2.0, beta=0.1)
                pm.StudentT("y", nu=nu, mu=coef[0] + coef[1] * x, sigma=s, observed=y)
            pm.sample(draws=1000, tune=1000, chains=4, cores=2, nuts_sampler="pymc",
                      random_seed=p, progressbar=False, compute_convergence_checks=False)
        times.append(time.perf_counter() - t0)
    return {"likelihood": args.robust_likelihood, "per_pair_s": times, "load_avg": os.getloadavg(),
            "mean_s": float(np.mean(times)), "pairs": d.n_pairs}


def _real_frames() -> dict:
    o = pd.read_csv(os.path.join(DATA, "openclip_imagenet", "openclip_imagenet_vs_tasks.csv"))
    inet = o.drop_duplicates("model")[["model", "x", "x_higher_is_better"]].rename(
        columns={"x": "y", "x_higher_is_better": "y_higher_is_better"}).assign(
        task="ImageNet-1k")
    o = pd.concat([o[["model", "task", "y", "y_higher_is_better"]], inet], ignore_index=True)
    p = pd.read_csv(os.path.join(DATA, "pythia_lambada", "pythia_lambada_vs_mmlu.csv"))
    p = p.assign(unit=p["model"] + "@" + p["step"].astype(str),
                 task=p["task"].str.replace("mmlu_", "", regex=False))
    return {"openclip": (o, "model", None, {}),  # y_better from y_higher_is_better
            "mmlu": (p, "unit", "higher", {}),
            # 15 checkpoints of each of 16 models: a random intercept per model and pair
            "mmlu_grouped": (p, "unit", "higher", {"group": "model"})}


def part_real(args) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    from bayesslope.pairs import fit_transfer_matrix

    out = {}
    frames = _real_frames()
    for name in args.real_only.split(",") if args.real_only else frames:
        df, unit, better, extra = frames[name]
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tm = fit_transfer_matrix(df, unit=unit, task="task", y="y", y_better=better,
                                     random_seed=1, keep_draws=False, **extra)
        wall = time.perf_counter() - t0
        fig = tm.plot()
        path = os.path.join(args.figures or os.path.join(ROOT, "docs", "img"),
                            f"pairs_{name}.png")
        # the figure folder may not exist yet: a 14-minute fit must not be lost to it
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        s = tm.summary()
        out[name] = {"tasks": tm.design.n_tasks, "units": len(tm.design.units),
                     "wall_s": wall, "method": tm.spec["method"],
                     **tm.spec["timings"], **diag_line(tm),
                     "n_p_negative_gt_0.9": int((s["p_negative"] > 0.9).sum()),
                     "warnings": sorted({str(w.message)[:160] for w in caught}),
                     "most_negative": s.nsmallest(5, "mean")[
                         ["mean", "sd", "p_negative"]].round(3).reset_index()
                     .to_dict("records"),
                     "order_head": tm.task_order()[:8], "figure": os.path.relpath(path, ROOT)}
    return out


def part_mmlu_grouped(args) -> dict:
    """Pythia MMLU, every third subject (19): units as independent vs ``group="model"``.

    The 240 units are 15 checkpoints of 16 models; grouping gives each pair a random
    intercept per model, so a model's shared offset on the target is not read as transfer.
    """
    from bayesslope.pairs import fit_transfer_matrix

    df, unit, better, _ = _real_frames()["mmlu"]
    subjects = sorted(df["task"].unique())[::3]
    df = df[df["task"].isin(subjects)]
    out, tables = {"subjects": subjects}, {}
    for label, kw in (("independent", {}), ("grouped", {"group": "model"})):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm = fit_transfer_matrix(df, unit=unit, task="task", y="y", y_better=better,
                                     random_seed=1, keep_draws=False, **kw)
        s = tables[label] = tm.summary()
        out[label] = {"wall_s": time.perf_counter() - t0, "method": tm.spec["method"],
                      **tm.spec["timings"], **diag_line(tm),
                      "median_slope_sd": float(s["sd"].median()),
                      "n_p_negative_gt_0.9": int((s["p_negative"] > 0.9).sum()),
                      "n_p_negative_lt_0.1": int((s["p_negative"] < 0.1).sum())}
    a, b = tables["independent"], tables["grouped"]
    ratio = b["sd"] / a["sd"]
    out["compare"] = {
        "sd_ratio_median": float(ratio.median()),
        "sd_ratio_iqr": ratio.quantile([0.25, 0.75]).tolist(),
        "slope_mean_corr": float(np.corrcoef(a["mean"], b["mean"])[0, 1]),
        "slope_mean_abs_diff_median": float((a["slope_mean"] - b["slope_mean"]).abs().median()),
        "negative_only_independent": int(((a["p_negative"] > 0.9)
                                          & (b["p_negative"] <= 0.9)).sum()),
        "negative_only_grouped": int(((b["p_negative"] > 0.9)
                                      & (a["p_negative"] <= 0.9)).sum()),
    }
    return out


def part_fast_cached(args) -> dict:
    """A cold fit in a fresh process whose JAX compilation cache the ``fast`` part filled."""
    args = argparse.Namespace(**{**vars(args), "runs": "cold"})
    return {"cold_process_warm_cache": part_fast(args)["cold"]}


def part_fast_shared(args) -> dict:
    """The ``fast`` part with one shared sigma, to run beside the per-pair default."""
    return part_fast(argparse.Namespace(**{**vars(args), "sigma": "shared"}))


class RunnableThreads:
    """Histogram of this process's runnable threads (state R), sampled every 5 ms.

    Under a shared machine the wall clock cannot show whether two chunk threads overlap
    (Linux autogroup scheduling gives each session a share of the cores whatever its
    thread count), but their states can: two threads in state R at once are computing or
    waiting only for a core, not for each other (a lock would put one to sleep). The
    sampling thread itself is not counted.
    """

    def __enter__(self):
        import threading

        self.counts = [0, 0, 0, 0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import threading

        me = str(threading.get_native_id())
        task_dir = f"/proc/{os.getpid()}/task"
        while not self._stop.is_set():
            n = 0
            for tid in os.listdir(task_dir):
                if tid == me:
                    continue
                try:
                    with open(f"{task_dir}/{tid}/stat") as fh:
                        n += fh.read().rsplit(")", 1)[1].split()[0] == "R"
                except OSError:
                    continue
            self.counts[min(n, 3)] += 1
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def part_grouped_threads(args) -> dict:
    """Grouped per-pair NUTS with 1 and then 2 chunk threads, side by side (issue 19).

    A warm-up fit compiles the chunk program first, so every arm finds it compiled; each
    arm sets ``BAYESSLOPE_PAIR_THREADS`` (``--threads 1,2``; threads forced with
    ``BAYESSLOPE_PAIR_PROCESSES=off``), ``procN`` runs the chunks in N spawned worker
    processes (the local default for per-pair NUTS), or ``daskN`` runs the pair stage on a
    LocalCluster of N worker processes (warmed up the same way). CPU seconds are this
    process's (all its threads; not the worker processes').
    """
    from bayesslope.pairs import fit_transfer_matrix

    df = simulate_grouped(args.robust_tasks, args.units)
    kw = {"group": "family", "keep_draws": False, "check_dependence": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # 9 tasks = 72 pairs: at least one full chunk of 64, the shape every arm runs.
        small = df[df["task"].isin(sorted(df["task"].unique())[:9])]
        fit_transfer_matrix(small, random_seed=1, **kw)  # compile (same chunk shape)
    out, tables = {}, {}
    for threads in args.threads.split(","):
        # "daskN": a LocalCluster of N single-threaded worker processes instead.
        cluster = None
        if threads.startswith("dask"):
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=int(threads[4:]), threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
            client.run(fit_transfer_matrix, small, random_seed=1, **kw)  # compile there
        elif threads.startswith("proc"):
            # "procN": the local default for per-pair NUTS, N spawned worker processes.
            os.environ["BAYESSLOPE_PAIR_THREADS"] = threads[4:]
            os.environ["BAYESSLOPE_PAIR_PROCESSES"] = "on"
        else:
            os.environ["BAYESSLOPE_PAIR_THREADS"] = threads
            os.environ["BAYESSLOPE_PAIR_PROCESSES"] = "off"
        load0 = os.getloadavg()
        sampler = RunnableThreads()
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(), sampler:
            warnings.simplefilter("ignore")
            tm = fit_transfer_matrix(df, random_seed=1, **kw,
                                     **({} if cluster is None else {"client": client}))
        wall = time.perf_counter() - t0
        if cluster is not None:
            client.close()
            cluster.close()
        tables[threads] = tm.table
        out[f"threads_{threads}"] = {
            "wall_s": wall, "cpu_s": time.process_time() - c0, "pairs": tm.design.n_pairs,
            "per_pair_s": wall / tm.design.n_pairs, **tm.spec["timings"], **diag_line(tm),
            "load_avg_before": load0, "load_avg_after": os.getloadavg(),
            "peak_rss_mb": peak_mb(), "runnable_threads_histogram": sampler.counts}
    first, *rest = tables.values()
    out["identical_tables"] = all(first.equals(t) for t in rest)
    return out


def part_chunk_scaling(args) -> dict:
    """Seconds per chunk of grouped per-pair NUTS at several task counts (issue 19).

    For each of ``--scaling-tasks`` (simulate_grouped, ``--units`` units) the population
    stage runs as in a fit, then the first ``--scaling-chunks`` chunks of the pair stage
    (64 pairs each, one thread) are timed, not the whole matrix; ``predicted_pairs_s`` is
    chunks x median chunk seconds (one thread). The first chunk of the first task count
    includes the compilation. ``intercept_sigma`` is the plug-in population sd that made
    the chunk cost grow with the number of pairs before the coefficients were sampled in
    units of it (bayesslope.pairs.robust.pair_target).
    """
    import jax

    from bayesslope.pairs.config import resolve_config
    from bayesslope.pairs.design import build_pair_design
    from bayesslope.pairs.fit import _population
    from bayesslope.pairs.robust import nuts_range
    from bayesslope.pairs.stage import make_plan

    out = {}
    for k in (int(t) for t in args.scaling_tasks.split(",")):
        df = simulate_grouped(k, args.units)
        config = resolve_config(
            likelihood="normal", per_pair_sigma=True, n_eval=None, group="family", priors=None,
            draws=1000, tune=1000, chains=4, target_accept=0.9, random_seed=1,
            progressbar=False, dropna=False, keep_draws=False, chunk_size=None, min_shared=3)
        design = build_pair_design(df, unit="model", task="task", y="y", y_better=None,
                                   min_shared=3, group="family", n_eval=None, dropna=False)
        config = config.sized(design.n_pairs)
        stats = design.sufficient_stats()
        k_pop, k_pairs = jax.random.split(jax.random.key(1))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = _population(k_pop, stats, config)
        population_s = time.perf_counter() - t0
        plan = make_plan(design, config, stats, None, post, k_pairs)
        seconds = []
        for start, stop in plan.bounds[:args.scaling_chunks]:
            t0 = time.perf_counter()
            nuts_range(plan.data, start, stop)
            seconds.append(time.perf_counter() - t0)
        out[f"{k}_tasks"] = {
            "pairs": design.n_pairs, "chunks": len(plan.bounds),
            "chunk_shape": list(plan.data["data"][0].shape[1:]),
            "n_groups": len(design.groups), "population_s": population_s,
            "intercept_sigma": plan.plug_in["intercept_sigma"], "chunk_s": seconds,
            "predicted_pairs_s": len(plan.bounds) * float(np.median(seconds)),
            "load_avg": os.getloadavg()}
    return out


def part_dask_gaussian(args) -> dict:
    """``--tasks`` tasks (317: 100,172 pairs) on a LocalCluster, streamed to Zarr (issue 19).

    Gaussian fast path (default per-pair sigma), summaries only; ``--dask-workers``
    single-threaded worker processes. Peak memory: each worker's ``ru_maxrss``, and this
    (client) process's, which runs the population stage.
    """
    from distributed import Client, LocalCluster

    from bayesslope import load
    from bayesslope.pairs import fit_transfer_matrix

    df = simulate(args.tasks, args.units)
    store = os.path.join(tempfile.mkdtemp(prefix="bench-dask-"), "matrix.zarr")
    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.dask_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit=0) as cluster, \
            Client(cluster) as client:
        up = time.perf_counter() - t0
        load0 = os.getloadavg()
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm = fit_transfer_matrix(df, random_seed=1, keep_draws=False, out=store,
                                     client=client, check_dependence=False)
        wall = time.perf_counter() - t1
        workers_mb = client.run(lambda: resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(store) for f in fs)
    back = load(store)
    out = {"pairs": tm.design.n_pairs, "tasks": args.tasks, "cluster_start_s": up,
           "wall_s": wall, **tm.spec["timings"], **diag_line(tm),
           "worker_peak_rss_mb": sorted(workers_mb.values()),
           "client_peak_rss_mb": peak_mb(), "store_mb": size / 2**20,
           "store_reads_back": bool(back.table["mean"].equals(tm.table["mean"])),
           "load_avg_before": load0, "load_avg_after": os.getloadavg()}
    shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    return out


def part_gpu(args) -> dict:
    """The fast path on an accelerator: 10,100 and ``--tasks`` pairs (issue 19, not run yet).

    Run with ``--parts gpu --gpu-tasks 101,317`` on a machine whose JAX default backend is
    a GPU (``pip install jax[cuda12]``): throughput (pairs per second) and device memory.
    """
    import jax

    from bayesslope.pairs import fit_transfer_matrix

    out = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()]}
    for k in (int(t) for t in args.gpu_tasks.split(",")):
        df = simulate(k, args.units)
        for label, seed in (("cold", 1), ("warm", 2)):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tm = fit_transfer_matrix(df, random_seed=seed, keep_draws=False,
                                         check_dependence=False)
            wall = time.perf_counter() - t0
            stats = jax.devices()[0].memory_stats() or {}
            out[f"{k}_tasks_{label}"] = {
                "pairs": tm.design.n_pairs, "wall_s": wall,
                "pairs_per_s": tm.design.n_pairs / wall, **tm.spec["timings"],
                **diag_line(tm), "device_peak_bytes": stats.get("peak_bytes_in_use"),
                "host_peak_rss_mb": peak_mb()}
    return out


PARTS = {"fast": part_fast, "fast_cached": part_fast_cached, "closed": part_closed,
         "fast_shared": part_fast_shared,
         "loop": part_loop, "real": part_real, "mmlu_grouped": part_mmlu_grouped,
         "robust": part_robust,
         "robust_loop": part_robust_loop, "grouped_threads": part_grouped_threads,
         "dask_gaussian": part_dask_gaussian, "gpu": part_gpu,
         "chunk_scaling": part_chunk_scaling}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=101, help="tasks K (pairs = K(K-1))")
    ap.add_argument("--units", type=int, default=20, help="units (models) per task")
    ap.add_argument("--sigma", default="pair", choices=["pair", "shared"])
    ap.add_argument("--loop-pairs", type=int, default=3)
    ap.add_argument("--robust-tasks", type=int, default=12,
                    help="tasks of the Student-t parts (pairs = K(K-1))")
    ap.add_argument("--robust-likelihood", default="student_t",
                    choices=["student_t", "binomial", "grouped"],
                    help="model of the robust parts (binomial: accuracies on 500 questions; "
                         "grouped: Gaussian with a random intercept per group of 4 units)")
    ap.add_argument("--runs", default="cold,warm",
                    help="fast-path fits: any of cold,warm,warm_keep_draws")
    ap.add_argument("--real", action="store_true", help="also run the bundled real data")
    ap.add_argument("--real-only", help="comma-separated subset of openclip,mmlu,mmlu_grouped")
    ap.add_argument("--parts", default="fast,closed,loop")
    ap.add_argument("--threads", default="1,2",
                    help="grouped_threads: chunk threads of each arm, in order")
    ap.add_argument("--dask-workers", type=int, default=2,
                    help="dask_gaussian: single-threaded worker processes")
    ap.add_argument("--gpu-tasks", default="101,317",
                    help="gpu: task counts (pairs = K(K-1)) of the accelerator runs")
    ap.add_argument("--scaling-tasks", default="30,60,100,142",
                    help="chunk_scaling: task counts (pairs = K(K-1)) of the grouped matrix")
    ap.add_argument("--scaling-chunks", type=int, default=3,
                    help="chunk_scaling: chunks of 64 pairs timed per task count")
    ap.add_argument("--part", help=argparse.SUPPRESS)  # child mode
    ap.add_argument("--out", help="write a markdown report here")
    ap.add_argument("--figures", help="real: folder for the heatmaps (default docs/img)")
    args = ap.parse_args(argv)
    if args.part:
        print(json.dumps(PARTS[args.part](args), default=str))
        return
    parts = args.parts.split(",") + (["real"] if args.real else [])
    results = {}
    child, skip = [], False
    for a in argv if argv is not None else sys.argv[1:]:
        if skip or a.startswith("--out="):
            skip = False
            continue
        if a == "--out":
            skip = True
            continue
        child.append(a)
    # Each part starts with an empty JAX compilation cache (BAYESSLOPE_JAX_CACHE), so
    # "cold" means nothing compiled on disk either; fast_cached reuses the folder that the
    # fast part filled (a restarted kernel running the same fit).
    cache_root = tempfile.mkdtemp(prefix="bench-pairs-jax-cache-")
    for part in parts:
        cmd = [sys.executable, __file__, "--part", part, *child]
        folder = os.path.join(cache_root, "fast" if part == "fast_cached" else part)
        env = {**os.environ, "BAYESSLOPE_JAX_CACHE": folder}
        print(f"[bench_pairs] running {part} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            results[part] = {"error": proc.stderr[-2000:]}
        else:
            results[part] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps({part: results[part]}, indent=1, default=str), flush=True)
    shutil.rmtree(cache_root, ignore_errors=True)
    if args.out:
        with open(args.out + ".json", "w") as fh:
            json.dump({"argv": sys.argv, "results": results}, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
