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


class GridEdgeWarning(MtlWarning):
    """A tuned hyperparameter was chosen at the edge of the grid it was chosen from (see
    :func:`mtltransfer.selection.warn_grid_edge`)."""


def user_stacklevel():
    """The ``stacklevel`` for ``warnings.warn`` that points at the first frame outside
    this package (the user's call), however deep inside the package the warning is
    issued: every warning names the user's line, not an internal one."""
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)          # the function that calls warnings.warn
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            package):
        frame = frame.f_back
        level += 1
    return level
