"""Transfer matrix (bayesslope.pairs): design validation, fast-path correctness, result API.

One module-scoped fit (5 tasks -> 20 ordered pairs) serves most checks: compiling the
blackjax warm-up + NUTS costs ~20 s, and same-shaped fits reuse it.
"""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import seed

from bayesslope.collapsed import group_sufficient_stats
from bayesslope.exceptions import DataValidationError
from bayesslope.pairs import TransferMatrix, fit_transfer_matrix
from bayesslope.pairs.design import build_pair_design

TASKS = ["a", "b", "c", "d", "neg"]


def long_frame(scores, units=None, tasks=TASKS):
    m = scores.shape[0]
    units = units or [f"m{i}" for i in range(m)]
    rows = [(u, t, scores[i, k]) for i, u in enumerate(units) for k, t in enumerate(tasks)]
    return pd.DataFrame(rows, columns=["model", "task", "y"])


def planted_scores(seed=0, m=25):
    """Four tasks driven by one latent ability; 'neg' goes against it."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=m)
    s = np.outer(g, [1.0, 0.8, 1.2, 0.6, -0.9]) + 0.6 * rng.normal(size=(m, 5))
    return s * [1, 2, 0.5, 10, 3] + [0, 5, -1, 50, 2]  # different units per task


@pytest.fixture(scope="module")
def planted():
    df = long_frame(planted_scores())
    tm = fit_transfer_matrix(df, unit="model", task="task", y="y", random_seed=seed(1))
    return df, tm


# ----------------------------------------------------------------------------- design
def test_design_pairs_exclude_self_and_standardize():
    df = long_frame(planted_scores())
    d = build_pair_design(df)
    assert d.n_pairs == 20
    assert np.all(d.source != d.target)
    for p in range(d.n_pairs):
        x, y = d.x[d.pair_idx == p], d.y[d.pair_idx == p]
        np.testing.assert_allclose([x.mean(), y.mean(), x.std(ddof=1), y.std(ddof=1)],
                                   [0, 0, 1, 1], atol=1e-12)
        raw = d.scores[:, [d.source[p], d.target[p]]]
        np.testing.assert_allclose(d.r[p], np.corrcoef(raw.T)[0, 1], rtol=1e-12)


def test_orientation_str_dict_column():
    s = planted_scores()
    df = long_frame(s)
    base = build_pair_design(df)
    flipped = build_pair_design(df, y_better={t: ("lower" if t == "neg" else "higher")
                                              for t in TASKS})
    df["y_higher_is_better"] = df["task"] != "neg"  # read when y_better is not given
    by_col = build_pair_design(df)
    involves = (np.array(TASKS)[base.source] == "neg") ^ (np.array(TASKS)[base.target] == "neg")
    np.testing.assert_allclose(flipped.r, np.where(involves, -base.r, base.r))
    np.testing.assert_allclose(by_col.r, flipped.r)
    assert flipped.higher_is_better["neg"] is False


def test_missing_scores_reported_not_silently_dropped(planted):
    df, _ = planted
    holed = df.drop(df.index[(df["model"] == "m3") & (df["task"] == "b")])
    holed.loc[(holed["model"] == "m4") & (holed["task"] == "c"), "y"] = np.nan
    with pytest.raises(DataValidationError, match=r"missing values \(NaN\) in 1 row.*dropna=True"):
        build_pair_design(holed)
    with pytest.warns(UserWarning, match="dropped 1 row"):
        d = build_pair_design(holed, dropna=True)
    assert d.missing == {"b": 1, "c": 1}
    t = np.array(TASKS)
    labels = list(zip(t[d.source], t[d.target], strict=True))
    dropped = dict(zip(labels, d.n_dropped, strict=True))
    n = dict(zip(labels, d.n, strict=True))
    assert dropped[("a", "b")] == 1 and n[("a", "b")] == 24
    assert dropped[("b", "c")] == 2 and n[("b", "c")] == 23
    assert dropped[("a", "d")] == 0 and n[("a", "d")] == 25


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda df: pd.concat([df, df.iloc[[7]]]), r"share a \(model, task\)"),
        (lambda df: df.assign(y=np.where(df["task"] == "c", 0.5, df["y"])), r"constant.*'c'"),
        (lambda df: df[(df["task"] != "d") | df["model"].isin(["m0", "m1"])], "fewer than 3"),
        (lambda df: df.drop(columns="y"), r"columns \['y'\]"),
        (lambda df: df.assign(y=df["y"].astype(str) + "x"), "must be numeric"),
        (lambda df: df.assign(y=np.where(df.index == 3, np.inf, df["y"])), r"infinite.*\[3\]"),
        (lambda df: df[df["task"] == "a"], "at least two tasks"),
    ],
)
def test_bad_input_raises(mutate, match):
    df = long_frame(planted_scores())
    with pytest.raises(DataValidationError, match=match):
        build_pair_design(mutate(df))


def test_bad_orientation_and_args():
    df = long_frame(planted_scores())
    with pytest.raises(DataValidationError, match=r"must name every task exactly.*missing \['b'"):
        build_pair_design(df, y_better={"a": "higher"})
    with pytest.raises(DataValidationError, match=r"y_better\['a'\] should be one of"):
        build_pair_design(df, y_better={t: "up" for t in TASKS})
    with pytest.raises(DataValidationError, match="per_pair_sigma should be True or False"):
        fit_transfer_matrix(df, per_pair_sigma="task")
    with pytest.raises(DataValidationError, match="unknown prior"):
        fit_transfer_matrix(df, priors={"nu": {"sigma": 1}})


# ----------------------------------------------------------------------------- likelihood
def test_jax_logdensity_matches_the_packages_collapsed_pymc_model():
    """The JAX log-density (priors + Jacobians + collapsed likelihood) == the logp of
    ``bayesslope.collapsed_model.build_collapsed_model`` (the model fit_hierarchical
    samples) with the pairs in the role of the tasks."""
    from types import SimpleNamespace

    from bayesslope.collapsed import task_sufficient_stats
    from bayesslope.collapsed_model import build_collapsed_model
    from bayesslope.data import TransferDesign
    from bayesslope.pairs.sampler import DEFAULT_PRIORS, make_logdensity

    d = build_pair_design(long_frame(planted_scores(seed=2, m=9)))
    stats = task_sufficient_stats(d.x, d.y, d.pair_idx, d.n_pairs)
    as_tasks = TransferDesign(
        tasks=tuple(f"p{i:03d}" for i in range(d.n_pairs)), task_idx=d.pair_idx, x=d.x,
        y=d.y, row_labels=np.arange(d.x.size), x_better="higher",
        y_better=("higher",) * d.n_pairs, x_ref=0.0, x_scale=1.0, y_scale=1.0)
    for per_pair in (True, False):
        config = SimpleNamespace(priors=DEFAULT_PRIORS, correlated=True,
                                 per_task_sigma=per_pair)
        logp = build_collapsed_model(as_tasks, config).compile_logp()
        ours = make_logdensity(stats, DEFAULT_PRIORS)
        # Shared sigma: the pooled density from the design's exact statistics (what the
        # fast path samples) must be the same function.
        pooled = None if per_pair else make_logdensity(
            group_sufficient_stats(d.sufficient_stats()), DEFAULT_PRIORS)
        rng = np.random.default_rng(seed(0))
        for _ in range(4):
            pos = {"intercept_mu": rng.normal(), "slope_mu": rng.normal(),
                   "log_intercept_sigma": rng.normal(-1, 1), "log_slope_sigma": rng.normal(),
                   "corr_logodds": rng.normal(0, 2),
                   "log_sigma": rng.normal(-0.5, 0.3, d.n_pairs if per_pair else ())}
            point = {"intercept_mu": pos["intercept_mu"], "slope_mu": pos["slope_mu"],
                     "intercept_sigma_log__": pos["log_intercept_sigma"],
                     "slope_sigma_log__": pos["log_slope_sigma"],
                     "corr_unit_logodds__": pos["corr_logodds"],
                     "sigma_log__": pos["log_sigma"]}
            np.testing.assert_allclose(float(ours(pos)), logp(point), rtol=1e-9)
            if pooled is not None:
                np.testing.assert_allclose(float(pooled(pos)), logp(point), rtol=1e-9)


def test_design_statistics_match_the_data_and_pool_by_pair_size():
    from bayesslope.collapsed import task_sufficient_stats

    scores = planted_scores(seed=3, m=10)
    scores[[0, 4], 2] = np.nan  # two units miss task 2: its pairs have n = 8
    d = build_pair_design(long_frame(scores).dropna())
    exact = d.sufficient_stats()
    summed = task_sufficient_stats(d.x, d.y, d.pair_idx, d.n_pairs)
    for name, value in exact._asdict().items():
        np.testing.assert_allclose(value, getattr(summed, name), rtol=1e-12, atol=1e-12,
                                   err_msg=name)
    groups = group_sufficient_stats(exact)
    assert groups.n.tolist() == [8.0, 10.0]
    assert groups.count.tolist() == [float((d.n == 8).sum()), float((d.n == 10).sum())]


def test_pair_draws_match_conjugate_closed_form_and_ignore_chunking():
    """Population fixed: draws == conjugate Gaussian (explicit 2x2 linear algebra)."""
    import jax

    from bayesslope.collapsed import task_sufficient_stats
    from bayesslope.pairs.sampler import draw_pairs

    d = build_pair_design(long_frame(planted_scores(seed=4, m=8)))
    stats = task_sufficient_stats(d.x, d.y, d.pair_idx, d.n_pairs)
    chains, draws = 2, 4000
    mu = np.array([0.1, 0.4])
    sa, sb, rho = 0.3, 0.5, 0.4
    rng = np.random.default_rng(1)
    sig = rng.uniform(0.4, 0.9, d.n_pairs)
    full = lambda v: np.full((chains, draws), v)  # noqa: E731
    params = {"intercept_mu": full(mu[0]), "slope_mu": full(mu[1]),
              "intercept_sigma": full(sa), "slope_sigma": full(sb), "corr": full(rho),
              "sigma": np.broadcast_to(sig, (chains, draws, d.n_pairs))}

    def collect(chunk):
        out = np.empty((2, chains, draws, d.n_pairs))

        def on_chunk(start, stop, a, b):
            out[0, ..., start:stop], out[1, ..., start:stop] = a, b

        draw_pairs(jax.random.key(7), stats, params, chunk, on_chunk)
        return out

    got = collect(3)
    # Padding / chunking changes nothing (up to XLA's shape-dependent fusion: ~1 ulp).
    np.testing.assert_allclose(got, collect(7), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, collect(d.n_pairs), rtol=1e-12, atol=1e-12)

    prior_cov = np.array([[sa**2, rho * sa * sb], [rho * sa * sb, sb**2]])
    n_eff = chains * draws
    for p in range(d.n_pairs):
        x = d.x[d.pair_idx == p]
        X = np.column_stack([np.ones_like(x), x])
        y = d.y[d.pair_idx == p]
        prec = np.linalg.inv(prior_cov) + X.T @ X / sig[p] ** 2
        cov = np.linalg.inv(prec)
        mean = cov @ (np.linalg.solve(prior_cov, mu) + X.T @ y / sig[p] ** 2)
        sample = got[:, :, :, p].reshape(2, -1)
        se = np.sqrt(np.diag(cov) / n_eff)
        assert np.all(np.abs(sample.mean(1) - mean) < 4.5 * se), p
        np.testing.assert_allclose(np.cov(sample), cov, rtol=0.08, atol=0.08 * cov[0, 0])


# ----------------------------------------------------------------------------- fast path
def test_planted_negative_pair_found(planted):
    _, tm = planted
    assert isinstance(tm, TransferMatrix)
    p = tm.p_negative_transfer()
    assert isinstance(p, pd.Series) and p.index.names == ["source", "target"]
    assert len(p) == 20 and ("a", "a") not in p.index  # A -> A excluded
    for t in TASKS[:4]:
        assert p[("neg", t)] > 0.9
        assert p[(t, "neg")] > 0.9
        for u in TASKS[:4]:
            if u != t:
                assert p[(t, u)] < 0.1
    s = tm.summary()
    pd.testing.assert_series_equal(s["p_negative"], p)
    # The interval is the draws' equal-tailed 90% interval, recomputed at summary time.
    draws = tm.draws["slope"].sel(source="a", target="b").values
    np.testing.assert_allclose(s.loc[("a", "b"), ["eti90_lb", "eti90_ub"]].to_numpy(float),
                               np.quantile(draws, [0.05, 0.95]))
    wide = tm.summary(ci_prob=0.5)
    assert (wide["eti50_ub"] - wide["eti50_lb"] < s["eti90_ub"] - s["eti90_lb"]).all()
    # Shrunken standardized slope lies near the sample correlation.
    np.testing.assert_allclose(s["mean"], s["r"], atol=0.15)


def test_data_unit_slopes_and_draws(planted):
    df, tm = planted
    s = tm.summary()
    d = tm.design
    np.testing.assert_allclose(s["slope_data_mean"], s["mean"] * d.y_scale / d.x_scale)
    assert tm.slope.dims == ("source", "target", "chain", "draw")
    np.testing.assert_allclose(tm.slope.mean(("chain", "draw")).sel(source="a", target="b"),
                               s.loc[("a", "b"), "mean"])
    # Data-unit slope ~ OLS slope of raw target on raw source (weak shrinkage here).
    w = df.pivot(index="model", columns="task", values="y")
    ols = np.polyfit(w["a"], w["d"], 1)[0]
    assert abs(float(tm.slope_data.sel(source="a", target="d").mean()) - ols) < 0.2 * abs(ols)


def test_diagnostics_and_compatibility(planted):
    _, tm = planted
    diag = tm.diagnostics()
    assert isinstance(diag, pd.DataFrame)
    assert list(diag.index) == ["intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma",
                                "corr", "slope"]  # per-pair sigma: not a population variable
    assert diag.attrs["n_pairs"] == 20
    s = tm.summary()
    assert diag.loc["slope", "r_hat_max"] == s["r_hat"].max()
    assert diag.attrs["n_rhat_high"] == int((s["r_hat"] > 1.01).sum())
    assert diag.attrs["divergences"] == int(tm.sampler_stats["diverging"].sum())
    c = tm.compatibility.values
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(np.diag(c), 1.0)
    order = tm.task_order()
    assert sorted(order) == sorted(TASKS)
    assert order[0] == "neg" or order[-1] == "neg"  # the odd one out sits at an end


def test_summaries_only_and_seed_reproducible_across_chunks(planted):
    df, tm = planted
    tm2 = fit_transfer_matrix(df, random_seed=seed(1), keep_draws=False, chunk_size=3)
    assert tm2.draws is None
    # 1-ulp differences from chunk-shaped fusion can move a near-tie in the folded R-hat.
    pd.testing.assert_frame_equal(tm.summary(), tm2.summary(), rtol=1e-5)
    assert tm2.slope.dims == ("source", "target")
    np.testing.assert_allclose(tm2.slope.sel(source="a", target="b"),
                               tm.summary().loc[("a", "b"), "mean"])
    # Without draws, only the interval probabilities stored at fit time are offered.
    pd.testing.assert_frame_equal(tm.summary(ci_prob=0.8), tm2.summary(ci_prob=0.8), rtol=1e-5)
    with pytest.raises(DataValidationError, match=r"ci_prob=0.93 needs the pair draws"):
        tm2.summary(ci_prob=0.93)


def _marked_cells(ax) -> set:
    """(source, target) labels of the cells that carry the P(negative) marker."""
    from matplotlib.collections import PathCollection

    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    marked = set()
    for coll in ax.collections:
        if isinstance(coll, PathCollection):
            for x, y in coll.get_offsets():
                marked.add((rows[int(round(y))], cols[int(round(x))]))
    return marked


def test_plot(planted):
    """The heatmap marks exactly the planted negative pairs (every pair with 'neg' on one
    side: their true oriented slope is strongly negative), in either task order."""
    import matplotlib
    import matplotlib.pyplot as plt

    _, tm = planted
    truth = {(a, b) for a in TASKS for b in TASKS if a != b and (a == "neg") != (b == "neg")}
    before = dict(matplotlib.rcParams)
    fig = tm.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert _marked_cells(fig.axes[0]) == truth
    fig2, ax = plt.subplots()
    assert tm.plot(ax=ax, order=False, standardized=False) is fig2
    assert [t.get_text() for t in ax.get_xticklabels()] == sorted(TASKS)
    assert _marked_cells(ax) == truth
    # Data-unit colours: the image holds the data-unit slope means.
    s = tm.summary()
    img = ax.images[0].get_array()
    i, j = sorted(TASKS).index("a"), sorted(TASKS).index("d")
    assert img[i, j] == pytest.approx(s.loc[("a", "d"), "slope_data_mean"])
    assert dict(matplotlib.rcParams) == before
    plt.close(fig)
    plt.close(fig2)


def test_vectorized_equals_fit_hierarchical_full_model(planted):
    """The pairs as tasks in fit_hierarchical's full (non-collapsed) PyMC model, same priors."""
    import bayesslope as bs

    _, tm = planted
    d = tm.design
    long = pd.DataFrame({"x": d.x, "y": d.y, "task": [f"p{i:02d}" for i in d.pair_idx]})
    priors = {k: dict(v) for k, v in tm.priors.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit_hierarchical(long, x="x", y="y", task="task", x_better="higher",
                                  y_better="higher", x_ref=0.0, priors=priors,
                                  per_task_sigma=True, formulation="full", random_seed=seed(3),
                                  draws=1000, chains=4, cores=1)
    slope = fit.posterior["posterior"]["slope"]
    assert list(slope.coords["task"].values) == sorted(long["task"].unique())
    ref_mean = slope.mean(("chain", "draw")).values
    ref_sd = slope.std(("chain", "draw")).values
    s = tm.summary()
    got_mean, got_sd = s["mean"].to_numpy(), s["sd"].to_numpy()
    # Monte Carlo error of both (ESS >= ~1000 each): |diff| < 4 combined standard errors.
    se = np.sqrt(ref_sd**2 / 1000 + got_sd**2 / s["ess_bulk"].to_numpy())
    assert np.all(np.abs(got_mean - ref_mean) < 4 * se)
    np.testing.assert_allclose(got_sd, ref_sd, rtol=0.12)


def test_import_does_not_load_jax():
    code = "import sys, bayesslope.pairs; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_compile_cache_folder_from_environment(monkeypatch, tmp_path):
    from bayesslope.pairs.compile_cache import ENV_VAR, cache_dir

    for off in ("off", "0", "", "None"):
        monkeypatch.setenv(ENV_VAR, off)
        assert cache_dir() is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.delenv("BAYESSLOPE_CACHE", raising=False)   # the root of every cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "bayesslope" / "jax"


def test_fit_writes_compiled_programs_to_the_cache(planted):
    # The session fixture points BAYESSLOPE_JAX_CACHE at a temporary folder: the fit
    # turned JAX's persistent cache on there and stored its programs.
    import os

    _, tm = planted
    folder = tm.spec["jax_compilation_cache"]
    assert folder == os.environ["BAYESSLOPE_JAX_CACHE"]
    assert any("run_nuts" in name for name in os.listdir(folder))


def test_compile_cache_keeps_the_users_own_setting(tmp_path, monkeypatch):
    import jax

    from bayesslope.pairs.compile_cache import ENV_VAR, ensure_compilation_cache

    before = jax.config.jax_compilation_cache_dir
    try:
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "users"))
        assert ensure_compilation_cache() == str(tmp_path / "users")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "users")
        jax.config.update("jax_compilation_cache_dir", None)
        monkeypatch.setenv(ENV_VAR, "off")
        assert ensure_compilation_cache() is None
        assert jax.config.jax_compilation_cache_dir is None
        target = tmp_path / "ours"
        monkeypatch.setenv(ENV_VAR, str(target))
        assert ensure_compilation_cache() == str(target) and target.is_dir()
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_population_and_pair_slopes_recover_simulation_truth():
    """Simulate 20 pairs from the model itself; NUTS + exact draws recover the truth.

    Same shapes as the module fit (20 pairs, per-pair sigma), so the compiled NUTS program
    is reused.
    """
    import jax

    from bayesslope.collapsed import task_sufficient_stats
    from bayesslope.pairs.sampler import DEFAULT_PRIORS, draw_pairs, sample_population

    rng = np.random.default_rng(11)
    n_pairs, n = 20, 200
    mu, sds, rho = np.array([0.0, 0.5]), np.array([0.2, 0.3]), -0.3
    cov = np.array([[sds[0] ** 2, rho * sds.prod()], [rho * sds.prod(), sds[1] ** 2]])
    coef = rng.multivariate_normal(mu, cov, size=n_pairs)
    sig = rng.uniform(0.5, 0.9, n_pairs)
    idx = np.repeat(np.arange(n_pairs), n)
    x = rng.normal(size=idx.size)
    y = coef[idx, 0] + coef[idx, 1] * x + sig[idx] * rng.normal(size=idx.size)
    stats = task_sufficient_stats(x, y, idx, n_pairs)
    post = sample_population(jax.random.key(0), stats, DEFAULT_PRIORS, per_pair_sigma=True)
    assert post.diverging.sum() == 0
    p = post.params
    for name, truth in (("slope_mu", 0.5), ("intercept_mu", 0.0), ("slope_sigma", 0.3)):
        draws = p[name].ravel()
        assert abs(draws.mean() - truth) < 3.5 * draws.std(), name
    sigma_lo, sigma_hi = np.quantile(p["sigma"], [0.005, 0.995], axis=(0, 1))
    assert np.mean((sigma_lo < sig) & (sig < sigma_hi)) >= 0.9

    slopes = np.empty((4, 1000, n_pairs))

    def keep(start, stop, _a, b):
        slopes[..., start:stop] = b

    draw_pairs(jax.random.key(1), stats, p, 8, keep)
    lo, hi = np.quantile(slopes, [0.025, 0.975], axis=(0, 1))
    assert np.mean((lo < coef[:, 1]) & (coef[:, 1] < hi)) >= 0.8


