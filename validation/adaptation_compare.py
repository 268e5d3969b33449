"""nutpie's mass-matrix adaptations vs PyMC's NUTS on SBC-simulated data sets.

nutpie's default adaptation (``"diag"``) left 27-51 of 200 SBC fits with ESS < 100 where PyMC's
NUTS left 2-7, and mixed the population parameters of the Pythia beta-binomial fit poorly
(min ESS 67 vs 842). This fits a few data sets of given SBC variants at the SBC's settings
(2 chains x 500 draws, 500 tuning) with nutpie ``"diag"``, nutpie ``"draw_diag"`` (mass matrix
from draw variances, as PyMC and Stan estimate it) and PyMC's NUTS, and records divergences,
max R-hat, min bulk ESS and the fit's wall time. The adaptation is set by wrapping
``nutpie.sample`` (bayesslope has no option for it yet).

    python -m validation.adaptation_compare --variants beta_binomial_probit full --datasets 4 \\
        --out validation/results/adaptation_compare.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SETTINGS = {"draws": 500, "tune": 500, "chains": 2, "cores": 2}
MODES = ("diag", "draw_diag", "pymc")


def compare(variants, n_datasets: int, seed: int = 777) -> list[dict]:
    """One row per variant x data set x mode."""
    import nutpie

    import validation.variants  # noqa: F401 - registers the variants
    from validation.sbc import get_variant

    original = nutpie.sample
    mode = {"adaptation": "diag"}

    def sample(*args, **kwargs):
        return original(*args, **{**kwargs, "adaptation": mode["adaptation"]})

    nutpie.sample = sample
    rows = []
    try:
        for name in variants:
            variant = get_variant(name)
            for k in range(n_datasets):
                rng = np.random.default_rng(seed + k)
                df = variant.simulate(variant.sample_prior(rng), rng)
                for m in MODES:
                    mode["adaptation"] = m
                    start = time.perf_counter()
                    res = variant.fit(df, 11 + k, sampler="pymc" if m == "pymc" else "nutpie",
                                      **SETTINGS)
                    d = res.diagnostics
                    rows.append({"variant": name, "dataset": k, "mode": m,
                                 "wall_s": round(time.perf_counter() - start, 2),
                                 "divergences": d["divergences"],
                                 "max_rhat": round(d["r_hat_max"], 4),
                                 "min_ess_bulk": round(d["ess_bulk_min"])})
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        nutpie.sample = original
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", required=True)
    p.add_argument("--datasets", type=int, default=4)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    rows = compare(args.variants, args.datasets)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
