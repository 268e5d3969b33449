"""The ``bayesslope`` command: fit, matrix, report, datasets, demo and the question commands.

``check-linearity`` (is the straight line adequate, task by task?
:func:`bayesslope.linearity_check`) and ``forecast`` (does the fit predict held-out models?
:func:`bayesslope.backtest`) write their tables as CSV, their figure and a short ``report.md``.

A thin shell over the public API: each subcommand reads its input, checks every argument,
column and the output path *before* any fitting, runs one library call and writes its files
into ``--out`` only (through :func:`bayesslope.report.write_report`). A user error prints one
line on stderr and exits with status 2 (argparse's convention), never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path

__all__ = ["main", "build_parser", "REPORT_FILES", "LINEARITY_FILES", "FORECAST_FILES"]

from .report import has_conditions, report_files, result_kind

# The files `bayesslope fit` and `bayesslope demo` write into --out.
REPORT_FILES = report_files("fit")
# The files of the question commands (figures as PNG and PDF).
LINEARITY_FILES = ("linearity.csv", "linearity.png", "linearity.pdf", "report.md")
FORECAST_FILES = ("overall.csv", "by_task.csv", "rows.csv", "forecast.png", "forecast.pdf",
                  "report.md")


class UsageError(Exception):
    """A user error on the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UsageError` instead of exiting."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # noqa: D102 (argparse's hook)
        raise UsageError(f"{self.prog}: error: {message}")


# -- argument types ------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


def _shapes(text: str) -> tuple[str, ...]:
    """``--shapes linear,hockey_stick``: known shape names, "linear" among them."""
    from .linearity import LINEARITY_SHAPES

    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [s for s in names if s not in LINEARITY_SHAPES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown shape(s) {unknown}; choose among {', '.join(LINEARITY_SHAPES)}")
    if "linear" not in names:
        raise argparse.ArgumentTypeError(f"must include linear (the verdict compares it "
                                         f"with the best shape), got {text!r}")
    return names


def _rope(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number (the half-width of the "
                                         f"region of practical equivalence), got {text!r}")
    return value


# -- checks made before any fitting ----------------------------------------------------------

def _check_out(out: str, names, overwrite: bool) -> Path:
    """Say now (before fitting) why the --out folder cannot take ``names``; create nothing."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out!r} is an existing file, not a folder; choose a folder")
    existing = [name for name in names if (path / name).exists()]
    if existing and not overwrite:
        raise UsageError(
            f"--out {out!r} already holds a report ({', '.join(existing)}); pass --overwrite "
            "to replace it, or choose another folder"
        )
    # The folder is made after the fit: it must be creatable (or writable) now.
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"cannot create the --out folder {out!r}: {str(parent)!r} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write into {str(parent)!r} (for --out {out!r})")
    return path


def _read_csv(file: str):
    import pandas as pd

    path = Path(file)
    if not path.exists():
        raise UsageError(f"data file {file!r} does not exist")
    if not path.is_file():
        raise UsageError(f"data file {file!r} is not a file")
    try:
        return pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"cannot read {file!r} as CSV: {reason}") from None


def _column_or_number(df, value: str | None, kind: type, flag: str):
    """``--n-eval`` / ``--chance``: a column of the data if one has that name, else a number."""
    if value is None or value in df.columns:
        return value
    try:
        return kind(value)
    except ValueError:
        pass
    try:
        float(value)
    except ValueError:
        return value  # not a number: reported as a missing column
    what = "an integer" if kind is int else "a number"
    raise UsageError(f"argument {flag}: must be a column or {what}, got {value!r}")


def _check_columns(df, columns: dict[str, object]) -> None:
    """Every ``--flag``'s column is in the data (numbers passed in their place are skipped)."""
    missing = {flag: c for flag, c in columns.items()
               if isinstance(c, str) and c not in df.columns}
    if missing:
        flags = ", ".join(f"--{f.replace('_', '-')} {c!r}" for f, c in missing.items())
        raise UsageError(f"missing column(s) {list(dict.fromkeys(missing.values()))}; the frame "
                         f"has columns {list(df.columns)} (from {flags})")


def _progress(args) -> bool:
    """``--progress``/``--no-progress``, else on only when the session is interactive."""
    if args.progress is not None:
        return args.progress
    return sys.stdin.isatty() and sys.stdout.isatty()


# -- subcommands -------------------------------------------------------------------------------

def _print_slopes(fit) -> None:
    from .report_format import format_interval, format_prob, format_sig

    summary = fit.summary()
    lb, ub = (c for c in summary.columns if c.startswith("eti"))
    width = max(len(str(t)) for t in summary.index)
    print(f"{'task':<{width}}  {'slope':>9}  {'90% interval':>22}  P(negative)")
    for task, r in summary.iterrows():
        print(f"{task!s:<{width}}  {format_sig(r['mean']):>9}  "
              f"{format_interval(r[lb], r[ub]):>22}  {format_prob(r['p_negative'])}")


def _write(result, out: Path, overwrite: bool, *, save_result: bool = True) -> int:
    from .report import write_report

    try:
        paths = write_report(result, out, overwrite=overwrite, save_result=save_result)
    except (FileExistsError, NotADirectoryError) as err:  # raced with another writer
        raise UsageError(str(err)) from None
    print(f"wrote {len(paths)} files to {out}: {', '.join(p.name for p in paths.values())}")
    return 0


def _demo(args) -> int:
    import bayesslope as bs

    out = _check_out(args.out, report_files("fit"), args.overwrite)
    df = bs.load_dataset("pythia")
    print(f"Fitting the Pythia demo: {len(df)} rows, {df['task'].nunique()} tasks "
          "(x = LAMBADA log-perplexity, lower is better; y = accuracy, higher is better)")
    # The 164 rows per task are checkpoints of 12 models: not independent evidence. Each
    # model gets its own offset within each task (the README's quickstart model).
    fit = bs.fit_hierarchical(
        df, x="x", y="y", task="task", x_better="lower", y_better="higher",
        group="model", group_nesting="nested", random_seed=args.seed,
        progressbar=_progress(args), draws=args.draws, tune=args.tune, chains=args.chains,
        target_accept=args.target_accept,
    )
    _print_slopes(fit)
    return _write(fit, out, args.overwrite)


def _fit(args) -> int:
    import bayesslope as bs

    df = _read_csv(args.data)
    n_eval = _column_or_number(df, args.n_eval, int, "--n-eval")
    chance = _column_or_number(df, args.chance, float, "--chance")
    _check_columns(df, {"x": args.x, "y": args.y, "task": args.task, "group": args.group,
                        "condition": args.condition, "n_eval": n_eval, "chance": chance})
    out = _check_out(args.out, report_files("fit", conditions=args.condition is not None),
                     args.overwrite)
    print(f"Fitting {args.data}: {len(df)} rows")
    fit = bs.fit_hierarchical(
        df, x=args.x, y=args.y, task=args.task, x_better=args.x_better,
        y_better=args.y_better, link=args.link, likelihood=args.likelihood, n_eval=n_eval,
        counts=args.counts, chance=chance, group=args.group, group_nesting=args.group_nesting,
        condition=args.condition, per_task_sigma=args.per_task_sigma,
        random_seed=args.seed, progressbar=_progress(args), draws=args.draws,
        tune=args.tune, chains=args.chains, target_accept=args.target_accept,
    )
    _print_slopes(fit)
    return _write(fit, out, args.overwrite)


def _matrix(args) -> int:
    import bayesslope as bs

    df = _read_csv(args.data)
    n_eval = _column_or_number(df, args.n_eval, int, "--n-eval")
    _check_columns(df, {"unit": args.unit, "task": args.task, "y": args.y,
                        "group": args.group, "n_eval": n_eval})
    out = _check_out(args.out, report_files("matrix"), args.overwrite)
    print(f"Fitting the transfer matrix of {args.data}: {len(df)} rows, "
          f"{df[args.task].nunique()} tasks")
    tm = bs.fit_transfer_matrix(
        df, unit=args.unit, task=args.task, y=args.y, y_better=args.y_better,
        likelihood=args.likelihood, n_eval=n_eval, counts=args.counts, group=args.group,
        random_seed=args.seed,
        progressbar=_progress(args), draws=args.draws, tune=args.tune, chains=args.chains,
        target_accept=0.9 if args.target_accept is None else args.target_accept,
    )
    print(repr(tm))
    return _write(tm, out, args.overwrite)


def _report(args) -> int:
    import bayesslope as bs

    path = Path(args.result)
    if not path.exists():
        raise UsageError(f"result file {args.result!r} does not exist")
    if not path.is_file():
        raise UsageError(f"result file {args.result!r} is not a file")
    result = bs.load(path)
    kind = result_kind(result)
    out = _check_out(args.out, report_files(kind, save_result=False,
                                            conditions=kind == "fit" and has_conditions(result)),
                     args.overwrite)
    print(repr(result))
    return _write(result, out, args.overwrite, save_result=False)


def _datasets(args) -> int:
    import bayesslope as bs

    if args.action == "export":
        target = Path(args.out)
        if target.is_dir():
            raise UsageError(f"--out {args.out!r} is a folder; give a file name, e.g. "
                             f"{str(target / (args.name + '.csv'))!r}")
        if target.exists() and not args.overwrite:
            raise UsageError(f"--out {args.out!r} already exists; pass --overwrite to "
                             "replace it, or choose another file")
        if not target.parent.is_dir():
            raise UsageError(f"the folder of --out {args.out!r} does not exist")
        df = bs.load_dataset(args.name)
        df.to_csv(target, index=False)
        print(f"wrote {target}: {len(df)} rows, columns {list(df.columns)}")
    elif args.action == "readme":
        print(bs.dataset_readme(args.name))
    else:
        table = bs.list_datasets().reset_index()
        columns = ["name", "rows", "tasks", "unit", "units", "license", "description"]
        cells = [columns] + [[str(v) for v in row] for row in table[columns].to_numpy()]
        widths = [max(len(r[k]) for r in cells) for k in range(len(columns))]
        numeric = {"rows", "tasks", "units"}
        for row in cells:
            print("  ".join(c.rjust(w) if name in numeric else c.ljust(w)
                            for c, w, name in zip(row, widths, columns, strict=True)).rstrip())
        print("\nExport one: bayesslope datasets export NAME --out NAME.csv; "
              "its provenance: bayesslope datasets readme NAME")
    return 0


# -- question commands ---------------------------------------------------------------------

def _question_kwargs(args, df) -> dict:
    """Arguments of fit_hierarchical shared by check-linearity and forecast (columns checked)."""
    n_eval = _column_or_number(df, args.n_eval, int, "--n-eval")
    chance = _column_or_number(df, args.chance, float, "--chance")
    columns = {"x": args.x, "y": args.y, "task": args.task, "group": args.group,
               "n_eval": n_eval, "chance": chance}
    if getattr(args, "unit", None) is not None:
        columns["unit"] = args.unit
    _check_columns(df, columns)
    kw = dict(x=args.x, y=args.y, task=args.task, x_better=args.x_better,
              y_better=args.y_better, group=args.group, random_seed=args.seed,
              progressbar=_progress(args), draws=args.draws, tune=args.tune,
              chains=args.chains, target_accept=args.target_accept, counts=args.counts)
    if args.group is not None:
        kw["group_nesting"] = args.group_nesting
    for key, value in (("n_eval", n_eval), ("chance", chance)):
        if value is not None:
            kw[key] = value
    return kw


def _save_png_pdf(fig, out: Path, stem: str) -> None:
    import matplotlib.pyplot as plt

    from .style import save_figure

    save_figure(fig, out / f"{stem}.png", dpi=150)
    save_figure(fig, out / f"{stem}.pdf")
    plt.close(fig)


def _written(out: Path, names) -> int:
    print(f"wrote {len(names)} files to {out}: {', '.join(names)}")
    return 0


def _check_linearity(args) -> int:
    import bayesslope as bs

    from .report_format import Heading, Items, Table, Text, format_interval, format_sig, to_markdown

    df = _read_csv(args.data)
    kw = _question_kwargs(args, df)
    shapes = args.shapes or (("linear", "sigmoid", "hockey_stick") if args.chance is not None
                             else ("linear", "hockey_stick"))
    from .linearity import _bounded, _resolve_shapes

    resolved, _ = _resolve_shapes(shapes, _bounded(df, args.y))
    if "sigmoid" in resolved and args.chance is None:  # said before the first line of output
        raise UsageError("shape 'sigmoid' is the chance-floor model and needs --chance (a "
                         "column or a number; 0 for no floor)")
    out = _check_out(args.out, LINEARITY_FILES, args.overwrite)
    print(f"Checking linearity on {args.data}: {len(df)} rows, {df[args.task].nunique()} "
          f"tasks, shapes {', '.join(shapes)}")
    chk = bs.linearity_check(df, shapes=shapes, rope=args.rope, ci_prob=args.ci_prob, **kw)
    table = chk.table()
    fig = chk.plot()
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "linearity.csv")
    _save_png_pdf(fig, out, "linearity")

    pct = f"{100 * args.ci_prob:g}%"
    header = ("task", "n", "verdict", "best shape", "elpd linear - best", "slope",
              f"{pct} interval", "straight over x")
    rows = []
    for task, r in table.iterrows():
        diff = f"{format_sig(r['elpd_diff'])} ± {format_sig(r['elpd_diff_se'])}"
        span = ("" if math.isnan(r["linear_x_lo"])
                else format_interval(r["linear_x_lo"], r["linear_x_hi"]))
        rows.append((str(task), str(int(r["n"])), str(r["verdict"]), str(r["best"]), diff,
                     format_sig(r["slope_mean"]), format_interval(r["slope_lb"], r["slope_ub"]),
                     span))
    counts = table["verdict"].value_counts()
    blocks = [
        Heading("Is the straight line adequate? (bayesslope check-linearity)", 1),
        Text(f"`{args.data}`: {len(df)} rows, {len(table)} tasks; x = `{args.x}`, "
             f"y = `{args.y}`; shapes fitted: {', '.join(chk.shapes)}"
             + (f" (sigmoid replaced by {chk.substituted['sigmoid']}: y is not in [0, 1])"
                if chk.substituted else "")
             + (f"; rows grouped by `{args.group}` ({args.group_nesting})"
                if args.group else "") + "."),
        Text("Verdict per task: \"linear\" when the straight line's PSIS-LOO elpd is within 2 "
             "standard errors of the best shape's, \"flat\" when the slope's interval lies "
             "inside the ROPE, else the best shape's name. \"Straight over x\" is where the "
             "line holds (beyond the hockey stick's threshold when it wins)."),
        Items(tuple(f"{v}: {n} task{'s' if n != 1 else ''}" for v, n in counts.items())),
        Table(header, tuple(rows), numeric=frozenset({1, 4, 5, 6, 7})),
        Text("Full table: `linearity.csv`; figure: `linearity.png` / `linearity.pdf`. "
             f"Sampler: {args.chains} chains x {args.draws} draws ({args.tune} tuning), "
             f"seed {args.seed}. Tasks with high Pareto k are counted in the "
             "`n_k_high_<shape>` columns of the CSV."),
    ]
    (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    width = max(len(str(t)) for t in table.index)
    for task, r in table.iterrows():
        print(f"{task!s:<{width}}  {r['verdict']}")
    return _written(out, LINEARITY_FILES)


def _forecast(args) -> int:
    import bayesslope as bs

    from .report_format import Heading, Table, Text, format_sig, to_markdown

    df = _read_csv(args.data)
    kw = _question_kwargs(args, df)
    for key in ("link", "likelihood"):
        if getattr(args, key) is not None:
            kw[key] = getattr(args, key)
    out = _check_out(args.out, FORECAST_FILES, args.overwrite)
    # The hold-out is checked before the fit (bs.backtest would too, after preparing it).
    from .backtesting import holdout_mask
    from .data import prepare_design

    design = prepare_design(df, x=args.x, y=args.y, task=args.task, x_better=args.x_better,
                            y_better=args.y_better, warn_weak=False)
    mask = holdout_mask(df, args.holdout, x=args.x, unit=args.unit,
                           x_better=design.x_better)
    print(f"Forecasting {int(mask.sum())} held-out rows of {args.data} ({args.holdout}"
          + (f" by {args.unit}" if args.unit else "") + f") from the other {int((~mask).sum())}")
    res = bs.backtest(df, holdout=args.holdout, unit=args.unit, ci_prob=args.ci_prob, **kw)
    fig = res.plot(random_seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    res.overall.to_csv(out / "overall.csv")
    res.by_task.to_csv(out / "by_task.csv")
    res.rows.to_csv(out / "rows.csv")
    _save_png_pdf(fig, out, "forecast")

    pct = f"{100 * args.ci_prob:g}%"
    header = ("method", "n", f"{pct} coverage", "MAE", "mean relative error",
              "mean interval width")
    rows = tuple((str(m), str(int(r["n"])), format_sig(r["coverage"]), format_sig(r["mae"]),
                  format_sig(r["mare"]), format_sig(r["mean_width"]))
                 for m, r in res.overall.iterrows())
    blocks = [
        Heading("Does the fit forecast held-out models? (bayesslope forecast)", 1),
        Text(f"`{args.data}`: held out `{args.holdout}`"
             + (f" (whole `{args.unit}` units)" if args.unit else "")
             + f", {len(res.rows)} rows; fitted on the other {int((~res.holdout).sum())}. "
             "`bayes` is the hierarchical fit's posterior predictive interval; `linear` and "
             "`sigmoid` are per-task least-squares baselines on the same training rows."),
        Table(header, rows, numeric=frozenset({1, 2, 3, 4, 5})),
        Text(f"A calibrated forecast covers about {pct} of the held-out scores. Per task: "
             "`by_task.csv`; per held-out row: `rows.csv`; figure: `forecast.png` / "
             f"`forecast.pdf`. Sampler: {args.chains} chains x {args.draws} draws "
             f"({args.tune} tuning), seed {args.seed}."),
    ]
    if res.notes:
        blocks.append(Text("Baseline notes: " + "; ".join(res.notes)))
    (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    print(res.overall[["n", "coverage", "mae", "mean_width"]].to_string(float_format="%.4g"))
    return _written(out, FORECAST_FILES)


# -- the parser --------------------------------------------------------------------------------

_EXAMPLES = {
    "fit": """examples:
  bayesslope datasets export pythia --out pythia.csv
  bayesslope fit pythia.csv --x x --y y --task task --x-better lower --y-better higher \\
      --group model --group-nesting nested --out pythia-fit
  bayesslope fit scores.csv --x loss --y acc --task benchmark --n-eval n_questions \\
      --chance 0.25 --draws 2000 --out acc-fit --overwrite""",
    "matrix": """examples:
  bayesslope datasets export openclip --out openclip.csv
  bayesslope matrix openclip.csv --unit model --task task --y y --out openclip-matrix
  bayesslope matrix mmlu.csv --unit unit --task subject --y acc --group model --seed 3 \\
      --out mmlu-matrix""",
    "report": """examples:
  bayesslope report pythia-fit/fit.nc --out pythia-report
  bayesslope report openclip-matrix/matrix.nc --out openclip-report""",
    "datasets": """examples:
  bayesslope datasets                                 # the table of bundled datasets
  bayesslope datasets export pythia --out pythia.csv  # one of them as CSV
  bayesslope datasets readme pythia                   # its provenance, license and caveats""",
    "check-linearity": """examples:
  bayesslope datasets export pythia --out pythia.csv
  bayesslope check-linearity pythia.csv --x x --y y --task task --group model \\
      --group-nesting nested --rope 0.01 --out pythia-linearity
  bayesslope check-linearity pythia.csv --chance chance --n-eval n_eval_examples \\
      --shapes linear,sigmoid,hockey_stick --group model --out pythia-shapes""",
    "forecast": """examples:
  bayesslope datasets export pythia --out pythia.csv
  bayesslope forecast pythia.csv --holdout best:2 --unit model --group model \\
      --group-nesting nested --out pythia-forecast
  bayesslope forecast scores.csv --x loss --y acc --task benchmark --holdout 'best:20%' \\
      --out forecast --overwrite""",
    "demo": """examples:
  bayesslope demo                       # writes demo-output/
  bayesslope demo --out d --overwrite --draws 500""",
}

_DESCRIPTION = """Bayesian analysis of transfer: how an upstream metric predicts downstream ones.

User errors (a missing file or column, a bad value, an unusable --out, existing outputs
without --overwrite) print one line and exit with status 2 before any fitting; every file
is written inside --out."""


def _add_sampling_args(cmd: argparse.ArgumentParser, *, out_default: str | None = None
                       ) -> None:
    if out_default is None:
        cmd.add_argument("--out", required=True, help="folder for the results and the report")
    else:
        cmd.add_argument("--out", default=out_default,
                         help=f"folder for the results and the report (default {out_default})")
    cmd.add_argument("--overwrite", action="store_true", help="replace files already in --out")
    cmd.add_argument("--seed", type=_non_negative_int, default=1,
                     help="random seed (default 1): the same seed gives the same draws")
    cmd.add_argument("--draws", type=_positive_int, default=1000,
                     help="draws per chain (default 1000)")
    cmd.add_argument("--tune", type=_non_negative_int, default=1000,
                     help="tuning steps per chain (default 1000)")
    cmd.add_argument("--chains", type=_positive_int, default=4, help="chains (default 4)")
    cmd.add_argument("--target-accept", type=_probability, default=None,
                     help="NUTS target acceptance (default 0.9, 0.98 for the sigmoid's lapse "
                          "rates; raise it on divergences)")
    cmd.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar (default: on when run interactively)")


def _add_data_args(cmd: argparse.ArgumentParser) -> None:
    """The data options shared by fit, check-linearity and forecast."""
    cmd.add_argument("data", help="CSV file, one row per (model or checkpoint) x task")
    cmd.add_argument("--x", default="x", help="column of the upstream score (default x)")
    cmd.add_argument("--y", default="y", help="column of the downstream score (default y)")
    cmd.add_argument("--task", default="task", help="column of the task (default task)")
    cmd.add_argument("--x-better", choices=("lower", "higher"), default=None,
                     help="direction in which x is better (default: the data's "
                          "x_higher_is_better column, else lower)")
    cmd.add_argument("--y-better", choices=("lower", "higher"), default=None,
                     help="direction in which y is better (default: the data's "
                          "y_higher_is_better column, else higher)")
    cmd.add_argument("--group", default=None,
                     help="column of the unit the rows repeat (e.g. model), partially pooled")
    cmd.add_argument("--group-nesting", choices=("crossed", "nested"), default="crossed",
                     help="group effects shared across tasks (crossed, default) or per "
                          "(task, group) cell (nested: checkpoints of one model)")
    cmd.add_argument("--chance", default=None, metavar="COLUMN_OR_NUMBER",
                     help="chance accuracy (floor): a column or one number")
    cmd.add_argument("--n-eval", default=None, metavar="COLUMN_OR_INT",
                     help="test-set size behind each score: a column or one number")
    cmd.add_argument("--counts", choices=("whole", "average"), default="whole",
                     help="with --n-eval: 'average' for accuracies averaged over subtasks "
                          "(e.g. MMLU), where score x n-eval is not a whole number")


def _add_question_args(cmd: argparse.ArgumentParser) -> None:
    """The options of check-linearity and forecast: the data options and --ci-prob."""
    _add_data_args(cmd)
    cmd.add_argument("--ci-prob", type=_probability, default=0.9,
                     help="probability of the intervals (default 0.9)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayesslope`` command."""
    parser = _Parser(prog="bayesslope", description=_DESCRIPTION,
                     epilog="Run 'bayesslope COMMAND --help' for a command's options and "
                            "examples; docs/cli.md has more.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fit = sub.add_parser("fit", help="fit the hierarchical transfer model to a tidy CSV",
                         description="Fit bs.fit_hierarchical to a tidy CSV (one row per "
                                     "model or checkpoint x task); write fit.nc and a report.",
                         epilog=_EXAMPLES["fit"])
    _add_data_args(fit)
    fit.add_argument("--link", choices=("identity", "logit", "probit"), default=None,
                     help="link of the mean score (default: probit with counts or a chance "
                          "floor, else identity)")
    fit.add_argument("--likelihood", default=None,
                     choices=("normal", "student_t", "binomial", "beta_binomial"),
                     help="observation model (default: binomial with --n-eval, else normal)")
    fit.add_argument("--condition", default=None,
                     help="column of conditions (e.g. shots): per-condition population slopes")
    fit.add_argument("--per-task-sigma", action="store_true", help="one noise scale per task")
    _add_sampling_args(fit)
    fit.set_defaults(run=_fit)

    matrix = sub.add_parser("matrix", help="fit the transfer slope of every ordered task pair",
                            description="Fit bs.fit_transfer_matrix to a long CSV (one row "
                                        "per unit x task); write matrix.nc, summary.csv, the "
                                        "heatmap and a report.",
                            epilog=_EXAMPLES["matrix"])
    matrix.add_argument("data", help="CSV file, one row per (unit, task) score")
    matrix.add_argument("--unit", default="model",
                        help="column of the unit scored on every task (default model)")
    matrix.add_argument("--task", default="task", help="column of the task (default task)")
    matrix.add_argument("--y", default="y", help="column of the score (default y)")
    matrix.add_argument("--y-better", choices=("lower", "higher"), default=None,
                        help="direction in which scores are better (default: the data's "
                             "y_higher_is_better column, else higher)")
    matrix.add_argument("--likelihood", choices=("normal", "student_t", "binomial"),
                        default="normal", help="observation model (default normal)")
    matrix.add_argument("--n-eval", default=None, metavar="COLUMN_OR_INT",
                        help="with --likelihood binomial: questions per evaluation")
    matrix.add_argument("--counts", choices=("whole", "average"), default="whole",
                        help="with --n-eval: 'average' for accuracies averaged over subtasks "
                             "(e.g. MMLU), where score x n-eval is not a whole number")
    matrix.add_argument("--group", default=None,
                        help="column grouping the units (e.g. the model of each checkpoint)")
    _add_sampling_args(matrix)
    matrix.set_defaults(run=_matrix)

    report = sub.add_parser("report", help="write the report of a saved fit or matrix",
                            description="Load a result written by 'bayesslope fit' or "
                                        "'bayesslope matrix' (bs.load) and write its report "
                                        "(tables, figures, report.md, report.html).",
                            epilog=_EXAMPLES["report"])
    report.add_argument("result", help="fit.nc or matrix.nc")
    report.add_argument("--out", required=True, help="folder for the report")
    report.add_argument("--overwrite", action="store_true", help="replace a report in --out")
    report.set_defaults(run=_report)

    datasets = sub.add_parser("datasets", help="list or export the bundled datasets",
                              description="The real datasets shipped with bayesslope.",
                              epilog=_EXAMPLES["datasets"])
    actions = datasets.add_subparsers(dest="action", parser_class=_Parser, metavar="ACTION")
    actions.add_parser("list", help="the table of datasets (the default)")
    export = actions.add_parser("export", help="write one dataset as CSV",
                                epilog=_EXAMPLES["datasets"])
    export.add_argument("name", help="dataset name (see 'bayesslope datasets')")
    export.add_argument("--out", required=True, help="CSV file to write")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    readme = actions.add_parser("readme", help="print a dataset's README")
    readme.add_argument("name", help="dataset name (see 'bayesslope datasets')")
    datasets.set_defaults(run=_datasets, action="list")

    check = sub.add_parser(
        "check-linearity", help="is the straight line adequate, task by task? (PSIS-LOO)",
        description="Fit the straight line and alternative shapes with bs.linearity_check and "
                    "compare them per task by PSIS-LOO; write linearity.csv (the verdict "
                    "table), the figure (linearity.png/.pdf) and report.md.",
        epilog=_EXAMPLES["check-linearity"])
    _add_question_args(check)
    check.add_argument("--shapes", type=_shapes, default=None, metavar="SHAPE,SHAPE",
                       help="shapes to compare, 'linear' among them: linear, sigmoid (needs "
                            "--chance), hockey_stick, quadratic (default linear,hockey_stick, "
                            "plus sigmoid with --chance)")
    check.add_argument("--rope", type=_rope, default=None,
                       help="half-width of the region of practical equivalence of the slope: "
                            "a task whose interval lies inside it is 'flat'")
    _add_sampling_args(check)
    check.set_defaults(run=_check_linearity)

    forecast = sub.add_parser(
        "forecast", help="fit without held-out models, forecast them, score against baselines",
        description="Run bs.backtest: fit without the held-out rows, predict them, and score "
                    "the forecast's intervals and errors beside two least-squares baselines; "
                    "write overall.csv, by_task.csv, rows.csv, the figure "
                    "(forecast.png/.pdf) and report.md.",
        epilog=_EXAMPLES["forecast"])
    _add_question_args(forecast)
    forecast.add_argument("--holdout", required=True, metavar="RULE_OR_COLUMN",
                          help="rows to hold out: a rule best:K, worst:K, lowest_x:K, "
                               "highest_x:K (or K%%) ranking --unit, or a boolean column")
    forecast.add_argument("--unit", default=None,
                          help="column of the unit a rule holds out whole (e.g. model); "
                               "default: each distinct x value")
    forecast.add_argument("--link", choices=("identity", "logit", "probit"), default=None,
                          help="link of the mean score (as for 'fit')")
    forecast.add_argument("--likelihood", default=None,
                          choices=("normal", "student_t", "binomial", "beta_binomial"),
                          help="observation model (as for 'fit')")
    _add_sampling_args(forecast)
    forecast.set_defaults(run=_forecast)

    demo = sub.add_parser("demo", help="fit the bundled Pythia data and write a report",
                          description="Fit the grouped model of the README's quickstart to "
                                      "the bundled Pythia data and write its report.",
                          epilog=_EXAMPLES["demo"])
    _add_sampling_args(demo, out_default="demo-output")
    demo.set_defaults(run=_demo)
    return parser


def _one_line_warnings(prog: str):
    """Show warnings as one line each (``bayesslope fit: warning: ...``) on stderr."""
    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"{prog}: warning: {category.__name__}: {text}", file=sys.stderr)
    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesslope`` command; returns the exit status.

    A user error (a bad argument, an unusable --out, a missing file or column, data or
    options that the library refuses before sampling) prints one line on stderr and
    returns 2.
    """
    from .exceptions import DataValidationError

    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(f"{parser.prog} {args.command}")
            return args.run(args)
    except UsageError as err:
        message = str(err)
    except DataValidationError as err:
        message = str(err)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    if not message.startswith(parser.prog):
        action = getattr(args, "action", None)
        command = f"{args.command} {action}" if action not in (None, "list") else args.command
        message = f"{parser.prog} {command}: error: {message}"
    print(" ".join(message.split()), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
