"""The shared representation's one statistics form, TaskSums, and the problem object
TaskData built from it or from rows."""

import numpy as np
import pytest

from mtltransfer.solvers.shared_baselines import fit_per_task
from mtltransfer.solvers.shared_data import TaskData
from mtltransfer.solvers.shared_fit import fit_shared_representation
from mtltransfer.solvers.shared_sums import SUM_NAMES, TaskSums


def _rows(seed=0, T=6, n=150, d=3):
    rng = np.random.default_rng(seed)
    task = rng.integers(0, T, n)
    X = rng.standard_normal((n, d)) + rng.standard_normal((T, d))[task]
    B = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    y = (2.0 * task + np.einsum("id,di->i", X, (B @ rng.standard_normal((2, T)))[:, task])
         + 0.3 * rng.standard_normal(n))
    return X, y, task


def _direct_sums(X, y, task, T):
    """Every sum by a loop over tasks (the independent computation)."""
    out = {name: [] for name in SUM_NAMES}
    for t in range(T):
        Xt, yt = X[task == t], y[task == t]
        xx = np.sum(Xt ** 2, 1)
        vals = dict(n=len(yt), sx=Xt.sum(0), sy=yt.sum(), XtX=Xt.T @ Xt, Xty=Xt.T @ yt,
                    yty=yt @ yt, xx_yy=xx @ yt ** 2, xx_y=xx @ yt, xx=xx.sum(),
                    x_yy=Xt.T @ yt ** 2)
        for name in SUM_NAMES:
            out[name].append(vals[name])
    return {name: np.array(v, dtype=float) for name, v in out.items()}


def test_sums_of_rows_and_of_centred_rows_match_a_loop_over_tasks():
    X, y, task = _rows()
    raw = TaskSums.from_rows(X, y, task).sorted()
    assert list(raw.labels) == list(range(6))
    expect = _direct_sums(X, y, task, 6)
    for name in SUM_NAMES:
        np.testing.assert_allclose(getattr(raw, name), expect[name], rtol=1e-12,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(raw.N, expect["n"])
    # the centred sums, from the raw sums alone, equal the sums of the centred rows
    means_x = np.array([X[task == t].mean(0) for t in range(6)])
    means_y = np.array([y[task == t].mean() for t in range(6)])
    Xc, yc = X - means_x[task], y - means_y[task]
    expect_c = _direct_sums(Xc, yc, task, 6)
    cen = raw.centred()
    assert cen.centered and not raw.centered
    for name in SUM_NAMES:
        np.testing.assert_allclose(getattr(cen, name), expect_c[name], rtol=1e-10,
                                   atol=1e-9, err_msg=name)


def test_sums_of_partitions_add_and_centred_sums_refuse_to():
    X, y, task = _rows(seed=1)
    labels = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)[task]
    whole = TaskSums.from_rows(X, y, labels).sorted()
    parts = (TaskSums.from_rows(X[:70], y[:70], labels[:70])
             + TaskSums.from_rows(X[70:], y[70:], labels[70:])).sorted()
    assert list(parts.labels) == list(whole.labels)
    for name in SUM_NAMES:
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name),
                                   rtol=1e-12, atol=1e-12, err_msg=name)
    with pytest.raises(ValueError, match="centred within tasks do not add"):
        whole.centred() + whole


@pytest.mark.parametrize("center", [False, True])
def test_problem_from_sums_is_the_problem_from_rows(center):
    X, y, task = _rows(seed=2)
    rows = TaskData.from_rows(X, y, task, center=center, route="stats")
    sums = TaskData.from_sums(TaskSums.from_rows(X, y, task).sorted(), center=center)
    for name in ("S", "s", "q", "N"):
        np.testing.assert_allclose(getattr(sums, name), getattr(rows, name),
                                   rtol=1e-10, atol=1e-10, err_msg=name)
    # the sums a row-built problem reports are those of its rows as fitted
    back = rows.sums()
    assert back.centered == center
    np.testing.assert_allclose(back.XtX / back.n[:, None, None], rows.S, rtol=1e-12)
    # the same fits from either constructor
    for k in (1, 2):
        a = fit_shared_representation(rows, k=k, tol=1e-12)
        b = fit_shared_representation(sums, k=k, tol=1e-12)
        np.testing.assert_allclose(b.coef, a.coef, rtol=1e-10, atol=1e-10)
        assert b.objective == pytest.approx(a.objective, rel=1e-10)
    np.testing.assert_allclose(fit_per_task(sums).coef, fit_per_task(rows).coef,
                               rtol=1e-10, atol=1e-10)


def test_task_data_is_built_by_its_named_constructors_only():
    X, y, task = _rows()
    with pytest.raises(TypeError, match="TaskData.from_rows"):
        TaskData(X, y, task)


def test_a_shared_fit_saved_before_the_results_moved_loads():
    """tests/data/shared_adapted_before_split.mtl: an AdaptedTask (with its parent results
    and model) saved when SharedRepresentationResults and AdaptedTask lived in
    mtltransfer.models.shared (the data below, ``fit(k=2)``, ``adapt`` on 12 rows of
    task 3). It loads through io.MOVED_CLASSES and equals today's fit."""
    from pathlib import Path

    import pandas as pd

    import mtltransfer as mt
    from mtltransfer import io as mtio

    rng = np.random.default_rng(3)
    T, n = 8, 160
    g = rng.integers(0, T, n)
    X = rng.standard_normal((n, 3))
    B = np.linalg.qr(rng.standard_normal((3, 2)))[0]
    W = rng.standard_normal((2, T))
    y = 0.5 * g + np.einsum("id,di->i", X, (B @ W)[:, g]) + 0.3 * rng.standard_normal(n)
    frame = pd.DataFrame(X, columns=["x1", "x2", "x3"]).assign(y=y, g=g)
    new = frame[frame.g == 3].drop(columns="g").iloc[:12]
    old = mtio.load(Path(__file__).parent / "data" / "shared_adapted_before_split.mtl")
    assert type(old) is mt.AdaptedTask
    assert type(old._parent) is mt.SharedRepresentationResults
    now = mt.SharedRepresentation.from_formula("y ~ x1 + x2 + x3", frame,
                                               groups="g").fit(k=2)
    np.testing.assert_allclose(old._parent.params, now.params, rtol=1e-10, atol=1e-12)
    assert old._parent.llf == pytest.approx(now.llf, rel=1e-12)
    np.testing.assert_allclose(old.params, now.adapt(new).params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(old.predict(frame.iloc[:5]), now.adapt(new).predict(
        frame.iloc[:5]), rtol=1e-10, atol=1e-12)
    assert "k: 2 (given)" in " ".join(old._parent.summary().as_text().split())
