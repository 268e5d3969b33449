"""Figures: content, not only types (panels, labels, bands, marks, orientation, overlaps).

Most figures are drawn from TransferFit objects whose posterior draws are made up around
per-task least-squares lines (the names and shapes of a real posterior): no sampling, so
the module costs seconds. One small real backtest covers plot_backtest.
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import seed  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

import bayesslope as bs  # noqa: E402
from bayesslope import style as bstyle  # noqa: E402
from bayesslope.checks import plot_loo_pit, plot_ppc  # noqa: E402
from bayesslope.plots import plot_population, plot_slopes, plot_tasks  # noqa: E402

# -- synthetic fits ---------------------------------------------------------------------


def _frame(tasks, n=10, *, rng, lower=(), chance=None):
    """x a loss in [2, 4]; y per task a line (an accuracy, or a loss for ``lower``)."""
    rows = []
    for name in tasks:
        x = rng.uniform(2.0, 4.0, n)
        b = rng.normal(0.08, 0.04)
        if chance is None:
            y = 0.6 - b * (x - 3.0) + rng.normal(0, 0.015, n)
            if name in lower:
                y = 2.0 + b * (x - 3.0) + rng.normal(0, 0.015, n)
        else:  # above the floor: chance + (1 - chance) * Phi(eta)
            from scipy.special import ndtr

            y = chance + (1 - chance) * ndtr(0.3 - 0.8 * (x - 3.0) + rng.normal(0, 0.05, n))
        rows.append(pd.DataFrame({"task": name, "x": x, "y": y}))
    return pd.concat(rows, ignore_index=True)


def synthetic_fit(tasks, *, n=10, lower=(), chance=None, draws=100, k=0, sigma=None):
    """A TransferFit with made-up draws around each task's least-squares line (identity
    link), or around the probit line of the scores above ``chance``."""
    import xarray as xr
    from scipy.special import ndtri

    from bayesslope.data import prepare_design
    from bayesslope.variant_data import prepare_variants

    rng = np.random.default_rng(seed(300 + k))
    df = _frame(tasks, n, rng=rng, lower=lower, chance=chance)
    y_better = {t: ("lower" if t in lower else "higher") for t in tasks}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = prepare_design(df, x_better="lower", y_better=y_better)
        v = prepare_variants(df, d, link=None if chance is None else "probit", chance=chance)
    T, C, D = d.n_tasks, 2, draws
    a_hat, b_hat, se = np.empty(T), np.empty(T), np.empty(T)
    for j in range(T):
        m = d.task_idx == j
        y = d.y[m] if chance is None else ndtri(np.clip((d.y[m] - chance) / (1 - chance),
                                                        1e-3, 1 - 1e-3))
        X = np.column_stack([np.ones(m.sum()), d.x[m] - d.x_ref])
        coef, res, *_ = np.linalg.lstsq(X, y, rcond=None)
        a_hat[j], b_hat[j] = coef
        se[j] = np.sqrt(res[0] / (m.sum() - 2) / np.sum((d.x[m] - d.x[m].mean()) ** 2))
    z = rng.standard_normal((C, D, T))
    slope_data = b_hat + 2 * se * z
    intercept = a_hat + 0.3 * se * rng.standard_normal((C, D, T))
    slope = slope_data * d.task_sign  # sign is +-1: its own inverse
    cd, cdt = ("chain", "draw"), ("chain", "draw", "task")
    mu = rng.normal(slope.mean(), 0.01, (C, D))
    post = {"intercept": (cdt, intercept), "slope": (cdt, slope),
            "slope_data": (cdt, slope_data),
            "slope_std": (cdt, slope * d.x_scale / d.y_scale),
            "slope_mu": (cd, mu),
            "slope_sigma": (cd, np.abs(rng.normal(slope.std(), 0.005, (C, D)))),
            "intercept_mu": (cd, rng.normal(a_hat.mean(), 0.01, (C, D))),
            "intercept_sigma": (cd, np.abs(rng.normal(0.1, 0.01, (C, D)))),
            "sigma": (cd, np.abs(rng.normal(sigma or (0.02 if chance is None else 0.03), 0.001,
                                            (C, D))))}
    coords = {"task": list(d.tasks), "chain": np.arange(C), "draw": np.arange(D)}
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(post, coords=coords)})
    spec = {"model": {"formulation": "full", "priors": {}}}
    return bs.TransferFit(posterior=tree, design=d, spec=spec, variants=v)


LONG = [f"{w}_{k}" for k, w in enumerate(
    ["hendrycksTest-high_school_government_and_politics", "arc_challenge", "winogrande",
     "lambada_openai", "logiqa", "piqa", "sciq", "wsc"])]


@pytest.fixture(scope="module")
def fit8():
    """8 tasks with long names; 'logiqa_4' and 'piqa_5' are losses (lower is better)."""
    return synthetic_fit(LONG, lower=("logiqa_4", "piqa_5"))


@pytest.fixture(scope="module")
def fit60():
    return synthetic_fit([f"benchmark_task_{k:02d}" for k in range(60)], n=6, draws=60, k=1)


@pytest.fixture(scope="module")
def probit_fit():
    return synthetic_fit([f"t{k}" for k in range(5)], chance=0.25, n=12, k=2)


@pytest.fixture(autouse=True)
def _close_and_no_show(monkeypatch):
    """Every figure is closed after the test, and nothing may call plt.show()."""
    def refuse(*args, **kwargs):
        raise AssertionError("a plotting function called plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    yield
    plt.close("all")


# -- helpers that read a drawn figure -----------------------------------------------------


def _texts(fig):
    """Every visible, non-empty text drawn: tick labels, titles, axis and sup labels."""
    out = []
    axes = [a for a in fig.axes if a.get_visible()]
    axes += [c for a in axes for c in a.child_axes]  # secondary axes
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            out += [t for t in axis.get_ticklabels() if t.get_visible()]
        out += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        legend = ax.get_legend()
        if legend is not None:
            out += list(legend.get_texts())
    for sup in (fig._suptitle, fig._supxlabel, fig._supylabel):
        if sup is not None:
            out.append(sup)
    for legend in fig.legends:
        out += list(legend.get_texts())
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def overlapping(fig) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose bounding boxes overlap (by more than one pixel)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for t in _texts(fig):
        bb = t.get_window_extent(renderer)
        boxes.append((t.get_text(), bb.x0 + 1, bb.y0 + 1, bb.x1 - 1, bb.y1 - 1))
    bad = []
    for i, (s, x0, y0, x1, y1) in enumerate(boxes):
        for s2, u0, v0, u1, v1 in boxes[i + 1:]:
            if x0 < u1 and u0 < x1 and y0 < v1 and v0 < y1:
                bad.append((s, s2))
    return bad


def outside_figure(fig) -> list[str]:
    """Texts that stick out of the figure (clipped by a plain savefig)."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    w, h = fig.bbox.width, fig.bbox.height
    return [t.get_text() for t in _texts(fig)
            if (bb := t.get_window_extent(r)).x0 < -1 or bb.y0 < -1 or bb.x1 > w + 1
            or bb.y1 > h + 1]


