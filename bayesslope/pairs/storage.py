"""A :class:`~.result.TransferMatrix` <-> one netCDF file (h5netcdf; no pickle).

Layout: groups ``table`` (per-pair summaries over dim ``pair``), ``population``,
``sampler_stats``, ``design`` (scores and pair arrays) and, when kept, ``draws``; the
root attribute ``bayesslope_spec`` holds JSON: ``kind`` = ``"transfer_matrix"``, the
spec (with ``dependence``, the residual clustering table of
:meth:`~.result.TransferMatrix.dependence`, when checked), priors, the design's labels and
its data hash (checked on reading).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["KIND", "design_dataset", "spec_json", "write_transfer_matrix",
           "read_transfer_matrix"]

KIND = "transfer_matrix"
SPEC_ATTR = "bayesslope_spec"
FORMAT_VERSION = 1
_DESIGN_ARRAYS = ("source", "target", "n", "n_dropped", "r", "x_scale", "y_scale", "x", "y",
                  "pair_idx")


def design_dataset(d):
    """The design's arrays (scores and pair structure) as an xarray Dataset."""
    import xarray as xr

    design = xr.Dataset({name: (f"{name}_dim" if name in ("x", "y", "pair_idx") else "pair",
                                np.asarray(getattr(d, name))) for name in _DESIGN_ARRAYS})
    design["scores"] = (("unit", "task"), d.scores)
    if d.unit_group is not None:
        design["unit_group"] = ("unit", d.unit_group)
    return design


def spec_json(tm, extra: dict | None = None) -> str:
    """The root attribute: kind, spec, priors, the design's labels and data hash (JSON)."""
    d = tm.design
    info = {"tasks": list(d.tasks), "units": list(d.units), "groups": list(d.groups),
            "higher_is_better": d.higher_is_better, "missing": d.missing,
            "n_eval": d.n_eval, "columns": d.columns, "n_rows_dropped": d.n_rows_dropped,
            "data_hash": d.data_hash()}
    spec = {"kind": KIND, "format_version": FORMAT_VERSION, "spec": tm.spec,
            "priors": tm.priors, "design": info, "table_columns": list(tm.table.columns),
            **(extra or {})}
    return json.dumps(spec)


def write_transfer_matrix(tm, path: Path) -> Path:
    """Write ``tm`` to ``path``; returns ``path``."""
    import xarray as xr

    t = tm.table
    table = xr.Dataset({c: ("pair", t[c].to_numpy()) for c in t.columns})
    for level in ("source", "target"):
        table[level] = ("pair", np.asarray(t.index.get_level_values(level), dtype=object))
    groups = {"table": table, "population": tm.population, "sampler_stats": tm.sampler_stats,
              "design": design_dataset(tm.design)}
    if tm.draws is not None:
        groups["draws"] = tm.draws
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {SPEC_ATTR: spec_json(tm)}
    tree.to_netcdf(path, engine="h5netcdf")
    return path


def read_transfer_matrix(tree, spec: dict):
    """The :class:`TransferMatrix` of an opened file (``spec``: its parsed JSON).

    Raises ``ValueError`` when the stored data do not match their hash.
    """
    from .design import PairDesign
    from .result import TransferMatrix

    info = spec["design"]
    ds = tree["design"].to_dataset()
    design = PairDesign(
        tasks=tuple(info["tasks"]), units=tuple(info["units"]),
        scores=ds["scores"].values.astype(np.float64),
        higher_is_better={k: bool(v) for k, v in info["higher_is_better"].items()},
        missing=dict(info["missing"]),
        unit_group=ds["unit_group"].values.astype(np.int64) if "unit_group" in ds else None,
        groups=tuple(info["groups"]), n_eval=info["n_eval"], columns=dict(info["columns"]),
        n_rows_dropped=int(info["n_rows_dropped"]),
        **{name: ds[name].values for name in _DESIGN_ARRAYS},
    )
    if design.data_hash() != info["data_hash"]:
        raise ValueError("the stored data do not match their hash")
    tds = tree["table"].to_dataset()
    index = pd.MultiIndex.from_arrays(
        [tds["source"].values.astype(str), tds["target"].values.astype(str)],
        names=["source", "target"])
    table = pd.DataFrame({c: tds[c].values for c in spec["table_columns"]}, index=index)
    draws = tree["draws"].to_dataset() if "draws" in tree.children else None
    if draws is not None:
        draws = draws.assign_coords(source=draws["source"].values.astype(str),
                                    target=draws["target"].values.astype(str))
    return TransferMatrix(design=design, table=table,
                          population=tree["population"].to_dataset(),
                          sampler_stats=tree["sampler_stats"].to_dataset(),
                          draws=draws, priors=spec["priors"], spec=spec["spec"])
