"""PyMC model -> posterior DataTree, with the sampler named explicitly.

PyMC 6 silently switches ``pm.sample`` to nutpie when nutpie is installed, so the
sampler is always passed by name. ``"pymc"`` is PyMC's own NUTS (a Python loop over
C-compiled gradients; PyTensor caches the C on disk). ``"nutpie"`` runs nutpie's Rust
NUTS on numba-compiled gradients: 20-30x faster sampling, and its compiled code is cached
on disk by :mod:`bayesslope.numba_model` (folder: :mod:`bayesslope.cache`, sub-folder
``numba``), so only the first process that fits a model structure pays the compilation,
and a second fit of the same structure in one process reuses the compiled model.
"""

from __future__ import annotations

import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass

from .exceptions import DataValidationError

__all__ = ["SamplerConfig", "SAMPLERS", "sample_model", "sample_compiled", "clear_compile_cache",
           "interactive_session", "numba_cache_dir"]

SAMPLERS = ("pymc", "nutpie")

# nutpie's mass-matrix adaptation. Its default ("diag", from draw and gradient variances)
# left min bulk ESS 67-89 and R-hat 1.02-1.06 on hierarchical fits where PyMC's NUTS
# reached 140-842; "draw_diag" (the mass matrix from draw variances, as PyMC and Stan
# estimate it) reached 106-958 at nutpie's speed. Over the SBC catalog it cut fits with
# ESS < 100 from 495 to 113 of 3,400 and left more with a divergence (196 against 127)
# (validation/NOTES.md, "`draw_diag`, nutpie's adaptation in bayesslope").
NUTPIE_ADAPTATION = "draw_diag"


