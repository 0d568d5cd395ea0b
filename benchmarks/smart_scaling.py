"""How SMART's cost grows with p and n, against the floor; tuning with a noisy source.

Four tables (one BLAS thread unless ``--threads``; wall and CPU seconds):

1. **Against p** (n fixed, ``--n-fixed``, default 2000): for p in ``--p`` (default
   100 200 500 1000 2000 5000), q = max(50, p / 10), a rank-8 target inside a rank-20
   source (``mtltransfer.datasets.simulate_smart``, sigma0 = 0.01): the set-up (source
   SVD and the source-coordinate moments G = U0^T Sxx U0, H = U0^T Sxy V0), the
   fixed-rank fit
   (r = 8, r_u = r_v = 20, lambda by the BIC path), its ADMM iterations over the whole
   path, and the **floor**: the path's iterations times the time of one product ``G @ A``
   (p x p by p x r, the one pass over the p x p moments that any method working from Sxx
   makes per iteration). Log-log slopes of time against p are printed below the table.
2. **Against n** (p fixed, ``--p-fixed``, default 500): the same columns for n in ``--ns``.
3. **Noisy-source tuning** at Model-I (p = 100, q = 50, n = 200, rank-5 target in a
   rank-10 source): the fully tuned ``SMART.fit()`` for sigma0 in 0.01, 0.1, 0.5 over
   ``--reps`` draws (median time) with its error beside target-only reduced-rank
   regression's (true rank).

4. **Large sizes** (``--large``): the fixed-rank path fit at p = 2000, q = 200, n = 2000
   and at p = 5000, q = 300, n = 1000 (n < p: the products go through the rows,
   ``SmartProblem(rows=X)``), with the process's peak memory (``getrusage`` maxrss)
   and, with ``--tuned``, the fully tuned ``SMART.fit()`` at p = 2000.

The floor of a fit is its ADMM iterations times one pass over the p x p moments (or over
the n x p rows when they are used), the cost of one product with r columns: every
iteration of any method working from Sxx needs at least that. The U-step makes one
product with at most 2r columns per subspace step (a single pass, at little more cost).

5. **Bootstrap** (``--parts bootstrap``): the fully tuned fit and the fixed-rank path
   fit at Model-I (CPU seconds per seed), then ``res.bootstrap(200)`` of the tuned
   Model-I fit (sigma0 = 0.01): residual and pairs resampling with the tuning fixed, and
   pairs with ``refit_tuning=True``: seconds, the median ADMM iterations and the ranks
   the replicates chose (true rank 5).

6. **Misspecified ranks** (``--parts misspecified``): fixed ranks with the lambda path
   at Model-I and Model-II over r in {3, 5, 7} and r_u = r_v in {7, 10, 13} around the
   truth (5, 10), and r = 11 > r_u = 10: ADMM iterations against the well-specified
   cell, convergence, CPU seconds and error, each with the active-set phase
   (``mtltransfer.smart.active_set``) and without it ("ADMM only").

Each part can be run alone (``--parts p,n,tuning,large,bootstrap``; the default runs p, n
and tuning, about 10 minutes of CPU at the default sizes; ``large`` adds several
minutes, ``bootstrap`` about one).

Usage::

    python benchmarks/smart_scaling.py [--p 100,200,500] [--ns 500,1000,2000]
        [--reps 3] [--quick] [--parts p,n,tuning,large] [--tuned] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys


if __name__ == "__main__":
    from _threads import limit_threads

    limit_threads(sys.argv[1:])

import resource  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mtltransfer as mt  # noqa: E402
from mtltransfer.smart.tuning import lambda_path  # noqa: E402
from mtltransfer.smart.problem import SmartProblem, source_svd  # noqa: E402


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w
        self.cpu = time.process_time() - self.c


def one_size(n, p, q, rank=8, source_rank=20, seed=0, rows=None):
    """Set-up, fixed-rank path fit and floor at one size (``rows``: products through the
    rows; default when n < p / 2)."""
    X, Y, C, C0 = mt.datasets.simulate_smart(n, p, q, rank=rank, source_rank=source_rank,
                                             sigma0=0.01, random_state=seed)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    del X, Y
    if rows is None:
        rows = n < p / 2
    with Clock() as t_mom:
        Sxx, Sxy, Syy = Xc.T @ Xc / n, Xc.T @ Yc / n, Yc.T @ Yc / n
    with Clock() as t_set:
        prob = SmartProblem.from_moments(Sxx, Sxy, Syy, svd0=source_svd(C0),
                                         rows=Xc if rows else None)
    with Clock() as t_fit, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = lambda_path(prob, n, rank, (source_rank, source_rank))
    its = int(sum(out["trace"]["n_iter"]) + out["result"].n_iter)
    A = np.linalg.qr(np.random.default_rng(0).standard_normal((p, rank)))[0]
    reps = max(3, int(2e8 / (2 * p * min(p, 2 * n) * rank)))
    with Clock() as t_ga:
        for _ in range(reps):
            prob.gram(A)
    per = t_ga.cpu / reps
    err = float(np.linalg.norm(out["result"].coef - C) / np.sqrt(p * q))
    return {"n": n, "p": p, "q": q, "rows": bool(rows), "moments cpu": t_mom.cpu,
            "setup cpu": t_set.cpu, "fit wall": t_fit.wall, "fit cpu": t_fit.cpu,
            "iterations": its, "G@A ms": 1e3 * per, "floor cpu": its * per,
            "fit/floor": t_fit.cpu / max(its * per, 1e-12), "error": err,
            "maxrss GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def tuned_size(n, p, q, rank=8, source_rank=20, seed=0):
    """The fully tuned ``SMART.fit()`` (rank by RSC, structural ranks by 5-fold CV,
    lambda by BIC) at one size, with its error beside reduced-rank regression's."""
    X, Y, C, C0 = mt.datasets.simulate_smart(n, p, q, rank=rank, source_rank=source_rank,
                                             sigma0=0.01, random_state=seed)
    with Clock() as t, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mt.SMART(Y, X, source=C0, intercept=False).fit()
    e = float(np.linalg.norm(res.params.to_numpy() - C) / np.sqrt(C.size))
    return {"n": n, "p": p, "q": q, "wall": t.wall, "cpu": t.cpu, "rank": res.rank,
            "structural rank": res.structural_rank, "error": e,
            "maxrss GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def slopes(df, x):
    """Log-log slopes of the columns against x (least squares over the rows)."""
    lx = np.log(df[x].to_numpy(float))
    out = {}
    for col in ("setup cpu", "fit cpu", "iterations", "floor cpu"):
        y = df[col].to_numpy(float)
        ok = y > 0
        if ok.sum() >= 2:
            out[col] = float(np.polyfit(lx[ok], np.log(y[ok]), 1)[0])
    return out


def tuning_table(reps):
    rows = []
    for sigma0 in (0.01, 0.1, 0.5):
        for rep in range(reps):
            X, Y, C, C0 = mt.datasets.simulate_smart(200, 100, 50, rank=5, source_rank=10,
                                                     sigma0=sigma0, random_state=1000 * rep + 10)
            with Clock() as t, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = mt.SMART(Y, X, source=C0, intercept=False).fit()
            rrr = mt.ReducedRank(Y, X, intercept=False).fit(rank=5)
            e = float(np.linalg.norm(res.params.to_numpy() - C) / np.sqrt(C.size))
            e0 = float(np.linalg.norm(rrr.params.to_numpy() - C) / np.sqrt(C.size))
            rows.append({"sigma0": sigma0, "rep": rep, "wall": t.wall, "cpu": t.cpu,
                         "error": e, "RRR error": e0, "ratio": e / e0,
                         "structural rank": res.structural_rank})
    df = pd.DataFrame(rows)
    return df, df.groupby("sigma0")[["wall", "cpu", "error", "RRR error", "ratio"]].median()


def speed_table(seeds=(0, 1, 2, 3, 4), reps=3):
    """The fully tuned ``SMART.fit()`` and the fixed-rank fit with its lambda path
    (r = 5, r_u = r_v = 10) at Model-I n = 200 (sigma0 = 0.01): CPU seconds (one BLAS
    thread; the best of ``reps`` runs, the machine being shared), per seed."""
    rows = []
    for seed in seeds:
        X, Y, C, C0 = mt.datasets.simulate_smart(200, 100, 50, rank=5, source_rank=10,
                                                 sigma0=0.01, random_state=seed)
        mod = mt.SMART(Y, X, source=C0, intercept=False)
        t_tuned, t_path = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(reps):
                with Clock() as t:
                    res = mod.fit()
                t_tuned.append(t.cpu)
                with Clock() as t:
                    fix = mod.fit(rank=5, structural_rank=10)
                t_path.append(t.cpu)
        rows.append({"seed": seed, "tuned cpu": min(t_tuned),
                     "tuned (r_u, r_v)": res.structural_rank,
                     "tuned converged": res.converged,
                     "path cpu": min(t_path), "path converged": fix.converged})
    return pd.DataFrame(rows)


def bootstrap_table(n_boot=200, refit=True):
    """``res.bootstrap(n_boot)`` of a tuned SMART fit at Model-I (p = 100, q = 50,
    n = 200, sigma0 = 0.01), tuning fixed, residual (the default) and pairs resampling,
    and (``refit``) pairs with ``refit_tuning=True``: CPU seconds on one BLAS thread, with
    the replicates' median ADMM iterations (every ADMM run of a replicate counted)."""
    from mtltransfer.smart import admm

    X, Y, C, C0 = mt.datasets.simulate_smart(200, 100, 50, rank=5, source_rank=10,
                                             sigma0=0.01, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mt.SMART(Y, X, source=C0, intercept=False).fit()
    iters, run = [], admm._run_admm

    def counting(*a, **k):
        out = run(*a, **k)
        iters.append(len(out[1]["objective"]))
        return out

    rows = []
    admm._run_admm = counting
    try:
        for method, retune in (("residual", False), ("pairs", False), ("pairs", True)):
            if retune and not refit:
                continue
            iters.clear()
            with Clock() as t:
                boot = res.bootstrap(n_boot=n_boot, method=method, random_state=0,
                                     refit_tuning=retune)
            ranks = np.sum(np.isfinite(boot.extra["angles_u"]), axis=1)
            rows.append({"method": method, "refit_tuning": retune,
                         "replicates": boot.n_boot, "wall": t.wall,
                         "cpu": t.cpu, "per replicate ms": 1e3 * t.cpu / n_boot,
                         "median iterations": float(np.median(iters)),
                         "ranks": f"{ranks.min()}-{ranks.max()} (median "
                                  f"{np.median(ranks):g})",
                         "failed": boot.n_failed})
    finally:
        admm._run_admm = run
    return pd.DataFrame(rows)


def misspecified_table(seed=0, ranks=(3, 5, 7), structural=(7, 10, 13)):
    """Fixed ranks around the truth at Model-I and Model-II (rank-5 target in a rank-10
    source, sigma0 = 0.01): ``SMART.fit(rank=r, structural_rank=s)`` (lambda by the BIC
    path, the final fit certified) for r under/exact/over and r_u = r_v = s
    under/exact/over, and r = 11 > r_u = 10. ADMM iterations (path and final fit), CPU
    seconds, and the ratio of iterations to the well-specified cell (5, 10), with the
    active-set phase and without it ("ADMM only")."""
    rows = []
    for model, (n, p, q) in (("I", (200, 100, 50)), ("II", (300, 150, 100))):
        X, Y, C, C0 = mt.datasets.simulate_smart(n, p, q, rank=5, source_rank=10,
                                                 sigma0=0.01, random_state=seed)
        mod = mt.SMART(Y, X, source=C0, intercept=False)
        cells = [(r, s) for r in ranks for s in structural] + [(11, 10)]
        for r, s in cells:
            row = {"model": model, "r": r, "r_u = r_v": s}
            for phase in (False, True):
                with Clock() as t, warnings.catch_warnings(), _active_set(phase):
                    warnings.simplefilter("ignore")
                    res = mod.fit(rank=r, structural_rank=s)
                path = int(res.tuning["bic_path"]["n_iter"].sum())
                err = float(np.linalg.norm(res.params.to_numpy() - C) / np.sqrt(C.size))
                tag = "" if phase else " (ADMM only)"
                row.update({"path iters" + tag: path, "final iters" + tag: res.n_iter,
                            "iterations" + tag: path + res.n_iter,
                            "converged" + tag: res.converged, "cpu" + tag: t.cpu,
                            "error" + tag: err})
            rows.append(row)
    df = pd.DataFrame(rows)
    for tag in (" (ADMM only)", ""):
        ref = df[(df["r"] == 5) & (df["r_u = r_v"] == 10)].set_index("model")[
            "iterations" + tag]
        df["x well-specified" + tag] = df["iterations" + tag] / df["model"].map(ref)
    return df


class _active_set:
    """With ``on=False``, SMART's active-set phase is switched off (its first attempt
    moved beyond any iteration cap): the ADMM alone, as before the phase existed."""

    def __init__(self, on):
        self.on = on

    def __enter__(self):
        from mtltransfer.smart import active_set

        self.mod, self.saved = active_set, active_set.ACTIVE_SET_AFTER
        if not self.on:
            active_set.ACTIVE_SET_AFTER = 10 ** 9

    def __exit__(self, *exc):
        self.mod.ACTIVE_SET_AFTER = self.saved


def _ints(s):
    return [int(v) for v in s.split(",") if v]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", default="100,200,500,1000,2000,5000")
    ap.add_argument("--n-fixed", type=int, default=2000)
    ap.add_argument("--ns", default="500,1000,2000,4000")
    ap.add_argument("--p-fixed", type=int, default=500)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="p in 100,200,500,1000; n in 500,1000,2000; 1 tuning draw")
    ap.add_argument("--skip-tuning", action="store_true")
    ap.add_argument("--parts", default="p,n,tuning",
                    help="comma list of p, n, tuning, large, bootstrap, misspecified")
    ap.add_argument("--tuned", action="store_true",
                    help="with 'large': also the fully tuned fit at p = 2000")
    ap.add_argument("--threads", default="1")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    if args.skip_tuning:
        parts.discard("tuning")
    if args.quick:
        args.p, args.ns, args.reps = "100,200,500,1000", "500,1000,2000", 1
    pd.set_option("display.width", 200)
    pd.set_option("display.precision", 4)
    if "p" in parts:
        rows = [one_size(args.n_fixed, p, max(50, p // 10)) for p in _ints(args.p)]
        df = pd.DataFrame(rows)
        print(f"== against p (n = {args.n_fixed}, q = max(50, p/10), r = 8, "
              "r_u = r_v = 20) ==")
        print(df.to_string(index=False), flush=True)
        print("log-log slopes against p:",
              {k: round(v, 2) for k, v in slopes(df, "p").items()}, flush=True)
    if "n" in parts:
        rows = [one_size(n, args.p_fixed, max(50, args.p_fixed // 10))
                for n in _ints(args.ns)]
        df = pd.DataFrame(rows)
        print(f"\n== against n (p = {args.p_fixed}) ==")
        print(df.to_string(index=False))
        print("log-log slopes against n:",
              {k: round(v, 2) for k, v in slopes(df, "n").items()}, flush=True)
    if "large" in parts:
        rows = [one_size(2000, 2000, 200), one_size(1000, 5000, 300)]
        print("\n== large sizes (fixed ranks r = 8, r_u = r_v = 20, lambda by BIC) ==")
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
        if args.tuned:
            print("\n== fully tuned SMART.fit() ==")
            print(pd.DataFrame([tuned_size(2000, 2000, 200)]).to_string(index=False),
                  flush=True)
    if "bootstrap" in parts:
        print("\n== SMART at Model-I (p = 100, q = 50, n = 200): fully tuned fit and "
              "fixed ranks (5, (10, 10)) with the lambda path, CPU s ==")
        sp = speed_table()
        print(sp.to_string(index=False), flush=True)
        print("median: tuned {:.3f} s, fixed ranks + path {:.3f} s".format(
            sp["tuned cpu"].median(), sp["path cpu"].median()), flush=True)
        print("\n== SMART bootstrap at Model-I (p = 100, q = 50, n = 200), 200 replicates ==")
        print(bootstrap_table().to_string(index=False), flush=True)
    if "misspecified" in parts:
        print("\n== fixed ranks around the truth (rank 5, source rank 10): iterations "
              "against the well-specified cell ==")
        print(misspecified_table().to_string(index=False), flush=True)
    if "tuning" in parts:
        full, med = tuning_table(args.reps)
        print(f"\n== fully tuned SMART.fit() at Model-I n = 200, {args.reps} draw(s): "
              "medians ==")
        print(med.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
