"""Task covariates (slope meta-regression): recovery, collapsed = full, every variant, bad input.

The simulation plants ``slope_mu_t = 0.3 + 0.5 z_t - 0.4 [kind_t = b]`` with residual slope
sd 0.3 (x ~ Normal(0, 1), noise sd 0.3, 30 tasks x 8 points): the reported effects per
covariate unit must recover 0.5 and -0.4 (and 0 for the intercept), the collapsed and the
full formulation must agree up to Monte Carlo error, and the fit must survive save/load.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import seed

import bayesslope as bs
from bayesslope import DataValidationError
from bayesslope.collapsed import (
    conditional_moments,
    draw_task_coefficients,
    task_marginal_loglik,
    task_sufficient_stats,
)
from bayesslope.covariates import covariate_row, prepare_covariates
from bayesslope.data import prepare_design
from bayesslope.model import ModelConfig, build_model
from bayesslope.resolve import _between_task_sd, model_priors
from bayesslope.variant_data import prepare_variants

N_TASKS, N_POINTS = 30, 8
SLOPE_Z, SLOPE_B, SLOPE_0, RESID_SD, NOISE = 0.5, -0.4, 0.3, 0.3, 0.3
FIT_KW = dict(x_better="higher", y_better="higher", draws=500, tune=500, chains=2, cores=1,
              check_dependence=False, task_covariates=["z", "kind"])


def simulate(k: int, n_tasks: int = N_TASKS, n_points: int = N_POINTS):
    """Frame with per-task covariates ``z`` (numeric) and ``kind`` (a / b), and the truth."""
    rng = np.random.default_rng(seed(k))
    z = rng.normal(size=n_tasks)
    kind = np.where(np.arange(n_tasks) % 3 == 0, "b", "a")
    mu = SLOPE_0 + SLOPE_Z * z + SLOPE_B * (kind == "b")
    slope = mu + RESID_SD * rng.normal(size=n_tasks)
    intercept = 0.2 * rng.normal(size=n_tasks)
    task = np.repeat(np.arange(n_tasks), n_points)
    x = rng.normal(size=task.size)
    y = intercept[task] + slope[task] * x + NOISE * rng.normal(size=task.size)
    df = pd.DataFrame({"task": [f"t{t:02d}" for t in task], "x": x, "y": y, "z": z[task],
                       "kind": kind[task]})
    r2 = 1.0 - np.var(slope - mu) / np.var(slope)
    return df, {"z": z, "kind": kind, "slope": slope, "mu": mu, "r2": r2}


@pytest.fixture(scope="module")
def data():
    return simulate(1)


@pytest.fixture(scope="module")
def fits(data):
    df, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        collapsed = bs.fit_hierarchical(df, formulation="collapsed", random_seed=seed(2),
                                        **FIT_KW)
        full = bs.fit_hierarchical(df, formulation="full", random_seed=seed(3), **FIT_KW)
    return {"collapsed": collapsed, "full": full}


# -- recovery and agreement ------------------------------------------------------------
@pytest.mark.parametrize("form", ["collapsed", "full"])
def test_recovers_planted_effects(fits, data, form):
    fit, (_, truth) = fits[form], data
    assert fit.formulation == form
    eff = fit.covariate_effects(ci_prob=0.9)
    assert list(eff.index) == [("z", "slope"), ("z", "intercept"), ("kind[b]", "slope"),
                               ("kind[b]", "intercept")]
    # Per covariate unit (z is standardized inside, reported per unit of z).
    for key, true in (((("z", "slope")), SLOPE_Z), (("kind[b]", "slope"), SLOPE_B),
                      (("z", "intercept"), 0.0), (("kind[b]", "intercept"), 0.0)):
        row = eff.loc[key]
        assert abs(row["mean"] - true) < 4 * row["sd"], (key, row["mean"], row["sd"])
    assert eff.loc[("kind[b]", "slope"), "unit"] == "b vs a"
    assert eff.loc[("z", "slope"), "covariate_sd"] == pytest.approx(np.std(truth["z"]))
    # slope_mu is the population mean at z = mean(z) in the reference level a.
    pop = fit.population()
    true_mu0 = SLOPE_0 + SLOPE_Z * np.mean(truth["z"])
    assert abs(pop.loc["slope_mu", "mean"] - true_mu0) < 4 * pop.loc["slope_mu", "sd"]
    assert abs(pop.loc["slope_sigma", "mean"] - RESID_SD) < 4 * pop.loc["slope_sigma", "sd"]
    r2 = fit.variance_explained(ci_prob=0.9)
    assert abs(r2.loc["slope", "mean"] - truth["r2"]) < 4 * r2.loc["slope", "sd"]
    assert r2.loc["slope", "eti90_lb"] < r2.loc["slope", "mean"] < r2.loc["slope", "eti90_ub"]


def test_collapsed_matches_full(fits):
    import arviz as az

    stats = []
    for form in ("collapsed", "full"):
        ds = fits[form].posterior["posterior"].to_dataset()
        out = {}
        for var in ("slope_beta", "intercept_beta", "slope_mu", "slope", "intercept"):
            da = ds[var]
            draws = da.values.reshape(-1, *da.shape[2:])
            out[var] = (draws.mean(0), az.mcse(ds[[var]])[var].values)
        stats.append(out)
    for var in stats[0]:
        (m1, e1), (m2, e2) = stats[0][var], stats[1][var]
        zs = (m1 - m2) / np.sqrt(e1**2 + e2**2)
        assert np.all(np.abs(zs) < 4), (var, zs)


def test_population_at_new_covariates(fits, data):
    fit = fits["collapsed"]
    _, truth = data
    post = fit.posterior["posterior"]
    low = fit.population(covariates={"z": -2.0, "kind": "b"})
    high = fit.population(covariates={"z": 2.0, "kind": "a"})
    # By definition: E[Phi(-(mu + z beta) / tau)] over the draws.
    from scipy.special import ndtr

    z_low = (-2.0 - np.mean(truth["z"])) / np.std(truth["z"])
    mu = (post["slope_mu"] + post["slope_beta"].sel(covariate="z") * z_low
          + post["slope_beta"].sel(covariate="kind[b]")).values
    expected = float(np.mean(ndtr(-mu / post["slope_sigma"].values)))
    assert low.loc["p_negative_new_task", "mean"] == pytest.approx(expected, rel=1e-9)
    assert low.loc["slope_mu_at_covariates", "mean"] == pytest.approx(mu.mean(), rel=1e-9)
    # Planted: mean slope 0.3 - 1.0 - 0.4 = -1.1 at z = -2, kind b; 1.3 at z = 2, kind a.
    assert low.loc["p_negative_new_task", "mean"] > 0.8
    assert high.loc["p_negative_new_task", "mean"] < 0.2
    assert low.attrs["covariates"] == {"z": -2.0, "kind": "b"}


def test_save_load_round_trip(fits, tmp_path):
    fit = fits["collapsed"]
    loaded = bs.load_fit(fit.to_netcdf(tmp_path / "cov.nc"))
    assert loaded.covariates.columns == ("z", "kind[b]")
    np.testing.assert_array_equal(loaded.covariates.matrix, fit.covariates.matrix)
    pd.testing.assert_frame_equal(loaded.covariate_effects(), fit.covariate_effects())
    pd.testing.assert_frame_equal(loaded.variance_explained(), fit.variance_explained())
    new = {"z": 0.5, "kind": "a"}
    pd.testing.assert_frame_equal(loaded.population(covariates=new),
                                  fit.population(covariates=new))


# -- the model's algebra ---------------------------------------------------------------
def _dense(stats_xy, mu_a, mu_b, sa, sb, rho, sigma):
    """Dense per-task marginal log density and conditional mean (scipy / numpy)."""
    from scipy.stats import multivariate_normal

    cov = np.array([[sa**2, rho * sa * sb], [rho * sa * sb, sb**2]])
    out_ll, out_mean = [], []
    for t, (x, y) in enumerate(stats_xy):
        X = np.column_stack([np.ones_like(x), x])
        m = np.array([mu_a[t], mu_b[t]])
        s2 = sigma[t] ** 2
        out_ll.append(multivariate_normal(X @ m, X @ cov @ X.T + s2 * np.eye(x.size)).logpdf(y))
        prec = np.linalg.inv(cov) + X.T @ X / s2
        out_mean.append(np.linalg.solve(prec, np.linalg.solve(cov, m) + X.T @ y / s2))
    return np.array(out_ll), np.array(out_mean)


def test_collapsed_algebra_with_per_task_means():
    rng = np.random.default_rng(seed(5))
    T = 5
    xs = [rng.normal(size=n) for n in (1, 3, 6, 9, 4)]
    ys = [rng.normal(size=x.size) for x in xs]
    idx = np.concatenate([np.full(x.size, t) for t, x in enumerate(xs)])
    stats = task_sufficient_stats(np.concatenate(xs), np.concatenate(ys), idx, T)
    mu_a, mu_b = rng.normal(size=T), rng.normal(size=T)
    sigma = rng.uniform(0.3, 0.8, size=T)  # per task too (per_task_sigma=True)
    args = (0.7, 0.4, 0.3, sigma)
    ll = task_marginal_loglik(stats, mu_a, mu_b, *args)
    mom = conditional_moments(stats, mu_a, mu_b, *args)
    ll_dense, mean_dense = _dense(list(zip(xs, ys, strict=True)), mu_a, mu_b, *args)
    np.testing.assert_allclose(ll, ll_dense, rtol=1e-10)
    np.testing.assert_allclose(mom.mean_a, mean_dense[:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mom.mean_b, mean_dense[:, 1], rtol=1e-9, atol=1e-12)
    # The exact draws take per-task means of shape (chain, draw, T).
    params = {"intercept_mu": np.broadcast_to(mu_a, (1, 4000, T)),
              "slope_mu": np.broadcast_to(mu_b, (1, 4000, T)),
              "intercept_sigma": np.full((1, 4000), 0.7), "slope_sigma": np.full((1, 4000), 0.4),
              "corr": np.full((1, 4000), 0.3), "sigma": np.broadcast_to(sigma, (1, 4000, T))}
    _, b = draw_task_coefficients(np.random.default_rng(seed(6)), stats, params)
    se = np.sqrt(mom.var_b / 4000)
    assert np.all(np.abs(b[0].mean(0) - mom.mean_b) < 5 * se)


@pytest.mark.parametrize("variant", [
    {},
    {"likelihood": "student_t"},
    {"n_eval": 200, "chance": 0.25, "lapse": True},
    {"condition": "cond", "group": "family"},
    {"per_task_sigma": "pooled"},
    {"shape": "hockey_stick"},
])
def test_full_model_means_are_linear_in_covariates(variant):
    """In every variant, coefficient offsets 0 give intercept/slope = mu + Z beta exactly."""
    df, _ = simulate(7, n_tasks=6, n_points=6)
    df["y"] = np.round(np.clip(0.6 + 0.1 * df["y"], 0.3, 0.95) * 200) / 200
    df["cond"] = np.tile(["c0", "c1"], len(df) // 2)
    df["family"] = np.tile(["f0", "f1", "f2"], len(df) // 3)
    variant = dict(variant)
    pooled = variant.pop("per_task_sigma", False)
    shape = variant.pop("shape", "linear")
    design = prepare_design(df, x_better="higher", y_better="higher", warn_weak=False)
    v = prepare_variants(df, design, **variant)
    cov = prepare_covariates(["z", "kind"], df, design)
    priors = model_priors(None, design, v, per_task_sigma=pooled, shape=shape, covariates=cov)
    config = ModelConfig(priors=priors, per_task_sigma=pooled, shape=shape,
                         centered_tasks=(False,) * 6,
                         centered_log_sigma=(False,) * 6 if pooled == "pooled" else ())
    model = build_model(design, config, v, cov)
    assert model.named_vars_to_dims["slope_beta"] == ("covariate",)
    point = model.initial_point()
    rng = np.random.default_rng(seed(8))
    point = {k: (np.zeros_like(val) if k == "coef_offset"
                 else val + 0.3 * rng.standard_normal(np.shape(val))) for k, val in point.items()}
    outs = model.replace_rvs_by_values([model[n] for n in (
        "intercept", "slope", "intercept_mu", "slope_mu", "intercept_beta", "slope_beta")])
    a, b, mu_a, mu_b, beta_a, beta_b = model.compile_fn(
        outs, inputs=model.value_vars, on_unused_input="ignore")(point)
    np.testing.assert_allclose(a, mu_a + cov.matrix @ beta_a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, mu_b + cov.matrix @ beta_b, rtol=1e-10, atol=1e-12)


def test_parameterization_uses_residual_spread():
    """With covariates the moment estimate of tau is the spread around the regression."""
    rng = np.random.default_rng(seed(9))
    z = rng.normal(size=(40, 1))
    est = 2.0 * z[:, 0] + 0.1 * rng.normal(size=40)
    se = np.full(40, 0.1)
    raw = _between_task_sd(est, se)
    resid = _between_task_sd(est, se, z)
    assert raw > 1.0  # the raw spread holds the covariate's 2.0 * sd(z)
    assert resid < 0.15  # residual sd about 0: se and noise are both 0.1


# -- bad input -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    df, _ = simulate(4, n_tasks=5, n_points=4)
    design = prepare_design(df, x_better="higher", y_better="higher", warn_weak=False)
    return df, design


def _table(df):
    return df.groupby("task")[["z", "kind"]].first()


def test_columns_and_table_give_the_same_design(small):
    df, design = small
    a = prepare_covariates(["z", "kind"], df, design)
    b = prepare_covariates(_table(df).iloc[::-1], df, design)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert a.columns == ("z", "kind[b]") and a.levels == {"kind": ["a", "b"]}
    np.testing.assert_allclose(a.matrix[:, 0].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(a.matrix[:, 0].std(), 1.0)


def test_categorical_order_sets_the_reference(small):
    df, design = small
    df = df.assign(kind=pd.Categorical(df["kind"], categories=["b", "a"]))
    cov = prepare_covariates(["kind"], df, design)
    assert cov.columns == ("kind[a]",) and cov.units() == ["a vs b"]


def test_varying_within_task(small):
    df, design = small
    df = df.copy()
    df.loc[df.index[1], "z"] = 99.0
    with pytest.raises(DataValidationError, match=r"'z' varies within task 't00'.*99\.0"):
        prepare_covariates(["z"], df, design)


def test_nan_covariate(small):
    df, design = small
    df = df.copy()
    df.loc[df["task"] == "t02", "z"] = np.nan
    with pytest.raises(DataValidationError, match=r"'z' has missing values.*'t02'"):
        prepare_covariates(["z"], df, design)
    table = _table(df)
    with pytest.raises(DataValidationError, match=r"'z' has missing values.*'t02'"):
        prepare_covariates(table, df, design)


def test_constant_covariate(small):
    df, design = small
    with pytest.raises(DataValidationError, match=r"'c' is equal for all tasks \(1\.5\)"):
        prepare_covariates(["c"], df.assign(c=1.5), design)
    with pytest.raises(DataValidationError, match=r"'k' is equal for all tasks \('u'\)"):
        prepare_covariates(["k"], df.assign(k="u"), design)


def test_table_missing_a_task(small):
    df, design = small
    with pytest.raises(DataValidationError, match=r"no row for task\(s\) 't03'"):
        prepare_covariates(_table(df).drop(index="t03"), df, design)
    table = pd.concat([_table(df), _table(df).iloc[:1]])
    with pytest.raises(DataValidationError, match=r"lists task\(s\) 't00' more than once"):
        prepare_covariates(table, df, design)


def test_too_many_covariates(small):
    df, design = small
    extra = {f"c{j}": df["task"].map({t: (k + 1) ** (j + 1) for k, t in enumerate(design.tasks)})
             for j in range(4)}
    with pytest.raises(DataValidationError, match=r"5 covariate column\(s\).*for 5 tasks.*at "
                       r"most 4"):
        prepare_covariates(["z", *extra], df.assign(**extra), design)


def test_collinear_covariates(small):
    df, design = small
    with pytest.raises(DataValidationError, match=r"'z2' is a linear combination"):
        prepare_covariates(["z", "z2"], df.assign(z2=2 * df["z"] + 1), design)


def test_unknown_column_and_wrong_type(small):
    df, design = small
    with pytest.raises(DataValidationError, match=r"\['nope'\] not in the frame"):
        prepare_covariates(["nope"], df, design)
    with pytest.raises(DataValidationError, match="DataFrame indexed by task or a list"):
        prepare_covariates(3, df, design)
    with pytest.raises(DataValidationError, match="is the x, y or task column"):
        prepare_covariates(["x"], df, design)


def test_new_task_covariates_checked(small):
    df, design = small
    cov = prepare_covariates(["z", "kind"], df, design)
    with pytest.raises(DataValidationError, match=r"missing \['kind'\]"):
        covariate_row(cov, {"z": 1.0})
    with pytest.raises(DataValidationError, match=r"kind='c' is not a level"):
        covariate_row(cov, {"z": 1.0, "kind": "c"})
    with pytest.raises(DataValidationError, match="z is numeric"):
        covariate_row(cov, {"z": "high", "kind": "a"})
    assert covariate_row(cov, {"z": cov.center[0], "kind": "b"}).tolist() == [0.0, 1.0]


def test_fit_refuses_bad_covariates_before_sampling(small):
    df, _ = small
    with pytest.raises(DataValidationError, match="varies within task"):
        bs.fit_hierarchical(df.assign(v=np.arange(len(df))), x_better="higher",
                            task_covariates=["v"], check_dependence=False)
    with pytest.raises(DataValidationError, match="not parameters of this model"):
        bs.fit_hierarchical(df, x_better="higher", check_dependence=False,
                            priors={"slope_beta": {"dist": "Normal", "mu": 0, "sigma": 1}})


def test_fit_without_covariates_refuses_covariate_methods(fits):
    # Reuse a fit's machinery on a spec without covariates: the methods say what is missing.
    import dataclasses

    fit = fits["collapsed"]
    spec = {k: v for k, v in fit.spec.items() if k != "covariates"}
    bare = dataclasses.replace(fit, spec=spec)
    with pytest.raises(DataValidationError, match="no task covariates"):
        bare.covariate_effects()
    with pytest.raises(DataValidationError, match="needs a fit with task_covariates"):
        bare.population(covariates={"z": 1.0})


# -- new tasks predicted from their covariates ----------------------------------------
def test_predict_new_task_centers_on_covariate_population_line(fits, data):
    """A new task at (z, kind) is predicted around the planted line slope 0.3 + 0.5 z -
    0.4 [b] (intercept 0): its mean curve's slope and level match the truth and the fit's
    own ``population(covariates=)``, within their posterior sd plus Monte Carlo error."""
    fit = fits["collapsed"]
    _, truth = data
    zbar = float(np.mean(truth["z"]))
    for label, z, kind in (("new_hi", 2.0, "a"), ("new_lo", -2.0, "b")):
        new = pd.DataFrame({"task": label, "x": [0.0, 1.0], "z": z, "kind": kind})
        pred = fit.predict(new, kind="mean", random_seed=seed(11))
        assert pred["new_task"].all()
        slope = pred["mean"].iloc[1] - pred["mean"].iloc[0]
        pop = fit.population(covariates={"z": z, "kind": kind})
        row = pop.loc["slope_mu_at_covariates"]
        n = fit.posterior["posterior"].sizes["chain"] * fit.posterior["posterior"].sizes["draw"]
        slope_sd = float(pop.loc["slope_sigma", "mean"])
        mc = 4 * np.sqrt(2) * (slope_sd + 0.3) / np.sqrt(n)  # new-task draws' MC error
        assert abs(slope - row["mean"]) < mc
        true_slope = SLOPE_0 + SLOPE_Z * z + SLOPE_B * (kind == "b")
        assert abs(slope - true_slope) < 4 * row["sd"] + mc, (label, slope, true_slope)
        # The level at x = 0 is the intercept population mean (planted 0).
        assert abs(pred["mean"].iloc[0]) < 4 * pop.loc["intercept_mu_at_covariates", "sd"] + mc
    # Without covariates in the frame a new task is refused, naming the columns.
    with pytest.raises(DataValidationError, match=r"needs column\(s\) \['kind'\]"):
        fit.predict(pd.DataFrame({"task": "new", "x": [0.0], "z": 1.0}))
    # Fitted tasks need no covariate columns.
    known = fit.predict(pd.DataFrame({"task": ["t00"], "x": [0.5]}), random_seed=seed(12))
    assert not known["new_task"].any()
    # Z ~= zbar, reference level: the population mean at its own center.
    mid = fit.predict(pd.DataFrame({"task": "mid", "x": [0.0, 1.0], "z": zbar, "kind": "a"}),
                      random_seed=seed(13))
    assert abs((mid["mean"].iloc[1] - mid["mean"].iloc[0])
               - fit.population().loc["slope_mu", "mean"]) < 0.05


@pytest.mark.parametrize("frame, match", [
    ({"task": "new", "x": [0.0, 1.0], "z": [np.nan, np.nan], "kind": "a"},
     r"new task 'new': covariate column 'z' has missing values"),
    ({"task": "new", "x": [0.0, 1.0], "z": [1.0, 2.0], "kind": "a"},
     r"new task 'new': covariate column 'z' varies within the task"),
    ({"task": "new", "x": [0.0], "z": [1.0], "kind": "c"},
     r"new task 'new': covariates: kind='c' is not a level"),
])
def test_predict_new_task_bad_covariates_named(fits, frame, match):
    with pytest.raises(DataValidationError, match=match):
        fits["collapsed"].predict(pd.DataFrame(frame))


def test_plot_population_at_covariates(fits):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fit = fits["collapsed"]
    levels = {"low z, b": {"z": -2.0, "kind": "b"}, "high z, a": {"z": 2.0, "kind": "a"}}
    fig = fit.plot_population(covariates=levels)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for name, values in levels.items():
        p = fit.population(covariates=values).loc["p_negative_new_task", "mean"]
        shown = f"= {p:.3f}" if p >= 0.001 else "< 0.001"
        assert any(lab.startswith(f"{name}: ") and lab.endswith(shown) for lab in labels), labels
    # Each curve is a density whose mode lies near its covariate-implied mean slope.
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) > 100]
    assert len(curves) == 2
    for line, values in zip(curves, levels.values(), strict=True):
        x, y = line.get_xdata(), line.get_ydata()
        mu = fit.population(covariates=values).loc["slope_mu_at_covariates", "mean"]
        assert abs(x[np.argmax(y)] - mu) < 0.15
        assert abs(np.trapezoid(y, x) - 1) < 0.02
    plt.close(fig)
    single = fit.plot_population(covariates={"z": 0.0, "kind": "a"})
    assert "z=0.0, kind=a" in single.axes[0].get_legend().get_texts()[0].get_text()
    plt.close(single)
    with pytest.raises(DataValidationError, match="missing"):
        fit.plot_population(covariates={"z": 0.0})


# -- docs/task_covariates.md quotes docs/task_covariates.json ---------------------------
def test_docs_page_tables_match_their_record():
    """After a rerun of docs/scripts/task_covariates_real.py the page must be updated too."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rec = json.loads((root / "docs" / "task_covariates.json").read_text(encoding="utf-8"))
    page = (root / "docs" / "task_covariates.md").read_text(encoding="utf-8")
    oc = rec["openclip"]
    effects = {r["covariate"]: r for r in oc["covariate_effects"] if r["parameter"] == "slope"}
    for key, level in oc["new_task_by_level"].items():
        group = key.split("=", 1)[1]
        lo, hi = level["slope_mu_eti90"]
        row = next(line for line in page.splitlines() if line.startswith(f"| {group} |"))
        row = row.replace("**", "")  # bold marks the notable group
        assert f"| {level['slope_mu_mean']:.3f} [{lo:.3f}, {hi:.3f}] | " in row, row
        assert f"| {level['p_negative_new_task']:.3f} |" in row, row
        eff = effects.get(f"task_group[{group}]")
        if eff is not None:
            diff = f"| {eff['mean']:+.3f} [{eff['eti90_lb']:.3f}, {eff['eti90_ub']:.3f}] | "
            assert diff in row and f"| {eff['p_positive']:.2f}" in row, (row, diff)
    for part, covs in (("shots", "shots"), ("shots_paired", "shots, base task")):
        r = rec[part]
        eff = (r["covariate_effects"] if part == "shots" else r["shots_effect"])[0]
        r2 = r["variance_explained"][0]
        row = (f"| `{part}` | {covs} | {eff['mean']:+.3f} [{eff['eti90_lb']:.3f}, "
               f"{eff['eti90_ub']:.3f}] | {eff['p_positive']:.2f} | {r2['mean']:.2f} "
               f"[{r2['eti90_lb']:.2f}, {r2['eti90_ub']:.2f}] |")
        assert row in page, row
    ind = rec["mmlu_independent"]
    assert len(rec["mmlu"]["negative_tasks"]) == 0 and len(rec["mmlu"]["naive_list"]) == 0
    assert (f"| {len(ind['negative_tasks'])} (expected false-sign rate "
            f"{ind['negative_tasks'][-1]['expected_false_sign_rate']:.3f}) | "
            f"{len(ind['naive_list'])} (mean 1 - P = {ind['naive_expected_false_sign_rate']:.3f}) |"
            ) in page
