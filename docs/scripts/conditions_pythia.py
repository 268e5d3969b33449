"""Numbers of docs/conditions.md: can the slope be manipulated? (Pythia, conditions).

Usage (from the repository root; about 15 minutes on 2 idle cores)::

    nice -n 19 .venv/bin/python docs/scripts/conditions_pythia.py

Data: ``bs.load_dataset("pythia_tasks")`` (../shared/data/pythia_lambada/
pythia_lambada_vs_tasks.csv), the 7 downstream tasks (``lambada_openai`` accuracy is
measured on the passages behind x and is left out), checkpoints at step >= 13,000 (the
linear part of the curve; the earlier ones sit at chance), 0- and 5-shot. One condition
column with four levels: standard or deduplicated Pile x 0- or 5-shot, reference
"standard, 0-shot". Fits (``fit_hierarchical``, ``per_task_sigma=True``, 2 chains x 1000
draws after 1000 tuning steps, seed 20261201, target_accept 0.9):

- ``grouped``: ``condition="setting", group="model"`` (a random intercept and slope per
  Pythia model: its 14 checkpoints x 2 shot settings are not independent evidence), the
  rows flagged ``2.8b_std_vs_dedup_near_identical`` left out;
- ``independent``: the same without ``group=`` (every checkpoint as independent evidence);
- ``grouped_with_flagged``: ``grouped`` with the flagged rows kept;
- ``nested``: ``grouped`` with ``group_nesting="nested"`` (one random intercept and slope per
  (task, model) cell instead of one per model shared by the tasks).

``--parts`` runs some of them and updates the existing record (e.g. ``--parts nested``).

Also least squares per (model, setting) and task, and what the flag means (how close the
flagged 2.8B standard/deduplicated pairs are, against the other sizes). Writes
docs/conditions.json (every number the page quotes) and docs/img/conditions_*.png.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayesslope as bs
from bayesslope.style import figure_style, save_figure

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "conditions.json"
IMG = ROOT / "docs" / "img"
RUN = dict(draws=1000, tune=1000, chains=2, random_seed=20261201)
if os.environ.get("DOCS_SCRIPT_SMOKE"):  # a quick run of the code path, written to /tmp
    RUN.update(draws=60, tune=60)
    OUT, IMG = Path("/tmp") / OUT.name, Path("/tmp")
MIN_STEP = 13000
ROPE = 0.01  # accuracy per unit of log-perplexity: about a tenth of a typical task slope
FLAG = "2.8b_std_vs_dedup_near_identical"
LEVELS = ["standard, 0-shot", "deduped, 0-shot", "standard, 5-shot", "deduped, 5-shot"]


def frame() -> pd.DataFrame:
    """The page's rows, with the four-level condition column ``setting``."""
    df = bs.load_dataset("pythia_tasks")
    df = df[(df["task"] != "lambada_openai") & (df["step"] >= MIN_STEP)].copy()
    setting = np.where(df["deduped"], "deduped", "standard")
    df["setting"] = pd.Categorical(
        [f"{s}, {k}-shot" for s, k in zip(setting, df["shots"], strict=True)],
        categories=LEVELS)
    df["flagged"] = df["flag"].fillna("").eq(FLAG)
    return df


def _records(table: pd.DataFrame) -> list:
    return json.loads(table.reset_index().to_json(orient="records"))


def _fit(rows: pd.DataFrame, **kw):
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit_hierarchical(rows, condition="setting", per_task_sigma=True, **kw, **RUN)
    messages = sorted({str(w.message) for w in caught if issubclass(
        w.category, (bs.SamplingWarning, bs.DependenceWarning, bs.WeakDataWarning))})
    diag = fit.diagnostics()
    post = fit.posterior["posterior"]
    pop = post["slope_mu_condition"]
    return fit, dict(
        rows=len(rows), wall_s=round(time.time() - t0, 1), warnings=messages,
        max_r_hat=float(diag["r_hat_max"].max()), min_ess_bulk=float(diag["ess_bulk_min"].min()),
        divergences=int(diag.attrs.get("divergences", -1)),
        slope_mu_condition=[dict(condition=str(c), mean=float(pop.sel(condition=c).mean()),
                                 eti90=[float(v) for v in pop.sel(condition=c).quantile(
                                     [0.05, 0.95]).values])
                            for c in pop["condition"].values],
        differences=_records(fit.condition_differences(rope=ROPE)),
        summary=_records(fit.summary()[["mean", "eti90_lb", "eti90_ub", "p_negative"]]))


