"""Priors of the transfer model: data-scaled defaults and user priors in data units.

A prior is a plain dict ``{"dist": "Normal", "mu": 0.0, "sigma": 1.0}`` naming a PyMC
distribution and its parameters. Defaults are weakly informative and scaled to the data;
the values actually used are recorded in the fit so a published model can be rebuilt.
A user prior is used exactly as written (no rescaling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .exceptions import DataValidationError

__all__ = [
    "PRIOR_NAMES", "default_priors", "resolve_priors", "create_prior_variable",
    "VARIANT_PRIOR_NAMES", "link_default_priors", "variant_default_priors",
    "check_prior_spec", "PARAMETERIZATIONS", "shape_default_priors",
    "covariate_default_priors", "create_data_prior", "create_population_spread",
]

# The parameterizations a prior may use, per distribution: each is a complete set of
# parameter names, all required (PyMC silently ignores an unknown keyword such as ``sd``
# and fills a missing scale with 1, so both must be caught here). Every name is a keyword
# of the PyMC distribution's ``dist`` (tests/test_bad_input.py checks this against the
# installed PyMC); "LKJ" is the intercept-slope correlation prior (``pm.LKJCholeskyCov``).
PARAMETERIZATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Normal": (("mu", "sigma"), ("mu", "tau")),
    "StudentT": (("nu", "mu", "sigma"), ("nu", "mu", "lam")),
    "Cauchy": (("alpha", "beta"),),
    "Laplace": (("mu", "b"),),
    "Logistic": (("mu", "s"),),
    "Uniform": (("lower", "upper"),),
    "HalfNormal": (("sigma",), ("tau",)),
    "HalfStudentT": (("nu", "sigma"), ("nu", "lam")),
    "HalfCauchy": (("beta",),),
    "Exponential": (("lam",), ("scale",)),
    "Gamma": (("alpha", "beta"), ("mu", "sigma")),
    "InverseGamma": (("alpha", "beta"), ("mu", "sigma")),
    "LogNormal": (("mu", "sigma"), ("mu", "tau")),
    "Weibull": (("alpha", "beta"),),
    "Beta": (("alpha", "beta"), ("mu", "sigma"), ("mu", "nu")),
    "LKJ": (("eta",),),
}
# Parameters that must be > 0 wherever they appear (scales, shapes, rates, precisions);
# ``mu`` must be > 0 in the (mu, sigma) forms of Gamma and InverseGamma.
_POSITIVE = ("sigma", "tau", "lam", "nu", "b", "s", "beta", "alpha", "scale", "eta")

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
# Parameters of the model variants (see docs/model.md, "Variants"); a default exists only
# when the variant is switched on.
_ALLOWED.update({
    "nu": ("Gamma", "Exponential", "HalfNormal", "LogNormal", "Uniform"),
    "lapse": ("Beta", "Uniform"),
    "overdispersion": _SCALE_DISTS,
    "sigma_log_mu": _LOCATION_DISTS,
    "sigma_log_sd": _SCALE_DISTS,
    "condition_intercept": _LOCATION_DISTS,
    "condition_slope": _LOCATION_DISTS,
    "group_intercept_sigma": _SCALE_DISTS,
    "group_slope_sigma": _SCALE_DISTS,
    "x_mu": _LOCATION_DISTS,
    "x_sigma": _SCALE_DISTS,
    # shape="hockey_stick" (thresholds, data units) and shape="quadratic"
    "x0_mu": _LOCATION_DISTS,
    "x0_sigma": _SCALE_DISTS,
    "curvature_mu": _LOCATION_DISTS,
    "curvature_sigma": _SCALE_DISTS,
    # task_covariates=: effects on the population means, per standardized covariate unit
    "intercept_beta": _LOCATION_DISTS,
    "slope_beta": _LOCATION_DISTS,
})
VARIANT_PRIOR_NAMES = tuple(k for k in _ALLOWED if k not in PRIOR_NAMES)
_SCALE_NAMES = ("intercept_sigma", "slope_sigma", "sigma", "overdispersion", "sigma_log_sd",
                "group_intercept_sigma", "group_slope_sigma", "x_sigma", "nu",
                "x0_sigma", "curvature_sigma")


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


def _robust_sd(x) -> float:
    """min(sd, 1.4826 * MAD) of x: the spread of the bulk of the x values."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    sd = float(np.std(x))
    mad = 1.4826 * float(np.median(np.abs(x - np.median(x))))
    return min(sd, mad) if mad > 0 else sd


