"""Where bayesslope keeps compiled code between processes (one rule for every cache).

A fit's cost in a fresh process is mostly compilation; both compilers used here can keep
their output on disk: JAX for the transfer matrix (:mod:`bayesslope.pairs.compile_cache`)
and numba for the nutpie sampler (:mod:`bayesslope.numba_model`). Their folders live
under one root:

- ``BAYESSLOPE_CACHE``: a folder, or ``off`` (also ``0``, ``false``, ``no``, ``none``, or
  empty) to keep every cache off;
- unset: ``$XDG_CACHE_HOME/bayesslope``, else ``~/.cache/bayesslope``.

A cache can also be moved or turned off on its own by its own variable (e.g.
``BAYESSLOPE_JAX_CACHE``), which wins over the root. Deleting the folder is always safe.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "cache_root", "cache_subdir", "is_off"]

ENV_VAR = "BAYESSLOPE_CACHE"
_OFF = {"", "0", "off", "false", "no", "none"}


def is_off(value: str) -> bool:
    """Whether an environment value means "no cache"."""
    return value.strip().lower() in _OFF


def cache_root() -> Path | None:
    """The root folder of bayesslope's caches (None when ``BAYESSLOPE_CACHE`` is off)."""
    value = os.environ.get(ENV_VAR)
    if value is not None:
        return None if is_off(value) else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bayesslope"


def cache_subdir(name: str, env_var: str | None = None) -> Path | None:
    """The folder of one cache: ``env_var`` if set (a path or off), else ``root / name``.

    Parameters
    ----------
    name : str
        Sub-folder of :func:`cache_root`, e.g. ``"jax"`` or ``"numba"``.
    env_var : str, optional
        The cache's own variable, which wins over ``BAYESSLOPE_CACHE``.

    Returns
    -------
    Path or None
        None when the cache is off.
    """
    value = os.environ.get(env_var) if env_var else None
    if value is not None:
        return None if is_off(value) else Path(value).expanduser()
    root = cache_root()
    return None if root is None else root / name