def _visible_axes(fig):
    return [a for a in fig.axes if a.get_visible() and a.get_subplotspec() is not None]


def _band_and_line(ax, band_label):
    band = next(c for c in ax.collections
                if isinstance(c, PolyCollection) and c.get_label() == band_label)
    line = next(ln for ln in ax.lines if ln.get_label() == "posterior mean")
    return band, line


# -- plot_tasks ---------------------------------------------------------------------------


def test_plot_tasks_panels_titles_bands_orientation(fit8):
    fig = plot_tasks(fit8)
    axes = _visible_axes(fig)
    assert len(axes) == 8
    # Titles name the tasks, in the fit's order, with slope and P(neg) below.
    assert [a.get_title().split("\n")[0] for a in axes] == [
        bstyle.shorten(t, 28) for t in fit8.design.tasks]
    p = fit8.p_negative_transfer()
    for a, t in zip(axes, fit8.design.tasks, strict=True):
        assert f"P(neg) {p[t]:.2f}" in a.get_title()
    # Both bands contain the mean line at every interior grid point.
    for a in axes:
        for label in ("90% interval", "50% interval"):
            band, line = _band_and_line(a, label)
            x, y = line.get_xdata()[1:-1], line.get_ydata()[1:-1]
            poly = MplPath(band.get_paths()[0].vertices)
            assert poly.contains_points(np.column_stack([x, y])).all(), (a.get_title(), label)
    # better_right: x (a loss) runs high -> low; a loss y runs high -> low, an accuracy up.
    for a, t in zip(axes, fit8.design.tasks, strict=True):
        assert a.xaxis_inverted()
        assert a.yaxis_inverted() == (t in ("logiqa_4", "piqa_5"))
    assert "better" in fig._supxlabel.get_text() and "x" in fig._supxlabel.get_text()
    assert not overlapping(fig)
    # Without better_right: data order, the orientation written in the label.
    fig = plot_tasks(fit8, better_right=False)
    assert not any(a.xaxis_inverted() or a.yaxis_inverted() for a in _visible_axes(fig))
    assert "lower is better" in fig._supxlabel.get_text()


