"""shape="hockey_stick", linearity_check and the predictive checks (issue 15).

One module-scoped linearity_check (two shapes, two small fits) on simulated data with
two straight-line tasks and two hockey-stick tasks of known threshold serves the
recovery, verdict, plot and LOO-PIT tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FIT_KW, seed

import bayesslope as bs
from bayesslope.data import prepare_design
from bayesslope.likelihoods import log_likelihood_draws, smooth_hinge
from bayesslope.model import ModelConfig, build_model, posterior_var_names
from bayesslope.resolve import model_priors
from bayesslope.variant_data import prepare_variants

N_POINTS = 20
X_GRID = np.linspace(1.0, 6.0, N_POINTS)  # a loss: lower is better
TRUE_X0 = {"hs0": 3.2, "hs1": 4.0}  # hockey-stick tasks: flat for x > x0, rising below
SLOPE = 0.6  # oriented slope past the threshold (and of the straight-line tasks / 2)
NOISE = 0.05


def _simulate(k: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed(k))
    rows = []
    for name in ("lin0", "lin1", "hs0", "hs1"):
        if name in TRUE_X0:
            mean = 1.0 + SLOPE * np.maximum(TRUE_X0[name] - X_GRID, 0.0)
        else:
            mean = 1.0 + 0.5 * SLOPE * (3.5 - X_GRID)
        y = mean + NOISE * rng.standard_normal(N_POINTS)
        rows += [{"task": name, "x": xi, "y": yi} for xi, yi in zip(X_GRID, y, strict=True)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def check():
    df = _simulate(150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sampling warnings of short test chains
        return bs.linearity_check(df, shapes=("linear", "hockey_stick"), rope=0.01,
                                  random_seed=seed(151), check_dependence=False, **FIT_KW)


def test_hockey_stick_recovers_threshold(check):
    # Truth inside the 90% interval widened by half its width on each side (about a
    # 99.9% interval for a Gaussian posterior): a miss is a real failure, not 1 in 10.
    post = check.fits["hockey_stick"].posterior["posterior"]["x0"]
    for task, x0 in TRUE_X0.items():
        draws = post.sel(task=task).values.ravel()
        lo, hi = np.quantile(draws, [0.05, 0.95])
        half = (hi - lo) / 2
        assert lo - half < x0 < hi + half, (task, x0, lo, hi)
        assert hi - lo < 0.25 * (X_GRID[-1] - X_GRID[0])  # informative, not the prior


def test_verdicts_name_the_true_shape(check):
    table = check.table()
    assert list(table.loc[["lin0", "lin1"], "verdict"]) == ["linear", "linear"]
    assert list(table.loc[["hs0", "hs1"], "verdict"]) == ["hockey_stick", "hockey_stick"]
    hs = table.loc[["hs0", "hs1"]]
    assert (hs["elpd_diff"] < -2 * hs["elpd_diff_se"]).all()
    # the data tell a clear kink from the line; a line is never ruled out on a line
    assert not hs["tied"].str.contains("linear").any()
    assert table.loc[["lin0", "lin1"], "tied"].str.split("|").map(lambda t: "linear" in t).all()
    assert (table["tied"].str.split("|").str[0] == table["best"]).all()
    # where the straight line holds: the whole range for linear tasks; below the
    # threshold (lower x is better) for the hockey-stick tasks
    assert (table.loc[["lin0", "lin1"], "linear_x_lo"] == X_GRID[0]).all()
    assert (table.loc[["lin0", "lin1"], "linear_x_hi"] == X_GRID[-1]).all()
    for task, x0 in TRUE_X0.items():
        assert table.loc[task, "linear_x_lo"] == X_GRID[0]
        assert table.loc[task, "linear_x_hi"] < x0 + 0.5


def test_small_elpd_differences_are_ties():
    """Within 2 se or 4 elpd of the best, a shape is not ruled out (Sivula et al. 2022)."""
    from bayesslope.linearity import _indistinguishable

    diff = np.array([-0.3, -3.9, -4.1, -6.0, -6.0, 0.0])
    se = np.array([0.05, 0.1, 0.1, 2.9, 3.1, 0.0])
    assert list(_indistinguishable(diff, se)) == [True, True, False, False, True, True]


def test_table_elpd_sums_pointwise_loo(check):
    table = check.table()
    lin = check.fits["linear"]
    pointwise = np.asarray(check.loo["linear"].elpd_i).ravel()
    for k, task in enumerate(lin.design.tasks):
        np.testing.assert_allclose(table.loc[task, "elpd_linear"],
                                   pointwise[lin.design.task_idx == k].sum())
    np.testing.assert_allclose(table["elpd_linear"].sum(), check.loo["linear"].elpd)
    # two tasks strongly prefer the hockey stick, the other two tie: it ranks first overall
    assert check.compare().index[0] == "hockey_stick"


def test_threshold_outside_the_data_keeps_the_panels_x_axis(check):
    import dataclasses

    import matplotlib.pyplot as plt

    table = check.table()
    table["x0_mean"], table["x0_lb"], table["x0_ub"] = -40.0, -60.0, -20.0  # far below x
    fig = dataclasses.replace(check, _table=table).plot()
    for ax in fig.axes:
        if ax.get_visible() and ax.has_data():
            lo, hi = ax.get_xlim()
            assert X_GRID.min() - 1.0 < lo < X_GRID.min() and X_GRID.max() < hi < X_GRID.max() + 1.0
    plt.close(fig)


def test_plots_and_loo_pit(check):
    import matplotlib.pyplot as plt

    fig = check.plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4
    plt.close(fig)
    fit = check.fits["hockey_stick"]
    fig = fit.plot_ppc(task="hs0", random_seed=seed(152))
    assert len(fig.axes) == 1
    plt.close(fig)
    pit = fit.loo_pit(random_seed=seed(153))
    assert pit.shape[0] == fit.design.n_obs
    assert pit["loo_pit"].between(0, 1).all()
    # A well-specified model: PIT ~ Uniform(0, 1), whose mean has sd 0.29 / sqrt(80).
    assert abs(pit["loo_pit"].mean() - 0.5) < 0.15
    import matplotlib.figure

    fig = fit.plot_loo_pit(random_seed=seed(154))
    assert isinstance(fig, matplotlib.figure.Figure) and fig.axes
    plt.close(fig)


def test_numpy_loglik_matches_pymc_hockey_stick():
    import pymc as pm
    import xarray as xr

    df = _simulate(160)
    design = prepare_design(df, warn_weak=False)
    v = prepare_variants(df, design)
    priors = model_priors(None, design, v, shape="hockey_stick")
    config = ModelConfig(priors=priors, centered_tasks=(False,) * 4, shape="hockey_stick",
                         per_task_sigma=True)
    model = build_model(design, config, v)
    rng = np.random.default_rng(seed(161))
    point = {k: val + 0.3 * rng.standard_normal(np.shape(val))
             for k, val in model.initial_point().items()}
    names = posterior_var_names(model)
    assert {"x0", "x0_mu", "x0_sigma"} <= set(names)
    outs = model.replace_rvs_by_values([model[n] for n in names])
    values = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")(point)
    post = xr.Dataset({n: (("chain", "draw", *model.named_vars_to_dims.get(n, ())),
                           np.asarray(val)[None, None]) for n, val in zip(names, values,
                                                                         strict=True)})
    logp_y = model.replace_rvs_by_values([pm.logp(model["y"], model.rvs_to_values[model["y"]])])
    ll_pymc = model.compile_fn(logp_y[0], inputs=model.value_vars,
                               on_unused_input="ignore")(point)
    ll_np = log_likelihood_draws(post, design, v)[0, 0]
    np.testing.assert_allclose(ll_np, ll_pymc, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("x_better", ["higher", "lower"])
@pytest.mark.parametrize("y_better", ["higher", "lower"])
def test_hockey_stick_is_flat_where_x_is_worse_than_the_threshold(x_better, y_better):
    """The definition (issue 15): flat at the floor while x is worse than x0, then moving in
    y's better direction at the oriented slope, for every orientation of x and y (for a
    loss as y the floor is the worst loss, not the best); the intercept is the mean at
    x_ref, as for the straight line."""
    from bayesslope.likelihoods import hinge_width, shape_term

    x = np.tile(np.linspace(0.0, 10.0, 41), 2)
    df = pd.DataFrame({"task": np.repeat(["t1", "t2"], 41), "x": x, "y": 0.0})
    sx = 1.0 if x_better == "higher" else -1.0
    sy = 1.0 if y_better == "higher" else -1.0
    for x_ref in (2.0, 8.0):  # x_ref on the flat part, then past the threshold
        design = prepare_design(df, x_better=x_better, y_better=y_better, x_ref=x_ref,
                                warn_weak=False)
        a, b, x0 = 0.3, 0.7, 5.0
        g, _ = shape_term(design.xc, design, design.task_idx, x0=np.full(x.size, x0))
        eta = a + b * g
        far = 15 * hinge_width(design.x)   # softplus within 1e-7 of its limits
        worse, better = sx * (x - x0) < -far, sx * (x - x0) > far
        # the floor: a when x_ref is worse than x0, else a minus the rise from x0 to x_ref
        floor = a if sx * (x_ref - x0) < 0 else a - sy * b * abs(x_ref - x0)
        np.testing.assert_allclose(eta[worse], floor, atol=1e-6)
        np.testing.assert_allclose(eta[better], floor + sy * b * sx * (x[better] - x0),
                                   atol=1e-6)
        np.testing.assert_allclose(eta[x == x_ref], a, atol=1e-6)   # the mean at x_ref
    # past the threshold, each step that improves x improves y (in y's better direction)
    first = better & (design.task_idx == 0)
    assert (sy * np.diff(eta[first][:: int(sx)]) > 0).all()


def test_smooth_hinge_limits():
    u = np.array([-10.0, 0.0, 10.0])
    np.testing.assert_allclose(smooth_hinge(u, 0.1), [0.0, 0.1 * np.log(2), 10.0], atol=1e-12)


# -- bad input ---------------------------------------------------------------------------
def test_unknown_shape_is_an_error():
    df = _simulate(170)
    with pytest.raises(bs.DataValidationError, match="'cubic' is not a supported shape"):
        bs.fit_hierarchical(df, shape="cubic")
    with pytest.raises(bs.DataValidationError, match="'cubic' is not a supported shape"):
        bs.linearity_check(df, shapes=("linear", "cubic"))
    with pytest.raises(bs.DataValidationError, match="must include 'linear'"):
        bs.linearity_check(df, shapes=("sigmoid", "hockey_stick"))
    with pytest.raises(bs.DataValidationError, match=r"sets \['shape'\] itself"):
        bs.linearity_check(df, shape="hockey_stick")
    with pytest.raises(bs.DataValidationError, match="rope should be"):
        bs.linearity_check(df, rope=-1.0)
    acc = df.assign(y=(df["y"] - df["y"].min()) / np.ptp(df["y"]))  # scores in [0, 1]
    with pytest.raises(bs.DataValidationError, match="'sigmoid' .* needs chance="):
        bs.linearity_check(acc, shapes=("linear", "sigmoid"))
    with pytest.raises(bs.DataValidationError, match="valid only for the Gaussian"):
        bs.fit_hierarchical(df, shape="hockey_stick", formulation="collapsed")


def test_hockey_stick_names_tasks_with_few_x_values():
    df = _simulate(171)
    two = df[(df["task"] != "hs1") | df["x"].isin(X_GRID[:2])]
    # The warning comes with the data checks, before the model is resolved; a prior for a
    # parameter the model does not have then stops the fit before any sampling.
    with (pytest.warns(bs.WeakDataWarning, match=r"fewer than 3 distinct x values \('hs1'\)"),
          pytest.raises(bs.DataValidationError, match="not parameters of this model")):
        bs.fit_hierarchical(two, shape="hockey_stick",
                            priors={"bogus": {"dist": "Normal", "mu": 0, "sigma": 1}})


def test_x0_prior_is_settable_and_checked():
    df = _simulate(172)
    design = prepare_design(df, warn_weak=False)
    v = prepare_variants(df, design)
    user = {"x0_mu": {"dist": "Normal", "mu": 3.0, "sigma": 0.5}}
    priors = model_priors(user, design, v, shape="hockey_stick")
    assert priors["x0_mu"] == user["x0_mu"]
    assert priors["x0_sigma"] == {"dist": "HalfNormal", "sigma": 0.25 * 5.0}
    with pytest.raises(bs.DataValidationError, match="not parameters of this model"):
        model_priors(user, design, v)  # a straight line has no threshold


def test_data_scale_slope_follows_the_hockey_stick(check):
    fit = check.fits["hockey_stick"]
    steep = fit.data_scale_slope(at_x=1.5)  # past both thresholds (lower x is better)
    flat = fit.data_scale_slope(at_x=5.5)  # on the floor of both hockey-stick tasks
    for task in TRUE_X0:
        assert abs(steep.loc[task, "mean"] - SLOPE) < 0.1
        assert abs(flat.loc[task, "mean"]) < 0.05


def test_save_load_keeps_the_shape(check, tmp_path):
    fit = check.fits["hockey_stick"]
    back = bs.load_fit(fit.to_netcdf(tmp_path / "hockey.nc"))
    assert back.spec["model"]["shape"] == "hockey_stick"
    np.testing.assert_allclose(back.log_likelihood(), fit.log_likelihood())


def test_psis_failure_names_the_draws_and_the_fix():
    """A tail of tied importance ratios (here: one observation's log-likelihood constant over
    60 draws) makes arviz-stats' PSIS fail; the error says how many draws and what to do."""
    import xarray as xr

    from bayesslope.linearity import _loo

    rng = np.random.default_rng(seed(40))
    ll = rng.normal(size=(2, 30, 5))
    ll[..., 0] = -1.0
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"a": (("chain", "draw"), rng.normal(size=(2, 30)))}),
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), ll)}),
        "observed_data": xr.Dataset({"y": (("obs",), np.zeros(5))}),
    })
    with pytest.raises(ValueError, match=r"60 posterior draws \(2 chains x 30\).*Fix: more draws"):
        _loo(tree)
