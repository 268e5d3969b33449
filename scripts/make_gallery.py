"""Regenerate docs/gallery.md and its figures in docs/img/gallery_*.png.

    .venv/bin/python scripts/make_gallery.py            # ~5 min on 2 busy cores
    .venv/bin/python scripts/make_gallery.py --pdf      # also a PDF of every figure

The page shows the code of every figure; this script runs exactly that code (the fits of
its first block, then each figure's line) and saves each figure with
``bbox_inches="tight"``. Seeded: the figures are reproducible on one machine.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from bayesslope.style import save_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"


def _save(fig, name: str, pdf: bool) -> str:
    save_figure(fig, IMG / f"gallery_{name}.png", dpi=150)
    if pdf:
        save_figure(fig, IMG / f"gallery_{name}.pdf")
    plt.close(fig)
    return f"img/gallery_{name}.png"


# The page's first block, run here exactly as shown (and by tests/test_docs_examples.py in
# its fast mode): the fits every figure below uses.
SETUP = """\
import pandas as pd

import bayesslope as bs

df = bs.load_dataset("pythia")  # 7 tasks x 164 checkpoints of 12 models
fit = bs.fit_hierarchical(df, x="x", y="y", task="task", x_better="lower",
                          y_better="higher", group="model", group_nesting="nested",
                          draws={draws}, tune={draws}, chains=2, random_seed={seed})
clip = bs.load_dataset("openclip")  # 121 models x 37 tasks
tm = bs.fit_transfer_matrix(clip, unit="model", task="task", y="y",
                            per_pair_sigma=False, dropna=True, random_seed={seed})
labels = dict(xlabel=df["x_metric"].iloc[0], ylabel=df["y_metric"].iloc[0])
chance = df.groupby("task")["chance"].first().to_dict()  # 0.25 or 0.5 by task
# Conditions (docs/conditions.md): standard or deduplicated Pile x 0- or 5-shot, 2 tasks.
pt = bs.load_dataset("pythia_tasks")
pt = pt[(pt["step"] >= 13000) & pt["flag"].isna() & pt["task"].isin(["arc_easy", "piqa"])]
levels = ["standard, 0-shot", "deduped, 0-shot", "standard, 5-shot", "deduped, 5-shot"]
pt["setting"] = pd.Categorical(
    pt["deduped"].map({{False: "standard", True: "deduped"}}) + ", "
    + pt["shots"].astype(str) + "-shot", categories=levels)   # first level = reference