def link_default_priors(z_mean: float, x, link: str) -> dict[str, dict]:
    """Defaults for intercepts and slopes on the scale of a probit or logit link.

    Parameters
    ----------
    z_mean : float
        Mean of the (clipped, floor-corrected) scores on the link scale.
    x : array_like
        The x values (their robust spread sets the slope scale).
    link : {"probit", "logit"}

    Returns
    -------
    dict
        Priors for ``intercept_mu``, ``slope_mu``, ``intercept_sigma``, ``slope_sigma``.

    Notes
    -----
    On the probit scale one unit is a large change (from 50% to 84% of the way from floor
    to ceiling); the logistic scale is ~1.7 times wider. With ``s`` that unit and ``s_x``
    the robust sd of x (``min(sd, 1.4826 MAD)``, so a long tail of early checkpoints
    does not shrink the slope prior)::

        intercept_mu ~ Normal(z_mean, 2.5 s)     slope_mu ~ Normal(0, 2.5 s / s_x)
        intercept_sigma ~ HalfNormal(2 s)        slope_sigma ~ HalfNormal(2 s / s_x)
    """
    s = 1.0 if link == "probit" else 1.7
    sx = _robust_sd(x)
    return {
        "intercept_mu": {"dist": "Normal", "mu": float(z_mean), "sigma": 2.5 * s},
        "slope_mu": {"dist": "Normal", "mu": 0.0, "sigma": 2.5 * s / sx},
        "intercept_sigma": {"dist": "HalfNormal", "sigma": 2.0 * s},
        "slope_sigma": {"dist": "HalfNormal", "sigma": 2.0 * s / sx},
    }


def variant_default_priors(
    core: Mapping[str, dict],
    *,
    y_scale: float,
    x_mean: float,
    x_scale: float,
    likelihood: str = "normal",
    lapse: bool | float = False,
    pooled_sigma: bool = False,
    condition: bool = False,
    group: bool = False,
    x_se: bool = False,
) -> dict[str, dict]:
    """Default priors of the variant parameters that are switched on.

    Parameters
    ----------
    core : mapping
        The resolved core priors (intercept/slope scales are reused for condition and
        group effects, so they live on the same scale).
    y_scale, x_mean, x_scale : float
        sd of y, mean and sd of x over the frame.
    likelihood, lapse, pooled_sigma, condition, group, x_se
        Which variants are on.

    Returns
    -------
    dict
        ``nu`` ~ Gamma(2, 0.1) (Student-t; Juarez and Steel 2010), ``lapse`` ~ Beta(1, 10)
        (psignifit's default), ``overdispersion`` ~ Gamma(2, 10) (beta-binomial
        ``1/sqrt(phi)``; mean 0.2, and zero-avoiding: near 0 the model is binomial and a
        flat log-scale tail there costs NUTS deep trees), ``sigma_log_mu`` ~
        Normal(log(sd y / 2), 1.5), ``sigma_log_sd`` ~ HalfNormal(1),
        ``condition_*`` ~ Normal(0, sd of the ``*_mu`` prior), ``group_*_sigma`` like
        the ``*_sigma`` priors, ``x_mu`` ~ Normal(mean x, 2.5 sd x), ``x_sigma`` ~
        HalfNormal(2 sd x).
    """
    import math

    out: dict[str, dict] = {}
    if likelihood == "student_t":
        out["nu"] = {"dist": "Gamma", "alpha": 2.0, "beta": 0.1}
    if likelihood == "beta_binomial":
        out["overdispersion"] = {"dist": "Gamma", "alpha": 2.0, "beta": 10.0}
    if lapse is True:
        out["lapse"] = {"dist": "Beta", "alpha": 1.0, "beta": 10.0}
    if pooled_sigma:
        out["sigma_log_mu"] = {"dist": "Normal", "mu": math.log(0.5 * y_scale), "sigma": 1.5}
        out["sigma_log_sd"] = {"dist": "HalfNormal", "sigma": 1.0}
    if condition:
        out["condition_intercept"] = {"dist": "Normal", "mu": 0.0,
                                      "sigma": float(core["intercept_mu"].get("sigma", 1.0))}
        out["condition_slope"] = {"dist": "Normal", "mu": 0.0,
                                  "sigma": float(core["slope_mu"].get("sigma", 1.0))}
    if group:
        out["group_intercept_sigma"] = dict(core["intercept_sigma"])
        out["group_slope_sigma"] = dict(core["slope_sigma"])
    if x_se:
        out["x_mu"] = {"dist": "Normal", "mu": float(x_mean), "sigma": 2.5 * x_scale}
        out["x_sigma"] = {"dist": "HalfNormal", "sigma": 2.0 * x_scale}
    return out