# ----------------------------------------------------------------------------- Student-t
@pytest.fixture(scope="module")
def outlier_fits():
    """Planted scores with one gross outlier on task 'b'; Gaussian and Student-t fits."""
    s = planted_scores(seed=0, m=25)
    clean = long_frame(s)
    s = s.copy()
    s[3, 1] += 40.0  # unit m3 on task 'b': about 20 sd off
    dirty = long_frame(s)
    kw = dict(unit="model", task="task", y="y", random_seed=seed(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "clean": fit_transfer_matrix(clean, per_pair_sigma=False, **kw),
            "gaussian": fit_transfer_matrix(dirty, per_pair_sigma=False, **kw),
            "student_t": fit_transfer_matrix(dirty, likelihood="student_t", **kw),
            "student_t_chunk3": fit_transfer_matrix(dirty, likelihood="student_t",
                                                    chunk_size=3, **kw),
        }
    return out


def test_student_t_resists_an_outlier(outlier_fits):
    """Data-unit slope a -> b: the robust fit on dirty data matches the clean Gaussian fit."""
    clean = outlier_fits["clean"].summary().loc[("a", "b")]
    gauss = outlier_fits["gaussian"].summary().loc[("a", "b")]
    robust = outlier_fits["student_t"].summary().loc[("a", "b")]
    # Truth of the planted model: b = 2 * (0.8 g + noise), a = g + noise -> clearly > 0.
    assert clean["p_negative"] < 0.01
    robust_err = abs(robust["slope_data_mean"] - clean["slope_data_mean"])
    gauss_err = abs(gauss["slope_data_mean"] - clean["slope_data_mean"])
    # Observed: Gaussian pulled from 1.04 to 0.14 (3.4 clean sd); robust within 2 sd.
    assert robust_err < 2 * clean["slope_data_sd"]
    assert gauss_err > 3 * clean["slope_data_sd"] and robust_err < gauss_err / 3
    assert outlier_fits["student_t"].spec["method"] == "per-pair-nuts-student_t"


def test_student_t_planted_negative_and_chunking(outlier_fits):
    tm = outlier_fits["student_t"]
    s = tm.summary()
    # Sources a, c, d; with b as the source the outlier is a leverage point in x, which
    # Student-t residuals do not down-weight (observed P(neg) 0.68 for b -> neg).
    assert (s.xs("neg", level="target")["p_negative"].drop("b") > 0.9).all()
    assert ("a", "a") not in s.index
    # Per-pair keys fold in the pair index and pairs run one after the other: the chunk
    # size (and the thread a chunk runs on) changes nothing.
    other = outlier_fits["student_t_chunk3"].summary()
    np.testing.assert_allclose(other["mean"], s["mean"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(other["sd"], s["sd"], rtol=1e-12)


def test_student_t_vectorized_equals_pymc(outlier_fits):
    """Three pairs fitted by PyMC's own NUTS (same model, same plug-in prior) agree."""
    import pymc as pm

    from bayesslope.pairs.robust import NU_PRIOR

    tm = outlier_fits["student_t"]
    d = tm.design
    pop = tm.spec["population_prior"]
    labels = list(tm.table.index)
    pick = [labels.index(p) for p in (("a", "b"), ("b", "a"), ("c", "neg"))]
    mu = np.array([pop["intercept_mu"], pop["slope_mu"]])
    sa, sb, rho = pop["intercept_sigma"], pop["slope_sigma"], pop["corr"]
    cov = np.array([[sa * sa, rho * sa * sb], [rho * sa * sb, sb * sb]])
    with pm.Model():
        for k, p in enumerate(pick):
            m = d.pair_idx == p
            coef = pm.MvNormal(f"coef{k}", mu=mu, cov=cov)
            sig = pm.HalfNormal(f"sigma{k}", tm.priors["sigma"]["sigma"])
            nu = pm.Gamma(f"nu{k}", alpha=NU_PRIOR["alpha"], beta=NU_PRIOR["rate"])
            pm.StudentT(f"y{k}", nu=nu, mu=coef[0] + coef[1] * d.x[m], sigma=sig,
                        observed=d.y[m])
        idata = pm.sample(draws=1000, tune=1000, chains=4, cores=1, random_seed=seed(5),
                          nuts_sampler="pymc", progressbar=False,
                          compute_convergence_checks=False)
    s = tm.summary()
    for k, p in enumerate(pick):
        ref = idata.posterior[f"coef{k}"].values[..., 1].ravel()
        got_mean, got_sd = s["mean"].iloc[p], s["sd"].iloc[p]
        se = np.sqrt(ref.var() / 800 + got_sd**2 / s["ess_bulk"].iloc[p])
        assert abs(got_mean - ref.mean()) < 4 * se, labels[p]
        assert got_sd == pytest.approx(ref.std(), rel=0.1), labels[p]


def test_student_t_loglik_matches_scipy():
    import jax
    from scipy import stats as sps

    from bayesslope.pairs.robust import student_t_loglik

    rng = np.random.default_rng(4)
    y, loc = rng.standard_t(3, size=12), rng.normal(size=12)
    mask = (rng.uniform(size=12) < 0.8).astype(float)
    for sigma, nu in ((0.7, 2.5), (1.9, 40.0), (0.05, 0.8)):
        ref = float((mask * sps.t.logpdf(y, nu, loc, sigma)).sum())
        with jax.enable_x64(True):
            got = float(student_t_loglik(y, loc, sigma, nu, mask))
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-12)


def test_diagnostics_in_worker_processes_equal_inline(planted, monkeypatch):
    """Large matrices compute R-hat/ESS in forked workers: same numbers as inline."""
    import bayesslope.pairs.fit as pairs_fit

    df, tm = planted
    monkeypatch.setattr(pairs_fit, "_POOL_MIN_PAIRS", 1)
    pooled = fit_transfer_matrix(df, unit="model", task="task", y="y", random_seed=seed(1),
                                 chunk_size=7)
    assert pooled.spec["timings"]["diagnostics_workers"] >= 1
    assert tm.spec["timings"]["diagnostics_workers"] == 0
    pd.testing.assert_frame_equal(pooled.summary(), tm.summary())


def test_device_diagnostics_agree_with_arviz_stats():
    """blackjax's rank-normalized R-hat / bulk ESS (accelerators) == arviz-stats (CPU).

    Same definitions (Vehtari et al. 2021); the ESS estimators differ in details of
    Geyer's truncation (measured: <= 0.9% here), so ESS gets 3%.
    """
    from bayesslope.pairs.parallel import DeviceDiagnostics, rhat_ess

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 1000, 60))
    x[1, :, 5] += 0.5                                    # one chain off: R-hat ~1.02
    x[:, :, 7] = 0.05 * np.cumsum(x[:, :, 7], axis=1)    # random walk: ESS ~6
    x[:, :, 8] = 0.9 * x[:, :, 8] + 0.1 * np.cumsum(x[:, :, 8], axis=1)
    ref_r, ref_e = rhat_ess(x)
    got_r, got_e = DeviceDiagnostics().submit(x).result()
    np.testing.assert_allclose(got_r, ref_r, rtol=1e-10)
    np.testing.assert_allclose(got_e, ref_e, rtol=0.03)
    assert ref_r[5] > 1.01 and ref_e[7] < 50  # the planted problems are there