@dataclass(frozen=True)
class SamplerConfig:
    """NUTS settings, named as in :func:`pymc.sample`."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.9
    random_seed: int | None = None
    sampler: str = "pymc"
    progressbar: bool = False
    cores: int | None = None
    # Jitter the chains' starting points (PyMC's "jitter+adapt_diag"). Off for models whose
    # starting point is chosen on purpose (errors in x: chains start at the measurements).
    jitter: bool = True

    def __post_init__(self):
        from .options import check_bool, check_sampler_settings

        checked = check_sampler_settings(self.draws, self.tune, self.chains,
                                         self.target_accept, self.random_seed)
        checked["progressbar"] = check_bool("progressbar", self.progressbar)
        for name, value in checked.items():  # numpy integers -> int (JSON-safe spec)
            object.__setattr__(self, name, value)
        if self.sampler not in SAMPLERS:
            raise DataValidationError(
                f"{self.sampler!r} is not a supported sampler. Must be one of: {list(SAMPLERS)}"
            )
        if self.sampler == "nutpie" and self.tune == 0:
            # nuts-rs asserts at least one tuning step (it panics otherwise).
            raise DataValidationError(
                "sampler='nutpie' needs tune >= 1; use sampler='pymc' to sample without tuning")

    def to_dict(self) -> dict:
        """JSON-safe description."""
        return asdict(self)


def sample_model(model, config: SamplerConfig, var_names=None):
    """Run NUTS on ``model`` and return the ArviZ DataTree.

    Parameters
    ----------
    model : pymc.Model
    config : SamplerConfig
    var_names : sequence of str, optional
        Variables to keep in the posterior (others, like raw offsets, are dropped).

    Returns
    -------
    xarray.DataTree
        With ``posterior``, ``sample_stats`` and ``observed_data`` groups.
    """
    import pymc as pm

    cores = config.cores or min(config.chains, os.cpu_count() or 1)
    kwargs = dict(
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        cores=cores,
        random_seed=config.random_seed,
        progressbar=config.progressbar,
        target_accept=config.target_accept,
        compute_convergence_checks=False,  # bayesslope.diagnostics reports with the fix
        model=model,
    )
    if config.sampler == "nutpie":
        # The graph (data included) keys the disk cache: the same fit in a new process
        # loads its compiled code.
        cached = _compile(model, var_names, config.jitter)
        tree = cached.complete(_run_nutpie(cached.compiled, config), cached.compiled)
        tree["observed_data"] = _observed_data(model)  # as pm.sample returns it
        return tree
    if not config.jitter:
        kwargs["init"] = "adapt_diag"
    return pm.sample(nuts_sampler="pymc", var_names=var_names, **kwargs)


def _observed_data(model):
    """The model's observed values as pm.sample's ``observed_data`` group."""
    import numpy as np
    import xarray as xr

    data = {}
    for rv in model.observed_RVs:
        value = np.asarray(model.rvs_to_values[rv].eval())
        dims = model.named_vars_to_dims.get(rv.name) or tuple(
            f"{rv.name}_dim_{i}" for i in range(value.ndim))
        coords = {d: list(model.coords[d]) for d in dims if model.coords.get(d) is not None}
        data[rv.name] = xr.DataArray(value, dims=dims, coords=coords)
    return xr.DataTree(xr.Dataset(data))


def interactive_session() -> bool:
    """Whether a person is probably watching: stderr is a terminal, or IPython/Jupyter runs."""
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):  # replaced or closed stream
        pass
    ipython = sys.modules.get("IPython")
    return bool(ipython is not None and getattr(ipython, "get_ipython", lambda: None)())


def numba_cache_dir():
    """The folder of the compiled nutpie models (None when ``BAYESSLOPE_CACHE`` is off)."""
    from .cache import cache_subdir

    return cache_subdir("numba")


# Compiled nutpie models by structure key (LRU): a refit of the same structure swaps in the
# new data instead of compiling (or loading) again.
_COMPILED: OrderedDict = OrderedDict()
_CACHE_SIZE = 8


def clear_compile_cache() -> None:
    """Forget every compiled model (the next fit of each structure compiles again)."""
    _COMPILED.clear()


def _import_nutpie():
    try:
        import nutpie
    except ImportError:
        raise ImportError(
            "sampler='nutpie' needs nutpie: pip install nutpie (or use sampler='pymc')"
        ) from None
    return nutpie


def sample_compiled(
    build: Callable[[], object],
    key: Hashable,
    data: Mapping[str, object],
    config: SamplerConfig,
):
    """Sample with nutpie, compiling the model once per ``key`` and reusing it.

    Parameters
    ----------
    build : callable
        Returns the PyMC model; called only when ``key`` is not cached yet.
    key : hashable
        Everything the compiled model depends on besides its ``pm.Data`` values (the
        jitter setting is added here).
    data : mapping
        Values for every ``pm.Data`` of the model (swapped in with ``with_data``).
    config : SamplerConfig

    Returns
    -------
    xarray.DataTree
    """
    key = (key, config.jitter)
    cached = _COMPILED.get(key)
    if cached is None:
        _import_nutpie()
        from .numba_model import load_model

        # A fresh process with a warm cache loads the compiled model without PyMC.
        cached = load_model(numba_cache_dir(), ("sample_compiled", key), data)
        if cached is None:
            cached = _compile(build(), None, config.jitter, data_names=list(data),
                              key=("sample_compiled", key))
        _COMPILED[key] = cached
        while len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(key)
    compiled = cached.with_data(data)
    return cached.complete(_run_nutpie(compiled, config), compiled)


def _compile(model, var_names, jitter: bool, data_names=None, key=None):
    """:func:`bayesslope.numba_model.compile_cached` into :func:`numba_cache_dir`."""
    _import_nutpie()
    from .numba_model import compile_cached

    return compile_cached(model, numba_cache_dir(), key=key, data_names=data_names,
                          var_names=var_names, jitter=jitter)


def _run_nutpie(compiled, config: SamplerConfig):
    """``nutpie.sample`` with the settings of ``config``; records the sampling time."""
    import nutpie

    start = time.perf_counter()
    tree = nutpie.sample(
        compiled,
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        cores=config.cores or min(config.chains, os.cpu_count() or 1),
        seed=config.random_seed,
        target_accept=config.target_accept,
        progress_bar=config.progressbar,
        save_warmup=False,
        adaptation=NUTPIE_ADAPTATION,
    )
    # pm.sample records its own clock; nutpie does not: same attribute, same meaning
    # (tuning + draws, compilation excluded).
    tree["posterior"].attrs["sampling_time"] = time.perf_counter() - start
    tree["posterior"].attrs["nutpie_adaptation"] = NUTPIE_ADAPTATION
    return tree
