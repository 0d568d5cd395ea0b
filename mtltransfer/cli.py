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
    """Predictions with the source coefficients C and the target's own intercept.

    The intercept is ``ybar - C^T xbar`` (the target's means) when the target model fits
    one, else zero (:meth:`MultiResponseModel.intercept_for`).
    """

    def __init__(self, source_res, target_model):
        self.params = source_res.params
        C = source_res.params.loc[target_model.exog_names, target_model.endog_names]
        self._C = C.to_numpy(dtype=float)
        self._b = target_model.intercept_for(self._C)
        self._model = target_model

    def predict(self, newdata):
        X, const, index = self._model.data.exog_for(newdata, "newdata")
        return pd.DataFrame(X @ self._C + np.multiply.outer(const, self._b), index=index,
                            columns=self._model.endog_names)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_demo(quiet=False, out=None):
    """The embedded transfer analysis; returns the comparison table."""
    import mtltransfer as mt

    out = sys.stdout if out is None else out
    say = _Progress(quiet)
    d = mt.datasets.load_demo()
    formula, target, test = d["formula"], d["target"], d["test"]
    say("fitting the source study's coefficients (reduced-rank, rank by RSC)")
    source_res = mt.ReducedRank.from_formula(formula, d["source"]).fit()
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
                            ("ReducedRank (RSC)", mt.ReducedRank, {}),
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


def run_demo_shared(quiet=False, out=None):
    """Many tasks sharing a representation, then a new task with few rows (adapt)."""
    import mtltransfer as mt

    out = sys.stdout if out is None else out
    say = _Progress(quiet)
    T, N, d, k = 300, 15, 25, 3
    sim = mt.datasets.simulate_shared(T, N, d, k, sigma=0.5, random_state=20260501)
    xnames = [f"x{j + 1}" for j in range(d)]
    data = pd.DataFrame(sim.X, columns=xnames)
    data["y"] = sim.y
    data["task"] = [f"task{t:03d}" for t in sim.task]
    formula = "y ~ " + " + ".join(xnames)
    say(f"fitting the shared representation on {T} tasks of {N} rows (k by BIC)")
    mod = mt.SharedRepresentation.from_formula(formula, data, groups="task")
    res, sec = _timed(lambda: mod.fit())
    print(res.summary(), file=out)
    print(f"\nfit: {sec:.2f} s; distance to the true representation (sin-theta): "
          f"{res.subspace_distance(sim.B):.3f}", file=out)
    # new tasks with few rows: adapt on B versus ridge on the task's own rows, averaged
    # over 20 new tasks drawn like the others (w ~ N(0, I_k))
    rng = np.random.default_rng(7)
    rows = []
    for n_new in (5, 10, 25):
        mse = {"adapt (least squares on B)": [], "adapt (shrink='auto')": [],
               "Ridge on the new task alone": []}
        for _ in range(20):
            w = rng.standard_normal(k)
            Xn = rng.standard_normal((n_new + 200, d))
            yn = Xn @ sim.B @ w + 0.5 * rng.standard_normal(n_new + 200)
            new = pd.DataFrame(Xn, columns=xnames).assign(y=yn)
            fit_rows, test_rows = new.iloc[:n_new], new.iloc[n_new:]
            truth = yn[n_new:]
            for name, shrink in (("adapt (least squares on B)", None),
                                 ("adapt (shrink='auto')", "auto")):
                pred = res.adapt(fit_rows, shrink=shrink).predict(test_rows).to_numpy()
                mse[name].append(np.mean((truth - pred) ** 2))
            ridge = mt.Ridge.from_formula(formula, fit_rows).fit()
            mse["Ridge on the new task alone"].append(
                np.mean((truth - ridge.predict(test_rows).to_numpy()[:, 0]) ** 2))
        rows.append({"rows of the new task": n_new,
                     **{name: float(np.mean(v)) for name, v in mse.items()}})
    table = pd.DataFrame(rows).set_index("rows of the new task")
    print("\nNew tasks: mean test MSE over 20 new tasks, 200 held-out rows each "
          "(noise variance 0.25):", file=out)
    print(table.to_string(float_format=lambda v: f"{v:.3f}"), file=out)
    return table


