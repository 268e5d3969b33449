"""Reduced simulation-based calibration (the full run is `make validate`).

1. The harness itself, on a conjugate model with an exact posterior (numpy only): exact
   draws pass, an overconfident posterior is rejected, coverage and p_negative
   calibration come out right.
2. A few dozen SBC replicates of the Gaussian transfer model through the fastest path
   the package offers (the collapsed formulation, compiled once; the full model if that
   does not exist), with a loose uniformity check, and proof that the same tests reject
   a deliberately shifted posterior.
"""

from __future__ import annotations

import ast
import json
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import seed
from scipy import stats

from validation import catalog, sbc

# -- a conjugate toy variant: slope_t ~ N(0, 1), y_tj ~ N(slope_t, 1) ----------------------

N_TASKS, N_POINTS = 6, 5


def _toy_prior(rng):
    return {"slope": rng.normal(size=N_TASKS)}


def _toy_simulate(truth, rng):
    task = np.repeat(np.arange(N_TASKS), N_POINTS)
    y = truth["slope"][task] + rng.normal(size=task.size)
    return pd.DataFrame({"task": task, "x": 0.0, "y": y})


def _toy_fit(df, seed, *, sd_factor=1.0):
    """Exact posterior N(sum y / (n + 1), 1 / (n + 1)) per task; sd scaled by sd_factor."""
    g = df.groupby("task")["y"]
    n = g.size().to_numpy()
    mean = g.sum().to_numpy() / (n + 1)
    sd = sd_factor / np.sqrt(n + 1)
    rng = np.random.default_rng(seed)
    draws = mean + sd * rng.normal(size=(2, 200, N_TASKS))
    intervals = {}
    for p in sbc.COVERAGE_PROBS:
        z = stats.norm.ppf((1 + p) / 2)
        intervals[p] = (mean - z * sd, mean + z * sd)
    return sbc.FitDraws(draws={"slope": draws}, slope_intervals=intervals,
                        p_negative=stats.norm.cdf(-mean / sd))


def _toy(name, sd_factor):
    return sbc.Variant(name=name, description="conjugate normal means", sample_prior=_toy_prior,
                       simulate=_toy_simulate, fit=partial(_toy_fit, sd_factor=sd_factor),
                       params=("slope[0]", "slope[1]"))


def test_harness_accepts_exact_posterior():
    """An exact posterior passes, for any seed: p-values > 0.001 (5 tests: a false alarm
    about once in 200 seeds) and coverage within 4 binomial sd of nominal over the 1,200
    intervals (0.9 +- 0.035, 0.5 +- 0.058); the overconfident posterior below fails by far."""
    result = sbc.run_sbc(_toy("toy_exact", 1.0), 600, seed=seed(3))
    summary = sbc.summarize(result)
    assert (summary["ranks"]["chi2_p"] > 1e-3).all()
    assert (summary["ranks"]["pot_c_p"] > 1e-3).all()
    assert summary["ranks"]["ecdf_in_band"].all()
    assert summary["pooled"]["slope"][1] > 1e-3
    cov = summary["coverage"]["coverage"]
    assert cov[0.9] == pytest.approx(0.9, abs=4 * np.sqrt(0.9 * 0.1 / 1200))
    assert cov[0.5] == pytest.approx(0.5, abs=4 * np.sqrt(0.5 * 0.5 / 1200))
    cal = summary["p_negative"]
    big = cal[cal["n_tasks"] >= 100]
    assert len(big) >= 4
    assert (big["diff"].abs() < 4 * big["mc_se"]).all(), cal


def test_harness_rejects_overconfident_posterior():
    result = sbc.run_sbc(_toy("toy_overconfident", 0.6), 300, seed=seed(3))
    summary = sbc.summarize(result)
    assert (summary["ranks"]["chi2_p"] < 1e-3).all()
    assert (summary["ranks"]["pot_c_p"] < 1e-3).all()
    assert not summary["ranks"]["ecdf_in_band"].any()
    assert summary["pooled"]["slope"][1] < 1e-3
    assert summary["coverage"].loc[0.9, "coverage"] < 0.8
    assert summary["passes"] == {"uniformity": False, "coverage90": False,
                                 "p_negative": summary["passes"]["p_negative"]}


