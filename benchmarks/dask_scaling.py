"""Fitting from parquet on a Dask cluster whose workers have less memory than the data.

Writes ``--rows`` rows (default 20 million) of p = 50 predictors and q = 10 responses
(float64: 480 bytes a row, 9.6 GB at 20 million rows) to parquet, file by file so the
writer never holds the data, then on a ``LocalCluster`` (``--workers`` processes of one
thread, each with ``memory_limit`` below the size of the data) fits ReducedRank (rank by
RSC) and a SMART source model (ranks by RSC and hashed-fold CV, lambda by BIC; the source
is a reduced-rank fit of the same data), for 1, 2 and 4 partitions per worker: the
files are grouped into partitions read by pyarrow (``dd.from_map``), one row group at a
time into the partition's columns. A partition is a pandas DataFrame held whole by its
worker, so a configuration whose partitions do not fit a worker's memory_limit fails,
and is reported as such. For each it prints the rows per second
(wall) and per worker CPU second, the workers' CPU seconds, and the peak resident memory
of any worker (sampled every 0.5 s).

    python benchmarks/dask_scaling.py --rows 2000000
    python benchmarks/dask_scaling.py                       # the full 20 million rows

The generated data are deleted at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def write_data(path, rows, p, q, n_files, seed=0):
    """``Y = 1 + X C + E`` with C of rank 3, written as ``n_files`` parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    C = rng.standard_normal((p, 3)) @ rng.standard_normal((3, q)) / np.sqrt(3)
    path.mkdir(parents=True)
    bounds = np.linspace(0, rows, n_files + 1).astype(int)
    xnames = [f"x{j + 1}" for j in range(p)]
    ynames = [f"y{j + 1}" for j in range(q)]
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        writer = None
        for s in range(a, b, 500_000):            # generate 500k rows at a time
            m = min(b, s + 500_000) - s
            X = rng.standard_normal((m, p))
            Y = 1.0 + X @ C + rng.standard_normal((m, q))
            table = pa.table({**{n: X[:, j] for j, n in enumerate(xnames)},
                              **{n: Y[:, j] for j, n in enumerate(ynames)}})
            if writer is None:
                writer = pq.ParquetWriter(path / f"part.{i:03d}.parquet", table.schema)
            writer.write_table(table, row_group_size=100_000)
        writer.close()
    formula = " + ".join(ynames) + " ~ " + " + ".join(xnames)
    return formula, C


def read_files(files):
    """One partition: the parquet files' rows, read one row group at a time into columns
    allocated once, so that a worker holds the partition plus one row group (pyarrow's
    ``read_table`` of a whole file holds about three times the file while decoding)."""
    import pyarrow.parquet as pq

    sources = [pq.ParquetFile(f) for f in files]
    names = sources[0].schema_arrow.names
    n = sum(s.metadata.num_rows for s in sources)
    block = np.empty((n, len(names)), order="F")     # one pandas block, no copy below
    start = 0
    for source in sources:
        for g in range(source.num_row_groups):
            table = source.read_row_group(g, use_threads=False)
            stop = start + table.num_rows
            for j, name in enumerate(names):
                block[start:stop, j] = table.column(name).to_numpy()
            start = stop
    return pd.DataFrame(block, columns=names, copy=False)


def partitions(path, n_partitions):
    """A Dask DataFrame of the parquet files of ``path`` in ``n_partitions`` groups."""
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    files = sorted(str(f) for f in Path(path).glob("*.parquet"))
    groups = [list(g) for g in np.array_split(np.array(files, dtype=object), n_partitions)]
    meta = pq.read_schema(files[0]).empty_table().to_pandas()
    return dd.from_map(read_files, groups, meta=meta)


