"""predict, required_upstream and backtest: closed-form identities, population draws,
inversion, bounded links, a small backtest, and every bad-input path."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import fit_quietly, seed
from scipy.special import ndtr

import bayesslope as bs
from bayesslope.backtesting import holdout_mask
from bayesslope.baselines import fit_baseline

CHANCE = 0.25
N_EVAL = 400


def _flat(fit, name):
    arr = fit.posterior["posterior"][name].transpose("chain", "draw", ...).values
    return arr.reshape(-1, *arr.shape[2:])


@pytest.fixture(scope="module")
def binomial_fit():
    """Probit binomial with a chance floor and a crossed group level (3 families)."""
    rng = np.random.default_rng(seed(41))
    rows = []
    for k in range(3):
        a, b = rng.normal(0.3, 0.3), rng.normal(0.8, 0.2)
        for fam, off in zip(("f0", "f1", "f2"), rng.normal(0, 0.1, 3), strict=True):
            x = rng.uniform(2.0, 4.0, 5)
            p = CHANCE + (1 - CHANCE) * ndtr(a + off + b * -(x - 3.0))
            rows.append(pd.DataFrame({"task": f"t{k}", "family": fam, "x": x,
                                      "y": rng.binomial(N_EVAL, p) / N_EVAL}))
    df = pd.concat(rows, ignore_index=True)
    return fit_quietly(df, link="probit", n_eval=N_EVAL, chance=CHANCE, group="family",
                       random_seed=seed(42))


@pytest.fixture(scope="module")
def known_and_new(base_fit):
    """Every fitted task and two new ones at the same x, kind="mean"."""
    x0 = 2.5
    labels = [*base_fit.design.tasks, "new_a", "new_a", "new_b"]
    new = pd.DataFrame({"task": labels, "x": x0}, index=[f"r{i}" for i in range(len(labels))])
    table, draws = base_fit.predict(new, random_seed=seed(3), return_draws=True)
    return new, table, draws


# -- predict: closed-form identities of the linear predictor ----------------------------


def test_mean_is_the_posterior_line(base_fit):
    """E[intercept + slope * s (x - x_ref)] per task, exactly (linear in the draws)."""
    d = base_fit.design
    a, b = _flat(base_fit, "intercept"), _flat(base_fit, "slope")
    for x0 in (d.x_ref, 2.2, 4.6):
        new = pd.DataFrame({"task": list(d.tasks), "x": x0})
        got = base_fit.predict(new)
        line = a + b * d.task_sign * (x0 - d.x_ref)
        np.testing.assert_allclose(got["mean"], line.mean(axis=0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got["sd"], line.std(axis=0, ddof=1), rtol=1e-8)
        lo, hi = np.quantile(line, [0.05, 0.95], axis=0)
        np.testing.assert_allclose(got["eti90_lb"], lo, rtol=1e-10)
        np.testing.assert_allclose(got["eti90_ub"], hi, rtol=1e-10)
    at_ref = base_fit.predict(pd.DataFrame({"task": list(d.tasks), "x": d.x_ref}))
    np.testing.assert_allclose(at_ref["mean"], a.mean(axis=0), rtol=1e-10)
    assert (at_ref["extrapolated"] == 0).all() and not at_ref["new_task"].any()


def test_observation_adds_the_residual_variance(base_fit):
    """Var(y_new) = Var(mean) + E[sigma^2] (law of total variance), within Monte Carlo error."""
    d = base_fit.design
    new = pd.DataFrame({"task": list(d.tasks) * 2, "x": np.repeat([2.0, 4.4], d.n_tasks)})
    mean = base_fit.predict(new)
    obs = base_fit.predict(new, kind="observation", random_seed=seed(5))
    expected = mean["sd"] ** 2 + np.mean(_flat(base_fit, "sigma") ** 2)
    # sample variance of 1,000 draws: relative sd sqrt(2/999) = 4.5%; margin 5 sd
    np.testing.assert_allclose(obs["sd"] ** 2, expected, rtol=0.22)
    assert (obs["sd"] > mean["sd"]).all()
    np.testing.assert_allclose(obs["mean"], mean["mean"], atol=float(5 * obs["sd"].max()
                                                                       / np.sqrt(1000)))


def test_extrapolated_in_units_of_the_fitted_range(base_fit):
    lo, hi = base_fit.design.x.min(), base_fit.design.x.max()
    new = pd.DataFrame({"task": "t1", "x": [lo, hi, hi + 0.5 * (hi - lo), lo - 0.2 * (hi - lo)]})
    np.testing.assert_allclose(base_fit.predict(new)["extrapolated"], [0, 0, 0.5, 0.2])


# -- new tasks: drawn from the population ------------------------------------------------


def test_new_task_rows_share_draws_and_are_wider(base_fit, known_and_new):
    new, table, draws = known_and_new
    T = base_fit.design.n_tasks
    assert list(table.index) == list(new.index)
    assert table["new_task"].tolist() == [False] * T + [True] * 3
    assert draws.dims == ("chain", "draw", "row") and list(draws["row"].values) == list(new.index)
    d = draws.values.reshape(-1, len(new))
    np.testing.assert_array_equal(d[:, T], d[:, T + 1])          # one new task, two rows
    assert not np.allclose(d[:, T], d[:, T + 2])                 # another new task
    assert table["sd"].iloc[T:].min() > 3 * table["sd"].iloc[:T].max()


def test_new_task_matches_the_population(base_fit, known_and_new):
    """A new task's line is intercept_mu + slope_mu * s (x - x_ref) on average, and its
    variance is the population's: intercept_sigma^2 + 2 rho sa sb xc + slope_sigma^2 xc^2."""
    _, table, draws = known_and_new
    d = base_fit.design
    xc = d.task_sign[0] * (2.5 - d.x_ref)
    mu = _flat(base_fit, "intercept_mu") + _flat(base_fit, "slope_mu") * xc
    sa, sb = _flat(base_fit, "intercept_sigma"), _flat(base_fit, "slope_sigma")
    var = np.var(mu, ddof=1) + np.mean(sa**2 + 2 * _flat(base_fit, "corr") * sa * sb * xc
                                       + sb**2 * xc**2)
    new_a = table.iloc[d.n_tasks]
    n = draws.sizes["chain"] * draws.sizes["draw"]
    assert abs(new_a["mean"] - mu.mean()) < 5 * np.sqrt(var / n)
    assert new_a["sd"] ** 2 == pytest.approx(var, rel=0.25)