def test_fit_on_an_accelerator_computes_diagnostics_there(planted, monkeypatch):
    """With a non-CPU default backend the fit uses the device diagnostics (forced here:
    no GPU in CI); its R-hat / ESS columns match arviz-stats on the kept draws."""
    import jax

    from bayesslope.pairs.parallel import rhat_ess

    df, _ = planted
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    tm = fit_transfer_matrix(df, unit="model", task="task", y="y", random_seed=seed(1))
    assert tm.spec["timings"]["diagnostics_on"].startswith("device")
    s = tm.summary()
    slope = np.stack([tm.draws["slope"].sel(source=a, target=b).values for a, b in s.index],
                     axis=-1)
    r_hat, ess = rhat_ess(slope)
    np.testing.assert_allclose(s["r_hat"], r_hat, rtol=1e-10)
    np.testing.assert_allclose(s["ess_bulk"], ess, rtol=0.03)


def test_student_t_vmap_mode_matches_sequential(outlier_fits):
    """The accelerator mode (vmap over pairs and chains) samples the same posteriors."""
    import jax

    from bayesslope.pairs.robust import padded_pairs, sample_pairs

    tm = outlier_fits["student_t"]
    d = tm.design
    xs, ys, mask = padded_pairs(d.pair_idx, d.n_pairs, d.x, d.y)
    keep = slice(0, 4)
    out = {}

    def on_chunk(start, stop, a, b, div):
        out[start] = b

    line = np.column_stack([np.zeros(d.n_pairs), d.r])[keep]
    sample_pairs("student_t", jax.random.key(9), xs[keep], ys[keep], None, mask[keep], line,
                 tm.spec["population_prior"], tm.priors["sigma"]["sigma"],
                 chains=4, draws=1000, tune=1000, target_accept=0.9,
                 chunk_size=4, on_chunk=on_chunk, vectorize=True)
    slope = out[0]
    s = tm.summary().iloc[keep]
    se = np.sqrt(s["sd"] ** 2 / s["ess_bulk"] + slope.var(axis=(0, 1)) / 1000)
    assert np.all(np.abs(slope.mean(axis=(0, 1)) - s["mean"]) < 4 * se)
    np.testing.assert_allclose(slope.std(axis=(0, 1)), s["sd"], rtol=0.1)


