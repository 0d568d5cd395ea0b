"""``screen=`` on SMART and ReducedRank: the model fitted on the screened predictors."""

import re

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt

N, P, Q, M = 80, 40, 6, 10
FIX = {"rank": 2, "structural_rank": (4, 3), "lam": 0.02}


@pytest.fixture(scope="module")
def study():
    """A target whose signal sits in 4 of 40 predictors, a noisy source, new rows."""
    rng = np.random.default_rng(5)
    signal = [3, 11, 17, 29]
    U = rng.standard_normal((len(signal), 2))
    C = np.zeros((P, Q))
    C[signal] = U @ rng.standard_normal((2, Q))
    X = rng.standard_normal((N + 20, P)) * rng.uniform(0.5, 2.0, P)
    Y = X @ C + 0.5 + 0.4 * rng.standard_normal((N + 20, Q))
    C0 = C + 0.05 * rng.standard_normal((P, Q))
    xnames, ynames = [f"g{j}" for j in range(P)], [f"y{k}" for k in range(Q)]
    Xf = pd.DataFrame(X[:N], columns=xnames)
    Yf = pd.DataFrame(Y[:N], columns=ynames)
    new = pd.DataFrame(X[N:], columns=xnames, index=np.arange(100, 120))
    C0f = pd.DataFrame(C0, index=xnames, columns=ynames)
    return {"X": Xf, "Y": Yf, "new": new, "C0": C0f, "signal": signal}


def _kept(study, m=M, **kw):
    return mt.MarginalScreening(m, **kw).fit(study["Y"], study["X"]).kept


def test_screened_smart_equals_fit_on_kept_columns(study):
    scr = mt.MarginalScreening(M)
    # the source's rows in another order: it is aligned by name before the screening
    shuffled = study["C0"].iloc[::-1]
    res = mt.SMART(study["Y"], study["X"], source=shuffled, screen=scr).fit(**FIX)
    kept = _kept(study)
    ref = mt.SMART(study["Y"], study["X"][kept], source=study["C0"].loc[kept]).fit(**FIX)
    assert res.screening.kept == kept
    assert set(study["signal"]) <= {int(k[1:]) for k in kept}     # the signal survives
    assert list(res.params.index) == kept
    np.testing.assert_allclose(res.params, ref.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.intercept, ref.intercept, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.model.source, study["C0"].loc[kept].to_numpy())
    # new data carry every original column; only the kept ones are used
    pred = res.predict(study["new"])
    np.testing.assert_allclose(pred, ref.predict(study["new"][kept]), rtol=0, atol=1e-10)
    assert pred.index.equals(study["new"].index)
    assert not hasattr(scr, "support")          # the caller's object is not fitted


def test_screened_smart_arrays_and_tuned_lambda(study):
    X, Y, C0 = (study[k].to_numpy() for k in ("X", "Y", "C0"))
    res = mt.SMART(Y, X, source=C0, screen=M).fit(rank=2, structural_rank=(4, 3))
    support = mt.MarginalScreening(M).fit(Y, X).support
    ref = mt.SMART(Y, X[:, support], source=C0[support]).fit(rank=2, structural_rank=(4, 3))
    assert res.lam == pytest.approx(ref.lam, abs=1e-12)
    assert res.chosen_by["lam"] == "BIC"
    np.testing.assert_allclose(res.params, ref.params, rtol=0, atol=1e-10)
    Xn = study["new"].to_numpy()
    np.testing.assert_allclose(res.predict(Xn), ref.predict(Xn[:, support]), rtol=0,
                               atol=1e-10)
    with pytest.raises(ValueError, match=f"{P} columns"):
        res.predict(Xn[:, support])                 # the full width is required


def test_screened_smart_from_formula(study):
    data = pd.concat([study["Y"], study["X"]], axis=1)
    lhs = " + ".join(study["Y"].columns)
    formula = lhs + " ~ " + " + ".join(study["X"].columns)
    scr = mt.MarginalScreening(M, norm="linf", kind="correlation")
    res = mt.SMART.from_formula(formula, data, source=study["C0"], screen=scr).fit(**FIX)
    kept = _kept(study, norm="linf", kind="correlation")
    ref = mt.SMART.from_formula(lhs + " ~ " + " + ".join(kept), data,
                                source=study["C0"].loc[kept]).fit(**FIX)
    assert res.screening.kept == kept
    np.testing.assert_allclose(res.params, ref.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.predict(study["new"]), ref.predict(study["new"]),
                               rtol=0, atol=1e-10)
    # transform=False takes the full design matrix
    np.testing.assert_allclose(res.predict(study["new"], transform=False),
                               ref.predict(study["new"]), rtol=0, atol=1e-10)


