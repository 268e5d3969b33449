"""Every modelling decision is taken once (bayesslope.resolve) and the builders only read it.

No sampling here: these tests build designs and PyMC models, never run NUTS.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import seed, simulate

from bayesslope import DataValidationError
from bayesslope.data import prepare_design
from bayesslope.model import ModelConfig, build_model
from bayesslope.resolve import (
    choose_centered_log_sigma,
    choose_centered_variant,
    collapsible,
    resolve_model,
)
from bayesslope.variant_data import VariantData, prepare_variants


@pytest.fixture(scope="module")
def frame():
    df = simulate(seed(5)).df
    df["chance"] = 0.0
    df["n"] = 1000
    df["y"] = (df["y"] * 1000).round() / 1000  # whole counts out of 1000
    return df


@pytest.fixture(scope="module")
def design(frame):
    return prepare_design(frame, warn_weak=False)


# Each option that makes the model "not the core Gaussian line", as fit_hierarchical takes it.
VARIANT_OPTIONS = [
    ({"link": "probit"}, {}),
    ({"likelihood": "student_t"}, {}),
    ({"n_eval": "n"}, {}),
    ({"chance": "chance"}, {}),
    ({"link": "logit", "lapse": True}, {}),
    ({"x_se": 0.1}, {}),
    ({}, {"per_task_sigma": "pooled"}),
    ({}, {"shape": "quadratic"}),
]


@pytest.mark.parametrize(("variant_kw", "model_kw"), VARIANT_OPTIONS)
def test_one_definition_of_the_core_model(frame, design, variant_kw, model_kw):
    variants = prepare_variants(frame, design, **variant_kw)
    assert not collapsible(variants, **model_kw)
    config = resolve_model(design, variants, **model_kw)
    assert config.formulation == "full"
    with pytest.raises(DataValidationError, match="formulation='collapsed' is valid only"):
        resolve_model(design, variants, formulation="collapsed", **model_kw)


def test_core_model_is_collapsed_and_per_task_sigma_stays_collapsible(frame, design):
    core = prepare_variants(frame, design)
    assert core.is_default and core.lapse is False
    assert resolve_model(design, core).formulation == "collapsed"
    assert resolve_model(design, core, per_task_sigma=True).formulation == "collapsed"
    assert resolve_model(design, core, formulation="full").formulation == "full"


def test_config_holds_every_decision(frame, design):
    variants = prepare_variants(frame, design, likelihood="student_t")
    config = resolve_model(design, variants, per_task_sigma="pooled")
    assert config.centered_tasks == tuple(choose_centered_variant(design, variants,
                                                                  per_task_noise=True))
    assert config.centered_log_sigma == tuple(choose_centered_log_sigma(design))
    assert len(config.centered_tasks) == design.n_tasks
    forced = resolve_model(design, variants, parameterization="non_centered")
    assert forced.centered_tasks == (False,) * design.n_tasks
    # The config is frozen, JSON-safe, and carries no variant option (VariantData owns them).
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.formulation = "collapsed"
    spec = config.to_dict()
    assert spec["formulation"] == "full" and not {"link", "likelihood", "lapse"} & set(spec)


def test_builder_reads_the_config_and_decides_nothing(frame, design):
    variants = prepare_variants(frame, design, likelihood="student_t")
    config = resolve_model(design, variants, per_task_sigma="pooled")
    model = build_model(design, config, variants)
    n_centered = int(np.sum(config.centered_log_sigma))
    if n_centered:
        assert model["sigma_log_centered"].shape.eval()[0] == n_centered
    # Without the per-task decisions the builder refuses instead of re-deciding.
    with pytest.raises(ValueError, match="centered_log_sigma needs one flag per task"):
        build_model(design, dataclasses.replace(config, centered_log_sigma=()), variants)
    with pytest.raises(ValueError, match="centered_tasks needs one flag per task"):
        build_model(design, dataclasses.replace(config, centered_tasks=()), variants)


def test_model_config_refuses_unresolved_options():
    with pytest.raises(DataValidationError, match="formulation should be 'collapsed' or 'full'"):
        ModelConfig(priors={}, formulation="auto")
    with pytest.raises(DataValidationError, match="per_task_sigma"):
        ModelConfig(priors={}, per_task_sigma="yes")


@pytest.mark.parametrize(("lapse", "stored"), [(False, False), (True, True), (0.05, 0.05)])
def test_variant_data_owns_the_lapse(frame, design, lapse, stored):
    v = prepare_variants(frame, design, link="probit", chance="chance", lapse=lapse)
    assert v.lapse == stored and type(v.lapse) is type(stored)
    back = VariantData.from_parts(v.to_dict(), v.arrays())
    assert back.lapse == stored and back.link == "probit"
