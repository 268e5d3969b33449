"""TransferFit: storage, summaries, population, diagnostics, plots, report; seeds; weak
data; datasets; and a cheap import."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import fit_quietly, seed, simulate
from scipy.special import ndtr

import bayesslope as bs
from bayesslope import SamplingWarning, WeakDataWarning

# -- save / load --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reloaded(base_fit, tmp_path_factory):
    path = base_fit.to_netcdf(tmp_path_factory.mktemp("fit") / "fit.nc")
    assert path.exists() and path.stat().st_size > 0
    return bs.load_fit(path)


def test_round_trip_identical_summaries(base_fit, reloaded):
    pd.testing.assert_frame_equal(reloaded.summary(), base_fit.summary())
    pd.testing.assert_frame_equal(reloaded.population(), base_fit.population())
    pd.testing.assert_series_equal(reloaded.p_negative_transfer(), base_fit.p_negative_transfer())
    pd.testing.assert_frame_equal(reloaded.diagnostics(), base_fit.diagnostics())


def test_round_trip_identical_arrays_and_spec(base_fit, reloaded):
    post, post2 = base_fit.posterior["posterior"], reloaded.posterior["posterior"]
    assert set(post.data_vars) == set(post2.data_vars)
    for var in post.data_vars:
        np.testing.assert_array_equal(post2[var].values, post[var].values, err_msg=var)
    np.testing.assert_array_equal(
        reloaded.posterior["sample_stats"]["diverging"].values,
        base_fit.posterior["sample_stats"]["diverging"].values,
    )
    assert reloaded.spec == json.loads(json.dumps(base_fit.spec))
    assert reloaded.priors == base_fit.priors
    assert reloaded.spec["sampler"]["random_seed"] == seed(100)
    d, d2 = base_fit.design, reloaded.design
    for name in ("x", "y", "task_idx", "xc"):
        np.testing.assert_array_equal(getattr(d2, name), getattr(d, name))
    assert (d2.tasks, d2.x_better, d2.y_better, d2.x_ref, d2.x_scale, d2.y_scale) == (
        d.tasks, d.x_better, d.y_better, d.x_ref, d.x_scale, d.y_scale)
    assert d2.data_hash() == d.data_hash()
    assert "bayesslope_design" not in reloaded.posterior.children


def test_load_rejects_foreign_and_corrupt_files(base_fit, tmp_path):
    import xarray as xr

    foreign = tmp_path / "foreign.nc"
    xr.DataTree(xr.Dataset({"a": ("x", [1.0, 2.0])})).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(bs.DataValidationError,
                       match=r"not a readable bayesslope result: .*foreign.nc .*not written by"):
        bs.load_fit(foreign)
    # Tamper with the stored data: the hash check catches it.
    good = base_fit.to_netcdf(tmp_path / "good.nc")
    tree = xr.open_datatree(good, engine="h5netcdf").load()
    ds = tree["bayesslope_design"].to_dataset()
    ds["y"] = ds["y"] + 1.0
    tree["bayesslope_design"] = xr.DataTree(ds)
    bad = tmp_path / "bad.nc"
    tree.to_netcdf(bad, engine="h5netcdf")
    with pytest.raises(ValueError, match="do not match their hash"):
        bs.load_fit(bad)


# -- summaries ------------------------------------------------------------------------------


def test_summary_values(base_fit, base_sim):
    table = base_fit.summary(ci_prob=0.5)
    post = base_fit.posterior["posterior"]
    slope = post["slope"].stack(s=("chain", "draw")).transpose("task", "s").values
    np.testing.assert_allclose(table["mean"], slope.mean(axis=1))
    np.testing.assert_allclose(table["sd"], slope.std(axis=1, ddof=1))
    np.testing.assert_allclose(table["eti50_lb"], np.quantile(slope, 0.25, axis=1))
    np.testing.assert_allclose(table["eti50_ub"], np.quantile(slope, 0.75, axis=1))
    # slope_data = sign * slope (sign -1: x lower is better), slope_std = slope sd(x)/sd(y).
    d = base_fit.design
    np.testing.assert_allclose(table["slope_data_mean"], -table["mean"])
    np.testing.assert_allclose(table["slope_std_mean"], table["mean"] * d.x_scale / d.y_scale)
    assert (table["n"] == 15).all()
    expected_range = base_sim.df.groupby("task")["x"].agg(np.ptp)
    np.testing.assert_allclose(table["x_range"], expected_range.reindex(table.index))
    assert list(table.index) == [f"t{k}" for k in range(8)]
    assert (table["r_hat"] > 0.99).all() and (table["ess_bulk"] > 100).all()
    with pytest.raises(ValueError, match=r"ci_prob should be in \(0, 1\) but got 1.5"):
        base_fit.summary(ci_prob=1.5)


def test_population_values(base_fit):
    pop = base_fit.population()
    post = base_fit.posterior["posterior"]
    for var in ("slope_mu", "slope_sigma", "intercept_mu", "intercept_sigma", "corr", "sigma"):
        draws = post[var].values.ravel()
        assert pop.loc[var, "mean"] == pytest.approx(draws.mean())
        assert pop.loc[var, "eti90_lb"] == pytest.approx(np.quantile(draws, 0.05))
    # P(new task negative) = E[Phi(-mu/tau)] over draws, not the plug-in Phi(-E mu / E tau).
    mu, tau = post["slope_mu"].values.ravel(), post["slope_sigma"].values.ravel()
    p_new = pop.loc["p_negative_new_task", "mean"]
    assert p_new == pytest.approx(np.mean(ndtr(-mu / tau)))
    assert p_new != pytest.approx(ndtr(-mu.mean() / tau.mean()), rel=1e-3)
    # Population mean near the simulated one (0.10, pulled down by the planted -0.06).
    assert 0.0 < pop.loc["slope_mu", "mean"] < 0.2
    assert pop.loc["sigma", "mean"] == pytest.approx(0.02, rel=0.25)


def test_diagnostics_table(base_fit):
    diag = base_fit.diagnostics()
    assert {"slope", "slope_mu", "sigma"} <= set(diag.index)
    assert diag.attrs["divergences"] == int(
        base_fit.posterior["sample_stats"]["diverging"].values.sum())
    assert diag.loc["slope", "r_hat_max"] == pytest.approx(base_fit.summary()["r_hat"].max())
    assert diag.loc["slope", "ess_bulk_min"] == pytest.approx(base_fit.summary()["ess_bulk"].min())


def test_repr_and_orientation(base_fit):
    text = repr(base_fit)
    assert "8 tasks, 120 observations, 2 chains x 500 draws" in text
    assert base_fit.orientation == {"x_better": "lower",
                                    "y_better": {f"t{k}": "higher" for k in range(8)}}


# -- seeds and SamplingWarning (tiny fits: sampling cost is negligible) -----------------------

TINY = dict(draws=20, tune=20, chains=2, cores=1)


@pytest.fixture(scope="module")
def tiny():
    df = simulate(seed(5), n_tasks=4, n_points=10).df
    fits = {}
    records = {}
    for key, k in (("a", 1), ("b", 1), ("c", 2)):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            fits[key] = bs.fit_hierarchical(df, random_seed=seed(k), **TINY)
        records[key] = rec
    return fits, records


def test_same_seed_identical_draws(tiny):
    fits, _ = tiny
    for var in ("slope", "intercept", "slope_mu", "sigma"):
        a = fits["a"].posterior["posterior"][var].values
        np.testing.assert_array_equal(fits["b"].posterior["posterior"][var].values, a)
        assert not np.array_equal(fits["c"].posterior["posterior"][var].values, a)


def test_short_run_warns_with_the_fix(tiny):
    """20 draws x 2 chains cannot reach ESS 400 (at most ~40 x antithetic gain)."""
    _, records = tiny
    msgs = [str(w.message) for w in records["a"] if issubclass(w.category, SamplingWarning)]
    ess = [m for m in msgs if "effective sample size below 400" in m]
    assert ess, msgs
    assert "Fix: increase draws or chains" in ess[0]
    # The warning points at the caller, not at bayesslope internals.
    w = next(w for w in records["a"] if issubclass(w.category, SamplingWarning))
    assert w.filename == __file__


def test_check_sampling_direct(base_fit):
    """check_sampling on a healthy fit and on a copy with planted divergences."""
    from bayesslope.diagnostics import check_sampling

    tree = base_fit.posterior.copy()
    stats = tree["sample_stats"].to_dataset()
    div = stats["diverging"].values.copy()
    div[:] = False
    div[0, :7] = True
    stats["diverging"] = (stats["diverging"].dims, div)
    tree["sample_stats"] = stats
    with pytest.warns(SamplingWarning, match=r"7 divergent transition\(s\).*raise target_accept"):
        table = check_sampling(tree, ["slope"])
    assert table.attrs["divergences"] == 7


@pytest.mark.parametrize("nutpie_stats", [True, False])
def test_poor_mixing_names_the_other_sampler_only_after_nutpie(nutpie_stats):
    """Chains that disagree (shifted by 5 sd): R-hat and ESS warnings; the fix names
    sampler='pymc' only when the sample stats are nutpie's."""
    import xarray as xr

    from bayesslope.diagnostics import check_sampling

    rng = np.random.default_rng(seed(3))
    draws = rng.standard_normal((4, 200)) + 5.0 * np.arange(4)[:, None]
    dims = ("chain", "draw")
    names = (("depth", "maxdepth_reached") if nutpie_stats
             else ("tree_depth", "reached_max_treedepth"))
    stats = {"diverging": (dims, np.zeros((4, 200), bool)),
             names[0]: (dims, np.full((4, 200), 3)), names[1]: (dims, np.zeros((4, 200), bool))}
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"slope": (dims, draws)}),
                                  "sample_stats": xr.Dataset(stats)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_sampling(tree, ["slope"])
    text = [str(w.message) for w in caught if issubclass(w.category, SamplingWarning)]
    assert any("R-hat above" in t for t in text) and any("effective sample size" in t for t in text)
    assert all(("sampler='pymc'" in t) == nutpie_stats for t in text)


