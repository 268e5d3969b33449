"""SBC figures: rank histograms (matplotlib) and ECDF-difference plots (arviz-plots)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from .sbc import SBCResult, chi_square_uniformity, param_groups, pit_from_ranks, pit_rng

__all__ = ["plot_rank_histograms", "plot_ecdf_differences"]


def _grid(n: int, ncols: int = 4) -> tuple[int, int]:
    ncols = min(ncols, n)
    return int(np.ceil(n / ncols)), ncols


def plot_rank_histograms(result: SBCResult, path: Path | str, *, band: float = 0.99) -> Path:
    """Rank histogram per parameter (and pooled task slopes) with a binomial band.

    The grey band holds each bin's count with probability ``band`` under uniformity
    (pointwise, as in Talts et al. 2018).

    Returns
    -------
    pathlib.Path
        The PNG written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = param_groups(result.params)
    panels = [(p, result.ranks(p)) for p in params]
    pooled = result.records[0].pooled_ranks
    panels += [(f"{v}[all tasks] (pooled, dependent)", result.pooled(v)) for v in pooled]
    nrows, ncols = _grid(len(panels))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False)
    n_values = result.n_rank_draws + 1
    for ax, (name, ranks) in zip(axes.flat, panels, strict=False):
        _, p, n_bins = chi_square_uniformity(ranks, result.n_rank_draws)
        counts = np.bincount(ranks * n_bins // n_values, minlength=n_bins)
        lo, hi = stats.binom.interval(band, len(ranks), 1 / n_bins)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(len(ranks) / n_bins, color="0.5", lw=0.8)
        ax.bar(np.arange(n_bins), counts, width=0.9, color="C0")
        ax.set_title(f"{name}\nchi2 p={p:.3f}", fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"{result.variant}: SBC rank histograms ({len(result.records)} sims, "
                 f"L={result.n_rank_draws}; band {band:.0%})", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_ecdf_differences(result: SBCResult, path: Path | str, *, seed: int = 0) -> Path:
    """ECDF difference of the (randomized) PIT of every parameter, via arviz-plots.

    Uses :func:`arviz_plots.plot_ecdf_pit` (method ``pot_c``; points that drive a
    rejection are highlighted and the p-value is printed in each panel).

    Returns
    -------
    pathlib.Path
        The PNG written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr
    from arviz_plots import plot_ecdf_pit

    params = param_groups(result.params)
    data = {
        p.replace("[", "_").replace("]", ""): (
            ("chain", "draw"),
            pit_from_ranks(result.ranks(p), result.n_rank_draws, pit_rng(seed, p))[None, :],
        )
        for p in params
    }
    tree = xr.DataTree.from_dict({"prior_sbc": xr.Dataset(data)})
    pc = plot_ecdf_pit(tree, backend="matplotlib", col_wrap=4)
    fig = pc.viz["figure"].item() if hasattr(pc.viz["figure"], "item") else pc.viz["figure"]
    fig.suptitle(f"{result.variant}: PIT ECDF difference ({len(result.records)} sims)")
    path = Path(path)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path
