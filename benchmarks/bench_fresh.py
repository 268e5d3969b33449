"""Fresh-process fit time: bayesslope (cold or warm compiled-model cache) vs a user's PyMC model.

Issue 20's benchmark. Every contender runs in its own fresh ``python`` process, one after
the other in one invocation; wall time is measured from the moment the parent launches
the process to the end of the child's work (imports, model build, compilation or cache
load, sampling, summary), so interpreter start-up counts and process exit does not.

    python benchmarks/bench_fresh.py [--draws 1000 --tune 1000 --chains 4] [--repeats 2]
        [--part core|variants] [--bb-draws 400 --bb-tune 400] [--results benchmarks/RESULTS.md]
        [--json P]

Contenders (Pythia demo, ``bs.load_dataset("pythia")``, x lower is better):

- ``user`` (cold and warm PyTensor folder): the hierarchical model written in plain PyMC
  as a user would (centered ``a ~ Normal(a_mu, a_s)``, ``b ~ Normal(b_mu, b_s)``,
  HalfNormal scales, ``pm.sample`` with PyMC 6's default sampler, i.e. nutpie) +
  ``arviz.summary``;
- ``cold``: ``bs.fit_hierarchical`` defaults + ``summary()`` with empty cache folders
  (``BAYESSLOPE_CACHE`` and PyTensor's): the first process on a machine;
- ``warm``: the same in a later process (same folder); it also times a second fit on new
  data of the same shape in that process (``refit``);
- ``import``: ``import bayesslope`` (and ``python -c pass`` for reference);
- with ``--part variants`` (its own section): the beta-binomial probit chance-floor fit of
  docs/variants.md on the full Pythia file (needs ``../shared/data/pythia_lambada``),
  with PyMC's NUTS (``bb_pymc``, the full formulation's default until 2026-12-02) and with
  ``sampler="nutpie"`` cold and warm.

Each contender gets its own fresh PyTensor folder (``PYTENSOR_FLAGS=base_compiledir=``) per
repeat, cold first then warm, so both are compared in the same cache state. Min bulk ESS
and max R-hat are computed after the timed region.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# -- children ---------------------------------------------------------------------------------
def _diag_tree(tree, var_names=None) -> dict:
    """Min bulk ESS and max R-hat over the posterior variables (arviz-stats)."""
    import arviz_stats as azs
    import numpy as np

    post = tree["posterior"].to_dataset()
    if var_names is not None:
        post = post[var_names]
    ess = azs.ess(post, method="bulk")
    rhat = azs.rhat(post)
    return {"min_ess": float(min(np.nanmin(ess[v].values) for v in ess.data_vars)),
            "max_rhat": float(max(np.nanmax(rhat[v].values) for v in rhat.data_vars))}


def child_user(args) -> dict:
    import numpy as np
    import pandas as pd
    import pymc as pm

    import bayesslope as bs

    df = bs.load_dataset("pythia")
    idx, tasks = pd.factorize(df["task"])
    x = -df["x"].to_numpy()  # lower log-perplexity is better: a user flips the sign
    y = df["y"].to_numpy()
    with pm.Model(coords={"task": tasks}):
        a_mu = pm.Normal("a_mu", 0.0, 1.0)
        b_mu = pm.Normal("b_mu", 0.0, 1.0)
        a_s = pm.HalfNormal("a_s", 1.0)
        b_s = pm.HalfNormal("b_s", 1.0)
        a = pm.Normal("a", a_mu, a_s, dims="task")
        b = pm.Normal("b", b_mu, b_s, dims="task")
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", a[idx] + b[idx] * x, sigma, observed=y)
        start = time.perf_counter()
        idata = pm.sample(args.draws, tune=args.tune, chains=args.chains, random_seed=1,
                          progressbar=False)
        sampling = time.perf_counter() - start
    import arviz as az

    az.summary(idata)
    end = time.time()
    div = int(np.asarray(idata["sample_stats"]["diverging"]).sum())
    return {"end": end, "sampling": sampling, "divergences": div, **_diag_tree(idata),
            # PyMC 6 picks nutpie silently when it is installed: record what ran.
            "sampler": "nutpie (pm.sample default)" if "nutpie" in sys.modules else "pymc"}


def _bs_fit(df, args, **kw):
    import bayesslope as bs

    fit = bs.fit_hierarchical(df, x_better="lower", draws=args.draws, tune=args.tune,
                              chains=args.chains, random_seed=1, **kw)
    fit.summary()
    return fit


def _fit_stats(fit) -> dict:
    import numpy as np

    tree = fit.posterior
    div = int(np.asarray(tree["sample_stats"]["diverging"]).sum())
    return {"sampling": float(tree["posterior"].attrs.get("sampling_time", float("nan"))),
            "divergences": div, "sampler": fit.spec["sampler"]["sampler"],
            **_diag_tree(tree)}


def child_bayesslope(args) -> dict:
    import bayesslope as bs

    df = bs.load_dataset("pythia")
    fit = _bs_fit(df, args)
    end = time.time()
    out = {"end": end, **_fit_stats(fit)}
    if args.refit:
        import numpy as np

        rng = np.random.default_rng(2)
        new = df.assign(y=df["y"] + rng.normal(0.0, 0.01, len(df)))  # same shape, new data
        start = time.perf_counter()
        refit = _bs_fit(new, args)
        out["refit"] = time.perf_counter() - start
        out["refit_stats"] = _fit_stats(refit)
    return out


def child_import(args) -> dict:
    import bayesslope  # noqa: F401

    end = time.time()
    return {"end": end, "jax_loaded": "jax" in sys.modules, "pymc_loaded": "pymc" in sys.modules}


def child_floor(args) -> dict:
    """What any fit sampled by nutpie imports before its first draw: the warm floor.

    pandas and the data, nutpie (which imports ``arviz``: arviz-base, arviz-stats and
    arviz-plots with matplotlib) and xarray's probing of the installed array libraries on
    the first DataArray (nutpie's trace conversion makes one). The user-written model pays
    all of it too, and PyMC on top.
    """
    import numpy as np
    import xarray as xr

    import bayesslope as bs

    bs.load_dataset("pythia")
    import nutpie  # noqa: F401

    xr.DataArray(np.zeros(3))
    return {"end": time.time()}


def child_pass(args) -> dict:
    return {"end": time.time()}


def child_variants(args) -> dict:
    sys.path.insert(0, str(HERE))
    import variants_pythia as vp

    import bayesslope as bs

    # "demo": the bundled 7-task subset (1,148 rows), a smaller stand-in for the full file.
    df = bs.load_dataset("pythia") if args.bb_data == "demo" else vp.load(vp.DEFAULT_CSV)
    kw = {} if args.sampler == "default" else {"sampler": args.sampler}
    fit = bs.fit_hierarchical(
        df, x_ref=2.5, n_eval="n_eval_examples", likelihood="beta_binomial", chance="chance",
        link="probit", draws=args.bb_draws, tune=args.bb_tune, chains=args.chains,
        target_accept=0.95, random_seed=20261128, **kw)
    fit.summary()
    end = time.time()
    return {"end": end, **_fit_stats(fit), "package": str(Path(bs.__file__).parent)}


# --part full: the SBC-sized variants (validation/variants.py, with their fixed priors and
# SBC sampler settings) and the docs/variants.md beta-binomial fit on the full Pythia file.
FULL_CASES = ("hockey_stick", "binomial_probit", "beta_binomial_probit", "pythia_bb")


def child_full(args) -> dict:
    """Two data sets of one case in this process: the first fit, then the refit."""
    import numpy as np

    out = {"fits": []}
    if args.case == "pythia_bb":
        sys.path.insert(0, str(HERE))
        import variants_pythia as vp

        import bayesslope as bs

        df = vp.load(vp.DEFAULT_CSV)
        rng = np.random.default_rng(3)
        for k in range(2):
            # Data set 2: the same rows, counts resampled from the observed rates.
            data = df if k == 0 else df.assign(y=rng.binomial(
                df["n_eval_examples"], df["y"].clip(0, 1)) / df["n_eval_examples"])
            start = time.perf_counter()
            fit = bs.fit_hierarchical(
                data, x_ref=2.5, n_eval="n_eval_examples", likelihood="beta_binomial",
                chance="chance", link="probit", draws=args.bb_draws, tune=args.bb_tune,
                chains=args.chains, target_accept=0.95, random_seed=20261128,
                sampler=args.sampler)
            fit.summary()
            out["fits"].append({"time": time.perf_counter() - start, **_fit_stats(fit)})
            if k == 0:
                out["end"] = time.time()
        return out
    import validation.variants  # noqa: F401 - registers the variants
    from validation.sbc import get_variant

    variant = get_variant(args.case)
    for k in range(2):
        rng = np.random.default_rng(20261201 + k)
        df = variant.simulate(variant.sample_prior(rng), rng)
        start = time.perf_counter()
        res = variant.fit(df, 7 + k, sampler=args.sampler)
        d = res.diagnostics
        out["fits"].append({"time": time.perf_counter() - start, "sampler": args.sampler,
                            "divergences": d["divergences"], "max_rhat": d["r_hat_max"],
                            "min_ess": min(d["ess_bulk_min"], d["ess_tail_min"]),
                            "sampling": float("nan")})
        if k == 0:
            out["end"] = time.time()
    return out


CHILDREN = {"user": child_user, "bayesslope": child_bayesslope, "import": child_import,
            "pass": child_pass, "floor": child_floor, "variants": child_variants,
            "full": child_full}


# -- parent -----------------------------------------------------------------------------------
def run_child(kind: str, args, env_extra: dict | None = None, extra: tuple = (),
              pythonpath: Path = ROOT) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
           "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains),
           "--bb-draws", str(args.bb_draws), "--bb-tune", str(args.bb_tune),
           "--bb-data", args.bb_data, *extra]
    env = {**os.environ, **(env_extra or {}), "PYTHONPATH": str(pythonpath)}
    env = {k: v for k, v in env.items() if v is not None}  # None: unset in the child
    load = os.getloadavg()[0]
    launch = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = result.pop("end") - launch
    result["load"] = load
    return result


def _run_at_revision(args, env) -> dict:
    """The variants child with the package of ``args.baseline_rev`` (a git worktree)."""
    rev = subprocess.run(["git", "rev-parse", "--short", args.baseline_rev], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), rev], cwd=ROOT,
                       check=True)
        try:
            out = run_child("variants", args, env, ("--sampler", "pymc"), pythonpath=tree)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           check=True)
    if not out["package"].startswith(str(tree)):
        raise RuntimeError(f"the baseline child imported {out['package']}, not the worktree")
    out["rev"] = rev
    return out


def _fmt(values, digits=1) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({' / '.join(f'{v:.{digits}f}' for v in values)})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", choices=sorted(CHILDREN))
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2,
                   help="cold + warm pairs per contender (order reversed every other repeat)")
    p.add_argument("--refit", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sampler", default="default", help=argparse.SUPPRESS)
    p.add_argument("--case", choices=FULL_CASES, help=argparse.SUPPRESS)
    p.add_argument("--cases", nargs="+", choices=FULL_CASES, default=list(FULL_CASES),
                   help="full part: which cases")
    p.add_argument("--part", choices=["core", "variants", "full"], default="core",
                   help="core: Pythia demo contenders; variants: the beta-binomial full-file fit")
    p.add_argument("--baseline-rev", default=None,
                   help="variants part: also fit with the package as of this git revision "
                        "(a temporary worktree, same environment, sampler='pymc'), e.g. "
                        "7094415^, issue 20's 'today'")
    p.add_argument("--bb-draws", type=int, default=400)
    p.add_argument("--bb-tune", type=int, default=400)
    p.add_argument("--skip-cold", action="store_true",
                   help="--part variants: fill the cache with a 20-draw process instead of "
                        "timing a full cold one")
    p.add_argument("--bb-data", choices=["full", "demo"], default="full",
                   help="variants part: the full Pythia file or the bundled demo subset")
    p.add_argument("--results", type=Path, help="replace the 'fresh' section of this file")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return 0

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    res: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="bayesslope-cache-") as cache:
        env = {"BAYESSLOPE_CACHE": cache}
        if args.part == "core":
            res = {k: [] for k in ("user_cold", "user_warm", "cold", "warm", "import", "pass",
                                   "floor")}
            for rep in range(args.repeats):
                # Fresh PyTensor folders: "cold" is the first process on a machine for both.
                with tempfile.TemporaryDirectory() as pt_user, \
                        tempfile.TemporaryDirectory() as pt_bs, \
                        tempfile.TemporaryDirectory() as bs_cache:
                    env_user = {"PYTENSOR_FLAGS": f"base_compiledir={pt_user}"}
                    env_bs = {"PYTENSOR_FLAGS": f"base_compiledir={pt_bs}",
                              "BAYESSLOPE_CACHE": bs_cache}
                    pairs = [("user", env_user, (), "user"), ("bayesslope", env_bs, (), "")]
                    for kind, env_k, extra, label in (pairs if rep % 2 == 0 else pairs[::-1]):
                        name = "user_" if label else ""
                        res[f"{name}cold"].append(run_child(kind, args, env_k, extra))
                        res[f"{name}warm"].append(run_child(
                            kind, args, env_k, extra if label else ("--refit",)))
                    res["import"].append(run_child("import", args, env_bs))
                    res["pass"].append(run_child("pass", args))
                    res["floor"].append(run_child("floor", args, env_bs))
        elif args.part == "full":
            for case in args.cases:
                # Cold: empty bayesslope and PyTensor caches (XDG_CACHE_HOME, the default
                # location); warm: the next process with the same folders.
                with tempfile.TemporaryDirectory() as xdg, tempfile.TemporaryDirectory() as pt:
                    env_c = {"XDG_CACHE_HOME": xdg, "PYTENSOR_FLAGS": f"base_compiledir={pt}",
                             "BAYESSLOPE_CACHE": None}
                    extra = ("--case", case)
                    res[f"{case}:pymc"] = [run_child("full", args, env_c,
                                                     (*extra, "--sampler", "pymc"))]
                    for label in ("nutpie_cold", "nutpie_warm"):
                        res[f"{case}:{label}"] = [run_child("full", args, env_c,
                                                            (*extra, "--sampler", "nutpie"))]
        else:
            # "Today" in issue 20 = PyMC's NUTS, the full formulation's default until
            # 2026-12-02 (its C code is in PyTensor's default folder, warm after any test
            # run); the default now: nutpie, first process (cold) and the next one (warm).
            if args.baseline_rev:
                res["bb_baseline"] = [_run_at_revision(args, env)]
            res["bb_pymc"] = [run_child("variants", args, env, ("--sampler", "pymc"))]
            if args.skip_cold:  # a short first process only fills the cache
                short = argparse.Namespace(**{**vars(args), "bb_draws": 20, "bb_tune": 20})
                run_child("variants", short, env)
            else:
                res["bb_default_cold"] = [run_child("variants", args, env)]
            res["bb_default_warm"] = [run_child("variants", args, env)]
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    render_fn = {"core": render, "variants": render_variants, "full": render_full}[args.part]
    section = render_fn(res, args, started, uptime_before, uptime_after)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    if args.results:
        update_section(args.results, section,
                       {"core": "fresh", "variants": "fresh_variants",
                        "full": "fresh_full"}[args.part])
    return 0


def _row(name, runs, base):
    walls = [r["wall"] for r in runs]
    last = runs[-1]
    return (f"| {name} | {_fmt(walls)} | {statistics.median(walls) / base:.2f}x | "
            f"{_fmt([r['sampling'] for r in runs], 2)} | {last['sampler']} | "
            f"{last['min_ess']:,.0f} | {last['max_rhat']:.4f} | {last['divergences']} | "
            f"{_fmt([r['load'] for r in runs])} |")


def _footer(name, up_before, up_after) -> list[str]:
    argv, shown = sys.argv[1:], []
    for i, a in enumerate(argv):  # everything but --results and its value
        if not (a.startswith("--results") or (i and argv[i - 1] == "--results")):
            shown.append(a)
    cmd = "python benchmarks/bench_fresh.py " + " ".join(shown)
    return [
        "",
        f"- `uptime` before: `{up_before}`; after: `{up_after}`.",
        "- The variants table shares one PyTensor folder (the environment's); its "
        "`BAYESSLOPE_CACHE` is a fresh temporary folder for the cold process."
        if name == "fresh_variants" else
        "- Fresh temporary PyTensor and bayesslope cache folders per contender and repeat.",
        f"- Command: `{cmd.strip()}`; niceness {os.nice(0)}, other jobs sharing the machine "
        "(load above): compare ratios within this table.",
        f"<!-- END bench:{name} -->",
    ]


def render_variants(res, args, started, up_before, up_after) -> str:
    base = "bb_baseline" if "bb_baseline" in res else "bb_pymc"
    bb = res[base][0]["wall"]
    base_name = ("the package as of issue 20 (its \"today\")" if base == "bb_baseline" else
                 "PyMC's NUTS (`sampler=\"pymc\"`, the full formulation's default until "
                 "2026-12-02; the default is now nutpie)")
    lines = [
        "<!-- BEGIN bench:fresh_variants -->",
        f"## Fresh process: beta-binomial probit with chance floor, {args.bb_data} Pythia data "
        f"({started})",
        "",
        "The docs/variants.md fit (" + ("2,592 rows" if args.bb_data == "full" else
                                         "on the bundled demo subset, 1,148 rows") +
        f", {args.chains} chains x {args.bb_draws} draws, "
        f"{args.bb_tune} tuning, target_accept 0.95), each contender a fresh process; ratio = "
        f"wall / wall of {base_name}.",
        "",
        "| contender | wall, s | ratio | sampling, s | sampler | min bulk ESS | "
        "max R-hat | divergences | 1-min load |",
        "|---|---|---|---|---|---|---|---|---|",
        *([_row(f'package at {res["bb_baseline"][0]["rev"]} (issue 20\'s "today"), '
                'PyMC\'s NUTS', res["bb_baseline"], bb)] if "bb_baseline" in res else []),
        _row('`sampler="pymc"` (the full formulation\'s default until 2026-12-02)',
             res["bb_pymc"], bb),
        *([_row("default (nutpie), cache cold", res["bb_default_cold"], bb)]
          if "bb_default_cold" in res else []),
        _row("default (nutpie), cache warm", res["bb_default_warm"], bb),
    ]
    return "\n".join(lines + _footer("fresh_variants", up_before, up_after))


def render_full(res, args, started, up_before, up_after) -> str:
    lines = [
        "<!-- BEGIN bench:fresh_full -->",
        f"## Full formulation: PyMC NUTS vs nutpie compiled once per structure ({started})",
        "",
        "Per case one fresh process per contender fits two data sets of the same structure "
        "(first fit, then refit in that process). SBC cases: validation/variants.py's prior, "
        "simulator, fixed priors and SBC sampler settings (2 chains x 500 draws, 500 tuning, "
        "cores=1). `pythia_bb`: the docs/variants.md beta-binomial probit + chance fit on "
        f"the full Pythia file ({args.chains} chains x {args.bb_draws} draws, {args.bb_tune} "
        "tuning, target_accept 0.95); its second data set resamples the counts. Cold = empty "
        "`XDG_CACHE_HOME` and PyTensor folder; warm = the next process, same folders (PyMC "
        "runs first, so its C code is compiled cold). Wall = launch to the end of the first "
        "fit; fit = the fit's own time in the process.",
        "",
        "| case | sampler | wall (1st fit), s | refit, s | max R-hat | min ESS | "
        "divergences | 1-min load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, runs in res.items():
        case, label = key.split(":")
        r = runs[0]
        fits = r["fits"]
        lines.append(
            f"| {case} | {label} | {r['wall']:.1f} | {fits[1]['time']:.1f} | "
            f"{max(f['max_rhat'] for f in fits):.3f} | "
            f"{min(f['min_ess'] for f in fits):,.0f} | "
            f"{' / '.join(str(f['divergences']) for f in fits)} | {r['load']:.1f} |")
    return "\n".join(lines + _footer("fresh_full", up_before, up_after))


def render(res, args, started, up_before, up_after) -> str:
    user_cold = statistics.median(r["wall"] for r in res["user_cold"])
    user = statistics.median(r["wall"] for r in res["user_warm"])
    lines = [
        "<!-- BEGIN bench:fresh -->",
        "## Fresh process: bayesslope (cold / warm cache) vs the PyMC model a user writes "
        f"({started})",
        "",
        f"Pythia demo, {args.chains} chains x {args.draws:,} draws ({args.tune:,} tuning), "
        "each contender a fresh `python` process; wall = launch to the end of sampling + "
        "summary. Cold = first process on the machine (empty PyTensor folder and, for "
        "bayesslope, empty `BAYESSLOPE_CACHE`); warm = the next process with the same folders. "
        "Ratio = wall / wall of the user model in the same state.",
        "",
        "| contender | wall, s | / user model | sampling, s | sampler | min bulk ESS | "
        "max R-hat | divergences | 1-min load |",
        "|---|---|---|---|---|---|---|---|---|",
        _row("user-written PyMC model, `pm.sample` defaults, cold", res["user_cold"], user_cold),
        _row("bayesslope defaults, cold", res["cold"], user_cold),
        _row("user-written PyMC model, warm", res["user_warm"], user),
        _row("bayesslope defaults, warm", res["warm"], user),
    ]
    refits = [r["refit"] for r in res["warm"] if "refit" in r]
    rs = res["warm"][-1]["refit_stats"]
    lines.append(f"| second fit in the warm process (new data, same shape) | {_fmt(refits, 2)} | "
                 f"{statistics.median(refits) / user:.3f}x | {rs['sampling']:.2f} | "
                 f"{rs['sampler']} | {rs['min_ess']:,.0f} | {rs['max_rhat']:.4f} | "
                 f"{rs['divergences']} | |")
    floor = [r["wall"] for r in res.get("floor", [])]
    if floor:
        lines.append(f"| imports alone, the floor of any nutpie fit (pandas + data, nutpie -> "
                     f"ArviZ, xarray's array probing) | {_fmt(floor, 2)} | "
                     f"{statistics.median(floor) / user:.2f}x | | | | | | |")
    imp = [r["wall"] for r in res["import"]]
    base = [r["wall"] for r in res["pass"]]
    lines += [
        "",
        f"- `import bayesslope` (fresh process, launch to after the import): {_fmt(imp, 2)} s; "
        f"`python -c pass`: {_fmt(base, 2)} s; JAX loaded: {res['import'][-1]['jax_loaded']}, "
        f"PyMC loaded: {res['import'][-1]['pymc_loaded']}.",
    ]
    lines += _footer("fresh", up_before, up_after)
    return "\n".join(lines)


def update_section(path: Path, section: str, name: str) -> None:
    import re

    text = path.read_text()
    pattern = re.compile(rf"<!-- BEGIN bench:{name} -->.*?<!-- END bench:{name} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
