"""Cross-check a failing SBC variant against an exact reference on the same simulations.

SBC rejects uniformity either because the sampler is biased or because the particular
simulated data sets happen to give skewed ranks (at alpha = 0.01 over ~300 tests a few
rejections are expected by chance). Refitting the *same* data sets with a reference that is
known to be calibrated separates the two: if the reference's PIT values of the truth fail
the same test, the data sets are the cause; if they pass and the variant's do not, the
variant's sampler is.

Usage::

    python -m validation.crosscheck full_per_task_sigma --sims 200

The reference is the collapsed formulation (task coefficients integrated out, nutpie,
4 x 1,000 draws) with the variant's priors and per-task sigma setting; it only applies to
Gaussian variants. Prints, for every SBC parameter of the variant, the uniformity tests of the
harness (chi-square on 20 bins, arviz-stats ``pot_c`` and the 99% ECDF band) on the
reference's PIT values of the truth and on the variant's own saved ranks.
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from pathlib import Path

import numpy as np

from .catalog import get_variant
from .common import PRIORS
from .sbc import _seeds, chi_square_uniformity, ecdf_uniformity

CHECKPOINTS = Path(__file__).parent / "results" / "checkpoints"


def reference_pit(name: str, n_sims: int, seed: int, per_task_sigma: bool,
                  correlated: bool = True) -> dict:
    """PIT of the truth under the collapsed reference, for the variant's data sets."""
    import bayesslope as bs

    variant = get_variant(name)
    pit = {p: [] for p in variant.params}
    for i in range(n_sims):
        sim_seq, fit_seq, _ = _seeds(seed, variant.name, i).spawn(3)
        rng = np.random.default_rng(sim_seq)
        truth = variant.sample_prior(rng)
        df = variant.simulate(truth, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.fit_hierarchical(
                df, x_ref=0.0, x_better="higher", y_better="higher", priors=PRIORS,
                per_task_sigma=per_task_sigma, correlated=correlated,
                formulation="collapsed", sampler="nutpie", draws=1000, tune=1000, chains=4,
                random_seed=int(fit_seq.generate_state(1)[0] % (2**31 - 1)))
        post = fit.posterior["posterior"]
        for key in pit:
            var, _, index = key.partition("[")
            da = post[var]
            value = np.asarray(truth[var], dtype=float)
            if index:
                k = int(index.rstrip("]"))
                da = da.isel({da.dims[-1]: k})
                value = np.broadcast_to(value, (k + 1,))[k] if value.ndim == 0 else value[k]
            draws = da.values.ravel()
            # Randomized PIT (ties are impossible for continuous draws; kept exact anyway).
            pit[key].append(((draws < value).sum() + rng.uniform()) / (draws.size + 1))
    return {k: np.asarray(v) for k, v in pit.items()}


def variant_pit(name: str, seed: int, n_sims: int) -> dict:
    """The variant's own randomized PIT values from its SBC checkpoints."""
    folder = CHECKPOINTS / f"{name}-seed{seed}"
    out = {p: [] for p in get_variant(name).params}
    rng = np.random.default_rng(0)
    for i in range(n_sims):
        with open(folder / f"sim_{i:05d}.pkl", "rb") as fh:
            rec = pickle.load(fh)
        for key in out:
            n_draws = len(rec.thinned[key])
            out[key].append((rec.ranks[key] + rng.uniform()) / (n_draws + 1))
    return {k: np.asarray(v) for k, v in out.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant")
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261128)
    args = ap.parse_args(argv)
    per_task = "per_task_sigma" in args.variant
    correlated = "uncorrelated" not in args.variant
    ref = reference_pit(args.variant, args.sims, args.seed, per_task, correlated)
    try:
        own = variant_pit(args.variant, args.seed, args.sims)
    except FileNotFoundError:  # no SBC run of the variant with this seed: reference only
        own = None
    print(f"{args.variant}: {args.sims} simulations, seed {args.seed}")
    print("| parameter | fit | chi2 p (20 bins) | pot_c p | in 99% ECDF band | max ECDF dev |")
    print("|---|---|---|---|---|---|")
    for key in ref:
        rows = [("collapsed reference, same data", ref[key])]
        if own is not None:
            rows.insert(0, ("variant (SBC ranks)", own[key]))
        for label, values in rows:
            u = ecdf_uniformity(values)
            _, chi2_p, _ = chi_square_uniformity(np.floor(values * 100).astype(int), 99)
            print(f"| `{key}` | {label} | {chi2_p:.3f} | {u['pot_c_p']:.3f} | "
                  f"{'yes' if u['in_band'] else '**NO**'} | {u['max_dev']:.3f} |")


if __name__ == "__main__":
    main()
