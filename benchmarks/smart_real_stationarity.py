"""Tuned SMART fits on real data against the refit at their own settings.

For each case the fully tuned ``SMART.fit()`` (rank by RSC, structural ranks by 5-fold CV,
lambda by BIC) is compared with ``SMART.fit(rank=, structural_rank=, lam=)`` at the
settings it chose: the relative objective gap ``|f_tuned - f_refit| / |f_refit|``, the
relative coefficient difference ``||C_tuned - C_refit||_F / ||C_refit||_F`` and the
stationarity certificate of the tuned fit (:func:`mtltransfer.smart.admm.stationarity`
at the fit's tol: the largest ratio measure / threshold, pass when <= 1). A case is
flagged when a gap exceeds ``1e-6``, the certificate fails, or the fit says
``converged=False``.

Cases (statsmodels' data sets, offline):

* **Grunfeld**: ``li + lv ~ lc + C(era) + year`` (logs of invest, value, capital; era
  "pre" before 1945), each of the 11 firms as the target with every other firm as the
  source (an OLS fit), on 10 (every other year) or 20 rows: 22 fits.
* **macrodata windows**: quarterly growth rates (100 x log differences) ``dcons + dinv +
  dgovt ~ dgdp + ddpi + tbilrate + infl + unemp``; the target is a window of 20 or 40
  consecutive quarters, the source an OLS fit on all other quarters: 10 + 5 = 15 fits.

With ``--gamma G[,G...]`` each case is instead fitted with the magnitude pull,
``fit(gamma=G)`` (the other hyperparameters tuned at gamma = 0), and its stationarity is
recomputed from scratch in the original coordinates: the Riemannian gradients of the
Lagrangian of ``f + (gamma/2)||C - C0||^2`` against ``tol`` times the data's gradient
scale (``max(tr(Syy)/2, ||rho Z||, ||data gradient||, ||pull's Riemannian gradient||)``);
a fit that says ``converged=True`` above it is flagged.

One BLAS thread; CPU seconds of the tuned fit. Usage::

    python benchmarks/smart_real_stationarity.py [--quick] [--gamma 10,1000]
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    from _threads import limit_threads

    limit_threads(["--threads", "1"])

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels.api as sm  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mtltransfer as mt  # noqa: E402
from mtltransfer.smart.admm import stationarity  # noqa: E402
from mtltransfer.smart.problem import SmartProblem  # noqa: E402

GRUNFELD = "li + lv ~ lc + C(era) + year"
MACRO = "dcons + dinv + dgovt ~ dgdp + ddpi + tbilrate + infl + unemp"
LIMIT = 1e-6


def grunfeld_cases():
    g = sm.datasets.grunfeld.load_pandas().data.copy()
    g["li"], g["lv"], g["lc"] = np.log(g.invest), np.log(g.value), np.log(g.capital)
    g["era"] = np.where(g.year < 1945, "pre", "post")
    for firm in g.firm.unique():
        src = mt.OLS.from_formula(GRUNFELD, g[g.firm != firm]).fit()
        for step in (2, 1):
            target = g[g.firm == firm].iloc[::step]
            yield (f"Grunfeld {firm}, {len(target)} rows",
                   mt.SMART.from_formula(GRUNFELD, target, source=src))


def macro_cases():
    m = sm.datasets.macrodata.load_pandas().data
    d = pd.DataFrame({
        "dcons": 100 * np.log(m.realcons).diff(), "dinv": 100 * np.log(m.realinv).diff(),
        "dgovt": 100 * np.log(m.realgovt).diff(), "dgdp": 100 * np.log(m.realgdp).diff(),
        "ddpi": 100 * np.log(m.realdpi).diff(), "tbilrate": m.tbilrate, "infl": m.infl,
        "unemp": m.unemp}).dropna().reset_index(drop=True)
    for width in (20, 40):
        for start in range(0, len(d) - width + 1, width):
            rows = np.arange(start, start + width)
            target, rest = d.iloc[rows], d.drop(index=rows)
            src = mt.OLS.from_formula(MACRO, rest).fit()
            yield (f"macro q{start + 1}-{start + width}",
                   mt.SMART.from_formula(MACRO, target, source=src))


def compare(name, mod):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.process_time()
        t = mod.fit()
        cpu = time.process_time() - t0
        x = mod.fit(rank=t.rank, structural_rank=t.structural_rank, lam=t.lam)
    gap = abs(t.objective - x.objective) / max(abs(x.objective), 1e-300)
    a, b = t.params.to_numpy(), x.params.to_numpy()
    diff = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
    prob = SmartProblem.from_moments(*mod.moments(), svd0=mod.source_svd)
    cert = stationarity(prob, t.state, *t.structural_rank, tol=t.state["tol"])
    ratio = cert["criterion"] / t.state["tol"]
    flag = gap > LIMIT or diff > LIMIT or not cert["passed"] or not t.converged
    return {"case": name, "n": t.nobs, "rank": t.rank, "(r_u, r_v)": t.structural_rank,
            "lam": round(t.lam[0], 6), "cpu s": cpu, "iters": t.n_iter,
            "objective": t.objective, "objective gap": gap, "coef diff": diff,
            "cert ratio": ratio, "converged": t.converged,
            "warnings": len(caught), "flag": "FLAG" if flag else ""}


def _tangent(X, g):
    return g - X @ (0.5 * (X.T @ g + g.T @ X))


def pulled(name, mod, gamma):
    """A fit with the magnitude pull and its KKT gradients recomputed from scratch."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.process_time()
        res = mod.fit(gamma=gamma)
        cpu = time.process_time() - t0
    Sxx, Sxy, Syy = mod.moments()
    st, C0 = res.state, np.asarray(mod.source, dtype=float)
    U, d, V, rho = st["U"], st["d"], st["V"], st["rho"]
    U0, _, V0 = mod.source_svd
    r_u, r_v = res.structural_rank
    pull = gamma * ((U * d) @ V.T - C0)
    g_u, g_v = (Sxx @ U) * d * d - (Sxy @ V) * d, -(Sxy.T @ U) * d
    p_u, p_v = pull @ V * d, pull.T @ U * d
    kkt = max(np.linalg.norm(_tangent(U, g_u + p_u + U0[:, r_u:] @ (rho * st["Z_u"]))),
              np.linalg.norm(_tangent(V, g_v + p_v + V0[:, r_v:] @ (rho * st["Z_v"]))))
    scale = max(0.5 * np.trace(Syy),
                rho * np.hypot(np.linalg.norm(st["Z_u"]), np.linalg.norm(st["Z_v"])),
                np.hypot(np.linalg.norm(g_u), np.linalg.norm(g_v)),
                np.hypot(np.linalg.norm(_tangent(U, p_u)), np.linalg.norm(_tangent(V, p_v))))
    ratio = kkt / (st["tol"] * scale)
    return {"case": name, "gamma": gamma, "rank": res.rank,
            "(r_u, r_v)": res.structural_rank, "cpu s": cpu, "iters": res.n_iter,
            "kkt": kkt, "threshold": st["tol"] * scale, "kkt ratio": ratio,
            "converged": res.converged, "warnings": len(caught),
            "flag": "FLAG" if res.converged and ratio > 1 else ""}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the Grunfeld cases only")
    ap.add_argument("--gamma", default=None,
                    help="comma list of gammas: fits with the magnitude pull instead")
    args = ap.parse_args(argv)
    cases = list(grunfeld_cases()) + ([] if args.quick else list(macro_cases()))
    pd.set_option("display.width", 250)
    pd.set_option("display.max_rows", 400)
    if args.gamma:
        rows = [pulled(name, mod, float(g)) for g in args.gamma.split(",")
                for name, mod in cases]
        df = pd.DataFrame(rows)
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        for g, part in df.groupby("gamma"):
            print(f"gamma {g:g}: {len(part)} fits, converged {int(part.converged.sum())}, "
                  f"max KKT ratio {part['kkt ratio'].max():.3g}, flagged "
                  f"{int((part['flag'] == 'FLAG').sum())}; median CPU "
                  f"{part['cpu s'].median():.3f} s, median iterations "
                  f"{part['iters'].median():.0f}")
        return 0
    rows = [compare(name, mod) for name, mod in cases]
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\n{len(df)} tuned fits; max objective gap {df['objective gap'].max():.2g}, "
          f"max coef diff {df['coef diff'].max():.2g}, max certificate ratio "
          f"{df['cert ratio'].max():.2g}; flagged: {int((df['flag'] == 'FLAG').sum())}; "
          f"median tuned-fit CPU {df['cpu s'].median():.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
