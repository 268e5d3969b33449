"""A simulated stand-in for a real evaluation suite: 104 language models x 41 tasks.

The public suite of issue 25 (accuracy of 104 language models on 41 downstream tasks against
their C4 validation loss, with each task's test-set size) is not in ``../shared/data``; this
module draws a frame with the same size and the features that make it hard to sample:

- ``x``: a C4-like loss in about [2.3, 4.5], lower is better, denser among the stronger
  models (many small checkpoints are rare, many mid-size models common), one value per
  model shared by every task (as in a real suite).
- 41 tasks with chance levels drawn from {0, 0.25, 0.5} (free generation, 4-way and 2-way
  multiple choice) and test-set sizes ``n_eval`` log-uniform over [100, 60,000].
- a probit curve per task, ``p = c + (1 - c) Phi(b_t (x50_t - x) + e)``: ``x50_t`` is the
  loss at which the task is half-way between chance and ceiling, spread over and beyond the
  range of x, so some tasks sit on the chance floor for most weak models (hockey-like:
  flat, then rising) and some near the ceiling for the strong ones; ``b_t`` (per unit of
  loss) log-uniform from 0.6 to 3. ``e ~ N(0, eta_noise)`` per row is the extra between-model
  variation real suites show beyond test-set sampling (a model good at one task for
  reasons its loss does not capture); with ``eta_noise=0`` the binomial model is exact.
- ``accuracy = k / n_eval`` with ``k ~ Binomial(n_eval, p)``.

``averaged_tasks=k`` makes ``k`` tasks MMLU-like: each is a set of subtasks of different
sizes (3 to 12 subtasks, sizes log-uniform over [30, n_eval / 3]), each subtask with its
own offset on the probit scale, and the task's accuracy is the unweighted mean of the
subtask accuracies, so ``accuracy * n_eval`` is not a whole number (``n_eval`` is the
total number of items). The subtask sizes are in ``df.attrs["subtask_sizes"]`` and the
per-row subtask counts in ``df.attrs["subtask_correct"]`` (task -> (n_models, n_sub)
array in row order), for a recovery check against a per-subtask fit.

Columns: ``model``, ``task``, ``x`` (loss), ``y`` (accuracy), ``n_eval_examples``,
``chance``, ``averaged`` (bool). ``df.attrs["truth"]`` holds the per-task ``x50``, ``b``
and ``chance``.

Examples
--------
>>> from benchmarks.suite_sim import simulate_suite
>>> df = simulate_suite(seed=1)
>>> df.shape[0]
4264
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

__all__ = ["simulate_suite", "subset", "CHANCE_LEVELS"]

CHANCE_LEVELS = (0.0, 0.25, 0.5)


def simulate_suite(
    n_models: int = 104,
    n_tasks: int = 41,
    *,
    seed: int = 0,
    averaged_tasks: int = 0,
    eta_noise: float = 0.1,
    n_eval_range: tuple[int, int] = (100, 60_000),
    x_range: tuple[float, float] = (2.3, 4.5),
) -> pd.DataFrame:
    """Draw a suite of accuracies against an upstream loss (see the module docstring).

    Parameters
    ----------
    n_models, n_tasks : int
        Size of the suite (rows = ``n_models * n_tasks``).
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same frame.
    averaged_tasks : int, default 0
        Number of tasks (the last ones) whose accuracy is a mean over subtasks of different
        sizes, so that ``y * n_eval`` is not whole.
    eta_noise : float, default 0.1
        Sd of the per-row extra variation on the probit scale (0: exactly binomial).
    n_eval_range : (int, int)
        Test-set sizes are log-uniform between these.
    x_range : (float, float)
        Range of the loss.

    Returns
    -------
    pandas.DataFrame
        Long frame, one row per (model, task).
    """
    if not 0 <= averaged_tasks <= n_tasks:
        raise ValueError(f"averaged_tasks should be in [0, {n_tasks}] but got {averaged_tasks}")
    rng = np.random.default_rng(seed)
    lo, hi = x_range
    # Loss per model: a Beta(1.3, 2.2) shape puts more models at lower (better) loss.
    x = lo + (hi - lo) * rng.beta(1.3, 2.2, size=n_models)
    chance = rng.choice(CHANCE_LEVELS, size=n_tasks, p=[0.3, 0.5, 0.2])
    log_n = rng.uniform(np.log(n_eval_range[0]), np.log(n_eval_range[1]), size=n_tasks)
    n_eval = np.round(np.exp(log_n)).astype(np.int64)
    # Half-way loss: from well below the best model (task on the floor for nearly all,
    # hockey-like) to above the worst (near the ceiling for most).
    x50 = rng.uniform(lo - 0.5, hi - 0.4, size=n_tasks)
    b = np.exp(rng.uniform(np.log(0.6), np.log(3.0), size=n_tasks))
    tasks = [f"task_{t:02d}" for t in range(n_tasks)]
    averaged = np.zeros(n_tasks, dtype=bool)
    if averaged_tasks:
        averaged[n_tasks - averaged_tasks:] = True

    rows, sub_sizes, sub_correct = [], {}, {}
    for t in range(n_tasks):
        eta = b[t] * (x50[t] - x) + eta_noise * rng.standard_normal(n_models)
        if not averaged[t]:
            p = chance[t] + (1 - chance[t]) * ndtr(eta)
            y = rng.binomial(n_eval[t], p) / n_eval[t]
        else:
            n_sub = int(rng.integers(3, 13))
            top = max(31.0, n_eval[t] / 3.0)
            sizes = np.round(np.exp(rng.uniform(np.log(30), np.log(top), n_sub))).astype(np.int64)
            offset = 0.3 * rng.standard_normal(n_sub)
            p = chance[t] + (1 - chance[t]) * ndtr(eta[:, None] + offset[None, :])
            k = rng.binomial(sizes[None, :], p)
            y = np.mean(k / sizes[None, :], axis=1)
            n_eval[t] = int(sizes.sum())
            sub_sizes[tasks[t]] = sizes
            sub_correct[tasks[t]] = k
        for m in range(n_models):
            rows.append((f"model_{m:03d}", tasks[t], x[m], y[m], n_eval[t], chance[t],
                         averaged[t]))
    df = pd.DataFrame(rows, columns=["model", "task", "x", "y", "n_eval_examples", "chance",
                                     "averaged"])
    df.attrs["truth"] = {name: dict(zip(tasks, vals.tolist(), strict=True)) for name, vals in
                         (("x50", x50), ("b", b), ("chance", chance))}
    df.attrs["subtask_sizes"] = sub_sizes
    df.attrs["subtask_correct"] = sub_correct
    return df


def subset(df: pd.DataFrame, n_tasks: int, rows_per_task: int, seed: int = 0) -> pd.DataFrame:
    """The first ``n_tasks`` tasks with ``rows_per_task`` models each (for scaling tables).

    With more rows per task than models, the frame is drawn again with that many models
    (``simulate_suite(n_models=rows_per_task, ...)``) rather than repeating rows.
    """
    if rows_per_task > df["model"].nunique():
        df = simulate_suite(n_models=rows_per_task, n_tasks=max(n_tasks, df["task"].nunique()),
                            seed=seed)
    tasks = sorted(df["task"].unique())[:n_tasks]
    models = sorted(df["model"].unique())[:rows_per_task]
    return df[df["task"].isin(tasks) & df["model"].isin(models)].reset_index(drop=True)
