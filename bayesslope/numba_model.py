"""PyMC model -> nutpie model whose compiled machine code is cached on disk.

``nutpie.compile_pymc_model`` compiles the model's log density with numba and wraps it
in two C callbacks for nutpie's Rust sampler (the log density and gradient; the trace
expansion). PyTensor caches its numba functions on disk, but nutpie's callbacks cannot be
cached (they embed the data's addresses), and compiling them is most of a fresh process's
fit (15-30 s on 2 cores, against 0.3 s of sampling). Here the log-density callback reads
every ``pm.Data`` value from one flat float64 buffer whose layout is fixed by the model's
structure, so it holds no address and numba caches it like PyTensor's own functions; new
data of the same structure is a new buffer.

The trace callback only copies the free (unconstrained) values: the other traced variables
(constrained values, deterministics) are computed after sampling for all draws at once
(:class:`_Expansion`, :meth:`CachedModel.complete`), so a first fit compiles one model
callback, not two. Numba compiles at LLVM ``-O1`` (:data:`_OPT_LEVEL`): as fast to sample
for these models, ~1.5 s faster to compile.

Two levels of cache, both in one folder (:func:`bayesslope.sampling.numba_cache_dir`):

- the machine code, keyed by PyTensor's hash of each compiled graph (+ the callbacks'
  source and library versions): a process that builds the same graph loads it instead of
  compiling (graph rewriting is still paid, ~2-3 s);
- a description of the compiled model (sizes, names, callbacks' source), keyed by the
  caller's structure key (which must name everything the graph depends on, e.g. with
  :func:`source_hash` of the modules that build it), the library versions and this
  module's source: :func:`load_model` then needs neither PyMC nor the graph.

Nothing is trusted that cannot be checked: any entry numba cannot load makes
:func:`compile_cached` discard the folder, warn, and compile again; a description whose
code is missing or unloadable is ignored. The starting points (PyMC's support points on
the unconstrained scale, then a uniform jitter in (-1, 1) drawn from the seed) and the
trace expansion are PyTensor graphs reading the data buffer, evaluated by PyTensor's
Python linker (no compilation: numba took ~2 s for the starting points' handful of scalar
operations); their graphs travel pickled in the description, so cold and warm processes
evaluate the same graphs the same way.
Code is compiled without ``fastmath``: with it, the machine code compiled in a process and
the code loaded from the cache by the next one round differently, and the same seed would
not give the same draws cold and warm.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import sys
import threading
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["CachedModel", "compile_cached", "load_model", "discard", "pack", "source_hash"]

_LOCK = threading.Lock()
# LLVM optimization level of the code compiled here (numba's default is 3). These log
# densities are scalar code over a few parameters and loops over the data: -O1 samples them
# as fast as -O3 (the vectorizer, -O2 and up, finds nothing to do) and compiles a first fit
# ~1.5 s faster on 2 cores (benchmarks/RESULTS.md). An explicit NUMBA_OPT is obeyed.
_OPT_LEVEL = 1
# Bumped when the generated source or the description below change.
_FORMAT = "bayesslope-numba-model-6"


@dataclasses.dataclass(frozen=True)
class CachedModel:
    """A compiled model and the layout of its data buffer.

    Attributes
    ----------
    compiled : nutpie.compile_pymc.CompiledPyMCModel
        Ready for :func:`nutpie.sample`, holding the data it was compiled or loaded with.
    layout : tuple of (name, shape, dtype)
        Order, shapes and dtypes of the ``pm.Data`` values in the (float64) buffer.
    loaded : str
        "compiled", "code" (machine code loaded, graph rebuilt) or "description" (loaded
        without building the model).
    fixed : dict
        Values of the shared variables that are not data: the lengths of the model's
        dims (PyMC keeps them shared), fixed by the structure the model was compiled for.
    expansion : _Expansion
        Computes the traced variables (constrained values, deterministics) from the
        sampled free values: :meth:`complete`.
    """

    compiled: object
    layout: tuple
    loaded: str = "compiled"
    fixed: dict = dataclasses.field(default_factory=dict)
    expansion: object = None

    def complete(self, tree, compiled):
        """``tree`` (from :func:`nutpie.sample` of ``compiled``) with every traced variable.

        nutpie traces the free (unconstrained) values only; the constrained values and
        deterministics are computed here for all draws at once, from ``compiled``'s data.
        """
        return self.expansion(tree, compiled.user_data)

    def with_data(self, data) -> object:
        """The compiled model with new values for every ``pm.Data`` (same shapes)."""
        buffer = pack(self.layout, {**self.fixed, **data})
        init = self.compiled.initial_point_func
        return dataclasses.replace(
            self.compiled, user_data=buffer, shared_data={"buffer": buffer},
            initial_point_func=_InitialPoint(init.fn, init.n_dim, buffer, init.jitter),
        )


def pack(layout, data) -> np.ndarray:
    """Concatenate ``data[name]`` in ``layout`` order into one read-only float64 buffer."""
    parts = []
    for name, shape, dtype in layout:
        value = np.asarray(data[name])
        if np.dtype(dtype).kind in "iub" and not np.array_equal(value, np.round(value)):
            raise ValueError(f"data {name!r} should hold integers")
        value = value.astype("float64")  # integers below 2**53 are exact
        if value.shape != tuple(shape):
            raise ValueError(f"data {name!r} should have shape {tuple(shape)} but got "
                             f"{value.shape}")
        parts.append(value.ravel())
    buffer = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(1))
    buffer.flags.writeable = False
    return buffer


# nutpie calls the initial-point function from its chain threads at once, and a PyTensor
# function is not reentrant (its input and output storage is shared): two overlapping calls
# on the Python linker returned a wrong shape or raised "'NoneType' object has no attribute
# '__getitem__'" (an intermittent "Failed to initialize point" in the test suite).
_INIT_LOCK = threading.Lock()


class _InitialPoint:
    """nutpie's ``initial_point_func``: support points read from the data buffer + jitter."""

    def __init__(self, fn, n_dim: int, buffer: np.ndarray, jitter: bool):
        self.fn, self.n_dim, self.buffer, self.jitter = fn, n_dim, buffer, jitter

    def __call__(self, seed=None) -> np.ndarray:
        with _INIT_LOCK:
            out = np.array(self.fn(self.buffer), dtype="float64").reshape(self.n_dim)
        if self.jitter:
            out += np.random.default_rng(seed).uniform(-1.0, 1.0, self.n_dim)
        return out


