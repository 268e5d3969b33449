"""Calibration of forecasts: coverage of predict() and required_upstream() intervals.

Usage::

    nice -n 10 python -m validation.forecast_calibration --model gaussian --sims 200
    nice -n 19 python -m validation.forecast_calibration --model binomial_probit \
        --tasks 6 --models 12 --draws 500 --tune 500 --sims 200 --max-minutes 45 --resume

Each simulated data set is drawn from the model that is fitted (correctly specified):
``n_models`` upstream values ("models", x uniform on [2, 4], x a loss: lower is better)
evaluated on ``n_tasks`` tasks, with population parameters drawn afresh per data set. The
fit sees every model except the held-out ones, and is asked to predict:

* ``interp``: one extra model inside the fitted x range, on every task;
* ``extrap``: one extra model 20% of the fitted x range beyond its best end (a larger
  model), on every task;
* ``new_task``: a task with no fitted rows at all, at the two extra x values and at the
  middle of the range.

Recorded per held-out point: whether the 90% predictive interval (``kind="observation"``)
covers the simulated observation, and whether the 90% interval of the mean
(``kind="mean"``) covers the true mean. For every fitted task, ``required_upstream`` is
asked for the x at which the task's true mean line reaches its true mean at the
extrapolated x; its 90% interval should cover that x.

``--model binomial_probit`` simulates accuracies ``0.25 + 0.75 Phi(eta)`` (probit link,
chance floor 0.25) as binomial counts on a test set of ``n_eval`` items per task (drawn
from 100, 300, 1,000, 3,000) and fits ``link="probit", likelihood="binomial",
chance=0.25, n_eval="n_eval"``.

Results: ``validation/results/forecast_<model>.json`` (summary, with binomial and Monte
Carlo acceptance ranges), ``.csv`` (per point) and ``_inverse.csv``, rewritten after every
data set so an interrupted run keeps what finished (``--resume`` continues it,
``--max-minutes`` stops starting new data sets); the summary goes into
validation/FORECAST.md by hand, with the command and the wall time.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

HERE = Path(__file__).resolve().parent
CI = 0.9
# Test-set sizes of the binomial model, one drawn per task.
N_EVAL_SIZES = (100, 300, 1000, 3000)


# Prior-matched designs (``--matched``, and every model but the first two): the population is
# drawn from exactly the priors the fit is given, so a calibrated model covers at the
# nominal rate on average over data sets (the unmatched designs draw it from fixed ranges the
# fit's default priors only roughly follow). Link-scale values for the count models.
_LINEAR_GAUSSIAN = {"intercept_mu": ("Normal", 0.55, 0.05), "slope_mu": ("Normal", 0.10, 0.03),
                    "intercept_sigma": ("Uniform", 0.03, 0.10),
                    "slope_sigma": ("Uniform", 0.01, 0.05), "sigma": ("Uniform", 0.01, 0.03)}
_LINEAR_PROBIT = {"intercept_mu": ("Normal", 0.3, 0.2), "slope_mu": ("Normal", 0.6, 0.15),
                  "intercept_sigma": ("Uniform", 0.1, 0.4),
                  "slope_sigma": ("Uniform", 0.05, 0.25)}
# logistic ~ 1.7 x probit on the link scale: the same curves, in logit units
_LINEAR_LOGIT = {"intercept_mu": ("Normal", 0.5, 0.35), "slope_mu": ("Normal", 1.0, 0.25),
                 "intercept_sigma": ("Uniform", 0.17, 0.7),
                 "slope_sigma": ("Uniform", 0.08, 0.4)}
MATCHED = {
    "gaussian": _LINEAR_GAUSSIAN,
    "student_t": {**_LINEAR_GAUSSIAN, "nu": ("Gamma", 2.0, 0.1)},
    "binomial_probit": _LINEAR_PROBIT,
    "binomial_logit": _LINEAR_LOGIT,
    "beta_binomial_probit": {**_LINEAR_PROBIT, "overdispersion": ("Gamma", 2.0, 10.0)},
    # flat floor until x0 (a loss: flat while x > x0), then rising at the slope per unit of x
    "hockey_stick": {**_LINEAR_GAUSSIAN, "intercept_mu": ("Normal", 0.35, 0.05),
                     "x0_mu": ("Normal", 3.2, 0.2), "x0_sigma": ("Uniform", 0.05, 0.2)},
    # eta = a + b xc + q xc^2 (xc the oriented, centered x); |q| << b / 3 keeps the curve
    # rising over the extrapolated range, so the target has one rising root
    "quadratic": {**_LINEAR_GAUSSIAN, "curvature_mu": ("Normal", 0.0, 0.01),
                  "curvature_sigma": ("Uniform", 0.002, 0.01)},
}
MODELS = ("gaussian", "binomial_probit", "binomial_logit", "beta_binomial_probit",
          "student_t", "hockey_stick", "quadratic")
CORR_ETA = 2.0  # LKJ(2) on the 2 x 2 correlation: (corr + 1) / 2 ~ Beta(2, 2)
_PARAM_NAMES = {"Normal": ("mu", "sigma"), "Uniform": ("lower", "upper"),
                "Gamma": ("alpha", "beta")}


def matched_priors(model: str) -> dict:
    """The ``priors=`` of the fit: the distributions the population is drawn from."""
    out = {"corr": {"dist": "LKJ", "eta": CORR_ETA}}
    for name, (dist, a, b) in MATCHED[model].items():
        pa, pb = _PARAM_NAMES[dist]
        out[name] = {"dist": dist, pa: a, pb: b}
    return out


def _draw(rng, spec, size=None):
    dist, a, b = spec
    if dist == "Normal":
        return rng.normal(a, b, size)
    if dist == "Uniform":
        return rng.uniform(a, b, size)
    return rng.gamma(a, 1.0 / b, size)  # Gamma(alpha, rate beta)


def _population(rng, model: str, matched: bool, n_tasks: int, counts: bool):
    """(mean, sds, corr, noise, n_eval) of the coefficients; noise: sigma or None."""
    n_eval = None
    if matched:
        spec = MATCHED[model]
        mu = np.array([_draw(rng, spec["intercept_mu"]), _draw(rng, spec["slope_mu"])])
        sd = np.array([_draw(rng, spec["intercept_sigma"]), _draw(rng, spec["slope_sigma"])])
        rho = 2.0 * rng.beta(CORR_ETA, CORR_ETA) - 1.0
        noise = _draw(rng, spec["sigma"]) if "sigma" in spec else None
    elif model == "gaussian":
        mu = np.array([rng.normal(0.55, 0.05), rng.normal(0.10, 0.03)])
        sd = np.array([rng.uniform(0.03, 0.10), rng.uniform(0.01, 0.05)])
        noise = rng.uniform(0.01, 0.03)
    else:  # binomial probit with chance 0.25: link-scale coefficients
        mu = np.array([rng.normal(0.3, 0.2), rng.normal(0.6, 0.15)])
        sd = np.array([rng.uniform(0.1, 0.4), rng.uniform(0.05, 0.25)])
        noise = None
    if counts:
        # test-set size per task (the held-out task too): small and large benchmarks
        n_eval = rng.choice(N_EVAL_SIZES, n_tasks + 1)
    if not matched:
        rho = rng.uniform(-0.5, 0.5)
    return mu, sd, rho, noise, n_eval


def simulate(rng, model: str, n_tasks: int, n_models: int, matched: bool = False):
    """One data set: the fitted frame, the held-out frame and the truth.

    The unmatched designs (``gaussian``, ``binomial_probit`` without ``matched``) draw in
    the order of the first recorded runs, so their seeds reproduce those data sets.
    """
    from scipy.special import expit

    matched = matched or model not in ("gaussian", "binomial_probit")
    x_fit = np.sort(rng.uniform(2.0, 4.0, n_models))
    lo, hi = x_fit.min(), x_fit.max()
    x_interp = rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))
    x_extrap = lo - 0.2 * (hi - lo)          # 20% beyond the best (lowest-loss) end
    x_ref = 3.0
    counts = model not in ("gaussian", "student_t", "hockey_stick", "quadratic")
    mu, sd, rho, noise, n_eval = _population(rng, model, matched, n_tasks, counts)
    cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    coef = rng.multivariate_normal(mu, cov, n_tasks + 1)     # the last task is held out
    tasks = [f"t{k}" for k in range(n_tasks + 1)]
    spec = MATCHED.get(model, {})
    nu = _draw(rng, spec["nu"]) if model == "student_t" else None
    disp = _draw(rng, spec["overdispersion"], n_tasks + 1) \
        if model == "beta_binomial_probit" else None
    if model == "hockey_stick":
        x0_mu, x0_sd = _draw(rng, spec["x0_mu"]), _draw(rng, spec["x0_sigma"])
        x0 = rng.normal(x0_mu, x0_sd, n_tasks + 1)
        # the package's kink width (docs/model.md, "Shapes"), written again: 0.05 x the
        # robust sd of the fitted x
        mad = 1.4826 * np.median(np.abs(x_fit - np.median(x_fit)))
        width = 0.05 * (min(np.std(x_fit), mad) if mad > 0 else np.std(x_fit))
    if model == "quadratic":
        q = rng.normal(_draw(rng, spec["curvature_mu"]), _draw(rng, spec["curvature_sigma"]),
                       n_tasks + 1)

    def mean_of(k, x):
        x = np.asarray(x, dtype=float)
        if model == "hockey_stick":   # flat at the intercept while x > x0 (a loss)
            return coef[k, 0] + coef[k, 1] * width * np.logaddexp(0.0, (x0[k] - x) / width)
        eta = coef[k, 0] + coef[k, 1] * -(x - x_ref)   # x lower is better
        if model == "quadratic":
            eta = eta + q[k] * (x - x_ref) ** 2
        if not counts:
            return eta
        return 0.25 + 0.75 * (expit(eta) if model == "binomial_logit" else ndtr(eta))

    def observe(k, x):
        m = mean_of(k, x)
        if model in ("gaussian", "hockey_stick", "quadratic"):
            return m + rng.normal(0.0, noise, np.shape(x))
        if model == "student_t":
            return m + noise * rng.standard_t(nu, np.shape(x))
        if model == "beta_binomial_probit":
            phi = 1.0 / disp[k] ** 2
            m = rng.beta(m * phi, (1.0 - m) * phi)
        return rng.binomial(n_eval[k], m) / n_eval[k]

    fit_rows, held_rows = [], []
    for k, t in enumerate(tasks[:-1]):
        fit_rows.append(pd.DataFrame({"task": t, "x": x_fit, "y": observe(k, x_fit)}))
        xs = np.array([x_interp, x_extrap])
        held_rows.append(pd.DataFrame({"task": t, "x": xs, "y": observe(k, xs),
                                       "true_mean": mean_of(k, xs),
                                       "where": ["interp", "extrap"]}))
    k = n_tasks
    xs = np.array([x_interp, x_extrap, 0.5 * (lo + hi)])
    held_rows.append(pd.DataFrame({"task": tasks[-1], "x": xs, "y": observe(k, xs),
                                   "true_mean": mean_of(k, xs), "where": "new_task"}))
    fit_df = pd.concat(fit_rows, ignore_index=True)
    held = pd.concat(held_rows, ignore_index=True)
    if counts:
        n_of = dict(zip(tasks, n_eval, strict=True))
        fit_df["n_eval"] = fit_df["task"].map(n_of)
        held["n_eval"] = held["task"].map(n_of)
    targets = {t: float(mean_of(k, x_extrap)) for k, t in enumerate(tasks[:-1])}
    return fit_df, held, targets, x_extrap


def fit_options(model: str, matched: bool) -> dict:
    """The ``fit_hierarchical`` options of a model (besides sampling settings)."""
    kw = {}
    if model in ("binomial_probit", "binomial_logit", "beta_binomial_probit"):
        kw.update(n_eval="n_eval", chance=0.25,
                  link="logit" if model == "binomial_logit" else "probit",
                  likelihood="beta_binomial" if model.startswith("beta") else "binomial")
    elif model == "student_t":
        kw.update(likelihood="student_t")
    elif model in ("hockey_stick", "quadratic"):
        kw.update(shape=model)
    if matched or model not in ("gaussian", "binomial_probit"):
        kw.update(priors=matched_priors(model), x_ref=3.0)
    return kw


def one(seed: int, model: str, args) -> tuple[pd.DataFrame, pd.DataFrame]:
    import bayesslope as bs
    from bayesslope.predict import predict, required_upstream

    rng = np.random.default_rng(seed)
    fit_df, held, targets, x_star = simulate(rng, model, args.tasks, args.models,
                                             matched=args.matched)
    kw = dict(x_better="lower", y_better="higher", chains=args.chains, draws=args.draws,
              tune=args.tune, random_seed=seed, cores=1,
              **fit_options(model, args.matched))
    if args.sampler:
        kw["sampler"] = args.sampler
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit_hierarchical(fit_df, **kw)
    fit_s = time.time() - t0
    obs = predict(fit, held, kind="observation", ci_prob=CI, random_seed=seed)
    mean = predict(fit, held, kind="mean", ci_prob=CI, random_seed=seed)
    out = held[["task", "where", "x"] + (["n_eval"] if "n_eval" in held else [])].copy()
    out["seed"] = seed
    out["covered_obs"] = (held["y"] >= obs["eti90_lb"]) & (held["y"] <= obs["eti90_ub"])
    out["covered_mean"] = ((held["true_mean"] >= mean["eti90_lb"])
                           & (held["true_mean"] <= mean["eti90_ub"]))
    out["extrapolated"] = obs["extrapolated"]
    div = int(fit.posterior["sample_stats"]["diverging"].sum())
    out["divergences"] = div
    out["fit_s"] = round(fit_s, 2)
    inv = required_upstream(fit, targets, ci_prob=CI)
    inv_out = pd.DataFrame({
        "seed": seed, "task": inv.index,
        "covered": (inv["eti90_lb"] <= x_star) & (x_star <= inv["eti90_ub"]),
        "p_reachable": inv["p_reachable"].to_numpy(), "divergences": div,
    })
    return out, inv_out


def summarize(points: pd.DataFrame, inv: pd.DataFrame) -> dict:
    def cov(frame, col):
        per_sim = frame.groupby("seed")[col].mean()
        return {"coverage": float(frame[col].mean()), "n_points": int(len(frame)),
                "n_sims": int(per_sim.size),
                "mc_se": float(per_sim.std(ddof=1) / np.sqrt(per_sim.size))
                if per_sim.size > 1 else None}

    out = {"predictive": {}, "mean": {}}
    for where, frame in [("all", points), *points.groupby("where")]:
        out["predictive"][where] = cov(frame, "covered_obs")
        out["mean"][where] = cov(frame, "covered_mean")
    out["required_upstream"] = cov(inv, "covered")
    out["required_upstream"]["mean_p_reachable"] = float(inv["p_reachable"].mean())
    per_seed = points.groupby("seed")
    out["divergent_fits"] = int((per_seed["divergences"].first() > 0).sum())
    if "fit_s" in points:
        out["fit_s_median"] = float(per_seed["fit_s"].first().median())
    return out


def acceptance(entry: dict, nominal: float = CI, level: float = 0.95) -> dict:
    """Where a calibrated coverage would fall: the central ``level`` range of
    Binomial(n_points, nominal) / n_points (points taken as independent, which they are not
    within a data set: too narrow) and ``nominal +- z mc_se`` (from the data-set-level
    spread, which accounts for that clustering)."""
    from scipy.stats import binom, norm

    n = entry["n_points"]
    lo, hi = binom.ppf([(1 - level) / 2, (1 + level) / 2], n, nominal) / n
    res = {"binomial_range": [float(lo), float(hi)]}
    if entry.get("mc_se"):
        z = float(norm.ppf((1 + level) / 2))
        res["mc_range"] = [nominal - z * entry["mc_se"], nominal + z * entry["mc_se"]]
    return res


def markdown_table(summary: dict) -> str:
    """The coverage table of a summary JSON, as in validation/FORECAST.md."""
    lines = ["| interval (90%) | where | points | coverage | MC se | binomial range | MC range |",
             "|---|---|---:|---:|---:|---|---|"]
    names = {"predictive": "predictive (new obs.)", "mean": "mean (true curve)"}
    rng = lambda r: f"[{r[0]:.3f}, {r[1]:.3f}]" if r else ""  # noqa: E731
    blocks = [(names[b], w, e) for b in ("predictive", "mean")
              for w, e in summary[b].items()]
    blocks.append(("`required_upstream`", "extrap", summary["required_upstream"]))
    for name, where, e in blocks:
        se = f"{e['mc_se']:.3f}" if e.get("mc_se") else ""
        lines.append(f"| {name} | {where.replace('_', ' ')} | {e['n_points']:,} | "
                     f"{e['coverage']:.3f} | {se} | {rng(e.get('binomial_range'))} | "
                     f"{rng(e.get('mc_range'))} |")
    return "\n".join(lines)


def overview(folder: Path) -> str:
    """One row per recorded run (``results/forecast_*.json``): the headline coverages."""
    lines = ["| run | data sets | predictive all | extrap | new task | mean all | "
             "`required_upstream` | fits with divergences |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for path in sorted(folder.glob("forecast_*.json")):
        d = json.loads(path.read_text())
        pr, mn = d["predictive"], d["mean"]
        lines.append(
            f"| `{path.stem.removeprefix('forecast_')}` | {d['sims_done']} | "
            f"{pr['all']['coverage']:.3f} | {pr['extrap']['coverage']:.3f} | "
            f"{pr['new_task']['coverage']:.3f} | {mn['all']['coverage']:.3f} | "
            f"{d['required_upstream']['coverage']:.3f} | {d['divergent_fits']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--report", type=Path, help="print the table of a summary JSON and exit")
    p.add_argument("--overview", action="store_true",
                   help="print one row per recorded run in results/ and exit")
    p.add_argument("--model", choices=MODELS, default="gaussian")
    p.add_argument("--matched", action="store_true",
                   help="draw the population from the priors the fit is given (always so for "
                        "the models other than gaussian and binomial_probit)")
    p.add_argument("--sims", type=int, default=200)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--models", type=int, default=12)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--sampler", choices=["pymc", "nutpie"], default=None,
                   help="default: the package's default for the model (the recorded "
                        "gaussian run used nutpie, the binomial one pymc)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new data set after this many minutes (results so far kept)")
    p.add_argument("--resume", action="store_true",
                   help="keep the data sets already in the result files and skip their seeds")
    p.add_argument("--suffix", default="", help="appended to the result file names")
    args = p.parse_args(argv)
    if args.report:
        print(markdown_table(json.loads(args.report.read_text())))
        return 0
    if args.overview:
        print(overview(HERE / "results"))
        return 0
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    matched = "_matched" if args.matched and args.model in ("gaussian", "binomial_probit") else ""
    stem = out_dir / f"forecast_{args.model}{matched}{args.suffix}"
    t0 = time.time()
    points, invs, done = [], [], set()
    if args.resume and Path(f"{stem}.csv").exists():
        points.append(pd.read_csv(f"{stem}.csv"))
        invs.append(pd.read_csv(f"{stem}_inverse.csv"))
        done = set(points[0]["seed"]) & set(invs[0]["seed"])
        points[0] = points[0][points[0]["seed"].isin(done)]
        invs[0] = invs[0][invs[0]["seed"].isin(done)]
    for i in range(args.sims):
        if args.seed + i in done:
            continue
        if args.max_minutes is not None and time.time() - t0 > 60 * args.max_minutes:
            print(f"time limit: stopping before data set {i}", flush=True)
            break
        pt, inv = one(args.seed + i, args.model, args)
        points.append(pt)
        invs.append(inv)
        # checkpoint after every data set: an interrupted run keeps what finished
        pts = pd.concat(points, ignore_index=True)
        inverse = pd.concat(invs, ignore_index=True)
        summary = summarize(pts, inverse)
        for block in (summary["predictive"], summary["mean"]):
            for entry in block.values():
                entry.update(acceptance(entry))
        summary["required_upstream"].update(acceptance(summary["required_upstream"]))
        summary.update(model=args.model, sims_done=int(pts["seed"].nunique()),
                       wall_s_this_run=round(time.time() - t0, 1), settings=vars(args))
        pts.to_csv(f"{stem}.csv", index=False)
        inverse.to_csv(f"{stem}_inverse.csv", index=False)
        Path(f"{stem}.json").write_text(json.dumps(summary, indent=2))
        print(f"{summary['sims_done']} sims, {time.time() - t0:.0f} s (fit {pt['fit_s'].iloc[0]}"
              f" s): predictive {summary['predictive']['all']['coverage']:.3f}, "
              f"required_upstream {summary['required_upstream']['coverage']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
