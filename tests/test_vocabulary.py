"""One vocabulary: both entry points take the same words, values and messages (issue 13).

``fit_hierarchical`` and ``fit_transfer_matrix`` share their argument parsing
(:mod:`bayesslope.options`); these tests call both the same way. The transfer-matrix fits
use the shapes of tests/test_pairs.py's module fit (5 tasks x 25 units, default sampler
settings), so in one session the compiled JAX programs are reused.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FIT_KW, seed

import bayesslope as bs
from bayesslope import DataValidationError
from bayesslope.sampling import SamplerConfig

TASKS = ["a", "b", "c", "d", "neg"]


def pair_frame(k: int = 0, m: int = 25) -> pd.DataFrame:
    """Long scores of m units on 5 tasks driven by one ability; 'neg' goes against it."""
    rng = np.random.default_rng(seed(k))
    g = rng.normal(size=m)
    s = np.outer(g, [1.0, 0.8, 1.2, 0.6, -0.9]) + 0.6 * rng.normal(size=(m, 5))
    rows = [(f"m{i}", t, s[i, j]) for i in range(m) for j, t in enumerate(TASKS)]
    return pd.DataFrame(rows, columns=["model", "task", "y"])


def line_frame(k: int = 0) -> pd.DataFrame:
    """Small fit_hierarchical frame: 4 tasks x 10 points, a loss (x) and an accuracy (y)."""
    rng = np.random.default_rng(seed(k))
    parts = []
    for j in range(4):
        x = rng.uniform(2.0, 4.0, 10)
        parts.append(pd.DataFrame({"task": f"t{j}", "x": x,
                                   "y": 0.6 - 0.1 * (x - 3) + rng.normal(0, 0.02, 10)}))
    return pd.concat(parts, ignore_index=True)


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


SHARED = dict(y="y", y_better="higher", likelihood="normal")


HIER_KW = dict(x="x", task="task", x_better="lower", random_seed=seed(1), **SHARED, **FIT_KW)


@pytest.fixture(scope="module")
def hfit():
    return quiet(bs.fit_hierarchical, line_frame(), **HIER_KW)


@pytest.fixture(scope="module")
def tm():
    return quiet(bs.fit_transfer_matrix, pair_frame(), unit="model", task="task",
                 random_seed=seed(1), **SHARED)


# ----------------------------------------------------------------------- same words
def test_both_entry_points_take_the_same_keywords(hfit, tm):
    fit = hfit
    assert fit.spec["sampler"]["random_seed"] == seed(1)
    assert tm.spec["sampler"]["random_seed"] == seed(1)
    assert tm.likelihood == fit.likelihood == "normal"
    # Same column names for the same quantities.
    common = {"mean", "sd", "eti90_lb", "eti90_ub", "p_negative", "r_hat", "ess_bulk",
              "intercept_mean", "x_better", "y_better", "n"}
    assert common <= set(fit.summary().columns) and common <= set(tm.summary().columns)
    for result in (fit, tm):
        p = result.p_negative_transfer()
        assert isinstance(p, pd.Series) and p.name == "p_negative"
        d = result.diagnostics()
        assert isinstance(d, pd.DataFrame)
        assert {"r_hat_max", "ess_bulk_min", "ess_tail_min"} <= set(d.columns)
        assert d.attrs["divergences"] >= 0
    assert list(tm.summary(ci_prob=0.8).columns[2:4]) == ["eti80_lb", "eti80_ub"]


@pytest.mark.parametrize("entry", ["fit_hierarchical", "fit_transfer_matrix"])
def test_arguments_after_df_are_keyword_only(entry):
    with pytest.raises(TypeError, match="positional argument"):
        getattr(bs, entry)(pair_frame(), "model")


@pytest.mark.parametrize("entry", ["fit_hierarchical", "fit_transfer_matrix"])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(target_accept=1.5), r"target_accept should be in \(0, 1\) but got 1.5"),
        (dict(random_seed=1.7), r"random_seed must be an integer or None, got 1.7"),
        (dict(random_seed="abc"), r"random_seed must be an integer or None, got 'abc'"),
        (dict(draws=0), r"draws must be a positive integer, got 0"),
        (dict(y_better="up"), r"y_better should be one of \['lower', 'higher'\] but got 'up'"),
        (dict(y_better=True), r"y_better should be 'lower', 'higher' or a dict"),
        (dict(dropna="yes"), r"dropna should be True or False, got 'yes'"),
        (dict(progressbar="no"), r"progressbar should be True or False, got 'no'"),
    ],
)
def test_same_bad_value_same_message(entry, kwargs, match):
    df = line_frame() if entry == "fit_hierarchical" else pair_frame()
    with pytest.raises(DataValidationError, match=match):
        getattr(bs, entry)(df, **kwargs)


def test_boolean_options_are_type_checked():
    with pytest.raises(DataValidationError, match=r"correlated should be True or False, got 'no'"):
        bs.fit_hierarchical(line_frame(), correlated="no")
    with pytest.raises(DataValidationError, match=r"per_task_sigma should be True or False "
                                                  r"or 'pooled', got 'yes'"):
        bs.fit_hierarchical(line_frame(), per_task_sigma="yes")
    with pytest.raises(DataValidationError, match=r"per_pair_sigma should be True or False"):
        bs.fit_transfer_matrix(pair_frame(), per_pair_sigma="pair")
    with pytest.raises(DataValidationError, match=r"keep_draws should be True or False"):
        bs.fit_transfer_matrix(pair_frame(), keep_draws="no")


def test_numpy_integers_are_accepted_as_sampler_settings():
    cfg = SamplerConfig(draws=np.int64(200), tune=np.int32(0), chains=np.int64(2),
                        random_seed=np.int64(1), target_accept=np.float64(0.8))
    assert (cfg.draws, cfg.tune, cfg.chains, cfg.random_seed) == (200, 0, 2, 1)
    assert all(type(v) is int for v in (cfg.draws, cfg.tune, cfg.chains, cfg.random_seed))


def test_old_transfer_matrix_words_are_gone():
    df = pair_frame()
    for old in (dict(score="y"), dict(better="higher"), dict(sigma="shared"),
                dict(tasks=["a", "b"]), dict(ci_prob=0.9)):
        with pytest.raises(TypeError, match="unexpected keyword"):
            bs.fit_transfer_matrix(df, **old)
    with pytest.raises(DataValidationError, match=r"likelihood should be one of \['normal'"):
        bs.fit_transfer_matrix(df, likelihood="gaussian")


@pytest.mark.parametrize(
    "priors, match",
    [
        ({"slope_mu": 5}, r"prior 'slope_mu' should be a dict like \{'dist': 'Normal'"),
        ({"slope_mu": {"dist": "Normal", "mu": 0, "sd": 1}},
         r"prior 'slope_mu': Normal takes \(mu, sigma\); unknown \['sd'\], missing \['sigma'\]"),
        ({"slope_mu": {"dist": "Normal", "mu": 0}}, r"missing \['sigma'\]"),
        ({"slope_sigma": {"dist": "HalfNormal", "sigma": -1}},
         r"prior 'slope_sigma': parameter 'sigma' must be > 0"),
        ({"slope_mu": {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 1}},
         r"prior 'slope_mu': distribution 'StudentT' is not supported here"),
        ({"nu": {"dist": "Gamma", "alpha": 2, "beta": 0.1}}, r"unknown prior 'nu'"),
        ([("slope_mu", 5)], r"priors must be a dict of name -> prior"),
    ],
)
def test_transfer_matrix_priors_checked(priors, match):
    with pytest.raises(DataValidationError, match=match):
        bs.fit_transfer_matrix(pair_frame(), priors=priors)


# ----------------------------------------------------------------------- orientation
def test_y_higher_is_better_column_is_read_by_both():
    from bayesslope.data import prepare_design
    from bayesslope.pairs.design import build_pair_design

    df = pair_frame()
    df["y_higher_is_better"] = df["task"] != "neg"
    d = build_pair_design(df)
    assert d.higher_is_better == {t: t != "neg" for t in TASKS}
    line = line_frame()
    line["y_higher_is_better"] = line["task"] != "t0"
    assert prepare_design(line).y_better == ("lower", "higher", "higher", "higher")
    # An explicit word wins over the column, in both.
    assert all(build_pair_design(df, y_better="higher").higher_is_better.values())
    assert prepare_design(line, y_better="higher").y_better == ("higher",) * 4


def test_task_labels_that_collide_as_text_raise():
    df = pair_frame()
    df["task"] = df["task"].astype(object)
    df.loc[df["task"] == "a", "task"] = 1
    df.loc[df["task"] == "b", "task"] = "1"
    with pytest.raises(DataValidationError, match=r"column 'task' has distinct labels"):
        bs.fit_transfer_matrix(df)


def test_transfer_matrix_missing_scores_raise_unless_dropna():
    df = pair_frame()
    df.loc[[3, 7], "y"] = np.nan
    with pytest.raises(DataValidationError,
                       match=r"missing values \(NaN\) in 2 row\(s\): column 'y' at rows \[3, 7\]"):
        bs.fit_transfer_matrix(df)


# ----------------------------------------------------------------------- row order
@pytest.mark.parametrize("k", range(4))
def test_row_order_never_changes_the_designs(k):
    """Property over permutations (reversed, shuffled): identical arrays for both."""
    from bayesslope.data import prepare_design
    from bayesslope.pairs.design import build_pair_design

    rng = np.random.default_rng(seed(10 + k))
    for df, build in ((pair_frame(k), build_pair_design), (line_frame(k), prepare_design)):
        base = build(df)
        for order in (np.arange(len(df))[::-1], rng.permutation(len(df))):
            other = build(df.iloc[order])
            assert other.tasks == base.tasks == tuple(sorted(base.tasks))
            assert other.data_hash() == base.data_hash()


def test_categorical_task_order_is_kept():
    from bayesslope.pairs.design import build_pair_design

    df = pair_frame()
    order = ["neg", "d", "c", "b", "a"]
    df["task"] = pd.Categorical(df["task"], categories=order)
    assert build_pair_design(df).tasks == tuple(order)


def test_reversed_and_shuffled_rows_give_identical_transfer_matrices(tm):
    df = pair_frame()
    rng = np.random.default_rng(seed(3))
    for order in (np.arange(len(df))[::-1], rng.permutation(len(df))):
        other = quiet(bs.fit_transfer_matrix, df.iloc[order], random_seed=seed(1), **SHARED)
        pd.testing.assert_frame_equal(other.summary(), tm.summary(), check_exact=True)
        np.testing.assert_array_equal(other.draws["slope"].values, tm.draws["slope"].values)


def test_reversed_rows_give_identical_hierarchical_fits(hfit):
    other = quiet(bs.fit_hierarchical, line_frame().iloc[::-1], **HIER_KW)
    np.testing.assert_array_equal(other.posterior["posterior"]["slope"].values,
                                  hfit.posterior["posterior"]["slope"].values)
    pd.testing.assert_frame_equal(other.summary(), hfit.summary(), check_exact=True)


# ----------------------------------------------------------------------- load
def test_load_refuses_what_it_cannot_read(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not netCDF at all\n")
    for reader in (bs.load, bs.load_fit):
        with pytest.raises(DataValidationError,
                           match=rf"not a readable bayesslope result: {text}"):
            reader(text)
        with pytest.raises(DataValidationError, match=r"not a readable .*: .*absent"):
            reader(tmp_path / "absent.nc")
    foreign = tmp_path / "foreign.nc"
    import xarray as xr

    xr.Dataset({"v": ("i", np.arange(3.0))}).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(DataValidationError, match=r"not a readable.*no 'bayesslope_spec'"):
        bs.load(foreign)
    bad_json = tmp_path / "bad_json.nc"
    xr.Dataset(attrs={"bayesslope_spec": "{not json"}).to_netcdf(bad_json, engine="h5netcdf")
    with pytest.raises(DataValidationError, match=r"not a readable.*JSONDecodeError"):
        bs.load_fit(bad_json)


def test_load_is_exported():
    assert "load" in bs.__all__ and bs.load is bs.io.load