def test_axis_names_from_recorded_metrics_or_arguments(fit8):
    import dataclasses

    cols = {**fit8.design.columns, "x_metric": "lambada_log_ppl", "y_metric": "acc"}
    fit = dataclasses.replace(fit8, design=dataclasses.replace(fit8.design, columns=cols))
    fig = plot_tasks(fit, tasks=LONG[:2])
    assert fig._supxlabel.get_text() == "lambada_log_ppl (better \u2192)"
    assert fig._supylabel.get_text() == "acc (better \u2191)"
    fig = plot_tasks(fit8, tasks=LONG[:2], xlabel="loss", ylabel="score", better_right=False)
    assert fig._supxlabel.get_text() == "loss (lower is better)"
    assert fig._supylabel.get_text() == "score (higher is better)"


def test_plot_tasks_slope_of_the_drawn_line_matches_its_sign(fit8):
    """On oriented axes a positive transfer slope rises to the right (display space)."""
    fig = plot_tasks(fit8)
    fig.canvas.draw()
    mean = fit8.posterior["posterior"]["slope"].mean(("chain", "draw"))
    for a, t in zip(_visible_axes(fig), fit8.design.tasks, strict=True):
        line = next(ln for ln in a.lines if ln.get_label() == "posterior mean")
        pts = a.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
        rise = (pts[-1, 1] - pts[0, 1]) * np.sign(pts[-1, 0] - pts[0, 0])
        assert np.sign(rise) == np.sign(float(mean.sel(task=t))), t


def test_plot_tasks_60_tasks_two_column(fit60):
    fig = plot_tasks(fit60, style="two-column")
    assert fig.get_figwidth() == pytest.approx(7.0)
    assert len(_visible_axes(fig)) == 60
    assert not overlapping(fig)
    assert not outside_figure(fig)


def test_plot_tasks_one_column_and_axes(fit8):
    fig = plot_tasks(fit8, tasks=LONG[:4], style="one-column")
    assert fig.get_figwidth() == pytest.approx(3.3)
    assert len(_visible_axes(fig)) == 4
    assert not overlapping(fig)
    fig2, grid = plt.subplots(1, 2)
    assert plot_tasks(fit8, tasks=LONG[:2], axes=grid) is fig2
    with pytest.raises(ValueError, match="axes has 2 panels for 3 tasks"):
        plot_tasks(fit8, tasks=LONG[:3], axes=grid)
    with pytest.raises(ValueError, match="sharey=True"):
        plot_tasks(fit8, sharey=True)
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['nope'\]"):
        plot_tasks(fit8, tasks=["nope"])


def test_plot_tasks_probit_axis_and_chance_line(probit_fit):
    from scipy.special import ndtri

    fig = plot_tasks(probit_fit, yscale="probit")
    for a in _visible_axes(fig):
        chance = [ln for ln in a.lines if ln.get_label() == "chance"]
        assert len(chance) == 1 and np.allclose(chance[0].get_ydata(), 0.25)
        ticks = a.get_yticks()
        lo, hi = sorted(a.get_ylim())
        shown = ticks[(ticks >= lo) & (ticks <= hi)]
        assert len(shown) >= 2 and np.all((shown > 0) & (shown < 1))
        # Probit axis: equal steps of the probit of p are equal steps on screen.
        p = np.array([0.3, 0.5, 0.7])
        screen = a.transData.transform(np.column_stack([np.full(3, 3.0), p]))[:, 1]
        np.testing.assert_allclose(np.diff(screen) / np.diff(ndtri(p)),
                                   (np.diff(screen) / np.diff(ndtri(p)))[0], rtol=1e-6)
        band, line = _band_and_line(a, "90% interval")
        x, y = line.get_xdata()[1:-1], line.get_ydata()[1:-1]
        assert MplPath(band.get_paths()[0].vertices).contains_points(
            np.column_stack([x, y])).all()
    assert not overlapping(fig)
    fig = plot_tasks(probit_fit, chance=False, yscale="logit")
    assert not any(ln.get_label() == "chance" for a in fig.axes for ln in a.lines)
    levels = {"t0": 0.2, "t3": 0.5}  # per task; the others get none
    fig = plot_tasks(probit_fit, chance=levels)
    for a, t in zip(_visible_axes(fig), probit_fit.design.tasks, strict=True):
        drawn = [ln.get_ydata()[0] for ln in a.lines if ln.get_label() == "chance"]
        assert drawn == ([levels[t]] if t in levels else [])
    # t0 (the first panel) has none, the figure legend still names the chance line.
    fig = plot_tasks(probit_fit, chance={"t3": 0.5})
    assert "chance" in [t.get_text() for t in fig.legends[0].get_texts()]
    with pytest.raises(ValueError, match="yscale should be"):
        plot_tasks(probit_fit, yscale="log2")


