"""The per-task centered / non-centered choice of the full model.

Both regimes of the facts measured for this project: with every task well informed
and a wide population, centered is efficient; with a population scale near zero the
posterior has a funnel, and centered sampling diverges (SBC of the full model failed
with the earlier rule, which compared se with the raw spread of OLS estimates).
"""

import numpy as np
import pandas as pd
import pytest

from bayesslope.data import prepare_design
from bayesslope.model import choose_centered


def _frame(seed, n_tasks, n_points, slope_sd, noise_sd, x_sd=1.0):
    rng = np.random.default_rng(seed)
    rows = []
    slopes = -0.5 + slope_sd * rng.standard_normal(n_tasks)
    intercepts = 0.5 + slope_sd * rng.standard_normal(n_tasks)
    for t in range(n_tasks):
        x = rng.normal(3.0, x_sd, n_points)
        y = intercepts[t] + slopes[t] * (x - 3.0) + noise_sd * rng.standard_normal(n_points)
        rows.append(pd.DataFrame({"task": f"t{t}", "x": x, "y": y}))
    return prepare_design(pd.concat(rows, ignore_index=True), warn_weak=False)


@pytest.mark.parametrize("seed", range(5))
def test_no_population_spread_means_non_centered(seed):
    # slope_sigma = intercept_sigma = 0: every task sits in the funnel's neck.
    design = _frame(seed, n_tasks=12, n_points=10, slope_sd=0.0, noise_sd=0.1)
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
