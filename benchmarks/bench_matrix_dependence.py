"""The transfer matrix's residual-clustering null: sparse one-hot products vs dense einsum.

    python benchmarks/bench_matrix_dependence.py [--json P]

Data: the bundled OpenCLIP results (121 models x 37 tasks, ``dropna=True``: 1,332 pairs,
units missing from some pairs, so the null takes the matrix-product path). The transfer
matrix is fitted once (``per_pair_sigma=False``, ``random_seed=1``); then, for every
candidate column of the dependence check, the permutation null is computed side by side
by ``bayesslope.dependence._unit_permutation_null`` (sparse one-hot maps) and by the dense
einsum it replaced (reproduced below as the reference), on the same residuals and the same
permutations. Both must give the same sums of squares.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np


def dense_null(values, task, units, codes, n_perm, rng, batch=64):
    """The previous implementation (no strata, matrix-product path only), for reference."""
    from bayesslope.dependence import _within_task_permutations

    uu, u_first, u_inv = np.unique(units, return_index=True, return_inverse=True)
    tt, t_inv = np.unique(task, return_inverse=True)
    n_u, n_t = uu.size, tt.size
    level = np.asarray(codes)[u_first]
    n_lev = int(level.max()) + 1
    present = np.zeros((n_u, n_t))
    present[u_inv, t_inv] = 1.0
    tables = []
    for v in values:
        table = np.zeros((n_u, n_t))
        table[u_inv, t_inv] = v
        tables.append(table)
    perms = _within_task_permutations(level, np.zeros(n_u, dtype=np.int64), n_perm, rng)
    perms = perms.astype(np.int64)
    q = np.zeros((len(values), n_perm))
    for lo in range(0, n_perm, batch):
        hi = min(lo + batch, n_perm)
        onehot = np.zeros((n_u, hi - lo, n_lev))
        onehot[np.arange(n_u)[:, None], np.arange(hi - lo)[None, :], perms[lo:hi].T] = 1.0
        onehot = onehot.reshape(n_u, -1)
        cell_n = np.einsum("ut,uk->tk", present, onehot)
        inv_n = np.where(cell_n > 0, 1.0 / np.maximum(cell_n, 1.0), 0.0)
        for i, table in enumerate(tables):
            sums = np.einsum("ut,uk->tk", table, onehot)
            q[i, lo:hi] = (np.square(sums) * inv_n).sum(axis=0).reshape(
                hi - lo, n_lev).sum(axis=1)
    task_n = present.sum(axis=0)
    t_part = [float((np.square(t.sum(axis=0)) / task_n).sum()) for t in tables]
    return [q[i] - t_part[i] for i in range(len(values))]  # between-cell sums of squares


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--permutations", type=int, default=1999)
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import bayesslope as bs
    from bayesslope.dependence import (
        _unit_permutation_null,
        pair_residuals,
        unit_candidate_columns,
    )

    clip = bs.load_dataset("openclip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = bs.fit_transfer_matrix(clip, unit="model", task="task", y="y",
                                    per_pair_sigma=False, dropna=True, random_seed=1,
                                    check_dependence=False)
    design = tm.design
    units = design.observation_units()
    residuals = pair_residuals(design, tm.table, "normal")
    cands, _ = unit_candidate_columns(clip, design, [])
    rows = []
    load0 = os.getloadavg()[0]
    for name, codes in cands.items():
        values = (residuals, design.x)
        t0 = time.perf_counter()
        new = _unit_permutation_null(values, design.pair_idx, units, codes[units], None,
                                     args.permutations, np.random.default_rng(1))
        t_new = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = dense_null(values, design.pair_idx, units, codes[units], args.permutations,
                         np.random.default_rng(1))
        t_dense = time.perf_counter() - t0
        diff = max(float(np.max(np.abs(new[i][0] - ref[i]))) for i in range(len(values)))
        rows.append({"column": name, "levels": int(np.max(codes)) + 1, "sparse_s": t_new,
                     "dense_s": t_dense, "speedup": t_dense / t_new,
                     "max_abs_diff": diff})
        print(rows[-1], flush=True)
    out = {"pairs": int(design.n_pairs), "units": int(np.unique(units).size),
           "permutations": args.permutations, "load_before": load0,
           "load_after": os.getloadavg()[0], "columns": rows,
           "sparse_total_s": sum(r["sparse_s"] for r in rows),
           "dense_total_s": sum(r["dense_s"] for r in rows)}
    print(json.dumps({k: v for k, v in out.items() if k != "columns"}))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
