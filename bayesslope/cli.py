"""Command line: ``bayesslope demo --out demo-output`` and ``bayesslope fit data.csv --out DIR``.

Every argument and the output folder are checked before any fitting; a user error prints
one line on stderr and exits with status 2 (argparse's convention), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]

# The files bayesslope.report.write_report writes into the --out folder.
REPORT_FILES = ("summary.csv", "population.csv", "diagnostics.csv", "fit.nc", "tasks.png",
                "slopes.png", "report.md")


class UsageError(Exception):
    """A user error on the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UsageError` instead of exiting."""

    def error(self, message):  # noqa: D102 (argparse's hook)
        raise UsageError(f"{self.prog}: error: {message}")


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


def _check_out(out: str, overwrite: bool) -> Path:
    """Create the output folder now, or say why it cannot be used (before any fitting)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out!r} is an existing file, not a folder; choose a folder")
    existing = [name for name in REPORT_FILES if (path / name).exists()]
    if existing and not overwrite:
        raise UsageError(
            f"--out {out!r} already holds a report ({', '.join(existing)}); pass --overwrite "
            "to replace it, or choose another folder"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the --out folder {out!r}: {err.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"the --out folder {out!r} is not writable")
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


def _print_fit(fit) -> None:
    import pandas as pd

    ci = [c for c in fit.summary().columns if c.startswith("eti")]
    with pd.option_context("display.width", 160, "display.max_columns", 12,
                           "display.float_format", "{:.4g}".format):
        print(fit.summary()[["mean", "sd", *ci, "p_negative", "r_hat", "ess_bulk", "n"]])
        print(fit.population()[["mean", "sd", *ci]])


def _demo(args) -> int:
    import bayesslope as bs
    from bayesslope.report import write_report

    out = _check_out(args.out, args.overwrite)
    df = bs.load_dataset("pythia")
    print(f"Fitting the Pythia demo: {len(df)} rows, {df['task'].nunique()} tasks "
          "(x = LAMBADA log-perplexity, lower is better; y = accuracy, higher is better)")
    # The 164 rows per task are checkpoints of 12 models: not independent evidence. Each
    # model gets its own offset within each task (the README's quickstart model).
    fit = bs.fit_hierarchical(
        df, x="x", y="y", task="task", x_better="lower", y_better="higher",
        group="model", group_nesting="nested", random_seed=args.seed, progressbar=True,
        draws=args.draws, tune=args.tune, chains=args.chains,
    )
    _print_fit(fit)
    paths = write_report(fit, out)
    print("wrote", ", ".join(str(p) for p in paths.values()))
    return 0


def _fit(args) -> int:
    import bayesslope as bs
    from bayesslope.report import write_report

    df = _read_csv(args.data)
    out = _check_out(args.out, args.overwrite)
    print(f"Fitting {args.data}: {len(df)} rows")
    fit = bs.fit_hierarchical(
        df, x=args.x, y=args.y, task=args.task, x_better=args.x_better,
        y_better=args.y_better, per_task_sigma=args.per_task_sigma, random_seed=args.seed,
        progressbar=True, draws=args.draws, tune=args.tune, chains=args.chains,
    )
    _print_fit(fit)
    paths = write_report(fit, out)
    print("wrote", ", ".join(str(p) for p in paths.values()))
    return 0


def _add_sampling_args(cmd: argparse.ArgumentParser, out_default: str | None) -> None:
    if out_default is None:
        cmd.add_argument("--out", required=True, help="folder for the report")
    else:
        cmd.add_argument("--out", default=out_default,
                         help=f"folder for the report (default {out_default})")
    cmd.add_argument("--overwrite", action="store_true",
                     help="replace a report already in --out")
    cmd.add_argument("--seed", type=_non_negative_int, default=1)
    cmd.add_argument("--draws", type=_positive_int, default=1000)
    cmd.add_argument("--tune", type=_non_negative_int, default=1000)
    cmd.add_argument("--chains", type=_positive_int, default=4)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayesslope`` command (subcommands ``demo``, ``fit``)."""
    parser = _Parser(prog="bayesslope")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="fit the bundled Pythia data and write a report")
    _add_sampling_args(demo, "demo-output")
    demo.set_defaults(run=_demo)
    fit = sub.add_parser("fit", help="fit fit_hierarchical to a tidy CSV and write a report")
    fit.add_argument("data", help="CSV file, one row per (model or checkpoint) x task")
    fit.add_argument("--x", default="x", help="column of the upstream score (default x)")
    fit.add_argument("--y", default="y", help="column of the downstream score (default y)")
    fit.add_argument("--task", default="task", help="column of the task (default task)")
    fit.add_argument("--x-better", choices=("lower", "higher"), default=None)
    fit.add_argument("--y-better", choices=("lower", "higher"), default=None)
    fit.add_argument("--per-task-sigma", action="store_true", help="one noise scale per task")
    _add_sampling_args(fit, None)
    fit.set_defaults(run=_fit)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesslope`` command; returns the exit status.

    A user error (a bad argument, an unusable --out, an unreadable file, data that
    ``fit_hierarchical`` refuses) prints one line on stderr and returns 2.
    """
    from bayesslope.exceptions import DataValidationError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args)
    except UsageError as err:
        message = str(err)
        if not message.startswith(parser.prog):
            message = f"{parser.prog} {args.command}: error: {message}"
    except DataValidationError as err:
        message = f"{parser.prog} {args.command}: error: {err}"
    print(" ".join(message.split("\n")), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
