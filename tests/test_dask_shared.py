"""SharedRepresentation fitted from a Dask DataFrame equals the in-memory fit.

The per-task statistics are reduced over the partitions of a parquet data set on a
LocalCluster (2 worker processes, 1 thread each); the rows are shuffled so that every
task spans several partitions.
"""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer import dask as mdask
from mtltransfer.gram import SufficientStats

import dask
import dask.dataframe as dd
from distributed import Client, LocalCluster

FORMULA = "y ~ x1 + x2 + np.log(x3) + x4 + C(site)"
RTOL = 1e-8


def _rows(seed=4, T=30, d=4, k=2):
    rng = np.random.default_rng(seed)
    N = rng.integers(12, 40, T)
    task = np.repeat(np.arange(T), N)
    n = len(task)
    B = np.linalg.qr(rng.standard_normal((d + 1, k)))[0]
    W = 1.0 + 2 * rng.standard_normal((k, T))
    X = rng.standard_normal((n, d))
    site = rng.choice(["north", "south", "east"], n)
    design_ = np.column_stack([X, site == "south"])
    y = np.einsum("id,di->i", design_, (B @ W)[:, task]) + rng.standard_normal(T)[task] \
        + 0.5 * rng.standard_normal(n)
    frame = pd.DataFrame(X, columns=["x1", "x2", "x3", "x4"])
    frame["x3"] = np.exp(frame["x3"])           # enters as np.log(x3)
    frame["site"] = site
    frame["y"] = y
    frame["g"] = [f"task{t:02d}" for t in task]
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame.loc[[3, 40, 99], "x2"] = np.nan       # dropped with missing="drop"
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    frame = _rows()
    path = tmp_path_factory.mktemp("parquet") / "tasks"
    dd.from_pandas(frame, npartitions=4).to_parquet(path)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster):
        yield frame, dd.read_parquet(path)


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) <= rtol * max(np.max(np.abs(b)), 1e-300)


# the nuclear-norm relaxation's proximal gradient stops on a relative criterion: at 1e-12
# both fits are within rounding of the same optimum (at its default 1e-8 they differ by
# more than this file's 1e-8)
FITS = {"marginal, k by BIC": {}, "marginal, k=2": {"k": 2},
        "gd, k by BIC": {"method": "gd"}, "gd, k=3": {"method": "gd", "k": 3},
        "per_task": {"method": "per_task"},
        "nuclear": {"method": "nuclear", "lam": 0.05, "tol": 1e-12}}


@pytest.fixture(scope="module")
def fits(data):
    frame, ddf = data
    on_dask = mt.SharedRepresentation.from_formula(FORMULA, ddf, groups="g",
                                                   missing="drop")
    in_memory = mt.SharedRepresentation.from_formula(FORMULA, frame, groups="g",
                                                     missing="drop")
    return {name: (on_dask.fit(**kw), in_memory.fit(**kw)) for name, kw in FITS.items()}


def test_tasks_span_partitions_and_counts_match(data, fits):
    frame, ddf = data
    parts = [set(ddf.partitions[i]["g"].compute()) for i in range(ddf.npartitions)]
    spanning = [t for t in set(frame["g"]) if sum(t in s for s in parts) > 1]
    assert len(spanning) == frame["g"].nunique()
    on_dask, in_memory = fits["marginal, k=2"]
    assert on_dask.model.task_names == in_memory.model.task_names
    np.testing.assert_array_equal(on_dask.model.N, in_memory.model.N)
    assert on_dask.nobs == in_memory.nobs == len(frame) - 3


@pytest.mark.parametrize("name", list(FITS))
def test_dask_fit_equals_in_memory_fit(fits, name):
    on_dask, in_memory = fits[name]
    assert on_dask.k == in_memory.k
    assert on_dask.k_chosen_by == in_memory.k_chosen_by
    assert list(on_dask.params.index) == list(in_memory.params.index)
    for attr in ("params", "task_params", "representation", "intercept", "rsquared"):
        if getattr(in_memory, attr) is None:                 # the baselines: no B, W
            assert getattr(on_dask, attr) is None
            continue
        assert _close(getattr(on_dask, attr), getattr(in_memory, attr)), attr
    assert _close(on_dask.llf, in_memory.llf)
    assert _close(on_dask.ssr, in_memory.ssr)   # in memory: from the residuals
    if in_memory.k_scores is not None:
        assert list(on_dask.k_scores) == list(in_memory.k_scores)
        assert _close(list(on_dask.k_scores.values()), list(in_memory.k_scores.values()))


