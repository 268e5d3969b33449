"""A transfer matrix streamed to a Zarr store, chunk by chunk, resumable (``out=``).

Layout (Zarr v3, readable by ``xarray.open_zarr``/``open_datatree``; dimension names on
every array):

- ``table/<column>`` over ``pair``, chunked as the pair stage: each finished chunk of pairs
  writes exactly one Zarr chunk of every column (and of ``draws/slope``,
  ``draws/intercept`` over ``(pair, chain, draw)`` when draws are kept), then sets
  ``progress/done[i]``; a chunk interrupted mid-write is not marked and is redone.
- ``run/<parameter>``: the population draws and sampler statistics, written once after
  the population run, so a resumed run reuses them (with the same seed) instead of
  sampling again.
- root attribute ``bayesslope_run``: the fingerprint of the data and options (a rerun with
  other data or options into the same store is refused) and the seed.
- written at the end: groups ``design``, ``population``, ``sampler_stats`` and the root
  attribute ``bayesslope_spec`` (the JSON of :mod:`~.storage`, ``"format": "zarr"``);
  :func:`read_zarr` needs it (an unfinished store is resumed, not read).

:func:`read_zarr` returns a :class:`~.result.TransferMatrix` whose table, design and
population are in memory and whose kept draws stay on disk (dask arrays, or xarray's lazy
arrays without dask).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from ..exceptions import DataValidationError
from .storage import FORMAT_VERSION, KIND, SPEC_ATTR

__all__ = ["MatrixStore", "read_zarr", "is_zarr_store"]

RUN_ATTR = "bayesslope_run"
# The modules whose code decides the draws (with the data, options and seed): a run resumed
# after one of them changed would mix draws of two samplers (e.g. two parameterizations).
_ENGINE_MODULES = ("sampler.py", "robust.py", "pair_sigma.py", "stage.py", "priors.py",
                   "design.py", "../collapsed.py")
_ENGINE_LIBRARIES = ("jax", "jaxlib", "blackjax", "numpy")
_DRAWS = ("slope", "intercept")
_SAMPLER_STATS = ("diverging", "tree_depth", "acceptance_rate", "step_size")


def is_zarr_store(path) -> bool:
    """Whether ``path`` is a Zarr store (a store object, or a folder with zarr metadata)."""
    from pathlib import Path

    if not isinstance(path, (str, Path)):
        return True
    p = Path(path)
    return p.is_dir() and ((p / "zarr.json").exists() or (p / ".zgroup").exists())


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


class MatrixStore:
    """One fit's Zarr store: created, or reopened to resume (see the module docstring)."""

    def __init__(self, root, out, n_pairs: int, keep_draws: bool, chains: int, draws: int):
        self.root, self.out = root, out
        self.n_pairs, self.keep_draws = n_pairs, keep_draws
        self.chains, self.draws = chains, draws

    @classmethod
    def open(cls, out, design, config) -> MatrixStore:
        """Create ``out`` or reopen it for the same data and options (else refuse)."""
        try:
            import zarr
        except ImportError as err:
            raise ImportError("out= needs zarr: pip install bayesslope[dask]") from err

        fingerprint = _jsonable({"data_hash": design.data_hash(), "config": config.to_dict(),
                                 "n_pairs": design.n_pairs, "format_version": FORMAT_VERSION,
                                 "engine": _engine()})
        root = zarr.open_group(out, mode="a")
        run = root.attrs.get(RUN_ATTR)
        if run is None:
            if SPEC_ATTR in root.attrs or len(list(root.keys())):
                raise DataValidationError(
                    f"out={out!r} holds something that is not an unfinished transfer matrix "
                    f"run: pass a new path")
            root.attrs[RUN_ATTR] = {"fingerprint": fingerprint, "seed": None}
        elif run["fingerprint"] != fingerprint:
            raise DataValidationError(
                f"out={out!r} holds a run with other data or options, or one started by "
                f"another version of the sampler (bayesslope's pair engine, JAX, blackjax); "
                f"resume with the same ones (and random_seed), or pass a new path")
        s = config.sampler
        return cls(root, out, design.n_pairs, bool(config.keep_draws), s["chains"],
                   s["draws"])

    # ------------------------------------------------------------------ population
    @property
    def seed(self) -> int | None:
        """The seed of the stored population run (None before it)."""
        return self.root.attrs[RUN_ATTR]["seed"]

    def population(self):
        """The stored :class:`~.sampler.PopulationPosterior`, or None."""
        if self.seed is None or "run" not in self.root:
            return None
        from .sampler import PopulationPosterior

        run = self.root["run"]
        params = {k: run[k][...] for k in run.attrs["params"]}
        return PopulationPosterior(params, *(run[k][...] for k in _SAMPLER_STATS))

    def save_population(self, post, seed: int) -> None:
        """Store the population draws, then record ``seed`` (the mark of a finished run)."""
        run = self.root.require_group("run")
        arrays = {**post.params, **dict(zip(_SAMPLER_STATS, post[1:], strict=True))}
        for name, values in arrays.items():
            values = np.asarray(values)
            run.create_array(name, data=values, overwrite=True,
                             dimension_names=["chain", "draw", "pair"][:values.ndim])
        run.attrs["params"] = list(post.params)
        info = dict(self.root.attrs[RUN_ATTR])
        self.root.attrs[RUN_ATTR] = {**info, "seed": int(seed)}

    # ------------------------------------------------------------------ chunks
    def done(self, bounds: list, columns: list) -> np.ndarray:
        """Which chunks of ``bounds`` are finished; creates the arrays on first use."""
        chunk = bounds[0][1] - bounds[0][0]
        if "progress" not in self.root:
            table = self.root.require_group("table")
            for name in columns:
                dtype = np.int64 if name == "n_divergent" else np.float64
                table.create_array(name, shape=(self.n_pairs,), chunks=(chunk,), dtype=dtype,
                                   fill_value=0 if dtype is np.int64 else np.nan,
                                   dimension_names=["pair"])
            if self.keep_draws:
                group = self.root.require_group("draws")
                for name in _DRAWS:
                    group.create_array(name, shape=(self.n_pairs, self.chains, self.draws),
                                       chunks=(chunk, self.chains, self.draws),
                                       dtype=np.float64, fill_value=np.nan,
                                       dimension_names=["pair", "chain", "draw"])
            progress = self.root.require_group("progress")
            progress.create_array("done", shape=(len(bounds),), chunks=(1,), dtype=bool,
                                  fill_value=False, dimension_names=["chunk"])
            progress.attrs["bounds"] = [list(map(int, b)) for b in bounds]
        elif self.root["progress"].attrs["bounds"] != [list(map(int, b)) for b in bounds]:
            raise DataValidationError(f"out={self.out!r}: the chunks differ from the stored "
                                      f"run's; resume with the same chunk_size")
        return np.asarray(self.root["progress/done"][...], dtype=bool)

    def write_chunk(self, i: int, result: dict) -> None:
        """Write one finished chunk (its columns, and draws when kept), then mark it done."""
        sl = slice(result["start"], result["stop"])
        table = self.root["table"]
        for name, values in result["cols"].items():
            table[name][sl] = values
        if self.keep_draws and result["draws"] is not None:
            for name in _DRAWS:
                self.root["draws"][name][sl] = result["draws"][name]
        self.root["progress/done"][i] = True

    def read_columns(self, start: int, stop: int) -> dict:
        """The stored columns of pairs ``start:stop``."""
        table = self.root["table"]
        return {name: table[name][start:stop] for name in table.array_keys()}

    # ------------------------------------------------------------------ finish
    def finish(self, tm):
        """Write the design, population and spec; return the matrix read back lazily."""
        import zarr

        from .storage import design_dataset, spec_json

        d = tm.design
        table = self.root["table"]
        for name in tm.table.columns:
            if name not in table:
                values = tm.table[name].to_numpy()
                table.create_array(name, data=values, dimension_names=["pair"],
                                   chunks=table["mean"].chunks)
            elif name == "sigma_mean":
                table[name][...] = tm.table[name].to_numpy()
        for name, values in (("source", d.source), ("target", d.target)):
            table.create_array(name, data=np.asarray(values, dtype=np.int64),
                               dimension_names=["pair"], chunks=table["mean"].chunks,
                               overwrite=True)
        for name, ds in (("design", design_dataset(d)), ("population", tm.population),
                         ("sampler_stats", tm.sampler_stats)):
            ds.to_zarr(self.out, group=name, mode="w", consolidated=False)
        root = zarr.open_group(self.out, mode="a")
        root.attrs[SPEC_ATTR] = spec_json(tm, extra={"format": "zarr"})
        zarr.consolidate_metadata(self.out)
        return read_zarr(self.out)