def test_pooled_rank_test_is_near_nominal_under_dependence():
    # Tasks of a simulation share one draw (strong clustering): pooled ranks are dependent
    # but uniform. Measured: 7.5% rejections at 5%, 1.5% at 1% (a plain chi-square: ~100%);
    # the bounds are ~3 binomial sd (100 replicates) above those rates.
    rng = np.random.default_rng(seed(5))
    pvals = []
    for _ in range(100):
        records = []
        for i in range(200):
            ranks = np.floor(((rng.uniform() + 0.15 * rng.uniform(size=12)) % 1.0) * 100)
            records.append(sbc.SimRecord(i, {}, {}, {}, {"slope": ranks.astype(int)},
                                         np.zeros(12), {}, np.zeros(12), {}, 0.0))
        pvals.append(sbc.pooled_rank_test(sbc.SBCResult("dep", records, 99, 0, 0.0, 1),
                                          "slope")[1])
    assert np.mean(np.array(pvals) < 0.05) < 0.16
    assert np.mean(np.array(pvals) < 0.01) < 0.05


def test_rank_of_breaks_ties_uniformly():
    rng = np.random.default_rng(seed(0))
    draws = np.zeros((9, 1))
    ranks = np.array([sbc.rank_of(np.zeros(1), draws, rng)[0] for _ in range(5000)])
    counts = np.bincount(ranks, minlength=10)
    assert stats.chisquare(counts).pvalue > 0.001


def test_thin_draws_keeps_evenly_spaced_draws():
    draws = np.arange(2 * 500).reshape(2, 500).astype(float)
    kept = sbc.thin_draws(draws, 99)
    assert kept.shape == (99,)
    assert kept[0] == 0 and kept[-1] == 999
    with pytest.raises(ValueError, match="need at least 99 draws"):
        sbc.thin_draws(draws[:, :40], 99)


def test_chi_square_bins_divide_rank_values():
    _, p, n_bins = sbc.chi_square_uniformity(np.arange(100).repeat(2), 99)
    assert n_bins == 20 and p == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_bins should divide L"):
        sbc.chi_square_uniformity(np.arange(100), 99, n_bins=7)


def test_unknown_variant_lists_registered():
    with pytest.raises(KeyError, match="unknown variant 'no_such_variant'; registered: .*'full'"):
        sbc.get_variant("no_such_variant")


def _validation_imports() -> dict[str, set[str]]:
    """Modules of validation/ each module imports (anywhere in it, function bodies too)."""
    folder = Path(sbc.__file__).parent
    modules = {f.stem for f in folder.glob("*.py")} - {"__init__"}
    graph = {}
    for name in modules:
        tree = ast.parse((folder / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level == 1 or (
                    node.module or "").startswith("validation")):
                parts = (node.module or "").removeprefix("validation").strip(".")
                found |= {parts.split(".")[0]} if parts else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names
                          if a.name.startswith("validation.")}
        graph[name] = found & modules
    return graph


def test_validation_imports_have_no_cycle_and_the_harness_no_plugin():
    graph = _validation_imports()
    assert graph["sbc"] == {"common"} and graph["common"] == set()
    assert graph["variants"] == {"common"}  # a plugin sees the interface only
    plugins = {m.__name__.rsplit(".", 1)[1] for m in catalog.PLUGINS}
    assert plugins == {"variants", "pair_variants"}

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    for name in graph:
        assert name not in reachable(name), f"import cycle through validation/{name}.py"
    for harness in ("sbc", "common", "figures"):
        assert not reachable(harness) & plugins, harness
    # Every registered variant comes from a plugin the catalog lists.
    assert {v.fit.func.__module__ if isinstance(v.fit, partial) else v.fit.__module__
            for v in catalog.VARIANTS.values()} <= {m.__name__ for m in catalog.PLUGINS}


