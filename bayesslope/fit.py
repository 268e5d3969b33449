"""fit_hierarchical: composes DataFrame -> design -> config -> posterior -> TransferFit.

Each step is one call: :func:`~bayesslope.data.prepare_design` (the validated frame),
:func:`~bayesslope.variant_data.prepare_variants` (variant options and columns),
:func:`~bayesslope.resolve.resolve_model` (every modelling decision, frozen),
:func:`~bayesslope.posterior.sample_posterior`, then the checks of the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from .covariates import prepare_covariates
from .data import prepare_design
from .options import check_bool
from .posterior import sample_posterior
from .predict import label_kinds
from .resolve import check_model_options, resolve_model, resolve_sampler
from .result import TransferFit, library_versions
from .variant_data import prepare_variants

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
    per_task_sigma: bool | Literal["pooled"] = False,
    parameterization: Literal["auto", "centered", "non_centered"] = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float | None = None,
    random_seed: int | None = None,
    sampler: Literal["pymc", "nutpie"] | None = None,
    formulation: Literal["auto", "full", "collapsed"] = "auto",
    cores: int | None = None,
    progressbar: bool | None = None,
    dropna: bool = False,
    link: Literal["identity", "logit", "probit"] | None = None,
    likelihood: Literal["normal", "student_t", "binomial", "beta_binomial"] | None = None,
    n_eval: str | int | None = None,
    counts: Literal["whole", "average"] = "whole",
    chance: str | float | Mapping[str, float] | None = None,
    lapse: bool | float = False,
    x_se: str | float | None = None,
    condition: str | None = None,
    group: str | None = None,
    group_nesting: Literal["crossed", "nested"] = "crossed",
    shape: Literal["linear", "hockey_stick", "quadratic"] = "linear",
    task_covariates: pd.DataFrame | str | list[str] | None = None,
    log_likelihood: bool = False,
    check_dependence: bool = True,
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
    per_task_sigma : bool or "pooled", default False
        One noise scale per task; "pooled" adds a population prior on log sigma
        (``log sigma_t ~ Normal(sigma_log_mu, sigma_log_sd)``).
    parameterization : {"auto", "centered", "non_centered"}, default "auto"
        "auto" samples well-informed tasks centered and weak ones non-centered.
    draws, tune, chains, target_accept, random_seed
        As in :func:`pymc.sample`. The same ``random_seed`` gives identical draws.
        ``target_accept=None``: 0.9, or 0.98 with a lapse rate per task (``lapse=True``),
        whose geometry needs the smaller steps (validation/NOTES.md: its SBC rejects at
        0.9 and passes at 0.98).
    sampler : {"pymc", "nutpie"}, optional
        NUTS implementation, always named (never PyMC's silent choice). Default: "nutpie"
        ("pymc", PyMC's NUTS, when ``tune=0``: nutpie needs tuning steps). "nutpie"
        compiles a model structure (number of tasks, prior families, options) once: the
        compiled code is cached on disk (``~/.cache/bayesslope/numba``; see
        ``BAYESSLOPE_CACHE`` in docs/arguments.md), so later processes load it, and a
        later fit of the same structure in the process only swaps the data.
    formulation : {"auto", "full", "collapsed"}, default "auto"
        "collapsed" integrates the task coefficients out analytically, samples only the
        population parameters, then draws each task's intercept and slope exactly from
        its conditional Gaussian: the same posterior, faster. "full" samples every task
        coefficient with NUTS. "auto" picks "collapsed" whenever it is valid (Gaussian
        likelihood, identity link).
    cores : int, optional
        Parallel chains; default ``min(chains, cpu count)``.
    progressbar : bool, optional
        Show the sampler's progress bar. Default: on in an interactive session (stderr
        is a terminal, or IPython/Jupyter), off otherwise (scripts, logs, tests).
    dropna : bool, default False
        Drop rows with missing x, y or task instead of raising (and warn how many).
    link : {"identity", "logit", "probit"}, optional
        Link of the mean score. Default: "probit" for count likelihoods or a chance
        floor, else "identity". Under a bounded link ``slope`` is on the link scale; see
        :meth:`TransferFit.data_scale_slope` for d(score)/dx.
    likelihood : {"normal", "student_t", "binomial", "beta_binomial"}, optional
        Observation model. Default: "binomial" when ``n_eval`` is given, else "normal".
    n_eval : str or int, optional
        Column (or one number) with the test-set size behind each score: the score
        becomes ``k = round(y * n)`` successes out of ``n``.
    counts : {"whole", "average"}, default "whole"
        "whole": ``y * n`` must be a whole number of correct answers. "average": the
        scores are averages (e.g. MMLU over its subjects) and ``y * n`` need not be
        whole; the count likelihood is then its continuous extension in ``k = y * n``
        (log-gamma binomial coefficient; the pmf itself at whole ``k``). For a plain
        mean of subtasks of sizes ``n_j``, the size with the average's binomial variance
        is ``J^2 / sum(1 / n_j)`` (docs/model.md, "Averaged accuracies").
    chance : str, float or dict of task -> float, optional
        Chance accuracy (floor): ``p = chance + (1 - chance - lapse) F(eta)``.
    lapse : bool or float, default False
        Lapse rate (1 - ceiling): True estimates one per task (Beta(1, 10) prior).
    x_se : str or float, optional
        Column (or one number) with the known measurement sd of x (errors-in-variables).
    condition : str, optional
        Column of conditions (e.g. shots): per-condition population intercepts and slopes
        (the first level is the reference); see :meth:`TransferFit.condition_differences`.
    group : str, optional
        Column of a further partially pooled level (e.g. model family) with its own
        random intercepts and slopes.
    group_nesting : {"crossed", "nested"}, default "crossed"
        Group effects shared across tasks, or separate per (task, group) cell.
    shape : {"linear", "hockey_stick", "quadratic"}, default "linear"
        Mean function of x on the link scale. "hockey_stick": flat at a floor level
        until a per-task threshold ``x0`` (data units, partially pooled: ``x0_mu``,
        ``x0_sigma``), then linear with slope ``slope`` in the better direction (a
        smooth kink; docs/model.md, "Shapes"); ``intercept`` is, as for every shape,
        the mean at ``x_ref``. "quadratic": adds a per-task, partially
        pooled ``curvature`` times the squared oriented distance from ``x_ref``. Both
        use ``formulation="full"``.
    task_covariates : DataFrame, str or list of str, optional
        Per-task covariates of the population means (slope meta-regression): a table
        indexed by task, or names of columns of ``df`` constant within each task. Then
        ``intercept_mu_t = intercept_mu + Z_t @ intercept_beta`` and ``slope_mu_t =
        slope_mu + Z_t @ slope_beta``, with ``Z`` the standardized numeric covariates and
        0/1 dummies of categorical ones (first level the reference); ``slope_mu`` is the
        mean slope at the covariates' means and reference levels. Priors ``intercept_beta``,
        ``slope_beta`` (per sd of a covariate). Works with every formulation and variant.
        See :meth:`TransferFit.covariate_effects`, :meth:`TransferFit.variance_explained`
        and ``population(covariates=...)``; docs/model.md, "Task covariates".
    log_likelihood : bool, default False
        Store the pointwise log-likelihood (group ``log_likelihood``, var ``y``; on the
        density scale of y for count likelihoods) so ``arviz.loo`` works.
    check_dependence : bool, default True
        Test the residuals for clustering by the frame's other columns (e.g. ``model``,
        ``seed``): see :mod:`bayesslope.dependence` and :meth:`TransferFit.dependence`.

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
    DependenceWarning
        Residuals of rows sharing a column's value are correlated within tasks.

    Examples
    --------
    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> fit = bs.fit_hierarchical(df, random_seed=1)  # doctest: +SKIP
    >>> fit.summary()[["mean", "p_negative"]]  # doctest: +SKIP
    """
    check_model_options(correlated=correlated, per_task_sigma=per_task_sigma,
                        parameterization=parameterization, formulation=formulation, shape=shape)
    dropna = check_bool("dropna", dropna)
    log_likelihood = check_bool("log_likelihood", log_likelihood)
    design = prepare_design(df, x=x, y=y, task=task, x_better=x_better, y_better=y_better,
                            x_ref=x_ref, dropna=dropna)
    variants = prepare_variants(
        df, design, link=link, likelihood=likelihood, n_eval=n_eval, chance=chance,
        lapse=lapse, x_se=x_se, condition=condition, group=group, group_nesting=group_nesting,
        counts=counts,
    )
    covariates = prepare_covariates(task_covariates, df, design)
    if shape == "hockey_stick":
        _warn_few_x_values(design)
    config = resolve_model(design, variants, priors=priors, correlated=correlated,
                           per_task_sigma=per_task_sigma, parameterization=parameterization,
                           formulation=formulation, shape=shape, covariates=covariates)
    sampler_config = resolve_sampler(
        draws=draws, tune=tune, chains=chains, target_accept=target_accept,
        random_seed=random_seed, sampler=sampler, progressbar=progressbar, cores=cores,
        latent_x=x_se is not None, formulation=config.formulation,
        lapse_rates=variants.lapse is True,
    )
    tree = sample_posterior(design, config, variants, sampler_config, covariates)
    spec = {
        "model": config.to_dict(),
        "variants": variants.to_dict(),
        "sampler": sampler_config.to_dict(),
        # Label types (str, int, ...): predict() refuses a label of another type.
        "label_kinds": label_kinds(df, task=task, condition=condition, group=group),
        "versions": library_versions(),
    }
    if covariates is not None:
        spec["covariates"] = covariates.to_dict()
    if check_dependence:
        spec["dependence"] = _dependence(df, design, tree, variants,
                                         random_seed=sampler_config.random_seed)
    fit = TransferFit(posterior=tree, design=design, spec=spec, variants=variants)
    if log_likelihood:
        fit = dataclasses.replace(fit, posterior=fit.log_likelihood_tree())
    fit.check_sampling(stacklevel=2)
    return fit


def _dependence(df: pd.DataFrame, design, tree, variants, random_seed) -> dict:
    """Test the residuals for clustering, warn, and return the table for the spec."""
    from .dependence import check_dependence, dependence_to_dict, warn_dependence

    table = check_dependence(df, design, tree, variants, random_seed=random_seed)
    warn_dependence(table, grouped=variants.columns.get("group"), stacklevel=3)
    return dependence_to_dict(table)


def _warn_few_x_values(design) -> None:
    """Name the tasks whose x takes fewer than 3 distinct values (hockey stick)."""
    import warnings

    from .exceptions import WeakDataWarning

    few = [t for k, t in enumerate(design.tasks)
           if np.unique(design.x[design.task_idx == k]).size < 3]
    if few:
        listed = ", ".join(repr(t) for t in few[:10]) + (" ..." if len(few) > 10 else "")
        warnings.warn(
            f"shape='hockey_stick': {len(few)} task(s) have fewer than 3 distinct x values "
            f"({listed}); a threshold needs a flat and a rising part, so their x0 comes from "
            "the population prior only",
            WeakDataWarning,
            stacklevel=3,
        )