def shape_default_priors(shape: str, core: Mapping[str, dict], x) -> dict[str, dict]:
    """Default priors of the shape parameters (none for the straight line).

    Parameters
    ----------
    shape : {"linear", "hockey_stick", "quadratic"}
    core : mapping
        The resolved intercept/slope priors (the curvature scale follows the slope's).
    x : array_like
        The x values of the frame (data units).

    Returns
    -------
    dict
        Hockey stick, with ``m`` the midpoint and ``R`` the range of x:
        ``x0_mu ~ Normal(m, R / 2)`` (a threshold inside the data is likely, one a
        range beyond it possible) and ``x0_sigma ~ HalfNormal(R / 4)``. Quadratic, with
        ``s_b`` the sd of the ``slope_mu`` prior (``sigma`` of the ``slope_sigma`` prior)
        and ``s_x`` the sd of x: ``curvature_mu ~ Normal(0, s_b / s_x)``,
        ``curvature_sigma ~ HalfNormal(slope_sigma's sigma / s_x)``: a curvature that
        changes the slope by one prior sd over one sd of x.
    """
    x = np.asarray(x, dtype=float)
    if shape == "hockey_stick":
        lo, hi = float(np.min(x)), float(np.max(x))
        span = hi - lo if hi > lo else 1.0
        return {"x0_mu": {"dist": "Normal", "mu": 0.5 * (lo + hi), "sigma": 0.5 * span},
                "x0_sigma": {"dist": "HalfNormal", "sigma": 0.25 * span}}
    if shape == "quadratic":
        sx = float(np.std(x)) or 1.0
        s_b = float(core["slope_mu"].get("sigma", 1.0))
        s_tau = float(core["slope_sigma"].get("sigma", 1.0))
        return {"curvature_mu": {"dist": "Normal", "mu": 0.0, "sigma": s_b / sx},
                "curvature_sigma": {"dist": "HalfNormal", "sigma": s_tau / sx}}
    return {}


def covariate_default_priors(core: Mapping[str, dict]) -> dict[str, dict]:
    """Default priors of the task-covariate effects (``task_covariates=``).

    One prior per population mean, shared by every covariate column: ``intercept_beta ~
    Normal(0, sd of the intercept_mu prior)`` and ``slope_beta ~ Normal(0, sd of the
    slope_mu prior)``, as for condition effects. The coefficients are per standard
    deviation of a numeric covariate (per level contrast of a categorical one), so the
    prior says a one-sd change of a covariate moves the population mean by about as much
    as the mean itself is a priori uncertain: weakly informative, in data units.
    """
    return {"intercept_beta": {"dist": "Normal", "mu": 0.0,
                               "sigma": float(core["intercept_mu"].get("sigma", 1.0))},
            "slope_beta": {"dist": "Normal", "mu": 0.0,
                           "sigma": float(core["slope_mu"].get("sigma", 1.0))}}


