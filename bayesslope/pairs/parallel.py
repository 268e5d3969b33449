"""Work off the main thread: per-pair R-hat / ESS in forked processes, chunks in spawned ones.

arviz-stats computes these one pair at a time in Python (rank normalization, ~2 ms per
pair); at 10,000 pairs that is ~20 s on one core, more than sampling and drawing together.
The GIL keeps threads from helping (1.2x measured), so chunks of slope draws go to worker
processes while the main process keeps drawing and summarizing the next chunks.

On an accelerator (JAX's default backend not the CPU) the draws come fast and a CPU pass
would be the hot path: :class:`DeviceDiagnostics` computes the same rank-normalized split
R-hat and bulk ESS with blackjax's vectorized implementation on the device instead
(blackjax's sort-based rank normalization is ~2x slower than arviz-stats on CPU, so the
CPU keeps arviz-stats; a test checks that both agree).

Workers are forked: ``spawn`` and ``forkserver`` children re-run the user's unguarded
``__main__`` script (which would fit again). The pool is created, and with the ``fork``
context all its workers start, before the fit touches JAX, so in a fresh process no JAX
thread exists yet when they are forked; workers only run numpy / scipy / arviz-stats.

Per-pair NUTS chunks themselves run in *spawned* worker processes
(:func:`run_in_processes`, chosen by :func:`chunk_processes`): they run JAX, so they
cannot be forked from a process where JAX runs, and two such chunks on threads of one
process overlap poorly. There a script needs its ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import warnings
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

__all__ = ["rhat_ess", "DiagnosticsPool", "DeviceDiagnostics", "run_in_order"]


def rhat_ess(slope: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalized split R-hat and bulk ESS of draws shaped (chain, draw, pair)."""
    from arviz_stats.base import array_stats

    return (array_stats.rhat(slope, chain_axis=0, draw_axis=1),
            array_stats.ess(slope, chain_axis=0, draw_axis=1))


def run_in_order(func, bounds, threads: int = 1):
    """Yield ``(start, stop, func(start, stop))`` for each chunk, in order.

    With ``threads`` > 1 that many chunks run at a time on threads (for functions that
    release the GIL, as compiled JAX programs do); at most ``threads`` results wait, so
    memory stays bounded.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    bounds = list(bounds)
    threads = max(1, min(int(threads), len(bounds) or 1))
    if threads == 1:
        for start, stop in bounds:
            yield start, stop, func(start, stop)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending = deque(pool.submit(func, *b) for b in bounds[:threads])
        for i, (start, stop) in enumerate(bounds):
            result = pending.popleft().result()
            if i + threads < len(bounds):
                pending.append(pool.submit(func, *bounds[i + threads]))
            yield start, stop, result


def _warm_up() -> int:
    from arviz_stats.base import array_stats  # noqa: F401  (import once, before chunks)

    return os.getpid()


@functools.cache
def _device_rhat_ess():
    # Built on first use (importing JAX at module level would load it eagerly); one jitted
    # function, so later fits and chunks of the same shape reuse its compilation.
    import jax
    from blackjax import diagnostics

    def both(slope):
        return (diagnostics.rhat(slope, chain_axis=0, sample_axis=1),
                diagnostics.ess_bulk(slope, chain_axis=0, sample_axis=1))

    return jax.jit(both)


class DeviceDiagnostics:
    """R-hat and bulk ESS of each chunk by ``blackjax.diagnostics`` on JAX's default device.

    Same interface as :class:`DiagnosticsPool` (``workers`` is 0: computed on submit).
    """

    workers = 0

    def submit(self, slope: np.ndarray) -> Future:
        """The ``(r_hat, ess)`` of draws shaped (chain, draw, pair), as a finished future."""
        import jax

        with jax.enable_x64(True):
            r_hat, ess = _device_rhat_ess()(jax.numpy.asarray(slope, dtype=np.float64))
            future: Future = Future()
            future.set_result((np.asarray(r_hat), np.asarray(ess)))
        return future

    def close(self) -> None:
        """Nothing to release."""


class DiagnosticsPool:
    """Run :func:`rhat_ess` in worker processes, or inline when ``workers`` is 0.

    Parameters
    ----------
    workers : int
        Worker processes (0: compute in the calling process).
    """

    def __init__(self, workers: int):
        self.workers = int(workers)
        self._pool = None
        if self.workers > 0:
            ctx = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
            # With "fork" the first submit starts every worker: now, before any JAX work.
            # In a process that already ran JAX, Python and JAX warn about forking with
            # threads (a child calling JAX could deadlock); these workers never touch JAX.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead",
                                        category=DeprecationWarning)
                warnings.filterwarnings("ignore", message=".*JAX is multithreaded",
                                        category=RuntimeWarning)
                for _ in range(self.workers):
                    self._pool.submit(_warm_up)

    def submit(self, slope: np.ndarray) -> Future:
        """Schedule the diagnostics of one chunk; returns a future of ``(r_hat, ess)``."""
        if self._pool is None:
            future: Future = Future()
            future.set_result(rhat_ess(slope))
            return future
        return self._pool.submit(rhat_ess, slope)

    def close(self) -> None:
        """Shut the workers down (waits for scheduled chunks)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> DiagnosticsPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- per-pair NUTS chunks in worker processes (the local default for those chunks) ---

