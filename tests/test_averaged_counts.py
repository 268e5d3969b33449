"""Averaged accuracies with the count likelihoods (``counts="average"``, issue 24).

The continuous extension of the binomial / beta-binomial pmf in ``k = y * n`` is the pmf at
whole ``k`` (closed form against scipy), integrates to about 1 over ``k`` (so ``+ log n`` is
a density of ``y`` as for whole counts), is the PyMC model's logp, leaves whole-count fits
unchanged, and recovers the slopes of scores simulated as means of subtasks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import seed
from scipy import stats
from scipy.integrate import quad
from scipy.special import ndtr

import bayesslope as bs
from bayesslope import DataValidationError
from bayesslope.data import prepare_design
from bayesslope.likelihoods import (
    PHI_MAX,
    beta_binomial_phi,
    count_logpmf,
    log_likelihood_draws,
    pointwise_loglik,
)
from bayesslope.model import ModelConfig, build_model, posterior_var_names
from bayesslope.resolve import model_priors
from bayesslope.variant_data import prepare_variants

N_SUB = 5  # subtasks per task
SIZES = (20, 200)  # subtask sizes, log-uniform


def simulate_subtasks(seed_: int, n_tasks: int = 6, n_points: int = 20):
    """Scores as plain means of ``N_SUB`` subtasks of different sizes sharing one p.

    ``p = Phi(a_t + b_t x)``; the task's ``n`` is the size with the mean's binomial
    variance, ``N_SUB^2 / sum(1 / n_j)``; ``n_total`` the summed subtask sizes.
    """
    rng = np.random.default_rng(seed_)
    a = rng.normal(0.0, 0.6, n_tasks)
    b = rng.normal(0.8, 0.3, n_tasks)
    rows = []
    for t in range(n_tasks):
        n_j = np.round(np.exp(rng.uniform(*np.log(SIZES), N_SUB))).astype(int)
        x = rng.normal(size=n_points)
        k = rng.binomial(n_j, ndtr(a[t] + b[t] * x)[:, None])
        rows.append(pd.DataFrame({
            "task": f"t{t}", "x": x, "y": np.mean(k / n_j, axis=1),
            "n": int(round(N_SUB**2 / np.sum(1.0 / n_j))), "n_total": int(n_j.sum()),
        }))
    return pd.concat(rows, ignore_index=True), pd.Series(b, index=[f"t{t}" for t in
                                                                   range(n_tasks)])


def _prep(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = prepare_design(df, x_better="higher", warn_weak=False)
    return design, prepare_variants(df, design, **kw)


# -- the continuous log pmf ------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7, 200, 58492])
def test_continuous_logpmf_is_the_pmf_at_whole_k(n):
    k = np.unique(np.round(np.linspace(0, n, 9)))
    for p in (1e-6, 0.03, 0.5, 0.97):
        np.testing.assert_allclose(count_logpmf(k, float(n), p), stats.binom.logpmf(k, n, p),
                                   rtol=1e-9, atol=1e-9)
        for phi in (0.5, 30.0):
            np.testing.assert_allclose(
                count_logpmf(k, float(n), p, phi),
                stats.betabinom.logpmf(k, n, p * phi, (1 - p) * phi), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("d", [1e-3, 1e-5, 1e-8, 1e-12])
def test_beta_binomial_is_smooth_toward_the_binomial_limit(d):
    """As the overdispersion d -> 0 the model tends to the binomial (variance inflation
    1 + (n - 1) / (phi + 1)), with phi capped at PHI_MAX so the log-gammas stay accurate:
    uncapped, phi = 1e16 put scipy's betabinom ~200 off and left a chain stuck there."""
    import pytensor.tensor as pt

    n, p = 1267.0, 0.55
    k = np.array([0.0, 300.0, 697.0, 900.0, 1267.0])
    phi = beta_binomial_phi(d)
    assert phi <= PHI_MAX
    assert phi == pytest.approx(1.0 / d**2, rel=2e-2) if d >= 1e-3 else True
    binom = stats.binom.logpmf(k, n, p)
    # The exact beta-binomial is within n^2 / phi of its limit; rounding adds < 1e-4.
    np.testing.assert_allclose(count_logpmf(k, n, p, phi), binom, rtol=0, atol=n**2 / phi + 1e-4)
    np.testing.assert_allclose(stats.betabinom.logpmf(k, n, p * phi, (1 - p) * phi), binom,
                               rtol=0, atol=n**2 / phi + 1e-4)
    # The models' expression: the gradient in log d is finite and, once the data cannot
    # tell d from 0, vanishes (only the prior moves such a chain back).
    log_d = pt.dscalar("log_d")
    phi_t = beta_binomial_phi(pt.exp(log_d), xp=pt)
    kt, nt, pt_ = (pt.as_tensor_variable(np.float64(v)) for v in (k, n, p))
    total = count_logpmf(kt, nt, pt_, phi_t, xp=pt).sum()
    grad = float(pt.grad(total, log_d).eval({log_d: np.log(d)}))
    assert np.isfinite(grad)
    assert abs(grad) < 1e-2 if d <= 1e-5 else True