# ----------------------------------------------------------------------------- binomial
def accuracy_frame(seed=0, m=30, n_eval=200):
    """Accuracies of m models on 4 tasks driven by one ability; 'neg' against it."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=m)
    alpha = np.array([0.5, -0.3, 1.0, 0.2])
    beta = np.array([0.8, 0.6, 0.5, -0.7])
    p = sps_norm_cdf(alpha + np.outer(g, beta) + 0.15 * rng.normal(size=(m, 4)))
    acc = rng.binomial(n_eval, p) / n_eval
    return long_frame(acc, tasks=["a", "b", "c", "neg"])


def sps_norm_cdf(v):
    from scipy.stats import norm

    return norm.cdf(v)


@pytest.fixture(scope="module")
def binomial_fit():
    df = accuracy_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = fit_transfer_matrix(df, likelihood="binomial", n_eval=200, random_seed=seed(3))
    return df, tm


def test_binomial_loglik_matches_scipy():
    import jax
    from scipy import stats as sps

    from bayesslope.pairs.robust import binomial_probit_loglik

    rng = np.random.default_rng(2)
    trials = rng.integers(1, 300, 10).astype(float)
    k = rng.binomial(trials.astype(int), 0.6).astype(float)
    eta = rng.normal(0, 3, 10)
    mask = np.ones(10)
    mask[3] = 0.0
    const = sps.binom.logpmf(k, trials, 0.5) - (k + trials - k) * np.log(0.5)  # log C(n, k)
    ref = (mask * (sps.binom.logpmf(k, trials, sps.norm.cdf(eta)) - const)).sum()
    with jax.enable_x64(True):
        got = float(binomial_probit_loglik(k, trials, eta, mask))
    assert got == pytest.approx(ref, rel=1e-10)


def test_binomial_pairs_signs_and_pymc_agreement(binomial_fit):
    import pymc as pm

    _, tm = binomial_fit
    s = tm.summary()
    assert tm.spec["method"] == "per-pair-nuts-binomial"
    into_neg = s.xs("neg", level="target")["p_negative"]
    assert (into_neg > 0.95).all()
    positive = s.drop(index="neg", level="source").drop(index="neg", level="target")
    assert (positive["p_negative"] < 0.05).all()
    # One pair refitted by PyMC's NUTS with the same likelihood and plug-in prior.
    d = tm.design
    p = list(s.index).index(("a", "b"))
    m = d.pair_idx == p
    units = d.observation_units()[m]
    k = np.round(d.scores[units, 1] * 200)
    pop = tm.spec["population_prior"]
    sa, sb, rho = pop["intercept_sigma"], pop["slope_sigma"], pop["corr"]
    cov = np.array([[sa * sa, rho * sa * sb], [rho * sa * sb, sb * sb]])
    with pm.Model():
        coef = pm.MvNormal("coef", mu=[pop["intercept_mu"], pop["slope_mu"]], cov=cov)
        pm.Binomial("k", n=200, p=pm.math.invprobit(coef[0] + coef[1] * d.x[m]), observed=k)
        idata = pm.sample(draws=1000, tune=1000, chains=4, cores=1, random_seed=seed(5),
                          nuts_sampler="pymc", progressbar=False,
                          compute_convergence_checks=False)
    ref = idata.posterior["coef"].values[..., 1].ravel()
    row = s.iloc[p]
    se = np.sqrt(ref.var() / 1000 + row["sd"] ** 2 / row["ess_bulk"])
    assert abs(row["mean"] - ref.mean()) < 4 * se
    assert row["sd"] == pytest.approx(ref.std(), rel=0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(likelihood="binomial"), "n_eval is needed"),
        (dict(n_eval=200), "n_eval is needed"),
        (dict(likelihood="binomial", n_eval=0), "positive integer"),
        (dict(likelihood="binomial", n_eval={"a": 200}), "no count for tasks"),
    ],
)
def test_binomial_bad_arguments(kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        fit_transfer_matrix(accuracy_frame(m=8), **kwargs)


def test_binomial_rejects_scores_outside_unit_interval():
    df = accuracy_frame(m=8)
    df.loc[(df["task"] == "b") & (df["model"] == "m2"), "y"] = 1.3
    with pytest.raises(DataValidationError, match=r"outside.*'b', 'm2', 1.3"):
        fit_transfer_matrix(df, likelihood="binomial", n_eval=200)


def test_binomial_error_rates_with_lower_is_better(binomial_fit):
    """Error rates oriented 'lower' describe the same counts as accuracies 'higher'."""
    df, tm = binomial_fit
    err = df.assign(y=1.0 - df["y"], n_q=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = fit_transfer_matrix(err, y_better="lower", likelihood="binomial",
                                    n_eval="n_q", random_seed=seed(4))
    a, b = tm.summary(), other.summary()
    se = np.sqrt(a["sd"] ** 2 / a["ess_bulk"] + b["sd"] ** 2 / b["ess_bulk"])
    assert np.all(np.abs(a["mean"] - b["mean"]) < 4 * se)
    assert other.spec["n_eval"] == dict.fromkeys(["a", "b", "c", "neg"], 200)


# ----------------------------------------------------------------------------- grouped units
def clustered_frame(seed=0, n_groups=8, per_group=6):
    """Checkpoints of models: each model shifts every task by its own offset."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    ability = rng.normal(size=n_groups)[g] + 0.5 * rng.normal(size=g.size)
    load = np.array([1.0, 0.8, 0.6, -0.7])
    offsets = rng.normal(0.0, 0.8, size=(n_groups, 4))[g]  # model-level, task-specific
    s = np.outer(ability, load) + offsets + 0.3 * rng.normal(size=(g.size, 4))
    df = long_frame(s, tasks=["a", "b", "c", "neg"])
    df["family"] = [f"f{g[int(u[1:])]}" for u in df["model"]]
    return df