PROCESSES_ENV = "BAYESSLOPE_PAIR_PROCESSES"
_WORKER_PLAN = None


def chunk_processes(per_pair_nuts: bool, n_chunks: int) -> int:
    """Worker processes for the local per-pair NUTS chunks (0: run them on threads).

    Threads by default: on a quiet machine two chunk threads ran 870 grouped pairs 1.89x
    faster than one thread and two spawned processes 1.62x (their start-up costs ~4 s;
    benchmarks/RESULTS_pairs.md, issue 19; the poor overlap measured earlier came from the
    scheduler sharing CPU per session under load, not from the threads). Spawned workers
    also require a user's script to guard its code with ``if __name__ == "__main__":``.
    ``BAYESSLOPE_PAIR_PROCESSES=auto`` runs chunks in ``BAYESSLOPE_PAIR_THREADS`` (default
    ``min(2, cores)``) processes when there are at least two chunks per worker; ``on`` from
    two chunks; ``off`` (default) keeps threads. A daemonic process (a Dask worker, a
    ``multiprocessing.Pool`` worker) keeps threads. The exact Gaussian draws keep threads
    (one vectorized program, no per-pair sampler).
    """
    from .robust import pair_threads

    mode = os.environ.get(PROCESSES_ENV, "off").strip().lower()
    if not per_pair_nuts or mode in ("off", "0", "false", "no"):
        return 0
    if multiprocessing.current_process().daemon:
        return 0  # e.g. inside a Dask worker: daemonic processes cannot have children
    workers = min(pair_threads(), n_chunks)
    minimum = 1 if mode in ("on", "1", "true", "yes") else 2
    return workers if workers >= 2 and n_chunks >= minimum * workers else 0


def _init_chunk_worker(plan, jax_cache: str | None) -> None:
    # Each worker gets the plan once (not with every chunk) and the parent's on-disk JAX
    # compilation cache, so it loads the chunk program rather than compiling it when the
    # parent (or an earlier fit) compiled the same shape.
    global _WORKER_PLAN
    import jax

    if jax_cache:
        jax.config.update("jax_compilation_cache_dir", jax_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    _WORKER_PLAN = plan


def _worker_chunk(start: int, stop: int, keep_draws: bool) -> dict:
    from .stage import summarize_chunk

    return summarize_chunk(_WORKER_PLAN, start, stop, keep_draws)


def run_in_processes(plan, bounds, workers: int, keep_draws: bool,
                     jax_cache: str | None = None):
    """Yield ``(start, stop, summarize_chunk(plan, start, stop, keep_draws))``, in order.

    The chunks run in ``workers`` spawned processes (``fork`` is unsafe once JAX's threads
    exist); each summarizes its chunk (R-hat and ESS included), so kilobytes come back,
    not draws. At most ``2 x workers`` chunks are in flight. Like any ``spawn`` pool (and
    Dask's LocalCluster), a script must keep its work under ``if __name__ == "__main__":``.
    """
    from collections import deque
    from concurrent.futures.process import BrokenProcessPool

    bounds = list(bounds)
    if not bounds:
        return
    ctx = multiprocessing.get_context("spawn")
    limit = 2 * workers
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_chunk_worker,
                             initargs=(plan, jax_cache)) as pool:
        pending = deque(pool.submit(_worker_chunk, *b, keep_draws) for b in bounds[:limit])
        try:
            for i, (start, stop) in enumerate(bounds):
                result = pending.popleft().result()
                if i + limit < len(bounds):
                    pending.append(pool.submit(_worker_chunk, *bounds[i + limit], keep_draws))
                yield start, stop, result
        except BrokenProcessPool as err:
            raise RuntimeError(
                "a pair-stage worker process died; a script calling fit_transfer_matrix "
                "must run it under `if __name__ == \"__main__\":` (workers are spawned), "
                f"or set {PROCESSES_ENV}=off to run the chunks on threads") from err
        finally:
            for fut in pending:
                fut.cancel()
