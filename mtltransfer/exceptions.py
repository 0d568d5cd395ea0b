"""Warnings and errors raised by mtltransfer.

All warnings derive from :class:`MtlWarning` so that users can filter the whole package
with one ``warnings.filterwarnings`` call.
"""


class MtlWarning(UserWarning):
    """Base class of every warning issued by mtltransfer."""


class ConvergenceWarning(MtlWarning):
    """An iterative solver stopped at ``max_iter`` before meeting its tolerance."""


class SingularMatrixWarning(MtlWarning):
    """The design matrix is rank deficient; a minimum-norm or regularised answer is used."""


class ValueWarning(MtlWarning):
    """A value makes the results questionable (for example a saturated fit: R^2 = 1)."""
