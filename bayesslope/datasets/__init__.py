"""Real datasets shipped with bayesslope (each with its README and source license)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_dataset", "list_datasets"]

_DATASETS = {
    "pythia": {
        "file": "pythia_demo.csv",
        "readme": "pythia_README.md",
        "license": "pythia_LICENSE.source.txt",
        "description": (
            "Pythia checkpoints (EleutherAI, Apache-2.0): LAMBADA log-perplexity (x, lower is "
            "better) vs zero-shot accuracy (y) on 7 tasks; 12 models x 14 checkpoints."
        ),
    },
}


def list_datasets() -> pd.DataFrame:
    """Datasets shipped with the package.

    Returns
    -------
    pandas.DataFrame
        Indexed by name, with ``description``, ``file``, ``readme`` and ``license``.
    """
    table = pd.DataFrame.from_dict(_DATASETS, orient="index")
    table.index.name = "name"
    return table[["description", "file", "readme", "license"]]


def load_dataset(name: str) -> pd.DataFrame:
    """Load a shipped dataset as a tidy DataFrame.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets` (e.g. ``"pythia"``).

    Returns
    -------
    pandas.DataFrame
        Long format with columns ``x``, ``y``, ``task``, the orientation columns
        ``x_higher_is_better`` / ``y_higher_is_better`` and dataset-specific extras.

    Examples
    --------
    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> sorted(df["task"].unique())[:3]
    ['arc_challenge', 'arc_easy', 'logiqa']
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {sorted(_DATASETS)}")
    with resources.files(__package__).joinpath(_DATASETS[name]["file"]).open("rb") as fh:
        return pd.read_csv(fh)
