"""Every estimator that can be fitted from statistics fits from a Dask DataFrame, with
no Dask subclass: the model reads a statistics-backed data access
(:class:`mtltransfer.access.StatsAccess`) and equals the in-memory fit on the same
(hashed) folds to 1e-8: coefficients, intercepts, standard errors where reported,
and every chosen hyperparameter. A model that needs its rows is refused with the reason
it declares. Models saved by the former Dask twins (``DaskRidge`` ...) still load.
"""
import inspect
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.access import RowAccess, StatsAccess, TaskSumsAccess
from mtltransfer.models.base import MultiResponseModel
from mtltransfer.models.source import SourceModel

import dask
import dask.dataframe as dd

DATA = Path(__file__).resolve().parent / "data"
FORMULA = "y1 + y2 + y3 + y4 ~ x1 + x2 + x3 + x4 + x5 + C(site)"
RTOL = 1e-8


def _frame(n=240, seed=7):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    site = rng.choice(["a", "b", "c"], n)
    D = np.column_stack([X, site == "b", site == "c"])
    C = rng.standard_normal((7, 2)) @ rng.standard_normal((2, 4))
    Y = 0.5 + D @ C + 0.7 * rng.standard_normal((n, 4))
    frame = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(5)])
    frame["site"] = site
    for j in range(4):
        frame[f"y{j + 1}"] = Y[:, j]
    return frame, C


@pytest.fixture(scope="module")
def data():
    frame, C = _frame()
    # the source in the design's column order (C(site) columns first, as patsy puts them)
    names = ["C(site)[T.b]", "C(site)[T.c]", "x1", "x2", "x3", "x4", "x5"]
    order = [5, 6, 0, 1, 2, 3, 4]
    rng = np.random.default_rng(8)
    src = pd.DataFrame(C[order] + 0.3 * rng.standard_normal(C.shape), index=names,
                       columns=["y1", "y2", "y3", "y4"])
    with dask.config.set(scheduler="synchronous"):
        yield frame, dd.from_pandas(frame, npartitions=3), src


@pytest.fixture(scope="module")
def source_rows():
    return _frame(300, seed=9)[0]


def _estimators():
    """Every estimator the package exports that does not declare that it needs rows: a
    new estimator is held to the Dask equality below by its export alone."""
    return sorted(name for name in mt.__all__
                  if isinstance(getattr(mt, name), type)
                  and issubclass(getattr(mt, name), MultiResponseModel)
                  and not getattr(mt, name)._needs_rows)


NAMES = _estimators()
#: fit options that only make a test quicker (a shorter grid)
FIT_OPTIONS = {"SOFAR": {"n_lams": 8}}


def _init(cls, src, source_rows):
    if issubclass(cls, SourceModel):
        return {"source": src}
    if "source_data" in inspect.signature(cls.__init__).parameters:
        return {"source_data": source_rows}
    return {}


def test_every_estimator_that_fits_from_statistics_is_checked():
    assert set(NAMES) >= {
        "OLS", "Ridge", "ReducedRank", "NuclearNorm", "ReducedRankRidge", "SMART",
        "RidgeToSource", "NuclearContrast", "SourceSubspaceRRR", "SourceMixture",
        "SparseReducedRank", "SOFAR", "RSSVD", "TwoStageTransfer"}
    assert "Transfer" not in NAMES


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) <= rtol * max(np.max(np.abs(b)), 1e-300)


