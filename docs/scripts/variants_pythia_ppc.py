"""Figure of docs/variants.md: posterior predictive check of the two Pythia observation models.

Usage (from the repository root; about 5 minutes on 2 busy cores)::

    nice -n 19 .venv/bin/python docs/scripts/variants_pythia_ppc.py

The data and the two models of ``benchmarks/variants_pythia.py`` (zero-shot rows of
``bs.load_dataset("pythia_tasks")``, all 27 checkpoints of the 16 models, the six tasks
arc_easy, arc_challenge, piqa, sciq, winogrande, logiqa; ``x_ref=2.5``,
``target_accept=0.95``, seed 20261128): the Gaussian identity line and the chance-floor
probit beta-binomial. Shorter than the benchmark (2 chains x 300 draws after 300 tuning
steps, no LOO; the Gaussian fit collapsed, the default, which has the same posterior as the
benchmark's ``formulation="full"``): the figure needs the predictive bands only. Drawn with the
library's ``fit.plot_ppc`` (each row's 90% posterior predictive interval and its observed
accuracy). Writes docs/img/variants_pythia_ppc.png and prints each fit's wall time,
divergences, max R-hat and 90% predictive coverage.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import bayesslope as bs  # noqa: E402
from bayesslope.style import figure_style, save_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIG = ROOT / "docs" / "img" / "variants_pythia_ppc.png"
TASKS = ["arc_easy", "arc_challenge", "piqa", "sciq", "winogrande", "logiqa"]
RUN = dict(draws=300, tune=300, chains=2, random_seed=20261128, target_accept=0.95,
           x_ref=2.5, sampler="pymc")
if os.environ.get("DOCS_SCRIPT_SMOKE"):  # a quick run of the code path, written to /tmp
    RUN.update(draws=40, tune=40)
    FIG = Path("/tmp") / FIG.name
MODELS = {
    "Gaussian identity": {},
    "beta-binomial, probit, chance floor": dict(
        n_eval="n_eval_examples", chance="chance", likelihood="beta_binomial", link="probit",
        formulation="full"),
}


def main() -> None:
    """Fit both models and draw their predictive checks, one row of panels per model."""
    df = bs.load_dataset("pythia_tasks")
    df = df[(df["shots"] == 0) & df["task"].isin(TASKS)].reset_index(drop=True)
    with figure_style("two-column"):
        fig, axes = plt.subplots(4, 3, figsize=(7.0, 7.6), sharex=True, sharey=True,
                                 layout="constrained")
    for k, (name, kw) in enumerate(MODELS.items()):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.fit_hierarchical(df, **RUN, **kw)
        diag = fit.diagnostics()
        block = axes[2 * k:2 * k + 2].ravel()
        with figure_style("two-column"):
            fit.plot_ppc(task=TASKS, axes=block, random_seed=1)
        for ax in block:
            ax.set_title(f"{name}\n{ax.get_title()}", fontsize="small")
        pred = fit.posterior_predictive(random_seed=1)
        lo, hi = np.quantile(pred.reshape(-1, pred.shape[-1]), [0.05, 0.95], axis=0)
        cover = np.mean((fit.design.y >= lo) & (fit.design.y <= hi))
        print(f"[{name}] {time.perf_counter() - t0:.0f} s, divergences "
              f"{diag.attrs['divergences']}, max R-hat {diag['r_hat_max'].max():.4f}, "
              f"rows {fit.design.n_obs}, 90% predictive coverage {cover:.3f}")
    with figure_style("two-column"):
        fig.supxlabel("zero-shot LAMBADA log-perplexity (better \u2192)", fontsize="medium")
        fig.supylabel("accuracy", fontsize="medium")
    save_figure(fig, FIG, dpi=130)
    print(f"wrote {FIG} ({os.popen('uptime').read().strip()})")


if __name__ == "__main__":
    main()
