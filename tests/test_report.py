"""Issue 18, the report: rounding rules, Markdown/HTML rendering, and write_report on a fit.

The formatting helpers are checked on known inputs with hand-written expectations; the
report of a small real fit (3 Pythia tasks, short chains) is checked for what a reader
relies on: the files, a self-contained HTML page, rounded numbers, the model as fitted, and
each sampler problem stated with its fix.
"""

from __future__ import annotations

import base64
import re
import shutil
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import seed

import bayesslope as bs
from bayesslope.report import report_files, write_report
from bayesslope.report_format import (
    Code,
    Figure,
    Heading,
    Items,
    Table,
    Text,
    format_ess,
    format_interval,
    format_prob,
    format_rhat,
    format_sig,
    to_html,
    to_markdown,
)

matplotlib.use("Agg")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TASKS = ["arc_easy", "piqa", "sciq"]


# -- rounding rules -------------------------------------------------------------------------

@pytest.mark.parametrize("p, text", [
    (0.0, "< 0.001"), (0.00049, "< 0.001"), (0.000999, "< 0.001"), (0.001, "0.001"),
    (0.0126, "0.013"), (0.5, "0.500"), (0.999, "0.999"), (0.99901, "> 0.999"),
    (1.0, "> 0.999"), (float("nan"), ""), (None, ""),
])
def test_format_prob(p, text):
    assert format_prob(p) == text


def test_format_prob_refuses_non_probabilities():
    with pytest.raises(ValueError, match=r"should be in \[0, 1\] but got 1\.5"):
        format_prob(1.5)


@pytest.mark.parametrize("value, text", [
    (0.0123456, "0.0123"), (-0.0123456, "-0.0123"), (1.0, "1.00"), (12.345, "12.3"),
    (1234.5, "1230"), (0.09996, "0.100"), (999.7, "1000"), (0.00012345, "0.000123"),
    (2.5e-7, "2.50e-07"), (-3.21e8, "-3.21e+08"), (0, "0"), (float("nan"), ""),
    (float("inf"), "inf"), (np.float32(0.5), "0.500"),
])
def test_format_sig_three_significant_digits(value, text):
    assert format_sig(value) == text


def test_format_ess_rhat_interval():
    assert format_ess(3975.303047) == "3975"
    assert format_ess(399.5) == "400"
    assert format_ess(np.nan) == ""
    assert format_rhat(1.0023) == "1.002"
    assert format_rhat(1.0151) == "1.015"
    assert format_interval(-0.012345, 0.5) == "[-0.0123, 0.500]"


# -- rendering ------------------------------------------------------------------------------

def test_markdown_and_html_render_the_same_blocks():
    png = b"\x89PNG\r\n\x1a\nnot really a png"
    blocks = [
        Heading("Title", 1),
        Text("plain `code` and **bold** <script>alert(1)</script>"),
        Text("something is wrong", problem=True),
        Items(("fine", "broken"), frozenset({1})),
        Table(("name", "value"), (("a|b", "1.00"), ("<c>", "2.00")), frozenset({1})),
        Figure(png=png, file="f.png", caption="A figure", other_files=("f.pdf",)),
        Code("x  y\n1  2\n"),
    ]
    md = to_markdown(blocks)
    assert md.startswith("# Title\n")
    assert "| a\\|b | 1.00 |" in md and "|---|---:|" in md
    assert "**Problem:** something is wrong" in md and "- **Problem:** broken" in md
    assert "![A figure](f.png)" in md and "f.pdf" in md
    page = to_html(blocks, "T")
    assert page.startswith("<!DOCTYPE html>") and "<title>T</title>" in page
    assert "<code>code</code>" in page and "<strong>bold</strong>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<td class="num">1.00</td>' in page and "<td>&lt;c&gt;</td>" in page
    assert page.count('class="problem"') == 2
    (src,) = re.findall(r'<img src="([^"]+)"', page)
    assert src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.split(",", 1)[1]) == png
    with pytest.raises(TypeError, match="not a report block"):
        to_markdown(["text"])


# -- write_report on a fit ------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_fit():
    """3 Pythia tasks without group=: short chains (ESS < 400) and dependent rows."""
    df = bs.load_dataset("pythia")
    df = df[df["task"].isin(TASKS)].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bs.fit_hierarchical(df, draws=100, tune=100, chains=2, cores=1,
                                   random_seed=seed(18))


