"""PyMC's NUTS vs nutpie (and nutpie's mass-matrix adaptations) on SBC-simulated data sets.

SBC runs at 2 chains x 500 draws (500 tuning) to keep 200 fits cheap; a user's fit runs at
4 chains x 1,000 draws (1,000 tuning). This fits a few data sets of given SBC variants
(their priors, simulators and fit adapters) with each contender and records divergences,
max R-hat, min bulk / tail ESS and the fit's wall time.

Contenders (``--modes``): ``pymc``, ``nutpie`` (bayesslope's adaptation,
``bayesslope.sampling.NUTPIE_ADAPTATION``, ``"draw_diag"`` since 2026-12-02; nutpie's own
default is ``"diag"``) and ``nutpie:<adaptation>``, e.g. ``nutpie:diag``; the adaptation is
set by swapping that constant for the fit (it is not a user option).
In validation/results/adaptation_compare.json (run before the switch) ``nutpie`` is ``diag``.

    python -m validation.sampler_compare --variants pooled_sigma full_per_task_sigma \\
        hockey_stick --datasets 2 --out validation/results/sampler_compare.json
    python -m validation.sampler_compare --variants beta_binomial_probit full --datasets 4 \\
        --sbc-settings --seed 777 --modes nutpie nutpie:draw_diag pymc \\
        --out validation/results/adaptation_compare.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np

DEFAULTS = {"draws": 1000, "tune": 1000, "chains": 4, "cores": 2}
SBC_SETTINGS = {"draws": 500, "tune": 500, "chains": 2, "cores": 2}


@contextlib.contextmanager
def _nutpie_adaptation(adaptation: str | None):
    """bayesslope's nutpie adaptation set to ``adaptation`` in the block (None: unchanged)."""
    if adaptation is None:
        yield
        return
    from bayesslope import sampling

    original = sampling.NUTPIE_ADAPTATION
    sampling.NUTPIE_ADAPTATION = adaptation
    try:
        yield
    finally:
        sampling.NUTPIE_ADAPTATION = original


def compare(variants, n_datasets: int, seed: int = 20261202, settings=DEFAULTS,
            modes=("pymc", "nutpie")) -> list[dict]:
    """One row per variant x data set x contender."""
    import validation.variants  # noqa: F401 - registers the variants
    from validation.sbc import get_variant

    rows = []
    for name in variants:
        variant = get_variant(name)
        for k in range(n_datasets):
            rng = np.random.default_rng(seed + k)
            df = variant.simulate(variant.sample_prior(rng), rng)
            for mode in modes:
                sampler, _, adaptation = mode.partition(":")
                start = time.perf_counter()
                with _nutpie_adaptation(adaptation or None):
                    res = variant.fit(df, 11 + k, sampler=sampler, **settings)
                d = res.diagnostics
                rows.append({"variant": name, "dataset": k, "sampler": mode,
                             "wall_s": time.perf_counter() - start,
                             "divergences": d["divergences"], "max_rhat": d["r_hat_max"],
                             "min_ess_bulk": d["ess_bulk_min"], "min_ess_tail": d["ess_tail_min"]})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", required=True)
    p.add_argument("--datasets", type=int, default=2)
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--modes", nargs="+", default=["pymc", "nutpie"])
    p.add_argument("--sbc-settings", action="store_true",
                   help="2 chains x 500 draws, 500 tuning (default: 4 x 1,000, 1,000 tuning)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    rows = compare(args.variants, args.datasets, args.seed,
                   SBC_SETTINGS if args.sbc_settings else DEFAULTS, args.modes)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
