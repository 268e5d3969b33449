"""Simulation-based calibration (SBC): a harness generic over model variants.

A *variant* is three functions: a prior sampler (numpy, independent of the package), a
simulator of data given the true parameters, and a fit function returning posterior draws.
For each simulation the harness draws the truth from the prior, simulates a data set,
fits it, thins the posterior draws to ``L`` near-independent draws and records the rank
of each true parameter among them (Talts et al. 2018). If the fit is exact, every rank is
uniform on ``{0, ..., L}``. The same simulations give the coverage of the task-slope
intervals and the calibration of ``p_negative``.

References
----------
Talts, Betancourt, Simpson, Vehtari, Gelman (2018). Validating Bayesian inference
algorithms with simulation-based calibration. arXiv:1804.06788.
Modrák, Moon, Kim, Bürkner, Huurre, Faltejsková, Gelman, Vehtari (2023).
Simulation-based calibration checking for Bayesian computation: the choice of test
quantities shapes sensitivity. Bayesian Analysis.
Säilynoja, Bürkner, Vehtari (2022). Graphical test for discrete uniformity and its
applications in goodness-of-fit evaluation and multiple sample comparison.
"""

from __future__ import annotations

import os
import pickle
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

# The plugin interface lives in validation.common (re-exported here): the harness never
# imports a plugin, it is handed Variant objects or looks names up in the registry.
from .common import (
    COVERAGE_PROBS,
    VARIANTS,
    FitDraws,
    Variant,
    get_variant,
    register_variant,
)

__all__ = [
    "COVERAGE_PROBS",
    "Variant",
    "FitDraws",
    "SimRecord",
    "SBCResult",
    "VARIANTS",
    "register_variant",
    "get_variant",
    "thin_draws",
    "rank_of",
    "run_simulation",
    "run_sbc",
    "pit_from_ranks",
    "chi_square_uniformity",
    "ecdf_uniformity",
    "rank_table",
    "slope_coverage",
    "p_negative_calibration",
    "calibration_table",
    "pooled_rank_test",
    "pit_rng",
    "task_outcomes",
]

N_RANK_DRAWS = 99  # L: thinned draws per fit; ranks take L + 1 = 100 values


@dataclass
class SimRecord:
    """One simulation: ranks, thinned draws, truth, interval hits and diagnostics."""

    index: int
    ranks: dict[str, int]
    truth: dict[str, float]
    thinned: dict[str, np.ndarray]
    pooled_ranks: dict[str, np.ndarray]
    true_slope: np.ndarray
    covered: dict[float, np.ndarray]
    p_negative: np.ndarray
    diagnostics: dict
    wall_s: float


@dataclass
class SBCResult:
    """All simulations of one variant, with the settings that produced them."""

    variant: str
    records: list[SimRecord]
    n_rank_draws: int
    seed: int
    wall_s: float
    workers: int

    @property
    def params(self) -> list[str]:
        """Ranked quantities, in registry order."""
        return list(self.records[0].ranks) if self.records else []

    def ranks(self, param: str) -> np.ndarray:
        """Ranks of ``param`` over the simulations."""
        return np.array([r.ranks[param] for r in self.records])

    def pooled(self, var: str) -> np.ndarray:
        """Ranks of every element of ``var`` pooled over the simulations."""
        return np.concatenate([r.pooled_ranks[var] for r in self.records])


# -- ranks ---------------------------------------------------------------------------


def _element(values, key: str):
    """``values[name]`` for key ``name`` or ``values[name][..., k]`` for key ``name[k]``."""
    if key.endswith("]"):
        name, idx = key[:-1].split("[")
        return np.asarray(values[name])[..., int(idx)]
    return np.asarray(values[key])