def test_summary_line_and_no_screening(study):
    res = mt.SMART(study["Y"], study["X"], source=study["C0"], screen=M).fit(**FIX)
    text = res.summary().as_text()
    assert f"Screening: {M} of {P} predictors kept (l2 of regression marginals)" in text
    assert re.search(rf"No\. Predictors \(p\):\s+{M}\s", text)
    plain = mt.SMART(study["Y"], study["X"], source=study["C0"]).fit(**FIX)
    assert plain.screening is None and "Screening:" not in plain.summary().as_text()


@pytest.mark.parametrize("formula", [False, True])
@pytest.mark.parametrize("remove_data", [False, True])
def test_save_load_keeps_the_screening(study, tmp_path, formula, remove_data):
    if formula:
        data = pd.concat([study["Y"], study["X"]], axis=1)
        f = " + ".join(study["Y"].columns) + " ~ " + " + ".join(study["X"].columns)
        model = mt.SMART.from_formula(f, data, source=study["C0"], screen=M)
    else:
        model = mt.SMART(study["Y"], study["X"], source=study["C0"], screen=M)
    res = model.fit(**FIX)
    res.save(tmp_path / "r.mtl", remove_data=remove_data)
    back = mt.load(tmp_path / "r.mtl")
    assert back.screening.kept == res.screening.kept
    np.testing.assert_array_equal(back.screening.support, res.screening.support)
    np.testing.assert_allclose(back.predict(study["new"]), res.predict(study["new"]),
                               rtol=0, atol=1e-12)
    assert "Screening: 10 of 40" in back.summary().as_text()


def test_screened_reduced_rank(study):
    res = mt.ReducedRank(study["Y"], study["X"], screen=M).fit(rank=2)
    kept = _kept(study)
    ref = mt.ReducedRank(study["Y"], study["X"][kept]).fit(rank=2)
    np.testing.assert_allclose(res.params, ref.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.predict(study["new"]), ref.predict(study["new"][kept]),
                               rtol=0, atol=1e-10)
    assert "Screening: 10 of 40 predictors kept" in res.summary().as_text()


def test_bootstrap_keeps_the_selection(study):
    res = mt.SMART(study["Y"], study["X"], source=study["C0"], screen=M).fit(**FIX)
    boot = res.bootstrap(n_boot=3, random_state=0)
    assert list(boot.bse.index) == res.screening.kept
    assert boot.coef.shape == (3, M, Q)
    # the draws' predictions of full-width new data use the kept columns only
    kept_new = study["new"][res.screening.kept].to_numpy()
    draws = np.einsum("np,bpq->bnq", kept_new, boot.coef) + boot.intercept[:, None, :]
    pred = boot.predict(study["new"], alpha=0.5)
    for j, y in enumerate(res.params.columns):
        assert np.all(pred[(y, "lower")] >= draws[:, :, j].min(0) - 1e-10)
        assert np.all(pred[(y, "upper")] <= draws[:, :, j].max(0) + 1e-10)
        np.testing.assert_allclose(pred[(y, "mean")], res.predict(study["new"])[y],
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", ["l2", 2.5, True, [3, 4]])
def test_bad_screen_is_a_type_error(study, bad):
    with pytest.raises(TypeError, match="screen"):
        mt.SMART(study["Y"], study["X"], source=study["C0"], screen=bad)
    with pytest.raises(TypeError, match="screen"):
        mt.ReducedRank(study["Y"], study["X"], screen=bad)


def test_nonpositive_screen_is_a_value_error(study):
    with pytest.raises(ValueError, match="screen"):
        mt.SMART(study["Y"], study["X"], source=study["C0"], screen=0)


def test_select_columns_restricts_new_data(study):
    data = mt.design.from_arrays(study["Y"], study["X"])
    sub = data.select_columns(["g5", "g2"])
    assert sub.xnames == ["g2", "g5"] and sub.exog.shape == (N, 2)
    X, _, _ = sub.exog_for(study["new"])
    np.testing.assert_array_equal(X, study["new"][["g2", "g5"]].to_numpy())
    with pytest.raises(ValueError, match="names"):
        data.select_columns(["nope"])


def test_model_on_dask_refuses_screen(study):
    import dask.dataframe as dd
    data = pd.concat([study["Y"], study["X"]], axis=1)
    formula = " + ".join(study["Y"].columns) + " ~ " + " + ".join(study["X"].columns)
    with pytest.raises(ValueError, match="screen= needs the model's rows in memory"):
        mt.SMART.from_formula(formula, dd.from_pandas(data, npartitions=2),
                              source=study["C0"], screen=M)


def test_screening_on_badly_scaled_and_misaligned_real_data():
    """macrodata with GDP in dollars: each column is judged on its own scale (the large
    column does not zero the others' statistics), correlations are units-free, slopes warn
    that they are not; misaligned pandas rows are refused."""
    import statsmodels.api as sm

    from mtltransfer.exceptions import ValueWarning

    m = sm.datasets.macrodata.load_pandas().data
    X0 = m[["realgdp", "unemp", "infl", "realint", "pop"]]
    X = X0.assign(realgdp=X0["realgdp"] * 1e9)
    Y = m[["realcons", "realinv"]]
    corr = mt.MarginalScreening(2, kind="correlation").fit(Y, X)
    corr0 = mt.MarginalScreening(2, kind="correlation").fit(Y, X0)
    np.testing.assert_allclose(corr.scores, corr0.scores, rtol=1e-12)
    assert corr.kept == corr0.kept
    with pytest.warns(ValueWarning, match="units"):
        slope = mt.MarginalScreening(2, kind="regression").fit(Y, X)
    slope0 = mt.MarginalScreening(2, kind="regression").fit(Y, X0)
    others = ["unemp", "infl", "realint", "pop"]
    np.testing.assert_allclose(slope.scores[others], slope0.scores[others], rtol=1e-12)
    assert (slope.scores[others] > 0).all()
    np.testing.assert_allclose(slope.scores["realgdp"], slope0.scores["realgdp"] * 1e-9,
                               rtol=1e-12)
    with pytest.raises(ValueError, match="not aligned"):
        mt.MarginalScreening(2).fit(Y, X.sample(frac=1, random_state=0))


def _screening_frame():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"x1": np.exp(rng.standard_normal(n)), "x2": rng.standard_normal(n),
                       "x3": rng.standard_normal(n), "g": rng.choice(list("abc"), n)})
    df["y1"] = 2 * np.log(df.x1) + 1.5 * (df.g == "b") + rng.standard_normal(n)
    df["y2"] = df.x2 + rng.standard_normal(n)
    return df