cond = bs.fit_hierarchical(pt, condition="setting", group="model", per_task_sigma=True,
                           draws={draws}, tune={draws}, chains=2, random_seed={seed})"""

# (name, title, code, caption): each code line returns one Figure.
FIGURES = [
    ("tasks", "Per-task small multiples (two-column)",
     'fit.plot_tasks(style="two-column", **labels)',
     "Data (dots), posterior mean (line), 50% and 90% bands of the mean. `better_right=True` "
     "(the default) inverts the loss axis, so better is to the right and a positive transfer "
     "slope rises. Titles: oriented slope and P(negative). Axis names: the data's "
     "`x_metric` / `y_metric`."),
    ("tasks_probit", "Probit y axis with a chance line (one-column)",
     'fit.plot_tasks(tasks=["arc_easy", "logiqa", "sciq", "winogrande"], yscale="probit",\n'
     '               chance=chance, ncols=2, style="one-column", **labels)',
     "Accuracies on a probit axis (tick labels are probabilities); the dotted line is the "
     "chance level of each task (the fit's chance floor when it has one; here the data's "
     "`chance` column)."),
    ("slopes", "Forest plot with a ROPE and decisions (one-column)",
     'fit.plot_slopes(rope=0.02, style="one-column")',
     "Posterior mean, 90% and 99% intervals of the oriented slope; the ROPE is shaded; right: "
     "P(slope below the ROPE) and the decision at probability 0.95 (neg / zero / pos / ?). "
     "With more than 40 tasks only the 20 most negative and 20 most positive are shown "
     "(`top_k=`)."),
    ("population", "Population of slopes (one-column)",
     'fit.plot_population(style="one-column")',
     "Posterior predictive density of a new task's slope; the shaded area is P(new task "
     "negative), the number `fit.population()` reports. Bar: 90% interval of the population "
     "mean slope; ticks: the tasks' posterior mean slopes."),
    ("ranks", "Ranks (one-column)", 'fit.plot_ranks(k=2, style="one-column")',
     "Posterior rank of each task by slope (1 = flattest), 90% rank intervals; right: "
     "P(flattest), P(among the 2 flattest)."),
    ("ppc", "Posterior predictive check (two-column)",
     'fit.plot_ppc(random_seed=1, style="two-column", **labels)',
     "90% posterior predictive interval of every row (bars) and the observed score "
     "(vermillion when outside)."),
    ("loo_pit", "LOO-PIT (one-column)", 'fit.plot_loo_pit(random_seed=1, style="one-column")',
     "ECDF of the LOO-PIT values minus the uniform CDF, with a simulated 95% simultaneous "
     "band: a calibrated model stays inside it. Here the curve dips then rises: the values "
     "pile up in the middle, predictive intervals too wide for most tasks (the PPC above: "
     "100% inside), as expected when one residual sd is shared with the much noisier wsc "
     "(`per_task_sigma=True` lets each task have its own)."),
    ("conditions", "Condition differences (one-column)",
     'cond.plot_condition_differences(style="one-column")',
     "Each setting's population slope minus the reference's (standard Pile, 0-shot): posterior "
     "density, mean (dot) and 90% interval (bar); right: P(difference > 0). 5-shot prompting "
     "is compared within each model (narrow), deduplication between models (wide). The "
     "seven-task analysis: [conditions.md](conditions.md)."),
    ("matrix", "Transfer matrix, clustered, with significance marks (two-column)",
     'tm.plot(order="cluster", style="two-column")',
     "OpenCLIP: posterior mean standardized slope (source row -> target column); tasks ordered "
     "by average-linkage clustering of the compatibility; open circle: P(negative) > 0.9, "
     "dot: P(positive) > 0.9. Saved with `bbox_inches=\"tight\"`: long task names are not "
     "clipped."),
]

INTRO = """\
# Figure gallery

Every figure of bayesslope, drawn in a paper style (`style="one-column"`: 3.3 in wide,
`style="two-column"`: 7 in; print-size fonts; the Okabe-Ito colorblind-safe palette) and
saved with `bayesslope.style.save_figure(fig, "name.pdf")` (`bbox_inches="tight"`; PNG, PDF
or SVG by suffix). Each function returns a matplotlib Figure, takes `ax=` / `axes=`, never
calls `plt.show()` and changes no global setting; `with bs.figure_style("two-column"): ...`
styles a whole block.

Regenerated by `.venv/bin/python scripts/make_gallery.py` ({timing}). The fits (the demo's
model for Pythia; about as long as the timing says):
"""


def main(argv=None) -> int:
    """Fit, draw every figure, write docs/gallery.md; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pdf", action="store_true", help="also write PDFs (not committed)")
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    IMG.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    setup = SETUP.format(draws=args.draws, seed=args.seed)
    ns: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sampler chatter; the figures show the fit
        exec(setup, ns)  # noqa: S102 - the page's own code, shown verbatim
    t_fit = time.perf_counter() - t0
    lines = [INTRO.format(timing=f"fits {t_fit:.0f} s on 2 cores"), "```python", setup, "```",
             ""]
    for name, title, code, caption in FIGURES:
        fig = eval(code, ns)  # noqa: S307
        img = _save(fig, name, args.pdf)
        lines += [f"## {title}", "", "```python", code, "```", "", f"![{title}]({img})", "",
                  caption, ""]
    (ROOT / "docs" / "gallery.md").write_text("\n".join(lines))
    print(f"wrote docs/gallery.md and {len(FIGURES)} figures in "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
