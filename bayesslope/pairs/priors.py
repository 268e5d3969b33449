"""Priors of the transfer matrix: fixed families in standardized units, checked strictly.

Both scores of a pair are standardized, so the defaults are the same for every data set
and a user may change their parameters but not their families (the fast path's density
is written for them). Messages follow :mod:`bayesslope.priors`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..exceptions import DataValidationError

__all__ = ["DEFAULT_PRIORS", "check_pair_priors"]

# Priors in standardized units (x and y have sd 1 within each pair).
DEFAULT_PRIORS: dict[str, dict] = {
    "intercept_mu": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "slope_mu": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "intercept_sigma": {"dist": "HalfNormal", "sigma": 1.0},
    "slope_sigma": {"dist": "HalfNormal", "sigma": 1.0},
    "sigma": {"dist": "HalfNormal", "sigma": 1.0},
    "corr": {"dist": "LKJ", "eta": 2.0},
}
_POSITIVE = ("sigma", "eta")


def check_pair_priors(priors: Mapping | None) -> dict[str, dict]:
    """The defaults with the user's overrides, every override checked.

    Parameters
    ----------
    priors : mapping of str to dict, optional
        E.g. ``{"slope_mu": {"dist": "Normal", "mu": 0, "sigma": 0.5}}``: a known name,
        the default's family, and exactly its parameters (finite; ``sigma``, ``eta`` > 0).

    Returns
    -------
    dict
        One spec per parameter of :data:`DEFAULT_PRIORS`, parameters as floats.

    Raises
    ------
    DataValidationError
        Naming the prior and what it needs.
    """
    out = {k: dict(v) for k, v in DEFAULT_PRIORS.items()}
    if priors is None:
        return out
    if not isinstance(priors, Mapping):
        raise DataValidationError(f"priors must be a dict of name -> prior, got {priors!r}")
    for name, spec in priors.items():
        if name not in out:
            raise DataValidationError(
                f"unknown prior {name!r}; the transfer matrix's priors are {list(out)}")
        default = out[name]
        keys = [k for k in default if k != "dist"]
        example = {**default}
        if not isinstance(spec, Mapping) or "dist" not in spec:
            raise DataValidationError(
                f"prior {name!r} should be a dict like {example}, got {spec!r}")
        if spec["dist"] != default["dist"]:
            raise DataValidationError(
                f"prior {name!r}: distribution {spec['dist']!r} is not supported here; "
                f"use {default['dist']!r} (the transfer matrix's density is written for it)")
        params = {k: v for k, v in spec.items() if k != "dist"}
        if set(params) != set(keys):
            unknown = sorted(set(params) - set(keys))
            absent = sorted(set(keys) - set(params))
            raise DataValidationError(
                f"prior {name!r}: {default['dist']} takes ({', '.join(keys)}); "
                f"unknown {unknown}, missing {absent}")
        for k, v in params.items():
            ok = (not isinstance(v, (bool, np.bool_))
                  and isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v))
            if not ok:
                raise DataValidationError(
                    f"prior {name!r}: parameter {k!r} must be a finite number, got {v!r}")
            if k in _POSITIVE and not v > 0:
                raise DataValidationError(
                    f"prior {name!r}: parameter {k!r} must be > 0, got {v!r}")
        out[name] = {"dist": default["dist"], **{k: float(params[k]) for k in keys}}
    return out