# -- bounded links, n_eval, groups -------------------------------------------------------


def test_bounded_link_stays_between_chance_and_one(binomial_fit):
    new = pd.DataFrame({"task": ["t0", "t1", "t2", "new"] * 2, "family": "f1",
                        "x": np.repeat([-5.0, 12.0], 4)})
    mean, draws = binomial_fit.predict(new, return_draws=True, random_seed=seed(7))
    assert float(draws.min()) >= CHANCE and float(draws.max()) <= 1.0
    obs, odraws = binomial_fit.predict(new, kind="observation", return_draws=True,
                                       random_seed=seed(7))
    # a binomial k/n on a grid of 1/N_EVAL in [0, 1]
    k = odraws.values * N_EVAL
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert float(odraws.min()) >= 0.0 and float(odraws.max()) <= 1.0
    # far out on the floor / ceiling the mean sits at chance / 1 for the known tasks
    assert (mean["mean"].iloc[4:7] < CHANCE + 0.02).all()
    assert (mean["mean"].iloc[:3] > 0.98).all()


def test_binomial_observation_noise(binomial_fit):
    """Var(k/n) adds E[p(1-p)]/n to the variance of the mean (binomial, fixed n)."""
    new = pd.DataFrame({"task": ["t0", "t1", "t2"], "family": "f0", "x": 3.0})
    _, md = binomial_fit.predict(new, return_draws=True)
    p = md.values.reshape(-1, 3)
    obs = binomial_fit.predict(new, kind="observation", random_seed=seed(8))
    expected = p.var(axis=0, ddof=1) + np.mean(p * (1 - p), axis=0) / N_EVAL
    np.testing.assert_allclose(obs["sd"] ** 2, expected, rtol=0.22)
    # the fit used a constant n_eval: a same-named column of new_df is not read
    same = binomial_fit.predict(new.assign(n_eval=20), kind="observation", random_seed=seed(8))
    np.testing.assert_allclose(same["sd"], obs["sd"])


def test_unknown_group_is_drawn_from_the_group_population(binomial_fit):
    new = pd.DataFrame({"task": "t1", "family": ["f0", "unseen"], "x": 3.0})
    table = binomial_fit.predict(new, random_seed=seed(9))
    assert table["new_group"].tolist() == [False, True]
    assert table["sd"].iloc[1] > table["sd"].iloc[0]


# -- required_upstream -------------------------------------------------------------------