def read_zarr(path):
    """The :class:`~.result.TransferMatrix` of a finished store; kept draws stay lazy."""
    import xarray as xr
    import zarr

    from .result import TransferMatrix
    from .storage import read_transfer_matrix

    root = zarr.open_group(path, mode="r")
    if SPEC_ATTR not in root.attrs:
        raise ValueError("no finished transfer matrix in this store (an interrupted run: "
                         "rerun fit_transfer_matrix with the same out= to resume it)")
    spec = json.loads(root.attrs[SPEC_ATTR])
    if spec.get("kind") != KIND:
        raise ValueError(f"the store holds {spec.get('kind')!r}, not a transfer matrix")
    tasks = np.asarray(spec["design"]["tasks"], dtype=object)
    table = root["table"]
    cols = {name: table[name][...] for name in spec["table_columns"]}
    src, tgt = table["source"][...], table["target"][...]
    table_ds = xr.Dataset({c: ("pair", v) for c, v in cols.items()})
    table_ds["source"] = ("pair", tasks[src])
    table_ds["target"] = ("pair", tasks[tgt])

    def group(name):
        return xr.open_zarr(path, group=name, chunks=None).load()

    tree = xr.DataTree.from_dict({"table": table_ds, "design": group("design"),
                                  "population": group("population"),
                                  "sampler_stats": group("sampler_stats")})
    tm: TransferMatrix = read_transfer_matrix(tree, spec)
    if "draws" in root:
        tm = replace(tm, draws=_lazy_draws(path, tm.design))
    return tm


