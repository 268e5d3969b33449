"""Per-pair NUTS chunks in spawned worker processes (the local default, issue 19).

The promise is the same table as one thread for the same seed and chunk size, so the
comparison is exact. Few pairs and draws; the workers load the chunk program from the
JAX compilation cache that the one-thread fit filled.
"""

import warnings

import numpy as np
import pandas as pd
from conftest import seed

from bayesslope.pairs import fit_transfer_matrix
from bayesslope.pairs.parallel import chunk_processes

KW = dict(draws=100, tune=100, chains=2, chunk_size=4, check_dependence=False,
          likelihood="student_t")


def frame(k=4, m=16):
    rng = np.random.default_rng(seed(0))
    g = rng.normal(size=m)
    scores = np.outer(g, np.linspace(-1, 1, k)) + 0.7 * rng.normal(size=(m, k))
    return pd.DataFrame([(f"u{i}", f"t{j}", scores[i, j]) for i in range(m) for j in range(k)],
                        columns=["model", "task", "y"])


def fit(df, monkeypatch, workers: str, mode: str):
    monkeypatch.setenv("BAYESSLOPE_PAIR_THREADS", workers)
    monkeypatch.setenv("BAYESSLOPE_PAIR_PROCESSES", mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few draws: sampling warnings expected
        return fit_transfer_matrix(df, random_seed=seed(3), **KW)


def test_chunk_processes_policy(monkeypatch):
    monkeypatch.setenv("BAYESSLOPE_PAIR_THREADS", "2")
    monkeypatch.delenv("BAYESSLOPE_PAIR_PROCESSES", raising=False)
    assert chunk_processes(True, 100) == 0  # default: threads
    monkeypatch.setenv("BAYESSLOPE_PAIR_PROCESSES", "auto")
    assert chunk_processes(True, 4) == 2
    assert chunk_processes(True, 3) == 0  # under two chunks per worker: threads
    assert chunk_processes(False, 100) == 0  # exact Gaussian draws: threads
    monkeypatch.setenv("BAYESSLOPE_PAIR_PROCESSES", "off")
    assert chunk_processes(True, 100) == 0
    monkeypatch.setenv("BAYESSLOPE_PAIR_PROCESSES", "on")
    assert chunk_processes(True, 2) == 2
    monkeypatch.setenv("BAYESSLOPE_PAIR_THREADS", "1")
    assert chunk_processes(True, 100) == 0


def test_two_processes_match_one_thread(monkeypatch):
    df = frame()  # 12 pairs, chunks of 4: 3 chunks
    one = fit(df, monkeypatch, "1", "off")
    two = fit(df, monkeypatch, "2", "on")
    assert one.spec["timings"]["pair_processes"] == 0
    assert two.spec["timings"]["pair_processes"] == 2
    assert two.spec["timings"]["diagnostics_on"] == "chunk processes"
    cols = ["mean", "sd", "eti90_lb", "eti90_ub", "p_negative", "r_hat", "ess_bulk",
            "n_divergent", "intercept_mean"]
    pd.testing.assert_frame_equal(one.table[cols], two.table[cols], check_exact=True)
    assert one.table["mean"].notna().all()
