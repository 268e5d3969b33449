# Long lines below are regular expressions matched against whole error messages.
# ruff: noqa: E501
"""Every bad input raises DataValidationError with a message that names what is wrong.

None of these tests samples: validation happens before any model is built.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import seed

import bayesslope as bs
from bayesslope import DataValidationError
from bayesslope.data import prepare_design
from bayesslope.priors import default_priors, resolve_priors
from bayesslope.sampling import SamplerConfig


def good_frame() -> pd.DataFrame:
    rng = np.random.default_rng(seed(0))
    n = 6
    return pd.DataFrame(
        {
            "task": ["a"] * n + ["b"] * n,
            "x": np.r_[np.linspace(2, 4, n), np.linspace(2, 4, n)],
            "y": rng.normal(0.5, 0.1, 2 * n),
        }
    )


def fit(df=None, **kw):
    """fit_hierarchical, expected to raise before sampling."""
    return bs.fit_hierarchical(good_frame() if df is None else df, **kw)


def test_data_validation_error_is_a_value_error():
    assert issubclass(DataValidationError, ValueError)
    assert issubclass(bs.SamplingWarning, RuntimeWarning)
    assert issubclass(bs.WeakDataWarning, UserWarning)


def test_good_frame_passes():
    d = prepare_design(good_frame())
    assert d.tasks == ("a", "b") and d.n_obs == 12
    assert d.x_better == "lower" and d.y_better == ("higher", "higher")


@pytest.mark.parametrize("missing", ["x", "y", "task"])
def test_missing_column(missing):
    df = good_frame().drop(columns=missing)
    with pytest.raises(DataValidationError, match=rf"missing column\(s\) \['{missing}'\]"):
        fit(df)


def test_renamed_columns_are_used():
    df = good_frame().rename(columns={"x": "loss", "y": "acc", "task": "bench"})
    d = prepare_design(df, x="loss", y="acc", task="bench")
    assert d.columns == {"x": "loss", "y": "acc", "task": "bench"}
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['x'\]"):
        prepare_design(df, y="acc", task="bench")


@pytest.mark.parametrize("col", ["x", "y"])
def test_text_in_numeric_column_names_column_and_rows(col):
    df = good_frame().astype({col: object})
    df.loc[3, col] = "n/a"
    df.loc[7, col] = "0.5%"
    with pytest.raises(
        DataValidationError,
        match=rf"column '{col}' \({col}\) must be numeric .*'n/a', '0.5%' at rows \[3, 7\]",
    ):
        fit(df)


def test_numeric_strings_are_accepted():
    df = good_frame()
    df["x"] = df["x"].astype(str)
    d = prepare_design(df)
    np.testing.assert_allclose(np.sort(d.x), np.sort(good_frame()["x"].to_numpy()))


@pytest.mark.parametrize("col", ["x", "y", "task"])
def test_nan_reports_rows(col):
    df = good_frame().astype({"task": object})
    df.loc[[2, 9], col] = np.nan
    with pytest.raises(
        DataValidationError,
        match=rf"missing values \(NaN\) in 2 row\(s\): column '{col}' at rows \[2, 9\].*dropna=True",
    ):
        fit(df)


def test_dropna_drops_and_warns_with_count():
    df = good_frame()
    df.loc[[1, 8], "y"] = np.nan
    df.loc[4, "x"] = np.nan
    with pytest.warns(UserWarning, match=r"dropped 3 row\(s\) .*rows \[1, 4, 8\]"):
        d = prepare_design(df, dropna=True)
    assert d.n_obs == 9 and d.n_dropped == 3
    assert sorted(d.row_labels.tolist()) == [0, 2, 3, 5, 6, 7, 9, 10, 11]


def test_dropna_leaving_nothing():
    df = good_frame()
    df["y"] = np.nan
    with pytest.warns(UserWarning, match="dropped 12 row"):
        with pytest.raises(DataValidationError, match="no rows left"):
            prepare_design(df, dropna=True)


@pytest.mark.parametrize("col", ["x", "y"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_reports_rows(col, value):
    df = good_frame()
    df.loc[5, col] = value
    with pytest.raises(
        DataValidationError, match=rf"column '{col}' has non-finite values .*at rows \[5\]"
    ):
        fit(df)


def test_empty_frame():
    with pytest.raises(DataValidationError, match="empty"):
        fit(good_frame().iloc[:0])


def test_not_a_frame():
    with pytest.raises(DataValidationError, match="must be a pandas DataFrame, got dict"):
        prepare_design({"x": [1, 2], "y": [1, 2], "task": ["a", "b"]})


def test_single_task():
    df = good_frame().assign(task="only")
    with pytest.raises(DataValidationError, match=r"only one task \('only'\).*at least 2 tasks"):
        fit(df)


def test_x_constant_over_frame():
    df = good_frame().assign(x=3.0)
    with pytest.raises(DataValidationError, match=r"column 'x' is constant \(3.0\)"):
        fit(df)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"x_better": "smaller"}, r"x_better should be one of \['lower', 'higher'\] but got 'smaller'"),
        ({"x_better": True}, r"x_better should be one of .* but got True"),
        ({"y_better": "up"}, r"y_better should be one of .* but got 'up'"),
        ({"y_better": {"a": "higher", "b": "best"}}, r"y_better\['b'\] should be one of .*'best'"),
        ({"y_better": {"a": "higher"}}, r"must name every task exactly: unknown \[\], missing \['b'\]"),
        ({"y_better": {"a": "higher", "b": "lower", "z": "lower"}}, r"unknown \['z'\]"),
        ({"y_better": 1}, r"y_better should be 'lower', 'higher' or a dict"),
    ],
)
def test_invalid_orientation(kw, match):
    with pytest.raises(DataValidationError, match=match):
        fit(**kw)


def test_orientation_flag_columns():
    df = good_frame().assign(x_higher_is_better=False, y_higher_is_better=True)
    df.loc[df["task"] == "b", "y_higher_is_better"] = False
    d = prepare_design(df)
    assert d.x_better == "lower" and d.y_better == ("higher", "lower")
    np.testing.assert_array_equal(d.task_sign, [-1.0, 1.0])
    mixed = df.copy()
    mixed.loc[0, "x_higher_is_better"] = True
    with pytest.raises(DataValidationError, match="'x_higher_is_better' mixes True and False"):
        prepare_design(mixed)
    within = df.copy()
    within.loc[0, "y_higher_is_better"] = False
    with pytest.raises(DataValidationError, match=r"mixes True and False within task\(s\) \['a'\]"):
        prepare_design(within)


def test_x_ref_must_be_finite():
    with pytest.raises(DataValidationError, match=r"x_ref must be a finite number.*got nan"):
        fit(x_ref=float("nan"))


# -- priors ----------------------------------------------------------------------------------

DEFAULTS = default_priors(0.5, 1.0, 0.1)


@pytest.mark.parametrize(
    "priors, match",
    [
        ({"slope": {"dist": "Normal", "mu": 0, "sigma": 1}}, r"(unknown prior 'slope'; priors can be set for \[|prior\(s\) \['slope'\] are not parameters of this model)"),
        ({"slope_mu": {"dist": "Gaussian", "mu": 0, "sigma": 1}}, r"prior 'slope_mu': distribution 'Gaussian' is not supported here; use one of \['Normal'"),
        ({"slope_sigma": {"dist": "Normal", "mu": 0, "sigma": 1}}, r"prior 'slope_sigma': distribution 'Normal' is not supported"),
        ({"corr": {"dist": "Normal"}}, r"prior 'corr': distribution 'Normal' is not supported here; use one of \['LKJ'\]"),
        ({"slope_mu": {"mu": 0, "sigma": 1}}, r"prior 'slope_mu' should be a dict like"),
        ({"slope_mu": 3.0}, r"prior 'slope_mu' should be a dict like"),
        ({"slope_mu": {"dist": "Normal", "mu": 0, "sigma": -1}}, r"prior 'slope_mu': .*'sigma'.*-1"),
        ({"sigma": {"dist": "HalfNormal", "sigma": 0}}, r"prior 'sigma': .*'sigma'.*0.*> 0"),
        ({"slope_sigma": {"dist": "Exponential", "lam": -2}}, r"prior 'slope_sigma': .*'lam'"),
        ({"slope_mu": {"dist": "Normal", "mu": "zero", "sigma": 1}}, r"parameter 'mu' must be a number, got 'zero'"),
        ({"slope_mu": {"dist": "Normal", "mu": 0, "scale": 1}}, r"prior 'slope_mu': invalid parameters"),
        ({"corr": {"dist": "LKJ", "eta": -1}}, r"prior 'corr': parameter 'eta' is -1.0 but must be > 0"),
        ({"sigma": {"dist": "Uniform", "lower": -1, "upper": 1}}, r"Uniform\(lower >= 0\), got lower=-1"),
    ],
)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # PyMC's check of sigma=0
def test_invalid_priors(priors, match):
    with pytest.raises(DataValidationError, match=match):
        resolve_priors(priors, DEFAULTS)
    with pytest.raises(DataValidationError, match=match):
        fit(priors=priors)


def test_priors_not_a_mapping():
    with pytest.raises(DataValidationError, match="priors must be a dict"):
        resolve_priors([("slope_mu", {})], DEFAULTS)


def test_user_prior_used_exactly_and_defaults_scaled():
    resolved = resolve_priors({"slope_mu": {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 10}},
                              DEFAULTS)
    assert resolved["slope_mu"] == {"dist": "StudentT", "nu": 3.0, "mu": 0.0, "sigma": 10.0}
    # Defaults are scaled to the data (y_mean 0.5, sd(x) 1, sd(y) 0.1; docs/model.md).
    assert resolved["intercept_mu"] == {"dist": "Normal", "mu": 0.5, "sigma": pytest.approx(0.25)}
    assert resolved["slope_sigma"] == {"dist": "HalfNormal", "sigma": pytest.approx(0.1)}
    d2 = default_priors(0.5, 4.0, 0.1)
    assert d2["slope_mu"]["sigma"] == pytest.approx(DEFAULTS["slope_mu"]["sigma"] / 4)


# -- sampler arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["draws", "chains"])
@pytest.mark.parametrize("value", [0, -5, 2.5, "100", True, None])
def test_draws_chains_positive_integers(name, value):
    with pytest.raises(DataValidationError, match=rf"{name} must be a positive integer, got {value!r}"):
        fit(**{name: value})


@pytest.mark.parametrize("value", [-1, 1.5, "10"])
def test_tune_non_negative_integer(value):
    with pytest.raises(DataValidationError, match=rf"tune must be a non-negative integer, got {value!r}"):
        SamplerConfig(tune=value)


def test_tune_zero_allowed():
    assert SamplerConfig(tune=0).tune == 0


@pytest.mark.parametrize("value", [0, 1, 1.2, -0.5, "0.9", True])
def test_invalid_target_accept(value):
    with pytest.raises(DataValidationError, match=rf"target_accept should be in \(0, 1\) but got {value!r}"):
        fit(target_accept=value)


def test_invalid_random_seed():
    with pytest.raises(DataValidationError, match=r"random_seed must be an integer or None, got 1.5"):
        fit(random_seed=1.5)


def test_unknown_sampler():
    with pytest.raises(
        DataValidationError,
        match=r"'stan' is not a supported sampler. Must be one of: \['pymc', 'nutpie'\]",
    ):
        fit(sampler="stan")


def test_unknown_parameterization():
    with pytest.raises(DataValidationError, match=r"parameterization should be one of .*'funnel'"):
        fit(parameterization="funnel")


# -- weak but valid data: fitted, flagged (design level; the fit is in test_result.py) -----------


def test_weak_tasks_are_flagged_not_rejected():
    df = good_frame()
    extra = pd.DataFrame({"task": ["one", "two", "two", "flat", "flat", "flat"],
                          "x": [3.0, 2.0, 4.0, 3.0, 3.0, 3.0],
                          "y": [0.5, 0.4, 0.6, 0.5, 0.6, 0.4]})
    with pytest.warns(bs.WeakDataWarning, match=r"3 task\(s\).*'flat' \(constant x\).*'one' \(1 point\).*'two' \(2 points\)"):
        d = prepare_design(pd.concat([df, extra], ignore_index=True))
    table = d.task_table()
    assert table.loc["one", "n"] == 1 and table.loc["two", "n"] == 2
    assert table.loc["flat", "x_range"] == 0.0 and table.loc["two", "x_range"] == 2.0
    assert table.loc["flat", "weak"] == "constant x"
    assert table.loc["a", "weak"] == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_design(pd.concat([df, extra], ignore_index=True), warn_weak=False)