class PeakMemory:
    """Samples the resident memory of every worker until stopped; keeps the maximum."""

    def __init__(self, client, every=0.2):
        self.client, self.every, self.peak = client, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        def rss():
            return psutil.Process().memory_info().rss

        while not self._stop.is_set():
            try:
                self.peak = max([self.peak, *self.client.run(rss).values()])
            except Exception:           # a worker restarting: sample again
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def worker_cpu(client):
    import psutil

    def cpu():
        t = psutil.Process().cpu_times()
        return t.user + t.system

    return sum(client.run(cpu).values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--p", type=int, default=50)
    ap.add_argument("--q", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-worker", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--memory-fraction", type=float, default=0.4,
                    help="each worker's memory_limit as a fraction of the data's size "
                         "(0.4 with 2 workers: the whole cluster has less than the data)")
    ap.add_argument("--dir", default=None, help="where to write the parquet data")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    args = ap.parse_args(argv)

    import dask
    from distributed import Client, LocalCluster

    # a task that kills its worker (out of memory) fails at once instead of being retried
    # no statistical profiler in the workers (it samples their stacks every 10 ms); glibc
    # thresholds of 64 MiB: Dask's default MALLOC_TRIM_THRESHOLD_ alone pins the mmap
    # threshold at 128 KiB, so that every array above it is fresh memory and page-faults
    # (half the workers' CPU time here)
    malloc = {"MALLOC_TRIM_THRESHOLD_": 1 << 26, "MALLOC_MMAP_THRESHOLD_": 1 << 26}
    dask.config.set({"distributed.scheduler.allowed-failures": 0,
                     "distributed.nanny.pre-spawn-environ": malloc,
                     "distributed.worker.profile.enabled": False,
                     "distributed.logging.distributed": "error"})

    import mtltransfer as mt

    base = Path(args.dir or tempfile.mkdtemp(prefix="mtl_dask_"))
    path = base / "rows"
    n_files = args.workers * max(args.per_worker)
    nbytes = args.rows * (args.p + args.q) * 8
    limit = int(args.memory_fraction * nbytes)
    t0 = time.perf_counter()
    try:
        if path.exists():          # --dir of an earlier run with --keep
            import pyarrow.parquet as pq
            files = sorted(path.glob("*.parquet"))
            assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == args.rows
            assert len(files) == n_files
            formula = (" + ".join(f"y{j + 1}" for j in range(args.q)) + " ~ " +
                       " + ".join(f"x{j + 1}" for j in range(args.p)))
        else:
            formula, _ = write_data(path, args.rows, args.p, args.q, n_files)
        print(f"data: {args.rows:,} rows x {args.p + args.q} columns ({nbytes / 1e9:.2f} GB "
              f"in memory, {sum(f.stat().st_size for f in path.iterdir()) / 1e9:.2f} GB "
              f"parquet) ready in {time.perf_counter() - t0:.0f} s", flush=True)
        print(f"LocalCluster: {args.workers} workers x 1 thread, memory_limit "
              f"{limit / 1e9:.2f} GB each (data {nbytes / 1e9:.2f} GB)")
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          memory_limit=limit, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            rows = []
            for k in args.per_worker:
                ddf = partitions(path, k * args.workers)
                part_gb = nbytes / ddf.npartitions / 1e9
                for name in ("ReducedRank", "SMART source"):
                    row = {"partitions/worker": k, "partitions": ddf.npartitions,
                           "partition GB": round(part_gb, 2), "model": name}
                    cpu0, w0, c0 = worker_cpu(client), time.perf_counter(), time.process_time()
                    try:
                        with PeakMemory(client, every=0.5) as mem:
                            if name == "ReducedRank":
                                res = source = mt.ReducedRank.from_formula(formula,
                                                                           ddf).fit()
                            else:
                                res = mt.SMART.from_formula(formula, ddf,
                                                            source=source).fit()
                    except Exception as err:   # a partition larger than a worker can hold
                        row.update({"rank": None, "wall s": None, "rows/s": None,
                                    "rows/worker-CPU-s": None,
                                    "worker CPU s": None, "client CPU s": None,
                                    "peak worker GB": round(mem.peak / 1e9, 2),
                                    "failed": type(err).__name__})
                        rows.append(row)
                        print(row, flush=True)
                        client.restart()
                        break
                    wall = time.perf_counter() - w0
                    wcpu = worker_cpu(client) - cpu0
                    row.update({"rank": res.rank, "wall s": round(wall, 1),
                                "rows/s": round(res.nobs / wall),
                                "rows/worker-CPU-s": round(res.nobs / wcpu),
                                "worker CPU s": round(wcpu, 1),
                                "client CPU s": round(time.process_time() - c0, 1),
                                "peak worker GB": round(mem.peak / 1e9, 2), "failed": ""})
                    rows.append(row)
                    print(row, flush=True)
            print()
            print(pd.DataFrame(rows).to_string(index=False))
            print(f"total {time.perf_counter() - t0:.0f} s (data written and every fit)")
    finally:
        if not args.keep:
            shutil.rmtree(base if args.dir is None else path, ignore_errors=True)


if __name__ == "__main__":
    main()
