"""The pair stage on a Dask cluster (``fit_transfer_matrix(..., client=...)``).

The plan of the pair stage (:class:`~.stage.StagePlan`: population draws, the pairs' data,
the key) is scattered once to every worker; each chunk of pairs is one task
(:func:`~.stage.summarize_chunk`) that draws it, computes its summaries with R-hat and
bulk ESS, and returns them (kilobytes per chunk; the draws too when kept). At most a few
tasks per worker thread are in flight, so the main process never holds more than that many
chunks, and results are handed on as they finish (to a Zarr store when ``out=`` is given).
Workers turn on the same on-disk JAX compilation cache as a local fit
(:mod:`~.compile_cache`), so each worker process compiles a chunk program once, or loads it.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["INSTALL_HINT", "require_distributed", "run_on_cluster"]

INSTALL_HINT = "pip install bayesslope[dask]"
_IN_FLIGHT_PER_THREAD = 2


def require_distributed():
    """Import ``dask.distributed``, or raise an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            f"client= needs dask.distributed, which is not installed: {INSTALL_HINT}"
        ) from err
    return distributed


def _chunk_task(plan, start: int, stop: int, keep_draws: bool) -> dict:
    # Runs on a worker: the same compilation cache as a local fit, then one chunk.
    from .compile_cache import ensure_compilation_cache
    from .stage import summarize_chunk

    ensure_compilation_cache()
    return summarize_chunk(plan, start, stop, keep_draws)


def run_on_cluster(client, plan, chunks: list[tuple[int, int, int]], keep_draws: bool,
                   on_result: Callable[[int, dict], None]) -> None:
    """Run ``chunks`` (``(index, start, stop)``) as tasks; ``on_result(index, result)``.

    Results arrive in completion order; at most ``2 x`` the cluster's worker threads are
    in flight.
    """
    distributed = require_distributed()
    if not chunks:
        return
    [plan_f] = client.scatter([plan], broadcast=True, hash=False)
    threads = max(1, sum(client.nthreads().values()))
    limit = _IN_FLIGHT_PER_THREAD * threads
    todo = list(chunks)[::-1]
    index = {}

    def submit():
        i, start, stop = todo.pop()
        fut = client.submit(_chunk_task, plan_f, start, stop, keep_draws, pure=False,
                            key=f"bayesslope-pairs-{plan_f.key}-{i}")
        index[fut.key] = (i, fut)
        return fut

    queue = distributed.as_completed([submit() for _ in range(min(limit, len(todo)))])
    try:
        for fut in queue:
            result = fut.result()
            i = index.pop(fut.key)[0]
            fut.release()
            if todo:
                queue.add(submit())
            on_result(i, result)
    finally:
        # An error or an interrupt: leave no tasks behind.
        client.cancel([fut for _, fut in index.values()] + [plan_f])