def _check_inverse(fit, inv, extra=None):
    """At the returned median x, half the draws of the mean reach the target; at the
    interval ends 5% and 95% (exact per draw: the inversion is monotone when slope > 0)."""
    extra = extra or {}
    intercept, slope = _flat(fit, "intercept"), _flat(fit, "slope")
    for task, row in inv.iterrows():
        xs = [row["median"], row["eti90_lb"], row["eti90_ub"]]
        new = pd.DataFrame({"task": task, "x": xs, **extra})
        _, dr = fit.predict(new, return_draws=True)
        reach = (dr.values.reshape(-1, 3) >= row["target"]).mean(axis=0)
        n = dr.sizes["chain"] * dr.sizes["draw"]
        # x lower is better: x <= x* reaches the target, so P(reach at x*_q) = 1 - q up to
        # one draw of slack for the order statistic, plus the largest block of identical
        # draws (a rejected NUTS proposal repeats a draw, and a sticky chain repeats many;
        # a block at the quantile moves the share by its size; exact draws never tie).
        k = fit.design.tasks.index(task)
        block = np.unique(np.stack([intercept[:, k], slope[:, k]], axis=1), axis=0,
                          return_counts=True)[1].max()
        np.testing.assert_allclose(reach, [0.5, 0.95, 0.05], atol=(1.0 + block) / n)


def test_required_upstream_inverts_predict(base_fit):
    d = base_fit.design
    tasks = [t for t in d.tasks if (_flat(base_fit, "slope")[:, d.tasks.index(t)] > 0).all()]
    assert len(tasks) >= 5
    at = base_fit.predict(pd.DataFrame({"task": tasks, "x": 2.6}))
    target = dict(zip(tasks, at["mean"], strict=True))
    inv = base_fit.required_upstream(target)
    assert list(inv.index) == tasks and (inv["p_reachable"] == 1).all()
    _check_inverse(base_fit, inv)
    assert ((inv["median"] - 2.6).abs() < 0.1).all()
    assert not inv["beyond_observed"].any()


def test_required_upstream_unreachable_draws(base_fit):
    """The planted negative task never reaches a high target by improving x."""
    inv = base_fit.required_upstream(0.95)
    p_neg = base_fit.p_negative_transfer()
    np.testing.assert_allclose(inv["p_reachable"], 1 - p_neg, atol=1e-12)
    assert inv.loc["t0", "p_reachable"] < 0.1 and inv.loc["t0", "median"] == -np.inf
    assert inv.loc["t0", "beyond_observed"]


def test_required_upstream_bounded_link(binomial_fit):
    tasks = ["t0", "t1", "t2"]
    at = binomial_fit.predict(pd.DataFrame({"task": tasks, "family": "f0", "x": 3.1}))
    inv = binomial_fit.required_upstream(dict(zip(tasks, at["mean"], strict=True)))
    # group effects are left out of the inversion; compare with the line without them
    post = binomial_fit.posterior["posterior"]
    no_group = binomial_fit.posterior.copy()
    ds = post.to_dataset()
    ds["group_intercept"] = ds["group_intercept"] * 0
    ds["group_slope"] = ds["group_slope"] * 0
    no_group["posterior"] = ds
    plain = bs.TransferFit(posterior=no_group, design=binomial_fit.design,
                           spec=binomial_fit.spec, variants=binomial_fit.variants)
    _check_inverse(plain, inv[inv["p_reachable"] == 1], extra={"family": "f0"})


