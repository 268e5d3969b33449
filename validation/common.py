"""What the SBC harness and its variant plugins share: the plugin interface and helpers.

Import graph of ``validation/`` (arrows: "imports"; no cycle)::

    run.py -------> catalog.py ---> variants.py, pair_variants.py (the plugins)
      |   \\                               |
      |    `-> sbc.py, figures.py          |
      |              \\                     v
      `---------------`-------------> common.py (this module: imports nothing of validation/)

A *plugin* is a module that defines variants and registers them here with
:func:`register_variant` when imported; :mod:`validation.catalog` imports every plugin. The
harness (:mod:`validation.sbc`) only ever receives :class:`Variant` objects (or looks names
up in :data:`VARIANTS`), so it never imports a plugin. Worker processes receive the
pickled :class:`Variant`: unpickling its functions imports the plugin that defines them.

Also here: the pieces several plugins and tools use, the fixed :data:`PRIORS` of the
Gaussian model (data units), its numpy prior sampler :func:`sample_population`, the
sampler settings :data:`SAMPLING` and :func:`draw_diagnostics` of the JAX-engine adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "COVERAGE_PROBS",
    "FitDraws",
    "Variant",
    "VARIANTS",
    "register_variant",
    "get_variant",
    "PRIORS",
    "POPULATION",
    "SAMPLING",
    "half_normal",
    "sample_population",
    "draw_diagnostics",
]

COVERAGE_PROBS = (0.5, 0.9)


@dataclass(frozen=True)
class FitDraws:
    """What a variant's fit function returns.

    Attributes
    ----------
    draws : dict of str to ndarray
        Posterior draws per variable, shape ``(chain, draw, *param_shape)``.
    slope_intervals : dict of float to (ndarray, ndarray)
        Central interval ``(lower, upper)`` of each task's slope per probability in
        :data:`COVERAGE_PROBS`, as reported by the fitted package.
    p_negative : ndarray, shape (n_tasks,)
        Reported P(slope < 0 | data) per task.
    diagnostics : dict
        ``divergences``, ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min`` and
        ``warnings`` (list of warning messages raised by the fit).
    """

    draws: dict[str, np.ndarray]
    slope_intervals: dict[float, tuple[np.ndarray, np.ndarray]]
    p_negative: np.ndarray
    diagnostics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """A model variant under test.

    Attributes
    ----------
    name : str
        Registry key (also the figure file prefix).
    description : str
        One line for RESULTS.md.
    sample_prior : callable
        ``sample_prior(rng) -> dict`` of true parameters (floats or arrays). Must contain
        ``slope`` (one per task).
    simulate : callable
        ``simulate(truth, rng) -> pandas.DataFrame`` with columns ``task, x, y``; task
        names must sort in task-index order.
    fit : callable
        ``fit(df, seed) -> FitDraws``.
    params : tuple of str
        Ranked quantities: a variable name (scalar) or ``name[k]`` (element ``k``).
    pooled : tuple of str
        Per-task variables whose ranks are also pooled over all tasks (dependent within
        a simulation, so shown as a figure but not used as a formal test).
    """

    name: str
    description: str
    sample_prior: Callable[[np.random.Generator], dict]
    simulate: Callable[[dict, np.random.Generator], pd.DataFrame]
    fit: Callable[[pd.DataFrame, int], FitDraws]
    params: tuple[str, ...]
    pooled: tuple[str, ...] = ("slope",)


VARIANTS: dict[str, Variant] = {}


def register_variant(variant: Variant) -> Variant:
    """Add ``variant`` to :data:`VARIANTS` (replacing one of the same name)."""
    VARIANTS[variant.name] = variant
    return variant


def get_variant(name: str) -> Variant:
    """Look a registered variant up by name; the error lists the registered ones.

    Only variants of plugins already imported are registered: import
    :mod:`validation.catalog` to register them all.
    """
    if name not in VARIANTS:
        raise KeyError(f"unknown variant {name!r}; registered: {sorted(VARIANTS)}")
    return VARIANTS[name]


# -- the Gaussian model's fixed priors and sampler settings ----------------------------

# Fixed priors (data units): x ~ Normal(0, 1) and y of order 1 give realistic data.
PRIORS = {
    "intercept_mu": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "slope_mu": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "intercept_sigma": {"dist": "HalfNormal", "sigma": 1.0},
    "slope_sigma": {"dist": "HalfNormal", "sigma": 0.5},
    "sigma": {"dist": "HalfNormal", "sigma": 0.5},
    "corr": {"dist": "LKJ", "eta": 2.0},
}
POPULATION = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma")
SAMPLING = {"draws": 500, "tune": 500, "chains": 2, "cores": 1, "target_accept": 0.9}


def half_normal(rng: np.random.Generator, scale: float, size=None):
    """Draws of ``HalfNormal(scale)``."""
    return np.abs(rng.normal(0.0, scale, size=size))


def sample_population(
    rng: np.random.Generator, n_tasks: int, *, correlated: bool = True,
    per_task_sigma: bool = False,
) -> dict:
    """Draw every parameter of the Gaussian model from :data:`PRIORS` (numpy only).

    Returns
    -------
    dict
        ``intercept_mu, slope_mu, intercept_sigma, slope_sigma, corr, sigma`` and per-task
        ``intercept``, ``slope`` (and ``sigma`` per task if ``per_task_sigma``).
    """
    p = PRIORS
    mu = np.array([rng.normal(p["intercept_mu"]["mu"], p["intercept_mu"]["sigma"]),
                   rng.normal(p["slope_mu"]["mu"], p["slope_mu"]["sigma"])])
    sd = np.array([half_normal(rng, p["intercept_sigma"]["sigma"]),
                   half_normal(rng, p["slope_sigma"]["sigma"])])
    eta = p["corr"]["eta"]
    # LKJ(eta) on a 2x2 correlation matrix: (corr + 1) / 2 ~ Beta(eta, eta).
    corr = 2.0 * rng.beta(eta, eta) - 1.0 if correlated else 0.0
    z = rng.normal(size=(n_tasks, 2))
    a = mu[0] + sd[0] * z[:, 0]
    b = mu[1] + sd[1] * (corr * z[:, 0] + np.sqrt(1.0 - corr**2) * z[:, 1])
    sigma = half_normal(rng, p["sigma"]["sigma"], size=n_tasks if per_task_sigma else None)
    truth = {"intercept_mu": mu[0], "slope_mu": mu[1], "intercept_sigma": sd[0],
             "slope_sigma": sd[1], "sigma": sigma, "intercept": a, "slope": b}
    if correlated:
        truth["corr"] = corr
    return truth


def draw_diagnostics(draws: np.ndarray, divergences: int) -> dict:
    """Worst R-hat and bulk/tail ESS (arviz-stats) over ``draws`` (chain, draw, k)."""
    from arviz_stats.base import array_stats

    return {
        "divergences": divergences,
        "r_hat_max": float(np.max(array_stats.rhat(draws, chain_axis=0, draw_axis=1))),
        "ess_bulk_min": float(np.min(array_stats.ess(draws, chain_axis=0, draw_axis=1))),
        "ess_tail_min": float(np.min(array_stats.ess(draws, chain_axis=0, draw_axis=1,
                                                     method="tail", prob=0.05))),
    }
