"""Exceptions and warning categories raised by bayesslope."""

__all__ = [
    "DataValidationError", "DependenceWarning", "SamplingWarning", "WeakDataWarning",
    "DuplicateRowsWarning", "BelowChanceWarning",
]


class DataValidationError(ValueError):
    """Input data or arguments cannot be used; the message names the column, rows or value."""


class SamplingWarning(RuntimeWarning):
    """The sampler reported divergences, high R-hat or low ESS; the message says the fix."""


class WeakDataWarning(UserWarning):
    """Valid but weakly informative data (e.g. a task with 1-2 points or constant x)."""


class DependenceWarning(UserWarning):
    """Residuals cluster by a column the model does not use: intervals are too narrow."""


class DuplicateRowsWarning(UserWarning):
    """Rows that exactly repeat another row: fitted as separate observations, counted."""


class BelowChanceWarning(UserWarning):
    """Scores below their chance floor (the model reads them as noise at chance level)."""
