"""Time ``import mtltransfer`` against the import of ``pandas, scipy.linalg, patsy`` alone.

Each repeat starts two fresh interpreters back to back (in alternating order, so both
see the same machine load and neither always goes first), and each interpreter times only
its import statement: wall time (``time.perf_counter``) and CPU time (``time.process_time``), one BLAS
thread. The medians over the repeats and their ratio are printed (and the minima, less
sensitive to other load on the machine); the target is a ratio of at most 1.2. A third
interpreter per repeat imports the reference and then the package, and times the second
import alone: the package's own cost on top of its dependencies.

By default both imports read compiled bytecode, as an installed package does: the bytecode
goes to a cache outside the source tree (``PYTHONPYCACHEPREFIX``), warmed by one import
first. ``--source`` keeps ``PYTHONDONTWRITEBYTECODE`` as set, so with it set the package is
compiled from source on every import (the reference's installed bytecode is still used).

    python benchmarks/import_time.py [--repeats 15] [--source]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "import pandas, scipy.linalg, patsy"
PACKAGE = "import mtltransfer"
TIMER = ("import time\nw, c = time.perf_counter(), time.process_time()\n{stmt}\n"
         "print(time.perf_counter() - w, time.process_time() - c)")


def time_import(stmt, source=False, before=""):
    """(wall, cpu) seconds of ``stmt`` in a fresh interpreter run from the project root
    (after running ``before``, untimed)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if not source:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "mtltransfer_pycache")
    out = subprocess.run([sys.executable, "-c", before + "\n" + TIMER.format(stmt=stmt)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    wall, cpu = (float(v) for v in out.split())
    return wall, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--source", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE as set (compile from source)")
    args = parser.parse_args(argv)
    for stmt in (REFERENCE, PACKAGE):                  # warm the file and bytecode caches
        time_import(stmt, args.source)
    ref, pkg, inc = [], [], []
    for i in range(args.repeats):
        if i % 2:
            pkg.append(time_import(PACKAGE, args.source))
            ref.append(time_import(REFERENCE, args.source))
        else:
            ref.append(time_import(REFERENCE, args.source))
            pkg.append(time_import(PACKAGE, args.source))
        inc.append(time_import(PACKAGE, args.source, before=REFERENCE))
    for j, what in enumerate(("wall", "cpu")):
        r = statistics.median(t[j] for t in ref)
        m = statistics.median(t[j] for t in pkg)
        r0 = min(t[j] for t in ref)
        m0 = min(t[j] for t in pkg)
        print(f"{what:4s}  median: reference {r:.3f} s, mtltransfer {m:.3f} s, ratio {m / r:.2f}"
              f"   min: {r0:.3f} s, {m0:.3f} s, ratio {m0 / r0:.2f}   ({args.repeats} repeats)")
        d = statistics.median(t[j] for t in inc)
        print(f"{what:4s}  median cost of the package on top of the reference: {d:.3f} s "
              f"({d / r:.0%} of the reference)")


if __name__ == "__main__":
    main()
