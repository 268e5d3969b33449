"""Run bayesslope's benchmarks (the entry point of ``make bench``).

Usage::

    python benchmarks/run.py                      # everything available
    python benchmarks/run.py --only pythia        # one benchmark (repeat --only for more)
    python benchmarks/run.py --only import,refit --repeats 3
    python benchmarks/run.py --only pythia --results benchmarks/RESULTS.md

Benchmarks (see ``benchmarks/bench_single.py``): ``import``, ``pythia`` (vs Bambi),
``formulation`` (collapsed vs full), ``refit`` (second fit in one process), ``scale``
(500 tasks x 20 points, collapsed vs nutpie), and ``pairs`` (``benchmarks/bench_pairs.py``,
the transfer-matrix benchmarks, when that script exists). A benchmark whose feature is
not there yet (e.g. ``formulation="collapsed"``) is skipped, and the skip is printed.

Each measurement runs in a fresh Python process; contenders are interleaved repeat by
repeat. Markdown goes to stdout (and, with ``--results``, replaces that benchmark's
section of the given file); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_single  # noqa: E402
from bench_single import BENCHMARKS, BenchResult, ChildFailed, skipped  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAIRS_SCRIPT = HERE / "bench_pairs.py"
ALL = [*BENCHMARKS, "pairs"]
PACKAGES = ("bayesslope", "pymc", "pytensor", "arviz", "numpy", "pandas", "scipy", "numba",
            "nutpie", "bambi", "formulae", "jax")


# ---------------------------------------------------------------------------------------
# Machine and environment
# ---------------------------------------------------------------------------------------


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions(python: str) -> dict[str, str | None]:
    """Versions of the benchmarked libraries in the interpreter the children use."""
    if Path(python).resolve() == Path(sys.executable).resolve():
        return {p: _version(p) for p in PACKAGES}
    code = ("import json; from importlib.metadata import version as v\n"
            f"out = {{}}\nfor p in {PACKAGES!r}:\n"
            "    try: out[p] = v(p)\n    except Exception: out[p] = None\n"
            "print(json.dumps(out))")
    return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True,
                                     check=True).stdout)


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def git_state() -> str:
    """``<short commit>`` plus ``+ uncommitted changes in bayesslope/`` when dirty."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "bayesslope"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted changes in bayesslope/" if dirty else "")


def machine_info(python: str, src: Path | None = None) -> dict:
    """Date, CPUs, Python, library versions, commit, load: the context of a measurement."""
    versions = package_versions(python)
    commit = git_state() if src is None else f"snapshot in {src} (imported via PYTHONPATH)"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "commit": commit,
        "loadavg": os.getloadavg(),
    }


def machine_lines(info: dict) -> list[str]:
    """Markdown bullet lines describing the machine and environment."""
    vers = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    load = " / ".join(f"{x:.2f}" for x in info["loadavg"])
    return [
        f"- Date: {info['date']}; bayesslope commit {info['commit']}",
        f"- Machine: {info['nproc']} CPUs ({info['cpu']}), {info['platform']}; "
        f"load average at start (1/5/15 min) {load}",
        f"- Python {info['python']}; {vers}",
    ]


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def markdown_table(columns: list[str], rows: list[list]) -> list[str]:
    """A GitHub markdown table (``|`` inside cells escaped, e.g. Bambi's ``1|task``)."""
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
            for row in rows]
    return out


def render(result: BenchResult, info: dict, command: str, elapsed_s: float) -> str:
    """One benchmark's markdown section, between BEGIN/END markers."""
    lines = [f"<!-- BEGIN bench:{result.name} -->", f"## {result.title}", ""]
    if result.skipped:
        lines += [f"SKIPPED: {result.skipped}", "", f"<!-- END bench:{result.name} -->"]
        return "\n".join(lines)
    lines += markdown_table(result.columns, result.rows) + [""]
    lines += [f"- {n}" for n in result.notes]
    lines += machine_lines(info)
    lines += [f"- Benchmark took {elapsed_s / 60:.1f} min. Reproduce: `{command}`", "",
              f"<!-- END bench:{result.name} -->"]
    return "\n".join(lines)


