"""The per-task centered / non-centered choice of the full model.

Both regimes of the facts measured for this project: with every task well informed
and a wide population, centered is efficient; with a population scale near zero the
posterior has a funnel, and centered sampling diverges (SBC of the full model failed
with the earlier rule, which compared se with the raw spread of OLS estimates).
"""

import numpy as np
import pandas as pd
import pytest
from conftest import seed

from bayesslope.data import prepare_design
from bayesslope.resolve import _between_task_sd, choose_centered, choose_centered_log_sigma


def _frame(k, n_tasks, n_points, slope_sd, noise_sd, x_sd=1.0):
    rng = np.random.default_rng(seed(k))
    rows = []
    slopes = -0.5 + slope_sd * rng.standard_normal(n_tasks)
    intercepts = 0.5 + slope_sd * rng.standard_normal(n_tasks)
    for t in range(n_tasks):
        x = rng.normal(3.0, x_sd, n_points)
        y = intercepts[t] + slopes[t] * (x - 3.0) + noise_sd * rng.standard_normal(n_points)
        rows.append(pd.DataFrame({"task": f"t{t}", "x": x, "y": y}))
    return prepare_design(pd.concat(rows, ignore_index=True), warn_weak=False)


@pytest.mark.parametrize("k", range(5))
def test_no_population_spread_means_non_centered(k):
    # slope_sigma = intercept_sigma = 0: every task sits in the funnel's neck.
    design = _frame(k, n_tasks=12, n_points=10, slope_sd=0.0, noise_sd=0.1)
    assert not choose_centered(design).any()


def test_precise_tasks_and_wide_population_are_centered():
    # Standard errors ~0.1 / sqrt(40) against a population scale of 1: data dominate.
    design = _frame(0, n_tasks=12, n_points=40, slope_sd=1.0, noise_sd=0.1)
    assert choose_centered(design).all()


def test_weak_task_is_non_centered_among_precise_ones():
    design = _frame(1, n_tasks=10, n_points=40, slope_sd=1.0, noise_sd=0.1)
    df = pd.DataFrame({"task": np.array(design.tasks)[design.task_idx], "x": design.x,
                       "y": design.y})
    weak = pd.DataFrame({"task": "weak", "x": [3.0, 3.0001], "y": [0.4, 0.6]})
    design = prepare_design(pd.concat([df, weak], ignore_index=True), warn_weak=False)
    centered = pd.Series(choose_centered(design), index=list(design.tasks))
    assert not centered["weak"]
    assert centered.drop("weak").all()


def test_between_task_sd_recovers_tau_with_unequal_standard_errors():
    # Meta-analysis setting with known truth: estimates = theta_t + se_t * eps,
    # theta_t ~ Normal(0, tau). Half the tasks are 30x more precise than the rest; the
    # precision-weighted (DerSimonian-Laird) moment estimate must be consistent for tau.
    tau, k = 0.1, 400
    rng = np.random.default_rng(seed(3))
    se = np.where(np.arange(k) % 2 == 0, 0.01, 0.3)
    est = tau * rng.standard_normal(k) + se * rng.standard_normal(k)
    assert _between_task_sd(est, se) == pytest.approx(tau, rel=0.15)
    assert _between_task_sd(est, np.full(k, 0.0)) > 0  # exact fits: finite, positive


def test_per_task_noise_centers_the_precise_tasks():
    # SBC of per_task_sigma=True failed (R-hat 2.3): one task with sigma ~ 0 among noisy
    # ones, a small slope spread; the pooled residual variance made every task look weak
    # and the exact task, non-centered, pinned mu + tau z to a razor-thin ridge.
    rng = np.random.default_rng(seed(5))
    noise = np.array([0.001, 0.6, 0.5, 0.6, 0.4, 0.5, 0.001, 0.6])
    rows = []
    for t, s in enumerate(noise):
        x = rng.normal(0.0, 1.0, 15)
        y = 1.0 + (0.1 + 0.07 * rng.standard_normal()) * x + s * rng.standard_normal(15)
        rows.append(pd.DataFrame({"task": f"t{t}", "x": x, "y": y}))
    design = prepare_design(pd.concat(rows, ignore_index=True), warn_weak=False)
    per_task = choose_centered(design, per_task_noise=True)
    np.testing.assert_array_equal(per_task, noise < 0.01)
    assert not choose_centered(design).any()  # pooled variance: all look weak


def _noise_frame(k, noise, n_points=20):
    rng = np.random.default_rng(seed(k))
    rows = []
    for t, s in enumerate(noise):
        x = rng.normal(0.0, 1.0, n_points)
        rows.append(pd.DataFrame({"task": f"t{t}", "x": x,
                                  "y": 0.5 * x + s * rng.standard_normal(n_points)}))
    return prepare_design(pd.concat(rows, ignore_index=True), warn_weak=False)


@pytest.mark.parametrize("k", range(3))
def test_pooled_log_sigma_alike_noise_is_non_centered(k):
    # Every task has sigma = 0.2 (sigma_log_sd = 0): the funnel case of the pooled-sigma
    # population; the old rule (centered whenever n >= 10) centered all 20-point tasks.
    design = _noise_frame(k, np.full(12, 0.2))
    assert not choose_centered_log_sigma(design).any()


def test_pooled_log_sigma_spread_noise_is_centered():
    # log sigma_t spread with sd 1.5 against a per-task se of 1 / sqrt(2 * 38) = 0.11.
    noise = np.exp(np.random.default_rng(seed(0)).normal(-1.5, 1.5, 12))
    design = _noise_frame(0, noise, n_points=40)
    assert choose_centered_log_sigma(design).all()
