"""Ranks, ROPE decisions and the multiplicity-aware negative list (bayesslope.decisions).

Exact answers come from synthetic posteriors built by hand (the fraction of draws in each
region is known by construction); the session fit ``base_fit`` (planted negative task
``t0``, true slope -0.06 against a population of N(0.10, 0.03)) checks the wiring and the
answer that the planted task is the flattest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import PLANTED_TASK, seed

import bayesslope as bs
from bayesslope import DataValidationError, decisions


def _tree(slope: np.ndarray, tasks) -> xr.DataTree:
    """A posterior DataTree with ``slope`` of dims (chain, draw, task)."""
    slope = np.asarray(slope, dtype=float)
    ds = xr.Dataset({"slope": (("chain", "draw", "task"), slope)},
                    coords={"chain": np.arange(slope.shape[0]),
                            "draw": np.arange(slope.shape[1]), "task": list(tasks)})
    return xr.DataTree.from_dict({"posterior": ds})


def _columns(values_per_task: list[np.ndarray]) -> np.ndarray:
    """Stack per-task draw vectors (each of length 2 * m) into (2, m, task)."""
    arr = np.stack(values_per_task, axis=-1)
    return arr.reshape(2, -1, arr.shape[-1])


# -- ranks --------------------------------------------------------------------------------


def test_rank_draws_are_permutations():
    rng = np.random.default_rng(seed(1))
    draws = rng.normal(size=(200, 6))
    ranks = decisions.rank_draws(draws)
    np.testing.assert_array_equal(np.sort(ranks, axis=1), np.tile(np.arange(1, 7), (200, 1)))
    # Rank 1 is the smallest slope of the draw.
    np.testing.assert_array_equal(np.argmin(draws, axis=1), np.argmin(ranks, axis=1))


def test_rank_summary_exact_on_synthetic_posterior():
    # Three tasks, 100 draws: "a" < "b" < "c" in 70 draws, "b" < "a" < "c" in 30 draws.
    a = np.r_[np.full(70, -1.0), np.full(30, 0.5)]
    b = np.r_[np.full(70, 0.2), np.full(30, -2.0)]
    c = np.full(100, 3.0)
    table = decisions.rank_summary(_tree(_columns([a, b, c]), ["a", "b", "c"]), k=2)
    assert list(table.index) == ["a", "b", "c"]  # mean ranks 1.3, 1.7, 3
    np.testing.assert_allclose(table["mean_rank"], [1.3, 1.7, 3.0])
    np.testing.assert_allclose(table["p_flattest"], [0.7, 0.3, 0.0])
    np.testing.assert_allclose(table["p_bottom_2"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(table["p_negative"], [0.7, 0.3, 0.0])
    # 90% interval of rank "a": 5% quantile 1, 95% quantile 2; "c" always 3.
    assert table.loc["a", ["rank_eti90_lb", "rank_eti90_ub"]].tolist() == [1, 2]
    assert table.loc["c", ["rank_eti90_lb", "rank_eti90_ub"]].tolist() == [3, 3]
    assert table.attrs["k"] == 2 and table.attrs["n_draws"] == 100


def test_rank_tasks_on_fit_probabilities_sum(base_fit):
    table = base_fit.rank_tasks(k=3, ci_prob=0.8)
    n_tasks = base_fit.design.n_tasks
    assert set(table.index) == set(base_fit.design.tasks)
    assert table["p_flattest"].sum() == pytest.approx(1.0, abs=1e-12)
    assert table["p_bottom_3"].sum() == pytest.approx(3.0, abs=1e-12)
    assert table["mean_rank"].sum() == pytest.approx(n_tasks * (n_tasks + 1) / 2)
    assert table["mean_rank"].is_monotonic_increasing
    # The 80% rank interval: bounds are ranks, and (equal-tailed, on discrete ranks) at
    # most 10% of the draws fall below / above it. (The mean rank may lie outside it: a
    # task ranked last in 98% of draws has mean rank < n but interval [n, n].)
    lb, ub = table["rank_eti80_lb"], table["rank_eti80_ub"]
    assert ((1 <= lb) & (lb <= ub) & (ub <= n_tasks)).all()
    slope = base_fit.posterior["posterior"]["slope"].transpose("chain", "draw", "task")
    draws = slope.values.reshape(-1, n_tasks)
    ranks = pd.DataFrame(draws.argsort(axis=1).argsort(axis=1) + 1,
                         columns=list(slope["task"].values))[table.index]
    assert ((ranks < lb).mean() <= 0.1).all() and ((ranks > ub).mean() <= 0.1).all()
    pd.testing.assert_series_equal(table["p_negative"],
                                   base_fit.p_negative_transfer().reindex(table.index),
                                   check_names=False)


def test_planted_negative_task_ranks_first(base_fit, base_sim):
    # t0's true slope (-0.06) lies > 5 population sd (0.03) below every other task's
    # (mean 0.10), its slope's posterior sd is ~0.01: it is the flattest in nearly all draws.
    assert base_sim.slope.idxmin() == PLANTED_TASK
    table = base_fit.rank_tasks(k=2)
    assert table.index[0] == PLANTED_TASK
    assert table.loc[PLANTED_TASK, "p_flattest"] > 0.95
    assert table.loc[PLANTED_TASK, "rank_eti90_ub"] == 1


def test_plot_ranks_returns_figure(base_fit):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    fig = base_fit.plot_ranks()
    assert isinstance(fig, matplotlib.figure.Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(base_fit.rank_tasks().index)
    fig2, ax = plt.subplots()
    assert base_fit.plot_ranks(ax=ax) is fig2
    plt.close("all")


# -- ROPE and decisions ---------------------------------------------------------------------


def _rope_tree():
    """Four tasks, 200 draws each, with known shares below / inside / above [-0.1, 0.1]."""
    neg = np.r_[np.full(196, -0.5), np.full(4, 0.0)]            # 0.98 / 0.02 / 0
    zero = np.r_[np.full(193, 0.05), np.full(5, -0.3), np.full(2, 0.4)]  # .025/.965/.01
    pos = np.r_[np.full(190, 0.3), np.full(10, 0.0)]            # 0 / 0.05 / 0.95
    mixed = np.r_[np.full(100, -0.2), np.full(100, 0.2)]        # 0.5 / 0 / 0.5
    return _tree(_columns([neg, zero, pos, mixed]), ["neg", "zero", "pos", "mixed"])


def test_rope_probabilities_and_decisions_exact():
    tree = _rope_tree()
    probs = decisions.rope_probabilities(tree, 0.1)
    expected = pd.DataFrame({"p_negative": [0.98, 0.025, 0.0, 0.5],
                             "p_rope": [0.02, 0.965, 0.05, 0.0],
                             "p_positive": [0.0, 0.01, 0.95, 0.5]},
                            index=pd.Index(["neg", "zero", "pos", "mixed"], name="task"))
    pd.testing.assert_frame_equal(probs, expected, atol=1e-12)
    assert probs.attrs["rope"] == (-0.1, 0.1)
    assert decisions.rope_decisions(probs, 0.95).tolist() == [
        "negative", "practically zero", "positive", "undecided"]
    assert decisions.rope_decisions(probs, 0.97).tolist() == [
        "negative", "undecided", "undecided", "undecided"]
    # An asymmetric ROPE (lo, hi): "zero" now has 0.05 + 0.965 inside [-0.3, 0.1].
    probs2 = decisions.rope_probabilities(tree, (-0.3, 0.1))
    np.testing.assert_allclose(probs2.loc["zero"], [0.0, 0.99, 0.01])
    np.testing.assert_allclose(probs2.sum(axis=1), 1.0)


def test_summary_with_rope(base_fit):
    plain = base_fit.summary()
    table = base_fit.summary(rope=0.02, decision_prob=0.9)
    np.testing.assert_allclose(table[["p_negative", "p_rope", "p_positive"]].sum(axis=1), 1.0)
    draws = base_fit.posterior["posterior"]["slope"].transpose("chain", "draw", "task")
    flat = draws.values.reshape(-1, draws.shape[-1])
    np.testing.assert_allclose(table["p_negative"], (flat < -0.02).mean(axis=0))
    np.testing.assert_allclose(plain["p_negative"], (flat < 0).mean(axis=0))
    assert set(table["decision"]) <= set(decisions.DECISIONS)
    # The planted task (slope -0.06, posterior sd ~0.01) is below -0.02 in nearly all draws.
    assert table.loc[PLANTED_TASK, "decision"] == "negative"
    assert table.attrs["rope"] == (-0.02, 0.02) and table.attrs["decision_prob"] == 0.9
    # Every other column is unchanged.
    pd.testing.assert_frame_equal(table.drop(columns=["p_negative", "p_rope", "p_positive",
                                                      "decision"]),
                                  plain.drop(columns=["p_negative"]))
    cols = list(table.columns)
    assert cols[cols.index("p_negative"):cols.index("p_negative") + 4] == [
        "p_negative", "p_rope", "p_positive", "decision"]


# -- the multiplicity-aware negative list ---------------------------------------------------


def test_negative_task_set_exact():
    p = pd.Series({"d": 0.90, "a": 0.99, "e": 0.50, "c": 0.95, "b": 0.97})
    table = decisions.negative_task_set(p, 0.05)
    # 1 - p sorted: 0.01, 0.03, 0.05, 0.10, 0.50 -> running means 0.01, 0.02, 0.03,
    # 0.0475, 0.138: the first four.
    assert list(table.index) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(table["expected_false_sign_rate"], [0.01, 0.02, 0.03, 0.0475])
    np.testing.assert_allclose(table["p_negative"], [0.99, 0.97, 0.95, 0.90])
    assert list(decisions.negative_task_set(p, 0.02).index) == ["a", "b"]
    # The level is reached exactly (1 - 0.95 is 0.05 up to rounding).
    assert list(decisions.negative_task_set(pd.Series({"x": 0.95}), 0.05).index) == ["x"]
    assert list(decisions.negative_task_set(pd.Series({"x": 1.0, "y": 0.9}), 0.05).index) == [
        "x", "y"]


def test_negative_task_set_empty():
    table = decisions.negative_task_set(pd.Series({"a": 0.9, "b": 0.8}), 0.05)
    assert table.empty
    assert list(table.columns) == ["p_negative", "false_sign_prob", "expected_false_sign_rate"]
    assert table.attrs["n_tasks"] == 2


def test_fit_negative_tasks(base_fit):
    table = base_fit.negative_tasks(0.05)
    assert table.index[0] == PLANTED_TASK
    assert (table["expected_false_sign_rate"] <= 0.05 + 1e-12).all()
    pd.testing.assert_frame_equal(
        table, decisions.negative_task_set(base_fit.p_negative_transfer(), 0.05))
    # With a ROPE, "negative" means below it: the same probabilities as summary(rope=...).
    with_rope = base_fit.negative_tasks(0.05, rope=0.02)
    p_rope = base_fit.summary(rope=0.02)["p_negative"]
    pd.testing.assert_frame_equal(with_rope, decisions.negative_task_set(p_rope, 0.05),
                                  check_like=True)
    assert with_rope.attrs["rope"] == (-0.02, 0.02)


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("rope, match", [
    (0, r"rope should be a half-width > 0 or a pair \(lo, hi\) but got 0"),
    (-0.1, r"half-width > 0 .* got -0.1"),
    (float("nan"), r"half-width > 0 .* got nan"),
    ("wide", r"half-width > 0 .* got 'wide'"),
    ((0.1, 0.2), r"lo <= 0 <= hi .* got \(0.1, 0.2\)"),
    ((0.1, -0.1), r"lo < hi .* got \(0.1, -0.1\)"),
    ((-0.1, 0.0, 0.1), r"half-width > 0 or a pair"),
])
def test_bad_rope(rope, match):
    with pytest.raises(DataValidationError, match=match):
        decisions.rope_probabilities(_rope_tree(), rope)


@pytest.mark.parametrize("value", [0.5, 1.0, 1.2, True])
def test_bad_decision_prob(value):
    probs = decisions.rope_probabilities(_rope_tree(), 0.1)
    with pytest.raises(DataValidationError, match=r"decision_prob should be in \(0.5, 1\)"):
        decisions.rope_decisions(probs, value)


def test_bad_inputs_on_fit(base_fit):
    with pytest.raises(bs.DataValidationError, match=r"decision_prob should be in \(0.5, 1\)"):
        base_fit.summary(rope=0.1, decision_prob=0.4)
    with pytest.raises(bs.DataValidationError, match=r"decision_prob .* but got 2"):
        base_fit.summary(decision_prob=2)
    with pytest.raises(bs.DataValidationError, match=r"rope should be a half-width"):
        base_fit.summary(rope=-1)
    with pytest.raises(bs.DataValidationError, match=r"k should be an integer in 1\.\.8 .* 0"):
        base_fit.rank_tasks(k=0)
    with pytest.raises(bs.DataValidationError, match=r"k should be an integer .* got 9"):
        base_fit.rank_tasks(k=9)
    with pytest.raises(bs.DataValidationError, match=r"k should be an integer .* got 2.5"):
        base_fit.rank_tasks(k=2.5)
    with pytest.raises(bs.DataValidationError, match=r"ci_prob should be in \(0, 1\) .* 1.0"):
        base_fit.rank_tasks(ci_prob=1.0)
    with pytest.raises(bs.DataValidationError,
                       match=r"max_false_sign_rate should be in \(0, 1\) but got 0"):
        base_fit.negative_tasks(0)


@pytest.mark.parametrize("p, match", [
    ({"a": 0.99, "b": float("nan")}, r"task 'b' has nan"),
    ({"a": 1.5}, r"P\(negative\) should be in \[0, 1\]; task 'a' has 1.5"),
])
def test_bad_probabilities(p, match):
    with pytest.raises(DataValidationError, match=match):
        decisions.negative_task_set(pd.Series(p), 0.05)