def _describe(dist: str) -> str:
    forms = [", ".join(form) for form in PARAMETERIZATIONS[dist]]
    return f"{dist} takes ({') or ('.join(forms)})"


def check_prior_spec(
    name: str, spec: Any, allowed_dists: tuple[str, ...] | None = None
) -> dict:
    """Validate one prior spec and return it as a plain dict of floats.

    The parameter names are checked against the distribution's own (see
    :data:`PARAMETERIZATIONS`): an unknown name (``sd`` for ``sigma``) or a missing one
    is an error naming the prior, the parameter and what the distribution accepts. The
    values must be finite numbers, positive where the parameter is a scale or shape,
    and PyMC must be able to evaluate the distribution with them.

    Parameters
    ----------
    name : str
        The parameter the prior is for; used in messages only.
    spec : mapping
        ``{"dist": <PyMC distribution name>, <parameter>: <number>, ...}``.
    allowed_dists : tuple of str, optional
        The distributions accepted for ``name``; default any in :data:`PARAMETERIZATIONS`.

    Returns
    -------
    dict
        ``{"dist": dist, param: float, ...}`` in the order the user wrote.

    Raises
    ------
    DataValidationError
        For anything but a complete, valid spec.

    Examples
    --------
    >>> check_prior_spec("slope_mu", {"dist": "Normal", "mu": 0, "sigma": 10})
    {'dist': 'Normal', 'mu': 0.0, 'sigma': 10.0}
    """
    if not isinstance(spec, Mapping) or "dist" not in spec:
        raise DataValidationError(
            f"prior {name!r} should be a dict like {{'dist': 'Normal', 'mu': 0, 'sigma': 1}}, "
            f"got {spec!r}"
        )
    dist = spec["dist"]
    allowed = tuple(PARAMETERIZATIONS) if allowed_dists is None else tuple(allowed_dists)
    if not isinstance(dist, str) or dist not in allowed or dist not in PARAMETERIZATIONS:
        raise DataValidationError(
            f"prior {name!r}: distribution {dist!r} is not supported here; "
            f"use one of {list(allowed)}"
        )
    params: dict[str, float] = {}
    for k, v in spec.items():
        if k == "dist":
            continue
        try:
            if isinstance(v, bool):
                raise TypeError
            v = float(v)
        except (TypeError, ValueError):
            raise DataValidationError(
                f"prior {name!r}: parameter {k!r} must be a number, got {spec[k]!r}"
            ) from None
        if not np.isfinite(v):
            raise DataValidationError(
                f"prior {name!r}: parameter {k!r} must be a finite number, got {spec[k]!r}"
            )
        params[k] = v
    forms = PARAMETERIZATIONS[dist]
    accepted = sorted({p for form in forms for p in form})
    unknown = [k for k in params if k not in accepted]
    if unknown:
        raise DataValidationError(
            f"prior {name!r}: invalid parameters {params!r}: {dist} has no parameter "
            f"{unknown[0]!r}; {_describe(dist)} (accepted names: {accepted})"
        )
    if not any(set(form) == set(params) for form in forms):
        # The form the user was closest to: the one sharing most names.
        best = max(forms, key=lambda form: len(set(form) & set(params)))
        missing = [p for p in best if p not in params]
        extra = [k for k in params if k not in best]
        what = (f"missing parameter(s) {missing}" if missing and not extra
                else f"parameters {sorted(params)} mix two parameterizations")
        raise DataValidationError(
            f"prior {name!r}: invalid parameters {params!r}: {what}; {_describe(dist)}"
        )
    bad = [k for k in _POSITIVE if k in params and not params[k] > 0]
    if dist in ("Gamma", "InverseGamma") and "mu" in params and not params["mu"] > 0:
        bad.insert(0, "mu")
    if bad:
        raise DataValidationError(
            f"prior {name!r}: parameter {bad[0]!r} is {params[bad[0]]} but must be > 0"
        )
    if dist == "Uniform" and not params["lower"] < params["upper"]:
        raise DataValidationError(
            f"prior {name!r}: Uniform needs lower < upper, got lower={params['lower']}, "
            f"upper={params['upper']}"
        )
    if dist != "LKJ":
        _check_pymc_params(name, dist, params)
    return {"dist": dist, **params}


