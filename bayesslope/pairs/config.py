"""Options of ``fit_transfer_matrix`` -> one frozen, validated :class:`PairConfig`.

Every decision about the fit is taken here once (which likelihood, whether each pair has
its own residual sd, which sampler stage runs, how many pairs per chunk, whether draws are
kept) and recorded in the result's spec; the sampling code only reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

from ..exceptions import DataValidationError
from ..options import check_bool
from ..sampling import SamplerConfig
from ..variant_data import check_counts
from .priors import check_pair_priors

__all__ = ["LIKELIHOODS", "PairConfig", "resolve_config"]

LIKELIHOODS = ("normal", "student_t", "binomial")
# Kept slope draws are chunked so that one chunk's working set (a few float64 arrays of
# shape (chain, draw, chunk)) stays around 100-200 MB.
_CHUNK_VALUES = 1 << 22
# Pairs per compiled call of the per-pair NUTS paths: the unit of work of one thread and
# of the progress bar.
_PER_PAIR_CHUNK = 64
_KEEP_BYTES = 1 << 30  # keep draws by default while they take at most 1 GB


@dataclass(frozen=True)
class PairConfig:
    """The resolved options of one transfer-matrix fit.

    Attributes
    ----------
    likelihood : {"normal", "student_t", "binomial"}
    per_pair_sigma : bool
        A residual sd per pair (True) or one shared by every pair (False, ``"normal"``
        without ``group`` only). Student-t and grouped pairs always have their own.
    group : str or None
        Column grouping the units (a random intercept per group and pair).
    priors : dict
        Standardized-unit priors (checked; see :mod:`bayesslope.pairs.priors`).
    sampler : dict
        ``draws``, ``tune``, ``chains``, ``target_accept``, ``random_seed``,
        ``progressbar`` (checked by :class:`bayesslope.sampling.SamplerConfig`).
    dropna, min_shared, keep_draws, chunk_size
        As passed (``keep_draws``/``chunk_size`` filled in by :meth:`sized`).
    counts : {"whole", "average"}
        Binomial counts ``round(y * n)`` (whole numbers required) or ``y * n`` as is
        (accuracies averaged over subtasks), as in ``fit_hierarchical``.
    """

    likelihood: str
    per_pair_sigma: bool
    group: str | None
    priors: dict
    sampler: dict
    dropna: bool
    min_shared: int
    keep_draws: bool | None = None
    chunk_size: int | None = None
    counts: str = "whole"

    @property
    def per_pair_nuts(self) -> bool:
        """Each pair's coefficients by NUTS under a plug-in population prior."""
        return self.likelihood != "normal" or self.group is not None

    @property
    def method(self) -> str:
        """Name of the pair stage: ``collapsed-normal`` or ``per-pair-nuts-<likelihood>``."""
        if not self.per_pair_nuts:
            return "collapsed-normal"
        return f"per-pair-nuts-{self.likelihood}" + ("-grouped" if self.group else "")

    def sized(self, n_pairs: int) -> PairConfig:
        """Fill in ``keep_draws`` (under 1 GB) and ``chunk_size`` for ``n_pairs`` pairs."""
        s = self.sampler
        keep = self.keep_draws
        if keep is None:
            keep = 8 * s["chains"] * s["draws"] * 2 * n_pairs <= _KEEP_BYTES
        chunk = self.chunk_size
        if chunk is None:
            chunk = (_PER_PAIR_CHUNK if self.per_pair_nuts
                     else max(1, _CHUNK_VALUES // (s["chains"] * s["draws"])))
        return replace(self, keep_draws=keep, chunk_size=chunk)

    def to_dict(self) -> dict:
        """JSON-safe description (with ``method``)."""
        return {**asdict(self), "method": self.method}


def resolve_config(*, likelihood: str, per_pair_sigma, n_eval, group, priors: Mapping | None,
                   draws, tune, chains, target_accept, random_seed, progressbar, dropna,
                   keep_draws, chunk_size, min_shared, counts: str = "whole") -> PairConfig:
    """Check every argument of ``fit_transfer_matrix`` that does not need the data."""
    if likelihood not in LIKELIHOODS:
        raise DataValidationError(
            f"likelihood should be one of {list(LIKELIHOODS)}, got {likelihood!r}")
    per_pair_sigma = check_bool("per_pair_sigma", per_pair_sigma)
    if (n_eval is not None) != (likelihood == "binomial"):
        raise DataValidationError("n_eval is needed with likelihood='binomial', and only then")
    check_counts(counts, n_eval)
    if group is not None and likelihood != "normal":
        raise DataValidationError(
            f"group= is available with likelihood='normal' only, got {likelihood!r}")
    if not per_pair_sigma and (likelihood != "normal" or group is not None):
        raise DataValidationError(
            "per_pair_sigma=False (one residual sd shared by all pairs) is available with "
            "likelihood='normal' and no group= only")
    sampler = SamplerConfig(draws=draws, tune=tune, chains=chains,
                            target_accept=target_accept, random_seed=random_seed,
                            progressbar=progressbar)
    if sampler.tune < 1:
        raise DataValidationError(
            f"tune must be a positive integer for the transfer matrix (its warm-up adapts "
            f"the step size), got {tune!r}")
    if keep_draws is not None:
        keep_draws = check_bool("keep_draws", keep_draws)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(
            chunk_size, int) or chunk_size < 1):
        raise DataValidationError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return PairConfig(
        likelihood=likelihood, per_pair_sigma=per_pair_sigma, group=group,
        priors=check_pair_priors(priors),
        sampler={k: getattr(sampler, k) for k in ("draws", "tune", "chains", "target_accept",
                                                   "random_seed", "progressbar")},
        dropna=check_bool("dropna", dropna), min_shared=min_shared,
        keep_draws=keep_draws, chunk_size=chunk_size, counts=counts,
    )
