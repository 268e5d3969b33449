"""Every SBC variant: importing this module imports the plugins, which register theirs.

The harness (:mod:`validation.sbc`) knows variants only through the registry of
:mod:`validation.common`; each plugin module registers its variants there when imported.
This is the one place that lists the plugins: entry points (:mod:`validation.run`,
:mod:`validation.crosscheck`) import it, the harness and the plugins never do.
"""

from __future__ import annotations

# Registration order is the order of `--list` and of a run of every variant: the package
# variants first, then the transfer matrix's per-pair ones.
# isort: off
from . import variants
from . import pair_variants
# isort: on
from .common import VARIANTS, get_variant

__all__ = ["PLUGINS", "VARIANTS", "get_variant"]

PLUGINS = (variants, pair_variants)
