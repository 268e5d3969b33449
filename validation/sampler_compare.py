"""PyMC's NUTS vs nutpie at the default sampling settings, on SBC-simulated data sets.

SBC runs at 2 chains x 500 draws (500 tuning) to keep 200 fits cheap; a user's fit runs at
4 chains x 1,000 draws (1,000 tuning). This fits a few data sets of given SBC variants
(their priors, simulators and fit adapters) at the defaults with both samplers and records
divergences, max R-hat, min bulk / tail ESS and the fit's wall time.

    python -m validation.sampler_compare --variants pooled_sigma full_per_task_sigma \
        hockey_stick --datasets 2 --out validation/results/sampler_compare.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DEFAULTS = {"draws": 1000, "tune": 1000, "chains": 4, "cores": 2}


def compare(variants, n_datasets: int, seed: int = 20261202) -> list[dict]:
    """One row per variant x data set x sampler."""
    import validation.variants  # noqa: F401 - registers the variants
    from validation.sbc import get_variant

    rows = []
    for name in variants:
        variant = get_variant(name)
        for k in range(n_datasets):
            rng = np.random.default_rng(seed + k)
            df = variant.simulate(variant.sample_prior(rng), rng)
            for sampler in ("pymc", "nutpie"):
                start = time.perf_counter()
                res = variant.fit(df, 11 + k, sampler=sampler, **DEFAULTS)
                d = res.diagnostics
                rows.append({"variant": name, "dataset": k, "sampler": sampler,
                             "wall_s": time.perf_counter() - start,
                             "divergences": d["divergences"], "max_rhat": d["r_hat_max"],
                             "min_ess_bulk": d["ess_bulk_min"], "min_ess_tail": d["ess_tail_min"]})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", required=True)
    p.add_argument("--datasets", type=int, default=2)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    rows = compare(args.variants, args.datasets)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
