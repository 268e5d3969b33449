"""Orientation and invariance properties, on the design (Hypothesis) and on fits.

Design-level properties are exact and cheap, so Hypothesis explores them; the sampling
properties use a handful of shared fits of one simulated frame (tests/conftest.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import fit_quietly, seed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesslope.data import prepare_design

SCALE_C = 10.0


# -- design level (exact) -------------------------------------------------------------------

finite = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_subnormal=False)


@st.composite
def frames(draw):
    """2-4 tasks with 2-6 rows each; x not constant over the frame."""
    n_tasks = draw(st.integers(2, 4))
    rows = []
    for k in range(n_tasks):
        n = draw(st.integers(2, 6))
        xs = draw(st.lists(finite, min_size=n, max_size=n))
        ys = draw(st.lists(finite, min_size=n, max_size=n))
        rows += [{"task": f"task{k}", "x": a, "y": b} for a, b in zip(xs, ys, strict=True)]
    df = pd.DataFrame(rows)
    x = df["x"].to_numpy()
    if np.ptp(x) <= 1e-9 * max(1.0, np.abs(x).max()):
        df.loc[0, "x"] = x[0] + 1.0
    perm = draw(st.permutations(range(len(df))))
    return df, list(perm)


def _design(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weak-task warnings are expected for tiny tasks
        return prepare_design(df, **kw)


def _per_task_sorted(design, values):
    return {t: np.sort(values[design.task_idx == k]) for k, t in enumerate(design.tasks)}


DESIGN_SETTINGS = settings(max_examples=60, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow])


@DESIGN_SETTINGS
@given(frames())
def test_row_order_does_not_change_the_design(case):
    """Any permutation of rows gives bit-identical arrays, x_ref and scales."""
    df, perm = case
    d1 = _design(df)
    d2 = _design(df.iloc[perm])
    assert d1.tasks == d2.tasks
    for name in ("task_idx", "x", "y", "xc"):
        np.testing.assert_array_equal(getattr(d1, name), getattr(d2, name))
    assert (d1.x_ref, d1.x_scale, d1.y_scale) == (d2.x_ref, d2.x_scale, d2.y_scale)
    assert d1.data_hash() == d2.data_hash()


@DESIGN_SETTINGS
@given(frames())
def test_task_label_order_does_not_change_the_design(case):
    """Tasks are sorted by name: the order in which they first appear does not matter."""
    df, _ = case
    reversed_tasks = pd.concat([g for _, g in df.groupby("task")][::-1])
    d1, d2 = _design(df), _design(reversed_tasks)
    assert d1.tasks == d2.tasks == tuple(sorted(df["task"].unique()))
    np.testing.assert_array_equal(d1.xc, d2.xc)
    np.testing.assert_array_equal(d1.y, d2.y)


@DESIGN_SETTINGS
@given(frames())
def test_design_orientation_signs(case):
    """x_better flips the sign of the covariate; negating x as well restores it."""
    df, _ = case
    low = _design(df, x_better="lower")
    high = _design(df, x_better="higher")
    np.testing.assert_array_equal(high.xc, -low.xc)
    assert np.all(low.task_sign == -1) and np.all(high.task_sign == 1)
    neg = df.assign(x=-df["x"])
    both = _design(neg, x_better="higher")
    # Negated x reverses the order of rows within a task; compare per task, sorted.
    a, b = _per_task_sorted(low, low.xc), _per_task_sorted(both, both.xc)
    for t in low.tasks:
        np.testing.assert_allclose(b[t], a[t], rtol=1e-12, atol=1e-9)
    # y_better per task flips only that task's sign.
    first = low.tasks[0]
    mixed = _design(df, x_better="lower",
                    y_better={t: ("lower" if t == first else "higher") for t in low.tasks})
    assert mixed.task_sign[0] == 1 and np.all(mixed.task_sign[1:] == -1)


@DESIGN_SETTINGS
@given(frames(), st.sampled_from([0.1, 3.0, 1000.0]))
def test_design_scaling_of_x(case, c):
    """Scaling x by c scales the covariate, x_ref and sd(x) by c (default priors follow)."""
    df, _ = case
    d1 = _design(df)
    d2 = _design(df.assign(x=df["x"] * c))
    np.testing.assert_allclose(d2.xc, c * d1.xc, rtol=1e-9, atol=1e-9 * c)
    assert d2.x_scale == pytest.approx(c * d1.x_scale, rel=1e-9)
    assert d2.x_ref == pytest.approx(c * d1.x_ref, rel=1e-9, abs=1e-9 * c)


# -- fits ----------------------------------------------------------------------------------

SEED = seed(100)  # the base fit's random_seed (conftest.recovery_fits: seed(100 + k))


@pytest.fixture(scope="module")
def flipped_fit(base_sim):
    return fit_quietly(base_sim.df, x_better="higher", random_seed=SEED)


@pytest.fixture(scope="module")
def negated_fit(base_sim):
    df = base_sim.df.assign(x=-base_sim.df["x"])
    return fit_quietly(df, x_better="higher", random_seed=SEED)


@pytest.fixture(scope="module")
def scaled_fit(base_sim):
    df = base_sim.df.assign(x=base_sim.df["x"] * SCALE_C)
    return fit_quietly(df, random_seed=SEED)


@pytest.fixture(scope="module")
def shuffled_fit(base_sim):
    df = base_sim.df.sample(frac=1.0, random_state=seed(7))
    assert not df.index.equals(base_sim.df.index)
    return fit_quietly(df, random_seed=SEED)


def _mean_and_mcse(fit, var):
    """Posterior mean and its Monte Carlo standard error (arviz), per task."""
    import arviz as az

    da = fit.posterior["posterior"][var]
    mcse = az.mcse(fit.posterior["posterior"].to_dataset()[[var]], method="mean")[var]
    return da.mean(("chain", "draw")).values, mcse.values


def _z(fit_a, var_a, fit_b, var_b, factor=1.0):
    """z-score of mean(a) - factor * mean(b), using both fits' MCSE."""
    ma, sa = _mean_and_mcse(fit_a, var_a)
    mb, sb = _mean_and_mcse(fit_b, var_b)
    return (ma - factor * mb) / np.hypot(sa, factor * sb)