# -- forest, population ---------------------------------------------------------------------


def _flat(fit, var="slope"):
    return fit.posterior["posterior"][var].transpose("chain", "draw", "task").values.reshape(
        -1, fit.design.n_tasks)


def test_plot_slopes_labels_probabilities_and_decisions(fit8):
    fig = plot_slopes(fit8)
    ax = fig.axes[0]
    draws = _flat(fit8)
    order = np.argsort(draws.mean(axis=0))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [bstyle.shorten(t, 40) for t in np.asarray(fit8.design.tasks)[order]]
    right = ax.child_axes[0]
    assert [t.get_text() for t in right.get_yticklabels()] == [
        f"{p:.2f}" for p in (draws < 0).mean(axis=0)[order]]
    assert ax.yaxis_inverted()  # the most negative on top
    assert not overlapping(fig)
    # With a ROPE: P(below) and the decision from the draws, at decision_prob 0.9.
    r = 0.05
    fig = plot_slopes(fit8, rope=r, decision_prob=0.9)
    right = fig.axes[0].child_axes[0]
    below, above = (draws < -r).mean(axis=0), (draws > r).mean(axis=0)
    inside = 1 - below - above
    for text, j in zip([t.get_text() for t in right.get_yticklabels()], order, strict=True):
        p, word = text.split(" ")
        assert p == f"{below[j]:.2f}"
        expect = ("neg" if below[j] >= 0.9 else "pos" if above[j] >= 0.9
                  else "zero" if inside[j] >= 0.9 else "?")
        assert word == expect
    assert not overlapping(fig)


def test_plot_slopes_top_and_bottom_k(fit60):
    fig = plot_slopes(fit60, top_k=5, style="one-column")
    ax = fig.axes[0]
    order = np.argsort(_flat(fit60).mean(axis=0))
    names = np.asarray(fit60.design.tasks)
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert shown == list(names[order[:5]]) + list(names[order[-5:]])
    assert any("50 tasks not shown" in t.get_text() for t in ax.texts)
    assert fig.get_figwidth() == pytest.approx(3.3)
    assert not overlapping(fig)
    # Default: more than 40 tasks -> the 20 at each end.
    assert len(plot_slopes(fit60).axes[0].get_yticklabels()) == 40


def test_plot_population_area_is_p_new_task_negative(fit8):
    from bayesslope.summaries import prob_negative_new_task

    fig = plot_population(fit8)
    ax = fig.axes[0]
    line = next(ln for ln in ax.lines if ln.get_label() == "new task's slope")
    x, y = line.get_xdata(), line.get_ydata()
    neg = x <= 0
    area = np.trapezoid(y[neg], x[neg])
    total = np.trapezoid(y, x)
    p = prob_negative_new_task(fit8.posterior)  # closed form: mean Phi(-mu / sigma)
    assert total == pytest.approx(1.0, abs=0.01)
    assert area == pytest.approx(p, abs=0.005)
    assert any("P(new task < 0)" in t.get_text() for t in ax.get_legend().get_texts())
    assert not overlapping(fig)
    _, ax2 = plt.subplots()
    assert fit8.plot_population(ax=ax2) is ax2.figure


# -- predictive checks, ranks, linearity, backtest ------------------------------------------


