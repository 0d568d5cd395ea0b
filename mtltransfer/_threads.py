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


#: below this many flops per product (the size of a solver's per-iteration products) the
#: iterations run on one BLAS thread: thread start-up costs more than it saves there
SMALL_PRODUCT_FLOPS = 2e7


def iteration_threads(flops):
    """Context of a solver's iterations whose products cost about ``flops`` each: one
    BLAS thread below :data:`SMALL_PRODUCT_FLOPS`, every thread above.

    BLAS thread limits are global to the process, so only the main thread sets them: fits
    run from several threads at once leave the limits alone (entering and leaving them
    concurrently could leave BLAS at one thread for good)."""
    import threading

    if flops >= SMALL_PRODUCT_FLOPS or \
            threading.current_thread() is not threading.main_thread():
        from contextlib import nullcontext

        return nullcontext()
    return one_blas_thread()


def smart_iteration_threads(p, rank):
    """Context of SMART's ADMM iterations at p predictors and rank r: their products (the
    p x p Gram times a p x r factor) cost about ``2 p^2 r`` flops each.

    The set-up (G, H, the source SVD) is outside it and uses every BLAS thread. The fit
    depends on the thread count only through rounding (a threaded BLAS may split a
    reduction differently: differences of about 1e-15 at p = 1200, the same lambda chosen;
    ``tests/test_smart_speed_paths.py``)."""
    return iteration_threads(2.0 * p * p * rank)