# -- reduced SBC of the Gaussian transfer model -------------------------------------------

def _fastest_gaussian() -> tuple[str, int]:
    """The collapsed (compile-once) path if the package has it, else the full model."""
    catalog.get_variant("full")  # the catalog registered every plugin's variants
    if "collapsed" in catalog.VARIANTS:
        return "collapsed", 36
    return "full", 12  # ~10 s per fit: sized to stay under 3 minutes


@pytest.fixture(scope="module")
def gaussian_sbc():
    name, n_sims = _fastest_gaussian()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sbc.run_sbc(name, n_sims, seed=seed(2026))


@pytest.mark.slow
def test_reduced_sbc_gaussian_is_uniform(gaussian_sbc):
    table = sbc.rank_table(gaussian_sbc)
    assert set(table.index) >= {"slope_mu", "slope_sigma", "intercept_mu", "intercept_sigma",
                                "sigma", "slope[0]", "intercept[0]"}
    # Loose: a real miscalibration of 2 sd is rejected far below this (next test).
    assert (table["chi2_p"] > 1e-3).all(), table
    assert (table["pot_c_p"] > 1e-3).all(), table
    cov = sbc.slope_coverage(gaussian_sbc)
    assert 0.8 <= cov.loc[0.9, "coverage"] <= 0.97, cov


@pytest.mark.slow
def test_reduced_sbc_rejects_shifted_posterior(gaussian_sbc):
    rng = np.random.default_rng(seed(7))
    # A 2-sd shift at 36 simulations (3 sd for the 12-simulation fallback): the PIT then
    # has mean ~0.92 instead of 0.5, rejected at p << 1e-3 for every seed. (A 1-sd shift
    # gave p 0.002-0.004 on one of 5 seeds: rejected at make validate's alpha 0.01, but
    # not at this test's 1e-3.)
    shift = 2.0 if len(gaussian_sbc.records) >= 30 else 3.0
    for param in ("slope_mu", "slope[0]"):
        ranks = sbc.shifted_ranks(gaussian_sbc, param, shift, rng)
        _, p_chi2, _ = sbc.chi_square_uniformity(ranks, gaussian_sbc.n_rank_draws)
        pit = sbc.pit_from_ranks(ranks, gaussian_sbc.n_rank_draws, rng)
        assert p_chi2 < 1e-3 or sbc.ecdf_uniformity(pit)["pot_c_p"] < 1e-3


def test_checkpoint_resumes_without_refitting(tmp_path):
    calls = []

    def counting_fit(df, seed):
        calls.append(seed)
        return _toy_fit(df, seed)

    variant = sbc.Variant(name="toy_ckpt", description="", sample_prior=_toy_prior,
                          simulate=_toy_simulate, fit=counting_fit, params=("slope[0]",))
    first = sbc.run_sbc(variant, 5, seed=seed(1), checkpoint=tmp_path)
    again = sbc.run_sbc(variant, 8, seed=seed(1), checkpoint=tmp_path)
    assert len(calls) == 8
    assert [r.index for r in again.records] == list(range(8))
    np.testing.assert_array_equal(first.ranks("slope[0]"), again.ranks("slope[0]")[:5])
    fresh = sbc.run_sbc(variant, 8, seed=seed(1))
    np.testing.assert_array_equal(fresh.ranks("slope[0]"), again.ranks("slope[0]"))


# -- the transfer matrix's per-pair NUTS variants -----------------------------------------

