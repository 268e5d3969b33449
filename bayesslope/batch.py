"""``fit_many``: many independent fits, in parallel processes or on a Dask cluster.

A linearity check, a backtest, a sensitivity analysis or an SBC run is many fits of
independent data sets. Each job runs in a worker process (a local ``spawn`` pool, or a
Dask worker), where the fit's compile caches work as in one process: the in-process cache
of compiled models (one compilation per model structure and process) and the on-disk
caches of :mod:`bayesslope.cache` (nutpie's numba code, JAX's programs), which every worker
of a machine shares. A fitted result travels back as its netCDF file's bytes (the format
``bs.load`` reads; no pickle of model objects), and is read back, or written to ``out``.

Local processes are started with ``spawn`` (a child forked from a process that already
runs PyMC or JAX threads could deadlock), which re-imports the calling script: call
``fit_many`` under ``if __name__ == "__main__":`` in a script (notebooks need nothing).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["fit_many", "FITS"]

# fit= name -> (module, function) of the fitting function each job calls.
FITS = {"hierarchical": ("bayesslope.fit", "fit_hierarchical"),
        "transfer_matrix": ("bayesslope.pairs.fit", "fit_transfer_matrix")}


def _job_fit(fit: str, df, options: dict) -> bytes:
    """Run one fit (in a worker) and return its netCDF file's bytes."""
    from importlib import import_module

    module, name = FITS[fit]
    result = getattr(import_module(module), name)(df, **options)
    with tempfile.TemporaryDirectory(prefix="bayesslope-job-") as tmp:
        path = result.to_netcdf(Path(tmp) / "fit.nc")
        return Path(path).read_bytes()


def _normalize(jobs) -> tuple[list, list]:
    if isinstance(jobs, Mapping):
        names, items = list(jobs.keys()), list(jobs.values())
    elif isinstance(jobs, Sequence) and not isinstance(jobs, (str, bytes)):
        names, items = list(range(len(jobs))), list(jobs)
    else:
        raise TypeError("jobs must be a mapping of name -> (DataFrame, options) or a list "
                        "of (DataFrame, options)")
    out = []
    for name, item in zip(names, items, strict=True):
        if not (isinstance(item, tuple | list) and len(item) == 2
                and isinstance(item[1], Mapping | type(None))):
            raise TypeError(f"job {name!r} must be a (DataFrame, options dict) pair")
        out.append((item[0], dict(item[1] or {})))
    return names, out


def fit_many(jobs, *, client=None, out: str | Path | None = None, workers: int | None = None,
             fit: str = "hierarchical"):
    """Run independent fits in parallel: local processes, or tasks on a Dask cluster.

    Parameters
    ----------
    jobs : mapping or list
        ``{name: (df, options)}`` or ``[(df, options), ...]``: each a DataFrame and the
        keyword arguments of the fitting function (``random_seed`` included: a job gives
        the same result as the same call made directly).
    client : dask.distributed.Client, optional
        Run each job as a task on this cluster (``pip install bayesslope[dask]``).
    out : str or path, optional
        A folder: write each result to ``out/<name>.nc`` (list jobs: ``<index>.nc``) as it
        arrives and return the paths instead of the results.
    workers : int, optional
        Local worker processes (default: one per core, at most one per job); 1 runs the
        jobs one after the other in this process. Ignored with ``client``.
    fit : {"hierarchical", "transfer_matrix"}, default "hierarchical"
        :func:`bayesslope.fit_hierarchical` or :func:`bayesslope.fit_transfer_matrix`.

    Returns
    -------
    dict or list
        Like ``jobs`` (same names or order): each a :class:`~bayesslope.TransferFit`
        (or :class:`~bayesslope.TransferMatrix`), or its path when ``out`` is given. A
        failed job raises its error (the others' results are written to ``out`` first).

    Examples
    --------
    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> jobs = {t: (df[df["task"] == t], {"random_seed": 1}) for t in ["piqa", "sciq"]}
    >>> if __name__ == "__main__":  # doctest: +SKIP
    ...     fits = bs.fit_many(jobs, workers=2)
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {sorted(FITS)}, got {fit!r}")
    names, items = _normalize(jobs)
    folder = None if out is None else Path(out)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    results: dict = {}

    def arrived(i: int, data: bytes) -> None:
        results[i] = _store(data, None if folder is None else folder / f"{names[i]}.nc")

    if client is not None:
        from .pairs.distributed import require_distributed

        distributed = require_distributed()
        futures = {client.submit(_job_fit, fit, df, opts, pure=False): i
                   for i, (df, opts) in enumerate(items)}
        for fut in distributed.as_completed(futures):
            arrived(futures[fut], fut.result())
    else:
        n = len(items)
        workers = min(n, os.cpu_count() or 1) if workers is None else int(workers)
        if workers <= 1 or n <= 1:
            for i, (df, opts) in enumerate(items):
                arrived(i, _job_fit(fit, df, opts))
        else:
            _run_local(fit, items, workers, arrived)
    ordered = [results[i] for i in range(len(items))]
    return dict(zip(names, ordered, strict=True)) if isinstance(jobs, Mapping) else ordered


def _run_local(fit: str, items: list, workers: int, arrived) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = {pool.submit(_job_fit, fit, df, opts): i for i, (df, opts) in enumerate(items)}
        for fut in as_completed(futures):
            arrived(futures[fut], fut.result())


def _store(data: bytes, path: Path | None):
    """Write a result's bytes to ``path`` and return it, or read them back into memory."""
    from .io import load

    if path is not None:
        path.write_bytes(data)
        return path
    with tempfile.TemporaryDirectory(prefix="bayesslope-job-") as tmp:
        tmp_path = Path(tmp) / "fit.nc"
        tmp_path.write_bytes(data)
        result = load(tmp_path)
        # load() reads everything into memory (DataTree.load), so the file can go.
        return result