class _Expansion:
    """The traced variables (constrained values, deterministics) from the free values.

    nutpie's trace holds the sampled free values only (the unconstrained ones included);
    this adds every other traced variable, computed for all draws at once by a graph
    vectorized over the draws on PyTensor's Python linker (no compilation), and drops the
    unconstrained values, as nutpie's own trace callback would have.
    """

    def __init__(self, graph, free, dims, drop):
        import pytensor
        from pytensor.compile.mode import Mode

        draws, buffer, self.names, outputs = graph
        # on_unused_input: the traced variables need not read the data (or any draw). No
        # graph rewrites: they took 1.7 s for a full model's 180 nodes, evaluated as fast
        # without them (numpy on all draws at once).
        self.fn = (pytensor.function([draws, buffer], outputs, on_unused_input="ignore",
                                     mode=Mode(linker="py", optimizer=None))
                   if outputs else None)
        self.free, self.dims, self.drop = list(free), dict(dims), list(drop)

    def __call__(self, tree, buffer: np.ndarray):
        post = tree["posterior"].to_dataset()
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        if self.fn is not None:
            # The free values in nutpie's joined order (each raveled in C order).
            flat = np.concatenate([
                post[name].transpose("chain", "draw", ...).values.reshape(n_chain * n_draw, -1)
                for name in self.free], axis=1)
            for name, value in zip(self.names, self.fn(flat, buffer), strict=True):
                value = np.asarray(value).reshape(n_chain, n_draw, *np.shape(value)[1:])
                dims = self.dims.get(name) or [f"{name}_dim_{i}" for i in range(value.ndim - 2)]
                post[name] = (("chain", "draw", *dims), value)
        tree["posterior"] = post.drop_vars([name for name in self.drop if name in post])
        return tree


