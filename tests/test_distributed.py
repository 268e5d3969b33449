"""Past one process: the transfer matrix on Dask, streamed to Zarr, and ``fit_many``.

Every check compares against the same call made locally in this process: the issue's
promise is *identical* results for the same seed and chunk size, so equality is exact.
Small data, few draws (one compiled program per shape, shared through the session's JAX
cache with the worker processes).
"""

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import seed

import bayesslope as bs
from bayesslope.exceptions import DataValidationError
from bayesslope.pairs import fit_transfer_matrix

KW = dict(draws=100, tune=100, chains=2, chunk_size=6, check_dependence=False)
COLS = ["mean", "sd", "eti90_lb", "eti90_ub", "p_negative", "r_hat", "ess_bulk",
        "n_divergent", "intercept_mean", "sigma_mean"]


def frame(k=5, m=20, s=0):
    rng = np.random.default_rng(seed(s))
    g = rng.normal(size=m)
    scores = np.outer(g, np.linspace(-1, 1, k)) + 0.7 * rng.normal(size=(m, k))
    return pd.DataFrame([(f"u{i}", f"t{j}", scores[i, j]) for i in range(m) for j in range(k)],
                        columns=["model", "task", "y"])


def fit(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few draws: sampling warnings expected
        return fit_transfer_matrix(df, random_seed=seed(3), **KW, **kw)


@pytest.fixture(scope="module")
def local():
    df = frame()
    # One shared sigma: chunks of 6 pairs (the per-pair-sigma stage rounds chunks up to
    # its vector width, one chunk here).
    return df, {"normal": fit(df, per_pair_sigma=False, keep_draws=True),
                "pair_sigma": fit(df), "student_t": fit(df, likelihood="student_t")}


def assert_same(a, b):
    pd.testing.assert_frame_equal(a.table[COLS], b.table[COLS], check_exact=True)


def test_client_without_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if absent
    with pytest.raises(ImportError, match=r"pip install bayesslope\[dask\]"):
        fit_transfer_matrix(frame(), client=object())
    with pytest.raises(ImportError, match=r"pip install bayesslope\[dask\]"):
        bs.fit_many([(frame(), {})], client=object())


def test_threads_per_pair_nuts_do_not_change_results(local, monkeypatch):
    df, ref = local
    monkeypatch.setenv("BAYESSLOPE_PAIR_THREADS", "1")
    assert_same(fit(df, likelihood="student_t"), ref["student_t"])


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_cluster_equals_local_run(local, processes):
    distributed = pytest.importorskip("distributed")
    df, ref = local
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        # Exact draws (processes) or per-pair NUTS (threads): all the same as locally.
        if processes:
            fits = {"normal": fit(df, per_pair_sigma=False, keep_draws=True, client=client),
                    "pair_sigma": fit(df, client=client)}
        else:
            fits = {"student_t": fit(df, likelihood="student_t", client=client)}
    for name, tm in fits.items():
        assert tm.spec["timings"]["diagnostics_on"] == "dask workers"
        assert_same(tm, ref[name])
    if processes:
        np.testing.assert_array_equal(fits["normal"].draws["slope"].values,
                                      ref["normal"].draws["slope"].values)


def test_zarr_store_resumes_an_interrupted_run(local, tmp_path, monkeypatch):
    pytest.importorskip("zarr")
    from bayesslope.pairs import fit as fit_module
    from bayesslope.pairs import stage
    from bayesslope.pairs.zarr_store import MatrixStore

    df, ref = local
    store = tmp_path / "m.zarr"
    write = MatrixStore.write_chunk
    written = []

    def stop_after_two(self, i, result):
        if len(written) == 2:
            raise KeyboardInterrupt  # the run dies after two chunks
        write(self, i, result)
        written.append(i)

    monkeypatch.setattr(MatrixStore, "write_chunk", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        fit(df, per_pair_sigma=False, keep_draws=True, out=store)
    with pytest.raises(DataValidationError, match="interrupted run"):
        bs.load(store)
    monkeypatch.setattr(MatrixStore, "write_chunk", write)
    # The rerun reads the population draws back and draws only the missing chunks.
    calls = {"population": 0, "chunks": 0}
    population, summarize = fit_module._population, stage.summarize_chunk

    def count(name, func):
        def wrapped(*a, **k):
            calls[name] += 1
            return func(*a, **k)
        return wrapped

    monkeypatch.setattr(fit_module, "_population", count("population", population))
    monkeypatch.setattr(stage, "summarize_chunk", count("chunks", summarize))
    tm = fit(df, per_pair_sigma=False, keep_draws=True, out=store)
    n_chunks = -(-tm.design.n_pairs // KW["chunk_size"])
    assert calls == {"population": 0, "chunks": n_chunks - 2}
    assert_same(tm, ref["normal"])
    # bs.load opens the store lazily: the kept draws stay on disk until used.
    back = bs.load(store)
    assert not isinstance(back.draws["slope"].data, np.ndarray)
    np.testing.assert_array_equal(back.draws["slope"].values,
                                  ref["normal"].draws["slope"].values)
    assert_same(back, ref["normal"])
    # Its stored intervals are those the in-memory draws give.
    pd.testing.assert_frame_equal(back.summary(), ref["normal"].summary(), check_exact=True)
    with pytest.raises(DataValidationError, match="other data or options"):
        fit_transfer_matrix(df, random_seed=seed(4), per_pair_sigma=False, keep_draws=True,
                            **KW, out=store)
    # Same data and options, but the sampler's code changed since the run began (e.g. a new
    # parameterization): resuming would mix draws of two samplers.
    from bayesslope.pairs import zarr_store

    engine = zarr_store._engine()
    monkeypatch.setattr(zarr_store, "_engine", lambda: {**engine, "source": "edited"})
    with pytest.raises(DataValidationError, match="another version of the sampler"):
        fit(df, per_pair_sigma=False, keep_draws=True, out=store)


def test_fit_many_equals_direct_fits(tmp_path):
    df = bs.load_dataset("pythia")
    df = df[df["task"].isin(["piqa", "sciq"])]
    opts = dict(draws=100, tune=100, chains=2, progressbar=False)
    jobs = {"a": (df, {**opts, "random_seed": seed(1)}),
            "b": (df, {**opts, "random_seed": seed(2)})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = bs.fit_hierarchical(df, **jobs["b"][1])
        fits = bs.fit_many(jobs, workers=2)  # two spawned processes
    assert set(fits) == {"a", "b"}
    pd.testing.assert_frame_equal(fits["b"].summary(), direct.summary(), check_exact=True)
    assert not fits["a"].summary().equals(fits["b"].summary())  # the seeds reach the jobs
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = bs.fit_many([jobs["b"]], client=client, out=tmp_path / "fits")
    assert paths == [tmp_path / "fits" / "0.nc"]
    pd.testing.assert_frame_equal(bs.load(paths[0]).summary(), direct.summary(),
                                  check_exact=True)
