"""Parameterization choices of the count likelihoods (issue 25), without sampling.

The count chooser reads each task's information from its test-set sizes: a task of
thousands of items near the ceiling is strongly informed (centered), a task on the
chance floor is not (non-centered), and a population scale that may be 0 centers
nothing. The whitened centered basis is a fixed linear map: the model's log density at a
whitened point equals the plain centered model's at the mapped coefficients.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import seed
from scipy.special import ndtr

from bayesslope.data import prepare_design
from bayesslope.model import build_model
from bayesslope.resolve import (
    _between_task_sd_lower,
    centered_basis,
    choose_centered_counts,
    resolve_model,
    task_count_fits,
)
from bayesslope.variant_data import prepare_variants


def _suite(k, n_tasks=10, n_models=40, slope_sd=0.6, n_eval=2000, extra=None):
    """Probit tasks with a chance floor 0.25; ``extra`` adds (name, a, b, n) tasks."""
    rng = np.random.default_rng(seed(k))
    x = rng.uniform(-1.0, 1.0, n_models)
    tasks = [(f"t{t}", rng.normal(0.0, 0.6), 1.0 + slope_sd * rng.standard_normal(), n_eval)
             for t in range(n_tasks)] + list(extra or [])
    rows = []
    for name, a, b, n in tasks:
        p = 0.25 + 0.75 * ndtr(a + b * x)
        rows.append(pd.DataFrame({"task": name, "x": x, "y": rng.binomial(n, p) / n,
                                  "n": n, "chance": 0.25}))
    df = pd.concat(rows, ignore_index=True)
    design = prepare_design(df, x_better="higher", y_better="higher", x_ref=0.0,
                            warn_weak=False)
    variants = prepare_variants(df, design, link="probit", likelihood="binomial", n_eval="n",
                                chance="chance")
    return design, variants


def test_count_fit_recovers_a_task_within_its_standard_errors():
    a, b = -0.3, 1.4
    design, variants = _suite(1, extra=[("probe", a, b, 5000)])
    fits = task_count_fits(design, variants)
    t = list(design.tasks).index("probe")
    se = np.sqrt(np.diag(np.linalg.inv(fits["info"][t])))
    assert np.all(np.abs(fits["estimate"][t] - [a, b]) < 4.0 * se)
    assert se[1] < 0.05  # 40 models x 5,000 items: the slope known to a few hundredths


def test_informed_task_near_ceiling_is_centered_and_floor_task_is_not():
    # "ceiling": 0.99+ for most models but 30,000 items each; "floor": at chance for
    # nearly every model (eta far below 0), 100 items.
    design, variants = _suite(2, extra=[("ceiling", 2.3, 1.0, 30000), ("floor", -4.0, 0.8, 100)])
    centered = pd.Series(choose_centered_counts(design, variants, whitened=True),
                         index=list(design.tasks))
    assert centered["ceiling"]
    assert not centered["floor"]
    assert centered.drop(["ceiling", "floor"]).all()  # 2,000 items, slope sd 0.6: informed


@pytest.mark.parametrize("k", range(3))
def test_no_population_spread_centers_nothing(k):
    # Every task the same curve, 100 items: tau's lower bound is 0.
    design, variants = _suite(10 + k, n_tasks=12, slope_sd=0.0, n_eval=100)
    fits = task_count_fits(design, variants)
    fits["estimate"][:, 0] = fits["estimate"][:, 0].mean()  # intercepts alike as well
    assert not choose_centered_counts(design, variants, fits=fits, whitened=True).any()


@pytest.mark.parametrize("rho, centered", [(0.0, True), (-0.95, False)])
def test_population_correlation_counts_in_the_choice(rho, centered):
    """se 0.02 against tau_a 0.05: precise enough, unless the population correlation
    (-0.95) narrows the intercept given the slope to 0.016 (a funnel when centered)."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed(7))
    k, se = 300, 0.02
    sd = np.array([0.05, 1.0])
    pop = np.array([[1.0, rho], [rho, 1.0]]) * np.outer(sd, sd)
    est = rng.multivariate_normal([0.0, 1.0], pop, size=k) + se * rng.standard_normal((k, 2))
    fits = {"estimate": est, "info": np.broadcast_to(np.eye(2) / se**2, (k, 2, 2)).copy(),
            "dispersion": np.ones(k), "informative": np.ones(k, dtype=bool)}
    chosen = choose_centered_counts(SimpleNamespace(n_tasks=k),
                                    SimpleNamespace(likelihood="binomial"), fits=fits,
                                    whitened=True)
    assert chosen.all() if centered else not chosen.any()


