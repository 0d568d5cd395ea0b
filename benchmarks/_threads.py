"""BLAS thread count for the benchmark scripts, set before NumPy is imported.

The solvers' inner loops multiply small dense matrices, for which one thread is faster;
``--threads N`` on a script's command line sets another count.
"""

import os


def limit_threads(argv):
    """Set OMP/OpenBLAS/MKL thread counts from ``--threads N`` in argv (default 1),
    unless the environment already sets them."""
    n = "1"
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            n = argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, n)
