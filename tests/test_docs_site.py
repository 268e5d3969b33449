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