@pytest.fixture(scope="module")
def grouped_fits():
    df = clustered_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grouped = fit_transfer_matrix(df, group="family", random_seed=seed(6))
    return df, grouped


def test_grouped_units_match_pymc_and_find_negative_task(grouped_fits):
    import pymc as pm

    df, tm = grouped_fits
    assert tm.spec["method"] == "per-pair-nuts-normal-grouped"
    assert tm.design.groups == tuple(f"f{i}" for i in range(8))
    s = tm.summary()
    assert (s.xs("neg", level="target")["p_negative"] > 0.9).all()
    # One pair refitted by PyMC's NUTS with the same model and plug-in prior.
    d = tm.design
    labels = list(s.index)
    p = labels.index(("a", "b"))
    m = d.pair_idx == p
    grp = d.unit_group[d.observation_units()[m]]
    pop = tm.spec["population_prior"]
    sa, sb, rho = pop["intercept_sigma"], pop["slope_sigma"], pop["corr"]
    cov = np.array([[sa * sa, rho * sa * sb], [rho * sa * sb, sb * sb]])
    with pm.Model():
        coef = pm.MvNormal("coef", mu=[pop["intercept_mu"], pop["slope_mu"]], cov=cov)
        sigma = pm.HalfNormal("sigma", tm.priors["sigma"]["sigma"])
        tau = pm.HalfNormal("tau", 1.0)
        w = pm.Normal("w", 0.0, 1.0, shape=len(d.groups))
        pm.Normal("y", coef[0] + coef[1] * d.x[m] + tau * w[grp], sigma, observed=d.y[m])
        idata = pm.sample(draws=1000, tune=1000, chains=4, cores=1, random_seed=seed(5),
                          nuts_sampler="pymc", target_accept=0.9, progressbar=False,
                          compute_convergence_checks=False)
    ref = idata.posterior["coef"].values[..., 1].ravel()
    row = s.iloc[p]
    se = np.sqrt(ref.var() / 800 + row["sd"] ** 2 / row["ess_bulk"])
    assert abs(row["mean"] - ref.mean()) < 4 * se
    assert row["sd"] == pytest.approx(ref.std(), rel=0.1)


