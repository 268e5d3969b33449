"""Numbers of docs/imagenet_on_the_line.md: accuracy on the line, and the PGD paradox.

Usage (from the repository root; several minutes on 2 busy cores)::

    nice -n 19 .venv/bin/python docs/scripts/imagenet_on_the_line.py

The page's data and fits, run longer: 2 chains x 500 draws after 500 tuning steps, seed
20261201, target_accept 0.95 for the grouped fits (0.9 gave 17 and 20 divergences). Also
least squares per ``model_type`` (the within-group slopes the grouped model should recover).
Writes docs/imagenet_on_the_line.json (every number the page quotes) and
docs/img/imagenet_on_the_line_probit.png, docs/img/imagenet_on_the_line_pgd.png.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

import bayesslope as bs
from bayesslope.style import save_figure

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "imagenet_on_the_line.json"
IMG = ROOT / "docs" / "img"
RUN = dict(draws=500, tune=500, chains=2, random_seed=20261201)
if os.environ.get("DOCS_SCRIPT_SMOKE"):  # a quick run of the code path, written to /tmp
    RUN.update(draws=60, tune=60)
    OUT, IMG = Path("/tmp") / OUT.name, Path("/tmp")
NATURAL = ["imagenetv2-matched-frequency", "objectnet-1.0-beta"]
PGD = ["pgd.linf.eps2", "pgd.l2.eps0.5"]


def _records(frame: pd.DataFrame) -> list:
    return json.loads(frame.reset_index().to_json(orient="records"))


def _fit(frame, **kw):
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit_hierarchical(frame, **kw, **RUN)
    messages = sorted({str(w.message) for w in caught if issubclass(
        w.category, (bs.SamplingWarning, bs.DependenceWarning, bs.WeakDataWarning))})
    diag = fit.diagnostics()
    dep = fit.dependence()
    return fit, dict(wall_s=round(time.time() - t0, 1), warnings=messages,
                     max_r_hat=float(diag.filter(like="r_hat").max().max()),
                     divergences=int(diag.attrs.get("divergences", -1)),
                     summary=_records(fit.summary()),
                     dependence=None if dep is None else _records(dep))


def _ols(frame: pd.DataFrame) -> list:
    """Least-squares slope pooled and within each model_type (>= 4 models), per task."""
    rows = []
    for task, d in frame.groupby("task"):
        rows.append(dict(task=task, model_type="(pooled)", n=len(d),
                         slope=float(np.polyfit(d["x"], d["y"], 1)[0])))
        for kind, g in d.groupby("model_type"):
            if len(g) >= 4:
                rows.append(dict(task=task, model_type=kind, n=len(g),
                                 slope=float(np.polyfit(g["x"], g["y"], 1)[0]),
                                 x_mean=float(g["x"].mean()), y_mean=float(g["y"].mean())))
    return rows


def main() -> None:
    """Fit, check and write the record and the figures."""
    df = bs.load_dataset("imagenet_testbed")
    df["model_type"] = df["model_type"].fillna("ResNet training runs")
    nat = df[df["task"].isin(NATURAL)].assign(x_probit=lambda d: norm.ppf(d["x"]))
    pgd = df[df["task"].isin(PGD)]
    record = dict(settings=RUN, rows=dict(natural=len(nat), pgd=len(pgd)))
    line, record["natural"] = _fit(nat, x="x_probit", link="probit",
                                   likelihood="beta_binomial", n_eval="n_eval_examples",
                                   group="model_type", group_nesting="nested",
                                   target_accept=0.95)
    record["natural"]["population"] = _records(line.population())
    pooled, record["pgd_pooled"] = _fit(pgd)
    grouped, record["pgd_grouped"] = _fit(pgd, group="model_type", group_nesting="nested",
                                          target_accept=0.95)
    record["pgd_ols"] = _ols(pgd)
    record["pgd_type_counts"] = pgd.groupby(["task", "model_type"]).size().unstack(0).to_dict()
    save_figure(line.plot_tasks(yscale="probit", xlabel="probit(ImageNet top-1)",
                                ylabel="top-1 under shift"),
                IMG / "imagenet_on_the_line_probit.png", dpi=110)
    save_figure(grouped.plot_tasks(xlabel="ImageNet top-1", ylabel="top-1 under PGD"),
                IMG / "imagenet_on_the_line_pgd.png", dpi=110)
    OUT.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: record[k]["summary"] for k in ("pgd_pooled", "pgd_grouped")}))


if __name__ == "__main__":
    main()
