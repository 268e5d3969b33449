"""Speed of predict(): 10,000 new rows from a 4,000-draw fit (target: under 2 s).

Usage: ``.venv/bin/python benchmarks/bench_predict.py`` (numbers go to docs/forecasting.md).

A Gaussian fit of 8 simulated tasks (4 chains x 1,000 draws); 10,000 rows over the 8
tasks and 2 new ones, x spread 25% beyond the fitted range. Reports wall and CPU time of
the best of 3 repeats per kind (the process CPU time is the wall time an idle machine
would show; on a shared machine the wall time includes waiting for the CPU).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> int:
    """Fit once, then time predict() per kind."""
    from conftest import simulate

    import bayesslope as bs

    sim = simulate(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit_hierarchical(sim.df, x_better="lower", y_better="higher", chains=4,
                                  draws=1000, random_seed=1)
    rng = np.random.default_rng(0)
    tasks = [*fit.design.tasks, "new_a", "new_b"]
    new = pd.DataFrame({"task": rng.choice(tasks, 10_000), "x": rng.uniform(1.5, 4.5, 10_000)})
    for kind in ("mean", "observation"):
        best = (np.inf, np.inf)
        for rep in range(3):
            w, c = time.perf_counter(), time.process_time()
            fit.predict(new, kind=kind, random_seed=rep)
            best = min(best, (time.perf_counter() - w, time.process_time() - c))
        print(f"predict kind={kind!r}: 10,000 rows x 4,000 draws: wall {best[0]:.2f} s, "
              f"CPU {best[1]:.2f} s (best of 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
