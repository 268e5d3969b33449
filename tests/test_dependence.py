"""Residual clustering by an unmodelled grouping column (bayesslope.dependence, issue 22)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FIT_KW, seed
from scipy import stats

import bayesslope as bs
from bayesslope.data import prepare_design
from bayesslope.dependence import (
    candidate_columns,
    clustering_table,
    dependence_from_dict,
    dependence_to_dict,
    slope_inflation,
)

# -- pure functions: residuals + codes -> table ---------------------------------------------


def clustered_residuals(rng, *, n_tasks=5, n_groups=8, per_group=8, icc=0.5,
                        x_within=0.0, x_between=1.0):
    """Residuals with a nested (task x group) random intercept of the given ICC."""
    task = np.repeat(np.arange(n_tasks), n_groups * per_group)
    codes = np.tile(np.repeat(np.arange(n_groups), per_group), n_tasks)
    centre = rng.normal(0.0, x_between, (n_tasks, n_groups))[task, codes]
    xc = centre + rng.normal(0.0, x_within, task.size) if x_within > 0 else centre
    u = rng.normal(0.0, np.sqrt(icc), (n_tasks, n_groups))[task, codes]
    r = u + rng.normal(0.0, np.sqrt(1.0 - icc), task.size)
    return r, xc, task, codes


def test_strong_clustering_is_flagged_with_its_size():
    rng = np.random.default_rng(seed(1))
    r, xc, task, codes = clustered_residuals(rng, icc=0.5)
    table = clustering_table(r, xc, task, {"model": codes}, rng=seed(2))
    row = table.loc["model"]
    assert row["flagged"]
    assert row["p_value"] == pytest.approx(1 / (table.attrs["n_permutations"] + 1))
    # 40 cells: the ANOVA ICC is within +-0.2 of the truth with a wide margin.
    assert 0.3 < row["icc"] < 0.7


def test_false_alarm_rate_is_controlled_under_the_null():
    """200 null data sets (no clustering): flagged in about alpha = 5% of them."""
    rng = np.random.default_rng(seed(3))
    n_sets, flagged = 200, 0
    for _ in range(n_sets):
        r, xc, task, codes = clustered_residuals(rng, icc=0.0, n_tasks=3, n_groups=6,
                                                 per_group=5, x_within=0.5)
        table = clustering_table(r, xc, task, {"model": codes}, n_permutations=199,
                                 rng=rng)
        flagged += bool(table.loc["model", "flagged"])
    # A one-sided binomial test of rate <= 0.05 that fails on one seed in 10,000.
    assert stats.binom.sf(flagged - 1, n_sets, 0.05) > 1e-4, flagged


def test_inflation_matches_the_design_effect_when_x_varies_between_cells():
    """x constant within cells: the grouped slope sd is sqrt(1 + (m - 1) ICC) times wider."""
    rng = np.random.default_rng(seed(4))
    icc, m = 0.4, 8
    # 400 cells: the realised ICC is within ~0.04 of 0.4, the factor within ~4% of the truth.
    r, xc, task, codes = clustered_residuals(rng, icc=icc, n_groups=80, per_group=m)
    got = np.median(slope_inflation(r, xc, task, codes))
    assert got == pytest.approx(np.sqrt(1 + (m - 1) * icc), rel=0.15)


def test_inflation_is_below_one_when_x_varies_within_cells_only():
    """Every cell spans the same x: modelling the cells removes their variance from the slope."""
    rng = np.random.default_rng(seed(5))
    icc, m, n_groups, n_tasks = 0.5, 8, 80, 5  # 400 cells, as above
    task = np.repeat(np.arange(n_tasks), n_groups * m)
    codes = np.tile(np.repeat(np.arange(n_groups), m), n_tasks)
    xc = np.tile(np.linspace(-1, 1, m), n_tasks * n_groups)
    u = rng.normal(0.0, np.sqrt(icc), (n_tasks, n_groups))[task, codes]
    r = u + rng.normal(0.0, np.sqrt(1 - icc), task.size)
    got = np.median(slope_inflation(r, xc, task, codes))
    assert got == pytest.approx(np.sqrt(1 - icc), rel=0.15)


def odd_columns_frame(rng):
    rows = []
    for t in ("a", "b", "c"):
        for g in range(4):
            for k in range(5):
                rows.append({"task": t, "x": rng.uniform(2, 4), "y": rng.normal(0.5, 0.05),
                             "model": f"m{g}", "one": "same", "uid": f"{t}{g}{k}",
                             "allnan": np.nan, "partnan": np.nan if k == 0 else f"s{k % 2}",
                             "measure": rng.normal(), "n_items": 100,
                             "x_higher_is_better": False})
    return pd.DataFrame(rows)


def test_candidates_skip_single_unique_missing_and_measurements():
    df = odd_columns_frame(np.random.default_rng(seed(6)))
    design = prepare_design(df)
    cands, skipped = candidate_columns(df, design, used=["n_items"])
    assert set(cands) == {"model", "partnan"}
    assert skipped["one"] == "a single level"
    assert skipped["allnan"] == "only missing values"
    assert skipped["measure"].startswith("a numeric measurement")
    assert skipped["uid"].startswith("no level repeats within a task")
    assert "n_items" not in skipped and "x_higher_is_better" not in skipped
    assert (cands["partnan"] == -1).sum() == 12  # the k == 0 rows, left out of its test
    r = np.random.default_rng(seed(7)).normal(size=design.n_obs)
    table = clustering_table(r, design.xc, design.task_idx, cands, rng=seed(8))
    assert table.loc["partnan", "n_rows"] == 48
    assert np.isfinite(table[["statistic", "p_value", "icc", "inflation"]].to_numpy()).all()
    back = dependence_from_dict(dependence_to_dict(table))
    pd.testing.assert_frame_equal(back, table)


# -- after a fit -----------------------------------------------------------------------------


def grouped_frame(rng, *, n_tasks=4, n_groups=6, per_group=6, icc=0.6, sd=0.03):
    """Checkpoints of models: a nested (task x model) offset, x mostly between models."""
    rows = []
    centre = rng.uniform(2.0, 4.0, n_groups)  # each model's typical loss
    for t in range(n_tasks):
        slope = rng.normal(0.1, 0.02)
        offset = rng.normal(0.0, sd * np.sqrt(icc), n_groups)
        for g in range(n_groups):
            x = centre[g] + rng.normal(0.0, 0.05, per_group)
            y = (0.6 - slope * (x - 3.0) + offset[g]
                 + rng.normal(0.0, sd * np.sqrt(1 - icc), per_group))
            rows += [{"task": f"t{t}", "model": f"m{g}", "x": a, "y": b}
                     for a, b in zip(x, y, strict=True)]
    return pd.DataFrame(rows)


def _fit_recording(df, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = bs.fit_hierarchical(df, **{**FIT_KW, **kw})
    return fit, [w for w in rec if issubclass(w.category, bs.DependenceWarning)]


@pytest.fixture(scope="module")
def clustered():
    df = grouped_frame(np.random.default_rng(seed(10)))
    return df, _fit_recording(df, random_seed=seed(11))


def test_unmodelled_grouping_warns_by_name_with_the_fix(clustered):
    _, (fit, rec) = clustered
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "rows sharing 'model' are correlated" in msg
    assert "group='model', group_nesting='nested'" in msg
    assert rec[0].filename == __file__  # points at the caller
    table = fit.dependence()
    assert table.loc["model", "flagged"]
    # x varies between models only: the intervals are too narrow (design effect > 1).
    assert table.loc["model", "inflation"] > 1.5
    pd.testing.assert_frame_equal(fit.diagnostics().attrs["dependence"], table)
    # The report's section: tests/test_report.py.


def test_residuals_are_the_posterior_mean_residuals(clustered):
    """The shortcut (eta at the posterior means) equals the mean over every draw."""
    from bayesslope.dependence import posterior_residuals
    from bayesslope.likelihoods import linear_predictor

    _, (fit, _) = clustered
    post = fit.posterior["posterior"]
    every_draw = linear_predictor(post.to_dataset(), fit.design, fit.variants)
    np.testing.assert_allclose(
        posterior_residuals(post, fit.design, fit.variants),
        fit.design.y - every_draw.mean(axis=(0, 1)), rtol=0, atol=1e-12)


def test_dependence_table_survives_to_netcdf(clustered, tmp_path):
    _, (fit, _) = clustered
    back = bs.load_fit(fit.to_netcdf(tmp_path / "fit.nc"))
    pd.testing.assert_frame_equal(back.dependence(), fit.dependence())
    assert back.dependence().attrs == fit.dependence().attrs


def test_no_warning_when_the_grouping_is_modelled(clustered):
    df, _ = clustered
    # Posterior means are all the check needs: a short run of the (slower) grouped model.
    fit, rec = _fit_recording(df, random_seed=seed(12), group="model", group_nesting="nested",
                              draws=300, tune=300)
    assert rec == []
    assert fit.dependence().empty  # 'model' is used: nothing left to test
    assert fit.dependence().attrs["skipped"] == {}


def test_check_dependence_false_turns_it_off(clustered):
    df, _ = clustered
    kw = {**FIT_KW, "draws": 50, "tune": 50}
    fit, rec = _fit_recording(df, random_seed=seed(13), check_dependence=False, **kw)
    assert rec == []
    assert fit.dependence() is None
    assert fit.diagnostics().attrs["dependence"] is None


# -- transfer matrix: units of the pairs that share a column ----------------------------------


def checkpoints_frame(rng, *, model_sd=0.8, n_models=8, per_model=6, n_tasks=5):
    """Long frame, one unit per checkpoint: two latent abilities per unit (so a unit's
    residuals are correlated across pairs), plus a (model x task) offset of sd ``model_sd``.

    Columns besides unit/task/y: ``model`` and ``size`` (a property of the model), ``lab``
    (a random label per unit), and odd ones that must be skipped: ``one`` (single level),
    ``uid`` (unique per unit), ``allnan``, ``partnan`` (missing for some units), ``chance``
    (varies within a unit), ``loss`` (a numeric measurement).
    """
    n_units = n_models * per_model
    model = np.repeat(np.arange(n_models), per_model)
    z = rng.normal(size=(n_units, 2))
    load = np.column_stack([rng.uniform(0.6, 1.2, n_tasks), rng.normal(0, 0.5, n_tasks)])
    offset = rng.normal(0.0, model_sd, (n_models, n_tasks)) if model_sd > 0 else 0.0
    y = z @ load.T + (offset[model] if model_sd > 0 else 0.0) \
        + rng.normal(0.0, 0.4, (n_units, n_tasks))
    lab = rng.permutation(np.arange(n_units) % 6)
    rows = []
    for u in range(n_units):
        for t in range(n_tasks):
            rows.append({"unit": f"m{model[u]}@{u}", "task": f"t{t}", "y": y[u, t],
                         "model": f"m{model[u]}", "size": f"s{model[u] % 3}",
                         "lab": f"l{lab[u]}", "one": "same", "uid": f"u{u}",
                         "allnan": np.nan, "partnan": np.nan if u % 5 == 0 else f"p{u % 2}",
                         "chance": 0.25 * t, "loss": float(z[u, 0])})
    return pd.DataFrame(rows)


MATRIX_KW = dict(unit="unit", draws=400, tune=400, chains=2)


def _matrix_recording(df, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        tm = bs.fit_transfer_matrix(df, **{**MATRIX_KW, **kw})
    return tm, [w for w in rec if issubclass(w.category, bs.DependenceWarning)]


def _ols_table(design):
    """Per-pair least-squares lines on the standardized scores: intercept 0, slope r."""
    return pd.DataFrame({"intercept_mean": np.zeros(design.n_pairs), "mean": design.r})


def test_unit_permutation_null_is_the_statistic_under_relabelled_units():
    """The fast null (Gram / matrix products) equals the definition: permute the levels
    over units, rebuild the cells, recompute the between-cell sums. Complete data take
    the Gram path (12 units x 20 tasks: sum_l N_l^2 <= 144 < 240), missing data the
    matrix-product path."""
    from bayesslope.dependence import (
        _between,
        _cells,
        _unit_permutation_null,
        _within_task_permutations,
    )

    rng = np.random.default_rng(seed(30))
    n_units, n_tasks = 12, 20
    unit = np.repeat(np.arange(n_units), n_tasks)
    task = np.tile(np.arange(n_tasks), n_units)
    level = rng.integers(0, 3, n_units)
    for drop in (np.zeros(unit.size, bool), rng.random(unit.size) < 0.2):
        u, t = unit[~drop], task[~drop]
        v = rng.normal(size=u.size)
        (ssb, sst), = _unit_permutation_null((v,), t, u, level[u], None, 30,
                                             np.random.default_rng(seed(31)))
        perms = _within_task_permutations(level, np.zeros(n_units, int), 30,
                                          np.random.default_rng(seed(31)))
        for k in range(30):
            cell = _cells(t, perms[k][u])
            order = np.argsort(cell, kind="stable")
            want_b, want_t, *_ = _between(v[order], v[order], cell[order], t[order])
            assert ssb[k] == pytest.approx(want_b, rel=1e-9, abs=1e-9)
            assert sst[k] == pytest.approx(want_t, rel=1e-9)


def test_matrix_false_alarm_rate_is_controlled_under_the_null():
    """200 frames whose labels are unrelated to the units' scores, each unit's residuals
    correlated across pairs: flagged in about alpha = 5% of them (least-squares lines)."""
    from bayesslope.dependence import check_transfer_dependence
    from bayesslope.pairs.design import build_pair_design

    rng = np.random.default_rng(seed(32))
    n_sets, flagged = 200, 0
    for k in range(n_sets):
        df = checkpoints_frame(rng, model_sd=0.0, n_models=6, per_model=5, n_tasks=4)
        design = build_pair_design(df, unit="unit")
        table = check_transfer_dependence(df, design, _ols_table(design), "normal",
                                          n_permutations=199, random_seed=k)
        flagged += bool(table["flagged"].any())
    # A one-sided binomial test of rate <= 0.05 that fails on one seed in 10,000.
    assert stats.binom.sf(flagged - 1, n_sets, 0.05) > 1e-4, flagged


def test_matrix_candidates_skip_odd_columns():
    from bayesslope.dependence import check_transfer_dependence, unit_candidate_columns
    from bayesslope.pairs.design import build_pair_design

    df = checkpoints_frame(np.random.default_rng(seed(33)))
    design = build_pair_design(df, unit="unit")
    cands, skipped = unit_candidate_columns(df, design)
    assert set(cands) == {"model", "size", "lab", "partnan"}
    assert skipped == {
        "one": "a single level", "uid": "all-unique (each unit its own level)",
        "allnan": "only missing values",
        "chance": "varies within a unit (not a property of the unit)",
        "loss": "a numeric measurement (mostly unique values)"}
    assert (cands["partnan"] == -1).sum() == 48 // 5 + 1  # units 0, 5, ..., 45
    table = check_transfer_dependence(df, design, _ols_table(design), "normal")
    assert table.loc["partnan", "n_rows"] == (48 - 10) * 4 * 5  # units x tasks x 5 pairs
    assert np.isfinite(table[["statistic", "p_value", "icc", "inflation"]].to_numpy()).all()
    # With group='model': 'size' (constant within a model) is modelled already.
    grouped = build_pair_design(df, unit="unit", group="model")
    cands, skipped = unit_candidate_columns(df, grouped)
    assert set(cands) == {"lab", "partnan"}
    assert skipped["size"].startswith("constant within each level of group='model'")


@pytest.fixture(scope="module")
def matrix_clustered():
    df = checkpoints_frame(np.random.default_rng(seed(34)))
    return df, _matrix_recording(df, random_seed=seed(35))


def test_matrix_unmodelled_grouping_warns_by_name_with_the_fix(matrix_clustered, tmp_path):
    _, (tm, rec) = matrix_clustered
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "units sharing 'model' are correlated within task pairs" in msg
    assert "fit with group='model'." in msg and "tm.dependence()" in msg
    assert rec[0].filename == __file__
    table = tm.dependence()
    assert table.loc["model", "flagged"]
    # The offset is 0.8 of a score sd per (model, task): residual ICC well above 0.3.
    assert table.loc["model", "icc"] > 0.3
    # x varies within models here (no claim on its direction): a finite factor is reported.
    assert 0 < table.loc["model", "inflation"] < 10
    assert "uid" in table.attrs["skipped"] and "allnan" in table.attrs["skipped"]
    assert tm.spec["timings"]["dependence_s"] > 0
    back = bs.load(tm.to_netcdf(tmp_path / "tm.nc"))
    pd.testing.assert_frame_equal(back.dependence(), table)
    assert back.dependence().attrs == table.attrs


def test_matrix_no_warning_without_a_group_effect(matrix_clustered):
    """Three frames without the model offset: a false alarm on at most one (the check's
    family-wise rate is 5%: two or more fail with probability < 1%)."""
    warned = 0
    for k in range(3):
        df = checkpoints_frame(np.random.default_rng(seed(36 + k)), model_sd=0.0)
        tm, rec = _matrix_recording(df, random_seed=seed(40 + k))
        assert set(tm.dependence().index) == {"model", "size", "lab", "partnan"}
        warned += bool(rec)
    assert warned <= 1


def test_matrix_no_warning_when_the_grouping_is_modelled(matrix_clustered):
    df, _ = matrix_clustered
    # Only the columns that group() makes redundant: nothing left to test.
    df = df[["unit", "task", "y", "model", "size", "one"]]
    tm, rec = _matrix_recording(df, random_seed=seed(44), group="model", draws=200, tune=200)
    assert rec == []
    assert tm.dependence().empty
    assert set(tm.dependence().attrs["skipped"]) == {"size", "one"}


def test_matrix_check_dependence_false_turns_it_off(matrix_clustered):
    df, _ = matrix_clustered
    tm, rec = _matrix_recording(df, random_seed=seed(45), check_dependence=False)
    assert rec == []
    assert tm.dependence() is None