@pytest.mark.parametrize("k", range(3))
def test_a_floor_task_does_not_fake_a_population_correlation(k):
    """Pythia's shape: tasks known to ~0.03 along a -0.95 sampling correlation, between-task
    sds 1.0 and 0.4 (uncorrelated), and one task on the chance floor known to ~100. The
    floor task's covariance must not enter the moment estimate of the population
    correlation: it made the "spread" negative, the correlation +-0.99 after clipping, and
    precisely measured tasks non-centered (a[5]-b[5] at -0.97 in a diagonal metric)."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed(40 + k))
    n_precise = 6
    c = np.array([[1.0, -0.95], [-0.95, 1.0]]) * 0.035**2
    est = rng.normal([-1.0, 0.5], [1.0, 0.4], size=(n_precise, 2))
    info = np.broadcast_to(np.linalg.inv(c), (n_precise, 2, 2))
    floor_cov = np.array([[1.0, -0.3], [-0.3, 1.0]]) * 100.0**2
    fits = {"estimate": np.vstack([est, [-4.4, 0.06]]),
            "info": np.concatenate([info, np.linalg.inv(floor_cov)[None]]),
            "dispersion": np.ones(n_precise + 1), "informative": np.ones(n_precise + 1, bool)}
    chosen = choose_centered_counts(SimpleNamespace(n_tasks=n_precise + 1),
                                    SimpleNamespace(likelihood="binomial"), fits=fits,
                                    whitened=True)
    assert chosen[:n_precise].all()
    assert not chosen[n_precise]


def test_q_profile_lower_bound_is_below_tau_and_close_to_it_with_many_tasks():
    rng = np.random.default_rng(seed(5))
    tau, se = 0.5, rng.uniform(0.05, 0.2, 400)
    est = rng.normal(0.0, np.sqrt(tau**2 + se**2))
    lower = _between_task_sd_lower(est, se)
    assert 0.8 * tau < lower < 1.05 * tau
    assert _between_task_sd_lower(rng.normal(0.0, se), se) < 0.1  # tau = 0


def test_whitened_basis_is_the_same_model():
    """logp(u) of the whitened model == logp of the plain centered model at theta(u)."""
    design, variants = _suite(3, n_tasks=6)
    config = resolve_model(design, variants)
    assert config.centered_basis and any(config.centered_tasks)
    plain = build_model(design, dataclasses.replace(config, centered_basis=()), variants)
    white = build_model(design, config, variants)
    assert "coef_whitened" in white.named_vars and "coef_centered" in plain.named_vars
    rng = np.random.default_rng(seed(6))
    point = {k: v + 0.3 * rng.standard_normal(np.shape(v))
             for k, v in white.initial_point().items()}
    outs = white.replace_rvs_by_values([white["intercept"], white["slope"]])
    coef = white.compile_fn(outs, inputs=white.value_vars, on_unused_input="ignore")(point)
    c_idx = np.flatnonzero(config.centered_tasks)
    plain_point = {k: v for k, v in point.items() if k != "coef_whitened"}
    plain_point["coef_centered"] = np.stack([coef[0][c_idx], coef[1][c_idx]], axis=1)
    np.testing.assert_allclose(white.compile_logp()(point), plain.compile_logp()(plain_point),
                               rtol=1e-10)


def test_basis_whitens_the_task_information():
    design, variants = _suite(4, n_tasks=6)
    fits = task_count_fits(design, variants)
    basis = np.asarray(centered_basis(design, variants, fits))
    chol = np.zeros((len(basis), 2, 2))
    chol[:, 0, 0], chol[:, 1, 0], chol[:, 1, 1] = basis[:, 2], basis[:, 3], basis[:, 4]
    # L^T (I + ridge) L = identity: unit scale and no correlation in u.
    prec = fits["info"] + np.diag(fits["ridge"])
    eye = np.einsum("tji,tjk,tkl->til", chol, prec, chol)
    np.testing.assert_allclose(eye, np.broadcast_to(np.eye(2), eye.shape), atol=1e-8)
