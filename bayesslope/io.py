"""``load``: read any result bayesslope wrote (a fit or a transfer matrix), no pickle.

Both results are one netCDF file whose root attribute ``bayesslope_spec`` holds JSON; its
``kind`` says which result it is (``"transfer_matrix"``; a fit's spec has none). A file
that cannot be read as one (missing, truncated, not netCDF, spec not JSON, data not
matching their hash, written by something else) raises a DataValidationError that names
the path and the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from .exceptions import DataValidationError

__all__ = ["load"]

SPEC_ATTR = "bayesslope_spec"


def load(path: str | Path):
    """Read a result written by ``TransferFit.to_netcdf`` or ``TransferMatrix.to_netcdf``.

    Parameters
    ----------
    path : str or pathlib.Path

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