def _lazy_draws(path, design):
    """Kept draws as (source, target, chain, draw), NaN on the diagonal, read on demand."""
    import xarray as xr

    k, n_pairs = design.n_tasks, len(design.source)
    index = np.full(k * k, n_pairs)
    index[design.source * k + design.target] = np.arange(n_pairs)
    tasks = list(design.tasks)
    try:
        import dask
        import dask.array as da
    except ImportError:
        dask = None
    ds = xr.open_zarr(path, group="draws", chunks={} if dask else None)
    out = {}
    for name in _DRAWS:
        arr = ds[name].data if dask else ds[name].values
        shape = arr.shape[1:]
        if dask:
            pad = da.full((1, *shape), np.nan, chunks=(1, *shape))
            with dask.config.set({"array.slicing.split_large_chunks": False}):
                full = da.concatenate([arr, pad], axis=0)[index].reshape(k, k, *shape)
        else:
            full = np.concatenate([arr, np.full((1, *shape), np.nan)])[index].reshape(
                k, k, *shape)
        out[name] = (("source", "target", "chain", "draw"), full)
    return xr.Dataset(out, coords={"source": tasks, "target": tasks,
                                   "chain": np.arange(shape[0]), "draw": np.arange(shape[1])})


def _engine() -> dict:
    """sha256 of the engine's source and the versions of the libraries it samples with."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _ENGINE_MODULES:
        digest.update((here / name).read_bytes())
    versions = {}
    for lib in _ENGINE_LIBRARIES:
        try:
            versions[lib] = version(lib)
        except PackageNotFoundError:
            versions[lib] = None
    return {"source": digest.hexdigest(), "versions": versions}
