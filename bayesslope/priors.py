"""Priors of the transfer model: data-scaled defaults and user priors in data units.

A prior is a plain dict ``{"dist": "Normal", "mu": 0.0, "sigma": 1.0}`` naming a PyMC
distribution and its parameters. Defaults are weakly informative and scaled to the data;
the values actually used are recorded in the fit so a published model can be rebuilt.
A user prior is used exactly as written (no rescaling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .exceptions import DataValidationError

__all__ = ["PRIOR_NAMES", "default_priors", "resolve_priors", "create_prior_variable"]

# Which distributions may serve which parameter: locations on the real line, scales on
# the positive half line; the intercept-slope correlation uses the LKJ prior.
_LOCATION_DISTS = ("Normal", "StudentT", "Cauchy", "Laplace", "Logistic", "Uniform")
_SCALE_DISTS = (
    "HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential", "Gamma",
    "InverseGamma", "LogNormal", "Weibull", "Uniform",
)
_ALLOWED = {
    "intercept_mu": _LOCATION_DISTS,
    "slope_mu": _LOCATION_DISTS,
    "intercept_sigma": _SCALE_DISTS,
    "slope_sigma": _SCALE_DISTS,
    "sigma": _SCALE_DISTS,
    "corr": ("LKJ",),
}
PRIOR_NAMES = tuple(_ALLOWED)


def default_priors(y_mean: float, x_scale: float, y_scale: float) -> dict[str, dict]:
    """Weakly informative priors scaled to the data.

    Parameters
    ----------
    y_mean, x_scale, y_scale : float
        Mean of y and standard deviations of x and y over the whole frame.

    Returns
    -------
    dict
        One prior spec per parameter in :data:`PRIOR_NAMES`.

    Notes
    -----
    ``s_y / s_x`` is the slope that moves y by one standard deviation per standard
    deviation of x: the population mean slope gets 2.5 of these, and the spread of task
    slopes one, so slopes steeper than the data's own scale are possible but not favoured.
    """
    unit_slope = y_scale / x_scale
    return {
        "intercept_mu": {"dist": "Normal", "mu": float(y_mean), "sigma": 2.5 * y_scale},
        "slope_mu": {"dist": "Normal", "mu": 0.0, "sigma": 2.5 * unit_slope},
        "intercept_sigma": {"dist": "HalfNormal", "sigma": float(y_scale)},
        "slope_sigma": {"dist": "HalfNormal", "sigma": float(unit_slope)},
        "sigma": {"dist": "HalfNormal", "sigma": float(y_scale)},
        "corr": {"dist": "LKJ", "eta": 2.0},
    }


def _normalize(name: str, spec: Any) -> dict:
    """Turn one user prior into a validated plain dict."""
    if name not in _ALLOWED:
        raise DataValidationError(
            f"unknown prior {name!r}; priors can be set for {list(PRIOR_NAMES)}"
        )
    if hasattr(spec, "to_dict") and hasattr(spec, "distribution"):
        # pymc-extras Prior: {"dist": "Normal", "kwargs": {...}}
        raw = spec.to_dict()
        spec = {"dist": raw.get("dist"), **dict(raw.get("kwargs", {}))}
    if not isinstance(spec, Mapping) or "dist" not in spec:
        raise DataValidationError(
            f"prior {name!r} should be a dict like {{'dist': 'Normal', 'mu': 0, 'sigma': 1}}, "
            f"got {spec!r}"
        )
    dist = spec["dist"]
    allowed = _ALLOWED[name]
    if dist not in allowed:
        raise DataValidationError(
            f"prior {name!r}: distribution {dist!r} is not supported here; "
            f"use one of {list(allowed)}"
        )
    params = {k: v for k, v in spec.items() if k != "dist"}
    for k, v in params.items():
        try:
            params[k] = float(v)
        except (TypeError, ValueError):
            raise DataValidationError(
                f"prior {name!r}: parameter {k!r} must be a number, got {v!r}"
            ) from None
    if dist == "LKJ":
        if set(params) != {"eta"} or not params["eta"] > 0:
            raise DataValidationError(
                f"prior 'corr' takes one parameter eta > 0, got {params!r}"
            )
    elif dist == "Uniform" and name in ("intercept_sigma", "slope_sigma", "sigma"):
        if params.get("lower", 0.0) < 0:
            raise DataValidationError(
                f"prior {name!r}: a scale needs Uniform(lower >= 0), got lower={params['lower']}"
            )
    if dist != "LKJ":
        _check_pymc_params(name, dist, params)
    return {"dist": dist, **params}


def _check_pymc_params(name: str, dist: str, params: dict) -> None:
    import pymc as pm

    try:
        rv = getattr(pm, dist).dist(**params)
        float(pm.logp(rv, rv.eval()).eval())
    except (TypeError, KeyError, ValueError) as err:
        raise DataValidationError(
            f"prior {name!r}: invalid parameters {params!r} for {dist}: {err}"
        ) from None
    bad = [k for k in ("sigma", "beta", "lam", "alpha", "nu") if k in params and params[k] <= 0]
    if bad:
        raise DataValidationError(
            f"prior {name!r}: parameter {bad[0]!r} must be > 0, got {params[bad[0]]}"
        )


def resolve_priors(
    user: Mapping[str, Any] | None, defaults: Mapping[str, dict]
) -> dict[str, dict]:
    """Merge user priors over the defaults after validating them.

    Parameters
    ----------
    user : mapping of str to prior spec, optional
        Prior specs (dicts or pymc-extras ``Prior`` objects) keyed by parameter name.
    defaults : mapping
        The output of :func:`default_priors`.

    Returns
    -------
    dict
        The priors to build the model with; user entries are kept exactly.
    """
    resolved = {k: dict(v) for k, v in defaults.items()}
    if user is None:
        return resolved
    if not isinstance(user, Mapping):
        raise DataValidationError(f"priors must be a dict of name -> prior, got {user!r}")
    for name, spec in user.items():
        resolved[name] = _normalize(name, spec)
    return resolved


def create_prior_variable(name: str, spec: Mapping[str, Any], **kwargs):
    """Create the PyMC random variable ``name`` from a prior spec (inside a model context)."""
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)
