"""Command line: ``python -m bayesslope.cli demo --out demo-output``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args) -> int:
    import pandas as pd

    import bayesslope as bs
    from bayesslope.report import write_report

    df = bs.load_dataset("pythia")
    print(f"Fitting the Pythia demo: {len(df)} rows, {df['task'].nunique()} tasks "
          "(x = LAMBADA log-perplexity, lower is better; y = accuracy, higher is better)")
    fit = bs.fit_hierarchical(
        df, x="x", y="y", task="task", x_better="lower", y_better="higher",
        per_task_sigma=True, random_seed=args.seed, progressbar=True,
        draws=args.draws, tune=args.tune, chains=args.chains,
    )
    with pd.option_context("display.width", 160, "display.max_columns", 12,
                           "display.float_format", "{:.4g}".format):
        print(fit.summary()[["mean", "sd", "eti90_lb", "eti90_ub", "p_negative", "r_hat",
                             "ess_bulk", "n"]])
        print(fit.population()[["mean", "sd", "eti90_lb", "eti90_ub"]])
    paths = write_report(fit, args.out)
    print("wrote", ", ".join(str(p) for p in paths.values()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesslope`` command."""
    parser = argparse.ArgumentParser(prog="bayesslope")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit the bundled Pythia data and write a report")
    demo.add_argument("--out", default="demo-output")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--draws", type=int, default=1000)
    demo.add_argument("--tune", type=int, default=1000)
    demo.add_argument("--chains", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
