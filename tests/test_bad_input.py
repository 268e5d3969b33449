# Long lines below are regular expressions matched against whole messages.
# ruff: noqa: E501
"""Issue 14: the bad or edge inputs that used to pass silently or crash deep inside PyMC.

Each case is refused with a DataValidationError (or, for valid but suspicious data,
fitted and warned about) by a message that names what is wrong. Nothing here samples:
every check runs before a model is built (the CLI tests stub out the fit to prove it).
"""

from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import seed

import bayesslope as bs
from bayesslope import DataValidationError
from bayesslope.cli import REPORT_FILES, main
from bayesslope.data import prepare_design
from bayesslope.priors import (
    PARAMETERIZATIONS,
    check_prior_spec,
    create_prior_variable,
    default_priors,
    resolve_priors,
)
from bayesslope.variant_data import prepare_variants


def frame(n: int = 6, tasks=("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(seed(0))
    return pd.DataFrame({
        "task": np.repeat(list(tasks), n).astype(object),
        "x": np.tile(np.linspace(2.0, 4.0, n), len(tasks)),
        "y": rng.uniform(0.3, 0.7, n * len(tasks)),
    })


def fit(df=None, **kw):
    """fit_hierarchical, expected to raise before sampling."""
    return bs.fit_hierarchical(frame() if df is None else df, **kw)


# -- priors: parameter names checked against the distribution's own -----------------------

DEFAULTS = default_priors(0.5, 1.0, 0.1)


@pytest.mark.parametrize(
    "name, spec, match",
    [
        ("slope_mu", {"dist": "Normal", "mu": 0, "sd": 10},
         r"prior 'slope_mu': .*Normal has no parameter 'sd'; Normal takes \(mu, sigma\) or \(mu, tau\) \(accepted names: \['mu', 'sigma', 'tau'\]\)"),
        ("slope_mu", {"dist": "Normal", "mu": 0},
         r"prior 'slope_mu': .*missing parameter\(s\) \['sigma'\]; Normal takes \(mu, sigma\) or \(mu, tau\)"),
        ("intercept_mu", {"dist": "Normal", "sigma": 1},
         r"prior 'intercept_mu': .*missing parameter\(s\) \['mu'\]"),
        ("slope_sigma", {"dist": "HalfNormal"},
         r"prior 'slope_sigma': .*missing parameter\(s\) \['sigma'\]; HalfNormal takes \(sigma\) or \(tau\)"),
        ("slope_sigma", {"dist": "Gamma", "alpha": 2},
         r"prior 'slope_sigma': .*missing parameter\(s\) \['beta'\]; Gamma takes \(alpha, beta\) or \(mu, sigma\)"),
        ("slope_mu", {"dist": "Normal", "mu": 0, "sigma": 1, "tau": 1},
         r"prior 'slope_mu': .*mix two parameterizations"),
        ("slope_mu", {"dist": "StudentT", "mu": 0, "sigma": 1, "df": 3},
         r"prior 'slope_mu': .*StudentT has no parameter 'df'"),
        ("slope_mu", {"dist": "Normal", "mu": 0, "sigma": float("inf")},
         r"prior 'slope_mu': parameter 'sigma' must be a finite number"),
        ("slope_mu", {"dist": "Normal", "mu": True, "sigma": 1},
         r"prior 'slope_mu': parameter 'mu' must be a number, got True"),
        ("sigma", {"dist": "Uniform", "lower": 0.5, "upper": 0.1},
         r"prior 'sigma': Uniform needs lower < upper"),
        ("corr", {"dist": "LKJ"}, r"prior 'corr': .*missing parameter\(s\) \['eta'\]"),
    ],
)
def test_prior_parameter_names_are_checked(name, spec, match):
    with pytest.raises(DataValidationError, match=match):
        resolve_priors({name: spec}, DEFAULTS)


@pytest.mark.parametrize("spec, match", [
    ({"dist": "Normal", "mu": 0, "sd": 10}, r"prior 'slope_mu': .*no parameter 'sd'"),
    ({"dist": "Normal", "mu": 0}, r"prior 'slope_mu': .*missing parameter\(s\) \['sigma'\]"),
])
def test_misspelt_prior_refused_by_fit_hierarchical(spec, match):
    """The case of the issue: both used to fit with PyMC's default sigma = 1."""
    with pytest.raises(DataValidationError, match=match):
        fit(priors={"slope_mu": spec})
    with pytest.raises(DataValidationError, match=match):  # the full (variant) model too
        fit(priors={"slope_mu": spec}, likelihood="student_t")


def test_variant_prior_parameter_names_are_checked():
    with pytest.raises(DataValidationError, match=r"prior 'nu': .*Gamma has no parameter 'shape'"):
        fit(likelihood="student_t", priors={"nu": {"dist": "Gamma", "shape": 2, "beta": 0.1}})


def test_check_prior_spec_is_reusable_with_allowed_dists():
    """The transfer matrix can call it with its own distributions (documented API)."""
    assert check_prior_spec("slope_mu", {"dist": "Normal", "mu": 0, "sigma": 10},
                            allowed_dists=("Normal",)) == {"dist": "Normal", "mu": 0.0, "sigma": 10.0}
    with pytest.raises(DataValidationError,
                       match=r"prior 'slope_mu': distribution 'StudentT' is not supported here; use one of \['Normal'\]"):
        check_prior_spec("slope_mu", {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 1},
                         allowed_dists=("Normal",))
    with pytest.raises(DataValidationError, match=r"prior 'slope_mu' should be a dict like"):
        check_prior_spec("slope_mu", 5)


def test_parameterization_table_matches_pymc():
    """Every parameter name of the table is a keyword of the installed PyMC distribution."""
    import pymc as pm

    for dist, forms in PARAMETERIZATIONS.items():
        if dist == "LKJ":
            dist = "LKJCholeskyCov"
        keywords = set(inspect.signature(getattr(pm, dist).dist).parameters)
        for form in forms:
            assert set(form) <= keywords, (dist, form, keywords)


@pytest.mark.parametrize("spec, frozen", [
    ({"dist": "Normal", "mu": 1.0, "sigma": 10.0}, ("norm", dict(loc=1.0, scale=10.0))),
    ({"dist": "Normal", "mu": 1.0, "tau": 0.25}, ("norm", dict(loc=1.0, scale=2.0))),
    ({"dist": "HalfNormal", "sigma": 3.0}, ("halfnorm", dict(scale=3.0))),
    ({"dist": "Gamma", "mu": 2.0, "sigma": 1.0}, ("gamma", dict(a=4.0, scale=0.5))),
])
def test_accepted_prior_is_the_density_pymc_builds(spec, frozen):
    """A prior that passes the check is used exactly: PyMC's log density equals scipy's."""
    import pymc as pm
    from scipy import stats

    spec = check_prior_spec("p", spec)
    with pm.Model() as model:
        create_prior_variable("p", spec)
    value = 1.7
    expected = getattr(stats, frozen[0])(**frozen[1]).logpdf(value)
    assert float(pm.logp(model["p"], value).eval()) == pytest.approx(expected, rel=1e-6)


# -- labels that differ but read the same ------------------------------------------------


def test_task_labels_int_and_str_collide():
    df = frame()
    df["task"] = [1] * 6 + ["1"] * 6
    with pytest.raises(DataValidationError, match=r"column 'task' has distinct labels that read the same as text, e\.g\. \[\[1, '1'\]\]"):
        fit(df)


@pytest.mark.parametrize("role", ["condition", "group"])
def test_condition_and_group_labels_collide(role):
    df = frame()
    df["level"] = [1, "1"] * 6
    with pytest.raises(DataValidationError, match=r"column 'level' has distinct labels that read the same as text, e\.g\. \[\[1, '1'\]\]"):
        fit(df, **{role: "level"})


def test_labels_of_one_type_do_not_collide():
    df = frame(tasks=(1, 2, 10))
    assert prepare_design(df).tasks == ("1", "10", "2")


# -- exact duplicate rows: fitted, counted in a warning -------------------------------------


def test_duplicate_rows_are_fitted_and_counted():
    df = frame()
    doubled = pd.concat([df, df], ignore_index=True)
    with pytest.warns(bs.DuplicateRowsWarning, match=r"12 of 24 rows exactly repeat an earlier row \(rows \[12, 13, .*\(and 2 more\)\); each is fitted as a separate observation"):
        design = prepare_design(doubled)
    assert design.n_obs == 24
    assert issubclass(bs.DuplicateRowsWarning, UserWarning)


def test_rows_that_differ_in_another_column_are_not_duplicates():
    df = frame()
    doubled = pd.concat([df.assign(run=0), df.assign(run=1)], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.DuplicateRowsWarning)
        assert prepare_design(doubled).n_obs == 24


# -- boolean columns -----------------------------------------------------------------------


@pytest.mark.parametrize("column", ["x", "y"])
@pytest.mark.parametrize("as_object", [False, True])
def test_boolean_score_column_refused(column, as_object):
    df = frame()
    df[column] = np.arange(12) % 2 == 0
    if as_object:
        df[column] = df[column].astype(object)
    with pytest.raises(DataValidationError, match=rf"column '{column}' \({column}\) is boolean \(True/False\), not numbers; if 0/1 is meant, pass numbers: df\['{column}'\] = df\['{column}'\]\.astype\(float\)"):
        fit(df)


@pytest.mark.parametrize("role, extra", [
    ("n_eval", {"likelihood": "binomial"}),
    ("chance", {"link": "probit"}),
    ("x_se", {}),
])
def test_boolean_variant_column_refused(role, extra):
    df = frame()
    df["flag"] = True
    with pytest.raises(DataValidationError, match=rf"column 'flag' \({role}\) is boolean"):
        fit(df, **{role: "flag"}, **extra)


# -- chance floor ----------------------------------------------------------------------------


def test_every_score_below_chance_refused():
    """The issue's case: chance=0.9 with every accuracy between 0.2 and 0.5."""
    df = frame()
    df["y"] = np.linspace(0.2, 0.5, 12)
    with pytest.raises(DataValidationError, match=r"every score of 'y' \(12 rows\) lies below its chance floor \(chance=0\.9\)"):
        fit(df, chance=0.9)


def test_task_entirely_below_chance_refused():
    df = frame(tasks=("a", "b", "c"))
    df["chance"] = np.where(df["task"] == "b", 0.8, 0.1)
    with pytest.raises(DataValidationError, match=r"every score of task\(s\) \['b'\] lies below its chance floor \(chance column 'chance'; e\.g\. in 'b' the highest score is .* < chance 0\.8\)"):
        fit(df, chance="chance")


def test_scores_below_chance_named_in_a_warning():
    df = frame(tasks=("a", "b", "c"))
    df["y"] = np.r_[[0.1, 0.2, 0.25, 0.4, 0.5, 0.6], [0.29, 0.4, 0.5, 0.6, 0.7, 0.8],
                    np.linspace(0.5, 0.9, 6)]
    design = prepare_design(df)
    with pytest.warns(bs.BelowChanceWarning, match=r"4 of 18 scores of 'y' lie below their chance floor \(chance=0\.3\) in 2 task\(s\): 'a' \(3 of 6\), 'b' \(1 of 6\)\."):
        v = prepare_variants(df, design, chance=0.3)
    np.testing.assert_array_equal(v.chance, 0.3)


def test_scores_at_or_above_chance_give_no_warning():
    df = frame()
    design = prepare_design(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.BelowChanceWarning)
        prepare_variants(df, design, chance=float(df["y"].min()))


# -- overflow and x_ref --------------------------------------------------------------------


@pytest.mark.parametrize("column", ["x", "y"])
def test_overflowing_values_named(column):
    df = frame()
    df[column] = df[column] * 1e300
    with pytest.raises(DataValidationError, match=rf"column '{column}': values overflow \(largest \|value\| .*e\+\d+ at rows \[0, 1, "):
        fit(df)


@pytest.mark.parametrize("x_ref", ["abc", "3.0", [1.0], True])
def test_x_ref_not_a_number(x_ref):
    with pytest.raises(DataValidationError, match=r"x_ref must be a finite number \(a value of 'x'\) or None, got"):
        fit(x_ref=x_ref)


def test_x_ref_numpy_number_accepted():
    assert prepare_design(frame(), x_ref=np.float32(3.0)).x_ref == 3.0


# -- many weak tasks: the warning names at most 10 -------------------------------------------


def test_weak_data_warning_names_at_most_ten():
    rng = np.random.default_rng(seed(1))
    weak = pd.DataFrame({"task": [f"w{k:03d}" for k in range(500)], "x": rng.uniform(size=500),
                         "y": rng.uniform(size=500)})
    strong = frame(n=10)
    df = pd.concat([weak, strong], ignore_index=True)
    with pytest.warns(bs.WeakDataWarning) as record:
        prepare_design(df)
    message = str(record[0].message)
    assert message.startswith("500 task(s) have data that barely inform their own slope: 'w000' (1 point);")
    assert "; and 490 more." in message
    assert message.count("(1 point)") == 10
    assert len(message) < 600


# -- command line: checked before any fitting, one line on stderr, exit 2 ---------------------


@pytest.fixture
def no_fitting(monkeypatch):
    """Make any fit fail loudly, so a test proves the CLI refused before fitting."""
    class Fitted(Exception):
        pass

    def boom(*args, **kwargs):
        raise Fitted("fit_hierarchical was called")

    monkeypatch.setattr(bs, "fit_hierarchical", boom, raising=False)
    return Fitted


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.search(match, err), err


@pytest.mark.parametrize("argv, match", [
    (["demo", "--draws", "0"], r"^bayesslope demo: error: argument --draws: must be a positive integer, got '0'$"),
    (["demo", "--tune", "-5"], r"argument --tune: must be a non-negative integer, got '-5'"),
    (["demo", "--chains", "two"], r"argument --chains: must be a positive integer, got 'two'"),
    (["demo", "--seed", "1.5"], r"argument --seed: must be a non-negative integer, got '1\.5'"),
    (["frob"], r"^bayesslope: error: argument command: invalid choice: 'frob'"),
    (["fit", "--out", "o"], r"^bayesslope fit: error: the following arguments are required: data$"),
])
def test_cli_bad_arguments(capsys, no_fitting, argv, match):
    _one_line_error(capsys, argv, match)


def test_cli_out_is_an_existing_file(capsys, no_fitting, tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("keep")
    _one_line_error(capsys, ["demo", "--out", str(target)],
                    r"^bayesslope demo: error: --out '.*results\.txt' is an existing file, not a folder")
    assert target.read_text() == "keep"


def test_cli_existing_report_not_overwritten(capsys, no_fitting, tmp_path):
    (tmp_path / "summary.csv").write_text("keep")
    _one_line_error(capsys, ["demo", "--out", str(tmp_path)],
                    r"already holds a report \(summary\.csv\); pass --overwrite to replace it")
    assert (tmp_path / "summary.csv").read_text() == "keep"
    # With --overwrite the checks pass and the fit starts (stubbed here).
    with pytest.raises(no_fitting):
        main(["demo", "--out", str(tmp_path), "--overwrite", "--draws", "10"])
    assert "summary.csv" in REPORT_FILES


def test_cli_missing_and_unreadable_data_file(capsys, no_fitting, tmp_path):
    _one_line_error(capsys, ["fit", str(tmp_path / "nothere.csv"), "--out", str(tmp_path / "o")],
                    r"^bayesslope fit: error: data file '.*nothere\.csv' does not exist$")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _one_line_error(capsys, ["fit", str(empty), "--out", str(tmp_path / "o")],
                    r"^bayesslope fit: error: cannot read '.*empty\.csv' as CSV: ")
    _one_line_error(capsys, ["fit", str(tmp_path), "--out", str(tmp_path / "o")],
                    r"is not a file$")


def test_cli_data_error_is_one_line(capsys, tmp_path):
    """fit_hierarchical's DataValidationError (raised before sampling) is one line, exit 2."""
    path = tmp_path / "data.csv"
    frame().rename(columns={"y": "acc"}).to_csv(path, index=False)
    _one_line_error(capsys, ["fit", str(path), "--out", str(tmp_path / "o")],
                    r"^bayesslope fit: error: missing column\(s\) \['y'\]; the frame has columns")
