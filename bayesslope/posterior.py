"""Design + resolved ModelConfig + VariantData -> posterior DataTree (the sampling step).

Dispatches on the formulation the config already holds: the collapsed model (NUTS on
the population parameters, then exact draws of each task's coefficients) or the full
model (NUTS on everything). Adds the derived slopes (``slope_data``, ``slope_std``).
Decides nothing about the model; see :mod:`bayesslope.resolve`.
"""

from __future__ import annotations

import numpy as np

from . import model_data
from .data import TransferDesign
from .model import ModelConfig, build_model, label_coords, posterior_var_names
from .sampling import SamplerConfig, sample_compiled, sample_model
from .summaries import add_derived
from .variant_data import VariantData

__all__ = ["sample_posterior"]


def sample_posterior(design: TransferDesign, config: ModelConfig, variants: VariantData,
                     sampler: SamplerConfig, covariates=None):
    """Sample the model that ``config`` describes and return its ArviZ DataTree.

    Parameters
    ----------
    design : TransferDesign
    config : ModelConfig
        From :func:`bayesslope.resolve.resolve_model`.
    variants : VariantData
    sampler : SamplerConfig
    covariates : bayesslope.covariates.TaskCovariates, optional
        Task covariates of the population means.

    Returns
    -------
    xarray.DataTree
        ``posterior`` with dims (chain, draw, task, ...), ``sample_stats``.
    """
    if config.formulation == "collapsed":
        tree = _sample_collapsed(design, config, sampler, covariates)
    elif sampler.sampler == "nutpie" and model_data.supports(variants):
        tree = _sample_full_compiled(design, config, variants, sampler, covariates)
    else:
        model = build_model(design, config, variants, covariates)
        tree = sample_model(model, sampler, var_names=posterior_var_names(model))
    add_derived(tree, design.task_sign, design.x_scale, design.y_scale)
    return tree


def _sample_full_compiled(design: TransferDesign, config: ModelConfig, variants: VariantData,
                          sampler: SamplerConfig, covariates=None):
    """Sample the full model with nutpie, compiled once per structure (model_data.py)."""
    import xarray as xr

    from . import likelihoods, model
    from .numba_model import source_hash

    data = model_data.full_data(design, config, variants, covariates)
    tree = sample_compiled(
        lambda: model_data.build_data_model(design, config, variants, covariates),
        # The modules that build the graph: an edit of any invalidates cached code.
        (model_data.structure_key(design, config, variants, covariates),
         source_hash(model_data, model, likelihoods)),
        data,
        sampler,
    )
    post = tree["posterior"].to_dataset()
    keep = set(model.POSTERIOR_VARS + model.VARIANT_VARS)
    post = post.drop_vars([v for v in post.data_vars if v not in keep])
    # nutpie keeps the coords of the model it compiled first: relabel for this data set.
    labels = label_coords(design, variants, covariates)
    post = post.assign_coords({k: v for k, v in labels.items() if k in post.dims})
    tree["posterior"] = post
    # As pm.sample returns it: the observed values (counts for the count likelihoods).
    tree["observed_data"] = xr.DataTree(xr.Dataset(
        {"y": ("obs", data["y_obs"])}, coords={"obs": np.arange(design.n_obs)}))
    return tree


def _sample_collapsed(design: TransferDesign, config: ModelConfig, sampler: SamplerConfig,
                      covariates=None):
    """Sample the collapsed model, then add exact draws of each task's coefficients."""
    from . import collapsed_model as cm

    data = {**cm.collapsed_data(design, covariates),
            **cm.prior_data(config.priors, config.correlated)}
    if sampler.sampler == "nutpie":
        from . import collapsed
        from .numba_model import source_hash

        tree = sample_compiled(
            lambda: cm.build_collapsed_model(design, config, covariates),
            # The modules that build the graph: an edit of either invalidates cached code.
            (cm.structure_key(design, config, covariates), source_hash(cm, collapsed)),
            data,
            sampler,
        )
    else:
        model = cm.build_collapsed_model(design, config, covariates)
        names = [v for v in cm.COLLAPSED_FREE_VARS if v in model.named_vars]
        tree = sample_model(model, sampler, var_names=names)
    # nutpie keeps the coords of the model it compiled first: relabel for this design.
    tree["posterior"] = tree["posterior"].to_dataset().drop_vars(
        [v for v in tree["posterior"].data_vars
         if v not in cm.COLLAPSED_FREE_VARS], errors="ignore"
    )
    if "task" in tree["posterior"].dims:
        tree["posterior"] = tree["posterior"].to_dataset().assign_coords(task=list(design.tasks))
    if covariates is not None:
        tree["posterior"] = tree["posterior"].to_dataset().assign_coords(
            covariate=list(covariates.columns))
    seed = np.random.SeedSequence(sampler.random_seed).spawn(1)[0] \
        if sampler.random_seed is not None else None
    cm.complete_collapsed_posterior(tree, design, seed, covariates)
    return tree
