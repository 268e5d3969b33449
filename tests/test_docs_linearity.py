"""docs/linearity.md quotes the records of benchmarks/linearity_real.py (no fitting here).

The script writes ``docs/linearity_<data>/table_<setting>.csv`` and ``record.json`` (whose
``fits.<setting>.table`` holds the same table); after a rerun the page must be updated too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "linearity.md"


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def _record(name: str) -> dict:
    return json.loads((ROOT / "docs" / name / "record.json").read_text(encoding="utf-8"))


def _interval(lo: float, hi: float, digits: int) -> str:
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return "none"
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def _row(r: dict, shapes, digits: int, k_column: bool) -> str:
    """One table row of the page, as the page writes it."""
    cells = [r["task"], *(f"{r[f'elpd_{s}']:.1f}" for s in shapes), r["best"],
             f"{r['elpd_diff']:.1f} ({r['elpd_diff_se']:.1f})",
             f"{r['x0_mean']:.{digits}f} {_interval(r['x0_lb'], r['x0_ub'], digits)}",
             _interval(r["linear_x_lo"], r["linear_x_hi"], digits), r["verdict"]]
    if k_column:
        cells.append(" / ".join(str(int(r[f"n_k_high_{s}"])) for s in shapes))
    return "| " + " | ".join(cells) + " |"


def test_pythia_table_matches_the_scripts_table():
    table = pd.read_csv(ROOT / "docs" / "linearity_pythia" / "table_grouped.csv")
    page = _page()
    for r in table.to_dict("records"):
        row = _row(r, ("linear", "sigmoid", "hockey_stick"), 2, k_column=False)
        assert row in page, row
    plain = pd.read_csv(ROOT / "docs" / "linearity_pythia" / "table_independent.csv")
    for g, i in zip(table.to_dict("records"), plain.to_dict("records"), strict=True):
        row = (f"| {g['task']} | {g['elpd_diff']:.1f} ({g['elpd_diff_se']:.1f}) | "
               f"{i['elpd_diff']:.1f} ({i['elpd_diff_se']:.1f}) | "
               f"{_interval(g['x0_lb'], g['x0_ub'], 2)} | {_interval(i['x0_lb'], i['x0_ub'], 2)} |")
        assert row in page, row


def _check_section(name: str, digits: int) -> None:
    rec = _record(name)
    fits = rec["fits"]["grouped"]
    shapes = list(fits["diagnostics"])
    page = _page()
    rows = fits["table"]
    assert len(rows) == rec["tasks"]
    for r in rows:
        row = _row(r, shapes, digits, k_column=True)
        assert row in page, row
    text = " ".join(page.split())  # the prose wraps lines
    for shape, d in fits["diagnostics"].items():
        cell = (f"| {shape} | {d['sampling_s']:.0f} | {d['r_hat_max']:.3f} | "
                f"{d['ess_bulk_min']:.0f} | {d['divergences']} |")
        assert cell in text, cell
    assert f"{rec['rows']:,} rows" in text


def test_olmo_table_matches_its_record():
    _check_section("linearity_olmo", 2)


def test_openclip_table_matches_its_record():
    _check_section("linearity_openclip", 3)
