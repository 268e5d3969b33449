"""Posterior DataTree -> sampling diagnostics table and SamplingWarning with the fix."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .exceptions import SamplingWarning

__all__ = ["sampling_diagnostics", "element_diagnostics", "check_sampling", "RHAT_MAX", "ESS_MIN"]

RHAT_MAX = 1.01
ESS_MIN = 400


def element_diagnostics(posterior, var_names, cache: dict | None = None) -> dict:
    """Rank-normalized R-hat, bulk ESS and tail ESS of every element of each variable.

    arviz-stats computes these one array element at a time (about 4 ms each), which
    dominates a 500-task fit; ``cache`` (a dict, filled in place) lets a fit's warnings,
    ``summary()`` and ``diagnostics()`` share one computation.

    Parameters
    ----------
    posterior : xarray.DataTree
    var_names : sequence of str
    cache : dict, optional
        ``{var: {"r_hat": DataArray, "ess_bulk": DataArray, "ess_tail": DataArray}}``;
        variables already present are not recomputed.

    Returns
    -------
    dict
        The entries of ``cache`` for ``var_names``.
    """
    import arviz as az

    cache = {} if cache is None else cache
    todo = [v for v in var_names if v not in cache]
    if todo:
        sub = posterior["posterior"].to_dataset()[todo]
        rhat = az.rhat(sub)
        ess_b = az.ess(sub, method="bulk")
        ess_t = az.ess(sub, method="tail")
        for v in todo:
            cache[v] = {"r_hat": rhat[v], "ess_bulk": ess_b[v], "ess_tail": ess_t[v]}
    return {v: cache[v] for v in var_names}


def sampling_diagnostics(posterior, var_names=None, cache: dict | None = None) -> pd.DataFrame:
    """Per variable: max R-hat, min bulk and tail ESS (over its elements).

    Parameters
    ----------
    posterior : xarray.DataTree
        A fit's DataTree (with a ``posterior`` group and, for NUTS, ``sample_stats``).
    var_names : sequence of str, optional
        Variables to diagnose; default all of the posterior group.
    cache : dict, optional
        Per-element results to reuse and fill (see :func:`element_diagnostics`).

    Returns
    -------
    pandas.DataFrame
        Indexed by variable, columns ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min``;
        ``attrs["divergences"]`` holds the number of divergent transitions.
    """
    names = (list(var_names) if var_names is not None
             else list(posterior["posterior"].data_vars))
    elements = element_diagnostics(posterior, names, cache)
    rows = {}
    for v in names:
        e = elements[v]
        rows[v] = {
            "r_hat_max": float(np.nanmax(e["r_hat"].values)) if e["r_hat"].size else np.nan,
            "ess_bulk_min": float(np.nanmin(e["ess_bulk"].values)),
            "ess_tail_min": float(np.nanmin(e["ess_tail"].values)),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "variable"
    table.attrs["divergences"] = divergences(posterior)
    return table


def divergences(posterior) -> int:
    """Number of divergent transitions after warm-up (0 if not recorded)."""
    try:
        return int(posterior["sample_stats"]["diverging"].values.sum())
    except KeyError:
        return 0


def check_sampling(posterior, var_names=None, *, stacklevel: int = 2,
                   cache: dict | None = None) -> pd.DataFrame:
    """Compute diagnostics and warn (:class:`SamplingWarning`) about each problem.

    ``cache`` is passed to :func:`sampling_diagnostics`.

    Returns
    -------
    pandas.DataFrame
        The table of :func:`sampling_diagnostics`.
    """
    table = sampling_diagnostics(posterior, var_names, cache)
    n_div = table.attrs["divergences"]
    if n_div:
        warnings.warn(
            f"{n_div} divergent transition(s): the posterior may be biased. Fix: raise "
            "target_accept (e.g. 0.95-0.99), use parameterization='non_centered' for weakly "
            "informed tasks, or set tighter priors on the *_sigma parameters.",
            SamplingWarning,
            stacklevel=stacklevel + 1,
        )
    # When nutpie drew the chains, name the other NUTS as a check: a posterior that two
    # implementations with different adaptations agree on is more trustworthy (nutpie's
    # "diag" adaptation gave ESS 67 where PyMC's NUTS gave 842; validation/NOTES.md).
    other = (", or refit with sampler='pymc' (PyMC's NUTS: another mass-matrix adaptation, "
             "slower per draw) to check" if _sampled_by_nutpie(posterior) else "")
    high = table.index[table["r_hat_max"] > RHAT_MAX].tolist()
    if high:
        worst = table.loc[high, "r_hat_max"].max()
        warnings.warn(
            f"R-hat above {RHAT_MAX} for {high} (max {worst:.3f}): chains disagree. Fix: run "
            f"more tune and draws (e.g. tune=2000, draws=2000){other}, and check for "
            "divergences or multimodality.",
            SamplingWarning,
            stacklevel=stacklevel + 1,
        )
    ess = table[["ess_bulk_min", "ess_tail_min"]].min(axis=1)
    low = ess.index[ess < ESS_MIN].tolist()
    if low:
        warnings.warn(
            f"effective sample size below {ESS_MIN} for {low} (min {ess.min():.0f}): "
            "intervals and tail probabilities are imprecise. Fix: increase draws or "
            f"chains{other}.",
            SamplingWarning,
            stacklevel=stacklevel + 1,
        )
    return table


def _sampled_by_nutpie(posterior) -> bool:
    """Whether nutpie drew the chains.

    nutpie's sample stats name the tree depth ``depth`` and ``maxdepth_reached``; PyMC's
    ``tree_depth`` and ``reached_max_treedepth``.
    """
    try:
        stats = posterior["sample_stats"]
    except KeyError:
        return False
    return "maxdepth_reached" in stats.data_vars and "tree_depth" not in stats.data_vars