def test_plot_ppc_and_loo_pit(fit8):
    fig = plot_ppc(fit8, random_seed=seed(301))
    assert [a.get_title().split(":")[0] for a in _visible_axes(fig)] == [
        bstyle.shorten(t, 28) for t in fit8.design.tasks]
    assert not overlapping(fig)
    fig = plot_loo_pit(fit8, random_seed=seed(302))
    ax = fig.axes[0]
    band = next(c for c in ax.collections if isinstance(c, PolyCollection))
    verts = band.get_paths()[0].vertices
    # The band is symmetric about 0 and widest near u = 0.5 (sd of an ECDF ~ sqrt(u(1-u))).
    upper = verts[verts[:, 1] > 0]
    assert upper[np.argmax(upper[:, 1]), 0] == pytest.approx(0.5, abs=0.1)
    assert not overlapping(fig)
    _, ax2 = plt.subplots()
    assert plot_loo_pit(fit8, random_seed=seed(302), ax=ax2) is ax2.figure


def test_loo_pit_shows_too_wide_intervals():
    """A residual sd 4x the data's noise (0.015) piles the PIT values up in the middle: the
    curve dips below 0 before u = 0.5 and rises above it after, beyond the band."""
    fit = synthetic_fit(LONG, sigma=0.06, k=3)
    fig = plot_loo_pit(fit, random_seed=seed(307))
    ax = fig.axes[0]
    line = next(ln for ln in ax.lines if ln.get_label().startswith("LOO-PIT"))
    u, diff = line.get_xdata(), line.get_ydata()
    assert diff[(u > 0.15) & (u < 0.35)].mean() < -0.1
    assert diff[(u > 0.65) & (u < 0.85)].mean() > 0.1
    assert "outside the band" in ax.get_title(loc="left")


def test_ecdf_band_is_simultaneous():
    """Under uniformity the whole ECDF leaves the 90% band about 10% of the time."""
    from bayesslope.checks import _ecdf_band

    rng = np.random.default_rng(seed(303))
    z = np.linspace(0.005, 0.995, 199)
    half = _ecdf_band(200, 0.9, z, rng)
    out = 0
    for _ in range(400):
        u = np.sort(rng.uniform(size=200))
        out += np.any(np.abs(np.searchsorted(u, z, side="right") / 200 - z) > half)
    # 400 trials at p = 0.1: sd 0.015, so [0.05, 0.16] is a wide margin.
    assert 0.05 <= out / 400 <= 0.16


def test_plot_ranks(fit8):
    from bayesslope.plot_decisions import plot_ranks

    fig = plot_ranks(fit8, k=2, style="one-column")
    ax = fig.axes[0]
    mean_rank = np.argsort(np.argsort(_flat(fit8), axis=1), axis=1).mean(axis=0)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    expect = np.asarray(fit8.design.tasks)[np.argsort(mean_rank, kind="stable")]
    assert labels == [bstyle.shorten(t, 40) for t in expect]
    assert not overlapping(fig)


def test_plot_linearity_panels(fit8):
    from bayesslope.linearity import LinearityCheck
    from bayesslope.plots_linearity import plot_linearity

    tasks = list(fit8.design.tasks)
    table = pd.DataFrame({"elpd_diff": -1.0, "elpd_diff_se": 0.5, "verdict": "linear",
                          "x0_mean": 3.0, "x0_lb": 2.8, "x0_ub": 3.2}, index=tasks)
    check = LinearityCheck(fits={"linear": fit8, "quadratic": fit8}, loo={}, _table=table)
    fig = plot_linearity(check, style="two-column")
    axes = _visible_axes(fig)
    assert len(axes) == 8
    assert [a.get_title().split(":")[0] for a in axes] == [bstyle.shorten(t, 24) for t in tasks]
    assert not overlapping(fig)