def _read_csv(path, what):
    """A CSV file with a header and at least one row, else a ValueError naming it."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{what} file {path} is a directory, not a CSV file") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what} file {path} is empty (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{what} file {path} is not a readable CSV: {msg}") from None
    if len(frame) == 0:
        raise ValueError(f"{what} file {path} has no rows (only a header: "
                         f"{_first(list(frame.columns))})")
    return frame


def _coefficient_table(raw, path):
    """The --source-kind coef table: predictor names (first column) x responses."""
    what = f"--source file {path}"
    if raw.shape[1] < 2:
        raise ValueError(f"{what} has a single column; a coefficient table needs the "
                         "predictor names in its first column and one column per response")
    first = raw.columns[0]
    names = raw[first]
    if pd.api.types.is_numeric_dtype(names):
        raise ValueError(f"{what}: the first column ({first!r}) holds numbers, not "
                         "predictor names; with --source-kind coef the first column must "
                         "name the predictors (write the table with its index, e.g. "
                         "DataFrame.to_csv(path) with predictor names as the index)")
    if names.isna().any():
        rows = [i + 2 for i in np.flatnonzero(names.isna().to_numpy())]
        raise ValueError(f"{what}: the first column ({first!r}) must name a predictor on "
                         f"every row; empty on line(s) {_first(rows)}")
    names = names.astype(str)
    dup = sorted(set(names[names.duplicated()]))
    if dup:
        raise ValueError(f"{what}: predictor name(s) {dup} appear more than once in the "
                         f"first column ({first!r})")
    table = raw.drop(columns=[first]).set_axis(list(names), axis=0)
    numeric = table.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.fillna(0.0))
    if bad.to_numpy().any():
        cells = []
        for c in table.columns:
            for r in table.index[bad[c].to_numpy()]:
                v = table.at[r, c]
                cells.append(f"({r}, {c}) " + ("missing" if pd.isna(v) else repr(str(v)[:20])))
        raise ValueError(f"{what} has missing or non-numeric coefficient(s) at (predictor, "
                         f"response): {_first(cells)}")
    numeric.columns = [str(c) for c in numeric.columns]
    return numeric.astype(float)


def _first(items, k=5):
    shown = ", ".join(map(str, items[:k]))
    return shown + (f", ... ({len(items)} in all)" if len(items) > k else "")


def _about(err, prefix):
    """``err`` (a ValueError or TypeError) as the same kind of error, message prefixed."""
    kind = ValueError if isinstance(err, ValueError) else TypeError
    return kind(f"{prefix}: {err}")


def _for_file(what, path, fn):
    """Run ``fn()``; a ValueError or TypeError it raises names the file it was about."""
    try:
        return fn()
    except (ValueError, TypeError) as err:
        raise _about(err, f"{what} file {path}") from None


def run_fit(args, out=None):
    """``mtltransfer fit``: SMART on the user's CSV files."""
    import mtltransfer as mt

    out = sys.stdout if out is None else out
    say = _Progress(args.quiet)
    missing = getattr(args, "missing", "raise")
    # read (and check) every input before the first fit
    data = _read_csv(args.data, "--data")
    raw_source = _read_csv(args.source, "--source")
    new = _read_csv(args.predict, "--predict") if args.predict else None
    if args.source_kind == "data":
        say("fitting the source data with ReducedRank (rank by RSC); only its "
            "coefficients are used")
        smodel = _for_file("--source", args.source, lambda: mt.ReducedRank.from_formula(
            args.formula, raw_source, missing=missing))
        source = smodel.fit()
    else:
        source = _coefficient_table(raw_source, args.source)
    say("fitting SMART" + (" with automatic tuning" if args.rank is None else ""))
    try:
        model = mt.SMART.from_formula(args.formula, data, source=source, missing=missing)
    except (ValueError, TypeError) as err:
        # the source's alignment to the target concerns the --source file, the rest --data
        if not str(err).startswith("source"):
            raise _about(err, f"--data file {args.data}") from None
        if args.source_kind == "coef" and "predictors" in str(err):
            err = ValueError(f"{err} (the first column of a --source-kind coef table must "
                             "hold the predictor names)")
        raise _about(err, f"--source file {args.source}") from None
    res = model.fit(rank=args.rank, verbose=say.on)
    print(res.summary(), file=out)
    if args.out:
        res.save(args.out)
        print(f"results saved to {args.out}", file=out)
    if new is not None:
        pred = _for_file("--predict", args.predict, lambda: res.predict(new))
        dest = args.predict_out or "predictions.csv"
        pred.to_csv(dest, index=False)
        print(f"predictions for {len(pred)} rows written to {dest}", file=out)
    return res


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mtltransfer",
                                     description="Transfer and multi-task regression.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the embedded transfer analysis")
    p_demo.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p_demo.add_argument("--shared", action="store_true",
                        help="the SharedRepresentation demo (many tasks, then a new task)")
    p_fit = sub.add_parser("fit", help="fit SMART on your CSV files")
    p_fit.add_argument("--formula", required=True, help='e.g. "Y1 + Y2 ~ x1 + x2"')
    p_fit.add_argument("--data", required=True, help="target study, CSV with a header")
    p_fit.add_argument("--source", required=True,
                       help="source study: raw data (CSV) or its coefficients")
    p_fit.add_argument("--source-kind", choices=["data", "coef"], default="data",
                       help="data: raw rows, fitted by ReducedRank first; coef: a "
                            "coefficient table (first column: predictor names)")
    p_fit.add_argument("--rank", type=int, default=None, help="fix the rank")
    p_fit.add_argument("--missing", choices=["raise", "drop"], default="raise",
                       help="rows with a missing value in a variable of the formula: raise "
                            "an error (default) or drop them (--data, and --source with "
                            "--source-kind data)")
    p_fit.add_argument("--out", default=None, help="save the results (a data-only file; read it with mtltransfer.load)")
    p_fit.add_argument("--predict", default=None, help="CSV of new rows to predict")
    p_fit.add_argument("--predict-out", default=None,
                       help="where to write predictions (default predictions.csv)")
    p_fit.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            (run_demo_shared if args.shared else run_demo)(quiet=args.quiet)
        elif args.command == "fit":
            run_fit(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        # the library's remedies name its keyword; on the command line it is the flag
        msg = str(err).replace("missing='drop'", "--missing drop")
        print(f"mtltransfer: error: {msg}", file=sys.stderr)
        return 2
    return 0