def update_results_file(path: Path, name: str, section: str) -> None:
    """Replace (or append) the ``bench:name`` section of a markdown file."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- BEGIN bench:{re.escape(name)} -->.*?<!-- END bench:"
                         rf"{re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------


def run_pairs(python: str, extra_args: str = "") -> BenchResult | None:
    """Run ``bench_pairs.py`` (owned by the transfer-matrix benchmarks) if it exists.

    Its output goes straight to the terminal; it writes RESULTS_pairs.md only when given
    ``--out`` (pass it through ``--pairs-args``).
    """
    title = "Transfer matrix (benchmarks/bench_pairs.py)"
    if not PAIRS_SCRIPT.exists():
        return skipped("pairs", title, f"{PAIRS_SCRIPT.relative_to(ROOT)} does not exist yet")
    print(f"[bench] running {PAIRS_SCRIPT.relative_to(ROOT)}", file=sys.stderr, flush=True)
    cmd = [python, str(PAIRS_SCRIPT), *shlex.split(extra_args)]
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    if rc != 0:
        return skipped("pairs", title, f"{PAIRS_SCRIPT.name} exited with status {rc}")
    return None  # ran; its results are in its own file


def selected(only: list[str] | None) -> list[str]:
    """Benchmark names from repeated/comma-separated ``--only`` values (default: all)."""
    if not only:
        return list(ALL)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {ALL}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", metavar="NAME",
                   help=f"run only these benchmarks (repeatable or comma-separated): {ALL}")
    p.add_argument("--repeats", type=int, default=1,
                   help="fresh-process measurements per contender (default 1; import "
                        "always does at least 5)")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter for the measured processes (default: this one)")
    p.add_argument("--results", type=Path, metavar="MD",
                   help="also replace each benchmark's section in this markdown file")
    p.add_argument("--src", type=Path, metavar="DIR",
                   help="import bayesslope from DIR (put first on PYTHONPATH of the measured "
                        "processes), e.g. a `git archive` snapshot of a commit")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 100 draws and 100 tuning steps (numbers not meaningful)")
    p.add_argument("--pairs-args", default="", metavar="ARGS",
                   help="arguments for benchmarks/bench_pairs.py, e.g. "
                        "'--tasks 101 --real --out benchmarks/RESULTS_pairs.md'")
    p.add_argument("--json", type=Path, metavar="PATH", help="dump the raw measurements")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    return args


def command_line(args: argparse.Namespace, name: str) -> str:
    """The command that reproduces benchmark ``name`` alone."""
    parts = ["python", "benchmarks/run.py", "--only", name, "--repeats", str(args.repeats)]
    if args.src:
        parts += ["--src", str(args.src)]
    if args.quick:
        parts.append("--quick")
    return " ".join(shlex.quote(p) for p in parts)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; print markdown; report skips. Exit 1 if any failed."""
    args = parse_args(argv)
    if args.list:
        print("\n".join(ALL))
        return 0
    if args.quick:
        bench_single.SAMPLING.update(draws=100, tune=100)
    if args.src:
        bench_single.CHILD_ENV["PYTHONPATH"] = str(args.src.resolve())
    info = machine_info(args.python, args.src)
    print("\n".join(["# bayesslope benchmarks", ""] + machine_lines(info)) + "\n", flush=True)
    skips, failures, raw = [], [], {}
    for name in selected(args.only):
        t0, bench_info = time.time(), machine_info(args.python, args.src)
        try:
            if name == "pairs":
                result = run_pairs(args.python, args.pairs_args)
                if result is None:
                    continue
            else:
                result = BENCHMARKS[name](args.repeats, python=args.python)
        except ChildFailed as exc:
            failures.append(name)
            print(f"\nFAILED {name}: {exc}\n", flush=True)
            continue
        raw[name] = result.raw
        section = render(result, bench_info, command_line(args, name), time.time() - t0)
        print(section + "\n", flush=True)
        if result.skipped:
            skips.append(f"{name}: {result.skipped}")
        elif args.results:
            update_results_file(args.results, name, section)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    print("Skipped:\n" + "\n".join(f"  - {s}" for s in skips) if skips else "Skipped: none")
    if failures:
        print(f"Failed: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