def test_flipping_x_better_flips_transfer_slope(base_fit, flipped_fit, base_sim):
    """x_better='higher' on the same data: slope -> -slope; slope_data unchanged.

    The default priors are symmetric in the slope (slope_mu ~ Normal(0, .), LKJ corr), so
    the flipped posterior is exactly the mirror image; means agree within MC error.
    """
    z_slope = _z(flipped_fit, "slope", base_fit, "slope", factor=-1.0)
    z_data = _z(flipped_fit, "slope_data", base_fit, "slope_data")
    assert np.all(np.abs(z_slope) < 4), z_slope
    assert np.all(np.abs(z_data) < 4), z_data
    # Values, not only agreement: the base fit's slopes are mostly positive (transfer
    # with a loss as x), the flipped ones mostly negative.
    p_base = base_fit.p_negative_transfer()
    p_flip = flipped_fit.p_negative_transfer()
    np.testing.assert_allclose(p_flip, 1 - p_base, atol=0.02)
    # Tasks whose true slope is > 0.05 (> 5 se above zero): P(slope > 0) > 0.99 before
    # the flip, so P(negative) > 0.99 after it.
    strong = base_sim.slope.drop("t0") > 0.05
    assert strong.sum() >= 4 and (p_flip.drop("t0")[strong] > 0.99).all()


def test_negating_x_and_flipping_x_better_leaves_slope_unchanged(base_fit, negated_fit):
    """x -> -x with x_better flipped gives the same covariate, hence the same posterior.

    slope (oriented) is unchanged; slope_data (dy/dx) changes sign because x did.
    """
    z_slope = _z(negated_fit, "slope", base_fit, "slope")
    z_data = _z(negated_fit, "slope_data", base_fit, "slope_data", factor=-1.0)
    assert np.all(np.abs(z_slope) < 4), z_slope
    assert np.all(np.abs(z_data) < 4), z_data


def test_scaling_x_scales_data_unit_slope(base_fit, scaled_fit):
    """x -> c x (c = 10): slope_data -> slope_data / c, slope_std unchanged.

    The default priors are scaled to sd(x) (slope_mu ~ Normal(0, 2.5 sd(y)/sd(x)),
    slope_sigma ~ HalfNormal(sd(y)/sd(x))) and x_ref = mean(x) scales with x, so the
    model for c x is the model for x reparameterised by slope' = slope / c: the
    posterior of c * slope' equals that of slope. Only the sampler's path differs
    (mass-matrix adaptation starts from unit scale), hence comparison within MC error.
    """
    z = _z(scaled_fit, "slope_data", base_fit, "slope_data", factor=1.0 / SCALE_C)
    assert np.all(np.abs(z) < 4), z
    # Intercepts are measured at x_ref = mean(x), the same point in both fits.
    z_int = _z(scaled_fit, "intercept", base_fit, "intercept")
    assert np.all(np.abs(z_int) < 4), z_int
    z_std = _z(scaled_fit, "slope_std", base_fit, "slope_std")
    assert np.all(np.abs(z_std) < 4), z_std
    # Interval width scales too: posterior sd ratio near 1/c (sd estimate error ~ 5%).
    ratio = scaled_fit.summary()["sd"] / base_fit.summary()["sd"]
    np.testing.assert_allclose(ratio, 1.0 / SCALE_C, rtol=0.2)


def test_row_order_gives_identical_draws(base_fit, shuffled_fit):
    """Shuffled rows, same random_seed: the draws are bit-for-bit identical."""
    for var in ("slope", "intercept", "slope_mu", "slope_sigma", "sigma", "corr"):
        np.testing.assert_array_equal(
            shuffled_fit.posterior["posterior"][var].values,
            base_fit.posterior["posterior"][var].values,
            err_msg=var,
        )
    assert shuffled_fit.design.data_hash() == base_fit.design.data_hash()
    pd.testing.assert_frame_equal(shuffled_fit.summary(), base_fit.summary())


def test_metric_names_recorded_when_one_per_frame():
    import bayesslope as bs

    df = bs.load_dataset("pythia")
    cols = prepare_design(df, warn_weak=False).columns
    assert (cols["x_metric"], cols["y_metric"]) == ("lambada_openai_log_ppl", "acc")
    # Several y metrics (one per task): no single name to label an axis with.
    mixed = df.assign(y_metric=np.where(df["task"] == "sciq", "acc_norm", "acc"))
    cols = prepare_design(mixed, warn_weak=False).columns
    assert cols["x_metric"] == "lambada_openai_log_ppl" and "y_metric" not in cols
    assert "x_metric" not in prepare_design(df.drop(columns="x_metric"), warn_weak=False).columns