def test_plot_backtest_real_fit():
    rng = np.random.default_rng(seed(304))
    x = np.sort(rng.uniform(2.0, 4.0, 10))
    df = pd.concat([pd.DataFrame({"model": [f"m{j}" for j in range(10)], "task": f"t{k}",
                                  "x": x, "y": 0.6 - 0.1 * (x - 3) + rng.normal(0, 0.02, 10)})
                    for k in range(3)], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bs.backtest(df, holdout="best:2", unit="model", x_better="lower",
                          y_better="higher", chains=1, draws=150, tune=150, cores=1,
                          random_seed=seed(305))
    fig = res.plot(random_seed=seed(306))
    axes = _visible_axes(fig)
    assert [a.get_title() for a in axes] == ["t0", "t1", "t2"]
    assert not overlapping(fig)


# -- transfer matrix heatmap ------------------------------------------------------------


def synthetic_matrix(k=30, *, names=None):
    """A TransferMatrix over ``k`` tasks with made-up summaries: two blocks of mutually
    positive tasks, negative between blocks, near zero for the last few."""
    import xarray as xr

    from bayesslope.pairs.design import build_pair_design

    rng = np.random.default_rng(seed(310))
    names = names or [f"{'a_long_task_name_' if i % 3 == 0 else 't'}{i:02d}" for i in range(k)]
    df = pd.DataFrame([(f"m{u}", t, rng.normal()) for u in range(12) for t in names],
                      columns=["model", "task", "y"])
    d = build_pair_design(df, unit="model", task="task", y="y")
    number = np.array([int(str(t)[-2:]) for t in d.tasks])  # design order may differ
    block = number % 2
    src, tgt = np.asarray(d.source), np.asarray(d.target)
    same = block[src] == block[tgt]
    null = (number[src] >= k - 3) | (number[tgt] >= k - 3)
    mean = np.where(null, 0.0, np.where(same, 0.6, -0.5)) + rng.normal(0, 0.02, src.size)
    p_neg = np.where(null, 0.5, np.where(same, 0.01, 0.99))
    index = pd.MultiIndex.from_arrays([np.asarray(d.tasks)[src], np.asarray(d.tasks)[tgt]],
                                      names=["source", "target"])
    table = pd.DataFrame({"mean": mean, "p_negative": p_neg, "scale_ratio": 1.0}, index=index)
    return bs.TransferMatrix(design=d, table=table, population=xr.Dataset(),
                             sampler_stats=xr.Dataset(), draws=None, priors={})


def test_transfer_matrix_heatmap_marks_order_and_labels(tmp_path):
    from bayesslope.pairs.plots import plot_transfer_matrix

    tm = synthetic_matrix(30)
    fig = plot_transfer_matrix(tm)  # clustered order
    ax = fig.axes[0]
    order = tm.task_order()
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(t) for t in order]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(t) for t in order]
    # Clustering puts each block together: the block label changes at most 3 times along
    # the order (block 0 | block 1, with the three null tasks somewhere).
    block = [int(str(t)[-2:]) % 2 for t in order if int(str(t)[-2:]) < 27]
    assert sum(a != b for a, b in zip(block, block[1:], strict=False)) == 1
    rows = [t.get_text() for t in ax.get_yticklabels()]
    neg = {(rows[int(round(y))], rows[int(round(x))])
           for c in ax.collections if isinstance(c, PathCollection) for x, y in c.get_offsets()}
    pos_line = next(ln for ln in ax.lines if isinstance(ln, Line2D))
    pos = {(rows[int(round(y))], rows[int(round(x))])
           for x, y in zip(pos_line.get_xdata(), pos_line.get_ydata(), strict=True)}
    p = tm.table["p_negative"]
    assert neg == {ix for ix, v in p.items() if v > 0.9}
    assert pos == {ix for ix, v in p.items() if 1 - v > 0.9}
    assert not overlapping(fig)
    assert not outside_figure(fig)
    # Explicit order, paper width, saved as PDF and SVG without clipping.
    names = sorted(map(str, tm.design.tasks), reverse=True)
    fig = plot_transfer_matrix(tm, order=names, style="one-column", annotate=False)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == names
    assert fig.get_figwidth() == pytest.approx(3.3)
    assert not overlapping(fig)
    for suffix, magic in ((".pdf", b"%PDF"), (".svg", b"<?xml")):
        path = bstyle.save_figure(fig, tmp_path / f"m{suffix}")
        assert path.read_bytes()[:5].startswith(magic)
    with pytest.raises(ValueError, match="every task once"):
        plot_transfer_matrix(tm, order=names[:-1])


# -- styles -------------------------------------------------------------------------------