# -- weak data: fitted, flagged, warned --------------------------------------------------------


@pytest.fixture(scope="module")
def weak_fit_and_warnings():
    sim = simulate(seed(11), n_tasks=6, n_points=15, planted=None)
    rng = np.random.default_rng(seed(11))
    weak = pd.DataFrame({
        "task": ["one", "two", "two", "flat", "flat", "flat", "flat"],
        "x": [2.5, 2.2, 3.8, 3.1, 3.1, 3.1, 3.1],
        "y": 0.6 + rng.normal(0, 0.02, 7),
    })
    df = pd.concat([sim.df, weak], ignore_index=True)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = fit_quietly(df, parameterization="auto", target_accept=0.95, random_seed=seed(3),
                          quiet=False)
    return fit, rec


def test_weak_tasks_fitted_flagged_and_warned(weak_fit_and_warnings):
    fit, rec = weak_fit_and_warnings
    weak_msgs = [str(w.message) for w in rec if issubclass(w.category, WeakDataWarning)]
    assert len(weak_msgs) == 1, weak_msgs
    msg = weak_msgs[0]
    assert "3 task(s)" in msg
    for part in ("'flat' (constant x)", "'one' (1 point)", "'two' (2 points)"):
        assert part in msg
    table = fit.summary()
    assert table.loc["one", "n"] == 1 and table.loc["two", "n"] == 2 and table.loc["flat", "n"] == 4
    assert table.loc["flat", "x_range"] == 0.0
    assert table.loc["two", "x_range"] == pytest.approx(1.6)
    assert table.loc["one", "weak"] == "1 point" and table.loc["flat", "weak"] == "constant x"
    assert (table.drop(["one", "two", "flat"])["weak"] == "").all()
    # The weak tasks are sampled non-centered, the informative ones centered.
    centered = dict(zip(fit.design.tasks, fit.spec["model"]["centered_tasks"], strict=True))
    assert not centered["one"] and not centered["two"] and not centered["flat"]
    # Their slopes come mostly from the population: centred near slope_mu, with an sd of
    # the order of the population spread, sqrt(var(slope_mu) + E[slope_sigma^2]) >=
    # E[slope_sigma], less what the intercept tells through the correlation (a factor
    # sqrt(1 - rho^2)); 0.5 allows |rho| up to 0.87. (The former bar, sd > 3 x the
    # informed tasks' sd, failed for BAYESSLOPE_TEST_SEED=2: it depends on how spread
    # the 6 simulated slopes happen to be.)
    pop = fit.population()
    for task in ("one", "flat"):
        assert table.loc[task, "sd"] > 0.5 * pop.loc["slope_sigma", "mean"], task
        gap = abs(table.loc[task, "mean"] - pop.loc["slope_mu", "mean"])
        assert gap < 2 * table.loc[task, "sd"]


