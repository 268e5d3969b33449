"""``load``: read any result bayesslope wrote (a fit or a transfer matrix), no pickle.

Both results are one netCDF file whose root attribute ``bayesslope_spec`` holds JSON; its
``kind`` says which result it is (``"transfer_matrix"``; a fit's spec has none). A
transfer matrix written with ``fit_transfer_matrix(..., out="m.zarr")`` is a Zarr store
(a folder, or a store object): it is opened lazily, its kept draws read on demand
(:mod:`bayesslope.pairs.zarr_store`). A file
that cannot be read as one (missing, truncated, not netCDF, spec not JSON, data not
matching their hash, written by something else) raises a DataValidationError that names
the path and the reason.
"""

from __future__ import annotations

import json

from .exceptions import DataValidationError

__all__ = ["load"]

SPEC_ATTR = "bayesslope_spec"


def load(path):
    """Read a result written by ``TransferFit.to_netcdf`` or ``TransferMatrix.to_netcdf``.

    Also opens the Zarr store of ``fit_transfer_matrix(..., out=...)``: the table, design
    and population are read, the kept draws stay on disk (dask arrays when dask is
    installed) until used.

    Parameters
    ----------
    path : str, pathlib.Path or zarr store

    Returns
    -------
    TransferFit or TransferMatrix
        Whichever was saved, with identical summaries.

    Raises
    ------
    DataValidationError
        ``not a readable bayesslope result: <path> (<reason>)``.

    Examples
    --------
    Save a fit and read it back (the round trip is exact; about 20 s on 2 cores):

    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> two = df[df["task"].isin(["piqa", "sciq"])]
    >>> fit = bs.fit_hierarchical(two, group="model", group_nesting="nested",
    ...                           random_seed=1)  # doctest: +SKIP
    >>> path = fit.to_netcdf("fit.nc")  # doctest: +SKIP
    >>> back = bs.load(path)  # doctest: +SKIP
    >>> back.summary().equals(fit.summary())  # doctest: +SKIP
    True
    """
    try:
        from .pairs.zarr_store import is_zarr_store, read_zarr

        if is_zarr_store(path):
            return read_zarr(path)
        import xarray as xr

        tree = xr.open_datatree(path, engine="h5netcdf").load()
        if SPEC_ATTR not in tree.attrs:
            raise ValueError(f"no {SPEC_ATTR!r} attribute: not written by bayesslope")
        spec = json.loads(tree.attrs[SPEC_ATTR])
        if not isinstance(spec, dict):
            raise ValueError(f"the {SPEC_ATTR!r} attribute is not a JSON object")
        if spec.get("kind") == "transfer_matrix":
            from .pairs.storage import read_transfer_matrix

            return read_transfer_matrix(tree, spec)
        from .result import fit_from_tree

        return fit_from_tree(tree, spec)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise DataValidationError(
            f"not a readable bayesslope result: {path} ({reason})") from None
