"""JAX's persistent compilation cache for the transfer-matrix programs.

A fresh process spends ~5-6 s compiling the population NUTS (window adaptation and
sampling) and the draw stage before a 10,000-pair fit can start, which is a quarter of
that fit. JAX can keep compiled executables on disk and load them in the next process (a
restarted notebook kernel, the next script): ``fit_transfer_matrix`` turns the cache on in
a bayesslope folder unless the user has configured JAX's own cache.

The setting is process-wide (JAX has one cache): once on, other JAX programs of the
process are cached there too. The folder follows :mod:`bayesslope.cache` (sub-folder
``jax`` of ``BAYESSLOPE_CACHE``); ``BAYESSLOPE_JAX_CACHE=off`` keeps this cache alone off,
a path puts it elsewhere. Entries are keyed by JAX/XLA versions, backend and flags, so
stale ones are never loaded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..cache import cache_subdir

__all__ = ["ENV_VAR", "cache_dir", "ensure_compilation_cache"]

ENV_VAR = "BAYESSLOPE_JAX_CACHE"


def cache_dir() -> Path | None:
    """The folder bayesslope would use (None when off).

    ``BAYESSLOPE_JAX_CACHE`` if set, else ``jax`` under :func:`bayesslope.cache.cache_root`
    (``$XDG_CACHE_HOME/bayesslope/jax``, ``~/.cache/bayesslope/jax``).
    """
    return cache_subdir("jax", ENV_VAR)


def ensure_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache unless configured already or disabled.

    Returns
    -------
    str or None
        The cache folder in use: the user's own (``jax_compilation_cache_dir``, e.g. from
        ``JAX_COMPILATION_CACHE_DIR``) if set, else bayesslope's; None when off or when the
        folder cannot be created (warned once).
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return str(current)
    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        warnings.warn(f"JAX compilation cache off: cannot create {str(path)!r} ({err}); "
                      f"set {ENV_VAR} to a writable folder or to 'off'", RuntimeWarning,
                      stacklevel=3)
        os.environ[ENV_VAR] = "off"  # warn once per process
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    # The draw stage and the small helpers compile in well under JAX's default 1 s
    # threshold; together they are ~2 s of a cold fit, so cache every program.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return str(path)
