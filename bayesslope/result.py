"""TransferFit: the posterior DataTree + design + spec, with summaries, plots and storage."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import summaries
from .data import TransferDesign
from .diagnostics import check_sampling, sampling_diagnostics
from .variant_data import VariantData

__all__ = ["TransferFit", "load_fit", "library_versions"]

_SPEC_ATTR = "bayesslope_spec"
# 2: link, likelihood and lapse live only in spec["variants"]; formulation in spec["model"].
_FORMAT_VERSION = 2


def library_versions() -> dict:
    """Versions of the libraries that produced a fit."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("bayesslope", "pymc", "pytensor", "arviz", "numpy", "xarray", "pandas"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


@dataclass(frozen=True, eq=False)
class TransferFit:
    """Result of :func:`bayesslope.fit_hierarchical`.

    Attributes
    ----------
    posterior : xarray.DataTree
        ArviZ DataTree: ``posterior`` (dims chain, draw, task), ``sample_stats``,
        ``observed_data``. ``slope`` is the oriented transfer slope in data units,
        ``slope_data`` the plain dy/dx and ``slope_std`` the standardized oriented slope.
    design : TransferDesign
        The validated data the model saw.
    spec : dict
        Everything needed to rebuild the fit: ``model`` (the resolved
        :class:`~bayesslope.model.ModelConfig`: formulation, priors, parameterization,
        shape), ``variants`` (link, likelihood, lapse and the variant columns), ``sampler``,
        label types, library versions and, when checked, ``dependence``.
    variants : bayesslope.variant_data.VariantData, optional
        The variant options and per-observation data (counts, chance, x noise,
        conditions, groups); the default (core Gaussian model) when not given.

    Examples
    --------
    The honest model of the bundled Pythia demo (checkpoints grouped by model; about 75 s
    on 2 cores at the default draws), then one call per question:

    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> fit = bs.fit_hierarchical(df, group="model", group_nesting="nested",
    ...                           random_seed=1)  # doctest: +SKIP
    >>> fit.summary()[["mean", "eti90_lb", "eti90_ub", "p_negative"]]  # doctest: +SKIP
    >>> fit.p_negative_transfer()  # doctest: +SKIP
    >>> fit.summary(rope=0.01)["decision"]  # doctest: +SKIP
    >>> fit.rank_tasks(k=2).head(3)  # doctest: +SKIP
    >>> fit.negative_tasks(max_false_sign_rate=0.05)  # doctest: +SKIP
    >>> last = df[df["step"] == df["step"].max()].assign(x=1.2)
    >>> fit.predict(last, kind="observation")[["mean", "eti90_lb", "eti90_ub"]]  # doctest: +SKIP
    >>> fit.required_upstream(0.75)[["median", "p_reachable"]]  # doctest: +SKIP
    >>> fit.diagnostics()  # doctest: +SKIP
    >>> fig = fit.plot_slopes()  # doctest: +SKIP
    >>> path = fit.to_netcdf("pythia_fit.nc")  # doctest: +SKIP
    >>> bs.load(path).summary().equals(fit.summary())  # doctest: +SKIP
    True
    """

    posterior: object
    design: TransferDesign
    spec: dict
    variants: VariantData | None = None

    def __post_init__(self):
        if self.variants is None:
            object.__setattr__(self, "variants", VariantData())

    @cached_property
    def _diagnostics_cache(self) -> dict:
        # Per-element R-hat / ESS, filled on first use and shared by the sampling check,
        # summary() and diagnostics() of this result (arviz-stats takes ~4 ms per
        # element: seconds at 500 tasks). Private to the result, never passed in.
        return {}

    # -- the model, as resolved at fit time ------------------------------------------
    @property
    def link(self) -> str:
        """Link of the mean score: "identity", "logit" or "probit"."""
        return self.variants.link

    @property
    def likelihood(self) -> str:
        """Observation model: "normal", "student_t", "binomial" or "beta_binomial"."""
        return self.variants.likelihood

    @property
    def formulation(self) -> str:
        """"collapsed" (task coefficients integrated out) or "full"."""
        return self.spec["model"]["formulation"]

    @property
    def shape(self) -> str:
        """Mean function of x: "linear", "hockey_stick" or "quadratic"."""
        return self.spec["model"].get("shape", "linear")

    def check_sampling(self, *, stacklevel: int = 2) -> pd.DataFrame:
        """Diagnose the sampler and warn (:class:`SamplingWarning`) about each problem.

        Divergences, R-hat above 1.01 and ESS below 400 of the model's parameters, each
        with the fix. Run by :func:`~bayesslope.fit_hierarchical` after sampling.

        Returns
        -------
        pandas.DataFrame
            Max R-hat and min ESS per parameter; ``attrs["divergences"]``.
        """
        from .model import POSTERIOR_VARS, VARIANT_VARS

        keep = [v for v in POSTERIOR_VARS + VARIANT_VARS
                if v in self.posterior["posterior"].data_vars]
        return check_sampling(self.posterior, keep, stacklevel=stacklevel + 1,
                              cache=self._diagnostics_cache)

    def log_likelihood(self, data_scale: bool = True) -> np.ndarray:
        """Pointwise log-likelihood of the scores, shape (chain, draw, obs).

        Parameters
        ----------
        data_scale : bool, default True
            For count likelihoods, add ``log(n)`` so the value is a density of
            ``y = k / n`` and comparable with continuous (Gaussian, Student-t) fits.
        """
        from .likelihoods import log_likelihood_draws

        v = self.variants
        ll = log_likelihood_draws(self.posterior["posterior"], self.design, v)
        if data_scale and v.n_eval is not None:
            ll = ll + np.log(v.n_eval)
        return ll

    def log_likelihood_tree(self, data_scale: bool = True):
        """A copy of the posterior DataTree with a ``log_likelihood`` group (for arviz loo)."""
        import xarray as xr

        post = self.posterior["posterior"]
        ll = self.log_likelihood(data_scale)
        ds = xr.Dataset({"y": (("chain", "draw", "obs"), ll)},
                        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                "obs": np.arange(self.design.n_obs)})
        tree = self.posterior.copy()
        tree["log_likelihood"] = xr.DataTree(ds)
        return tree

    def posterior_predictive(self, random_seed=None) -> np.ndarray:
        """Posterior predictive scores on the data scale, shape (chain, draw, obs)."""
        from .likelihoods import posterior_predictive_draws

        return posterior_predictive_draws(self.posterior["posterior"], self.design,
                                          self.variants, random_seed=random_seed)

    def predict(self, new_df: pd.DataFrame, *, kind: str = "mean", ci_prob: float = 0.9,
                random_seed=None, return_draws: bool = False):
        """Posterior (predictive) scores at the rows of ``new_df``, aligned with its index.

        ``mean``, ``sd``, interval, ``extrapolated``, ``new_task``; tasks and groups not in
        the fit are drawn from the population. See :func:`bayesslope.predict.predict`.
        """
        from .predict import predict

        return predict(self, new_df, kind=kind, ci_prob=ci_prob, random_seed=random_seed,
                       return_draws=return_draws)

    def required_upstream(self, target, *, ci_prob: float = 0.9, condition=None
                          ) -> pd.DataFrame:
        """Posterior of the x at which each task's mean score reaches ``target``.

        Median, interval, ``p_reachable``, ``beyond_observed``; indexed by task. See
        :func:`bayesslope.predict.required_upstream`.
        """
        from .predict import required_upstream

        return required_upstream(self, target, ci_prob=ci_prob, condition=condition)

    def data_scale_slope(self, at_x: float | None = None, ci_prob: float = 0.9) -> pd.DataFrame:
        """Oriented d(mean score)/dx per task at ``at_x`` (data units; default ``x_ref``).

        For the identity link this is ``slope``; under a probit or logit link it is
        ``(1 - chance - lapse) F'(eta(at_x)) slope``, the change of the expected score per
        unit of oriented x at that point.
        """
        return summaries.data_scale_slope_summary(self, at_x, ci_prob)

    def condition_differences(self, rope: float = 0.0, ci_prob: float = 0.9) -> pd.DataFrame:
        """Pairwise differences of the per-condition population slopes and P(|diff| > rope)."""
        return summaries.condition_difference_summary(self.posterior, rope, ci_prob)

    # -- decisions and tables ------------------------------------------------------
    @property
    def orientation(self) -> dict:
        """Which direction is better for x and (per task) for y."""
        return {"x_better": self.design.x_better,
                "y_better": dict(zip(self.design.tasks, self.design.y_better, strict=True))}

    @property
    def priors(self) -> dict:
        """The priors actually used (data units)."""
        return self.spec["model"]["priors"]

    def summary(self, ci_prob: float = 0.9, rope=None, decision_prob: float = 0.95
                ) -> pd.DataFrame:
        """Per-task transfer slopes; see :func:`bayesslope.summaries.slope_summary`.

        Includes the orientation (``x_better``, ``y_better``) of each row.

        Parameters
        ----------
        ci_prob : float, default 0.9
        rope : float or (float, float), optional
            Region of practical equivalence for the oriented slope (data units): a
            half-width ``r > 0`` (the region ``[-r, r]``) or bounds ``(lo, hi)`` with
            ``lo <= 0 <= hi``. Without it ``p_negative`` is P(slope < 0). With it
            ``p_negative`` becomes P(slope < lo) ("negative" means below the ROPE) and
            ``p_rope`` = P(lo <= slope <= hi), ``p_positive`` = P(slope > hi) (the three
            sum to 1) and ``decision`` follow; see :mod:`bayesslope.decisions`.
        decision_prob : float, default 0.95
            With ``rope``: ``decision`` is "negative", "practically zero" or "positive"
            when that region has at least this posterior probability, else "undecided".
            Must be in (0.5, 1).
        """
        from . import decisions

        if rope is None:
            decisions._check_prob("decision_prob", decision_prob, lo=0.5)
        table = summaries.slope_summary(self.posterior, self.design.task_table(), ci_prob,
                                        self._diagnostics_cache)
        table["x_better"] = self.design.x_better
        table["y_better"] = list(self.design.y_better)
        if rope is not None:
            table = decisions.add_rope_columns(table, self.posterior, rope, decision_prob)
        return table

    def rank_tasks(self, *, k: int = 3, ci_prob: float = 0.9) -> pd.DataFrame:
        """Posterior of each task's rank by transfer slope (1 = flattest / most negative).

        Mean rank, equal-tailed rank interval, ``p_flattest``, ``p_bottom_<k>``,
        ``p_negative``, sorted by mean rank; see :func:`bayesslope.decisions.rank_summary`.
        """
        from .decisions import rank_summary

        return rank_summary(self.posterior, k=k, ci_prob=ci_prob)

    def negative_tasks(self, max_false_sign_rate: float = 0.05, rope=None) -> pd.DataFrame:
        """The largest list of tasks to call negative at an expected false-sign rate.

        Tasks by decreasing P(negative) while the mean of ``1 - P(negative)`` over the list
        stays at most ``max_false_sign_rate``; with ``rope`` "negative" means below the
        ROPE (as in :meth:`summary`). See :func:`bayesslope.decisions.negative_task_set`.
        """
        from . import decisions

        if rope is None:
            p = summaries.prob_negative_transfer(self.posterior)
        else:
            p = decisions.rope_probabilities(self.posterior, rope)["p_negative"]
        table = decisions.negative_task_set(p, max_false_sign_rate)
        if rope is not None:
            table.attrs["rope"] = decisions.parse_rope(rope)
        return table

    def p_negative_transfer(self) -> pd.Series:
        """P(transfer slope < 0 | data) per task."""
        return summaries.prob_negative_transfer(self.posterior)

    def population(self, ci_prob: float = 0.9, covariates: dict | None = None
                   ) -> pd.DataFrame:
        """Population slope mean and spread, and P(a new task has negative transfer).

        Parameters
        ----------
        ci_prob : float, default 0.9
        covariates : dict, optional
            For a fit with ``task_covariates``: the new task's value of every covariate
            (numbers in the covariate's units, levels of categorical ones). Adds rows
            ``slope_mu_at_covariates``, ``intercept_mu_at_covariates`` and gives
            P(negative) of a task with those covariates. Without it P(negative) is
            averaged over the fitted tasks' covariates. See
            :func:`bayesslope.summaries.population_summary`.
        """
        from .covariates import covariate_row

        cov = self.covariates
        if covariates is not None and cov is None:
            from .exceptions import DataValidationError

            raise DataValidationError(
                "covariates= needs a fit with task_covariates=; this fit has none")
        z_new = None if covariates is None else covariate_row(cov, covariates)
        table = summaries.population_summary(self.posterior, ci_prob, self._diagnostics_cache,
                                             covariates=cov, z_new=z_new)
        if covariates is not None:
            table.attrs["covariates"] = dict(covariates)
        return table

    # -- task covariates (slope meta-regression) --------------------------------------
    @property
    def covariates(self):
        """The :class:`~bayesslope.covariates.TaskCovariates` of the fit, or None."""
        from .covariates import TaskCovariates

        info = self.spec.get("covariates")
        return None if info is None else TaskCovariates.from_dict(info)

    def _require_covariates(self):
        cov = self.covariates
        if cov is None:
            from .exceptions import DataValidationError

            raise DataValidationError(
                "this fit has no task covariates: fit with task_covariates=...")
        return cov

    def covariate_effects(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Effect of each task covariate on the population mean slope and intercept.

        One row per (covariate column, parameter): ``mean``, ``sd``, interval, ``p_positive``
        in data units per covariate unit (a level vs the reference for a categorical
        covariate). See :func:`bayesslope.summaries.covariate_effect_summary`.
        """
        return summaries.covariate_effect_summary(self.posterior, self._require_covariates(),
                                                  ci_prob)

    def variance_explained(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Share of the between-task variance the covariates explain (group-level R^2).

        Per draw ``1 - var_t(slope_t - slope_mu_t) / var_t(slope_t)`` (rows ``slope`` and
        ``intercept``), with mean and interval. See
        :func:`bayesslope.summaries.variance_explained_summary`.
        """
        return summaries.variance_explained_summary(self.posterior,
                                                    self._require_covariates(), ci_prob)

    def diagnostics(self) -> pd.DataFrame:
        """Max R-hat and min bulk/tail ESS per variable; ``attrs['divergences']``.

        ``attrs['dependence']`` is the residual clustering table (:meth:`dependence`).
        """
        names = [v for v in self.posterior["posterior"].data_vars]
        table = sampling_diagnostics(self.posterior, names, self._diagnostics_cache)
        table.attrs["dependence"] = self.dependence()
        return table

    def dependence(self) -> pd.DataFrame | None:
        """Residual clustering by the frame's unmodelled columns, checked at fit time.

        One row per tested column: ``statistic``, permutation ``p_value``, ``icc``,
        ``inflation`` (how many times too narrow the slope intervals may be) and
        ``flagged``; ``attrs['skipped']`` gives why other columns were not tested. ``None``
        when the fit was made with ``check_dependence=False``. See
        :mod:`bayesslope.dependence`.
        """
        from .dependence import dependence_from_dict

        info = self.spec.get("dependence")
        return None if info is None else dependence_from_dict(info)

    # -- plots ------------------------------------------------------------------
    def plot_tasks(self, **kwargs):
        """Per-task panels: data, posterior mean line, credible band. See plots.plot_tasks."""
        from .plots import plot_tasks

        return plot_tasks(self, **kwargs)

    def plot_slopes(self, **kwargs):
        """Forest plot of transfer slopes with P(negative). See plots.plot_slopes."""
        from .plots import plot_slopes

        return plot_slopes(self, **kwargs)

    def plot_population(self, **kwargs):
        """Density of a new task's slope with P(negative). See plots.plot_population."""
        from .plots import plot_population

        return plot_population(self, **kwargs)

    def plot_ranks(self, ax=None, **kwargs):
        """Posterior ranks by transfer slope with intervals. See plot_decisions.plot_ranks."""
        from .plot_decisions import plot_ranks

        return plot_ranks(self, ax=ax, **kwargs)

    def plot_condition_differences(self, ax=None, **kwargs):
        """Each condition's population slope minus the reference's, with P(> 0).

        See :func:`bayesslope.plot_conditions.plot_condition_differences`.
        """
        from .plot_conditions import plot_condition_differences

        return plot_condition_differences(self, ax=ax, **kwargs)

    # -- posterior predictive checks (bayesslope.checks, arviz-stats underneath) ------
    def plot_ppc(self, *, task=None, ci_prob: float = 0.9, random_seed=None, **kwargs):
        """Data against posterior predictive intervals per task. See checks.plot_ppc."""
        from .checks import plot_ppc

        return plot_ppc(self, task=task, ci_prob=ci_prob, random_seed=random_seed, **kwargs)

    def loo_pit(self, random_seed=None) -> pd.DataFrame:
        """LOO-PIT value of every row (arviz-stats). See checks.loo_pit."""
        from .checks import loo_pit

        return loo_pit(self, random_seed=random_seed)

    def plot_loo_pit(self, random_seed=None, **kwargs):
        """ECDF of the LOO-PIT values with a band (arviz-plots). See checks.plot_loo_pit."""
        from .checks import plot_loo_pit

        return plot_loo_pit(self, random_seed=random_seed, **kwargs)

    # -- storage ------------------------------------------------------------------
    def to_netcdf(self, path: str | Path) -> Path:
        """Write posterior, design and spec to one netCDF file (no pickle).

        Returns
        -------
        pathlib.Path
        """
        import xarray as xr

        d = self.design
        tree = self.posterior.copy()
        design_ds = xr.Dataset(
            {
                "x": ("obs", d.x),
                "y": ("obs", d.y),
                "task_idx": ("obs", d.task_idx.astype(np.int64)),
                "row_label": ("obs", np.asarray([str(r) for r in d.row_labels], dtype=object)),
            }
        )
        tree["bayesslope_design"] = xr.DataTree(design_ds)
        spec = {**self.spec, "design": d.to_dict(), "format_version": _FORMAT_VERSION}
        # spec["variants"] describes the variant options; their arrays travel as a group.
        arrays = self.variants.arrays()
        tree["bayesslope_variants"] = xr.DataTree(
            xr.Dataset({k: ("obs", v) for k, v in arrays.items()})
        )
        tree.attrs = {**tree.attrs, _SPEC_ATTR: json.dumps(spec)}
        path = Path(path)
        tree.to_netcdf(path, engine="h5netcdf")
        return path

    def __repr__(self) -> str:
        d = self.design
        post = self.posterior["posterior"]
        return (
            f"TransferFit({d.n_tasks} tasks, {d.n_obs} observations, "
            f"{post.sizes['chain']} chains x {post.sizes['draw']} draws, "
            f"x_better={d.x_better!r}, formulation={self.formulation!r})"
        )


def load_fit(path: str | Path) -> TransferFit:
    """Read a fit written by :meth:`TransferFit.to_netcdf`: a synonym of :func:`bayesslope.load`.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    TransferFit
        Identical summaries to the fit that was saved (or the ``TransferMatrix``, if the
        file holds one).

    Raises
    ------
    DataValidationError
        ``not a readable bayesslope result: <path> (<reason>)``.
    """
    from .io import load

    return load(path)


def fit_from_tree(tree, spec: dict) -> TransferFit:
    """The :class:`TransferFit` of an opened file (``spec``: its parsed JSON attribute).

    Raises ``ValueError`` when the stored data do not match their hash.
    """
    ds = tree["bayesslope_design"].to_dataset()
    info = spec.pop("design")
    version = spec.pop("format_version", None)
    if version != _FORMAT_VERSION:
        raise ValueError(f"file format version {version!r}; this bayesslope reads version "
                         f"{_FORMAT_VERSION} (refit and save again)")
    design = TransferDesign(
        tasks=tuple(info["tasks"]),
        task_idx=ds["task_idx"].values.astype(np.int64),
        x=ds["x"].values.astype(np.float64),
        y=ds["y"].values.astype(np.float64),
        row_labels=ds["row_label"].values.astype(str),
        x_better=info["x_better"],
        y_better=tuple(info["y_better"]),
        x_ref=info["x_ref"],
        x_scale=info["x_scale"],
        y_scale=info["y_scale"],
        columns=info["columns"],
        n_dropped=info["n_dropped"],
    )
    if design.data_hash() != info["data_hash"]:
        raise ValueError("the stored data do not match their hash")
    del tree["bayesslope_design"]
    vds = tree["bayesslope_variants"].to_dataset()
    variants = VariantData.from_parts(spec["variants"], {k: vds[k].values for k in vds.data_vars})
    del tree["bayesslope_variants"]
    attrs = dict(tree.attrs)
    attrs.pop(_SPEC_ATTR)
    tree.attrs = attrs
    return TransferFit(posterior=tree, design=design, spec=spec, variants=variants)