def thin_draws(draws: np.ndarray, n_keep: int = N_RANK_DRAWS) -> np.ndarray:
    """Keep ``n_keep`` evenly spaced draws of ``(chain, draw, ...)`` (chains concatenated).

    Parameters
    ----------
    draws : ndarray, shape (chain, draw, ...)
    n_keep : int
        Number of draws kept (``L`` of Talts et al.).

    Returns
    -------
    ndarray, shape (n_keep, ...)
    """
    flat = draws.reshape(-1, *draws.shape[2:])
    if flat.shape[0] < n_keep:
        raise ValueError(f"need at least {n_keep} draws to thin, got {flat.shape[0]}")
    idx = np.round(np.linspace(0, flat.shape[0] - 1, n_keep)).astype(int)
    return flat[idx]


def rank_of(truth, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of ``truth`` among ``draws`` (axis 0), ties broken uniformly at random.

    Returns an integer in ``{0, ..., len(draws)}`` (per element of ``truth``).
    """
    truth = np.asarray(truth)
    below = (draws < truth).sum(axis=0)
    ties = (draws == truth).sum(axis=0)
    return below + rng.integers(0, ties + 1)


# -- running -------------------------------------------------------------------------


def _seeds(seed: int, variant: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, zlib.crc32(variant.encode()), index])


def run_simulation(
    variant: Variant, index: int, seed: int, n_rank_draws: int = N_RANK_DRAWS
) -> SimRecord:
    """Draw a truth, simulate, fit and rank: one SBC replicate.

    Parameters
    ----------
    variant : Variant
    index : int
        Replicate number (with ``seed`` and the variant name, fixes every random number).
    seed : int
        Base seed of the whole run.
    n_rank_draws : int
        Thinned posterior draws per fit (``L``).

    Returns
    -------
    SimRecord
    """
    seq = _seeds(seed, variant.name, index)
    sim_seq, fit_seq, rank_seq = seq.spawn(3)
    rng = np.random.default_rng(sim_seq)
    truth = variant.sample_prior(rng)
    df = variant.simulate(truth, rng)
    start = time.perf_counter()
    out = variant.fit(df, int(fit_seq.generate_state(1)[0] % (2**31 - 1)))
    wall = time.perf_counter() - start
    rank_rng = np.random.default_rng(rank_seq)
    ranks, thinned, truth_used = {}, {}, {}
    for key in variant.params:
        kept = thin_draws(_element(out.draws, key), n_rank_draws)
        value = float(_element(truth, key))
        ranks[key] = int(rank_of(value, kept, rank_rng))
        thinned[key] = kept.astype("float32")
        truth_used[key] = value
    pooled = {
        var: rank_of(np.asarray(truth[var]), thin_draws(out.draws[var], n_rank_draws), rank_rng)
        for var in variant.pooled
    }
    true_slope = np.asarray(truth["slope"], dtype=float)
    covered = {
        prob: (lo <= true_slope) & (true_slope <= hi)
        for prob, (lo, hi) in out.slope_intervals.items()
    }
    return SimRecord(
        index=index, ranks=ranks, truth=truth_used, thinned=thinned, pooled_ranks=pooled,
        true_slope=true_slope, covered=covered, p_negative=np.asarray(out.p_negative),
        diagnostics=dict(out.diagnostics), wall_s=wall,
    )


def _worker_init() -> None:
    """Quiet, single-threaded worker (the pool supplies the parallelism)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    warnings.simplefilter("ignore")
    import logging

    for name in ("pymc", "pymc.sampling", "pymc.stats", "pytensor"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _worker(variant: Variant, index: int, seed: int, n_rank_draws: int) -> SimRecord:
    # ``variant`` arrives pickled: unpickling its functions imports the plugin defining them.
    return run_simulation(variant, index, seed, n_rank_draws)


def _load_checkpoint(folder: Path | None, n_sims: int) -> dict[int, SimRecord]:
    if folder is None or not folder.exists():
        return {}
    done = {}
    for f in folder.glob("sim_*.pkl"):
        index = int(f.stem.split("_")[1])
        if index < n_sims:
            done[index] = pickle.loads(f.read_bytes())
    return done


def _save_checkpoint(folder: Path | None, record: SimRecord) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"sim_{record.index:05d}.tmp"
        tmp.write_bytes(pickle.dumps(record))
        tmp.replace(folder / f"sim_{record.index:05d}.pkl")


def run_sbc(
    variant: Variant | str,
    n_sims: int,
    *,
    seed: int = 0,
    workers: int = 1,
    n_rank_draws: int = N_RANK_DRAWS,
    progress: Callable[[int, int, SimRecord], None] | None = None,
    checkpoint: Path | str | None = None,
) -> SBCResult:
    """Run ``n_sims`` SBC replicates of a variant.

    Parameters
    ----------
    variant : Variant or str
        The variant, or the name of a registered one (:func:`get_variant`). With
        ``workers > 1`` it is pickled to the worker processes: its functions must be
        importable (module-level functions or partials of them).
    n_sims : int
        Number of replicates.
    seed : int, default 0
        Base seed; replicate ``i`` depends only on (seed, variant name, i).
    workers : int, default 1
        Worker processes (spawned); 1 runs in this process.
    n_rank_draws : int
        Thinned draws per fit (``L``).
    progress : callable, optional
        Called as ``progress(done, n_sims, record)`` after each replicate.
    checkpoint : path, optional
        Folder where each finished replicate is saved (``sim_<index>.pkl``); replicates
        already there are loaded instead of refitted, so an interrupted run resumes. The
        caller must use one folder per (variant, seed, L).

    Returns
    -------
    SBCResult
        Records sorted by replicate index. ``wall_s`` counts only this call's work.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    folder = Path(checkpoint) if checkpoint is not None else None
    start = time.perf_counter()
    done = _load_checkpoint(folder, n_sims)
    todo = [i for i in range(n_sims) if i not in done]
    records: list[SimRecord] = list(done.values())

    def finish(record: SimRecord) -> None:
        _save_checkpoint(folder, record)
        records.append(record)
        if progress:
            progress(len(records), n_sims, record)

    if workers <= 1 or not todo:
        for i in todo:
            finish(run_simulation(variant, i, seed, n_rank_draws))
    else:
        import multiprocessing as mp
        from concurrent.futures import as_completed

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(_worker, variant, i, seed, n_rank_draws) for i in todo]
            for fut in as_completed(futures):
                finish(fut.result())
    records.sort(key=lambda r: r.index)
    return SBCResult(
        variant=variant.name, records=records, n_rank_draws=n_rank_draws, seed=seed,
        wall_s=time.perf_counter() - start, workers=max(1, workers),
    )


# -- uniformity ----------------------------------------------------------------------


def pit_from_ranks(ranks: np.ndarray, n_rank_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Randomized PIT ``(rank + U) / (L + 1)``: exactly Uniform(0, 1) when ranks are uniform.

    Jittering inside each rank's cell turns the discrete ranks into continuous values, so
    the continuous uniformity tests of arviz-stats apply without tie corrections.
    """
    ranks = np.asarray(ranks, dtype=float)
    return (ranks + rng.uniform(size=ranks.shape)) / (n_rank_draws + 1)


def _n_bins(n_values: int, n_sims: int) -> int:
    """Largest divisor of ``n_values`` giving >= 5 expected counts per bin (at most 20)."""
    best = 1
    for b in range(2, 21):
        if n_values % b == 0 and n_sims / b >= 5:
            best = b
    return max(best, 2)


def chi_square_uniformity(
    ranks: np.ndarray, n_rank_draws: int, n_bins: int | None = None
) -> tuple[float, float, int]:
    """Pearson chi-square test of uniform ranks on ``{0, ..., L}`` in equal-width bins.

    Returns
    -------
    statistic, p_value, n_bins
    """
    ranks = np.asarray(ranks)
    n_values = n_rank_draws + 1
    n_bins = n_bins or _n_bins(n_values, len(ranks))
    if n_values % n_bins:
        raise ValueError(f"n_bins should divide L + 1 = {n_values} but got {n_bins}")
    counts = np.bincount(ranks * n_bins // n_values, minlength=n_bins)
    stat, p = stats.chisquare(counts)
    return float(stat), float(p), n_bins


def ecdf_uniformity(pit: np.ndarray, prob: float = 0.99, seed: int = 214) -> dict:
    """ECDF tests of uniform PIT values, both from arviz-stats.

    Parameters
    ----------
    pit : ndarray
        PIT values in (0, 1), one per simulation.
    prob : float, default 0.99
        Simultaneous probability of the ECDF band (Säilynoja et al. 2022).
    seed : int
        Seeds the band's simulation.

    Returns
    -------
    dict
        ``pot_c_p``: p-value of the pointwise order test with Cauchy combination
        (``uniformity_test(method="pot_c")``, the recommended ECDF-based test);
        ``in_band``: whether the ECDF stays inside the simultaneous ``prob`` band
        (``ecdf_pit``; outside means rejected at ``1 - prob``); ``max_dev``: the largest
        absolute ECDF difference.
    """
    import xarray as xr
    from arviz_stats.ecdf_utils import compute_ecdf, ecdf_pit

    pit = np.asarray(pit, dtype=float)
    da = xr.DataArray(pit, dims="sim")
    p_value, _, _ = da.azstats.uniformity_test(dim="sim", method="pot_c")
    n = len(pit)
    grid, _, lower, upper = ecdf_pit(
        np.linspace(0, 1, n), prob, n_simulations=1000, rng=np.random.default_rng(seed)
    )
    ecdf = np.concatenate(([0.0], compute_ecdf(pit, grid[1:-1]), [1.0]))
    return {
        "pot_c_p": float(np.asarray(p_value)),
        "in_band": bool(np.all((ecdf >= lower - 1e-12) & (ecdf <= upper + 1e-12))),
        "max_dev": float(np.max(np.abs(ecdf - grid))),
        "band": (grid, lower, upper),
        "ecdf": ecdf,
    }


def pit_rng(seed: int, param: str) -> np.random.Generator:
    """The jitter generator of one parameter's PIT (same values in tables and figures)."""
    return np.random.default_rng([seed, zlib.crc32(param.encode())])


def pooled_rank_test(result: SBCResult, var: str, n_bins: int = 10) -> tuple[float, float]:
    """Uniformity of ranks pooled over every task, with simulations as clusters.

    Tasks of one simulation share the population draw, so their ranks are dependent and
    a plain chi-square over all tasks is anti-conservative. Each simulation contributes
    one vector of bin-count deviations from uniform (its first ``n_bins - 1`` bins: the
    counts sum to the number of tasks); under uniformity these vectors have mean zero,
    which Hotelling's T-squared tests with simulations as independent units
    (F distribution with ``n_bins - 1`` and ``n_sims - n_bins + 1`` df).

    Returns
    -------
    statistic, p_value
        T-squared and its p-value.
    """
    n_values = result.n_rank_draws + 1
    per_sim = []
    for r in result.records:
        ranks = np.asarray(r.pooled_ranks[var])
        counts = np.bincount(ranks * n_bins // n_values, minlength=n_bins)
        per_sim.append(counts[:-1] - ranks.size / n_bins)
    dev = np.array(per_sim, dtype=float)
    n, k = dev.shape
    mean = dev.mean(axis=0)
    cov = np.cov(dev, rowvar=False)
    t2 = float(n * mean @ np.linalg.pinv(cov) @ mean)
    f = (n - k) / (k * (n - 1)) * t2
    return t2, float(stats.f.sf(f, k, n - k))


def rank_table(result: SBCResult, *, prob: float = 0.99, seed: int = 0) -> pd.DataFrame:
    """Uniformity tests per ranked parameter.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter: ``n_sims``, ``chi2``, ``chi2_df``, ``chi2_p``, ``pot_c_p``,
        ``ecdf_in_band`` (simultaneous ``prob`` band), ``max_ecdf_dev``.
    """
    rows = {}
    for param in result.params:
        ranks = result.ranks(param)
        stat, p, n_bins = chi_square_uniformity(ranks, result.n_rank_draws)
        pit = pit_from_ranks(ranks, result.n_rank_draws, pit_rng(seed, param))
        ecdf = ecdf_uniformity(pit, prob)
        rows[param] = {
            "n_sims": len(ranks), "chi2": stat, "chi2_df": n_bins - 1, "chi2_p": p,
            "pot_c_p": ecdf["pot_c_p"], "ecdf_in_band": ecdf["in_band"],
            "max_ecdf_dev": ecdf["max_dev"],
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "parameter"
    return table


# -- coverage and decisions ------------------------------------------------------------


def slope_coverage(result: SBCResult) -> pd.DataFrame:
    """Fraction of true task slopes inside their central intervals, over all simulations.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``ci_prob``: ``n_tasks``, ``coverage``, ``mc_se`` (binomial, ignoring
        the dependence of tasks within a simulation).
    """
    rows = {}
    for prob in sorted(result.records[0].covered):
        hits = np.concatenate([r.covered[prob] for r in result.records])
        cov = float(hits.mean())
        rows[prob] = {"n_tasks": hits.size, "coverage": cov,
                      "mc_se": float(np.sqrt(prob * (1 - prob) / hits.size))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "ci_prob"
    return table


def calibration_table(p: np.ndarray, negative: np.ndarray, cluster: np.ndarray,
                      n_bins: int = 10) -> pd.DataFrame:
    """Reported probability vs observed frequency in equal-width bins of ``p``.

    Parameters
    ----------
    p : ndarray
        Reported P(slope < 0) per task.
    negative : ndarray of bool
        Whether the true slope is negative.
    cluster : ndarray
        Simulation of each task: tasks of one simulation share the population draw, so
        their outcomes are dependent (when ``slope_sigma`` is small they all flip sign
        together). ``cluster_se`` is the cluster-robust standard error of ``diff``.
    n_bins : int, default 10

    Returns
    -------
    pandas.DataFrame
        One row per bin ``[lo, hi)`` (the last closed): ``n_tasks``, ``n_sims`` (clusters),
        ``mean_p``, ``frac_negative``, ``diff`` (observed - reported), ``mc_se``
        (binomial, independent tasks) and ``cluster_se``.
    """
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = which == b
        n = int(sel.sum())
        label = f"[{edges[b]:.1f}, {edges[b + 1]:.1f}{']' if b == n_bins - 1 else ')'}"
        if not n:
            rows.append({"bin": label, "n_tasks": 0, "n_sims": 0, "mean_p": np.nan,
                         "frac_negative": np.nan, "diff": np.nan, "mc_se": np.nan,
                         "cluster_se": np.nan})
            continue
        resid = negative[sel].astype(float) - p[sel]
        _, inverse = np.unique(cluster[sel], return_inverse=True)
        per_cluster = np.bincount(inverse, resid)
        mean_p = float(p[sel].mean())
        rows.append({
            "bin": label, "n_tasks": n, "n_sims": int(per_cluster.size), "mean_p": mean_p,
            "frac_negative": float(negative[sel].mean()), "diff": float(resid.mean()),
            "mc_se": float(np.sqrt(mean_p * (1 - mean_p) / n)),
            "cluster_se": float(np.sqrt(np.sum(per_cluster**2)) / n),
        })
    return pd.DataFrame(rows).set_index("bin")


def task_outcomes(result: SBCResult) -> dict[str, np.ndarray]:
    """Per task over all simulations: ``p_negative``, ``negative`` (truth) and ``sim``."""
    return {
        "p_negative": np.concatenate([r.p_negative for r in result.records]),
        "negative": np.concatenate([r.true_slope < 0 for r in result.records]),
        "sim": np.concatenate([np.full(r.true_slope.size, r.index) for r in result.records]),
    }


def p_negative_calibration(result: SBCResult, n_bins: int = 10) -> pd.DataFrame:
    """Calibration of ``p_negative``: in each decile bin, how often the true slope is < 0.

    See :func:`calibration_table` for the columns.
    """
    out = task_outcomes(result)
    return calibration_table(out["p_negative"], out["negative"], out["sim"], n_bins)


def diagnostics_table(result: SBCResult) -> dict:
    """Sampler health over the simulations: divergences, R-hat, ESS, per-fit wall time."""
    diag = [r.diagnostics for r in result.records]
    wall = np.array([r.wall_s for r in result.records])

    def col(key, default=np.nan):
        return np.array([d.get(key, default) for d in diag], dtype=float)

    def nanext(fn, values):
        return float(fn(values)) if np.isfinite(values).any() else float("nan")

    div = col("divergences", 0)
    return {
        "fits_with_divergences": int((div > 0).sum()),
        "divergences_total": int(div.sum()),
        "r_hat_max": nanext(np.nanmax, col("r_hat_max")),
        "fits_r_hat_gt_1.01": int((col("r_hat_max") > 1.01).sum()),
        "ess_bulk_min": nanext(np.nanmin, col("ess_bulk_min")),
        "fits_ess_lt_100": int((np.fmin(col("ess_bulk_min"), col("ess_tail_min")) < 100).sum()),
        "fit_wall_median_s": float(np.median(wall)),
        "fit_wall_mean_s": float(np.mean(wall)),
    }


def summarize(result: SBCResult, bounds: Mapping[str, float] | None = None) -> dict:
    """All tables of one variant and whether each part of the bar is met.

    Parameters
    ----------
    result : SBCResult
    bounds : mapping, optional
        ``alpha`` (uniformity, default 0.01), ``cov90`` (default (0.87, 0.93)),
        ``pneg_tol`` (default 0.05) and ``pneg_min`` (default 100 tasks per bin).

    Returns
    -------
    dict
        ``ranks``, ``pooled`` (var -> cluster-robust (statistic, p) of
        :func:`pooled_rank_test`), ``coverage``, ``p_negative``, ``diagnostics`` and
        ``passes`` (a dict of booleans: ``uniformity``, ``coverage90``, ``p_negative``).
    """
    b = {"alpha": 0.01, "cov90": (0.87, 0.93), "pneg_tol": 0.05, "pneg_min": 100}
    b.update(bounds or {})
    ranks = rank_table(result)
    cov = slope_coverage(result)
    cal = p_negative_calibration(result)
    big = cal[cal["n_tasks"] >= b["pneg_min"]]
    lo90, hi90 = b["cov90"]
    uniform = (ranks["chi2_p"] > b["alpha"]) & (ranks["pot_c_p"] > b["alpha"])
    pooled = {var: pooled_rank_test(result, var) for var in result.records[0].pooled_ranks}
    passes = {
        "uniformity": bool(uniform.all()) and all(p > b["alpha"] for _, p in pooled.values()),
        "coverage90": bool(lo90 <= cov.loc[0.9, "coverage"] <= hi90) if 0.9 in cov.index else None,
        "p_negative": bool((big["diff"].abs() <= b["pneg_tol"]).all()),
    }
    return {"ranks": ranks, "pooled": pooled, "coverage": cov, "p_negative": cal,
            "diagnostics": diagnostics_table(result), "passes": passes, "bounds": b}


def shifted_ranks(result: SBCResult, param: str, shift_sd: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Ranks of ``param`` against its thinned draws shifted by ``shift_sd`` posterior sds.

    A deliberately wrong posterior: used to check that the tests can reject.
    """
    out = []
    for r in result.records:
        d = r.thinned[param].astype(float)
        out.append(int(rank_of(r.truth[param], d + shift_sd * d.std(), rng)))
    return np.array(out)


def param_groups(params: Sequence[str]) -> list[str]:
    """Stable display order: population first, then task elements."""
    return sorted(params, key=lambda p: ("[" in p, p))
