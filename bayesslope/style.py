"""Figure styles for papers: column widths, font sizes, a colorblind-safe palette, saving.

Nothing here changes matplotlib's global settings: :func:`figure_style` is a context
manager (``matplotlib.rc_context``), and every plotting function of bayesslope takes
``style=`` to draw inside it. Matplotlib is imported when first used.

Examples
--------
>>> import bayesslope as bs
>>> from bayesslope.style import save_figure
>>> with bs.figure_style("one-column"):            # doctest: +SKIP
...     fig = fit.plot_slopes()
>>> save_figure(fig, "slopes.pdf")                 # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

__all__ = ["figure_style", "save_figure", "PALETTE", "COLORS", "WIDTHS", "STYLES"]

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies and in
# greyscale by lightness; black last.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442",
           "#000000")

# Roles used by the figures, so that "negative" means the same colour everywhere.
COLORS = {
    "fit": PALETTE[0],        # posterior mean and bands
    "negative": PALETTE[1],   # negative transfer / below the ROPE
    "positive": PALETTE[2],   # positive beyond the ROPE
    "alt": PALETTE[3],        # a second model or baseline
    "alt2": PALETTE[5],
    "data": "0.2",
    "chance": "0.45",
    "neutral": "0.55",        # practically zero / undecided
}

# Text widths (inches) of the usual one- and two-column paper layouts.
WIDTHS = {"one-column": 3.3, "two-column": 7.0}

_PAPER_RC = {
    "font.family": "sans-serif",
    "axes.linewidth": 0.6,
    "axes.titlepad": 3.0,
    "axes.labelpad": 2.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.major.pad": 1.5,
    "ytick.major.pad": 1.5,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.0,
    "legend.frameon": False,
    "legend.handlelength": 1.5,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    # Editable text in vector output (TrueType in PDF, text elements in SVG).
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
}

# Font sizes in points as printed: the figure is drawn at the column width, so they are
# not shrunk when the PDF is placed (7 pt is the usual floor for figure text).
STYLES = {
    "one-column": {**_PAPER_RC, "font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7,
                   "xtick.labelsize": 6, "ytick.labelsize": 6, "legend.fontsize": 6,
                   "figure.titlesize": 8, "figure.labelsize": 7},
    "two-column": {**_PAPER_RC, "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
                   "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7,
                   "figure.titlesize": 9, "figure.labelsize": 8},
}
_ALIASES = {"paper": "one-column", "single": "one-column", "one": "one-column",
            "double": "two-column", "two": "two-column", "wide": "two-column"}

# The width of the style being drawn in (None outside figure_style): read by the figure
# functions to size their grids; a ContextVar, so nothing global is mutated.
_ACTIVE_WIDTH: ContextVar[float | None] = ContextVar("bayesslope_figure_width", default=None)


def _resolve(style: str) -> str:
    name = _ALIASES.get(style, style)
    if name not in STYLES:
        raise ValueError(f"style should be one of {sorted(STYLES) + sorted(_ALIASES)}, "
                         f"got {style!r}")
    return name


@contextmanager
def figure_style(style: str = "one-column", **rc) -> Iterator[None]:
    """Draw figures for a paper: column width, print-size fonts, colorblind-safe colours.

    Inside the block, bayesslope's figure functions size their figures to the column
    width (3.3 in for ``"one-column"``, 7 in for ``"two-column"``) and matplotlib uses
    font sizes that stay legible in print (6-9 pt) and the :data:`PALETTE` colour cycle;
    a plain ``plt.subplots()`` gets the column width too. Global settings are restored on
    exit.

    Parameters
    ----------
    style : {"one-column", "two-column"}, default "one-column"
        Aliases: "paper", "single", "one"; "double", "two", "wide".
    **rc
        Further ``matplotlib.rcParams`` for the block (underscores stand for dots,
        e.g. ``font_size=8``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import bayesslope as bs
    >>> with bs.figure_style("one-column"):
    ...     fig, ax = plt.subplots()
    >>> fig.get_figwidth()
    3.3

    A fit's figures take the style as an argument too: ``fit.plot_tasks(style="two-column")``.
    """
    import matplotlib.pyplot as plt
    from cycler import cycler

    name = _resolve(style)
    width = WIDTHS[name]
    params = {**STYLES[name], "axes.prop_cycle": cycler(color=PALETTE),
              "figure.figsize": (width, 0.75 * width),
              **{k.replace("_", "."): v for k, v in rc.items()}}
    token = _ACTIVE_WIDTH.set(width)
    try:
        with plt.rc_context(params):
            yield
    finally:
        _ACTIVE_WIDTH.reset(token)


@contextmanager
def maybe_style(style: str | None) -> Iterator[None]:
    """:func:`figure_style` when ``style`` is given, else nothing (the caller's settings)."""
    if style is None:
        yield
    else:
        with figure_style(style):
            yield


def active_width() -> float | None:
    """Width (inches) of the paper style being drawn in, or None."""
    return _ACTIVE_WIDTH.get()


def save_figure(fig, path, **kwargs) -> Path:
    """Save ``fig`` without clipping labels; the format follows the suffix (png, pdf, svg).

    ``bbox_inches="tight"`` (so long tick labels and titles are never cut) and editable
    text in PDF/SVG; ``kwargs`` go to :meth:`matplotlib.figure.Figure.savefig`.

    Returns
    -------
    pathlib.Path
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    kwargs.setdefault("bbox_inches", "tight")
    kwargs.setdefault("pad_inches", 0.02)
    with plt.rc_context({"pdf.fonttype": 42, "svg.fonttype": "none"}):
        fig.savefig(path, **kwargs)
    return path


# -- shared layout helpers of the figure modules ------------------------------------------


def default_ncols(n: int, width: float | None = None, min_panel: float = 1.15) -> int:
    """Columns of a grid of ``n`` panels: about square, as many as ``width`` allows."""
    if n <= 3:
        ncols = n
    else:
        ncols = min(8, math.ceil(math.sqrt(1.4 * n)))
    if width is not None:
        ncols = min(ncols, max(1, int(width // min_panel)))
    return max(1, ncols)


def panel_grid(n: int, *, axes=None, ncols: int | None = None,
               panel_size: tuple[float, float] = (2.6, 2.1), sharex: bool = False,
               sharey: bool = False, aspect: float = 0.8):
    """A figure with ``n`` panels (the unused ones hidden), or the caller's ``axes``.

    Inside :func:`figure_style` the figure is the style's width and each panel
    ``aspect`` times as tall as wide; otherwise each panel is ``panel_size`` inches.

    Returns
    -------
    (Figure, list of Axes, bool)
        The figure, ``n`` axes in reading order, and whether the figure was created here.
    """
    import matplotlib.pyplot as plt

    if axes is not None:
        flat = list(np.ravel(np.asarray(axes, dtype=object)))
        if len(flat) < n:
            raise ValueError(f"axes has {len(flat)} panels for {n} tasks "
                             "(pass tasks=[...] to choose)")
        return flat[0].figure, flat[:n], False
    width = active_width()
    ncols = min(ncols or default_ncols(n, width), n)
    nrows = math.ceil(n / ncols)
    if width is not None:
        pw = width / ncols
        figsize = (width, min(9.0, pw * aspect * nrows + 0.5))
    else:
        figsize = (panel_size[0] * ncols, panel_size[1] * nrows)
    fig, grid = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False,
                             layout="constrained", sharex=sharex, sharey=sharey)
    flat = list(grid.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    if sharex:  # the last panel of each column shows the x tick labels
        for ax in flat[:n]:
            below = flat.index(ax) + ncols
            ax.tick_params(labelbottom=below >= n)
    if sharey:
        for i, ax in enumerate(flat[:n]):
            ax.tick_params(labelleft=i % ncols == 0)
    return fig, flat[:n], True


def single_axes(ax, figsize: tuple[float, float]):
    """``(fig, ax)``: the caller's axes, or a new constrained figure of ``figsize``.

    Inside :func:`figure_style` the width is the style's column width.
    """
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    width = active_width()
    if width is not None:  # rows keep their height; only the width follows the column
        figsize = (width, figsize[1])
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def font_points(rc_key: str) -> float:
    """Font size of an rcParams entry (e.g. "ytick.labelsize") in points."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=rcParams[rc_key]).get_size_in_points()


def shorten(label, max_len: int) -> str:
    """``label`` as text, cut to ``max_len`` characters with an ellipsis."""
    text = str(label)
    return text if len(text) <= max_len else text[: max_len - 1] + "\u2026"


def clear_of_ends(axis, ticks) -> list:
    """The ``ticks`` whose labels stay within the axis' ends (on screen, at draw time).

    A label centred on a tick within half a label of an axis end sticks out past the
    corner, into the other axis' labels or a neighbouring panel's; such ticks are dropped
    (keeping at least the two innermost in view).
    """
    lo, hi = sorted(axis.get_view_interval())
    inside = [t for t in ticks if lo <= t <= hi]
    ax = axis.axes
    vertical = axis is ax.yaxis
    length_px = ax.bbox.height if vertical else ax.bbox.width
    if length_px <= 0 or hi <= lo:
        return np.asarray(inside, dtype=float)
    size_pt = axis.majorTicks[0].label1.get_fontsize()  # not get_ticklabels: it calls us
    # Half a label: its half height on a y axis, a short number's half width on an x axis.
    half_px = size_pt * ax.figure.dpi / 72 * (0.6 if vertical else 1.1)
    fwd = axis.get_transform()
    a, b = fwd.transform([lo, hi]) if hasattr(fwd, "transform") else (lo, hi)
    margin = half_px / length_px * (b - a)
    keep = [t for t in inside
            if a + margin <= float(fwd.transform([t])[0]) <= b - margin]
    return np.asarray(keep if len(keep) >= 2 else inside, dtype=float)


def thin_ticks(ax, nbins: int = 4) -> None:
    """At most ``nbins`` major ticks per axis, none at the ends, no minor tick labels."""
    from matplotlib.ticker import MaxNLocator, NullFormatter

    class InnerLocator(MaxNLocator):
        def __call__(self):
            vmin, vmax = self.axis.get_view_interval()
            return clear_of_ends(self.axis, self.tick_values(vmin, vmax))

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "linear":
            axis.set_major_locator(InnerLocator(nbins=nbins, min_n_ticks=2))
        elif axis.get_scale() == "log":
            axis.set_minor_formatter(NullFormatter())
