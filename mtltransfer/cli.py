"""Command line: ``python -m mtltransfer demo`` and ``python -m mtltransfer fit ...``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd


class _Progress:
    """Progress messages on stderr, only when stderr is a terminal and not --quiet."""

    def __init__(self, quiet):
        self.on = (not quiet) and sys.stderr.isatty()

    def __call__(self, msg):
        if self.on:
            print(f"[mtltransfer] {msg}", file=sys.stderr, flush=True)


def heldout_table(fits, test, ynames, truth=None):
    """Mean squared prediction error on held-out rows (and coefficient error if known)."""
    rows = []
    Y = test[ynames].to_numpy()
    for name, (res, seconds) in fits.items():
        pred = res.predict(test).to_numpy() if hasattr(res, "predict") else res(test)
        row = {"method": name, "test MSE": float(np.mean((Y - pred) ** 2))}
        if truth is not None:
            coef = res.params.loc[truth.index, truth.columns].to_numpy()
            row["coef RMSE"] = float(np.sqrt(np.mean((coef - truth.to_numpy()) ** 2)))
        row["seconds"] = seconds
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


class _SourceOnly:
    """Predictions with the source coefficients (and the target's own intercept)."""

    def __init__(self, source_res, target_model):
        self.params = source_res.params
        C = source_res.params.loc[target_model.exog_names, target_model.endog_names]
        self._C = C.to_numpy()
        self._b = target_model._intercept_for(self._C)
        self._model = target_model

    def predict(self, newdata):
        X = self._model.data.exog_for(newdata, "newdata")
        return pd.DataFrame(X @ self._C + self._b, columns=self._model.endog_names)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_demo(quiet=False, out=sys.stdout):
    """The embedded transfer analysis; returns the comparison table."""
    import mtltransfer as mt

    say = _Progress(quiet)
    d = mt.datasets.load_demo()
    formula, target, test = d["formula"], d["target"], d["test"]
    say("fitting the source study's coefficients (reduced-rank, rank by RSC)")
    source_res = mt.ReducedRank.from_formula(formula, d["source"]).fit(rank=6)
    fits = {}
    if hasattr(mt, "SMART"):
        say("fitting SMART with automatic tuning")
        res, sec = _timed(lambda: mt.SMART.from_formula(formula, target,
                                                        source=source_res).fit(
            verbose=say.on))
        fits["SMART (tuned)"] = (res, sec)
        print(res.summary(), file=out)
        print(file=out)
    for name, model, kw in [("OLS", mt.OLS, {}), ("Ridge (GCV)", mt.Ridge, {}),
                            ("ReducedRank (RSC)", mt.ReducedRank, {"rank": 3}),
                            ("NuclearNorm (CV)", mt.NuclearNorm, {})]:
        say(f"fitting {name}")
        fits[name] = _timed(lambda: model.from_formula(formula, target).fit(**kw))
    tmodel = mt.OLS.from_formula(formula, target)
    fits["source coefficients only"] = (_SourceOnly(source_res, tmodel), 0.0)
    table = heldout_table(fits, test, tmodel.endog_names, truth=d["C"])
    print(f"Target: {len(target)} rows, {tmodel.k_exog} predictors, {tmodel.k_endog} "
          f"responses; source: {len(d['source'])} rows (only its coefficients are used).",
          file=out)
    print(f"Comparison on {len(test)} held-out target rows:", file=out)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"), file=out)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mtltransfer",
                                     description="Transfer and multi-task regression.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the embedded transfer analysis")
    p_demo.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            run_demo(quiet=args.quiet)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"mtltransfer: error: {err}", file=sys.stderr)
        return 2
    return 0
