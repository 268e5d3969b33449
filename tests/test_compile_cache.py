"""The on-disk cache of compiled nutpie models, its location rules and the progress bar default.

The cache must be invisible except in time: a model compiled in this process and the same
model loaded from the cache (as a fresh process would) give identical draws for a seed; a
corrupt entry is discarded and rebuilt, never trusted; ``BAYESSLOPE_CACHE=off`` writes
nothing. A two-parameter model keeps the cold compilations cheap.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
from conftest import seed

from bayesslope import sampling
from bayesslope.cache import cache_root, cache_subdir
from bayesslope.exceptions import DataValidationError
from bayesslope.numba_model import compile_cached, load_model
from bayesslope.resolve import resolve_sampler
from bayesslope.sampling import SamplerConfig

CONFIG = SamplerConfig(draws=100, tune=100, chains=2, random_seed=seed(3), sampler="nutpie",
                       cores=1)


def _model(y):
    import pymc as pm

    # ``dims=`` makes the dim's length a shared variable that is not data: it must stay
    # fixed by the structure (a regression: collapsed fits with per-task sigma failed).
    with pm.Model(coords={"group": ["a", "b"]}) as model:
        data = pm.Data("y", np.asarray(y, dtype=float))
        scale = pm.Data("scale", 2.0)
        mu = pm.Normal("mu", 0.0, scale)
        sd = pm.HalfNormal("sd", 1.0, dims="group")
        pm.Normal("obs", mu, sd[0], observed=data)
        pm.Deterministic("scaled", mu * scale)  # a traced variable that reads the data
    return model


Y = np.array([0.3, -0.1, 0.8, 1.2, 0.4])
DATA = {"y": Y, "scale": 2.0}
KEY = ("test_compile_cache", 1)


def _draws(cached, data=None):
    compiled = cached.compiled if data is None else cached.with_data(data)
    post = cached.complete(sampling._run_nutpie(compiled, CONFIG), compiled)["posterior"]
    return np.concatenate([post["mu"].values.ravel(), post["sd"].values.ravel()])


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """A first compilation into an empty cache folder."""
    folder = tmp_path_factory.mktemp("numba-cache")
    cached = compile_cached(_model(Y), folder, key=KEY, data_names=list(DATA))
    assert "group" in cached.fixed and "group" not in DATA
    return folder, cached, _draws(cached)


def test_cold_compilation_writes_the_cache(cold):
    folder, cached, _ = cold
    assert cached.loaded == "compiled"
    assert cached.compiled.compiled_logp_func.cache_hits == 0
    assert any(p.suffix == ".nbi" for p in folder.iterdir())
    assert len(list(folder.glob("model-*.json"))) == 1


def test_traced_variables_are_computed_from_the_free_draws(cold):
    """nutpie traces the free values; the constrained ones and deterministics are derived."""
    _, cached, _ = cold
    compiled = cached.with_data({"y": Y, "scale": 3.0})
    tree = sampling._run_nutpie(compiled, CONFIG)
    free = tree["posterior"].to_dataset().copy()
    assert set(free.data_vars) == {"mu", "sd_log__"}
    post = cached.complete(tree, compiled)["posterior"].to_dataset()
    assert set(post.data_vars) == {"mu", "sd", "scaled"}
    assert post["sd"].dims == ("chain", "draw", "group")
    # HalfNormal's log transform, and the new data value (3.0, not the compiled 2.0).
    np.testing.assert_allclose(post["sd"].values, np.exp(free["sd_log__"].values), rtol=1e-12)
    np.testing.assert_allclose(post["scaled"].values, 3.0 * free["mu"].values, rtol=1e-12)


def test_nutpie_estimates_the_mass_matrix_from_draw_variances(cold):
    """``adaptation="draw_diag"`` reaches nutpie: its recorded settings turn off the
    gradient-based estimate (nutpie's default, which mixed hierarchical population
    parameters worse; validation/NOTES.md)."""
    _, cached, _ = cold
    tree = sampling._run_nutpie(cached.compiled, CONFIG)
    settings = json.loads(tree["sample_stats"].attrs["inference_library_settings"])
    assert settings["settings"]["adapt_options"]["mass_matrix_options"][
        "use_grad_based_estimate"] is False
    assert tree["posterior"].attrs["nutpie_adaptation"] == sampling.NUTPIE_ADAPTATION


def test_warm_cache_is_loaded_and_gives_identical_draws(cold):
    folder, _, draws = cold
    warm = compile_cached(_model(Y), folder, data_names=list(DATA))  # graph rebuilt, code loaded
    assert warm.loaded == "code" and warm.compiled.compiled_logp_func.cache_hits == 1
    np.testing.assert_array_equal(_draws(warm), draws)
    described = load_model(folder, KEY, DATA)  # no model at all
    assert described.loaded == "description"
    np.testing.assert_array_equal(_draws(described), draws)
    assert load_model(folder, ("test_compile_cache", 2), DATA) is None  # another structure


def test_new_data_of_the_same_structure_are_used(cold):
    # Same shapes, other values: the compiled code is reused and sees the new data
    # (the data mean moves the posterior of mu by the same shift, up to MC error).
    _, cached, draws = cold
    moved = _draws(cached, {"y": Y + 5.0, "scale": 10.0})
    n = CONFIG.chains * CONFIG.draws  # the draws of mu come first
    assert abs((moved[:n].mean() - draws[:n].mean()) - 5.0) < 0.5
    with pytest.raises(ValueError, match=r"data 'y' should have shape \(5,\) but got \(3,\)"):
        cached.with_data({"y": Y[:3], "scale": 2.0})


def test_corrupt_entry_is_rebuilt_not_trusted(cold, tmp_path):
    folder, _, draws = cold
    for path in folder.iterdir():  # a copy: the model description intact, the code garbage
        garbage = b"not a numba cache entry"
        (tmp_path / path.name).write_bytes(path.read_bytes() if path.suffix == ".json"
                                           else garbage)
    assert load_model(tmp_path, KEY, DATA) is None  # describes unloadable code: ignored
    with pytest.warns(RuntimeWarning, match="unusable .* discarded and compiled again"):
        rebuilt = compile_cached(_model(Y), tmp_path, key=KEY, data_names=list(DATA))
    assert rebuilt.loaded == "compiled"
    np.testing.assert_array_equal(_draws(rebuilt), draws)
    again = load_model(tmp_path, KEY, DATA)  # the rebuilt entries are good
    assert again.loaded == "description"
    np.testing.assert_array_equal(_draws(again), draws)


def test_cache_off_writes_nothing(monkeypatch, tmp_path, tmp_path_factory):
    monkeypatch.setenv("BAYESSLOPE_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    # matplotlib (imported through nutpie -> arviz when this test runs first in its process)
    # writes its own font cache under XDG_CACHE_HOME: not ours, so it goes elsewhere.
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mplconfig")))
    assert sampling.numba_cache_dir() is None
    cached = compile_cached(_model(Y[:4]), sampling.numba_cache_dir())
    assert np.isfinite(_draws(cached)).all()
    assert not list(tmp_path.iterdir())


def test_cache_folder_rules(monkeypatch, tmp_path):
    from bayesslope.pairs.compile_cache import cache_dir as jax_cache_dir

    monkeypatch.delenv("BAYESSLOPE_CACHE", raising=False)
    monkeypatch.delenv("BAYESSLOPE_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "bayesslope"
    assert sampling.numba_cache_dir() == tmp_path / "bayesslope" / "numba"
    assert jax_cache_dir() == tmp_path / "bayesslope" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "bayesslope"
    monkeypatch.setenv("BAYESSLOPE_CACHE", str(tmp_path / "c"))
    assert cache_subdir("numba") == tmp_path / "c" / "numba"
    monkeypatch.setenv("BAYESSLOPE_JAX_CACHE", str(tmp_path / "j"))  # its own variable wins
    assert jax_cache_dir() == tmp_path / "j"
    monkeypatch.setenv("BAYESSLOPE_CACHE", "Off")
    assert cache_subdir("numba") is None and jax_cache_dir() == tmp_path / "j"
    monkeypatch.delenv("BAYESSLOPE_JAX_CACHE")
    assert jax_cache_dir() is None


# -- defaults decided by resolve_sampler ---------------------------------------------------
def _resolve(**kw):
    base = dict(draws=10, tune=10, chains=1, target_accept=0.9, random_seed=None,
                sampler=None, progressbar=False, cores=None, latent_x=False)
    return resolve_sampler(**{**base, **kw})


def test_default_target_accept_is_higher_for_lapse_rates():
    # validation/NOTES.md: the chance + lapse SBC rejects at 0.9 and passes at 0.98.
    assert _resolve(target_accept=None).target_accept == 0.9
    assert _resolve(target_accept=None, lapse_rates=True).target_accept == 0.98
    assert _resolve(target_accept=0.85, lapse_rates=True).target_accept == 0.85  # user's call


def test_default_sampler():
    assert _resolve(formulation="collapsed").sampler == "nutpie"
    assert _resolve(formulation="full").sampler == "nutpie"
    assert _resolve(formulation="full", tune=0).sampler == "pymc"
    # Errors in x start unjittered, where nutpie refuses zero gradient entries.
    assert _resolve(formulation="full", latent_x=True).sampler == "pymc"
    with pytest.raises(DataValidationError, match=r"sampler='nutpie' cannot fit errors in x"):
        _resolve(formulation="full", latent_x=True, sampler="nutpie")
    assert _resolve(formulation="collapsed", sampler="pymc").sampler == "pymc"
    # nutpie cannot run without tuning: the default falls back, an explicit choice raises.
    assert _resolve(formulation="collapsed", tune=0).sampler == "pymc"
    with pytest.raises(DataValidationError, match=r"sampler='nutpie' needs tune >= 1"):
        _resolve(formulation="collapsed", tune=0, sampler="nutpie")


class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progressbar_default_follows_the_session(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys, "stderr", _Stream(False))
    assert _resolve(progressbar=None).progressbar is False
    assert _resolve(progressbar=True).progressbar is True
    monkeypatch.setattr(sys, "stderr", _Stream(True))
    assert _resolve(progressbar=None).progressbar is True
    assert _resolve(progressbar=False).progressbar is False
    # A Jupyter kernel: stderr is no terminal, but IPython has a running shell.
    monkeypatch.setattr(sys, "stderr", _Stream(False))
    fake = type(sys)("IPython")
    fake.get_ipython = lambda: object()
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert _resolve(progressbar=None).progressbar is True
    fake.get_ipython = lambda: None  # IPython imported, no shell running
    assert _resolve(progressbar=None).progressbar is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(sys, "stderr", None)
        assert sampling.interactive_session() is False


def test_optimization_level_is_local(monkeypatch):
    """The compile runs at bayesslope's LLVM level, then numba's setting is back; NUMBA_OPT wins."""
    from numba.core import config

    from bayesslope import numba_model

    monkeypatch.delenv("NUMBA_OPT", raising=False)
    before = config.OPT
    with numba_model._optimization_level():
        assert int(config.OPT) == numba_model._OPT_LEVEL
    assert config.OPT is before
    monkeypatch.setenv("NUMBA_OPT", "2")
    with numba_model._optimization_level():
        assert config.OPT is before


def test_initial_point_is_safe_from_concurrent_chains():
    """nutpie asks for starting points from its chain threads at once; the PyTensor function
    behind them is not reentrant, so overlapping calls must still each get their own answer
    (without the lock: wrong shapes or "'NoneType' object has no attribute '__getitem__'")."""
    import threading

    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode

    from bayesslope.numba_model import _InitialPoint

    b = pt.dvector("b")
    out = pt.concatenate([pt.exp(b[:3]) * 2.0, pt.log1p(b[3:] ** 2), pt.sort(b)])
    fn = pytensor.function([b], out, mode=Mode(linker="py", optimizer=None))
    buffer = np.arange(1.0, 9.0)
    expected = np.array(fn(buffer))
    init = _InitialPoint(fn, expected.size, buffer, jitter=False)
    failures = []

    def chain():
        for _ in range(1500):
            try:
                np.testing.assert_array_equal(init(), expected)
            except Exception as err:  # noqa: BLE001 - any failure is the finding
                failures.append(repr(err))
                return

    threads = [threading.Thread(target=chain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:2]
