"""Every fenced Python example in README.md and docs/*.md runs as written.

The blocks of one page run in order in one namespace (later blocks use earlier names), in a
temporary working folder (files they write land there), with matplotlib's Agg backend. Fast
mode: every NUTS run is shortened to ``FAST_DRAWS`` draws and tuning steps and 2 chains
(``SamplerConfig`` is patched; the examples' own arguments are otherwise untouched), so a
renamed argument or a changed column fails here, not in a reader's session. Output values are
not checked (the short runs are not converged); the code paths are.

A block whose first line is ``# not run: <reason>`` is skipped (e.g. a shell session shown
as Python); there should be very few.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FAST_DRAWS = 60
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """(line number, code) of each fenced ``python`` block of a Markdown page."""
    text = page.read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in _FENCE.finditer(text)]


def _pages_with_code() -> list[Path]:
    return [p for p in PAGES if python_blocks(p)]


@pytest.fixture
def fast_sampling(monkeypatch):
    """Shorten every NUTS run, whatever the example asks for."""
    import matplotlib

    matplotlib.use("Agg")
    from bayesslope import sampling

    original = sampling.SamplerConfig.__post_init__

    def short(self):
        object.__setattr__(self, "draws", min(self.draws, FAST_DRAWS))
        object.__setattr__(self, "tune", min(self.tune, FAST_DRAWS))
        object.__setattr__(self, "chains", min(self.chains, 2))
        # The lapse rates' default 0.98 only makes the 60 short draws longer: the pages are
        # checked for running, not for their posteriors (SBC covers that).
        object.__setattr__(self, "target_accept", min(self.target_accept, 0.9))
        original(self)

    monkeypatch.setattr(sampling.SamplerConfig, "__post_init__", short)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_pages_have_examples():
    # The harness finds the README's examples (guards against a broken fence pattern).
    assert len(python_blocks(ROOT / "README.md")) >= 2


@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: p.name)
def test_examples_run(page, fast_sampling, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for line, code in python_blocks(page):
        if code.lstrip().startswith("# not run:"):
            continue
        with warnings.catch_warnings():
            # Short runs are not converged: SamplingWarning is expected, not the subject.
            warnings.simplefilter("ignore")
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the failure message is the point
                raise AssertionError(
                    f"{page.relative_to(ROOT)} block at line {line} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc


def test_fast_mode_really_shortens(fast_sampling):
    from bayesslope.sampling import SamplerConfig

    cfg = SamplerConfig(draws=1000, tune=1000, chains=4, target_accept=0.98)
    assert dataclasses.astuple(cfg)[:4] == (FAST_DRAWS, FAST_DRAWS, 2, 0.9)
