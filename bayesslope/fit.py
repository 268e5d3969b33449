"""fit_hierarchical: composes DataFrame -> design -> model -> posterior -> TransferFit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from .data import prepare_design
from .diagnostics import check_sampling
from .exceptions import DataValidationError
from .model import ModelConfig, build_model, choose_centered
from .priors import default_priors, resolve_priors
from .result import TransferFit, library_versions
from .sampling import SamplerConfig, sample_model
from .summaries import add_derived

__all__ = ["fit_hierarchical"]


def fit_hierarchical(
    df: pd.DataFrame,
    *,
    x: str = "x",
    y: str = "y",
    task: str = "task",
    x_better: Literal["lower", "higher"] | None = None,
    y_better: str | Mapping[str, str] | None = None,
    x_ref: float | None = None,
    priors: Mapping[str, Any] | None = None,
    correlated: bool = True,
    per_task_sigma: bool = False,
    parameterization: Literal["auto", "centered", "non_centered"] = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float = 0.9,
    random_seed: int | None = None,
    sampler: Literal["pymc", "nutpie"] = "pymc",
    cores: int | None = None,
    progressbar: bool = False,
    dropna: bool = False,
) -> TransferFit:
    """Fit the oriented hierarchical transfer model with NUTS.

    Each task gets an intercept and a transfer slope, partially pooled through a
    population distribution (see docs/model.md)::

        y_i = intercept[t] + slope[t] * s[t] * (x_i - x_ref) + noise

    where ``s[t] = +-1`` orients the slope so that a positive ``slope`` always means
    "better upstream goes with better downstream".

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy data, one row per (model or checkpoint) x task.
    x, y, task : str
        Column names of the upstream score, downstream score and task label.
    x_better, y_better : {"lower", "higher"}, optional
        Which direction is better. Defaults come from boolean ``x_higher_is_better`` /
        ``y_higher_is_better`` columns when present, else x lower (a loss) and y higher
        (an accuracy). ``y_better`` may also be a dict of task -> word.
    x_ref : float, optional
        Where intercepts are measured; default the mean of x.
    priors : dict, optional
        Priors in data units for any of ``intercept_mu, slope_mu, intercept_sigma,
        slope_sigma, sigma, corr``, e.g. ``{"slope_mu": {"dist": "Normal", "mu": 0,
        "sigma": 10}}``; used exactly as given. Others get data-scaled defaults.
    correlated : bool, default True
        Model the intercept-slope correlation (LKJ prior); False makes them independent.
    per_task_sigma : bool, default False
        One noise scale per task.
    parameterization : {"auto", "centered", "non_centered"}, default "auto"
        "auto" samples well-informed tasks centered and weak ones non-centered.
    draws, tune, chains, target_accept, random_seed
        As in :func:`pymc.sample`. The same ``random_seed`` gives identical draws.
    sampler : {"pymc", "nutpie"}, default "pymc"
        NUTS implementation, always named explicitly.
    cores : int, optional
        Parallel chains; default ``min(chains, cpu count)``.
    progressbar : bool, default False
        Show the sampler's progress bar.
    dropna : bool, default False
        Drop rows with missing x, y or task instead of raising (and warn how many).

    Returns
    -------
    TransferFit

    Raises
    ------
    DataValidationError
        For unusable data or arguments; the message names the column, rows or value.

    Warns
    -----
    WeakDataWarning
        Tasks with 1-2 points or constant x, by name.
    SamplingWarning
        Divergences, R-hat > 1.01 or ESS < 400, with the fix.

    Examples
    --------
    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> fit = bs.fit_hierarchical(df, random_seed=1)  # doctest: +SKIP
    >>> fit.summary()[["mean", "p_negative"]]  # doctest: +SKIP
    """
    sampler_config = SamplerConfig(
        draws=draws, tune=tune, chains=chains, target_accept=target_accept,
        random_seed=random_seed, sampler=sampler, progressbar=progressbar, cores=cores,
    )
    design = prepare_design(
        df, x=x, y=y, task=task, x_better=x_better, y_better=y_better, x_ref=x_ref,
        dropna=dropna,
    )
    resolved = resolve_priors(
        priors, default_priors(float(np.mean(design.y)), design.x_scale, design.y_scale)
    )
    if parameterization == "auto":
        centered = choose_centered(design)
    elif parameterization in ("centered", "non_centered"):
        centered = np.full(design.n_tasks, parameterization == "centered")
    else:
        raise DataValidationError(
            "parameterization should be one of ['auto', 'centered', 'non_centered'], "
            f"got {parameterization!r}"
        )
    config = ModelConfig(
        priors=resolved,
        correlated=bool(correlated),
        per_task_sigma=bool(per_task_sigma),
        parameterization=parameterization,
        centered_tasks=tuple(bool(c) for c in centered),
    )
    model = build_model(design, config)
    keep = [v for v in ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "corr",
                        "intercept", "slope", "sigma") if v in model.named_vars]
    tree = sample_model(model, sampler_config, var_names=keep)
    add_derived(tree, design.task_sign, design.x_scale, design.y_scale)
    check_sampling(tree, keep, stacklevel=2)
    spec = {
        "model": config.to_dict(),
        "sampler": sampler_config.to_dict(),
        "formulation": "full",
        "likelihood": "normal",
        "link": "identity",
        "versions": library_versions(),
    }
    return TransferFit(posterior=tree, design=design, spec=spec)