@pytest.fixture(scope="module")
def report(small_fit, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "r"
    return out, write_report(small_fit, out)


def test_report_files(small_fit, report):
    out, paths = report
    assert sorted(p.name for p in out.iterdir()) == sorted(report_files("fit"))
    assert {p.name for p in paths.values()} == set(report_files("fit"))
    for stem in ("tasks", "slopes", "population"):
        assert paths[f"{stem}_png"].read_bytes()[:8] == PNG_MAGIC
        assert paths[f"{stem}_pdf"].read_bytes()[:5] == b"%PDF-"
    # The CSV tables keep full precision; the result file reloads to the same summaries.
    summary = pd.read_csv(paths["summary"], index_col="task")
    np.testing.assert_allclose(summary["mean"], small_fit.summary()["mean"], rtol=1e-12)
    pd.testing.assert_frame_equal(bs.load(paths["fit"]).summary(), small_fit.summary())


def test_report_html_is_self_contained(report):
    out, paths = report
    page = paths["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert embedded == {(out / f"{stem}.png").read_bytes()
                        for stem in ("tasks", "slopes", "population")}


def _table(md: str, headers: str) -> list[list[str]]:
    """The body cells of the Markdown table whose header row starts with ``headers``."""
    lines = md.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith(f"| {headers} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_report_numbers_are_rounded(small_fit, report):
    md = report[1]["report"].read_text(encoding="utf-8")
    rows = _table(md, "task")
    assert [r[0] for r in rows] == TASKS
    summary = small_fit.summary()
    for r in rows:
        mean, sd, interval, p_neg, rhat, ess, n = r[1:8]
        for number in (mean, sd):
            assert len(re.sub(r"[-.]|e.*", "", number).lstrip("0")) == 3, number
        assert re.fullmatch(r"\[\S+, \S+\]", interval)
        assert re.fullmatch(r"< 0\.001|> 0\.999|0\.\d{3}", p_neg), p_neg
        assert re.fullmatch(r"\d\.\d{3}", rhat) and re.fullmatch(r"\d+", ess)
        s = summary.loc[r[0]]
        assert float(mean) == pytest.approx(s["mean"], rel=5e-3)
        assert int(ess) == round(s["ess_bulk"]) and int(n) == s["n"]
    # No long number anywhere above the versions (report.md of old printed "3975.303047"):
    # at most 3 significant digits, or 3 decimals (R-hat, probabilities).
    body = md.split("## Versions")[0]
    for number in re.findall(r"\d+\.\d+", body):
        decimals = number.split(".")[1]
        assert len(number.replace(".", "").lstrip("0")) <= 3 or len(decimals) <= 3, number


def test_report_states_model_versions_and_fixes(small_fit, report):
    md = report[1]["report"].read_text(encoding="utf-8")
    settings = dict((r[0], r[1]) for r in _table(md, "setting"))
    assert settings["link"] == "identity" and settings["likelihood"] == "normal"
    assert settings["formulation"] == small_fit.formulation
    assert settings["group"] == "none"
    assert "2 chains x 100 draws (100 tuning)" in settings["sampler"]
    priors = dict((r[0], r[1]) for r in _table(md, "parameter | prior"))
    assert set(priors) == set(small_fit.priors)
    assert priors["corr"] == "LKJ(eta=2.00)" and priors["slope_mu"].startswith("Normal(mu=0,")
    versions = dict((r[0], r[1]) for r in _table(md, "library"))
    assert versions["pymc"] == small_fit.spec["versions"]["pymc"]
    # Every sampler problem is in the report with its fix. 2 chains x 100 draws = 200 draws:
    # a min ESS >= 400 would need every parameter to mix better than independent draws.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small_fit.check_sampling()
    fixes = [" ".join(str(w.message).split()) for w in caught
             if issubclass(w.category, bs.SamplingWarning)]
    assert any("effective sample size below 400" in f for f in fixes)
    for fix in fixes:
        assert f"- **Problem:** {fix}" in md
    assert "Fix: increase draws or chains" in md
    # The dependence check's verdict: a flagged column is a problem with its DependenceWarning.
    dep = small_fit.dependence()
    flagged = dep.index[dep["flagged"]].tolist()
    assert ("- **Problem:** Dependent rows: residuals of rows sharing" in md) == bool(flagged)
    if flagged:
        assert "group_nesting='nested'" in md


def test_report_refuses_to_overwrite(small_fit, report, tmp_path):
    out, paths = report
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FileExistsError, match=r"already holds summary\.csv, .*overwrite=True"):
        write_report(small_fit, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    target = tmp_path / "file.txt"
    target.write_text("keep")
    with pytest.raises(NotADirectoryError, match="is an existing file, not a folder"):
        write_report(small_fit, target)
    assert target.read_text() == "keep"
    with pytest.raises(TypeError, match=r"TransferFit .* or a TransferMatrix .*got DataFrame"):
        write_report(pd.DataFrame(), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_report_overwrite_and_no_result_file(small_fit, report, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(report[0], out)
    paths = write_report(small_fit, out, overwrite=True, save_result=False, ci_prob=0.8)
    assert "fit" not in paths
    md = paths["report"].read_text(encoding="utf-8")
    assert "80% interval" in md
    fresh = write_report(small_fit, tmp_path / "nosave", save_result=False)
    assert sorted(p.name for p in (tmp_path / "nosave").iterdir()) == sorted(
        report_files("fit", save_result=False))
    assert "fit.nc" not in {p.name for p in fresh.values()}


def test_report_selects_tasks_beyond_the_limits(small_fit, tmp_path, monkeypatch):
    # Beyond MAX_TASK_PANELS the task figure shows the flattest and steepest halves, and
    # beyond MAX_TABLE_ROWS the slope table points to summary.csv (limits lowered here).
    from bayesslope import report as report_module

    monkeypatch.setattr(report_module, "MAX_TASK_PANELS", 2)
    monkeypatch.setattr(report_module, "MAX_TABLE_ROWS", 2)
    shown = []
    original = type(small_fit).plot_tasks

    def spy(self, **kwargs):
        shown.append(kwargs.get("tasks"))
        return original(self, **kwargs)

    monkeypatch.setattr(type(small_fit), "plot_tasks", spy)
    md = write_report(small_fit, tmp_path / "r")["report"].read_text(encoding="utf-8")
    means = small_fit.summary()["mean"]
    assert shown == [[means.idxmin(), means.idxmax()]]
    assert "(2 of 3 tasks: the 1 flattest and the 1 steepest slopes)" in md
    rows = _table(md, "task")
    assert [r[0] for r in rows[:2]] == TASKS[:2]
    assert rows[2][0] == "... 1 more in summary.csv"


def _with_conditions(fit, shifts: dict, sd: float = 0.01):
    """``fit`` with made-up ``slope_mu_condition`` draws: reference "base" at ``slope_mu``,
    each further condition shifted by its entry of ``shifts`` (plus noise of sd ``sd``)."""
    import xarray as xr

    rng = np.random.default_rng(seed(181))
    post = fit.posterior["posterior"].to_dataset()
    base = post["slope_mu"].values
    cols = [base] + [base + m + sd * rng.standard_normal(base.shape) for m in shifts.values()]
    post = post.assign(slope_mu_condition=(("chain", "draw", "condition"),
                                           np.stack(cols, axis=-1)))
    post = post.assign_coords(condition=["base", *shifts])
    return bs.TransferFit(posterior=xr.DataTree.from_dict({"posterior": post}),
                          design=fit.design, spec=fit.spec, variants=fit.variants)


def test_report_of_a_fit_with_conditions(small_fit, tmp_path):
    # Planted population-slope shifts (+0.05 and -0.05, 5 sd of their noise away from 0):
    # the report adds the condition figure and tables whose numbers are the planted ones.
    fit = _with_conditions(small_fit, {"5-shot": 0.05, "deduped": -0.05})
    out = tmp_path / "r"
    paths = write_report(fit, out, save_result=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        report_files("fit", save_result=False, conditions=True))
    assert paths["conditions_png"].read_bytes()[:8] == PNG_MAGIC
    assert paths["conditions_pdf"].read_bytes()[:5] == b"%PDF-"
    assert len(re.findall(r'<img src="data:image/png', paths["html"].read_text())) == 4
    md = paths["report"].read_text(encoding="utf-8")
    assert "## Conditions" in md and "reference: base" in md
    rows = {r[0]: r for r in _table(md, "difference")}
    assert list(rows) == ["5-shot - base", "deduped - base", "deduped - 5-shot"]
    for name, truth in (("5-shot - base", 0.05), ("deduped - base", -0.05),
                        ("deduped - 5-shot", -0.10)):
        mean, sd, interval, p_pos = rows[name][1:5]
        assert float(mean) == pytest.approx(truth, abs=0.005)
        assert 0.005 < float(sd) < 0.03  # sqrt(2) x 0.01 for the last, 0.01 for the others
        lo, hi = (float(v) for v in interval.strip("[]").split(", "))
        assert lo < truth < hi
        assert p_pos == ("> 0.999" if truth > 0 else "< 0.001")
    levels = [r[0] for r in _table(md, "condition | population slope mean")]
    assert levels == ["base", "5-shot", "deduped"]
    # A fit without conditions writes neither the section nor the figure.
    assert "## Conditions" not in write_report(small_fit, tmp_path / "plain",
                                               save_result=False)["report"].read_text()