# -- backtest ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ladder():
    """Six tasks evaluated on the same 14 models (x a loss); the truth is the fitted model."""
    rng = np.random.default_rng(seed(21))
    x = np.sort(rng.uniform(2.0, 4.0, 14))
    rows = []
    for k in range(6):
        a, b = rng.normal(0.55, 0.06), rng.normal(0.1, 0.03)
        y = a - b * (x - 3.0) + rng.normal(0, 0.02, x.size)
        rows.append(pd.DataFrame({"model": [f"m{j}" for j in range(x.size)], "task": f"t{k}",
                                  "x": x, "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def ladder_backtest(ladder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        return bs.backtest(ladder, holdout="best:3", unit="model", x_better="lower",
                           y_better="higher", chains=2, draws=500, tune=500, cores=1,
                           random_seed=seed(22))


def test_backtest_holds_out_the_best_units(ladder, ladder_backtest):
    best = ladder.groupby("model")["x"].min().nsmallest(3).index
    assert ladder_backtest.holdout.equals(ladder["model"].isin(best))
    assert set(ladder_backtest.rows.index) == set(ladder.index[ladder["model"].isin(best)])
    assert (ladder_backtest.rows["extrapolated"] > 0).sum() >= 12
    assert not ladder_backtest.fit.design.x.min() <= ladder.loc[
        ladder["model"].isin(best), "x"].min()


def test_backtest_scores_and_baselines(ladder, ladder_backtest):
    r = ladder_backtest.rows
    for m in ("bayes", "linear", "sigmoid"):
        inside = (r["actual"] >= r[f"{m}_eti90_lb"]) & (r["actual"] <= r[f"{m}_eti90_ub"])
        assert r[f"{m}_covered"].astype(bool).equals(inside)
        np.testing.assert_allclose(r[f"{m}_abs_error"], (r[f"{m}_mean"] - r["actual"]).abs())
        assert ladder_backtest.overall.loc[m, "coverage"] == pytest.approx(inside.mean())
        assert ladder_backtest.overall.loc[m, "mae"] == pytest.approx(
            r[f"{m}_abs_error"].mean())
    # the linear baseline is ordinary least squares on the task's training rows
    train = ladder[~ladder_backtest.holdout]
    for t, rows in r.groupby("task"):
        tr = train[train["task"] == t]
        slope, icpt = np.polyfit(tr["x"], tr["y"], 1)
        np.testing.assert_allclose(rows["linear_mean"], icpt + slope * rows["x"], rtol=1e-9)
    # 18 held-out rows from the fitted model: a 90% interval misses few (P(<= 10 of 18) is
    # about 1e-4 for independent rows)
    assert ladder_backtest.overall.loc["bayes", "coverage"] >= 0.55
    assert ladder_backtest.by_task.loc[("t0", "bayes"), "n"] == 3
    fig = ladder_backtest.plot(tasks=["t0", "t1"])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2


def test_baselines_recover_their_own_curves():
    x = np.linspace(0, 1, 12)
    lin = fit_baseline("linear", x, 1 + 2 * x, [2.0])
    assert lin.mean[0] == pytest.approx(5.0)
    from bayesslope.baselines import sigmoid

    y = sigmoid(x, 0.25, 0.6, 8.0, 0.5)
    sig = fit_baseline("sigmoid", x, y, [1.3])
    assert sig.mean[0] == pytest.approx(sigmoid(1.3, 0.25, 0.6, 8.0, 0.5), abs=1e-6)
    few = fit_baseline("sigmoid", x[:3], y[:3], [1.3])
    assert np.isnan(few.mean).all() and "4 parameters" in few.note


# -- bad input ---------------------------------------------------------------------------


def test_predict_bad_input(base_fit):
    with pytest.raises(bs.DataValidationError, match=r"missing column\(s\) \['x'\]"):
        base_fit.predict(pd.DataFrame({"task": ["t1"], "upstream": [3.0]}))
    with pytest.raises(bs.DataValidationError, match=r"'x'.*non-finite.*nan.*rows \['b'\]"):
        base_fit.predict(pd.DataFrame({"task": ["t1", "t1"], "x": [3.0, np.nan]},
                                      index=["a", "b"]))
    with pytest.raises(bs.DataValidationError, match=r"'x'.*non-finite.*inf"):
        base_fit.predict(pd.DataFrame({"task": ["t1"], "x": [np.inf]}))
    with pytest.raises(bs.DataValidationError, match="kind should be one of"):
        base_fit.predict(pd.DataFrame({"task": ["t1"], "x": [3.0]}), kind="median")
    with pytest.raises(bs.DataValidationError, match="holds out no rows"):
        bs.backtest(pd.DataFrame({"task": ["a", "b"], "x": [1.0, 2.0], "y": [0.1, 0.2]}),
                    holdout=[False, False])


def test_task_label_of_another_type(base_fit):
    """The fit records the type of its task labels ("t0": string); 1 is not "1"."""
    from bayesslope.predict import label_kinds

    assert base_fit.spec["label_kinds"] == {"task": "string"}
    with pytest.raises(bs.DataValidationError,
                       match=r"column 'task' \(task\) holds integer labels \(e\.g\. 1\)"):
        base_fit.predict(pd.DataFrame({"task": [1], "x": [3.0]}))
    as_int = bs.TransferFit(posterior=base_fit.posterior, design=base_fit.design,
                            spec={**base_fit.spec, "label_kinds": {"task": "integer"}})
    with pytest.raises(bs.DataValidationError, match="holds string labels.*are integer"):
        as_int.predict(pd.DataFrame({"task": ["1"], "x": [3.0]}))
    with pytest.raises(bs.DataValidationError, match="target's task keys are integer"):
        base_fit.required_upstream({0: 0.5})
    frame = pd.DataFrame({"task": [1, 2], "g": pd.Categorical(["a", "b"])})
    assert label_kinds(frame, task="task", group="g", condition=None) == {
        "task": "integer", "group": "string"}


def test_required_upstream_bad_targets(binomial_fit, base_fit):
    with pytest.raises(bs.DataValidationError, match=r"target 1\.2 for task 't0'.*\[0\.25, 1\]"):
        binomial_fit.required_upstream(1.2)
    with pytest.raises(bs.DataValidationError, match=r"target 0\.1 for task 't1'"):
        binomial_fit.required_upstream({"t1": 0.1})
    with pytest.raises(bs.DataValidationError, match=r"'nope'.*not tasks of the fit"):
        base_fit.required_upstream({"nope": 0.5})
    with pytest.raises(bs.DataValidationError, match="finite number"):
        base_fit.required_upstream(np.nan)


def test_holdout_rules(ladder):
    m = holdout_mask(ladder, "highest_x:2", unit="model")
    worst = ladder.groupby("model")["x"].max().nlargest(2).index
    assert m.equals(ladder["model"].isin(worst))
    assert holdout_mask(ladder, "best:10%", unit="model").sum() == 2 * 6   # ceil(1.4)
    assert holdout_mask(ladder, lambda f: f["x"] > 3.5).equals(ladder["x"] > 3.5)
    with pytest.raises(bs.DataValidationError, match="neither a column nor a rule"):
        holdout_mask(ladder, "largest:3")
    with pytest.raises(bs.DataValidationError, match="would hold out all 14 units"):
        holdout_mask(ladder, "best:14", unit="model")
    with pytest.raises(bs.DataValidationError, match="should be boolean"):
        holdout_mask(ladder, "x")


# -- every variant, on a synthetic posterior (no sampling) ---------------------------------


def _synthetic_fit(df, *, lapse=False, per_task_sigma=False, shape=None, y_better="higher",
                   **vkw):
    """A TransferFit whose posterior draws are made up (the shapes and names of a real one):
    exercises every code path of predict() without the cost of sampling each variant."""
    import xarray as xr

    from bayesslope.data import prepare_design
    from bayesslope.predict import label_kinds
    from bayesslope.resolve import model_priors
    from bayesslope.variant_data import prepare_variants

    rng = np.random.default_rng(seed(60))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = prepare_design(df, x_better="lower", y_better=y_better)
        v = prepare_variants(df, d, lapse=lapse, **vkw)
        priors = model_priors(None, d, v, per_task_sigma=per_task_sigma)
    C, D, T = 2, 100, d.n_tasks

    def draw(*shape, loc=0.0, scale=1.0, positive=False):
        a = loc + scale * rng.standard_normal((C, D, *shape))
        return np.abs(a) if positive else a

    cd, cdt = ("chain", "draw"), ("chain", "draw", "task")
    post = {"intercept_mu": (cd, draw(loc=0.2, scale=0.05)),
            "slope_mu": (cd, draw(loc=0.8, scale=0.05)),
            "intercept_sigma": (cd, draw(loc=0.3, scale=0.05, positive=True)),
            "slope_sigma": (cd, draw(loc=0.2, scale=0.05, positive=True)),
            "corr": (cd, np.tanh(draw(scale=0.3))),
            "intercept": (cdt, draw(T, loc=0.2, scale=0.1)),
            "slope": (cdt, draw(T, loc=0.8, scale=0.1))}
    coords = {"task": list(d.tasks), "chain": np.arange(C), "draw": np.arange(D)}
    if v.likelihood in ("normal", "student_t"):
        post["sigma"] = ((cdt, draw(T, loc=0.02, scale=0.002, positive=True)) if per_task_sigma
                         else (cd, draw(loc=0.02, scale=0.002, positive=True)))
        if per_task_sigma == "pooled":
            post["sigma_log_mu"] = (cd, draw(loc=np.log(0.02), scale=0.1))
            post["sigma_log_sd"] = (cd, draw(loc=0.3, scale=0.05, positive=True))
        if v.likelihood == "student_t":
            post["nu"] = (cd, draw(loc=5.0, scale=0.5, positive=True))
    if v.likelihood == "beta_binomial":
        post["overdispersion"] = (cdt, draw(T, loc=0.1, scale=0.01, positive=True))
    if lapse is True:
        post["lapse"] = (cdt, draw(T, loc=0.05, scale=0.01, positive=True))
    if v.condition_idx is not None:
        coords["condition"] = list(v.conditions)
        for name, base in (("intercept_mu_condition", "intercept_mu"),
                           ("slope_mu_condition", "slope_mu")):
            shift = np.concatenate([np.zeros((C, D, 1)), draw(len(v.conditions) - 1, scale=0.1)],
                                   axis=-1)
            post[name] = (("chain", "draw", "condition"), post[base][1][..., None] + shift)
    if v.group_idx is not None:
        coords["group"] = list(v.groups)
        for name in ("group_intercept_sigma", "group_slope_sigma"):
            post[name] = (cd, draw(loc=0.1, scale=0.01, positive=True))
        for name in ("group_intercept", "group_slope"):
            post[name] = (("chain", "draw", "group"), draw(len(v.groups), scale=0.1))
    if v.x_point is not None:
        post["x_mu"] = (cd, draw(loc=3.0, scale=0.05))
        post["x_sigma"] = (cd, draw(loc=0.6, scale=0.05, positive=True))
    if shape is not None:   # "x0" (hockey stick) or "curvature" (quadratic)
        loc, scale = (3.0, 0.3) if shape == "x0" else (0.1, 0.05)
        post[f"{shape}_mu"] = (cd, draw(loc=loc, scale=0.02))
        post[f"{shape}_sigma"] = (cd, draw(loc=scale, scale=0.01, positive=True))
        post[shape] = (cdt, draw(T, loc=loc, scale=scale))
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(post, coords=coords)})
    spec = {"model": {"priors": priors, "formulation": "full",
                      "per_task_sigma": per_task_sigma},
            "label_kinds": label_kinds(df, task="task", group=vkw.get("group"),
                                       condition=vkw.get("condition"))}
    return bs.TransferFit(posterior=tree, design=d, spec=spec, variants=v)