@pytest.mark.parametrize("p, phi", [(0.3, None), (0.85, None), (0.3, 40.0)])
def test_continuous_pmf_integrates_to_about_one(p, phi):
    # So log f(y n) + log n is (nearly) a density of y, as for whole counts (LOO scale).
    n = 200.0
    total, _ = quad(lambda k: np.exp(count_logpmf(k, n, p, phi)), 0, n, points=[n * p],
                    limit=200)
    assert abs(total - 1.0) < 0.01


def test_whole_counts_give_the_same_loglik_either_way():
    rng = np.random.default_rng(seed(1))
    n = rng.integers(5, 500, size=50)
    y = rng.binomial(n, 0.4) / n
    mean = rng.uniform(0.05, 0.95, size=(3, 50))
    for lik, extra in (("binomial", {}), ("beta_binomial", {"overdispersion": 0.2})):
        whole = pointwise_loglik(lik, y, mean, n=n, **extra)
        avg = pointwise_loglik(lik, y, mean, n=n, counts="average", **extra)
        np.testing.assert_allclose(avg, whole, rtol=1e-9, atol=1e-9)


# -- the PyMC model --------------------------------------------------------------------------
def _model_logp(df, **kw):
    design, v = _prep(df, **kw)
    config = ModelConfig(priors=model_priors(None, design, v),
                         centered_tasks=(True, False) * (design.n_tasks // 2))
    model = build_model(design, config, v)
    rng = np.random.default_rng(seed(2))
    point = {k: val + 0.3 * rng.standard_normal(np.shape(val))
             for k, val in model.initial_point().items()}
    # FAST_COMPILE: no C compilation (these graphs are tiny; the suite's time is scarce).
    return model, point, float(model.compile_logp(mode="FAST_COMPILE")(point))


@pytest.fixture(scope="module")
def averaged():
    return simulate_subtasks(seed(3))


@pytest.mark.parametrize("lik", ["binomial", "beta_binomial"])
def test_model_logp_is_the_numpy_loglik(lik, averaged):
    import pymc as pm
    import xarray as xr

    df, _ = averaged
    design, v = _prep(df, n_eval="n", likelihood=lik, counts="average")
    assert not np.allclose(design.y * v.n_eval, np.round(design.y * v.n_eval))
    model, point, _ = _model_logp(df, n_eval="n", likelihood=lik, counts="average")
    names = posterior_var_names(model)
    outs = model.replace_rvs_by_values([model[n] for n in names])
    y = model["y"]
    logp_y = model.replace_rvs_by_values([pm.logp(y, model.rvs_to_values[y])])[0]
    *values, ll_pymc = model.compile_fn([*outs, logp_y], inputs=model.value_vars,
                                        on_unused_input="ignore", mode="FAST_COMPILE")(point)
    post = xr.Dataset({n: (("chain", "draw", *model.named_vars_to_dims.get(n, ())),
                           np.asarray(val)[None, None])
                       for n, val in zip(names, values, strict=True)})
    ll_np = log_likelihood_draws(post, design, v)[0, 0]
    assert np.isfinite(ll_np).all()
    np.testing.assert_allclose(ll_np, ll_pymc, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def whole():
    rng = np.random.default_rng(seed(4))
    df = pd.DataFrame({"task": np.repeat(["a", "b"], 10), "x": rng.normal(size=20),
                       "n": 150})
    df["y"] = rng.binomial(150, 0.6, size=20) / 150
    return df


def test_whole_counts_model_unchanged(whole):
    # Default and explicit counts="whole" build the same graph; counts="average" on whole
    # counts has the same logp (the continuous pmf is the pmf there).
    _, _, default = _model_logp(whole, n_eval="n")
    _, _, explicit = _model_logp(whole, n_eval="n", counts="whole")
    _, _, avg = _model_logp(whole, n_eval="n", counts="average")
    assert default == explicit
    np.testing.assert_allclose(avg, explicit, rtol=1e-10)


# -- errors ---------------------------------------------------------------------------------
def test_error_non_whole_counts_names_the_option_and_rows(whole):
    df = whole.copy()
    df.loc[13, "y"] = (round(df.loc[13, "y"] * 150) + 0.4) / 150
    with pytest.raises(DataValidationError,
                       match=r"whole number .* at rows \[13\]\. .*pass counts='average'"):
        _prep(df, n_eval="n")
    assert _prep(df, n_eval="n", counts="average")[1].counts == "average"


def test_error_bad_counts(averaged):
    df, _ = averaged
    with pytest.raises(DataValidationError, match=r"'mean' is not a supported counts.*"
                                                  r"\['whole', 'average'\]"):
        _prep(df, n_eval="n", counts="mean")
    with pytest.raises(DataValidationError, match="counts='average' applies to the count"):
        _prep(df, counts="average")


# -- the transfer matrix's binomial path --------------------------------------------------
def averaged_units(seed_: int, m: int = 40):
    """Accuracies of ``m`` models on 3 tasks driven by one ability, each task the plain mean
    of ``N_SUB`` subtasks of different sizes; 'neg' goes against the ability."""
    rng = np.random.default_rng(seed_)
    g = rng.normal(size=m)
    loads = {"a": 0.9, "b": 0.7, "neg": -0.8}
    rows = []
    for t, load in loads.items():
        n_j = np.round(np.exp(rng.uniform(*np.log(SIZES), N_SUB))).astype(int)
        p = ndtr(0.2 + load * g + 0.1 * rng.normal(size=m))
        y = np.mean(rng.binomial(n_j, p[:, None]) / n_j, axis=1)
        rows.append(pd.DataFrame({"model": [f"m{i:02d}" for i in range(m)], "task": t, "y": y,
                                  "n": int(round(N_SUB**2 / np.sum(1.0 / n_j)))}))
    return pd.concat(rows, ignore_index=True)


def test_transfer_matrix_refuses_non_whole_counts_naming_the_option():
    df = averaged_units(seed(6), m=8)
    with pytest.raises(DataValidationError, match=r"whole number .*\(task, unit, score\).*"
                                                  r"counts='average'"):
        bs.fit_transfer_matrix(df, likelihood="binomial", n_eval="n")
    with pytest.raises(DataValidationError, match="counts='average' applies to the count"):
        bs.fit_transfer_matrix(df, counts="average")


def test_transfer_matrix_binomial_accepts_averages():
    from bayesslope.pairs.fit import _binomial_counts

    df = averaged_units(seed(7), m=24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = bs.fit_transfer_matrix(df, likelihood="binomial", n_eval="n", counts="average",
                                    draws=200, tune=200, chains=2, random_seed=seed(7),
                                    check_dependence=False)
    assert tm.spec["counts"] == "average"
    from bayesslope.report import _matrix_model_table

    assert "counts='average'" in dict(_matrix_model_table(tm).rows)["likelihood"]
    # The counts are y * n as is (not rounded).
    k = _binomial_counts(tm.design, "average")["k"]
    assert not np.allclose(k, np.round(k))
    s = tm.summary()
    assert (s.xs("neg", level="target")["p_negative"] > 0.95).all()
    assert (s.xs("neg", level="source")["p_negative"] > 0.95).all()
    assert s.loc[("a", "b"), "p_negative"] < 0.05
    assert s.loc[("b", "a"), "p_negative"] < 0.05


# -- recovery and the fit's consumers ----------------------------------------------------------
@pytest.fixture(scope="module")
def averaged_fit():
    df, truth = simulate_subtasks(seed(8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit_hierarchical(df, n_eval="n", counts="average", link="probit",
                                  x_better="higher", x_ref=0.0, draws=300, tune=300,
                                  chains=2, cores=1, random_seed=seed(8),
                                  check_dependence=False)
    return df, truth, fit


def test_averaged_fit_recovers_subtask_slopes(averaged_fit):
    # Scores are means of subtasks sharing the task's p = Phi(a + b x): the subtask-level
    # truth is the task slope b. Each 90% interval misses with probability ~0.1 when
    # calibrated, so fewer than 4 of 6 covering has probability < 0.02.
    _, truth, fit = averaged_fit
    s = fit.summary(ci_prob=0.9).loc[truth.index]
    covered = (s["eti90_lb"] <= truth) & (truth <= s["eti90_ub"])
    assert covered.sum() >= 4, pd.DataFrame({"truth": truth, "lb": s["eti90_lb"],
                                             "ub": s["eti90_ub"]})
    z = (s["mean"] - truth) / s["sd"]
    assert np.abs(z).mean() < 1.5


def test_averaged_fit_consumers(averaged_fit, tmp_path):
    df, _, fit = averaged_fit
    assert fit.spec["variants"]["counts"] == "average"
    from bayesslope.report import _fit_model_table  # the report says so

    assert "counts='average'" in dict(_fit_model_table(fit).rows)["likelihood"]
    # Pointwise log-likelihood on the density scale of y (+ log n), as for whole counts.
    ll = fit.log_likelihood()
    np.testing.assert_allclose(ll - np.log(fit.variants.n_eval),
                               fit.log_likelihood(data_scale=False))
    assert np.isfinite(ll).all()
    # Posterior predictive draws are k / n with k ~ Binomial(n, p): on the 1/n lattice.
    yrep = fit.posterior_predictive(random_seed=seed(9))
    k = yrep * fit.variants.n_eval
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)
    # The observation predictive covers the observed averages at their nominal rate
    # (0.9, 120 rows: below 0.75 is > 4 binomial sd away).
    pred = fit.predict(df, kind="observation", random_seed=seed(9))
    inside = (pred["eti90_lb"] <= df["y"]) & (df["y"] <= pred["eti90_ub"])
    assert inside.mean() > 0.75
    # Saved and loaded, the option travels with the fit.
    fit.to_netcdf(tmp_path / "fit.nc")
    back = bs.load_fit(tmp_path / "fit.nc")
    assert back.variants.counts == "average"
    np.testing.assert_allclose(back.log_likelihood(), ll)


# -- the command line ---------------------------------------------------------------------
class _Sampled(Exception):
    pass


@pytest.mark.parametrize("command", ["fit", "matrix"])
def test_cli_counts_flag(command, averaged, tmp_path, capsys, monkeypatch):
    import bayesslope.fit
    import bayesslope.pairs.fit
    from bayesslope.cli import main

    def reached(*args, **kwargs):
        raise _Sampled

    monkeypatch.setattr(bayesslope.fit, "sample_posterior", reached)
    monkeypatch.setattr(bayesslope.pairs.fit, "_sample", reached)
    df = averaged[0] if command == "fit" else averaged_units(seed(6), m=8)
    df.to_csv(tmp_path / "avg.csv", index=False)
    argv = [command, str(tmp_path / "avg.csv"), "--n-eval", "n", "--out", str(tmp_path / "o")]
    if command == "fit":
        argv += ["--x-better", "higher"]
    else:
        argv += ["--likelihood", "binomial"]
    assert main(argv) == 2
    assert "pass counts='average'" in capsys.readouterr().err
    with pytest.raises(_Sampled):  # the checks pass: sampling is reached
        main([*argv, "--counts", "average"])