def discard(path: Path) -> None:
    """Remove a cache folder (renamed first, so no reader sees it half deleted)."""
    trash = path.with_name(f"{path.name}.discarded-{uuid.uuid4().hex}")
    try:
        path.rename(trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def _numba_cache_at(path: Path | None):
    """Point PyTensor's numba cache at ``path`` (None: numba caching off) meanwhile."""
    import pytensor
    from pytensor.link.numba import cache as pt_cache

    old = pt_cache.NUMBA_CACHE_PATH
    with _LOCK, pytensor.config.change_flags(numba__fastmath=False,
                                             numba__cache=path is not None):
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            pt_cache.NUMBA_CACHE_PATH = path
        try:
            yield
        finally:
            pt_cache.NUMBA_CACHE_PATH = old


@contextmanager
def _optimization_level():
    """Compile at :data:`_OPT_LEVEL` meanwhile (unless ``NUMBA_OPT`` is set)."""
    if "NUMBA_OPT" in os.environ:
        yield
        return
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock

    # Numba's pass builders read config.OPT at each compilation; holding its compiler lock
    # keeps other threads' compilations from running at this level meanwhile.
    with global_compiler_lock:
        old = config.OPT
        config.OPT = config._OptLevel(_OPT_LEVEL)
        try:
            yield
        finally:
            config.OPT = old


def _offsets(layout):
    """``(name, start, stop, shape, dtype)`` of each value in the flat data buffer."""
    start = 0
    for name, shape, dtype in layout:
        stop = start + int(np.prod(shape, dtype=int))
        yield name, start, stop, tuple(int(k) for k in shape), dtype
        start = stop


def _arg_source(layout, names) -> str:
    """Source of the arguments slicing the values ``names`` out of ``buf``."""
    slices = {name: f"buf[{start}:{stop}]{'' if dtype == 'float64' else f'.astype(np.{dtype})'}"
                    f".reshape({shape!r})"
              for name, start, stop, shape, dtype in _offsets(layout)}
    return "".join(f", {slices[name]}" for name in names)


def _shared_inputs(outputs) -> dict:
    """The shared variables ``outputs`` (a variable or a list) read, by name."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    outputs = outputs if isinstance(outputs, list) else [outputs]
    return {v.name: v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)}


_LOGP_SRC = """
def logp_c(dim, x_, out_, logp_, ud_):
    if dim != {n_dim}:
        return -1
    try:
        x = carray(x_, ({n_dim},))
        buf = carray(ud_, ({total},), float64)
        value, grad = logp_fn(x{args})
        logp_[0] = value
        finite = True
        for i in range({n_dim}):
            out_[i] = grad[i]
            finite = finite and np.isfinite(grad[i])
        if not finite:
            return 3
        if not np.isfinite(value):
            return 4
    except Exception:
        return 1
    return 0
"""

# nutpie's trace callback: the free values only (no numba code of the model's own). The
# traced variables are computed after sampling, vectorized over the draws (_Expansion):
# compiling them into a second callback cost ~0.7 s of a first fit.
_EXPAND_SRC = """
def expand_c(dim, expanded, x_, out_, ud_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_dim}:
        return -1
    for i in range({n_dim}):
        out_[i] = x_[i]
    return 0
"""

def _signatures():
    from numba import types

    dptr = types.CPointer(types.double)
    return {
        "logp_c": types.int64(types.uint64, dptr, dptr, dptr, types.voidptr),
        "expand_c": types.int64(types.uint64, types.uint64, dptr, dptr, types.voidptr),
    }


def _cfunc(src: str, name: str, fn, key: str | None):
    """Compile ``src`` to a numba C callback, cached under ``key`` when given."""
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    # ``__name__``: numba rebuilds a cached function's environment by importing its module.
    env = {"__name__": __name__, "np": np, "carray": numba.carray, "float64": np.float64,
           name.split("_")[0] + "_fn": fn}
    py_func = compile_numba_function_src(src, name, global_env=env, cache_key=key)
    return numba.cfunc(_signatures()[name], cache=key is not None, fastmath=False)(py_func)


def _source_key(fn) -> str | None:
    """PyTensor's cache key of a numba-compiled function (None: not cacheable)."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    return CACHED_SRC_FUNCTIONS.get(getattr(fn, "py_func", None))


def _versions() -> tuple:
    """What compiled code depends on besides the graph; bayesslope's source hash last."""
    from importlib.metadata import version

    import numba
    import nutpie

    # PyMC's and PyTensor's versions without importing them (the warm path never does).
    return (_FORMAT, sys.version, numba.__version__, nutpie.__version__, version("pymc"),
            version("pytensor"), np.__version__, source_hash(sys.modules[__name__]))


def source_hash(*modules) -> str:
    """sha256 of the modules' source files (for keys: an edit of them invalidates)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(module.__name__.encode())
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _description_path(cache_path: Path, key) -> Path:
    digest = hashlib.sha256(repr((key, _versions())).encode()).hexdigest()
    return cache_path / f"model-{digest}.json"


def load_model(cache_path: Path | None, key, data) -> CachedModel | None:
    """The compiled model described under ``key``, without PyMC (None: not cached).

    Parameters
    ----------
    cache_path : Path or None
    key : hashable
        The caller's structure key, with a stable ``repr``: everything the model's graph
        depends on besides the library versions and the ``pm.Data`` values (the source
        of the modules that build it included: :func:`source_hash`).
    data : mapping
        Values for every ``pm.Data`` of the model.
    """
    if cache_path is None:
        return None
    path = _description_path(cache_path, key)
    try:
        desc = json.loads(path.read_text())
        if desc["versions"] != json.loads(json.dumps(_versions())):
            return None
        with _numba_cache_at(cache_path), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba's complaints about the stub on a miss
            # The code was linked with its callees when cached: a stub stands in for them
            # (a cache miss then fails to compile, and the model is built instead).
            funcs = {name: _cfunc(src, name, None, desc["keys"][name])
                     for name, src in desc["sources"].items()}
        if any(f.cache_hits != 1 for f in funcs.values()):
            return None
        layout = tuple((n, tuple(s), d) for n, s, d in desc["layout"])
        fixed = {name: np.asarray(value) for name, value in desc["fixed"].items()}
        buffer = pack(layout, {**fixed, **data})
        init = _init_function(_decode(desc["init_graph"]))
        dims = {k: tuple(v) for k, v in desc["dims"].items()}
        expansion = _Expansion(_decode(desc["expansion_graph"]), desc["names"], dims,
                               desc["reparameterized"])
    except Exception:  # noqa: BLE001 - a missing, stale or unloadable entry: build instead
        return None
    shape_info = (desc["names"], [slice(int(a), int(b)) for a, b in desc["slices"]],
                  [tuple(int(k) for k in s) for s in desc["shapes"]])
    compiled = _nutpie_model(funcs, init, int(desc["n_dim"]), shape_info, dims,
                             desc["coords"], buffer, desc["jitter"])
    return CachedModel(compiled=compiled, layout=layout, loaded="description", fixed=fixed,
                       expansion=expansion)


def _nutpie_model(funcs, init, n_dim, shape_info, dims, coords, buffer, jitter, logp_pt=None):
    from nutpie.compile_pymc import CompiledPyMCModel

    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=funcs["logp_c"], compiled_expand_func=funcs["expand_c"],
        initial_point_func=_InitialPoint(init, n_dim, buffer, jitter),
        shared_data={"buffer": buffer}, shared_var_keys={}, user_data=buffer,
        # The trace holds the free values (unconstrained ones too: nothing is "reparameterized"
        # for nutpie to drop); CachedModel.complete derives the rest.
        n_expanded=n_dim, shape_info=shape_info, logp_func=logp_pt,
        expand_func=None, reparameterized_names=[],
    )


def compile_cached(model, cache_path: Path | None, *, key=None, data_names=None,
                   var_names=None, jitter: bool = True) -> CachedModel:
    """Compile ``model`` for nutpie, loading the machine code from ``cache_path`` if there.

    Parameters
    ----------
    model : pymc.Model
    cache_path : Path or None
        Cache folder; None compiles without caching.
    key : hashable, optional
        The structure key under which to describe the model for :func:`load_model`.
    data_names : sequence of str, optional
        The ``pm.Data`` whose values :meth:`CachedModel.with_data` will swap (every
        shared variable the compiled functions read must be one of them); default: the
        shared variables as found.
    var_names : sequence of str, optional
        Deterministics to keep in the trace (free variables are always kept).
    jitter : bool
        Jitter the starting points (nutpie's and PyMC's default).

    Returns
    -------
    CachedModel

    Notes
    -----
    An entry numba cannot load (truncated, corrupt, written by another build) makes this
    discard the folder, warn, and compile again: a cache is never a reason to fail.
    """
    kw = dict(key=key, data_names=data_names, var_names=var_names, jitter=jitter)
    if cache_path is None:
        return _compile(model, None, **kw)
    try:
        return _compile(model, cache_path, **kw)
    except Exception as err:  # noqa: BLE001 - numba raises anything on a bad entry
        discard(cache_path)
        warnings.warn(f"compiled-model cache {str(cache_path)!r} was unusable "
                      f"({type(err).__name__}: {err}); discarded and compiled again",
                      RuntimeWarning, stacklevel=3)
    try:
        return _compile(model, cache_path, **kw)
    except OSError:  # e.g. a read-only folder: the fit runs, uncached
        return _compile(model, None, **kw)


def _init_graph(model):
    """Support points of the free variables, unconstrained, joined (no jitter)."""
    import pytensor.tensor as pt
    from pymc.initial_point import make_initial_point_expression

    values = make_initial_point_expression(
        free_rvs=model.free_RVs, rvs_to_transforms=model.rvs_to_transforms,
        initval_strategies=model.rvs_to_initial_values, jitter_rvs=set(),
        default_strategy="support_point", return_transformed=True,
    )
    return pt.concatenate([pt.as_tensor(v).ravel().astype("float64") for v in values])


def _expansion_graph(model, shape_info, var_names):
    """The traced variables that are not free values, for a matrix of draws of the free ones.

    Returns ``(draws, names, outputs)``: each output has the draws' leading axis.
    """
    import pytensor.tensor as pt
    from pytensor.graph.replace import clone_replace, vectorize_graph

    names, slices, shapes = shape_info  # the free values, in model.free_RVs order
    keep = None if var_names is None else set(var_names)
    remaining = [v for v in model.unobserved_value_vars
                 if v.name not in set(names) and (keep is None or v.name in keep)]
    x = pt.vector("x", dtype="float64")
    replace = {model.rvs_to_values[rv]: x[sl].reshape(shape).astype(rv.dtype)
               for rv, sl, shape in zip(model.free_RVs, slices, shapes, strict=True)}
    outputs = clone_replace([pt.as_tensor(v, allow_xtensor_conversion=True)
                             for v in remaining], replace)
    draws = pt.matrix("draws", dtype="float64")
    outputs = vectorize_graph(outputs, replace={x: draws}) if outputs else []
    return draws, [v.name for v in remaining], list(outputs)


def _buffer_graph(output, layout):
    """``output`` (a variable or a list), every shared variable read from a float64 buffer.

    Returns ``(buffer, output)``, the buffer a new input: picklable, and independent of the
    model's objects.
    """
    import pytensor.tensor as pt
    from pytensor.graph.replace import clone_replace

    buffer = pt.vector("buffer", dtype="float64")
    shared = _shared_inputs(output)
    replace = {}
    for name, start, stop, shape, dtype in _offsets(layout):
        if name in shared:
            value = buffer[start:stop].reshape(shape).astype(dtype)
            replace[shared[name]] = shared[name].type.filter_variable(value)
    missing = sorted(set(shared) - {name for name, _, _ in layout})
    if missing:
        raise ValueError(f"shared variables {missing} are not in the data buffer")
    return buffer, clone_replace(output, replace)


def _init_function(graph):
    """The buffer -> initial point function, on PyTensor's Python linker (no compilation)."""
    import pytensor
    from pytensor.compile.mode import Mode

    buffer, output = graph
    # on_unused_input: starting points need not read the data (e.g. all from the priors).
    return pytensor.function([buffer], output, on_unused_input="ignore",
                             mode=Mode(linker="py", optimizer=None))


def _compile(model, cache_path: Path | None, *, key=None, data_names=None, var_names=None,
             jitter: bool = True) -> CachedModel:
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords

    with _numba_cache_at(cache_path), _optimization_level():
        # var_names=[]: nutpie's trace callback copies the free values (_EXPAND_SRC); the
        # other traced variables are computed after sampling (_Expansion).
        n_dim, _, logp_pt, _, _, shape_info, reparameterized = _make_functions(
            model, mode="NUMBA", compute_grad=True, join_expanded=True,
            pymc_initial_point_fn=lambda seed: None, var_names=[],
        )
        with model:
            init_graph = _init_graph(model)
            draws, traced, outputs = _expansion_graph(model, shape_info, var_names)
        logp_shared = [v.name for v in logp_pt.get_shared()]
        shared = {v.name: v for v in logp_pt.get_shared()}
        shared |= _shared_inputs(init_graph) | _shared_inputs(outputs)
        data_names = list(shared) if data_names is None else list(data_names)
        # Dim lengths are shared variables too (one per dims= on a variable); the caller's
        # structure key fixes them, so they travel in the buffer with fixed values.
        dim_lengths = {getattr(v, "name", None) for v in model.dim_lengths.values()} & set(shared)
        missing = sorted(set(shared) - set(data_names) - dim_lengths)
        if missing:
            raise ValueError(f"shared variables {missing} are not pm.Data of the model")
        values = {name: np.asarray(var.get_value()) for name, var in shared.items()}
        fixed = {name: values[name] for name in sorted(set(shared) - set(data_names))}
        layout = tuple((name, values[name].shape, values[name].dtype.name)
                       for name in [*data_names, *fixed] if name in shared)
        buffer = pack(layout, values)
        sources = {
            "logp_c": _LOGP_SRC.format(n_dim=n_dim, total=buffer.size,
                                       args=_arg_source(layout, logp_shared)),
            "expand_c": _EXPAND_SRC.format(n_dim=n_dim),
        }
        code_keys = {"logp_c": _source_key(logp_pt.vm.jit_fn), "expand_c": "no callee"}
        cacheable = cache_path is not None and None not in code_keys.values()
        keys = {name: hashlib.sha256(repr((
            code_keys[name], sources[name], _versions()[:-1],
        )).encode()).hexdigest() if cacheable else None for name in sources}
        funcs = {"logp_c": _cfunc(sources["logp_c"], "logp_c", logp_pt.vm.jit_fn, keys["logp_c"]),
                 "expand_c": _cfunc(sources["expand_c"], "expand_c", None, keys["expand_c"])}
        init_graph = _buffer_graph(init_graph, layout)
        buffer_in, outputs = _buffer_graph(outputs, layout)
        expansion_graph = (draws, buffer_in, traced, outputs)
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    expansion = _Expansion(expansion_graph, shape_info[0], dims, reparameterized)
    compiled = _nutpie_model(funcs, _init_function(init_graph), n_dim, shape_info, dims,
                             coords, buffer, jitter, logp_pt)
    if cacheable and key is not None:
        names, slices, shapes = shape_info
        _write_json(_description_path(cache_path, key), {
            "versions": _versions(), "keys": keys, "sources": sources,
            # Plain ints (numpy integers would be written as strings).
            "layout": [[n, [int(k) for k in s], d] for n, s, d in layout], "n_dim": int(n_dim),
            "names": list(names), "slices": [[int(s.start), int(s.stop)] for s in slices],
            "shapes": [[int(k) for k in s] for s in shapes], "dims": dims,
            "coords": {k: list(np.asarray(v).tolist()) for k, v in (coords or {}).items()},
            "reparameterized": list(reparameterized), "jitter": jitter,
            "fixed": {name: value.tolist() for name, value in fixed.items()},
            "init_graph": _encode(init_graph), "expansion_graph": _encode(expansion_graph),
        })
    hit = all(f.cache_hits == 1 for f in funcs.values())
    return CachedModel(compiled=compiled, layout=layout, loaded="code" if hit else "compiled",
                       fixed=fixed, expansion=expansion)


def _encode(graph) -> str:
    return base64.b64encode(pickle.dumps(graph)).decode("ascii")


def _decode(text: str):
    return pickle.loads(base64.b64decode(text))


def _write_json(path: Path, obj) -> None:
    """Write atomically (a reader sees the old file or the new one, never half of one)."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(obj, default=str))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