VARIANTS = {
    "student_t_pooled_sigma": dict(likelihood="student_t", per_task_sigma="pooled"),
    "per_task_sigma": dict(per_task_sigma=True),
    "binomial_chance_lapse": dict(link="probit", n_eval="n", chance=0.25, lapse=True),
    "beta_binomial_logit_conditions_nested_groups": dict(
        link="logit", likelihood="beta_binomial", n_eval="n", chance="chance",
        condition="shots", group="family", group_nesting="nested"),
    "x_se_conditions": dict(x_se="x_se", condition="shots"),
    "probit_fixed_lapse_group": dict(link="probit", chance=0.25, lapse=0.1, group="family"),
    "hockey_stick_probit": dict(link="probit", n_eval="n", chance=0.25, shape="x0"),
    "quadratic": dict(shape="curvature"),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_predicts_within_its_bounds(name):
    kw = VARIANTS[name]
    rng = np.random.default_rng(seed(61))
    df = pd.DataFrame({"task": np.repeat(["a", "b", "c"], 6), "x": rng.uniform(2, 4, 18),
                       "y": np.round(rng.uniform(0.55, 0.9, 18) * 200) / 200,
                       "shots": np.tile(["0", "5"], 9), "family": np.tile(["f", "f", "g"], 6),
                       "x_se": 0.05, "n": 200, "chance": 0.5})
    fit = _synthetic_fit(df, **kw)
    if "x_se" not in kw:
        # at the fitted rows, the model's own formula set (likelihoods.mean_response_draws)
        from bayesslope.likelihoods import mean_response_draws

        own = mean_response_draws(fit.posterior["posterior"], fit.design,
                                  fit.variants).mean(axis=(0, 1))
        at_rows = fit.predict(df.loc[fit.design.row_labels])
        np.testing.assert_allclose(at_rows["mean"], own, rtol=1e-10, atol=1e-12)
    new = pd.DataFrame({"task": ["a", "zz", "a", "zz", "b"], "x": [0.0, 0.0, 9.0, 9.0, 3.0],
                        "shots": ["5", "0", "0", "5", "0"], "family": ["f", "new", "g", "new", "g"],
                        "x_se": [0.05, 0.0, 0.1, 0.05, 0.0], "n": 50, "chance": 0.5})
    mean, md = fit.predict(new, random_seed=seed(62), return_draws=True)
    obs, od = fit.predict(new, kind="observation", random_seed=seed(62), return_draws=True)
    assert np.isfinite(md.values).all() and np.isfinite(od.values).all()
    assert mean["new_task"].tolist() == [False, True, False, True, False]
    if kw.get("link") in ("probit", "logit"):
        chance = 0.5 if kw.get("chance") == "chance" else kw["chance"]
        ceiling = 1 - kw["lapse"] if isinstance(kw.get("lapse"), float) else 1.0
        assert float(md.min()) >= chance and float(md.max()) <= ceiling
    if "n_eval" in kw:   # k / n with the row's n (column 'n' = 50)
        np.testing.assert_allclose(od.values * 50, np.round(od.values * 50), atol=1e-9)
    # the far-left row of a known task and of the new task: the new task is less certain
    assert mean["sd"].iloc[1] > mean["sd"].iloc[0]
    assert (obs["sd"] >= 0.9 * mean["sd"]).all()
    inv = fit.required_upstream(0.7)
    assert inv["p_reachable"].between(0, 1).all() and list(inv.index) == ["a", "b", "c"]
    assert not inv[["median", "eti90_lb", "eti90_ub"]].isna().any().any()


# -- required_upstream of the curved shapes: closed forms written in data units ------------

# (variant, y_better, per-task overrides of the synthetic draws (loc, scale), targets):
# chosen so that every case has draws that reach the target at a finite x, draws that
# never reach it and, where the shape allows, draws that reach it at every x.
CURVED = {
    "hockey_probit": dict(
        kw=dict(link="probit", n_eval="n", chance=0.25, shape="x0"), y_better="higher",
        slope={"c": (0.0, 0.5)}, targets={"a": 0.8, "b": 0.684, "c": 0.8}),
    "hockey_identity_lower": dict(
        kw=dict(shape="x0"), y_better="lower",
        slope={"c": (0.0, 0.5)}, targets={"a": 0.1, "b": -0.2, "c": 0.1}),
    "quadratic": dict(
        kw=dict(shape="curvature"), y_better="higher",
        curvature={"a": (0.3, 0.05), "b": (-0.3, 0.05), "c": (0.0, 0.3)},
        slope={"c": (0.1, 0.5)}, targets={"a": -0.5, "b": 0.7, "c": 0.5}),
    "quadratic_lower": dict(
        kw=dict(shape="curvature"), y_better="lower",
        curvature={"a": (0.3, 0.05), "b": (-0.3, 0.05), "c": (0.0, 0.3)},
        slope={"c": (0.1, 0.5)}, targets={"a": -0.5, "b": -0.7, "c": 0.5}),
}


def _curved_fit(case):
    spec = CURVED[case]
    rng = np.random.default_rng(seed(63))
    df = pd.DataFrame({"task": np.repeat(["a", "b", "c"], 6), "x": rng.uniform(2, 4, 18),
                       "y": np.round(rng.uniform(0.55, 0.9, 18) * 200) / 200, "n": 200})
    fit = _synthetic_fit(df, y_better=spec["y_better"], **spec["kw"])
    ds = fit.posterior["posterior"].to_dataset()
    for name in ("slope", "curvature"):
        for task, (loc, scale) in spec.get(name, {}).items():
            k = fit.design.tasks.index(task)
            vals = ds[name].values.copy()
            vals[..., k] = loc + scale * rng.standard_normal(vals.shape[:2])
            ds[name] = (ds[name].dims, vals)
    tree = fit.posterior.copy()
    tree["posterior"] = ds
    return bs.TransferFit(posterior=tree, design=fit.design, spec=fit.spec,
                          variants=fit.variants)


def _true_x(fit, task, target):
    """x* per draw from the model's formulas written in data units (x lower is better):
    the x at which the mean, improving as x improves, crosses the target; -inf (the
    better end) where improving x never gets there, +inf where every x reaches it."""
    from scipy.special import ndtri

    d, post = fit.design, fit.posterior["posterior"]
    k = d.tasks.index(task)
    a, b = _flat(fit, "intercept")[:, k], _flat(fit, "slope")[:, k]
    sy = 1.0 if d.y_better[k] == "higher" else -1.0
    s = -sy                                   # orientation sign: x lower is better
    e = target if fit.link == "identity" else ndtri((target - 0.25) / 0.75)
    never, everywhere = -np.inf, np.inf       # x lower is better: "better infinity" is -inf
    out = np.empty(a.size)
    if "x0" in post:
        # eta = a + sy b (H(x) - H(x_ref)), H(x) = w log(1 + exp(-(x - x0) / w)): flat at
        # a - sy b H(x_ref) while x is worse than x0 (above it: x lower is better), then
        # moving in y's better direction
        from bayesslope.likelihoods import hinge_width

        w, x0 = hinge_width(d.x), _flat(fit, "x0")[:, k]
        plateau = a - sy * b * w * np.logaddexp(0.0, -(d.x_ref - x0) / w)
        for i in range(a.size):
            r = sy * (e - plateau[i]) / b[i] if b[i] != 0 else np.nan
            if b[i] <= 0:
                out[i] = never
            elif r > 0:
                v = r / w   # log(exp(v) - 1), written so that it cannot overflow
                out[i] = x0[i] - w * (v + np.log1p(-np.exp(-v)))
            else:   # the target is no better than the plateau: reached at every x
                out[i] = everywhere
        return out
    q = _flat(fit, "curvature")[:, k]
    for i in range(a.size):
        # eta = a + b s dx + q dx^2, dx = x - x_ref; the mean improves as x improves
        # (dx decreases) where sy * d eta / d dx < 0
        roots = np.roots([q[i], b[i] * s, a[i] - e])
        real = roots[np.abs(roots.imag) < 1e-12].real
        rising = real[sy * (2 * q[i] * real + b[i] * s) < 0]
        if rising.size:
            assert rising.size == 1
            out[i] = d.x_ref + rising[0]
        elif sy * (a[i] - e) > 0:   # never crosses and is on the good side at x_ref
            out[i] = everywhere
        else:
            out[i] = never
    return out


@pytest.mark.parametrize("case", list(CURVED))
def test_required_upstream_curved_shapes(case):
    from bayesslope.predict import required_upstream

    fit = _curved_fit(case)
    targets = CURVED[case]["targets"]
    inv, draws = required_upstream(fit, targets, return_draws=True)
    assert draws.dims == ("chain", "draw", "task")
    got = draws.values.reshape(-1, 3)
    kinds = set()
    for j, task in enumerate(fit.design.tasks):
        truth = _true_x(fit, task, targets[task])
        finite = np.isfinite(truth)
        np.testing.assert_array_equal(got[~finite, j], truth[~finite])
        # rtol: np.roots (eigenvalues) near a double root is good to ~1e-8
        np.testing.assert_allclose(got[finite, j], truth[finite], rtol=1e-7, atol=1e-9)
        reach = truth > -np.inf
        assert inv.loc[task, "p_reachable"] == pytest.approx(reach.mean())
        med, lo, hi = np.quantile(truth, [0.5, 0.05, 0.95], method="inverted_cdf")
        np.testing.assert_allclose(inv.loc[task, ["median", "eti90_lb", "eti90_ub"]]
                                   .to_numpy(float), [med, lo, hi], rtol=1e-7)
        kinds |= {"finite"} if finite.any() else set()
        kinds |= {"never"} if (truth == -np.inf).any() else set()
        kinds |= {"everywhere"} if (truth == np.inf).any() else set()
    # the case exercises every outcome its shape has
    assert kinds == {"finite", "never", "everywhere"}


@pytest.mark.parametrize("case", list(CURVED))
def test_required_upstream_curved_agrees_with_predict(case):
    """predict() at each draw's x* gives the target in that draw, and the mean is better
    just beyond x* (in the better direction) and worse just before: the rising branch."""
    from bayesslope.predict import required_upstream

    fit = _curved_fit(case)
    targets = CURVED[case]["targets"]
    _, draws = required_upstream(fit, targets, return_draws=True)
    got = draws.values.reshape(-1, 3)
    for j, task in enumerate(fit.design.tasks):
        idx = np.flatnonzero(np.isfinite(got[:, j]))
        assert idx.size >= 10
        sy = 1.0 if fit.design.y_better[j] == "higher" else -1.0
        for shift, check in ((0.0, "equal"), (-1e-3, "better"), (1e-3, "worse")):
            new = pd.DataFrame({"task": task, "x": got[idx, j] + shift, "n": 200})
            _, pd_draws = fit.predict(new, return_draws=True)
            at = pd_draws.values.reshape(-1, idx.size)[idx, np.arange(idx.size)]
            if check == "equal":
                # roots far out (slope and curvature near 0) lose digits to cancellation
                np.testing.assert_allclose(at, targets[task], rtol=0, atol=1e-7)
            elif check == "better":   # x lower is better
                assert (sy * (at - targets[task]) > 0).all()
            else:
                assert (sy * (at - targets[task]) < 0).all()