def test_predict_is_lazy_and_equals_in_memory(data, fits):
    frame, ddf = data
    on_dask, in_memory = fits["marginal, k by BIC"]
    pred = on_dask.predict(ddf)
    assert dask.is_dask_collection(pred)
    got = pred.compute().sort_index()
    want = in_memory.predict(frame).sort_index()
    assert list(got.isna()) == list(want.isna())   # the rows with a missing value
    assert _close(got.dropna(), want.dropna(), 1e-10)


def test_results_hold_no_rows_and_save_load(fits, data, tmp_path):
    frame, _ = data
    on_dask, in_memory = fits["gd, k=3"]
    with pytest.raises(ValueError, match="stay on the cluster"):
        on_dask.resid
    path = tmp_path / "shared.pkl"
    on_dask.save(path)
    loaded = mt.load(path)
    assert _close(loaded.params, in_memory.params)
    assert loaded.ssr == on_dask.ssr
    assert _close(loaded.predict(frame.head(50)).dropna(),
                  in_memory.predict(frame.head(50)).dropna(), 1e-10)


def test_bad_arguments_are_refused(data):
    frame, ddf = data
    with pytest.raises(TypeError, match="groups must be the name"):
        mt.SharedRepresentation.from_formula(FORMULA, ddf, groups=frame["g"])
    with pytest.raises(ValueError, match="not a column"):
        mt.SharedRepresentation.from_formula(FORMULA, ddf, groups="task")
    with pytest.raises(ValueError, match="missing values"):    # x2 has NaN
        mt.SharedRepresentation.from_formula(FORMULA, ddf, groups="g")
    model = mt.SharedRepresentation.from_formula(FORMULA, ddf, groups="g",
                                                 missing="drop")
    with pytest.raises(ValueError, match="method must be"):
        model.fit(method="mom")
    with pytest.raises(ValueError, match="criterion='bic'"):
        model.fit(method="gd", criterion="cv")


def test_grouped_stats_equal_each_groups_own_statistics():
    rng = np.random.default_rng(0)
    n, p, q = 500, 3, 2
    Z = rng.standard_normal((n, p + q)) + 5.0
    label = rng.integers(-1, 5, n)           # -1 and 4 (>= n_groups) are dropped
    out = mdask.grouped_stats(list(Z.T), label, 4, p)
    for g in range(4):
        rows = Z[label == g]
        want = SufficientStats.from_arrays(rows[:, :p], rows[:, p:])
        assert out[g].n == want.n
        for attr in ("x_mean", "y_mean", "Cxx", "Cxy", "Cyy"):
            np.testing.assert_allclose(getattr(out[g], attr), getattr(want, attr),
                                       rtol=1e-12, atol=1e-12)


def test_plain_numeric_formula_reads_columns_directly(data):
    """``y ~ x1 + x2 + x4``: the template comes from the columns' types (no partition is
    read for it), the design is the columns themselves (no patsy on the rows), and the
    fits, hashed-fold tuning included, equal the in-memory ones."""
    frame, ddf = data
    formula = "y ~ x1 + x2 + x4"
    template, used = mdask.formula_template(formula, ddf)
    assert len(template) == 2 and sorted(used) == ["x1", "x2", "x4", "y"]
    info = mdask.design_infos(formula, template)
    assert mdask.plain_columns(info[1], ddf.columns) == ["x1", "x2", "x4"]
    # a second response with a pooled signal (z = 2 x1 - x2 + a deterministic wiggle)
    two = "z + y ~ x1 + x2 + x4"
    frame2 = frame.assign(z=2 * frame.x1 - frame.x2 + 0.5 * np.sin(40 * frame.x4))
    ddf2 = ddf.assign(z=2 * ddf.x1 - ddf.x2 + 0.5 * np.sin(40 * ddf.x4))
    for cls in (mt.OLS, mt.NuclearNorm):
        on_dask = cls.from_formula(two, ddf2, missing="drop").fit()
        in_memory = cls.from_formula(two, frame2, missing="drop", folds="hash").fit()
        assert _close(on_dask.params, in_memory.params), cls.__name__
        assert _close(on_dask.ssr, in_memory.ssr), cls.__name__
    lam = on_dask.hyperparameters["lam"]       # NuclearNorm's, chosen by hashed-fold CV
    assert lam == pytest.approx(in_memory.hyperparameters["lam"], rel=RTOL)
    shared = mt.SharedRepresentation.from_formula(formula, ddf, groups="g",
                                                  missing="drop").fit(k=1)
    want = mt.SharedRepresentation.from_formula(formula, frame, groups="g",
                                                missing="drop").fit(k=1)
    assert _close(shared.params, want.params) and _close(shared.llf, want.llf)
