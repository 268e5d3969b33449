"""The bundled datasets: every real dataset of shared/data loads, unchanged, with its README."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import bayesslope as bs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# Package name -> the curated source file it copies (the truth the copy must equal).
SOURCES = {
    "pythia": "pythia_lambada/pythia_demo.csv",
    "pythia_tasks": "pythia_lambada/pythia_lambada_vs_tasks.csv",
    "pythia_mmlu": "pythia_lambada/pythia_lambada_vs_mmlu.csv",
    "openclip": "openclip_imagenet/openclip_imagenet_vs_tasks.csv",
    "imagenet_testbed": "imagenet_testbed/imagenet_testbed_val_vs_shifts.csv",
    "obsscaling": "obsscaling/obsscaling_hellaswag_vs_tasks.csv",
    "olmo_ladder": "olmo_ladder_losses/olmo_ladder_losses.csv",
}


def test_every_shared_dataset_is_listed():
    assert set(bs.list_datasets().index) == set(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_bundled_copy_equals_the_curated_source(name):
    source = SHARED / SOURCES[name]
    if not source.exists():
        pytest.skip(f"{source} not present (shared/data is beside the checkout in CI)")
    expected = pd.read_csv(source)
    got = bs.load_dataset(name)
    pd.testing.assert_frame_equal(got[expected.columns], expected)
    # Only the orientation columns a source lacks may be added.
    assert set(got.columns) - set(expected.columns) <= {"x_higher_is_better",
                                                         "y_higher_is_better"}
    row = bs.list_datasets().loc[name]
    assert row["rows"] == len(expected)
    assert row["tasks"] == expected["task"].nunique()
    assert row["units"] == expected[row["unit"]].nunique()


def test_orientation_added_where_missing():
    mmlu = bs.load_dataset("pythia_mmlu")
    assert not mmlu["x_higher_is_better"].any()  # log-perplexity: lower is better
    assert mmlu["y_higher_is_better"].all()  # accuracy


def test_pythia_demo_checkpoint_counts():
    # The README's "12 models x 14 checkpoints" is 168; pythia-2.8b has 10 (164 per task).
    df = bs.load_dataset("pythia")
    per_task = df.groupby("task").size()
    assert (per_task == 164).all()
    assert df.groupby("model")["step"].nunique().loc["pythia-2.8b"] == 10


def test_readme_and_license_travel_with_every_dataset():
    from importlib import resources

    table = bs.list_datasets()
    for name in table.index:
        text = bs.dataset_readme(name)
        assert "license" in text.lower() or "License" in text, name
        lic = bs.datasets._DATASETS[name]["license"]
        assert resources.files("bayesslope.datasets").joinpath(lic).read_text().strip()


def test_load_returns_a_fresh_copy():
    a = bs.load_dataset("pythia")
    a.loc[0, "y"] = -1.0
    assert bs.load_dataset("pythia").loc[0, "y"] != -1.0


def test_unknown_dataset_names_the_choices():
    with pytest.raises(bs.DataValidationError, match=r"unknown dataset 'nope'.*olmo_ladder"):
        bs.load_dataset("nope")
