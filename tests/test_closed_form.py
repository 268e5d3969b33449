"""Closed form: with the population and sigma fixed, each task's posterior is Gaussian.

Fixing intercept_mu, slope_mu, intercept_sigma, slope_sigma, corr and sigma (with
``pm.do`` on the built model) leaves independent conjugate normal-normal regressions:

    (a_t, b_t) ~ N(mu, Sigma),  y_i ~ N(a_t + b_t xc_i, sigma^2),  X_t = [1, xc]
    precision_t = Sigma^-1 + X_t' X_t / sigma^2
    mean_t      = precision_t^-1 (Sigma^-1 mu + X_t' y_t / sigma^2)

NUTS draws of the model as bayesslope builds it must match these within Monte Carlo error.
The closed form is computed from the raw frame, not from the design object, so the
orientation and centering of xc are checked too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import seed

from bayesslope.data import prepare_design
from bayesslope.model import ModelConfig, build_model
from bayesslope.priors import default_priors
from bayesslope.sampling import SamplerConfig, sample_model

FIXED = {
    "intercept_mu": 0.55,
    "slope_mu": 0.08,
    "intercept_sigma": 0.05,
    "slope_sigma": 0.04,
    "corr": 0.3,
    "sigma": 0.03,
}
# Per task: number of points. A 2-point task is weak (prior and data both matter).
SIZES = {"a": 12, "b": 12, "c": 2, "d": 8}
# Both sampling paths of the model: centered for a and c, non-centered for b and d.
CENTERED = (True, False, True, False)


def _frame():
    rng = np.random.default_rng(seed(3))
    rows = []
    for k, (name, n) in enumerate(SIZES.items()):
        x = rng.uniform(2.0, 4.0, n)
        y = 0.5 + 0.05 * k - 0.1 * (x - 3.0) + rng.normal(0.0, 0.03, n)
        rows.append(pd.DataFrame({"task": name, "x": x, "y": y}))
    return pd.concat(rows, ignore_index=True)


def closed_form(df):
    """Exact posterior mean (2,) and covariance (2, 2) of (intercept, slope) per task."""
    f = FIXED
    mu = np.array([f["intercept_mu"], f["slope_mu"]])
    ta, tb, rho = f["intercept_sigma"], f["slope_sigma"], f["corr"]
    sigma_pop = np.array([[ta**2, rho * ta * tb], [rho * ta * tb, tb**2]])
    prior_prec = np.linalg.inv(sigma_pop)
    x_ref = df["x"].mean()
    out = {}
    for name, g in df.groupby("task"):
        xc = -1.0 * (g["x"].to_numpy() - x_ref)  # x lower is better, y higher: sign -1
        X = np.column_stack([np.ones_like(xc), xc])
        prec = prior_prec + X.T @ X / f["sigma"] ** 2
        cov = np.linalg.inv(prec)
        mean = cov @ (prior_prec @ mu + X.T @ g["y"].to_numpy() / f["sigma"] ** 2)
        out[name] = (mean, cov)
    return out


@pytest.fixture(scope="module")
def conditioned_draws():
    import pymc as pm

    df = _frame()
    design = prepare_design(df, x_better="lower", y_better="higher", warn_weak=False)
    priors = default_priors(float(design.y.mean()), design.x_scale, design.y_scale)
    model = build_model(design, ModelConfig(priors=priors, centered_tasks=CENTERED))
    # corr is a Deterministic of corr_unit = (corr + 1) / 2 ~ Beta(eta, eta).
    fixed = {k: v for k, v in FIXED.items() if k != "corr"}
    fixed["corr_unit"] = (FIXED["corr"] + 1.0) / 2.0
    conditioned = pm.do(model, fixed)
    free = {rv.name for rv in conditioned.free_RVs}
    assert free == {"coef_centered", "coef_offset"}, free
    tree = sample_model(
        conditioned,
        SamplerConfig(draws=2000, tune=500, chains=2, random_seed=seed(11), cores=1),
        var_names=["intercept", "slope"],
    )
    return df, tree


def test_fixed_population_posterior_matches_conjugate_gaussian(conditioned_draws):
    """Means (z < 4 with arviz MCSE), sds (z < 4 with the sd MCSE) and correlations."""
    import arviz as az

    df, tree = conditioned_draws
    exact = closed_form(df)
    post = tree["posterior"].to_dataset()
    assert int(tree["sample_stats"]["diverging"].sum()) == 0
    mcse_mean = az.mcse(post, method="mean")
    mcse_sd = az.mcse(post, method="sd")
    for j, var in enumerate(("intercept", "slope")):
        for name in SIZES:
            draws = post[var].sel(task=name).values.ravel()
            mean, cov = exact[name]
            sd = np.sqrt(cov[j, j])
            z_mean = (draws.mean() - mean[j]) / float(mcse_mean[var].sel(task=name))
            z_sd = (draws.std(ddof=1) - sd) / float(mcse_sd[var].sel(task=name))
            assert abs(z_mean) < 4, (var, name, draws.mean(), mean[j], z_mean)
            assert abs(z_sd) < 4, (var, name, draws.std(ddof=1), sd, z_sd)
            # Coarse sanity bound; the z-score above is the real check (sd MCSE is 1-2%).
            assert draws.std(ddof=1) == pytest.approx(sd, rel=0.08)
    for name in SIZES:
        a = post["intercept"].sel(task=name).values.ravel()
        b = post["slope"].sel(task=name).values.ravel()
        cov = exact[name][1]
        rho = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
        # sd of a sample correlation is (1 - rho^2) / sqrt(n_eff); n_eff >= 1000 here.
        assert np.corrcoef(a, b)[0, 1] == pytest.approx(rho, abs=4 * (1 - rho**2) / np.sqrt(1000))


def test_closed_form_is_not_trivially_the_prior_or_ols():
    """Guard: the check has teeth. The exact posterior is far, in units of its own sd, from
    both flat-prior OLS and the population mean, whereas the sampled means are checked
    to 4 MCSE, about 4 / sqrt(4000) = 0.06 sd. A model that dropped the population term
    (or the data term) would miss by more than 0.25 sd (resp. 2 sd) on at least one of
    tasks a, c, d. (Not on each: how far a 12-point task's OLS lies from the population
    depends on the simulated data; for BAYESSLOPE_TEST_SEED=1 task a's is 0.18 sd.)
    """
    df = _frame()
    exact = closed_form(df)
    prior = np.array([FIXED["intercept_mu"], FIXED["slope_mu"]])
    from_ols, from_prior = {}, {}
    for name in ("a", "c", "d"):
        mean, cov = exact[name]
        sd = np.sqrt(np.diag(cov))
        g = df[df["task"] == name]
        xc = -(g["x"] - df["x"].mean())
        ols = np.polyfit(xc, g["y"], 1)[::-1]  # (intercept, slope) at x_ref
        from_ols[name] = np.max(np.abs(mean - ols) / sd)
        from_prior[name] = np.max(np.abs(mean - prior) / sd)
    assert max(from_ols.values()) > 0.25, from_ols
    assert max(from_prior.values()) > 2.0, from_prior
    # The 2-point task is pulled strongly toward the population: its posterior sd is a
    # sizeable fraction of the prior sd, unlike the 12-point tasks.
    assert np.sqrt(exact["c"][1][1, 1]) > 1.5 * np.sqrt(exact["a"][1][1, 1])
