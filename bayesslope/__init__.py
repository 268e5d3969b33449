"""bayesslope: Bayesian analysis of transfer between an upstream and downstream metric.

Importing the package is cheap: PyMC, JAX and plotting are imported when first used.
"""

from importlib import import_module

from .exceptions import (
    BelowChanceWarning,
    DataValidationError,
    DependenceWarning,
    DuplicateRowsWarning,
    SamplingWarning,
    WeakDataWarning,
)

__version__ = "0.1.0"
__all__ = [
    "__version__",
    "fit_hierarchical",
    "fit_many",
    "linearity_check",
    "LinearityCheck",
    "backtest",
    "load",
    "load_fit",
    "load_dataset",
    "list_datasets",
    "dataset_readme",
    "TransferFit",
    "fit_transfer_matrix",
    "TransferMatrix",
    "write_report",
    "figure_style",
    "DataValidationError",
    "DependenceWarning",
    "SamplingWarning",
    "WeakDataWarning",
    "DuplicateRowsWarning",
    "BelowChanceWarning",
]

# Public name -> module that defines it, imported on first attribute access (PEP 562)
# so that `import bayesslope` does not pay for PyMC/PyTensor/JAX.
_LAZY = {
    "fit_hierarchical": ".fit",
    "fit_many": ".batch",
    "linearity_check": ".linearity",
    "LinearityCheck": ".linearity",
    "backtest": ".backtesting",
    "load": ".io",
    "load_fit": ".result",
    "TransferFit": ".result",
    "load_dataset": ".datasets",
    "list_datasets": ".datasets",
    "dataset_readme": ".datasets",
    "fit_transfer_matrix": ".pairs",
    "TransferMatrix": ".pairs",
    "write_report": ".report",
    "figure_style": ".style",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
