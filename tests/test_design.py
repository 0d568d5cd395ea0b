"""Formula/array front end, results API, summary, persistence and bad input."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt


@pytest.fixture
def frame():
    rng = np.random.default_rng(11)
    n = 80
    df = pd.DataFrame({"x1": rng.standard_normal(n), "x2": rng.uniform(0.5, 3, n),
                       "site": rng.choice(["a", "b", "c"], n)})
    eff = df["site"].map({"a": 0.0, "b": 1.0, "c": -1.0})
    df["Y1"] = 2 + df.x1 - np.log(df.x2) + eff + 0.1 * rng.standard_normal(n)
    df["Y2"] = -1 + 0.5 * df.x1 + 2 * eff + 0.1 * rng.standard_normal(n)
    return df


def test_formula_equals_array_path(frame):
    f = mt.OLS.from_formula("Y1 + Y2 ~ x1 + np.log(x2) + C(site)", frame).fit()
    assert list(f.params.index) == ["C(site)[T.b]", "C(site)[T.c]", "x1", "np.log(x2)"]
    assert list(f.params.columns) == ["Y1", "Y2"]
    X = np.column_stack([frame.site == "b", frame.site == "c", frame.x1, np.log(frame.x2)])
    a = mt.OLS(frame[["Y1", "Y2"]], X.astype(float), intercept=True).fit()
    np.testing.assert_allclose(f.coef, a.coef, atol=1e-10)
    np.testing.assert_allclose(f.intercept, a.intercept, atol=1e-10)
    assert f.params.loc["x1", "Y1"] == pytest.approx(1.0, abs=0.05)
    assert f.intercept["Y1"] == pytest.approx(2.0, abs=0.1)


def test_predict_rebuilds_design_and_names_missing_column(frame):
    res = mt.Ridge.from_formula("Y1 + Y2 ~ x1 + np.log(x2) + C(site)", frame).fit(alpha=0.01)
    new = frame.iloc[:5].copy()
    pred = res.predict(new)
    np.testing.assert_allclose(pred.to_numpy(), res.fittedvalues.iloc[:5].to_numpy(),
                               atol=1e-12)
    assert list(pred.index) == list(new.index)
    one_site = frame[frame.site == "c"].iloc[:3]  # a single level still gets all columns
    np.testing.assert_allclose(res.predict(one_site).to_numpy(),
                               res.fittedvalues.loc[one_site.index].to_numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="x2"):
        res.predict(new.drop(columns="x2"))


def test_no_intercept_formula(frame):
    res = mt.OLS.from_formula("Y1 + Y2 ~ x1 + x2 - 1", frame).fit()
    assert res.model.k_constant == 0
    assert np.all(res.intercept == 0)
    beta = np.linalg.lstsq(frame[["x1", "x2"]].to_numpy(), frame.Y1.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(res.params["Y1"], beta, atol=1e-10)


def test_constant_column_is_the_intercept():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 3))
    Y = X @ np.ones((3, 2)) + 4.0
    with_const = mt.OLS(Y, np.column_stack([np.ones(30), X])).fit()
    assert with_const.params.shape == (3, 2)
    np.testing.assert_allclose(with_const.intercept, [4.0, 4.0], atol=1e-10)


def test_user_data_never_modified(frame):
    before = frame.copy(deep=True)
    X = frame[["x1", "x2"]].to_numpy()
    X0 = X.copy()
    mt.NuclearNorm.from_formula("Y1 + Y2 ~ x1 + x2", frame).fit(lam=0.01)
    mt.ReducedRank(frame[["Y1", "Y2"]], X).fit(rank=1)
    pd.testing.assert_frame_equal(frame, before)
    np.testing.assert_array_equal(X, X0)


def test_missing_policy(frame):
    df = frame.copy()
    df.loc[df.index[3], "x1"] = np.nan
    with pytest.raises(ValueError, match="missing"):
        mt.OLS.from_formula("Y1 + Y2 ~ x1 + x2", df)
    res = mt.OLS.from_formula("Y1 + Y2 ~ x1 + x2", df, missing="drop").fit()
    assert res.nobs == len(df) - 1 and df.index[3] not in res.fittedvalues.index
    with pytest.raises(ValueError, match="NaN"):
        mt.OLS(df[["Y1", "Y2"]], df[["x1", "x2"]])
    arr = mt.OLS(df[["Y1", "Y2"]], df[["x1", "x2"]], missing="drop")
    assert arr.nobs == len(df) - 1
    with pytest.raises(ValueError, match="missing must be"):
        mt.OLS(df[["Y1", "Y2"]], df[["x1", "x2"]], missing="ignore")


@pytest.mark.parametrize("call, exc, words", [
    (lambda d: mt.OLS.from_formula("x1 + x2", d), ValueError, "no response"),
    (lambda d: mt.OLS.from_formula("Y1 ~ x1 + nothere", d), ValueError, "nothere"),
    (lambda d: mt.OLS.from_formula(3, d), TypeError, "formula"),
    (lambda d: mt.OLS.from_formula("Y1 ~ x1", d.to_numpy()), TypeError, "data"),
    (lambda d: mt.OLS(d[["Y1"]], d[["x1", "site"]]), TypeError, "site"),
    (lambda d: mt.OLS(d[["Y1"]].iloc[:10].to_numpy(), d[["x1"]]), ValueError,
     "same number of rows"),
    (lambda d: mt.OLS(d[["Y1"]].iloc[:10], d[["x1"]]), ValueError, "not aligned"),
    (lambda d: mt.OLS(d[["Y1"]], d[["x1"]]).fit(backend="gpu"), ValueError, "backend"),
    (lambda d: mt.Ridge(d[["Y1"]], d[["x1"]]).fit(alpha=-1), ValueError, "alpha"),
    (lambda d: mt.NuclearNorm(d[["Y1"]], d[["x1"]]).fit(lam=-0.1), ValueError, "lam"),
    (lambda d: mt.ReducedRank(d[["Y1", "Y2"]], d[["x1", "x2"]]).fit(rank=3), ValueError,
     "rank"),
    (lambda d: mt.ReducedRank(d[["Y1", "Y2"]], d[["x1", "x2"]]).fit(rank=1.5), TypeError,
     "rank"),
    (lambda d: mt.Ridge(d[["Y1"]], d[["x1"]]).fit(alpha=1, solver=3), TypeError, "solver"),
    (lambda d: mt.OLS(d[["Y1"]].iloc[:1], d[["x1"]].iloc[:1]), ValueError, "2 complete rows"),
    (lambda d: mt.OLS.from_formula("Y1 + site ~ x1", d), TypeError, "site"),
    (lambda d: mt.OLS(d[["Y1"]], d[["x1"]], source=1), TypeError, "source"),
])
def test_bad_input_messages(frame, call, exc, words):
    with pytest.raises(exc, match=words):
        call(frame)


def test_results_api_and_r2(frame):
    res = mt.OLS.from_formula("Y1 + Y2 ~ x1 + np.log(x2) + C(site)", frame).fit()
    np.testing.assert_allclose(res.resid + res.fittedvalues, frame[["Y1", "Y2"]])
    import statsmodels.api as sm
    ref = sm.OLS.from_formula("Y1 ~ x1 + np.log(x2) + C(site)", frame).fit()
    assert res.rsquared["Y1"] == pytest.approx(ref.rsquared, rel=1e-10)
    assert res.nobs == 80 and res.ssr == pytest.approx(
        ref.ssr + sm.OLS.from_formula("Y2 ~ x1 + np.log(x2) + C(site)", frame).fit().ssr)


def test_summary_contents(frame):
    res = mt.ReducedRank.from_formula("Y1 + Y2 ~ x1 + np.log(x2) + C(site)",
                                      frame).fit(rank=1)
    text = res.summary().as_text()
    for words in ("ReducedRank Results", "No. Observations:", "80", "rank:", "BIC:",
                  "np.log(x2)", "Intercept", "Y2"):
        assert words in text
    assert "<table" in res.summary().as_html()
    # the coefficient shown for x1/Y1 is the fitted one
    assert f"{res.params.loc['x1', 'Y1']:#.4g}" in text


def test_save_load_predicts_identically(frame, tmp_path):
    res = mt.NuclearNorm.from_formula("Y1 + Y2 ~ x1 + np.log(x2) + C(site)",
                                      frame).fit(lam=0.01)
    path = tmp_path / "res.mtl"
    res.save(path)
    back = mt.load(path)
    new = frame.sample(7, random_state=1)
    pd.testing.assert_frame_equal(back.predict(new), res.predict(new))
    pd.testing.assert_frame_equal(back.params, res.params)


def test_common_fit_options_accepted_by_closed_forms(frame):
    a = mt.OLS.from_formula("Y1 + Y2 ~ x1 + x2", frame).fit(tol=1e-8, max_iter=10)
    b = mt.ReducedRank.from_formula("Y1 + Y2 ~ x1 + x2", frame).fit(rank=1, tol=1e-8)
    assert a.converged and b.rank == 1


def test_large_mean_predictor_matches_statsmodels():
    import statsmodels.api as sm
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"x1": 1e7 + rng.standard_normal(n), "x2": rng.standard_normal(n)})
    df["y"] = 2 * df.x1 + df.x2 + rng.standard_normal(n)
    df["y2"] = df.y - df.x2
    ours = mt.OLS.from_formula("y + y2 ~ x1 + x2", df).fit()
    ref = sm.OLS.from_formula("y ~ x1 + x2", df).fit()
    np.testing.assert_allclose(ours.params["y"], ref.params[["x1", "x2"]], rtol=1e-7)


def test_save_load_with_dropped_level_quoted_name(frame, tmp_path):
    df = frame.copy()
    df["x a"] = df.x1 * 2 + 1
    df.loc[df.index[df.site == "c"][0], "x2"] = np.nan   # one row dropped ...
    df.loc[df.index[0], "site"] = "d"                   # ... and a level seen once
    res = mt.OLS.from_formula("Y1 + Y2 ~ Q('x a') + x2 + C(site)", df,
                              missing="drop").fit()
    res.save(tmp_path / "r.mtl")
    back = mt.load(tmp_path / "r.mtl")
    new = df.dropna().iloc[:6]
    pd.testing.assert_frame_equal(back.predict(new), res.predict(new))


@pytest.mark.parametrize("case", ["random", "dummies", "constant", "near", "scaled_dummies"])
def test_implicit_constant_matches_statsmodels_rank_test(case):
    """The implicit-constant test (moments screen, then chunked QR) against statsmodels'
    own ``matrix_rank([1, X]) == matrix_rank(X)`` on the whole design."""
    from mtltransfer.design import _spans_constant

    rng = np.random.default_rng(4)
    n = 3000
    X = rng.standard_normal((n, 4))
    if case == "dummies":                      # dummies summing to one: a constant
        X = np.column_stack([np.eye(3)[rng.integers(0, 3, n)], X[:, :2]])
    elif case == "constant":
        X[:, 2] = 5.0
    elif case == "near":                       # nearly constant, but not in the span
        X[:, 2] = 5.0 + 1e-6 * rng.standard_normal(n)
    elif case == "scaled_dummies":             # dummies at 1e6 scale with a slope
        D = np.eye(2)[rng.integers(0, 2, n)] * 1e6
        X = np.column_stack([D, X[:, :2]])
    ref = np.linalg.matrix_rank(np.column_stack([np.ones(n), X])) == \
        np.linalg.matrix_rank(X)
    assert _spans_constant(X, chunk=700) == ref
    assert ref == (case in ("dummies", "constant", "scaled_dummies"))


def test_models_do_not_follow_later_changes_of_the_callers_arrays():
    """The model copies its data: reusing the caller's buffers after the fit (a
    simulation loop) changes no result computed later from the rows. A float array the
    caller has made read-only is kept without a copy."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    Y = X @ np.ones((3, 2)) + rng.standard_normal((60, 2))
    res = mt.OLS(Y, X).fit()
    robust = mt.OLS(Y, X).fit(cov_type="HC0")
    bse, resid, hc0 = res.bse.copy(), res.resid.copy(), robust.bse.copy()
    boot = res.bootstrap(n_boot=20, random_state=0).bse
    X[:] = rng.standard_normal((60, 3))
    Y[:] = 0.0
    pd.testing.assert_frame_equal(res.bse, bse)
    pd.testing.assert_frame_equal(res.resid, resid)
    pd.testing.assert_frame_equal(robust.bse, hc0)
    pd.testing.assert_frame_equal(res.bootstrap(n_boot=20, random_state=0).bse, boot)
    frozen = X.copy()
    frozen.flags.writeable = False
    model = mt.OLS(Y, frozen)
    assert np.shares_memory(model.exog, frozen)
    with pytest.raises(ValueError):
        model.exog[0, 0] = 1.0          # the model never writes into its data