def test_weak_fit_has_no_divergence_explosion(weak_fit_and_warnings):
    """Weak tasks sampled non-centered do not wreck the sampler (loose sanity bounds).

    Measured by scripts/measure_test_margins.py (case weak) at BAYESSLOPE_TEST_SEED 0-4:
    0 divergences of 1,000 draws, max slope R-hat 1.002-1.011 (the former bar,
    <= 1% divergent and R-hat < 1.05, is kept for divergences at 2% and R-hat at 1.1).
    """
    fit, _ = weak_fit_and_warnings
    diag = fit.diagnostics()
    n_draws = 2 * 500
    assert diag.attrs["divergences"] <= 0.02 * n_draws, diag.attrs["divergences"]
    assert np.isfinite(fit.summary()["mean"]).all()
    assert diag.loc["slope", "r_hat_max"] < 1.1


# -- plots and report --------------------------------------------------------------------------


def test_plots_return_figures(base_fit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = base_fit.plot_tasks()
    assert isinstance(fig, Figure)
    assert sum(ax.get_visible() for ax in fig.axes) == 8
    assert "t0" in fig.axes[0].get_title()
    fig2 = base_fit.plot_slopes()
    assert isinstance(fig2, Figure)
    # Forest plot: one tick per task, sorted by posterior mean (planted t0 lowest).
    labels = [t.get_text() for t in fig2.axes[0].get_yticklabels()]
    assert labels[0] == "t0" and sorted(labels) == [f"t{k}" for k in range(8)]
    _, ax = plt.subplots()
    assert base_fit.plot_slopes(ax=ax, standardized=True) is ax.figure
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['nope'\]"):
        base_fit.plot_tasks(tasks=["nope"])
    plt.close("all")


def test_report_writes_files(base_fit, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from bayesslope.report import write_report

    paths = write_report(base_fit, tmp_path / "out")
    assert {"summary", "population", "diagnostics", "fit", "tasks_png", "slopes_png",
            "report"} <= set(paths)
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0, p
    summary = pd.read_csv(paths["summary"], index_col="task")
    np.testing.assert_allclose(summary["mean"], base_fit.summary()["mean"])
    assert paths["tasks_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths["report"].read_text()
    assert "# bayesslope report" in text and "t0" in text and "Divergences:" in text
    pd.testing.assert_frame_equal(bs.load_fit(paths["fit"]).summary(), base_fit.summary())


# -- datasets and import cost -----------------------------------------------------------------


def test_datasets_api():
    table = bs.list_datasets()
    assert "pythia" in table.index
    assert {"description", "rows", "tasks", "unit", "readme", "license"} <= set(table.columns)
    df = bs.load_dataset("pythia")
    assert {"x", "y", "task", "x_higher_is_better", "y_higher_is_better"} <= set(df.columns)
    assert len(df) == 1148 and np.isfinite(df[["x", "y"]].to_numpy()).all()
    with pytest.raises(ValueError, match=r"unknown dataset 'nope'; available: \[.*'pythia'"):
        bs.load_dataset("nope")


def test_import_does_not_load_pymc_or_jax():
    code = (
        "import sys, bayesslope as bs\n"
        "mods = ('pymc', 'pytensor', 'jax', 'matplotlib', 'arviz')\n"
        "heavy = [m for m in mods if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert bs.DataValidationError and bs.__version__\n"
        "df = bs.load_dataset('pythia')\n"
        "from bayesslope.data import prepare_design\n"
        "prepare_design(df)\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'jax') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def _documented_parameters(func) -> list[str]:
    """Names in the numpydoc ``Parameters`` section of ``func``'s docstring, in order."""
    lines = inspect.cleandoc(func.__doc__ or "").splitlines()
    names, section = [], None
    for line, underline in zip(lines, [*lines[1:], ""], strict=True):
        if line.strip() and underline.strip() and set(underline.strip()) == {"-"}:
            section = line.strip()
        elif (section == "Parameters" and line[:1].strip()
              and set(line.strip()) != {"-"}):
            names += [n.strip().lstrip("*") for n in line.split(":")[0].split(",")]
    return names


def test_public_names():
    from importlib import import_module

    from bayesslope import exceptions

    public = set(bs.__all__)
    assert len(public) == len(bs.__all__)
    # __all__ is the lazy table, the exception module's names and the version: nothing
    # public is missing from the table, nothing in it is private.
    assert public == {"__version__"} | set(bs._LAZY) | set(exceptions.__all__)
    assert re.fullmatch(r"\d+\.\d+\.\d+", bs.__version__)
    assert public <= set(dir(bs))
    for name, module in bs._LAZY.items():  # resolves, to the object its module defines
        assert getattr(bs, name) is getattr(import_module(module, "bayesslope"), name), name
    assert {"fit_hierarchical", "fit_transfer_matrix", "TransferFit", "TransferMatrix",
            "load_fit", "DataValidationError"} <= public
    for name in sorted(public - {"__version__"}):
        obj = getattr(bs, name)
        assert obj.__module__.startswith("bayesslope"), name
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
        if name.endswith("Error"):
            assert issubclass(obj, Exception) and not issubclass(obj, Warning), name
        elif name.endswith("Warning"):
            assert issubclass(obj, Warning), name
        elif name[0].isupper():
            assert inspect.isclass(obj) and not issubclass(obj, BaseException), name
        else:
            # A function: its documented parameters (numpydoc, ``**kwargs`` included) are
            # its signature, in order; at most the first (the data, a path or a name) is
            # positional, the rest keyword-only (write_report: the result and its folder).
            assert inspect.isfunction(obj), name
            params = list(inspect.signature(obj).parameters.values())
            assert _documented_parameters(obj) == [p.name for p in params], name
            positional = [p for p in params if p.kind in (
                p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
            assert len(positional) <= (2 if name == "write_report" else 1), (name, positional)
            assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in positional), name
            with pytest.raises(TypeError, match="positional argument"):
                obj(*[None] * (len(positional) + 1))
    for entry in ("fit_hierarchical", "fit_transfer_matrix"):
        assert next(iter(inspect.signature(getattr(bs, entry)).parameters)) == "df"
    assert issubclass(bs.DataValidationError, ValueError)
    assert issubclass(bs.SamplingWarning, RuntimeWarning)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        bs.nope  # noqa: B018