def _same_hyper(a, b):
    if isinstance(b, (float, np.floating)):
        return a == pytest.approx(b, rel=RTOL, abs=1e-300)
    if isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same_hyper(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("name", NAMES)
def test_dask_fit_equals_in_memory_fit(data, source_rows, name):
    frame, ddf, src = data
    cls = getattr(mt, name)
    init, fit = _init(cls, src, source_rows), FIT_OPTIONS.get(name, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mt.ConvergenceWarning)
        on_dask = cls.from_formula(FORMULA, ddf, **init).fit(**fit)
        in_memory = cls.from_formula(FORMULA, frame, folds="hash", **init).fit(**fit)
    # the model is the in-memory class itself, reading statistics
    assert type(on_dask.model) is cls
    assert isinstance(on_dask.model.access, StatsAccess)
    assert isinstance(in_memory.model.access, RowAccess)
    assert list(on_dask.params.index) == list(in_memory.params.index)
    assert _close(on_dask.params, in_memory.params)
    assert _close(on_dask.intercept, in_memory.intercept)
    hyper = getattr(in_memory, "hyperparameters", {})
    assert set(getattr(on_dask, "hyperparameters", {})) == set(hyper)
    for key, value in hyper.items():
        assert _same_hyper(on_dask.hyperparameters[key], value), key
    for key, how in getattr(in_memory, "chosen_by", {}).items():
        assert on_dask.chosen_by[key] == how
    if cls is mt.OLS:
        assert _close(on_dask.bse, in_memory.bse)
    assert on_dask.ssr == pytest.approx(in_memory.ssr, rel=RTOL)
    assert on_dask.llf == pytest.approx(in_memory.llf, rel=RTOL)


def test_something_was_tuned(data):
    """The equalities above are of selections: ridge's GCV chooses inside its grid."""
    frame, ddf, src = data
    ridge = mt.Ridge.from_formula(FORMULA, ddf).fit()
    grid = ridge.tuning["gcv"]["alpha"]
    assert ridge.chosen_by["alpha"] == "GCV" and grid.min() < ridge.alpha < grid.max()


def test_a_model_that_needs_rows_is_refused_with_its_reason(data):
    _, ddf, src = data
    assert mt.Transfer._needs_rows
    with pytest.raises(TypeError, match="Transfer cannot be fitted from the statistics of "
                                        "a Dask DataFrame: nested cross-validation"):
        mt.Transfer.from_formula(FORMULA, ddf, source=src)


def test_ridge_fits_from_the_spectral_moments_in_both_cases(data):
    """The one Ridge.fit: the same spectral form from the rows' SVD and from eigh of the
    statistics' Sxx, so the GCV curves agree too."""
    frame, ddf, src = data
    a = mt.RidgeToSource.from_formula(FORMULA, ddf, source=src).fit()
    b = mt.RidgeToSource.from_formula(FORMULA, frame, source=src).fit()
    pd.testing.assert_frame_equal(a.tuning["gcv"], b.tuning["gcv"], rtol=1e-8)


@pytest.mark.parametrize("name", ["ridge", "reducedrank", "nuclearnorm"])
def test_files_saved_by_the_dask_twins_load_and_refit(name):
    """``tests/data/dask_*_before_access.mtl`` were written by the former ``DaskRidge``,
    ``DaskReducedRank`` and ``DaskNuclearNorm`` (``save`` of ``fit()`` on
    ``dd.from_pandas(frame, npartitions=3)`` of the frame below, formula
    ``y1 + y2 + y3 ~ x1 + x2 + x3 + x4``). They load as the model classes themselves,
    and their models refit from the saved statistics and hashed folds to the same fit."""
    rng = np.random.default_rng(19)
    X = rng.standard_normal((300, 4))
    Y = 1.0 + X @ rng.standard_normal((4, 3)) + 0.5 * rng.standard_normal((300, 3))
    frame = pd.DataFrame(np.column_stack([X, Y]),
                         columns=["x1", "x2", "x3", "x4", "y1", "y2", "y3"])
    cls = {"ridge": mt.Ridge, "reducedrank": mt.ReducedRank,
           "nuclearnorm": mt.NuclearNorm}[name]
    old = mt.load(DATA / f"dask_{name}_before_access.mtl")
    assert type(old.model) is cls
    now = cls.from_formula("y1 + y2 + y3 ~ x1 + x2 + x3 + x4", frame, folds="hash").fit()
    assert _close(old.params, now.params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mt.MtlWarning)
        again = old.model.fit()
    assert _close(again.params, old.params, 1e-12)
    assert again.llf == pytest.approx(old.llf, rel=1e-12)
    with pytest.raises(ValueError, match="not computed"):
        old.model.fold_stats(3)


def test_a_shared_representation_saved_by_its_dask_twin_loads_and_refits():
    """``tests/data/dask_shared_before_access.mtl`` was written by the former
    ``DaskSharedRepresentation`` (``fit(k=2, method="gd")`` on
    ``dd.from_pandas(frame, npartitions=3)`` of the frame below, groups="g", its per-task
    sums a dict). It loads as a SharedRepresentation that refits from those sums."""
    rng = np.random.default_rng(21)
    T, n = 12, 360
    g = rng.integers(0, T, n)
    X = rng.standard_normal((n, 4))
    B = np.linalg.qr(rng.standard_normal((4, 2)))[0]
    W = rng.standard_normal((2, T))
    y = 0.3 * g + np.einsum("id,di->i", X, (B @ W)[:, g]) + 0.3 * rng.standard_normal(n)
    frame = pd.DataFrame(X, columns=["x1", "x2", "x3", "x4"]).assign(y=y, g=g)
    old = mt.load(DATA / "dask_shared_before_access.mtl")
    assert type(old.model) is mt.SharedRepresentation
    assert not old.model.task_access.has_rows
    now = mt.SharedRepresentation.from_formula("y ~ x1 + x2 + x3 + x4", frame,
                                               groups="g").fit(k=2, method="gd")
    assert _close(old.params, now.params)
    assert old.ssr == pytest.approx(now.ssr, rel=1e-8)
    again = old.model.fit(k=2, method="gd")
    assert _close(again.params, now.params)
    assert again.ssr == pytest.approx(now.ssr, rel=1e-8)
    with pytest.raises(ValueError, match="stay on the cluster"):
        again.resid
    # today's Dask model is the class itself, reading the per-task sums
    with dask.config.set(scheduler="synchronous"):
        on_dask = mt.SharedRepresentation.from_formula(
            "y ~ x1 + x2 + x3 + x4", dd.from_pandas(frame, npartitions=3), groups="g")
    assert type(on_dask) is mt.SharedRepresentation
    assert isinstance(on_dask.task_access, TaskSumsAccess)
    assert _close(on_dask.fit(k=2, method="gd").params, now.params)