def test_grouped_loglik_matches_dense_multivariate_normal():
    # Random intercepts integrated out == the dense MVN with covariance
    # sigma^2 I + tau^2 Z Z' (Z: unit -> group indicator), padding masked, one empty group.
    import jax
    from scipy import stats as sps

    from bayesslope.pairs.robust import grouped_normal_loglik

    rng = np.random.default_rng(4)
    group = np.array([0, 0, 1, 1, 1, 3, 3, 0, 2, 2])  # 5 groups below: group 4 is empty
    r = rng.normal(size=group.size)
    mask = np.ones(group.size)
    mask[-1] = 0.0
    sigma, tau = 0.7, 1.3
    keep = mask == 1
    z = np.eye(5)[group[keep]]
    cov = sigma**2 * np.eye(keep.sum()) + tau**2 * z @ z.T
    ref = sps.multivariate_normal(np.zeros(keep.sum()), cov).logpdf(r[keep])
    with jax.enable_x64(True):
        got = float(grouped_normal_loglik(r, group.astype(float), mask, sigma, tau, 5))
    assert got == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("sd_a", [0.3, 1e-4])
@pytest.mark.parametrize("model", ["normal_grouped", "student_t", "binomial_probit"])
def test_pair_nuts_scale_does_not_follow_the_population_sd(model, sd_a):
    # Issue 19: on standardized scores every pair's least-squares intercept is 0, so the
    # plug-in intercept sd shrinks as pairs are added (0.001 at 20,022 pairs); sampled as
    # is, that dimension forced tiny NUTS steps (a grouped chunk 3.0 -> 6.9 s from 870 to
    # 20,022 pairs). NUTS moves the coefficients in units of the population sds: the same
    # density up to a constant, with the prior's curvature 1 / (1 - rho^2) along the
    # intercept when its sd is tiny (the centered one would be ~1e8).
    import jax

    from bayesslope.pairs.robust import MODELS, nuts_plan, pair_target

    rng = np.random.default_rng(seed(11))
    n, rho = 20, 0.3
    x = (lambda v: (v - v.mean()) / v.std())(rng.normal(size=n))
    if model == "binomial_probit":
        y, aux = rng.binomial(200, 0.6, size=n).astype(float), np.full(n, 200.0)
    else:
        y, aux = 0.5 * x + 0.8 * rng.normal(size=n), np.repeat(np.arange(5.0), 4)
    mask, line = np.ones(n), np.array([[0.05, 0.4]])
    pop = {"intercept_mu": 0.01, "slope_mu": 0.1, "intercept_sigma": sd_a,
           "slope_sigma": 0.4, "corr": rho}
    plan = nuts_plan(model, jax.random.key(0), x[None], y[None], aux[None], mask[None],
                     line, pop, 1.0, 1, 1, 1, 0.9, 1, n_groups=5)
    extra = {"n_groups": 5} if model == "normal_grouped" else {}
    with jax.enable_x64(True):
        prior = tuple(jax.numpy.asarray(v) for v in plan["prior"])
        logdensity, initial, coefficients = pair_target(model, x, y, aux, mask, prior, 5)
        p1 = initial(jax.numpy.array([0.1, -0.2, 0.3, -0.1]), line[0])
        p2 = {**p1, "intercept_z": p1["intercept_z"] + 0.7, "slope_z": p1["slope_z"] - 0.4}

        def centered(p):
            a, b = coefficients(p)
            return MODELS[model][0]({**p, "intercept": a, "slope": b}, x=x, y=y, aux=aux,
                                    mask=mask, mu=prior[0], chol_inv=prior[1],
                                    sigma_scale=prior[2], **extra)

        # Same density up to a constant (the Jacobian of a fixed linear map).
        assert float(logdensity(p1) - logdensity(p2)) == pytest.approx(
            float(centered(p1) - centered(p2)), rel=1e-10)
        curv = -float(jax.hessian(lambda z: logdensity({**p1, "intercept_z": z}))(
            p1["intercept_z"]))
    if sd_a < 1e-3:
        assert curv == pytest.approx(1.0 / (1.0 - rho**2), rel=1e-3)
    else:
        assert 0.5 < curv < 1e3  # the data's information in prior units, not 1 / sd^2


