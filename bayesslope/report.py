"""A fit or a transfer matrix -> a report folder: tables, figures, report.md and report.html.

:func:`write_report` writes the full-precision tables (CSV), the result file (``fit.nc`` or
``matrix.nc``, readable with :func:`bayesslope.load`), every figure as PNG and PDF, and one
report as Markdown and as a self-contained HTML page (figures embedded). The report's numbers
are rounded for reading (:mod:`bayesslope.report_format`); it states the model as fitted,
the library versions, and each diagnostic problem with its fix. Used by ``make demo`` and
the ``bayesslope`` command.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from .report_format import (
    Figure,
    Heading,
    Items,
    Table,
    Text,
    format_ess,
    format_interval,
    format_prob,
    format_rhat,
    format_sig,
    to_html,
    to_markdown,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["write_report", "report_files", "result_kind", "has_conditions"]

# Files per result kind; each figure stem is saved as <stem>.png and <stem>.pdf.
_TABLES = {"fit": ("summary.csv", "population.csv", "diagnostics.csv"),
           "matrix": ("summary.csv", "diagnostics.csv")}
_FIGURES = {"fit": ("tasks", "slopes", "population"), "matrix": ("heatmap",)}
# A fit with condition= adds the condition-differences figure.
CONDITION_FIGURE = "conditions"
RESULT_FILES = {"fit": "fit.nc", "matrix": "matrix.nc"}
# Beyond these the report shows a selection and points to the CSV (a page stays readable).
MAX_TASK_PANELS = 60
MAX_TABLE_ROWS = 200
TOP_PAIRS = 20


def result_kind(result) -> str:
    """``"fit"`` for a TransferFit, ``"matrix"`` for a TransferMatrix; else a TypeError."""
    from .pairs.result import TransferMatrix
    from .result import TransferFit

    if isinstance(result, TransferFit):
        return "fit"
    if isinstance(result, TransferMatrix):
        return "matrix"
    raise TypeError(
        "write_report takes a TransferFit (from bs.fit_hierarchical or bs.load) or a "
        f"TransferMatrix (from bs.fit_transfer_matrix or bs.load); got {type(result).__name__}")


def report_files(kind: str, *, save_result: bool = True,
                 conditions: bool = False) -> tuple[str, ...]:
    """Names of the files :func:`write_report` writes for a result ``kind``.

    Parameters
    ----------
    kind : {"fit", "matrix"}
    save_result : bool, default True
        Whether the result file (``fit.nc`` / ``matrix.nc``) is among them.
    conditions : bool, default False
        A fit with ``condition=``: its condition-differences figure is among them.
    """
    if kind not in _TABLES:
        raise ValueError(f"kind should be 'fit' or 'matrix' but got {kind!r}")
    names = list(_TABLES[kind])
    if save_result:
        names.append(RESULT_FILES[kind])
    stems = _FIGURES[kind] + ((CONDITION_FIGURE,) if conditions and kind == "fit" else ())
    for stem in stems:
        names += [f"{stem}.png", f"{stem}.pdf"]
    return (*names, "report.md", "report.html")


def write_report(result, out_dir: str | Path, *, overwrite: bool = False,
                 save_result: bool = True, ci_prob: float = 0.9) -> dict[str, Path]:
    """Write the report of a fit or a transfer matrix into a folder.

    Parameters
    ----------
    result : TransferFit or TransferMatrix
        From :func:`bayesslope.fit_hierarchical`, :func:`bayesslope.fit_transfer_matrix`
        or :func:`bayesslope.load`.
    out_dir : str or pathlib.Path
        Folder, created if missing.
    overwrite : bool, default False
        Replace report files already in ``out_dir``; without it they raise.
    save_result : bool, default True
        Also write the result itself (``fit.nc`` / ``matrix.nc``).
    ci_prob : float, default 0.9
        Probability of the reported equal-tailed intervals.

    Returns
    -------
    dict of str to pathlib.Path
        For a fit: ``summary``, ``population``, ``diagnostics`` (CSV), ``fit`` (when
        saved), ``tasks_png``, ``tasks_pdf``, ``slopes_png``, ``slopes_pdf``,
        ``population_png``, ``population_pdf``, with ``condition=`` also
        ``conditions_png``, ``conditions_pdf`` (and a section on the conditions' slope
        differences), ``report`` (Markdown), ``html``. For a
        matrix: ``summary``, ``diagnostics``, ``matrix``, ``heatmap_png``, ``heatmap_pdf``,
        ``report``, ``html``.

    Raises
    ------
    TypeError
        ``result`` is neither a TransferFit nor a TransferMatrix.
    NotADirectoryError
        ``out_dir`` is an existing file.
    FileExistsError
        ``out_dir`` already holds report files and ``overwrite`` is False (nothing is
        written).

    Examples
    --------
    >>> import bayesslope as bs
    >>> fit = bs.fit_hierarchical(bs.load_dataset("pythia"), group="model")  # doctest: +SKIP
    >>> paths = bs.write_report(fit, "report")  # doctest: +SKIP
    >>> paths["html"]  # doctest: +SKIP
    PosixPath('report/report.html')
    """
    from .options import check_bool, check_ci_prob

    kind = result_kind(result)
    overwrite = check_bool("overwrite", overwrite)
    save_result = check_bool("save_result", save_result)
    ci_prob = check_ci_prob(ci_prob)
    out = _prepare_out(Path(out_dir), report_files(kind, save_result=save_result,
                                                   conditions=has_conditions(result)),
                       overwrite)
    if kind == "fit":
        blocks, paths, title = _fit_report(result, out, save_result, ci_prob)
    else:
        blocks, paths, title = _matrix_report(result, out, save_result, ci_prob)
    paths["report"] = out / "report.md"
    paths["report"].write_text(to_markdown(blocks), encoding="utf-8")
    paths["html"] = out / "report.html"
    paths["html"].write_text(to_html(blocks, title), encoding="utf-8")
    return paths


def has_conditions(result) -> bool:
    """Whether ``result`` is a fit with ``condition=`` (per-condition population slopes)."""
    post = getattr(result, "posterior", None)
    return post is not None and "slope_mu_condition" in post["posterior"]


def _prepare_out(out: Path, names: tuple[str, ...], overwrite: bool) -> Path:
    """Check the folder before writing anything into it, then create it."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{str(out)!r} is an existing file, not a folder")
    existing = [n for n in names if (out / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{str(out)!r} already holds {', '.join(existing)}; pass "
                              "overwrite=True to replace them, or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save_figure(fig, out: Path, stem: str, caption: str, paths: dict) -> Figure:
    """Save a matplotlib Figure as PNG and PDF, close it, and return its report block."""
    import matplotlib.pyplot as plt

    from .style import save_figure

    paths[f"{stem}_png"] = save_figure(fig, out / f"{stem}.png", dpi=150)
    paths[f"{stem}_pdf"] = save_figure(fig, out / f"{stem}.pdf")
    plt.close(fig)
    return Figure(png=paths[f"{stem}_png"].read_bytes(), file=f"{stem}.png", caption=caption,
                  other_files=(f"{stem}.pdf",))


def _pct(ci_prob: float) -> str:
    return f"{100 * ci_prob:g}%"


# -- a TransferFit -------------------------------------------------------------------------

def _fit_report(fit, out: Path, save_result: bool, ci_prob: float):
    paths: dict[str, Path] = {}
    summary = fit.summary(ci_prob)
    population = fit.population(ci_prob)
    diagnostics = fit.diagnostics()
    for key, table in (("summary", summary), ("population", population),
                       ("diagnostics", diagnostics)):
        paths[key] = out / f"{key}.csv"
        table.to_csv(paths[key])
    if save_result:
        paths["fit"] = fit.to_netcdf(out / "fit.nc")

    d = fit.design
    shown = list(d.tasks)
    if len(shown) > MAX_TASK_PANELS:  # the flattest and the steepest halves
        order = summary["mean"].sort_values(kind="stable").index
        half = MAX_TASK_PANELS // 2
        shown = [*order[:half], *order[-half:]]
    tasks_note = ("" if len(shown) == d.n_tasks else
                  f" ({len(shown)} of {d.n_tasks} tasks: the {len(shown) // 2} flattest and "
                  f"the {len(shown) // 2} steepest slopes)")
    tasks_kw = {"tasks": shown} if len(shown) < d.n_tasks else {}
    figures = [
        _save_figure(fit.plot_tasks(ci_prob=ci_prob, **tasks_kw), out, "tasks",
                     f"Data, posterior mean line and {_pct(ci_prob)} band per task"
                     f"{tasks_note}", paths),
        _save_figure(fit.plot_slopes(ci_prob=ci_prob), out, "slopes",
                     f"Transfer slope per task: mean and {_pct(ci_prob)} interval", paths),
        _save_figure(fit.plot_population(ci_prob=ci_prob), out, "population",
                     "Population distribution of a new task's slope; the shaded area is "
                     "P(a new task has negative transfer)", paths),
    ]
    condition_blocks = []
    if has_conditions(fit):
        condition_blocks = [
            Heading("Conditions"),
            *_condition_blocks(fit, ci_prob),
            _save_figure(fit.plot_condition_differences(ci_prob=ci_prob), out,
                         CONDITION_FIGURE, "Population slope of each condition minus the "
                         f"reference's: posterior density, mean and {_pct(ci_prob)} interval; "
                         "right: P(difference > 0)", paths),
        ]

    post = fit.posterior["posterior"]
    title = "bayesslope report: transfer fit"
    blocks = [
        Heading(title, 1),
        Text(f"{d.n_tasks} tasks, {d.n_obs} observations; {post.sizes['chain']} chains x "
             f"{post.sizes['draw']} draws. Full-precision tables: `summary.csv`, "
             "`population.csv`, `diagnostics.csv`"
             + ("; the fit itself: `fit.nc` (`bs.load`)." if save_result else ".")),
        Heading("Diagnostics"),
        *_fit_diagnostics(fit, diagnostics),
        Heading("Transfer slope per task"),
        Text(_orientation_text(fit)),
        _slope_table(summary, ci_prob),
        Heading("Population"),
        *_population_blocks(population, ci_prob),
        *condition_blocks,
        Heading("Figures"),
        *figures,
        Heading("Model"),
        _fit_model_table(fit),
        Heading("Priors", 3),
        _priors_table(fit.priors),
        Heading("Versions"),
        _versions_table(fit.spec.get("versions", {})),
    ]
    return blocks, paths, title


def _fit_diagnostics(fit, diagnostics: pd.DataFrame) -> list:
    """Sampler checks (with the fix when one fails), dependent rows, weak tasks."""
    from .exceptions import SamplingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checked = fit.check_sampling()  # the model's parameters, as checked at fit time
    fixes = [str(w.message) for w in caught if issubclass(w.category, SamplingWarning)]
    ess = checked[["ess_bulk_min", "ess_tail_min"]].min(axis=None)
    items = [f"Divergences: {int(diagnostics.attrs['divergences'])}.",
             f"Max R-hat: {format_rhat(checked['r_hat_max'].max())} (should be <= 1.01).",
             f"Min ESS (bulk and tail): {format_ess(ess)} (should be >= 400)."]
    if not fixes:
        items.append("Sampling: no problem found.")
    items += fixes
    problems = set(range(len(items) - len(fixes), len(items)))

    dep_items, dep_problems, dep_table = _dependence(fit, fit.variants.columns.get("group"))
    problems |= {len(items) + k for k in dep_problems}
    items += dep_items
    weak = fit.design.weak_reasons()
    if weak:
        listed = "; ".join(f"{t} ({', '.join(r)})" for t, r in list(weak.items())[:10])
        more = f"; and {len(weak) - 10} more" if len(weak) > 10 else ""
        items.append(f"Weak tasks, whose slopes come mostly from the population: {listed}{more}. "
                     "Fix: more data (or a wider x range) for them.")
    blocks = [Items(tuple(items), frozenset(problems))]
    if dep_table is not None:
        blocks.append(dep_table)
    return blocks


def _dependence(result, grouped: str | None, **how) -> tuple[list[str], set[int], Table | None]:
    """The residual dependence check: its DependenceWarning (if any) and its table.

    ``how`` goes to :func:`~bayesslope.dependence.warn_dependence` (``matrix=True``).
    """
    from .dependence import warn_dependence
    from .exceptions import DependenceWarning

    table = result.dependence()
    if table is None:
        return (["Residual dependence: not checked (fitted with check_dependence=False)."],
                set(), None)
    if table.empty:
        return (["Residual dependence: no candidate grouping column to test."], set(), None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_dependence(table, grouped=grouped, **how)
    messages = [str(w.message) for w in caught if issubclass(w.category, DependenceWarning)]
    if messages:
        items, problems = [f"Dependent rows: {m}" for m in messages], set(range(len(messages)))
    else:
        tested = ", ".join(f"`{c}`" for c in table.index)
        items, problems = [f"Residual dependence: no column's residuals cluster clearly "
                           f"(tested {tested})."], set()
    rows = tuple(
        (str(c), str(int(r["n_levels"])), format_sig(r["icc"]), format_prob(r["p_value"]),
         format_sig(r["inflation"]), "yes" if r["flagged"] else "no")
        for c, r in table.iterrows())
    return items, problems, Table(("column", "levels", "ICC", "p-value", "interval inflation",
                                   "flagged"), rows, frozenset({1, 2, 3, 4}))


def _orientation_text(fit) -> str:
    d = fit.design
    ys = set(d.y_better)
    y_text = (f"y {next(iter(ys))} is better" if len(ys) == 1
              else "y better per task (see `y_better` in summary.csv)")
    text = (f"Oriented slopes (x {d.x_better} is better, {y_text}): a positive slope means "
            "a better upstream score goes with a better downstream score.")
    if fit.link != "identity":
        text += (f" Under the {fit.link} link the slope is on the {fit.link} scale; "
                 "`fit.data_scale_slope()` gives d(score)/dx.")
    return text


def _slope_table(summary: pd.DataFrame, ci_prob: float) -> Table:
    lb, ub = (c for c in summary.columns if c.startswith("eti"))
    table = summary
    rows = []
    for task, r in table.iloc[:MAX_TABLE_ROWS].iterrows():
        rows.append((str(task), format_sig(r["mean"]), format_sig(r["sd"]),
                     format_interval(r[lb], r[ub]), format_prob(r["p_negative"]),
                     format_rhat(r["r_hat"]), format_ess(r["ess_bulk"]), str(int(r["n"])),
                     format_sig(r["x_range"]), str(r.get("weak", "") or "")))
    if len(table) > MAX_TABLE_ROWS:
        rows.append((f"... {len(table) - MAX_TABLE_ROWS} more in summary.csv",
                     *[""] * 9))
    return Table(("task", "slope mean", "sd", f"{_pct(ci_prob)} interval", "P(negative)",
                  "R-hat", "ESS bulk", "n", "x range", "weak"), tuple(rows),
                 frozenset(range(1, 9)))


def _population_blocks(population: pd.DataFrame, ci_prob: float) -> list:
    lb, ub = (c for c in population.columns if c.startswith("eti"))
    params = population.drop(index="p_negative_new_task", errors="ignore")
    rows = tuple(
        (str(p), format_sig(r["mean"]), format_sig(r["sd"]), format_interval(r[lb], r[ub]),
         format_rhat(r.get("r_hat")), format_ess(r.get("ess_bulk")))
        for p, r in params.iterrows())
    blocks: list = [Table(("parameter", "mean", "sd", f"{_pct(ci_prob)} interval", "R-hat",
                           "ESS bulk"), rows, frozenset(range(1, 6)))]
    if "p_negative_new_task" in population.index:
        p = population.loc["p_negative_new_task", "mean"]
        blocks.append(Text(f"P(a new task has negative transfer): {format_prob(p)}."))
    return blocks


def _condition_blocks(fit, ci_prob: float) -> list:
    """Each condition's population slope and every pairwise difference (b - a)."""
    import numpy as np

    post = fit.posterior["posterior"]["slope_mu_condition"]
    names = [str(c) for c in post["condition"].values]
    q = ((1 - ci_prob) / 2, (1 + ci_prob) / 2)
    levels = []
    for c in post["condition"].values:
        d = post.sel(condition=c).values.ravel()
        lo, hi = (float(v) for v in np.quantile(d, q))
        levels.append((str(c), format_sig(d.mean()), format_sig(d.std(ddof=1)),
                       format_interval(lo, hi)))
    diffs = fit.condition_differences(ci_prob=ci_prob)
    lb, ub = (c for c in diffs.columns if c.startswith("eti"))
    rows = tuple((str(k), format_sig(r["mean"]), format_sig(r["sd"]),
                  format_interval(r[lb], r[ub]), format_prob(r["p_positive"]))
                 for k, r in diffs.iterrows())
    column = fit.variants.columns.get("condition")
    return [
        Text(f"Population slope per condition{f' of `{column}`' if column else ''} "
             f"(oriented, data units; reference: {names[0]}). Each task's slope in a "
             "condition is its reference slope plus the condition's shift, shared by the "
             "tasks."),
        Table(("condition", "population slope mean", "sd", f"{_pct(ci_prob)} interval"),
              tuple(levels), frozenset({1, 2, 3})),
        Text("Differences of the population slopes (b - a: positive means b transfers "
             "more); full precision: `fit.condition_differences()`."),
        Table(("difference", "mean", "sd", f"{_pct(ci_prob)} interval", "P(> 0)"), rows,
              frozenset({1, 2, 3, 4})),
    ]


def _fit_model_table(fit) -> Table:
    d, v, model = fit.design, fit.variants, fit.spec["model"]
    sigma = {False: "one, shared by all tasks", True: "one per task",
             "pooled": "one per task, partially pooled"}.get(model.get("per_task_sigma"),
                                                              str(model.get("per_task_sigma")))
    if fit.likelihood in ("binomial", "beta_binomial"):
        sigma = "none (counts: the noise is the likelihood's own)"
    cols = {**d.columns, **{k: c for k, c in v.columns.items() if c is not None}}
    group = v.columns.get("group")
    condition = v.columns.get("condition")
    s = fit.spec.get("sampler", {})
    centered = len(model.get("centered_tasks", []))
    rows = [
        ("formulation", str(fit.formulation)),
        ("shape", str(fit.shape)),
        ("link", str(fit.link)),
        ("likelihood", str(fit.likelihood)
         + (" (counts='average': y * n_eval used unrounded)"
            if getattr(v, "counts", "whole") == "average" else "")),
        ("lapse", str(v.lapse)),
        ("noise sd", sigma),
        ("intercept-slope correlation", "modelled (LKJ)" if model.get("correlated")
         else "not modelled"),
        ("parameterization", f"{model.get('parameterization')} ({centered} of {d.n_tasks} "
                             "tasks centered)"),
        ("group", "none" if not group else
         f"`{group}` (nested: {len(v.groups)} task x group cells)" if v.group_nesting == "nested"
         else f"`{group}` (crossed: {len(v.groups)} levels shared by the tasks)"),
        ("condition", f"`{condition}` (levels {', '.join(map(str, v.conditions))})"
         if condition else "none"),
        ("columns", ", ".join(f"{k}=`{c}`" for k, c in cols.items())),
        ("orientation", f"x {d.x_better} is better; y: "
                        + ", ".join(f"{w} is better for {list(d.y_better).count(w)} task(s)"
                                    for w in sorted(set(d.y_better)))),
        ("x_ref", format_sig(d.x_ref)),
        ("sampler", f"{s.get('sampler', 'pymc')} NUTS, {s.get('chains')} chains x "
                    f"{s.get('draws')} draws ({s.get('tune')} tuning), target_accept "
                    f"{s.get('target_accept')}, random_seed {s.get('random_seed')}"),
    ]
    return Table(("setting", "value"), tuple(rows))


def _prior_text(spec) -> str:
    if not isinstance(spec, dict) or "dist" not in spec:
        return str(spec)
    args = ", ".join(f"{k}={format_sig(v) if isinstance(v, (int, float)) else v}"
                     for k, v in spec.items() if k != "dist")
    return f"{spec['dist']}({args})"


def _priors_table(priors: dict) -> Table:
    return Table(("parameter", "prior"),
                 tuple((str(k), _prior_text(v)) for k, v in priors.items()))


def _versions_table(versions: dict) -> Table:
    from importlib.metadata import PackageNotFoundError, version

    rows = [(str(k), str(v)) for k, v in versions.items()]
    for pkg, role in (("bayesslope", "this report"), ("matplotlib", "figures")):
        try:
            rows.append((f"{pkg} ({role})", version(pkg)))
        except PackageNotFoundError:
            pass
    return Table(("library", "version"), tuple(rows))


# -- a TransferMatrix ----------------------------------------------------------------------

def _matrix_report(tm, out: Path, save_result: bool, ci_prob: float):
    paths: dict[str, Path] = {}
    summary = tm.summary(ci_prob)
    diagnostics = tm.diagnostics()
    for key, table in (("summary", summary), ("diagnostics", diagnostics)):
        paths[key] = out / f"{key}.csv"
        table.to_csv(paths[key])
    if save_result:
        paths["matrix"] = tm.to_netcdf(out / "matrix.nc")
    figure = _save_figure(tm.plot(), out, "heatmap",
                          "Standardized transfer slope of every ordered pair (rows: source, "
                          "columns: target), compatible tasks together; marked cells: "
                          "P(negative) > 0.9", paths)
    d = tm.design
    title = "bayesslope report: transfer matrix"
    blocks = [
        Heading(title, 1),
        Text(f"{d.n_tasks} tasks, {len(summary)} ordered pairs, {len(d.units)} units "
             f"(`{d.columns.get('unit')}`). Slopes are oriented (higher is better for both "
             "tasks) and standardized: sd of the target per sd of the source, within the "
             "pair's shared units. Full-precision tables: `summary.csv`, `diagnostics.csv`"
             + ("; the result itself: `matrix.nc` (`bs.load`)." if save_result else ".")),
        Heading("Diagnostics"),
        *_matrix_diagnostics(tm, diagnostics),
        Heading(f"Pairs most likely to transfer negatively (top {min(TOP_PAIRS, len(summary))})"),
        _pairs_table(summary, ci_prob),
        Heading("Figure"),
        figure,
        Text("Tasks in clustered order: " + ", ".join(f"`{t}`" for t in tm.task_order()) + "."),
        Heading("Model"),
        _matrix_model_table(tm),
        Heading("Priors (standardized units)", 3),
        _priors_table(tm.priors),
        Heading("Versions"),
        _versions_table(tm.spec.get("versions", {})),
    ]
    return blocks, paths, title


def _matrix_diagnostics(tm, diagnostics: pd.DataFrame) -> list:
    """Sampler checks over pairs (with the fix) and, when the matrix has it, dependence."""
    items, problems = _matrix_sampling(diagnostics)
    table = None
    if hasattr(tm, "dependence"):  # the residual clustering check of fit_transfer_matrix
        dep_items, dep_problems, table = _dependence(tm, tm.design.columns.get("group"),
                                                     matrix=True)
        problems |= {len(items) + k for k in dep_problems}
        items += dep_items
    return [Items(tuple(items), frozenset(problems))] + ([table] if table is not None else [])


def _matrix_sampling(diagnostics: pd.DataFrame) -> tuple[list[str], set[int]]:
    a = diagnostics.attrs
    items = [f"Divergences: {a['divergences']} (population run and per-pair runs).",
             f"Pairs with R-hat > 1.01: {a['n_rhat_high']} of {a['n_pairs']}; with bulk "
             f"ESS < 400: {a['n_ess_low']}.",
             f"Population parameters: max R-hat "
             f"{format_rhat(diagnostics['r_hat_max'].drop('slope', errors='ignore').max())}, "
             f"min bulk ESS "
             f"{format_ess(diagnostics['ess_bulk_min'].drop('slope', errors='ignore').min())}."]
    if a["ok"]:
        items.append("Sampling: no problem found (no divergence; at least 99% of pairs pass "
                     "both checks).")
        return items, set()
    items.append("Sampling problems: the flagged pairs' intervals may be unreliable (see "
                  "diagnostics.csv and `tm.diagnostics().attrs`). Fix: more draws and tuning "
                  "(`--draws`, `--tune`) or a higher target_accept.")
    return items, {len(items) - 1}


def _pairs_table(summary: pd.DataFrame, ci_prob: float) -> Table:
    lb, ub = (c for c in summary.columns if c.startswith("eti"))
    top = summary.sort_values("p_negative", ascending=False, kind="stable").head(TOP_PAIRS)
    rows = tuple(
        (str(src), str(tgt), format_sig(r["mean"]), format_interval(r[lb], r[ub]),
         format_prob(r["p_negative"]), format_rhat(r["r_hat"]), format_ess(r["ess_bulk"]),
         str(int(r["n"])))
        for (src, tgt), r in top.iterrows())
    return Table(("source", "target", "slope mean", f"{_pct(ci_prob)} interval",
                  "P(negative)", "R-hat", "ESS bulk", "shared units"), rows,
                 frozenset(range(2, 8)))


def _matrix_model_table(tm) -> Table:
    s, d = tm.spec, tm.design
    sampler = s.get("sampler", {})
    n_eval = s.get("n_eval")
    rows = [
        ("likelihood", str(s.get("likelihood"))
         + (" (counts='average')" if s.get("counts") == "average" else "")),
        ("method", str(s.get("method"))),
        ("residual sd", "one per pair" if s.get("per_pair_sigma") else "one, shared"),
        ("group", f"`{s['group']}` ({len(d.groups)} levels)" if s.get("group") else "none"),
        ("n_eval", "none" if not n_eval else
         ", ".join(f"{k}: {v}" for k, v in list(n_eval.items())[:10])
         + (" ..." if len(n_eval) > 10 else "")),
        ("columns", ", ".join(f"{k}=`{c}`" for k, c in d.columns.items())),
        ("orientation", ", ".join(
            f"{w} is better for {n} task(s)" for w, n in sorted(Counter(
                "higher" if h else "lower" for h in d.higher_is_better.values()).items()))),
        ("min_shared", str(s.get("min_shared"))),
        ("draws kept", str(s.get("keep_draws"))),
        ("sampler", f"blackjax NUTS, {sampler.get('chains')} chains x {sampler.get('draws')} "
                    f"draws ({sampler.get('tune')} tuning), target_accept "
                    f"{sampler.get('target_accept')}, random_seed "
                    f"{sampler.get('random_seed')}"),
    ]
    return Table(("setting", "value"), tuple(rows))

