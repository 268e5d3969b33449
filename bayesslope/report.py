"""TransferFit -> a report folder: summary.csv, fit.nc, figures and report.md."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_report"]


def write_report(fit, out_dir: str | Path, *, ci_prob: float = 0.9) -> dict[str, Path]:
    """Write the summaries, the fit file and the figures of a fit.

    Parameters
    ----------
    fit : TransferFit
    out_dir : str or pathlib.Path
        Created if missing.
    ci_prob : float, default 0.9

    Returns
    -------
    dict of str to pathlib.Path
        ``summary``, ``population``, ``diagnostics``, ``fit``, ``tasks_png``,
        ``slopes_png``, ``report``.
    """
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": out / "summary.csv",
        "population": out / "population.csv",
        "diagnostics": out / "diagnostics.csv",
        "fit": out / "fit.nc",
        "tasks_png": out / "tasks.png",
        "slopes_png": out / "slopes.png",
        "report": out / "report.md",
    }
    summary = fit.summary(ci_prob)
    population = fit.population(ci_prob)
    diagnostics = fit.diagnostics()
    summary.to_csv(paths["summary"])
    population.to_csv(paths["population"])
    diagnostics.to_csv(paths["diagnostics"])
    fit.to_netcdf(paths["fit"])
    for key, fig in (("tasks_png", fit.plot_tasks(ci_prob=ci_prob)),
                     ("slopes_png", fit.plot_slopes(ci_prob=ci_prob))):
        fig.savefig(paths[key], dpi=150)
        plt.close(fig)
    cols = [c for c in summary.columns if c in ("mean", "sd", "p_negative", "r_hat", "ess_bulk")
            or c.startswith("eti")]
    lines = [
        "# bayesslope report",
        "",
        f"{fit!r}",
        "",
        f"Orientation: x better = {fit.design.x_better}; transfer slope > 0 means a better "
        "upstream score goes with a better downstream score.",
        "",
        "## Transfer slope per task",
        "",
        summary[cols + ["n", "x_range", "weak"]].to_markdown(floatfmt=".4g")
        if _has_tabulate() else summary[cols].to_string(),
        "",
        "## Population",
        "",
        population.to_string(float_format=lambda v: f"{v:.4g}"),
        "",
        f"Divergences: {diagnostics.attrs['divergences']}; max R-hat "
        f"{diagnostics['r_hat_max'].max():.4f}; "
        f"min bulk ESS {diagnostics['ess_bulk_min'].min():.0f}.",
        "",
        *_dependence_lines(fit),
        "![tasks](tasks.png)",
        "",
        "![slopes](slopes.png)",
        "",
    ]
    paths["report"].write_text("\n".join(lines))
    return paths


def _dependence_lines(fit) -> list[str]:
    """The residual dependence check's verdict and table (see docs/dependence.md)."""
    table = fit.dependence()
    if table is None:
        return ["Residual dependence check: off (check_dependence=False).", ""]
    if table.empty:
        return ["Residual dependence check: no candidate grouping column to test.", ""]
    flagged = [str(c) for c in table.index[table["flagged"]]]
    verdict = (f"residuals cluster by {', '.join(repr(c) for c in flagged)}; slope intervals "
               "may be too narrow (inflation column; docs/dependence.md)" if flagged
               else "no column's residuals cluster clearly")
    return ["## Dependent rows", "", f"Residual dependence check: {verdict}.", "", "```",
            table.to_string(float_format=lambda v: f"{v:.3g}"), "```", ""]


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