def _part(name: str, df: pd.DataFrame, clean: pd.DataFrame):
    """One of the fits (see the module docstring)."""
    if name == "grouped":
        return _fit(clean, group="model")
    if name == "independent":
        return _fit(clean)
    if name == "grouped_with_flagged":
        return _fit(df, group="model")
    return _fit(clean, group="model", group_nesting="nested")


def _ols(rows: pd.DataFrame) -> dict:
    """Least-squares oriented slope per (model, setting, task): its spread across models."""
    out = []
    for (model, setting, task), d in rows.groupby(["model", "setting", "task"], observed=True):
        out.append(dict(model=model, setting=setting, task=task,
                        slope=-float(np.polyfit(d["x"], d["y"], 1)[0])))
    t = pd.DataFrame(out)
    by = t.groupby(["task", "setting"], observed=True)["slope"]
    return dict(per_task_setting=_records(by.agg(["mean", "min", "max", "count"])))


def _flag_meaning(df: pd.DataFrame) -> dict:
    """How close standard and deduplicated runs of one size are, step by step."""
    key = ["model_size", "shots", "step", "task"]
    std = df[~df["deduped"]].set_index(key)
    ded = df[df["deduped"]].set_index(key)
    both = std[["x", "y", "flagged"]].merge(ded[["x", "y"]], left_index=True, right_index=True,
                                            suffixes=("", "_dedup"))
    both["dx"] = (both["x"] - both["x_dedup"]).abs()
    both["dy"] = (both["y"] - both["y_dedup"]).abs()
    both = both.reset_index()
    size_28 = both["model_size"].eq("2.8b")
    parts = {"2.8b flagged (steps <= 43000)": both[both["flagged"]],
             "2.8b unflagged (steps > 43000)": both[size_28 & ~both["flagged"]],
             "other sizes, same steps as flagged": both[~size_28 & both["step"].le(43000)]}
    return {name: dict(pairs=len(p), median_abs_dx=float(p["dx"].median()),
                       median_abs_dy=float(p["dy"].median()),
                       share_dy_zero=float((p["dy"] < 1e-9).mean()))
            for name, p in parts.items()}


PARTS = ("grouped", "independent", "grouped_with_flagged", "nested")


def main(argv=None) -> None:
    """Fit, summarise and write the record and the figures."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parts = p.parse_args(argv).parts
    if set(parts) != set(PARTS):
        record = json.loads(OUT.read_text(encoding="utf-8"))
        df = frame()
        clean = df[~df["flagged"]]
        for part in parts:
            _, record[part] = _part(part, df, clean)
        record.setdefault("uptime_parts", {})[" ".join(parts)] = os.popen("uptime").read().strip()
        OUT.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        return
    df = frame()
    clean = df[~df["flagged"]]
    record = dict(settings=dict(min_step=MIN_STEP, rope=ROPE, per_task_sigma=True,
                                levels=LEVELS, **RUN),
                  rows=dict(all=len(df), flagged=int(df["flagged"].sum()), used=len(clean),
                            models=int(df["model"].nunique()),
                            tasks=sorted(df["task"].unique()),
                            checkpoints_per_model=int(df.groupby("model")["step"].nunique()
                                                      .max())),
                  flag=_flag_meaning(bs.load_dataset("pythia_tasks").assign(
                      flagged=lambda d: d["flag"].fillna("").eq(FLAG))),
                  ols=_ols(clean))
    grouped, record["grouped"] = _part("grouped", df, clean)
    independent, record["independent"] = _part("independent", df, clean)
    _, record["grouped_with_flagged"] = _part("grouped_with_flagged", df, clean)
    _, record["nested"] = _part("nested", df, clean)
    record["uptime"] = os.popen("uptime").read().strip()

    save_figure(grouped.plot_condition_differences(style="one-column"),
                IMG / "conditions_differences.png", dpi=150)
    with figure_style("one-column"):
        fig, axes = plt.subplots(2, 1, figsize=(3.3, 3.6), sharex=True, layout="constrained")
        independent.plot_condition_differences(ax=axes[0])
        grouped.plot_condition_differences(ax=axes[1])
        axes[0].set_title("independent checkpoints")
        axes[1].set_title('group="model"')
    save_figure(fig, IMG / "conditions_grouped_vs_independent.png", dpi=150)
    OUT.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: record[k]["differences"] for k in ("grouped", "independent")},
                     indent=1))


if __name__ == "__main__":
    main()
