"""Numbers of docs/olmo_loss_to_loss.md: loss-to-loss transfer on the OLMo ladder.

Usage (from the repository root; a few minutes on 2 busy cores)::

    nice -n 19 .venv/bin/python docs/scripts/olmo_loss_to_loss.py

The data and the two fits are the page's (same thinning, same model), run longer: 2 chains x
500 draws after 500 tuning steps, seed 20261201. Writes docs/olmo_loss_to_loss.json (every
number the page quotes) and docs/img/olmo_loss_to_loss_tasks.png.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesslope as bs
from bayesslope.style import save_figure

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "olmo_loss_to_loss.json"
FIG = ROOT / "docs" / "img" / "olmo_loss_to_loss_tasks.png"
RUN = dict(draws=500, tune=500, chains=2, random_seed=20261201)
if os.environ.get("DOCS_SCRIPT_SMOKE"):  # a quick run of the code path, written to /tmp
    RUN.update(draws=60, tune=60)
    OUT, FIG = Path("/tmp") / OUT.name, Path("/tmp") / FIG.name


def every_nth(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """``k`` checkpoints per run, evenly spread over its steps (the page's thinning)."""
    keep = []
    for run, steps in frame.groupby("run")["step"]:
        s = np.sort(steps.unique())
        keep += [(run, v) for v in s[np.linspace(0, len(s) - 1, k).round().astype(int)]]
    idx = pd.MultiIndex.from_frame(frame[["run", "step"]])
    return frame[idx.isin(keep)]


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
    return fit, dict(wall_s=round(time.time() - t0, 1), warnings=messages,
                     max_r_hat=float(diag.filter(like="r_hat").max().max()),
                     diagnostics=_records(diag),
                     divergences=int(diag.attrs.get("divergences", -1)))


def _check(fit, rows: pd.DataFrame) -> pd.DataFrame:
    """Observed losses against the fit's 90% predictive intervals, per task."""
    pred = fit.predict(rows, kind="observation")
    res = rows.assign(pred=pred["mean"], lb=pred["eti90_lb"], ub=pred["eti90_ub"])
    res["err"] = res["y"] - res["pred"]
    res["inside"] = (res["y"] >= res["lb"]) & (res["y"] <= res["ub"])
    return res.groupby("task").agg(n=("y", "size"), mean_error=("err", "mean"),
                                   mean_abs_error=("err", lambda e: e.abs().mean()),
                                   coverage90=("inside", "mean"))


def main() -> None:
    """Fit, check and write the record and the figure."""
    df = bs.load_dataset("olmo_ladder")
    late = df[df["x"] < 4.0]
    train = every_nth(late, 8)
    record = dict(settings=dict(thinning="x < 4.0, 8 checkpoints per run", rows=len(train),
                                **RUN))
    grouped, record["grouped"] = _fit(train, group="run", group_nesting="nested")
    plain, record["plain"] = _fit(train)
    s_g, s_p = grouped.summary(), plain.summary()
    record["grouped"]["summary"] = _records(s_g)
    record["plain"]["summary"] = _records(s_p)
    record["grouped"]["dependence"] = _records(grouped.dependence())
    record["plain"]["dependence"] = _records(plain.dependence())
    record["grouped"]["population"] = _records(grouped.population())
    record["sd_ratio_grouped_over_plain"] = (s_g["sd"] / s_p["sd"]).round(2).to_dict()
    # Held-out checkpoints of the same runs: inside the fitted range, then earlier in training.
    rest = late.drop(train.index)
    early = df[df["x"] >= 4.0]
    bands = {"x<4 (held-out checkpoints)": every_nth(rest, 4),
             "4<=x<5": every_nth(early[early["x"] < 5.0], 4),
             "5<=x<7": every_nth(early[(early["x"] >= 5.0) & (early["x"] < 7.0)], 4)}
    record["predictive_check"] = {name: _records(_check(grouped, rows))
                                  for name, rows in bands.items()}
    fig = grouped.plot_tasks(xlabel="C4 loss", ylabel="validation loss")
    FIG.parent.mkdir(exist_ok=True)
    save_figure(fig, FIG, dpi=110)
    OUT.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: record[k] for k in ("settings", "sd_ratio_grouped_over_plain")}))


if __name__ == "__main__":
    main()
