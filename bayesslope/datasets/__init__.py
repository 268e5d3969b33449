"""Real datasets shipped with bayesslope, each with its README (provenance) and source license.

The files are copies of the project's curated data (gzip-compressed, content unchanged): every
number was published by a third party and only reshaped. Each dataset's README says where it
came from, what each column means and what to beware of; :func:`dataset_readme` returns it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from ..exceptions import DataValidationError

__all__ = ["load_dataset", "list_datasets", "dataset_readme"]

# name -> file, README, license, the unit column (one model / run; rows of one unit are not
# independent evidence), orientation columns to add when the file lacks them, description.
_DATASETS: dict[str, dict] = {
    "pythia": {
        "file": "pythia_demo.csv",
        "readme": "pythia_README.md",
        "license": "pythia_LICENSE.source.txt",
        "unit": "model",
        "license_name": "Apache-2.0",
        "description": "Pythia demo subset: LAMBADA log-perplexity vs zero-shot accuracy, "
                       "checkpoints >= step 13000 of the models >= 410M",
    },
    "pythia_tasks": {
        "file": "pythia_tasks.csv.gz",
        "readme": "pythia_README.md",
        "license": "pythia_LICENSE.source.txt",
        "unit": "model",
        "license_name": "Apache-2.0",
        "description": "Pythia, all 16 models and checkpoints (steps 0-143000), 8 core tasks, "
                       "0- and 5-shot (column shots)",
    },
    "pythia_mmlu": {
        "file": "pythia_mmlu.csv.gz",
        "readme": "pythia_README.md",
        "license": "pythia_LICENSE.source.txt",
        "unit": "model",
        "license_name": "Apache-2.0",
        # The source file has no orientation columns: x is a log-perplexity, y an accuracy.
        "orientation": {"x_higher_is_better": False, "y_higher_is_better": True},
        "description": "Pythia, 57 MMLU subjects (5-shot) vs LAMBADA log-perplexity, "
                       "16 models x 15 checkpoints",
    },
    "openclip": {
        "file": "openclip.csv.gz",
        "readme": "openclip_README.md",
        "license": "openclip_LICENSE.source.txt",
        "unit": "model",
        "license_name": "MIT",
        "description": "OpenCLIP: ImageNet zero-shot top-1 vs 37 other zero-shot evaluations "
                       "(task_group, pretrain_family)",
    },
    "imagenet_testbed": {
        "file": "imagenet_testbed.csv.gz",
        "readme": "imagenet_testbed_README.md",
        "license": "imagenet_testbed_LICENSE.source.txt",
        "unit": "model",
        "license_name": "MIT",
        "description": "ImageNet testbed: ImageNet val top-1 vs top-1 under 36 distribution "
                       "shifts (model_type; PGD: Simpson's paradox)",
    },
    "obsscaling": {
        "file": "obsscaling.csv.gz",
        "readme": "obsscaling_README.md",
        "license": "obsscaling_LICENSE.source.txt",
        "unit": "model",
        "license_name": "Apache-2.0",
        "description": "Observational scaling: HellaSwag accuracy vs 7 LLM benchmarks, "
                       "one point per model, 47 families (column family)",
    },
    "olmo_ladder": {
        "file": "olmo_ladder.csv.gz",
        "readme": "olmo_ladder_README.md",
        "license": "olmo_ladder_LICENSE.source.txt",
        "unit": "run",
        "license_name": "Apache-2.0",
        "description": "OLMo ladder: C4 validation loss vs 10 other validation losses "
                       "(loss-to-loss) over the checkpoints of 30 runs",
    },
}


def _check_name(name: str) -> dict:
    if name not in _DATASETS:
        raise DataValidationError(
            f"unknown dataset {name!r}; available: {sorted(_DATASETS)} (see list_datasets())"
        )
    return _DATASETS[name]


@cache
def _read(name: str) -> pd.DataFrame:
    info = _check_name(name)
    # pandas infers gzip from the file name only for paths: say it for the stream.
    compression = "gzip" if info["file"].endswith(".gz") else None
    with resources.files(__package__).joinpath(info["file"]).open("rb") as fh:
        df = pd.read_csv(fh, compression=compression)
    for column, value in info.get("orientation", {}).items():
        if column not in df.columns:
            df[column] = value
    return df


def list_datasets() -> pd.DataFrame:
    """Datasets shipped with the package, with their size and license.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``name``: ``rows``, ``x`` (upstream metric), ``y`` (downstream metric,
        or several), ``tasks``, ``unit`` (the column naming a model or run, the natural
        ``group=``), ``units`` (its number of levels), ``license``, ``description``,
        ``readme`` (file name; :func:`dataset_readme` returns its text).
        Counts are read from the data themselves.

    Examples
    --------
    >>> import bayesslope as bs
    >>> table = bs.list_datasets()
    >>> int(table.loc["pythia", "tasks"])
    7
    """
    rows = []
    for name, info in _DATASETS.items():
        df = _read(name)
        rows.append({
            "name": name,
            "rows": len(df),
            "x": ", ".join(map(str, pd.unique(df["x_metric"]))),
            "y": ", ".join(map(str, pd.unique(df["y_metric"]))),
            "tasks": df["task"].nunique(),
            "unit": info["unit"],
            "units": df[info["unit"]].nunique(),
            "license": info["license_name"],
            "description": info["description"],
            "readme": info["readme"],
        })
    return pd.DataFrame(rows).set_index("name")


def load_dataset(name: str) -> pd.DataFrame:
    """Load a shipped dataset as a tidy DataFrame (a fresh copy each call).

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`: ``"pythia"`` (the demo subset), ``"pythia_tasks"``,
        ``"pythia_mmlu"``, ``"openclip"``, ``"imagenet_testbed"``, ``"obsscaling"``,
        ``"olmo_ladder"``.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (model or checkpoint) x task, with columns ``x``, ``y``,
        ``task``, ``x_metric``, ``y_metric``, the orientation columns
        ``x_higher_is_better`` / ``y_higher_is_better`` and dataset-specific extras
        (e.g. ``model``, ``step``, ``chance``, ``n_eval_examples``). Rows that share a
        model or run (see ``list_datasets()["unit"]``) are not independent evidence: fit
        them with ``group=`` set to that column.

    Raises
    ------
    DataValidationError
        For an unknown name (the message lists the available ones).

    Examples
    --------
    >>> import bayesslope as bs
    >>> df = bs.load_dataset("pythia")
    >>> sorted(df["task"].unique())[:3]
    ['arc_challenge', 'arc_easy', 'logiqa']
    >>> df.groupby("model")["step"].nunique().loc["pythia-2.8b"]
    np.int64(10)
    """
    return _read(name).copy()


def dataset_readme(name: str) -> str:
    """The README of a shipped dataset: provenance, license, columns and caveats.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.

    Returns
    -------
    str
    """
    info = _check_name(name)
    return resources.files(__package__).joinpath(info["readme"]).read_text(encoding="utf-8")