def _normalize(name: str, spec: Any) -> dict:
    """Turn one user prior into a validated plain dict."""
    if name not in _ALLOWED:
        raise DataValidationError(
            f"unknown prior {name!r}; priors can be set for {list(PRIOR_NAMES)} and, with "
            f"the matching variant, {list(VARIANT_PRIOR_NAMES)}"
        )
    if hasattr(spec, "to_dict") and hasattr(spec, "distribution"):
        # pymc-extras Prior: {"dist": "Normal", "kwargs": {...}}
        raw = spec.to_dict()
        spec = {"dist": raw.get("dist"), **dict(raw.get("kwargs", {}))}
    out = check_prior_spec(name, spec, _ALLOWED[name])
    dist = out["dist"]
    params = {k: v for k, v in out.items() if k != "dist"}
    if name == "lapse" and dist == "Uniform" and not (
        0 <= params["lower"] and params["upper"] < 1
    ):
        raise DataValidationError(
            f"prior 'lapse': a lapse rate lies in [0, 1), got Uniform{params!r}"
        )
    if dist == "Uniform" and name in _SCALE_NAMES and params["lower"] < 0:
        raise DataValidationError(
            f"prior {name!r}: a scale needs Uniform(lower >= 0), got lower={params['lower']}"
        )
    return out


def _check_pymc_params(name: str, dist: str, params: dict) -> None:
    import pymc as pm
    import pytensor
    from pytensor.compile.mode import Mode

    try:
        rv = getattr(pm, dist).dist(**params)
        # One draw and its log density (PyMC's parameter checks raise there), evaluated by
        # PyTensor's Python linker: .eval() C-compiled two functions per prior (~1 s each in
        # a fresh PyTensor folder) for a check of a few scalars.
        check = pytensor.function([], pm.logp(rv, rv), mode=Mode(linker="py", optimizer=None))
        float(check())
    except (TypeError, KeyError, ValueError) as err:
        raise DataValidationError(
            f"prior {name!r}: invalid parameters {params!r} for {dist}: {err}"
        ) from None


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


def create_data_prior(name: str, spec: Mapping[str, Any], **kwargs):
    """As :func:`create_prior_variable`, hyperparameters as data (``prior_<name>_<param>``).

    The compiled-once models (collapsed and full) take new priors without recompiling.
    """
    import pymc as pm

    params = {k: pm.Data(f"prior_{name}_{k}", float(v)) for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)


def create_population_spread(priors: Mapping[str, dict], correlated: bool):
    """``(intercept_sigma, slope_sigma, corr)`` of the task population, priors as data.

    ``corr`` has the LKJ(eta) prior of a 2 x 2 correlation, written exactly as
    ``(corr + 1) / 2 ~ Beta(eta, eta)``; 0 (a constant) when not ``correlated``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    sd_a = create_data_prior("intercept_sigma", priors["intercept_sigma"])
    sd_b = create_data_prior("slope_sigma", priors["slope_sigma"])
    if not correlated:
        return sd_a, sd_b, pt.as_tensor_variable(0.0)
    eta = pm.Data("prior_corr_eta", float(priors["corr"]["eta"]))
    corr = pm.Deterministic("corr", 2.0 * pm.Beta("corr_unit", eta, eta) - 1.0)
    return sd_a, sd_b, corr
