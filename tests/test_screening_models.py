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
