"""BLAS thread limits for the solvers' inner loops (through threadpoolctl).

One :class:`threadpoolctl.ThreadpoolController` is built on first use and kept: building
one scans every loaded library (milliseconds), while limiting through a kept controller
costs microseconds, and the ADMM driver enters a limit once per fit (hundreds of times in
a tuned SMART fit). numpy and scipy load their BLAS on import, before any fit, so the
kept controller sees it.
"""
from functools import lru_cache


@lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """Context manager limiting the BLAS libraries to one thread (restored on exit)."""
    return _controller().limit(limits=1, user_api="blas")
