"""The collapsed formulation is the same posterior as the full model.

Integrating the task coefficients out and drawing them back exactly from their
conditional Gaussian changes the sampler's work, not the target distribution: every
task's slope and intercept must agree between the two fits up to Monte Carlo error.
"""

import time

import numpy as np
import pandas as pd
import pytest
from conftest import seed

import bayesslope as bs
from bayesslope import sampling
from bayesslope.exceptions import WeakDataWarning


def _simulate(k: int) -> pd.DataFrame:
    """8 tasks: 6 informative (12 points), one with 2 points, one with constant x."""
    rng = np.random.default_rng(seed(k))
    rows = []
    slopes = rng.normal(0.5, 0.4, size=8)
    intercepts = rng.normal(0.0, 0.5, size=8)
    for k in range(8):
        n = 2 if k == 6 else 12
        x = np.full(n, 0.3) if k == 7 else rng.normal(0, 1, n)
        y = intercepts[k] + slopes[k] * x + rng.normal(0, 0.3, n)
        rows.append(pd.DataFrame({"x": x, "y": y, "task": f"t{k}"}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def pair_of_fits():
    df = _simulate(11)
    kw = dict(x_better="higher", y_better="higher", draws=2000, tune=1000, chains=4,
              random_seed=seed(3), target_accept=0.95)
    with pytest.warns(WeakDataWarning):
        collapsed = bs.fit_hierarchical(df, formulation="collapsed", **kw)
    with pytest.warns(WeakDataWarning):
        full = bs.fit_hierarchical(df, formulation="full", **kw)
    return collapsed, full


@pytest.mark.parametrize("var", ["slope", "intercept"])
def test_collapsed_matches_full(pair_of_fits, var):
    import arviz as az

    collapsed, full = pair_of_fits
    assert collapsed.formulation == "collapsed" == collapsed.spec["model"]["formulation"]
    assert full.formulation == "full"
    zs, ratios = [], []
    # A loose sanity bound (1% of the 8,000 draws), not a convergence criterion: one
    # divergence appeared in one of two clean-clone runs on the same machine (another
    # floating-point realization), and BAYESSLOPE_TEST_SEED changes the draws. A biased
    # sampler would show in the comparison below, which is what this test pins.
    for fit in (collapsed, full):
        assert fit.diagnostics().attrs["divergences"] <= 80
    stats = []
    for fit in (collapsed, full):
        ds = fit.posterior["posterior"].to_dataset()[[var]]
        draws = ds[var].values.reshape(-1, ds.sizes["task"])
        stats.append((draws.mean(0), draws.std(0), az.mcse(ds)[var].values,
                      az.mcse(ds, method="sd")[var].values))
    (m1, s1, e1, se1), (m2, s2, e2, se2) = stats
    zs = (m1 - m2) / np.sqrt(e1**2 + e2**2)
    ratios = s1 / s2
    # |z| < 4 for every task (MCSE-combined); sd within 5% (the sd's own MC error is ~1.5%).
    assert np.all(np.abs(zs) < 4), zs
    assert np.all(np.abs(ratios - 1) < 0.05), ratios


@pytest.mark.filterwarnings("ignore::bayesslope.SamplingWarning")  # short chains on purpose
def test_compiled_model_is_reused_for_new_data():
    """sampler='nutpie' compiles once per structure; new data of that shape reuse it."""
    sampling.clear_compile_cache()
    kw = dict(x_better="higher", y_better="higher", draws=300, tune=300, chains=2,
              random_seed=seed(1), sampler="nutpie", formulation="collapsed")
    a = _simulate(1)
    a = a[a.task.isin([f"t{k}" for k in range(6)])]
    b = a.assign(y=a["y"] * 2.0 + 1.0)  # same shape, different data (and default priors)
    fit_a = bs.fit_hierarchical(a, **kw)
    assert len(sampling._COMPILED) == 1
    compiled = next(iter(sampling._COMPILED.values()))
    start = time.perf_counter()
    fit_b = bs.fit_hierarchical(b, **kw)
    fit_b_s = time.perf_counter() - start
    # nutpie's own clock is recorded like pm.sample's: part of the fit, not all of it.
    assert 0.0 < fit_b.posterior["posterior"].attrs["sampling_time"] <= fit_b_s
    assert len(sampling._COMPILED) == 1 and next(iter(sampling._COMPILED.values())) is compiled
    # The reused model really saw the new data: y doubled => slopes double (up to MC error).
    ratio = fit_b.summary()["mean"] / fit_a.summary()["mean"]
    assert np.allclose(ratio, 2.0, rtol=0.1), ratio
    # ...and the same seed still gives identical draws on a refit.
    fit_a2 = bs.fit_hierarchical(a, **kw)
    np.testing.assert_array_equal(fit_a.posterior["posterior"]["slope"].values,
                                  fit_a2.posterior["posterior"]["slope"].values)
