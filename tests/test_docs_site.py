"""The documentation site builds: ``mkdocs build --strict`` (what ``make docs`` runs).

Strict mode turns every warning into a failure: a link to a missing page or file, a missing
anchor, a page left out of the nav, an API reference entry whose object does not exist. The
build reads the docstrings statically and runs no page code (tests/test_docs_examples.py
does that), so it takes seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build(site_dir: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
         "--site-dir", str(site_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e .[docs])")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] missing")
    site = tmp_path_factory.mktemp("site")
    res = _build(site, ROOT / "mkdocs.yml")
    assert res.returncode == 0, f"mkdocs build --strict failed:\n{res.stderr[-4000:]}"
    return site


def test_every_nav_page_is_built(built_site):
    import yaml

    def pages(nav):
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from pages(value) if isinstance(value, list) else [value]

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    for page in pages(nav):
        stem = page.removesuffix(".md")
        html = built_site / ("index.html" if stem == "index" else
                             stem.removesuffix("/index") + "/index.html")
        assert html.is_file(), page
    # Every Markdown page of docs/ is in the nav (strict mode also checks it).
    listed = set(pages(nav))
    assert {p.name for p in (ROOT / "docs").glob("*.md")} <= listed


def test_home_page_carries_the_readme_with_working_links(built_site):
    html = (built_site / "index.html").read_text(encoding="utf-8")
    assert "Quickstart" in html and "executed" in html
    # README links docs/model.md; on the site that is the model page, not docs/docs/...
    assert 'href="model/' in html and 'href="docs/' not in html


def test_api_reference_renders_the_docstrings(built_site):
    html = (built_site / "api" / "fit" / "index.html").read_text(encoding="utf-8")
    for name in ("fit_hierarchical", "TransferFit", "p_negative_transfer"):
        assert name in html, name
    # numpydoc sections are parsed, not shown as raw underlined text.
    assert "----------" not in html


def test_a_broken_link_fails_the_build(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e .[docs])")
    # A copy of the docs with one dead link: the build must refuse it, or the checks above
    # prove nothing.
    import shutil

    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("__pycache__"))
    (docs / "cli.md").write_text((docs / "cli.md").read_text(encoding="utf-8")
                                 + "\n[gone](no_such_page.md)\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    text = text.replace("docs_dir: docs", f"docs_dir: {docs}")
    hooks = ROOT / "scripts" / "mkdocs_hooks.py"
    text = text.replace("  - scripts/mkdocs_hooks.py", f"  - {hooks}")
    config.write_text(text, encoding="utf-8")
    res = _build(tmp_path / "site", config)
    assert res.returncode != 0
    assert "no_such_page.md" in res.stderr


# -- the tutorials' tables are the records of their scripts ------------------------------------
# docs/scripts/<page>.py writes docs/<page>.json; after a rerun the page must be updated too.


def _record(name: str) -> dict:
    import json

    return json.loads((ROOT / "docs" / f"{name}.json").read_text(encoding="utf-8"))


def test_olmo_page_table_matches_its_record():
    rec = _record("olmo_loss_to_loss")
    page = (ROOT / "docs" / "olmo_loss_to_loss.md").read_text(encoding="utf-8")
    bands = list(rec["predictive_check"].values())
    by_task = [{r["task"]: r for r in band} for band in bands]
    assert len(by_task) == 3 and len(by_task[0]) == 10
    for task in by_task[0]:
        held, mid, far = (b[task] for b in by_task)
        row = (f"| {task} | {held['coverage90']:.2f} | {mid['mean_error']:+.3f}, "
               f"{mid['coverage90']:.2f} | {far['mean_error']:+.3f}, {far['coverage90']:.2f} |")
        assert row in page, row
    text = " ".join(page.split())   # the prose wraps lines
    grouped = {s["task"]: s for s in rec["grouped"]["summary"]}
    plain = {s["task"]: s for s in rec["plain"]["summary"]}
    for task in ("dolma_reddit", "m2d2_s2orc", "wikitext_103", "dolma_stack"):
        assert f"{grouped[task]['mean']:.3f}" in text, task
    r = grouped["dolma_reddit"]
    assert f"{r['mean']:.3f} (90% interval {r['eti90_lb']:.3f} to {r['eti90_ub']:.3f}" in text
    for task in ("dolma_stack", "dolma_pes2o"):
        assert (f"{plain[task]['mean']:.3f} instead of {grouped[task]['mean']:.3f}") in text
    ratios = rec["sd_ratio_grouped_over_plain"].values()
    assert f"{min(ratios):.1f} to {max(ratios):.1f} times smaller" in text


def test_imagenet_page_tables_match_their_record():
    rec = _record("imagenet_on_the_line")
    page = (ROOT / "docs" / "imagenet_on_the_line.md").read_text(encoding="utf-8")

    def cell(s):
        return (f"{s['mean']:+.3f} ({s['eti90_lb']:+.3f} to {s['eti90_ub']:+.3f}), "
                f"{s['p_negative']:.3f}")

    pooled = {s["task"]: s for s in rec["pgd_pooled"]["summary"]}
    grouped = {s["task"]: s for s in rec["pgd_grouped"]["summary"]}
    for task in pooled:
        row = f"| {task} | {cell(pooled[task])} | {cell(grouped[task])} |"
        assert row in page, row
    ols: dict = {}
    for r in rec["pgd_ols"]:
        ols.setdefault(r["model_type"], {})[r["task"]] = r
    for kind, d in ols.items():
        a, b = d["pgd.linf.eps2"], d["pgd.l2.eps0.5"]
        if kind == "(pooled)":
            row = f"| all models (pooled) | {a['n']} | | | {a['slope']:+.2f} | {b['slope']:+.2f} |"
        else:
            row = (f"| {kind} | {a['n']} | {a['x_mean']:.2f} | {a['y_mean']:.2f} | "
                   f"{a['slope']:+.2f} | {b['slope']:+.2f} |")
        assert row in page, row
    text = " ".join(page.split())
    for s in rec["natural"]["summary"]:
        assert f"{s['mean']:.3f}" in text and f"{s['eti90_lb']:.3f} to {s['eti90_ub']:.3f}" in text


def test_conditions_page_tables_match_their_record():
    rec = _record("conditions")
    page = (ROOT / "docs" / "conditions.md").read_text(encoding="utf-8")
    for c in rec["grouped"]["slope_mu_condition"]:
        lb, ub = c["eti90"]
        row = f"| {c['condition']} | {c['mean']:.4f} | [{lb:.4f}, {ub:.4f}] |"
        assert row in page, row

    def cell(d):
        return f"{d['mean']:.4f} [{d['eti90_lb']:.4f}, {d['eti90_ub']:.4f}]"

    def prob(p):
        return "< 0.001" if p < 0.001 else "> 0.999" if p > 0.999 else f"{p:.3f}"

    grouped = {d["difference"]: d for d in rec["grouped"]["differences"]}
    plain = {d["difference"]: d for d in rec["independent"]["differences"]}
    rows = [line for line in page.splitlines() if line.startswith("| ") and " - " in line]
    checked = 0
    for name, d in grouped.items():
        cells = (f"{cell(d)} | {prob(d['p_positive'])} | {prob(d['p_outside_rope'])} | "
                 f"{cell(plain[name])} | {prob(plain[name]['p_positive'])} | "
                 f"{prob(plain[name]['p_outside_rope'])} |")
        checked += any(line.endswith(cells) for line in rows)
    assert checked >= 4   # the page shows the four within-setting contrasts


def test_no_control_characters_in_the_pages():
    """A TeX command written in a Python string without r"" loses its backslash: "\\text"
    becomes a tab + "ext", "\\frac" a form feed + "rac" (it happened once)."""
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        bad = re.search(r"[\x00-\x09\x0b-\x1f]", text)   # tab included
        assert bad is None, f"{page.name}: control character {bad.group()!r} at {bad.start()}"