def test_grouped_pair_simulator_has_the_stated_covariance():
    """Residuals of one group: var tau^2 + sigma^2, covariance tau^2 between points."""
    from validation.pair_variants import simulate_pairs

    rng = np.random.default_rng(seed(3))
    truth = {"intercept": np.zeros(4000), "slope": np.zeros(4000),
             "sigma": np.full(4000, 0.5), "tau": np.full(4000, 0.8),
             **dict.fromkeys(("intercept_mu", "slope_mu", "intercept_sigma",
                              "slope_sigma", "corr"), 0.0)}
    df = simulate_pairs(truth, rng, n_points=20, model="normal_grouped", n_groups=5)
    assert df.groupby("task")["group"].value_counts().eq(4).all()
    y = df["y"].to_numpy().reshape(4000, 20)
    cov = np.cov(y[:, :4], rowvar=False)  # the first group's four points
    np.testing.assert_allclose(np.diag(cov), 0.8**2 + 0.5**2, rtol=0.06)
    np.testing.assert_allclose(cov[np.triu_indices(4, 1)], 0.8**2, rtol=0.08)
    assert abs(np.corrcoef(y[:, 0], y[:, 4])[0, 1]) < 0.05  # another group: independent


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pairs_student_t", "pairs_binomial", "pairs_grouped"])
def test_pair_variants_run_end_to_end(name):
    """A few replicates through the real per-pair sampler: ranks, coverage, diagnostics."""
    result = sbc.run_sbc(catalog.get_variant(name), 3, seed=seed(11))
    ranks = result.ranks("slope[0]")
    assert ranks.shape == (3,) and ((0 <= ranks) & (ranks <= result.n_rank_draws)).all()
    assert result.pooled("slope").size == 3 * 12
    cov = sbc.slope_coverage(result)
    assert 0.6 <= cov.loc[0.9, "coverage"] <= 1.0, cov  # 36 slopes: loose, but real
    # Each fit's diagnostics are recorded (convergence itself is judged by make validate's
    # 200+ simulations, not by 3: one of 3 Student-t fits had R-hat > 1.2 for one seed).
    assert all(np.isfinite(r.diagnostics["r_hat_max"]) and r.diagnostics["r_hat_max"] > 0.99
               for r in result.records)


def test_replication_runs_are_reported_in_their_own_table(tmp_path):
    from validation import run

    args = ["--variants", "toy_rep", "--sims", "6", "--workers", "1", "--out", str(tmp_path)]
    # Posterior sd 20 times too small: a 90% interval of half-width 1.645 * 0.05 / sqrt(6)
    # = 0.034 holds the truth (posterior sd 1 / sqrt(6) = 0.41) with probability 0.066, so
    # at least 32 of the 36 task slopes (coverage >= 0.87) is impossible in practice
    # (P < 1e-30): the run fails the coverage bar and main() must return 1.
    sbc.register_variant(_toy("toy_rep", 0.05))
    rep = seed(5)  # the replication's seed
    # Another script's JSON in results/ is not an SBC record: RESULTS.md skips it.
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "other_script.json").write_text('{"rates": [0.1, 0.2]}')
    try:
        assert run.main([*args, "--seed", str(seed(4))]) == 1
        assert run.main([*args, "--seed", str(rep), "--replication"]) == 1
    finally:
        sbc.VARIANTS.pop("toy_rep")
    main_json = tmp_path / "results" / "toy_rep.json"
    rep_json = tmp_path / "results" / "replications" / f"toy_rep-seed{rep}.json"
    assert main_json.exists() and rep_json.exists()
    for path in (main_json, rep_json):
        record = json.loads(path.read_text())
        assert record["passes"]["coverage90"] is False
        cov90 = next(c["coverage"] for c in record["coverage"] if c["ci_prob"] == 0.9)
        assert cov90 < 0.87
    assert f'"seed": {rep}' not in main_json.read_text()  # the replication left it alone
    text = (tmp_path / "RESULTS.md").read_text()
    table = text.split("## Replications with other seeds")[1].split("##")[0]
    assert f"| `toy_rep` | {rep} | 6 |" in table