def test_fit_formula_drops_incomplete_rows_on_both_sides_together():
    df = _screening_frame()
    df.loc[3, "x3"] = np.nan
    df.loc[5, "y1"] = np.nan
    scr = mt.MarginalScreening(m=2).fit_formula("y1 + y2 ~ x1 + x2 + x3", df)
    complete = df.drop(index=[3, 5])
    ref = mt.MarginalScreening(m=2).fit(complete[["y1", "y2"]],
                                        complete[["x1", "x2", "x3"]])
    pd.testing.assert_series_equal(scr.scores, ref.scores)
    with pytest.raises(ValueError, match="missing values"):
        mt.MarginalScreening().fit_formula("y1 ~ x1 + x3", df, missing="raise")


def test_formula_keeps_transformed_and_categorical_terms_whole():
    df = _screening_frame()
    scr = mt.MarginalScreening(m=3).fit_formula("y1 + y2 ~ np.log(x1) + x2 + x3 + C(g)", df)
    # the kept columns are log(x1) and the two dummies of g (y1 depends on them)
    assert set(scr.kept) == {"np.log(x1)", "C(g)[a]", "C(g)[b]"}
    assert scr.kept_terms == ["C(g)", "np.log(x1)"]          # patsy's term order
    assert scr.formula() == "y1 + y2 ~ C(g) + np.log(x1)"
    res = mt.ReducedRank.from_formula(scr.formula(), df).fit(rank=1)
    assert res.params.index.tolist() == ["C(g)[T.b]", "C(g)[T.c]", "np.log(x1)"]
    scr.fit(df[["y1", "y2"]], df[["x2", "x3"]])        # refitted on arrays: no formula
    with pytest.raises(ValueError, match="fit_formula"):
        scr.formula()


@pytest.mark.parametrize("endog, exog, error, match", [
    (["y1"], ["x1", "g"], TypeError, "exog has non-numeric"),
    (["g"], ["x1"], TypeError, "endog has non-numeric"),
    (["y1"], ["x1", "x3"], ValueError, "exog has NaN or inf"),
])
def test_screening_inputs_are_checked_by_name(endog, exog, error, match):
    df = _screening_frame()
    df.loc[4, "x3"] = np.inf
    with pytest.raises(error, match=match):
        mt.MarginalScreening().fit(df[endog], df[exog])
    with pytest.raises(ValueError, match="formula must be"):
        mt.MarginalScreening().fit_formula("y1 x1", df)