def test_group_column_errors():
    df = clustered_frame()
    bad = df.copy()
    bad.loc[(bad["model"] == "m3") & (bad["task"] == "b"), "family"] = "other"
    with pytest.raises(DataValidationError, match="constant within a unit"):
        fit_transfer_matrix(bad, group="family")
    with pytest.raises(DataValidationError, match="likelihood='normal' only"):
        fit_transfer_matrix(df, group="family", likelihood="student_t")
    with pytest.raises(DataValidationError, match="not in the frame"):
        fit_transfer_matrix(df, group="lab")


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip_is_exact(planted, tmp_path):
    import bayesslope as bs

    _, tm = planted
    back = bs.load(tm.to_netcdf(tmp_path / "tm.nc"))
    assert isinstance(back, TransferMatrix)
    for ci in (0.9, 0.5, 0.97):
        pd.testing.assert_frame_equal(back.summary(ci), tm.summary(ci), check_exact=True)
    pd.testing.assert_series_equal(back.p_negative_transfer(), tm.p_negative_transfer(),
                                   check_exact=True)
    pd.testing.assert_frame_equal(back.diagnostics(), tm.diagnostics(), check_exact=True)
    for name in ("slope", "slope_data", "compatibility"):
        xr_a, xr_b = getattr(back, name), getattr(tm, name)
        np.testing.assert_array_equal(xr_a.values, xr_b.values)
        assert xr_a.dims == xr_b.dims
    for order in (True, False):
        a, b = back.plot_data(order=order), tm.plot_data(order=order)
        assert a["tasks"] == b["tasks"]
        np.testing.assert_array_equal(a["values"], b["values"])
        np.testing.assert_array_equal(a["p_negative"], b["p_negative"])
    assert back.spec == tm.spec and back.priors == tm.priors
    assert back.design.data_hash() == tm.design.data_hash()
    # bs.load_fit is a synonym of bs.load.
    assert isinstance(bs.load_fit(tmp_path / "tm.nc"), TransferMatrix)


def test_load_refuses_tampered_and_truncated_files(planted, tmp_path):
    import h5py

    import bayesslope as bs

    _, tm = planted
    path = tm.to_netcdf(tmp_path / "tm.nc")
    tampered = tmp_path / "tampered.nc"
    tampered.write_bytes(path.read_bytes())
    with h5py.File(tampered, "r+") as f:
        f["design"]["scores"][0, 0] = f["design"]["scores"][0, 0] + 1.0
    with pytest.raises(DataValidationError,
                       match=rf"not a readable bayesslope result: {tampered} \(.*hash"):
        bs.load(tampered)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataValidationError, match=rf"not a readable bayesslope result: {truncated}"
                       ):
        bs.load(truncated)
