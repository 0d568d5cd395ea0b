"""Observation weights (``weights=``, as statsmodels' WLS).

* ``mt.OLS`` with weights equals ``statsmodels.WLS`` on statsmodels' data sets: params,
  bse, conf_int, llf (WLS's, with ``sum log w / 2``), R-squared, ssr, F test and
  prediction intervals, for every covariance type.
* Every model fitted from moments minimises the weighted loss
  ``(1 / 2 sum w) sum_i w_i ||r_i||^2 + penalty``: with integer weights that is exactly
  the unweighted loss of the data with each row repeated ``w_i`` times, which the tests
  fit independently, at fixed hyperparameters.
"""

import io

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import mtltransfer as mt

COV_TYPES = ["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"]


def _grunfeld():
    g = sm.datasets.grunfeld.load_pandas().data
    return g.assign(li=np.log(g.invest), lv=np.log(g.value), lc=np.log(g.capital))


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_weighted_ols_equals_statsmodels_wls(cov_type):
    g = _grunfeld()
    w = 1.0 / (1.0 + g.year - g.year.min())
    kw = {"cov_kwds": {"groups": g.firm}} if cov_type == "cluster" else {}
    res = mt.OLS.from_formula("li ~ lv + lc + C(firm)", g, weights=w).fit(
        cov_type=cov_type, **kw)
    ref = smf.wls("li ~ lv + lc + C(firm)", g, weights=w).fit(cov_type=cov_type, **kw)
    assert _rel(res.params_full, ref.params) < 1e-10
    assert _rel(res.bse, ref.bse) < 1e-8
    assert _rel(res.conf_int(0.1), ref.conf_int(0.1)) < 1e-8
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)
    assert res.aic == pytest.approx(ref.aic, rel=1e-12)
    assert res.rsquared.iloc[0] == pytest.approx(ref.rsquared, rel=1e-12)
    assert res.rsquared_adj.iloc[0] == pytest.approx(ref.rsquared_adj, rel=1e-12)
    assert res.ssr == pytest.approx(ref.ssr, rel=1e-12)
    assert res.fvalue.iloc[0] == pytest.approx(ref.fvalue, rel=1e-7)
    assert "Least squares, weighted" in res.summary().as_text()
    new = g.iloc[::37]
    ours = res.get_prediction(new).summary_frame(0.1)
    theirs = ref.get_prediction(new).summary_frame(0.1)
    assert _rel(ours[["mean", "mean_ci_lower", "mean_ci_upper"]],
                theirs[["mean", "mean_ci_lower", "mean_ci_upper"]]) < 1e-8


def test_weighted_ols_arrays_several_responses_equal_wls_per_response():
    d = sm.datasets.longley.load_pandas().data
    X = sm.add_constant(d[["GNPDEFL", "UNEMP", "ARMED"]])
    Y = d[["TOTEMP", "GNP"]]
    w = pd.Series(np.linspace(0.5, 2.0, len(d)), index=d.index)
    res = mt.OLS(Y, X, weights=w).fit()
    for y in Y.columns:
        ref = sm.WLS(d[y], X, weights=w).fit()
        assert _rel(res.params_full[y], ref.params) < 1e-8
        assert _rel(res.bse[y], ref.bse) < 1e-8
        assert res.rsquared[y] == pytest.approx(ref.rsquared, rel=1e-10)
    # the joint llf: the sum of the responses' WLS log-likelihoods
    total = sum(sm.WLS(d[y], X, weights=w).fit().llf for y in Y.columns)
    assert res.llf == pytest.approx(total, rel=1e-12)


