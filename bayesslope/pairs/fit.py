"""``fit_transfer_matrix``: every ordered task pair, partially pooled, in one vectorized fit.

The steps, each a function: options -> :class:`~.config.PairConfig`; frame ->
:class:`~.design.PairDesign`; population NUTS (blackjax, collapsed); the pair stage
(:func:`_pair_stage`: exact conditional draws, or per-pair NUTS); summaries chunk by
chunk; -> :class:`~.result.TransferMatrix`.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from ..exceptions import DataValidationError, SamplingWarning
from ..likelihoods import successes
from ..options import check_bool
from ..variant_data import COUNT_TOLERANCE
from .config import PairConfig, resolve_config
from .design import PairDesign, build_pair_design
from .parallel import DeviceDiagnostics, DiagnosticsPool

__all__ = ["fit_transfer_matrix"]

# From this many pairs on, R-hat/ESS run in worker processes (their start-up, ~1-2 s,
# overlaps the population run; below this the diagnostics take a few seconds inline).
_POOL_MIN_PAIRS = 2000


def fit_transfer_matrix(
    df: pd.DataFrame,
    *,
    unit: str = "model",
    task: str = "task",
    y: str = "y",
    y_better: str | Mapping[str, str] | None = None,
    likelihood: Literal["normal", "student_t", "binomial"] = "normal",
    per_pair_sigma: bool = True,
    n_eval: int | Mapping | str | None = None,
    counts: Literal["whole", "average"] = "whole",
    group: str | None = None,
    priors: Mapping | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float = 0.9,
    random_seed: int | None = None,
    dropna: bool = False,
    progressbar: bool = False,
    keep_draws: bool | None = None,
    chunk_size: int | None = None,
    min_shared: int = 3,
    check_dependence: bool = True,
    client=None,
    out=None,
):
    """Fit the directed transfer slope of every ordered task pair.

    Each ordered pair ``source -> target`` regresses the target's oriented score on the
    source's across the units scored on both, after standardizing both within the pair.
    Pair intercepts and slopes share a bivariate normal population prior whose parameters
    are learned from all pairs (partial pooling, the pair in the role of the task). With
    ``likelihood="normal"`` the pair coefficients are integrated out
    (:mod:`bayesslope.collapsed`), NUTS (blackjax) samples the population parameters, and
    every pair's coefficients are drawn exactly from their conditional Gaussian,
    vectorized over pairs in chunks. The argument names, accepted values and messages
    are those of :func:`bayesslope.fit_hierarchical` (docs/arguments.md).

    Parameters
    ----------
    df : DataFrame
        Long format, one row per (unit, task) score.
    unit, task, y : str
        Column names of the unit (model, checkpoint), the task and the score.
    y_better : {"lower", "higher"} or dict of task -> word, optional
        Which direction of the score is better, for all tasks or per task. Default: from
        a boolean ``y_higher_is_better`` column when present, else "higher".
    likelihood : {"normal", "student_t", "binomial"}, default "normal"
        ``"normal"``: the collapsed fast path. ``"student_t"``: heavy-tailed residuals
        (robust to outlying units). ``"binomial"``: scores are accuracies in [0, 1] (error
        rates with ``y_better="lower"``) of ``n_eval`` questions; the target's correct
        count is binomial with a probit link in the standardized source, so slopes are in
        probit units per source sd. Both sample each pair's coefficients by NUTS over
        pairs (:mod:`bayesslope.pairs.robust`) under a plug-in population prior (posterior
        means of the Gaussian fast path with one shared sd, on the standardized target or,
        for the binomial, on the probit of the smoothed accuracy).
    per_pair_sigma : bool, default True
        A residual sd per pair (sampled by the population NUTS; right when the pairs'
        correlations differ), as ``fit_hierarchical``'s ``per_task_sigma=True`` with the
        pair in the role of the task; False: one shared by all pairs (fastest; normal
        likelihood without ``group`` only). Student-t and grouped pairs always have their
        own sd.
    n_eval : int, mapping or str, optional
        ``likelihood="binomial"`` only: questions per evaluation, one for all tasks, per
        task (mapping), or a column name (constant within a task).
    counts : {"whole", "average"}, default "whole"
        As in :func:`bayesslope.fit_hierarchical`: "whole" requires ``y * n_eval`` to be a
        whole number of correct answers; "average" takes scores averaged over subtasks
        (e.g. MMLU over its subjects) with the count ``k = y * n_eval`` as is (the
        binomial log-likelihood is continuous in ``k``).
    group : str, optional
        Column grouping the units (e.g. the model of each checkpoint), normal likelihood
        only: every pair gets a random intercept per group (``tau_p ~ HalfNormal(1)``), so
        checkpoints of one model do not count as independent evidence; per-pair NUTS as
        for the other likelihoods, under the same plug-in population prior.
    priors : dict, optional
        Overrides of the standardized-unit priors (same families, new parameters):
        ``intercept_mu``/``slope_mu`` Normal(mu, sigma), ``intercept_sigma``,
        ``slope_sigma``, ``sigma`` HalfNormal(sigma), ``corr`` LKJ(eta).
    draws, tune, chains, target_accept, random_seed
        As in :func:`bayesslope.fit_hierarchical` (``tune`` >= 1 here). The same
        ``random_seed`` gives identical results whatever the row order or ``chunk_size``.
    dropna : bool, default False
        Drop rows with a missing unit, task, score (or group) and warn how many, instead
        of raising.
    progressbar : bool, default False
        tqdm progress bar over the pair chunks.
    keep_draws : bool, optional
        Keep the slope/intercept draws (``8 * chains * draws * 2`` bytes per pair) or only
        per-pair summaries; default: keep when that is under 1 GB. Without the draws,
        ``summary(ci_prob=...)`` offers the probabilities stored at fit time
        (:data:`bayesslope.pairs.summaries.STORED_CI_PROBS`).
    chunk_size : int, optional
        Pairs per chunk of the pair stage (bounded memory; results do not depend on it).
    min_shared : int, default 3
        Fewest shared units per pair; pairs with fewer raise a ``DataValidationError``.
    check_dependence : bool, default True
        After sampling, test whether the pairs' residuals cluster by a column of ``df``
        that groups the units and is not ``group`` (e.g. the ``model`` of checkpoint
        units), and warn (``bs.DependenceWarning``) naming it and the fix
        (``group=column``). The table is :meth:`TransferMatrix.dependence`; see
        :func:`bayesslope.dependence.check_transfer_dependence`.
    client : dask.distributed.Client, optional
        Run the pair stage on a Dask cluster: the population stage runs here once, its
        draws (and the pairs' data) are scattered to every worker, and each chunk of
        ``chunk_size`` pairs is one task returning its summaries (and draws when kept).
        The result equals the local run's for the same ``random_seed`` and
        ``chunk_size``. Needs ``pip install bayesslope[dask]``; see
        docs/cluster.md.
    out : str, path or zarr store, optional
        Write the result to a Zarr store chunk by chunk as chunks finish (per-pair
        summaries, and the draws when kept), so no process holds every pair's draws. A
        rerun with the same data and options resumes: the population draws are read
        back and finished chunks are skipped. The returned matrix is read back from the
        store lazily (as :func:`bayesslope.load` does).

    Returns
    -------
    TransferMatrix

    Notes
    -----
    Tasks are ordered canonically (sorted, or a categorical column's order) and units
    sorted, so the row order of ``df`` never changes a result. The first call imports
    JAX; float64 is enabled only while sampling. Units without a score on a task are left
    out of the pairs that involve it (``n_dropped`` per pair, and a warning).

    Examples
    --------
    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> long_df = df.assign(unit=df["model"] + "@" + df["step"].astype(str))
    >>> tm = bs.fit_transfer_matrix(long_df, unit="unit", task="task", y="y",
    ...                             random_seed=1)  # doctest: +SKIP
    >>> tm.summary()[["mean", "eti90_lb", "eti90_ub", "p_negative"]]  # doctest: +SKIP
    """
    check_dependence = check_bool("check_dependence", check_dependence)
    if client is not None:
        from .distributed import require_distributed

        require_distributed()
    config = resolve_config(
        likelihood=likelihood, per_pair_sigma=per_pair_sigma, n_eval=n_eval, group=group,
        priors=priors, draws=draws, tune=tune, chains=chains, target_accept=target_accept,
        random_seed=random_seed, progressbar=progressbar, dropna=dropna,
        keep_draws=keep_draws, chunk_size=chunk_size, min_shared=min_shared, counts=counts)
    design = build_pair_design(df, unit=unit, task=task, y=y, y_better=y_better,
                               min_shared=min_shared, group=group, n_eval=n_eval,
                               dropna=config.dropna)
    _warn_missing_units(design)
    config = config.sized(design.n_pairs)
    binomial = (_binomial_counts(design, config.counts, check=True)
                if config.likelihood == "binomial" else None)
    stats = binomial["stats"] if binomial is not None else design.sufficient_stats()
    store = None
    if out is not None:
        from .zarr_store import MatrixStore

        store = MatrixStore.open(out, design, config)
    run = _sample(design, config, stats, binomial, client=client, store=store)
    tm = _assemble(design, config, run)
    if store is not None:
        if check_dependence:
            tm.spec["dependence"] = _dependence(df, design, tm, n_eval)
            check_dependence = False
        tm = store.finish(tm)
    if check_dependence:
        tm.spec["dependence"] = _dependence(df, design, tm, n_eval)
    _warn_sampling(tm)
    return tm


def _dependence(df: pd.DataFrame, design: PairDesign, tm, n_eval) -> dict:
    """Run the residual clustering check, warn, and return its JSON-safe table."""
    from ..dependence import check_transfer_dependence, dependence_to_dict, warn_dependence

    t0 = time.perf_counter()
    table = check_transfer_dependence(
        df, design, tm.table, tm.spec["likelihood"],
        used=[n_eval] if isinstance(n_eval, str) else [],
        random_seed=tm.spec["sampler"]["random_seed"])
    tm.spec["timings"]["dependence_s"] = time.perf_counter() - t0
    warn_dependence(table, grouped=design.columns.get("group"), stacklevel=3, matrix=True)
    return dependence_to_dict(table)


def _warn_missing_units(design: PairDesign) -> None:
    if design.missing:
        warnings.warn(
            f"units without a score are left out of the pairs of these tasks "
            f"(task: missing units): {design.missing}; see summary()['n_dropped']",
            UserWarning, stacklevel=3,
        )


def _binomial_counts(design: PairDesign, counts: str = "whole", check: bool = False) -> dict:
    """Binomial data of every pair: target counts and the plug-in stage's statistics.

    Per observation the correct count ``k`` (``round(y n)``, or ``y n`` as is for
    ``counts="average"``) and questions ``n`` of the target task; per pair the statistics
    of the probit of the smoothed accuracy ``(k + 1/2) / (n + 1)``. ``check``: refuse
    whole counts that are not whole numbers, naming the fix.
    """
    from scipy.special import ndtri

    from ..collapsed import task_sufficient_stats

    hib = np.array([design.higher_is_better[t] for t in design.tasks])
    # Oriented scores are -raw for lower-is-better tasks: the accuracy is 1 - raw there.
    acc_table = np.where(hib, design.scores, 1.0 + design.scores)
    outside = np.isfinite(acc_table) & ((acc_table < 0.0) | (acc_table > 1.0))
    if outside.any():
        rows, cols = np.nonzero(outside)
        examples = [(design.tasks[c], design.units[r], float(design.scores[r, c] *
                                                             (1 if hib[c] else -1)))
                    for r, c in zip(rows[:5], cols[:5], strict=True)]
        raise DataValidationError(
            f"likelihood='binomial' needs accuracies (or, with y_better='lower', error "
            f"rates) in [0, 1]; {outside.sum()} scores are outside, e.g. (task, unit, "
            f"score) {examples}")
    units = design.observation_units()
    tgt = design.target[design.pair_idx]
    n = np.array([design.n_eval[t] for t in design.tasks], dtype=float)[tgt]
    if check and counts == "whole":
        _check_whole(design, acc_table, hib)
    k = successes(acc_table[units, tgt], n, counts)
    z = ndtri((k + 0.5) / (n + 1.0))
    stats = task_sufficient_stats(design.x, z, design.pair_idx, design.n_pairs)
    # The source is standardized: write its exact moments so equal-size pairs pool.
    exact = design.sufficient_stats()
    stats = stats._replace(xbar=exact.xbar, sxx=exact.sxx)
    return {"k": k, "n": n, "stats": stats}


def _check_whole(design: PairDesign, acc_table: np.ndarray, hib: np.ndarray) -> None:
    """Refuse accuracies whose ``y * n_eval`` is not a whole number (fit_hierarchical's rule)."""
    n_task = np.array([design.n_eval[t] for t in design.tasks], dtype=float)
    k = acc_table * n_task
    off = np.isfinite(k) & (np.abs(k - np.round(k)) > COUNT_TOLERANCE)
    if not off.any():
        return
    rows, cols = np.nonzero(off)
    examples = [(design.tasks[c], design.units[r],
                 float(design.scores[r, c] * (1 if hib[c] else -1)))
                for r, c in zip(rows[:5], cols[:5], strict=True)]
    raise DataValidationError(
        f"y * n_eval should be a whole number of correct answers (k = round(y * n)), but "
        f"is not for {off.sum()} scores, e.g. (task, unit, score) {examples}. If these "
        "scores are averages (e.g. over the subtasks of MMLU), pass counts='average' (the "
        "binomial log-likelihood continuous in k = y * n); otherwise check that n_eval is "
        "the test-set size behind each score")


def _pair_model_data(design: PairDesign, stats, binomial: dict | None, grouped: bool) -> tuple:
    """Per-pair NUTS: model name, target per point, auxiliary data per point, start lines.

    The chains start near each pair's least-squares line: ``(0, r)`` on the standardized
    scores, or the line fitted to the probit of the smoothed accuracy for the binomial.
    """
    line = np.column_stack([np.zeros(design.n_pairs), design.r])
    if binomial is not None:
        line = np.column_stack([stats.ybar, stats.sxy / stats.sxx])
        return "binomial_probit", binomial["k"], binomial["n"], line
    if grouped:
        groups = design.unit_group[design.observation_units()].astype(float)
        return "normal_grouped", design.y, groups, line
    return "student_t", design.y, np.ones_like(design.y), line


def _sample(design: PairDesign, config: PairConfig, stats, binomial: dict | None, *,
            client=None, store=None) -> dict:
    """Population NUTS, then the pair stage, summarized chunk by chunk."""
    import jax

    from .compile_cache import ensure_compilation_cache
    from .summaries import ChunkSummaries

    s = config.sampler
    timings = {}
    jax_cache = ensure_compilation_cache()
    # R-hat/ESS run in forked processes when this process draws a large matrix; on a
    # cluster or into a store each chunk computes its own.
    inline = client is not None or store is not None
    if not inline and config.chunk_size:
        from .parallel import chunk_processes

        # Per-pair NUTS chunks in worker processes summarize themselves.
        inline = chunk_processes(config.per_pair_nuts,
                                 -(-design.n_pairs // config.chunk_size)) > 0
    workers = (min(2, os.cpu_count() or 1)
               if design.n_pairs >= _POOL_MIN_PAIRS and not inline else 0)
    # Created before any JAX work (the workers are forked) and before sampling, so their
    # start-up overlaps the population run.
    with DiagnosticsPool(workers) as pool:
        seed = s["random_seed"]
        if store is not None and store.seed is not None:
            seed = store.seed
        if seed is None:
            seed = int(np.random.SeedSequence(None).generate_state(1)[0])
        k_pop, k_pairs = jax.random.split(jax.random.key(int(seed)))
        t0 = time.perf_counter()
        post = store.population() if store is not None else None
        if post is None:
            post = _population(k_pop, stats, config)
            if store is not None:
                store.save_population(post, seed)
        timings["population_s"] = time.perf_counter() - t0
        # On an accelerator the R-hat/ESS of the pair draws run there too (the forked
        # workers, made before JAX started, are then left idle).
        on_device = jax.default_backend() != "cpu"
        sums = ChunkSummaries(design.n_pairs, s["chains"], s["draws"],
                              config.keep_draws and store is None,
                              DeviceDiagnostics() if on_device else pool)
        t0 = time.perf_counter()
        plug_in = _pair_stage(design, config, stats, binomial, post, k_pairs, sums,
                              client=client, store=store, jax_cache=jax_cache,
                              timings=timings)
        timings["pairs_s"] = time.perf_counter() - t0
    # arviz_stats R-hat / ESS: main-process time computing or waiting for them (pairs_s
    # includes it); with worker processes most of their work overlaps the draws.
    timings["pair_diagnostics_s"] = sums.diag_s
    timings["diagnostics_workers"] = 0 if on_device else workers
    timings["diagnostics_on"] = ("dask workers" if client is not None else
                                 "chunk processes" if timings.get("pair_processes") else
                                 "device (blackjax)" if on_device else "cpu (arviz-stats)")
    return {"post": post, "sums": sums, "plug_in": plug_in, "timings": timings,
            "jax_cache": jax_cache}


def _population(key, stats, config: PairConfig):
    """The population NUTS run: per-pair sigma by quadrature, or one shared sigma."""
    from .sampler import sample_population

    s = config.sampler
    if config.per_pair_sigma and not config.per_pair_nuts:
        # Each pair's sigma integrated out by 1-D quadrature (5-D population NUTS).
        from .pair_sigma import sample_population as sample_population_pair_sigma

        return sample_population_pair_sigma(
            key, stats, config.priors, chains=s["chains"], draws=s["draws"],
            tune=s["tune"], target_accept=s["target_accept"])
    return sample_population(key, stats, config.priors, per_pair_sigma=False,
                             chains=s["chains"], draws=s["draws"], tune=s["tune"],
                             target_accept=s["target_accept"])


def _pair_stage(design: PairDesign, config: PairConfig, stats, binomial: dict | None, post,
                key, sums, client=None, store=None, jax_cache: str | None = None,
                timings: dict | None = None) -> dict | None:
    """Draw every pair's intercept and slope into ``sums``, chunk by chunk.

    The chunks of :func:`~.stage.make_plan` (exact conditional Gaussian draws given each
    population draw, or per-pair NUTS under the plug-in population prior, which is
    returned) run here (worker processes or threads for per-pair NUTS,
    :func:`~.parallel.chunk_processes`), or as tasks on ``client``'s cluster;
    with a ``store``, finished chunks are read back and the others written as they end.
    """
    import jax

    from .parallel import chunk_processes, run_in_order, run_in_processes
    from .stage import make_plan, run_chunk, summarize_chunk

    plan = make_plan(design, config, stats, binomial, post, key)
    threads = 1
    if plan.kind == "nuts":
        from .robust import pair_threads

        threads = pair_threads()
    bar = None
    if config.sampler["progressbar"]:
        from tqdm.auto import tqdm

        bar = tqdm(total=design.n_pairs, desc="pairs", unit="pair")
    keep = bool(config.keep_draws)
    try:
        bounds = plan.bounds
        if store is not None:
            done = store.done(bounds, plan.columns())
            for i in np.flatnonzero(done):
                start, stop = bounds[i]
                sums.put(start, stop, store.read_columns(start, stop))
                if bar is not None:
                    bar.update(stop - start)
            todo = [i for i in range(len(bounds)) if not done[i]]
        else:
            todo = list(range(len(bounds)))
        processes = 0
        if client is None and jax.default_backend() == "cpu":
            processes = chunk_processes(plan.kind == "nuts", len(todo))
        if timings is not None:
            timings["pair_processes"] = processes

        def finished(i: int, result: dict) -> None:
            sums.put(result["start"], result["stop"], result["cols"],
                     None if store is not None else result["draws"])
            if store is not None:
                store.write_chunk(i, result)
            if bar is not None:
                bar.update(result["stop"] - result["start"])

        if client is not None:
            from .distributed import run_on_cluster

            run_on_cluster(client, plan, [(i, *bounds[i]) for i in todo], keep, finished)
        elif store is not None or processes:
            index = {b: i for i, b in enumerate(bounds)}
            chunks = [bounds[i] for i in todo]
            results = (run_in_processes(plan, chunks, processes, keep, jax_cache) if processes
                       else run_in_order(lambda a, b: summarize_chunk(plan, a, b, keep),
                                         chunks, threads))
            for start, stop, result in results:
                finished(index[(start, stop)], result)
        else:
            sigma_mean = np.full(design.n_pairs, np.nan)
            for start, stop, out in run_in_order(lambda a, b: run_chunk(plan, a, b),
                                                 bounds, threads):
                sums.add(start, stop, out["intercept"], out["slope"],
                         out.get("n_divergent"))
                if "sigma_mean" in out:
                    sigma_mean[start:stop] = out["sigma_mean"]
                if bar is not None:
                    bar.update(stop - start)
            if plan.kind == "pair_sigma":
                sums.cols["sigma_mean"] = sigma_mean
        sums.finish()
    finally:
        if bar is not None:
            bar.close()
    return plan.plug_in


def _assemble(design: PairDesign, config: PairConfig, run: dict):
    """The :class:`TransferMatrix` of a finished run."""
    import xarray as xr

    from ..result import library_versions
    from .result import TransferMatrix
    from .summaries import pair_table

    post, sums = run["post"], run["sums"]
    s = config.sampler
    n_pairs = design.n_pairs
    if config.per_pair_nuts:
        sigma_mean = np.full(n_pairs, np.nan)
    elif config.per_pair_sigma:
        sigma_mean = sums.cols.pop("sigma_mean")  # from the quadrature draws
    else:
        sigma_mean = np.full(n_pairs, post.params["sigma"].mean())
    # Data units: per unit of the source; the binomial's target scale is probit already.
    scale = (1.0 if config.likelihood == "binomial" else design.y_scale) / design.x_scale
    table = pair_table(design, sums.cols, sigma_mean, scale)
    shared_sigma = not (config.per_pair_sigma or config.per_pair_nuts)
    coords = {"chain": np.arange(s["chains"]), "draw": np.arange(s["draws"])}
    population = xr.Dataset({k: (("chain", "draw"), v) for k, v in post.params.items()
                             if k != "sigma" or shared_sigma}, coords=coords)
    sampler_stats = xr.Dataset(
        {"diverging": (("chain", "draw"), post.diverging),
         "tree_depth": (("chain", "draw"), post.tree_depth),
         "acceptance_rate": (("chain", "draw"), post.acceptance_rate),
         "step_size": (("chain",), post.step_size)},
        coords=coords,
    )
    kept, sums.kept = sums.kept, None
    draws_ds = _draws_matrix(design, kept, coords) if config.keep_draws else None
    spec = {**config.to_dict(), "columns": dict(design.columns),
            "population_prior": run["plug_in"] if config.per_pair_nuts else "sampled",
            "n_eval": design.n_eval, "timings": run["timings"],
            "jax_compilation_cache": run["jax_cache"],
            "versions": {**library_versions(), **_jax_versions()}}
    return TransferMatrix(design=design, table=table, population=population,
                          sampler_stats=sampler_stats, draws=draws_ds,
                          priors=config.priors, spec=spec)


def _draws_matrix(design: PairDesign, kept: dict, coords: dict):
    """Kept pair draws as (source, target, chain, draw) arrays, NaN on the diagonal."""
    import xarray as xr

    k = design.n_tasks
    full = {}
    for v, arr in kept.items():
        mat = np.full((k, k, *arr.shape[1:]), np.nan)
        mat[design.source, design.target] = arr
        full[v] = (("source", "target", "chain", "draw"), mat)
    tasks = list(design.tasks)
    return xr.Dataset(full, coords={"source": tasks, "target": tasks, **coords})


def _jax_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("jax", "blackjax"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _warn_sampling(tm) -> None:
    diag = tm.diagnostics().attrs
    if not diag["ok"]:
        warnings.warn(
            f"{diag['divergences']} divergent transitions; "
            f"{diag['n_rhat_high']} of {diag['n_pairs']} pairs with R-hat > 1.01 and "
            f"{diag['n_ess_low']} with bulk ESS < 400: see tm.diagnostics(); more draws "
            f"(draws=, tune=) or a higher target_accept usually help",
            SamplingWarning, stacklevel=3,
        )
