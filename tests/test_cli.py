"""Issue 18, the ``bayesslope`` command: user errors, the fit -> report round trip, matrices.

User errors are checked with the samplers replaced by a function that raises, so a passing
test proves the refusal came before any sampling; each must print exactly one line on stderr,
exit with status 2 and leave the file system as it was. The round trips run real (short)
fits: ``fit`` from a separate process as a shell would call it, ``matrix`` in-process.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from conftest import seed

import bayesslope as bs
from bayesslope import cli
from bayesslope.cli import main
from bayesslope.report import report_files

matplotlib.use("Agg")

TASKS = ["arc_easy", "piqa", "sciq"]
SHORT = ["--draws", "100", "--tune", "100", "--chains", "2"]


class Sampled(Exception):
    """Raised by the stubbed samplers: a user error was not caught before sampling."""


@pytest.fixture
def no_sampling(monkeypatch):
    import bayesslope.fit
    import bayesslope.pairs.fit

    def boom(*args, **kwargs):
        raise Sampled("a sampler was called")

    monkeypatch.setattr(bayesslope.fit, "sample_posterior", boom)
    monkeypatch.setattr(bayesslope.pairs.fit, "_sample", boom)


@pytest.fixture
def files(tmp_path):
    """A tidy CSV (3 Pythia tasks), a long CSV for matrices, a plain file and a folder."""
    df = bs.load_dataset("pythia")
    df = df[df["task"].isin(TASKS)]
    df.to_csv(tmp_path / "tidy.csv", index=False)
    long = df.assign(unit=df["model"] + "@" + df["step"].astype(str))
    long[["unit", "model", "task", "y"]].to_csv(tmp_path / "long.csv", index=False)
    (tmp_path / "notes.txt").write_text("keep")
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "summary.csv").write_text("keep")
    (tmp_path / "existing" / "by_task.csv").write_text("keep")
    (tmp_path / "existing_lin").mkdir()
    (tmp_path / "existing_lin" / "report.md").write_text("keep")
    (tmp_path / "existing_cond").mkdir()   # only the figure a fit with conditions adds
    (tmp_path / "existing_cond" / "conditions.png").write_text("keep")
    return tmp_path


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def _fails_in_one_line(capsys, argv, match, root):
    before = _snapshot(root)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert re.search(match, captured.err), captured.err
    assert _snapshot(root) == before  # nothing written, created or removed


# (argv with {d} for the folder of the files, expected message)
USER_ERRORS = [
    # fit: missing file or column, bad values, unusable --out, existing outputs
    (["fit", "{d}/nothere.csv", "--out", "{d}/o"],
     r"^bayesslope fit: error: data file '.*nothere\.csv' does not exist$"),
    (["fit", "{d}/tidy.csv", "--x", "loss", "--out", "{d}/o"],
     r"^bayesslope fit: error: missing column\(s\) \['loss'\]; the frame has columns "
     r"\[.*\] \(from --x 'loss'\)$"),
    (["fit", "{d}/tidy.csv", "--group", "family", "--n-eval", "n_q", "--out", "{d}/o"],
     r"missing column\(s\) \['family', 'n_q'\]; .*\(from --group 'family', --n-eval 'n_q'\)$"),
    (["fit", "{d}/tidy.csv", "--draws", "0", "--out", "{d}/o"],
     r"^bayesslope fit: error: argument --draws: must be a positive integer, got '0'$"),
    (["fit", "{d}/tidy.csv", "--link", "cloglog", "--out", "{d}/o"],
     r"^bayesslope fit: error: argument --link: invalid choice: 'cloglog'"),
    (["fit", "{d}/tidy.csv", "--target-accept", "1.2", "--out", "{d}/o"],
     r"argument --target-accept: must be a number in \(0, 1\), got '1\.2'$"),
    (["fit", "{d}/tidy.csv", "--n-eval", "2.5", "--out", "{d}/o"],
     r"argument --n-eval: must be a column or an integer, got '2\.5'$"),
    (["fit", "{d}/tidy.csv", "--chance", "1.5", "--out", "{d}/o"],
     r"^bayesslope fit: error: .*chance"),
    (["fit", "{d}/tidy.csv", "--out", "{d}/notes.txt"],
     r"^bayesslope fit: error: --out '.*notes\.txt' is an existing file, not a folder"),
    (["fit", "{d}/tidy.csv", "--out", "{d}/notes.txt/sub"],
     r"^bayesslope fit: error: cannot create the --out folder '.*sub': '.*notes\.txt' is a file$"),
    (["fit", "{d}/tidy.csv", "--out", "{d}/existing"],
     r"already holds a report \(summary\.csv\); pass --overwrite to replace it"),
    (["fit", "--out", "{d}/o"],
     r"^bayesslope fit: error: the following arguments are required: data$"),
    (["fit", "{d}/tidy.csv", "--condition", "model_size", "--out", "{d}/existing_cond"],
     r"already holds a report \(conditions\.png\); pass --overwrite"),
    # matrix
    (["matrix", "{d}/long.csv", "--unit", "checkpoint", "--out", "{d}/o"],
     r"^bayesslope matrix: error: missing column\(s\) \['checkpoint'\]; .*\(from --unit"),
    (["matrix", "{d}/long.csv", "--unit", "unit", "--likelihood", "binomial", "--out", "{d}/o"],
     r"^bayesslope matrix: error: n_eval is needed with likelihood='binomial'"),
    (["matrix", "{d}/long.csv", "--unit", "unit", "--tune", "0", "--out", "{d}/o"],
     r"^bayesslope matrix: error: tune must be a positive integer for the transfer matrix"),
    (["matrix", "{d}/long.csv", "--unit", "unit", "--out", "{d}/existing"],
     r"already holds a report \(summary\.csv\)"),
    # report
    (["report", "{d}/nothere.nc", "--out", "{d}/o"],
     r"^bayesslope report: error: result file '.*nothere\.nc' does not exist$"),
    (["report", "{d}/tidy.csv", "--out", "{d}/o"],
     r"^bayesslope report: error: not a readable bayesslope result: .*tidy\.csv"),
    (["report", "{d}", "--out", "{d}/o"], r"result file '.*' is not a file$"),
    # datasets
    (["datasets", "export", "nope", "--out", "{d}/x.csv"],
     r"^bayesslope datasets export: error: unknown dataset 'nope'; available: \["),
    (["datasets", "export", "pythia", "--out", "{d}/existing"],
     r"^bayesslope datasets export: error: --out '.*existing' is a folder; give a file name"),
    (["datasets", "export", "pythia", "--out", "{d}/notes.txt"],
     r"--out '.*notes\.txt' already exists; pass --overwrite"),
    (["datasets", "export", "pythia", "--out", "{d}/no/such/x.csv"],
     r"the folder of --out '.*x\.csv' does not exist$"),
    (["datasets", "readme", "nope"], r"^bayesslope datasets readme: error: unknown dataset"),
    (["frob"], r"^bayesslope: error: argument command: invalid choice: 'frob'"),
    # check-linearity
    (["check-linearity", "{d}/nothere.csv", "--out", "{d}/o"],
     r"^bayesslope check-linearity: error: data file '.*nothere\.csv' does not exist$"),
    (["check-linearity", "{d}/tidy.csv", "--group", "family", "--out", "{d}/o"],
     r"^bayesslope check-linearity: error: missing column\(s\) \['family'\]; .*"
     r"\(from --group 'family'\)$"),
    (["check-linearity", "{d}/tidy.csv", "--shapes", "linear,spline", "--out", "{d}/o"],
     r"argument --shapes: unknown shape\(s\) \['spline'\]; choose among linear, sigmoid"),
    (["check-linearity", "{d}/tidy.csv", "--shapes", "hockey_stick", "--out", "{d}/o"],
     r"argument --shapes: must include linear"),
    (["check-linearity", "{d}/tidy.csv", "--shapes", "linear,sigmoid", "--out", "{d}/o"],
     r"^bayesslope check-linearity: error: shape 'sigmoid' is the chance-floor model and "
     r"needs --chance \(a column or a number; 0 for no floor\)$"),
    (["check-linearity", "{d}/tidy.csv", "--rope", "-0.1", "--out", "{d}/o"],
     r"argument --rope: must be a positive number"),
    (["check-linearity", "{d}/tidy.csv", "--ci-prob", "90", "--out", "{d}/o"],
     r"argument --ci-prob: must be a number in \(0, 1\), got '90'$"),
    (["check-linearity", "{d}/tidy.csv", "--out", "{d}/notes.txt"],
     r"--out '.*notes\.txt' is an existing file, not a folder"),
    (["check-linearity", "{d}/tidy.csv", "--out", "{d}/existing_lin"],
     r"already holds a report \(report\.md\); pass --overwrite"),
    # forecast
    (["forecast", "{d}/tidy.csv", "--out", "{d}/o"],
     r"^bayesslope forecast: error: the following arguments are required: --holdout$"),
    (["forecast", "{d}/tidy.csv", "--holdout", "best:2", "--unit", "family", "--out", "{d}/o"],
     r"^bayesslope forecast: error: missing column\(s\) \['family'\]; .*"
     r"\(from --unit 'family'\)$"),
    (["forecast", "{d}/tidy.csv", "--holdout", "biggest:2", "--unit", "model", "--out",
      "{d}/o"],
     r"^bayesslope forecast: error: holdout='biggest:2' is neither a column nor a rule"),
    (["forecast", "{d}/tidy.csv", "--holdout", "best:12", "--unit", "model", "--out",
      "{d}/o"], r"^bayesslope forecast: error: rule 'best:12' would hold out all 12 units$"),
    (["forecast", "{d}/tidy.csv", "--holdout", "best:2", "--link", "cloglog", "--out",
      "{d}/o"], r"argument --link: invalid choice: 'cloglog'"),
    (["forecast", "{d}/tidy.csv", "--holdout", "best:2", "--out", "{d}/existing"],
     r"already holds a report \(by_task\.csv\); pass --overwrite"),
]


@pytest.mark.parametrize("argv, match", USER_ERRORS,
                         ids=[" ".join(a[:2]) + f"-{k}" for k, (a, _) in enumerate(USER_ERRORS)])
def test_user_error_is_one_line_exit_2(capsys, no_sampling, files, argv, match):
    argv = [a.format(d=files) for a in argv]
    _fails_in_one_line(capsys, argv, match, files)


def test_overwrite_lets_the_fit_start(no_sampling, files):
    # The refusal above is the only obstacle: with --overwrite the checks pass and
    # sampling starts (stubbed here).
    with pytest.raises(Sampled):
        main(["fit", str(files / "tidy.csv"), "--out", str(files / "existing"), "--overwrite"])


def test_overwrite_lets_the_question_commands_start(no_sampling, files):
    with pytest.raises(Sampled):
        main(["check-linearity", str(files / "tidy.csv"), "--out", str(files / "existing_lin"),
              "--overwrite"])
    with pytest.raises(Sampled):
        main(["forecast", str(files / "tidy.csv"), "--holdout", "best:2", "--unit", "model",
              "--out", str(files / "existing"), "--overwrite"])


def test_forecast_holdout_may_be_a_boolean_column(capsys, no_sampling, files):
    # 'deduped' (True/False) names the rows to hold out: accepted, so sampling starts.
    deduped = pd.read_csv(files / "tidy.csv")["deduped"]
    assert deduped.dtype == bool
    with pytest.raises(Sampled):
        main(["forecast", str(files / "tidy.csv"), "--holdout", "deduped", "--out",
              str(files / "o")])
    out = capsys.readouterr().out
    assert f"Forecasting {deduped.sum()} held-out rows" in out
    assert f"from the other {(~deduped).sum()}" in out
    assert not (files / "o").exists()


def test_help_has_examples(capsys):
    for command in ("fit", "matrix", "report", "datasets", "demo", "check-linearity",
                    "forecast"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text and f"bayesslope {command} " in text, command


def test_progress_bar_only_when_interactive(monkeypatch):
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    args = cli.build_parser().parse_args(["fit", "d.csv", "--out", "o"])
    for stdin, stdout, expected in ((True, True, True), (True, False, False),
                                    (False, True, False)):
        monkeypatch.setattr(sys, "stdin", Stream(stdin))
        monkeypatch.setattr(sys, "stdout", Stream(stdout))
        assert cli._progress(args) is expected
    monkeypatch.undo()
    for flag, expected in (("--progress", True), ("--no-progress", False)):
        args = cli.build_parser().parse_args(["fit", "d.csv", "--out", "o", flag])
        assert cli._progress(args) is expected


def test_datasets_list_and_export(capsys, tmp_path):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = bs.list_datasets().index
    assert lines[0].split()[:3] == ["name", "rows", "tasks"]
    listed = {line.split()[0]: line.split()[1] for line in lines[1:len(names) + 1]}
    assert listed == {n: str(bs.list_datasets().loc[n, "rows"]) for n in names}
    target = tmp_path / "pythia.csv"
    assert main(["datasets", "export", "pythia", "--out", str(target)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(target), bs.load_dataset("pythia"),
                                  check_dtype=False)
    assert main(["datasets", "export", "pythia", "--out", str(target), "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["datasets", "readme", "pythia"]) == 0
    assert capsys.readouterr().out.strip() == bs.dataset_readme("pythia").strip()


# -- round trips with real (short) fits ----------------------------------------------------------

def _command() -> list[str]:
    """The installed console script when present, else ``python -m bayesslope.cli``."""
    script = Path(sys.executable).with_name("bayesslope")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bayesslope.cli"]


def _assert_self_contained(page: str, n_figures: int) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == n_figures
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_then_report_from_a_shell(files):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    run = dict(capture_output=True, text=True, cwd=files, env=env, timeout=600)
    fit = subprocess.run([*_command(), "fit", "tidy.csv", "--x", "x", "--y", "y", "--task",
                          "task", "--x-better", "lower", "--y-better", "higher", "--group",
                          "model", "--group-nesting", "nested", *SHORT, "--seed",
                          str(seed(18)), "--out", "d"], **run)
    assert fit.returncode == 0, fit.stderr
    assert sorted(p.name for p in (files / "d").iterdir()) == sorted(report_files("fit"))
    for task in TASKS:
        assert re.search(rf"^{task}\s", fit.stdout, re.MULTILINE), fit.stdout
    # Not interactive (pipes): no progress bar on stdout.
    assert "Sampling" not in fit.stdout and "━" not in fit.stdout
    # Warnings are one line each (200 draws: an ESS below 400 is all but certain).
    assert "warnings.warn" not in fit.stderr
    assert re.search(r"^bayesslope fit: warning: SamplingWarning: .*Fix: ", fit.stderr,
                     re.MULTILINE), fit.stderr

    report = subprocess.run([*_command(), "report", "d/fit.nc", "--out", "e"], **run)
    assert report.returncode == 0, report.stderr
    assert sorted(p.name for p in (files / "e").iterdir()) == sorted(
        report_files("fit", save_result=False))
    # The reloaded fit gives the same summaries, so the same tables and report text (but
    # for the line naming fit.nc, which the second report does not write).
    for name in ("summary.csv", "population.csv"):
        assert (files / "e" / name).read_text() == (files / "d" / name).read_text(), name
    md = (files / "e" / "report.md").read_text()
    assert "fit.nc" not in md and "fit.nc" in (files / "d" / "report.md").read_text()
    assert (md.split("## Diagnostics")[1]
            == (files / "d" / "report.md").read_text().split("## Diagnostics")[1])
    assert "`model` (nested: 36 task x group cells)" in md  # 3 tasks x 12 models
    _assert_self_contained((files / "e" / "report.html").read_text(), 3)

    # A report into the fit's own folder needs --overwrite (one line, exit 2).
    again = subprocess.run([*_command(), "report", "d/fit.nc", "--out", "d"], **run)
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert "pass --overwrite" in again.stderr
    # Nothing was written beside the two --out folders.
    assert sorted(p.name for p in files.iterdir()) == sorted(
        ["tidy.csv", "long.csv", "notes.txt", "existing", "existing_lin", "existing_cond",
         "d", "e"])


def test_matrix_then_report(capsys, files):
    out = files / "m"
    argv = ["matrix", str(files / "long.csv"), "--unit", "unit", "--task", "task", "--y", "y",
            *SHORT, "--seed", str(seed(18)), "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(report_files("matrix"))
    tm = bs.load(out / "matrix.nc")
    assert isinstance(tm, bs.TransferMatrix)
    summary = pd.read_csv(out / "summary.csv", index_col=["source", "target"])
    assert len(summary) == len(TASKS) * (len(TASKS) - 1)
    pd.testing.assert_series_equal(summary["mean"], tm.summary()["mean"], check_names=False)
    _assert_self_contained((out / "report.html").read_text(), 1)
    md = (out / "report.md").read_text()
    assert "3 tasks, 6 ordered pairs" in md and "P(negative)" in md
    dependence = tm.dependence() if hasattr(tm, "dependence") else None
    flagged = dependence is not None and bool(dependence["flagged"].any())
    assert ("- **Problem:** Dependent rows: " in md) == flagged
    capsys.readouterr()
    assert main(["report", str(out / "matrix.nc"), "--out", str(files / "mr")]) == 0
    assert sorted(p.name for p in (files / "mr").iterdir()) == sorted(
        report_files("matrix", save_result=False))
    assert (files / "mr" / "summary.csv").read_text() == (out / "summary.csv").read_text()


# -- the question commands, real (short) runs on 2 tasks -------------------------------------

TINY = ["--draws", "60", "--tune", "60", "--chains", "2"]


@pytest.fixture
def two_tasks(tmp_path):
    df = bs.load_dataset("pythia")
    df = df[df["task"].isin(["arc_easy", "sciq"])].reset_index(drop=True)
    df.to_csv(tmp_path / "two.csv", index=False)
    return tmp_path, df


def test_check_linearity_writes_table_figure_report(capsys, two_tasks):
    root, df = two_tasks
    out = root / "lin"
    argv = ["check-linearity", str(root / "two.csv"), "--group", "model", "--group-nesting",
            "nested", "--shapes", "linear,hockey_stick", "--rope", "0.01", *TINY, "--seed",
            str(seed(181)), "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(cli.LINEARITY_FILES)
    assert sorted(p.name for p in root.iterdir()) == ["lin", "two.csv"]
    table = pd.read_csv(out / "linearity.csv", index_col="task")
    assert sorted(table.index) == ["arc_easy", "sciq"]
    assert (table["n"] == 164).all()
    assert {"elpd_linear", "elpd_hockey_stick", "x0_mean"} <= set(table.columns)
    assert set(table["verdict"]) <= {"linear", "flat", "hockey_stick"}
    assert (table["elpd_diff"] <= 0).all()
    assert (out / "linearity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "linearity.pdf").read_bytes()[:5] == b"%PDF-"
    md = (out / "report.md").read_text()
    for task, r in table.iterrows():  # each task's row carries the CSV's verdict
        assert re.search(rf"^\| {task} \| 164 \| {r['verdict']} \| {r['best']} \|", md,
                         re.MULTILINE), md
    assert "rows grouped by `model` (nested)" in md


def test_forecast_writes_scores_and_figure(capsys, two_tasks):
    root, df = two_tasks
    out = root / "fc"
    argv = ["forecast", str(root / "two.csv"), "--holdout", "best:2", "--unit", "model",
            "--group", "model", "--group-nesting", "nested", *TINY, "--seed", str(seed(182)),
            "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(cli.FORECAST_FILES)
    assert sorted(p.name for p in root.iterdir()) == ["fc", "two.csv"]
    # The two models with the lowest (best) loss over their checkpoints, held out whole.
    best = df.groupby("model")["x"].min().nsmallest(2).index
    held = df[df["model"].isin(best)]
    rows = pd.read_csv(out / "rows.csv", index_col=0)
    assert sorted(rows.index) == sorted(held.index)
    overall = pd.read_csv(out / "overall.csv", index_col="method")
    assert list(overall.index) == ["bayes", "linear", "sigmoid"]
    assert (overall["n"] == len(held)).all()
    assert overall["coverage"].between(0, 1).all()
    by_task = pd.read_csv(out / "by_task.csv", index_col=["task", "method"])
    assert by_task["n"].groupby(level="method").sum().to_dict() == overall["n"].to_dict()
    # The Bayesian coverage equals the share of held-out rows inside the written intervals.
    lb, ub = (c for c in rows.columns if c.startswith("bayes_eti"))
    inside = rows["actual"].between(rows[lb], rows[ub])
    assert overall.loc["bayes", "coverage"] == pytest.approx(inside.mean())
    assert (out / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert f"{len(held)} rows" in md and "| bayes |" in md
