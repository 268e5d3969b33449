"""Transfer matrix decisions (ROPE, multiplicity-aware list), asymmetry and compatibility.

Truths used: on the planted scores of test_pairs every pair involving 'neg' is negative
and every other pair positive; with a Gaussian likelihood the two directions of a pair
have the same posterior (standardized scores enter through n and r only), so their
difference is centred on 0; with a Student-t likelihood, outliers on one task make its
standardized slopes as a source steeper than as a target (see test_asymmetry_planted).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import seed
from test_pairs import long_frame, planted_scores

from bayesslope import decisions
from bayesslope.exceptions import DataValidationError
from bayesslope.pairs import fit_transfer_matrix

FAST = dict(draws=300, tune=300)


@pytest.fixture(scope="module")
def gaussian():
    df = long_frame(planted_scores(seed=seed(0)))
    return df, fit_transfer_matrix(df, random_seed=seed(1))


def _draw_frequencies(tm, lo, hi):
    """P(slope < lo), P(slope > hi) per pair straight from the kept draws (xarray)."""
    s = tm.draws["slope"]
    below = (s < lo).mean(("chain", "draw")).to_series()
    above = (s > hi).mean(("chain", "draw")).to_series()
    return below.reindex(tm.table.index), above.reindex(tm.table.index)


def test_rope_decisions_sum_to_one_and_match_draw_frequencies(gaussian):
    _, tm = gaussian
    out = tm.summary(rope=(-0.1, 0.2), decision_prob=0.9)
    probs = out[["p_negative", "p_rope", "p_positive"]]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    below, above = _draw_frequencies(tm, -0.1, 0.2)
    np.testing.assert_allclose(out["p_negative"], below, atol=1e-12)
    np.testing.assert_allclose(out["p_positive"], above, atol=1e-12)
    for col, word in (("p_negative", "negative"), ("p_rope", "practically zero"),
                      ("p_positive", "positive")):
        assert ((out[col] >= 0.9) == (out["decision"] == word)).all()
    assert out.attrs["rope"] == (-0.1, 0.2) and out.attrs["decision_prob"] == 0.9
    # The planted structure: pairs with 'neg' are negative, the others positive.
    involves_neg = [("neg" in pair) for pair in out.index]
    assert (out.loc[involves_neg, "decision"] != "positive").all()
    assert (out.loc[[not x for x in involves_neg], "decision"] != "negative").all()
    # Without rope nothing changes in the stored columns.
    plain = tm.summary()
    assert "decision" not in plain and plain["p_negative"].equals(tm.table["p_negative"])


def test_negative_pairs_planted_and_level(gaussian):
    _, tm = gaussian
    table = tm.negative_pairs(max_false_sign_rate=0.05)
    # 8 planted negative pairs (4 tasks x 2 directions); the list calls only those.
    assert 6 <= len(table) <= 8
    assert all("neg" in pair for pair in table.index)
    assert table.index.names == ["source", "target"]
    assert (table["expected_false_sign_rate"] <= 0.05 + 1e-12).all()
    assert table.attrs["n_tasks"] == 20
    with_rope = tm.negative_pairs(0.05, rope=0.1)
    assert with_rope.attrs["rope"] == (-0.1, 0.1)
    below, _ = _draw_frequencies(tm, -0.1, 0.1)
    np.testing.assert_allclose(with_rope["p_negative"], below[with_rope.index], atol=1e-12)
    assert set(with_rope.index) <= set(table.index)  # below -0.1 is harder than below 0


def test_symmetric_truth_asymmetry_covers_zero(gaussian):
    _, tm = gaussian
    asym = tm.asymmetry(ci_prob=0.9)
    assert len(asym) == 10 and asym.attrs["method"] == "draws"
    width = asym["eti90_ub"] - asym["eti90_lb"]
    assert (asym["eti90_lb"] < 0).all() and (asym["eti90_ub"] > 0).all()
    assert (asym["mean"].abs() < 0.1 * width).all()  # centred on 0, with margin
    # The difference per draw: its mean is the difference of the two directions' means.
    np.testing.assert_allclose(asym["mean"], asym["slope_ab_mean"] - asym["slope_ba_mean"],
                               atol=1e-12)
    comp = tm.compatibility_summary(0.9)
    c = tm.compatibility.to_pandas()
    np.testing.assert_allclose(comp["mean"], [c.loc[a, b] for a, b in comp.index], atol=1e-12)
    assert (comp["eti90_lb"] < comp["mean"]).all() and (comp["mean"] < comp["eti90_ub"]).all()
    assert (comp.xs("neg", level="task_b")["p_negative"] > 0.95).all()


def test_without_draws_normal_approximation_and_errors(gaussian):
    df, tm = gaussian
    small = fit_transfer_matrix(df, random_seed=seed(1), keep_draws=False)
    approx = small.asymmetry()
    exact = tm.asymmetry()
    assert approx.attrs["method"] == "normal approximation"
    np.testing.assert_allclose(approx["mean"], exact["mean"], atol=1e-12)
    # Same fit, same seed: the approximation's sd is that of independent directions.
    np.testing.assert_allclose(approx["sd"], exact["sd"], rtol=0.15)
    comp = small.compatibility_summary(0.8)
    assert {"eti80_lb", "eti80_ub"} <= set(comp.columns)
    with pytest.raises(DataValidationError, match="keep_draws=True"):
        small.summary(rope=0.1)
    with pytest.raises(DataValidationError, match="keep_draws=True"):
        small.negative_pairs(rope=0.1)
    with pytest.raises(DataValidationError, match="rope"):
        tm.summary(rope=-1)
    with pytest.raises(DataValidationError, match="decision_prob"):
        tm.summary(rope=0.1, decision_prob=0.4)
    with pytest.raises(DataValidationError, match="max_false_sign_rate"):
        tm.negative_pairs(1.5)


def _outlier_frame(rng_seed, m=150, outliers=6):
    """a, b, c share one ability; b has ``outliers`` units 8 sd off (gross score errors)."""
    rng = np.random.default_rng(rng_seed)
    g = rng.normal(size=m)
    s = np.outer(g, [1.0, 1.0, 0.8]) + 0.4 * rng.normal(size=(m, 3))
    s[:outliers, 1] += 8 * np.sign(rng.normal(size=outliers)) * s[:, 1].std()
    return long_frame(s, tasks=["a", "b", "c"])


def test_asymmetry_planted():
    """Outliers on b inflate b's sd. Robust fits follow the clean units, so b's standardized
    slope as a target is divided by the inflation (a -> b flatter) and as a source multiplied
    by it (b -> a, b -> c steeper): asymmetry(a, b) < 0 < asymmetry(b, c); (a, c) is clean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = fit_transfer_matrix(_outlier_frame(seed(4)), likelihood="student_t",
                                 random_seed=seed(5), **FAST)
    asym = tm.asymmetry(ci_prob=0.9)
    assert asym.loc[("a", "b"), "eti90_ub"] < 0 and asym.loc[("a", "b"), "p_positive"] < 0.05
    assert asym.loc[("b", "c"), "eti90_lb"] > 0 and asym.loc[("b", "c"), "p_positive"] > 0.95
    assert asym.loc[("a", "c"), "eti90_lb"] < 0 < asym.loc[("a", "c"), "eti90_ub"]


def test_negative_task_set_keeps_a_pair_index():
    idx = pd.MultiIndex.from_tuples([("a", "b"), ("b", "a"), ("a", "c")],
                                    names=["source", "target"])
    table = decisions.negative_task_set(pd.Series([0.99, 0.5, 0.97], index=idx), 0.05)
    assert list(table.index) == [("a", "b"), ("a", "c")]
    assert table.index.names == ["source", "target"]
