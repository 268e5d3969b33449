"""bayesslope: Bayesian analysis of transfer between an upstream and downstream metric."""

__version__ = "0.1.0"
__all__ = ["__version__"]
