"""Every docstring Examples section of the public API runs, in the docs' fast mode.

The examples are written for readers (``# doctest: +SKIP`` on the lines that fit, because a
full-length fit does not belong in a doctest run), so a plain ``--doctest-modules`` run would
skip exactly the lines that matter. Here every ``>>>`` statement of an object's docstring runs
in order in one namespace, directives and expected output ignored, with every NUTS run
shortened as in tests/test_docs_examples.py: a renamed argument or column breaks CI, not a
reader. Values are not compared (short runs are not converged).
"""

from __future__ import annotations

import doctest
import inspect
import warnings

import pytest
from test_docs_examples import fast_sampling  # noqa: F401  (the fixture)

import bayesslope as bs

# The entry points and result types every user meets first: each must show an example.
REQUIRED = ("fit_hierarchical", "fit_transfer_matrix", "linearity_check", "backtest", "load",
            "load_dataset", "TransferFit", "TransferMatrix")


def _public_objects() -> dict[str, object]:
    """Public names of the package, and the public methods of its public classes."""
    out = {}
    for name in bs.__all__:
        obj = getattr(bs, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        out[name] = obj
        if inspect.isclass(obj) and obj.__module__.startswith("bayesslope"):
            for meth, member in vars(obj).items():
                if not meth.startswith("_") and (inspect.isfunction(member)
                                                 or isinstance(member, property)):
                    out[f"{name}.{meth}"] = member.fget if isinstance(member, property) \
                        else member
    return out


def _examples(obj) -> list[doctest.Example]:
    doc = inspect.getdoc(obj) or ""
    return doctest.DocTestParser().get_examples(doc)


EXAMPLES = {name: ex for name, obj in _public_objects().items() if (ex := _examples(obj))}


def test_required_objects_have_examples():
    missing = [name for name in REQUIRED if name not in EXAMPLES]
    assert not missing, f"no Examples section with >>> lines: {missing}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_docstring_example_runs(name, fast_sampling, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docstring__"}
    for example in EXAMPLES[name]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short runs: SamplingWarning is expected
            try:
                exec(compile(example.source, f"{name} docstring", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the failure message is the point
                raise AssertionError(
                    f"{name} docstring example failed at line {example.lineno}:\n"
                    f"{example.source}\n{type(exc).__name__}: {exc}") from exc