def _problem(seed=0, n=60, p=6, q=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    C = rng.standard_normal((p, 2)) @ rng.standard_normal((2, q))
    Y = 1.0 + X @ C + 0.5 * rng.standard_normal((n, q))
    w = rng.integers(1, 4, n)
    return X, Y, w, np.repeat(np.arange(n), w)


SOURCE = np.random.default_rng(5).standard_normal((6, 2)) @ \
    np.random.default_rng(6).standard_normal((2, 4))

# (model, constructor keywords, fit keywords): fixed hyperparameters, so the weighted
# fit and the repeated-rows fit solve the same problem
CASES = [
    (mt.OLS, {}, {}),
    (mt.Ridge, {}, {"alpha": 0.3}),
    (mt.ReducedRank, {}, {"rank": 2}),
    (mt.NuclearNorm, {}, {"lam": 0.2, "tol": 1e-12}),
    (mt.SMART, {"source": SOURCE}, {"rank": 2, "structural_rank": (2, 2),
                                    "lam": (0.05, 0.05), "tol": 1e-10}),
    (mt.SparseReducedRank, {}, {"lam": 0.1, "rank": 2, "tol": 1e-10}),
    (mt.RSSVD, {}, {"lam": (0.1, 0.1), "rank": 2, "tol": 1e-10}),
    (mt.SOFAR, {}, {"lam": 0.1, "rank": 2, "tol": 1e-10}),
    (mt.RidgeToSource, {"source": SOURCE}, {"alpha": 0.3}),
    (mt.NuclearContrast, {"source": SOURCE}, {"lam": 0.2, "tol": 1e-12}),
    (mt.SourceSubspaceRRR, {"source": SOURCE}, {"rank": 2, "subspace_rank": (3, 3)}),
    (mt.SourceMixture, {"source": SOURCE}, {"weight": 0.4, "rank": 2}),
]


@pytest.mark.parametrize("cls, init, fit", CASES, ids=[c[0].__name__ for c in CASES])
def test_integer_weights_equal_repeated_rows(cls, init, fit):
    X, Y, w, rows = _problem()
    weighted = cls(Y, X, weights=w, **init).fit(**fit)
    repeated = cls(Y[rows], X[rows], **init).fit(**fit)
    np.testing.assert_allclose(weighted.params, repeated.params, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(weighted.intercept, repeated.intercept, atol=1e-6,
                               rtol=1e-6)
    # the weighted fit differs from the unweighted one: the weights are used
    plain = cls(Y, X, **init).fit(**fit)
    assert np.max(np.abs(plain.params.to_numpy() - weighted.params.to_numpy())) > 1e-4
    # weights scaled by a constant give the same fit (the loss is normalised by sum w)
    scaled = cls(Y, X, weights=2.5 * w, **init).fit(**fit)
    np.testing.assert_allclose(scaled.params, weighted.params, atol=1e-8, rtol=1e-8)


def test_weighted_nuclear_norm_fast_equals_cvxpy():
    X, Y, w, _ = _problem(1)
    model = mt.NuclearNorm(Y, X, weights=w)
    fast = model.fit(lam=0.2, tol=1e-12)
    cvx = model.fit(lam=0.2, backend="cvxpy")
    np.testing.assert_allclose(fast.params, cvx.params, atol=1e-5)


def test_weights_follow_missing_rows_subset_and_labels():
    g = _grunfeld()
    g.loc[[3, 50], "lv"] = np.nan
    w = pd.Series(1.0 / (1.0 + g.year - g.year.min()), index=g.index)
    keep = g.year > 1936
    res = mt.OLS.from_formula("li ~ lv + lc", g.assign(w=w), weights="w", missing="drop",
                              subset=keep).fit()
    used = g[keep].dropna(subset=["lv"])
    ref = smf.wls("li ~ lv + lc", used, weights=w[used.index].to_numpy()).fit()
    assert res.nobs == ref.nobs
    assert _rel(res.params_full, ref.params) < 1e-10 and _rel(res.bse, ref.bse) < 1e-8
    # a Series is aligned by index; an array is one weight per row of data
    by_series = mt.OLS.from_formula("li ~ lv + lc", g, weights=w, missing="drop",
                                    subset=keep).fit()
    by_array = mt.OLS.from_formula("li ~ lv + lc", g, weights=w.to_numpy(), missing="drop",
                                   subset=keep).fit()
    np.testing.assert_allclose(by_series.params, res.params, rtol=1e-12)
    np.testing.assert_allclose(by_array.params, res.params, rtol=1e-12)


def test_bad_weights_are_refused_by_name():
    X, Y, w, _ = _problem()
    with pytest.raises(ValueError, match=r"weights must be finite and positive; got 0\.0 at "
                                         r"row 3 \(drop rows with subset="):
        mt.OLS(Y, X, weights=np.where(np.arange(60) == 3, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"weights must be finite and positive; got nan"):
        mt.Ridge(Y, X, weights=np.where(np.arange(60) == 5, np.nan, 1.0))
    with pytest.raises(ValueError, match=r"weights must have one value per row of the data "
                                         r"\(60\); got 59"):
        mt.NuclearNorm(Y, X, weights=w[:-1])
    with pytest.raises(TypeError, match=r"weights must be numbers"):
        mt.OLS(Y, X, weights=["a"] * 60)
    with pytest.raises(ValueError, match=r"weights='wt' is not a column of data"):
        mt.OLS.from_formula("li ~ lv", _grunfeld(), weights="wt")
    with pytest.raises(ValueError, match=r"screen= and weights= together"):
        mt.ReducedRank(Y, X, weights=w, screen=3)


def test_weighted_bootstrap_resamples_pairs_and_save_load_keeps_weights():
    X, Y, w, _ = _problem(2)
    res = mt.OLS(Y, X, weights=w).fit(cov_type="HC1")
    assert res.bootstrap(n_boot=10, random_state=0).method == "pairs"
    with pytest.raises(ValueError, match=r"method='residual'.*use method='pairs'"):
        res.bootstrap(n_boot=10, method="residual", random_state=0)
    for remove in (False, True):
        buf = io.BytesIO()
        res.save(buf, remove_data=remove)
        buf.seek(0)
        back = mt.load(buf)
        np.testing.assert_allclose(back.bse, res.bse, rtol=1e-12)
        assert back.llf == pytest.approx(res.llf, rel=1e-12)


def test_dask_refuses_weights():
    import dask.dataframe as dd

    g = _grunfeld()
    with pytest.raises(TypeError, match=r"weights= is for in-memory data"):
        mt.OLS.from_formula("li ~ lv", dd.from_pandas(g, npartitions=2), weights="value")
