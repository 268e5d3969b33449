"""Transfer matrices: the directed transfer slope of every ordered pair of tasks.

``fit_transfer_matrix`` lives in :mod:`bayesslope.pairs.fit`; importing this subpackage
does not import JAX (the sampler module does, when a fit runs).
"""

from .fit import fit_transfer_matrix
from .result import TransferMatrix

__all__ = ["fit_transfer_matrix", "TransferMatrix"]