def test_styles_leave_global_settings_alone(fit8):
    before = dict(matplotlib.rcParams)
    with bs.figure_style("two-column"):
        assert matplotlib.rcParams["font.size"] == 8
        fig = plot_slopes(fit8)
        assert fig.get_figwidth() == pytest.approx(7.0)
    plot_tasks(fit8, style="one-column")
    assert dict(matplotlib.rcParams) == before
    assert bstyle.active_width() is None
    with pytest.raises(ValueError, match="style should be one of"):
        plot_slopes(fit8, style="poster")
    assert set(bstyle.COLORS[r] for r in ("fit", "negative", "positive")) <= set(
        bstyle.PALETTE)  # Okabe-Ito: colorblind-safe roles


# -- condition differences ------------------------------------------------------------------


def _with_conditions(fit, mu_diffs, sd=0.01, k=0):
    """``fit`` with made-up ``slope_mu_condition`` draws: the reference 'base' at
    ``slope_mu`` and each further condition shifted by its entry of ``mu_diffs``."""
    import xarray as xr

    rng = np.random.default_rng(seed(320 + k))
    post = fit.posterior["posterior"].to_dataset()
    C, D = post.sizes["chain"], post.sizes["draw"]
    base = post["slope_mu"].values
    cols = [base] + [base + m + sd * rng.standard_normal((C, D)) for m in mu_diffs.values()]
    names = ["base", *mu_diffs]
    post = post.assign(slope_mu_condition=(("chain", "draw", "condition"),
                                           np.stack(cols, axis=-1))).assign_coords(
        condition=names)
    tree = xr.DataTree.from_dict({"posterior": post})
    return bs.TransferFit(posterior=tree, design=fit.design, spec=fit.spec,
                          variants=fit.variants)


def test_condition_differences_content(fit8):
    # Far above 0, far below, and straddling 0 (so P(> 0) is strictly between 0 and 1).
    diffs = {"5-shot": 0.05, "deduped": -0.05, "distilled_from_a_much_larger_teacher": 0.002}
    fit = _with_conditions(fit8, diffs, sd=0.01)
    fig = fit.plot_condition_differences(ci_prob=0.8)
    ax = fig.axes[0]
    # One row per non-reference condition, the first on top; the reference in the x label.
    labels = sorted(((t.get_position()[1], t.get_text()) for t in ax.get_yticklabels()),
                    reverse=True)
    assert [text for _, text in labels] == ["5-shot", "deduped",  # long names cut at 28
                                            "distilled_from_a_much_large\u2026"]
    assert "base" in ax.get_xlabel()
    draws = fit.posterior["posterior"]["slope_mu_condition"].values.reshape(-1, 4)
    right = ax.child_axes[0]  # the secondary y axis on the right
    p_text = sorted(((t.get_position()[1], t.get_text()) for t in right.get_yticklabels()),
                    reverse=True)
    for j, name in enumerate(diffs, start=1):
        d = draws[:, j] - draws[:, 0]
        lines = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
        lo, hi = lines[f"interval:{name}"].get_xdata()
        mean = lines[f"mean:{name}"].get_xdata()[0]
        assert lo <= mean <= hi
        assert mean == pytest.approx(d.mean())
        np.testing.assert_allclose([lo, hi], np.quantile(d, [0.1, 0.9]))
        text = p_text[j - 1][1]
        p = (d > 0).mean()
        if text.startswith("P(> 0) = "):
            assert float(text.removeprefix("P(> 0) = ")) == pytest.approx(p, abs=5e-4)
        else:
            assert (text == "P(> 0) > 0.999" and p > 0.999) or (
                text == "P(> 0) < 0.001" and p < 0.001), text
    # 0.05 is 5 sd above 0: P(> 0) prints as "> 0.999"; -0.05 as "< 0.001".
    assert [t for _, t in p_text[:2]] == ["P(> 0) > 0.999", "P(> 0) < 0.001"]
    assert p_text[2][1].startswith("P(> 0) = ")
    # One density per condition, each starting from its row.
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 3
    assert not overlapping(fig)


def test_condition_differences_ax_style_and_errors(fit8):
    fit = _with_conditions(fit8, {"5-shot": 0.02}, k=1)
    fig, ax = plt.subplots()
    assert fit.plot_condition_differences(ax=ax) is fig
    paper = fit.plot_condition_differences(style="one-column")
    assert paper.get_size_inches()[0] == pytest.approx(bstyle.WIDTHS["one-column"])
    assert not overlapping(paper)
    with pytest.raises(ValueError, match="no conditions"):
        fit8.plot_condition_differences()
