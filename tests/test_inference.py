"""OLS inference against statsmodels on its own data sets (longley, macrodata, grunfeld).

Each response of ``mt.OLS`` must give statsmodels' ``bse``, ``tvalues``, ``pvalues``,
``conf_int``, ``cov_params``, tests, predictions and multivariate tests to 1e-8 relative.
Where statsmodels' own answer is less accurate than that (its sandwich covariances on
the ill-conditioned longley and grunfeld designs lose up to ~1e-7), both are compared with
a 50-digit decimal computation of the same formulas (:func:`exact_ols`): ours must be
within 1e-10 of it, and within 1e-8 plus statsmodels' own measured error of statsmodels.
"""

from decimal import Decimal, localcontext

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.multivariate.multivariate_ols import MultivariateLS, _MultivariateOLS

import mtltransfer as mt
from mtltransfer.exceptions import SingularMatrixWarning, ValueWarning

RTOL = 1e-8
COV_TYPES = ["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"]


# ---- data ------------------------------------------------------------------------------
def _longley():
    return sm.datasets.longley.load_pandas().data


def _macro():
    m = sm.datasets.macrodata.load_pandas().data
    m["gdp_dollars"] = m["realgdp"] * 1e9          # GDP in dollars: columns 1e13 apart
    return m


def _grunfeld():
    return sm.datasets.grunfeld.load_pandas().data


CASES = {
    # name: (data, responses, right-hand side, cluster labels column or rule)
    "longley": (_longley, ["TOTEMP", "GNP"], "GNPDEFL + UNEMP + ARMED + POP + YEAR"),
    "macro": (_macro, ["realcons", "realinv"], "gdp_dollars + cpi + unemp + tbilrate"),
    "grunfeld": (_grunfeld, ["invest", "value"], "capital + C(firm) + I(year**2)"),
}


def _groups(name, data):
    if name == "grunfeld":
        return data["year"]
    if name == "macro":
        return data["year"]
    return pd.Series(np.arange(len(data)) // 3, index=data.index)


def _case(name):
    make, ys, rhs = CASES[name]
    data = make()
    return data, ys, rhs


def _sm_kwds(cov_type, groups):
    if cov_type != "cluster":
        return {}
    return {"groups": pd.factorize(np.asarray(groups))[0]}


# ---- a 50-digit reference ---------------------------------------------------------------
def _dec(a):
    return np.vectorize(lambda v: Decimal(float(v)), otypes=[object])(np.asarray(a, float))


def _inv(A):
    k = A.shape[0]
    M = np.concatenate([A.copy(), _dec(np.eye(k))], axis=1)
    for c in range(k):
        piv = max(range(c, k), key=lambda r: abs(M[r, c]))
        M[[c, piv]] = M[[piv, c]]
        M[c] = M[c] / M[c, c]
        for r in range(k):
            if r != c:
                M[r] = M[r] - M[r, c] * M[c]
    return M[:, k:]


def exact_ols(Z, y, cov_type="nonrobust", groups=None):
    """params and bse of OLS by statsmodels' formulas, in 50-digit decimal arithmetic:
    (Z'Z)^-1 by Gauss-Jordan, HC weights e^2, e^2 n/df, e^2/(1-h), e^2/(1-h)^2, cluster
    sums of the influence scores with the factor G/(G-1) (n-1)/(n-k)."""
    with localcontext() as ctx:
        ctx.prec = 50
        Z, y = _dec(Z), _dec(y)
        n, k = Z.shape
        ZtZi = _inv(Z.T.dot(Z))
        P = ZtZi.dot(Z.T)
        b = P.dot(y)
        e = y - Z.dot(b)
        df = n - k
        if cov_type == "nonrobust":
            cov = ZtZi * (e.dot(e) / df)
        elif cov_type == "cluster":
            labels = list(groups)
            meat = _dec(np.zeros((k, k)))
            for g in sorted(set(labels)):
                idx = [i for i in range(n) if labels[i] == g]
                v = P[:, idx].dot(e[idx])
                meat = meat + np.outer(v, v)
            G = len(set(labels))
            cov = meat * (Decimal(G) / (G - 1) * (n - 1) / Decimal(n - k))
        else:
            h = np.array([Z[i].dot(P[:, i]) for i in range(n)], dtype=object)
            w = {"HC0": e * e, "HC1": e * e * n / Decimal(df), "HC2": e * e / (1 - h),
                 "HC3": e * e / ((1 - h) * (1 - h))}[cov_type]
            cov = (P * w).dot(P.T)
        bse = np.array([float(cov[a, a].sqrt()) for a in range(k)])
        return np.array([float(v) for v in b]), bse


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.fixture(scope="module")
def fits():
    """(ours, [statsmodels per response], data, groups) by (case, cov_type)."""
    cache = {}

    def get(name, cov_type):
        if (name, cov_type) not in cache:
            data, ys, rhs = _case(name)
            groups = _groups(name, data)
            kw = {"groups": groups} if cov_type == "cluster" else None
            ours = mt.OLS.from_formula(" + ".join(ys) + " ~ " + rhs, data).fit(
                cov_type=cov_type, cov_kwds=kw)
            ref = [smf.ols(f"{y} ~ {rhs}", data).fit(
                cov_type=cov_type, cov_kwds=_sm_kwds(cov_type, groups)) for y in ys]
            cache[name, cov_type] = ours, ref, data, groups
        return cache[name, cov_type]

    return get


# ---- per response: every attribute, every covariance type -----------------------------
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_per_response_attributes_match_statsmodels(fits, name, cov_type):
    ours, refs, data, groups = fits(name, cov_type)
    assert ours.param_names == list(refs[0].params.index)
    assert ours.use_t == refs[0].use_t and ours.cov_type == cov_type
    for y, ref in zip(ours.model.endog_names, refs):
        # statsmodels' own error against the 50-digit computation
        codes = pd.factorize(np.asarray(groups))[0]
        b_x, bse_x = exact_ols(ref.model.exog, ref.model.endog, cov_type, codes)
        sm_err = _rel(ref.bse, bse_x)
        assert _rel(ours.bse[y], bse_x) < 1e-10
        assert _rel(ours.params_full[y], b_x) < 1e-10
        tol = RTOL + 2 * sm_err
        np.testing.assert_allclose(ours.params_full[y], ref.params, rtol=RTOL)
        np.testing.assert_allclose(ours.bse[y], ref.bse, rtol=tol)
        np.testing.assert_allclose(ours.tvalues[y], ref.tvalues, rtol=tol + RTOL)
        # p-values: from the t statistics, whose relative error is tol
        t = ref.tvalues.to_numpy()
        dist_df = ref.df_resid_inference if hasattr(ref, "df_resid_inference") \
            else ref.df_resid
        dens = (stats.t.pdf(t, dist_df) if ref.use_t else stats.norm.pdf(t))
        np.testing.assert_allclose(ours.pvalues[y], ref.pvalues,
                                   rtol=RTOL, atol=4 * np.max(dens * np.abs(t)) * tol)
        ci = ours.conf_int(0.1).xs(y, level="response")
        # the bounds are params -/+ z bse: their error is relative to bse
        err = np.abs(ci.to_numpy() - ref.conf_int(0.1).to_numpy())
        bound = RTOL * np.abs(ref.conf_int(0.1).to_numpy()) + \
            3 * tol * ref.bse.to_numpy()[:, None]
        assert np.all(err <= bound)
        cov = ours.cov_params(response=y)
        assert list(cov.index) == list(ref.params.index)
        scale = np.sqrt(np.outer(np.diag(ref.cov_params()), np.diag(ref.cov_params())))
        assert np.max(np.abs(cov.to_numpy() - ref.cov_params().to_numpy()) / scale) < \
            2 * tol


def test_one_response_behaves_like_regression_results():
    d = _longley()
    formula = "TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR"
    ours, ref = mt.OLS.from_formula(formula, d).fit(), smf.ols(formula, d).fit()
    assert isinstance(ours.bse, pd.Series) and list(ours.bse.index) == list(ref.bse.index)
    assert list(ours.conf_int().columns) == list(ref.conf_int().columns) == [0, 1]
    pd.testing.assert_frame_equal(ours.conf_int(), ref.conf_int(), rtol=1e-8)
    pd.testing.assert_frame_equal(ours.cov_params(), ref.cov_params(), rtol=1e-8)
    np.testing.assert_allclose(ours.mse_resid, ref.mse_resid, rtol=1e-10)
    np.testing.assert_allclose(ours.normalized_cov_params, ref.normalized_cov_params,
                               rtol=1e-7)
    assert ours.df_resid == ref.df_resid


# ---- array input -----------------------------------------------------------------------
@pytest.mark.parametrize("prepend, value", [(True, 1.0), (False, 1.0), (True, 2.0)])
def test_array_input_names_and_constant_column(prepend, value):
    """The constant column keeps its name and position; a constant c gives b / c."""
    d = _longley()
    X = sm.add_constant(d.drop(columns="TOTEMP"), prepend=prepend) * 1.0
    X["const"] = value
    ref = sm.OLS(d["TOTEMP"], X).fit(cov_type="HC2")
    ours = mt.OLS(d["TOTEMP"], X).fit(cov_type="HC2")
    assert ours.param_names == list(X.columns)
    b_x, bse_x = exact_ols(X.to_numpy(), d["TOTEMP"].to_numpy(), "HC2")
    np.testing.assert_allclose(ours.params_full, b_x, rtol=1e-10)
    np.testing.assert_allclose(ours.bse, bse_x, rtol=1e-10)
    np.testing.assert_allclose(ours.bse, ref.bse, rtol=1e-8 + 2 * _rel(ref.bse, bse_x))
    # plain arrays: positional names, the same numbers
    arr = mt.OLS(d["TOTEMP"].to_numpy(), X.to_numpy()).fit(cov_type="HC2")
    np.testing.assert_allclose(arr.bse.to_numpy(), ours.bse.to_numpy(), rtol=1e-12)
    arr, ref = mt.OLS(d["TOTEMP"].to_numpy(), X.to_numpy()).fit(), sm.OLS(d["TOTEMP"], X).fit()
    pred = arr.get_prediction(X.to_numpy()[:4]).summary_frame(0.05)
    refp = ref.get_prediction(X.iloc[:4]).summary_frame(0.05)
    np.testing.assert_allclose(pred, refp, rtol=1e-8)


@pytest.mark.parametrize("make, formula, cov_type", [
    (_macro, "realinv ~ realgdp + cpi - 1", "nonrobust"),
    # a full set of dummies: no intercept parameter, but a constant in the span
    (_grunfeld, "invest ~ C(firm) + capital - 1", "HC1"),
])
def test_no_intercept_formula(make, formula, cov_type):
    d = make()
    ours = mt.OLS.from_formula(formula, d).fit(cov_type=cov_type)
    ref = smf.ols(formula, d).fit(cov_type=cov_type)
    assert ours.param_names == list(ref.params.index)
    assert ours.df_resid == ref.df_resid
    np.testing.assert_allclose(ours.bse, ref.bse, rtol=1e-8)
    np.testing.assert_allclose(ours.conf_int(), ref.conf_int(), rtol=1e-8)
    np.testing.assert_allclose(ours.get_prediction(d.iloc[:3]).summary_frame(),
                               ref.get_prediction(d.iloc[:3]).summary_frame(), rtol=1e-8)


# ---- several responses: layout and cross-equation ---------------------------------------
@pytest.mark.parametrize("name", ["macro", "grunfeld"])
def test_joint_covariance_matches_multivariate_ls(fits, name):
    ours, _, data, _ = fits(name, "nonrobust")
    ys = ours.model.endog_names
    formula = " + ".join(ys) + " ~ " + CASES[name][2]
    ref = MultivariateLS.from_formula(formula, data).fit()
    cov = ours.cov_params()
    assert cov.index.names == ["predictor", "response"]
    assert list(cov.index) == [(x, y) for x in ours.param_names for y in ys]
    labels = [(x, y) for y, x in ref.cov_params().index]
    ref_cov = ref.cov_params().to_numpy()
    assert np.max(np.abs(cov.loc[labels, labels].to_numpy() - ref_cov)) < \
        1e-8 * np.max(np.abs(ref_cov))
    np.testing.assert_allclose(ours.bse.to_numpy(), np.asarray(ref.bse), rtol=1e-8)
    assert list(ours.bse.columns) == ys and list(ours.bse.index) == ours.param_names
    # cross-equation hypotheses, statsmodels' names y<response>_<predictor>
    x = ours.param_names[1]
    for hyp in (f"y{ys[0]}_{x} = y{ys[1]}_{x}", f"y{ys[0]}_{x} = 0, y{ys[1]}_{x} = 0"):
        for method in ("t_test", "f_test", "wald_test"):
            if method == "t_test" and "," in hyp:
                continue
            a, b = getattr(ours, method)(hyp), getattr(ref, method)(hyp)
            if method == "t_test":
                np.testing.assert_allclose(a.effect, b.effect, rtol=1e-8)
                np.testing.assert_allclose(a.sd, b.sd, rtol=1e-8)
            else:
                np.testing.assert_allclose(a.statistic, b.statistic, rtol=1e-7)
                assert (a.df_num, a.df_denom) == (b.df_num, b.df_denom)
            np.testing.assert_allclose(a.pvalue, b.pvalue, rtol=1e-6)


def test_robust_cross_response_blocks(fits):
    """HC0 between responses j and l: sum_i p_i p_i^T e_ij e_il, p_i the influence rows
    (statsmodels' pinv_wexog); the diagonal blocks are the per-response covariances."""
    ours, refs, _, _ = fits("macro", "HC0")
    P = refs[0].model.pinv_wexog
    e0, e1 = refs[0].resid.to_numpy(), refs[1].resid.to_numpy()
    cross = (P * (e0 * e1)) @ P.T
    cov = ours.cov_params()
    ys, names = ours.model.endog_names, ours.param_names
    block = cov.loc[[(x, ys[0]) for x in names], [(x, ys[1]) for x in names]].to_numpy()
    scale = np.sqrt(np.outer(np.diag(refs[0].cov_params()), np.diag(refs[1].cov_params())))
    assert np.max(np.abs(block - cross) / scale) < 1e-8
    diag = cov.loc[[(x, ys[1]) for x in names], [(x, ys[1]) for x in names]].to_numpy()
    np.testing.assert_allclose(diag, ours.cov_params(response=ys[1]), rtol=1e-12)


# ---- tests with string constraints, per response ----------------------------------------
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC3", "cluster"])
def test_string_constraints_per_response(fits, cov_type):
    ours, refs, _, _ = fits("grunfeld", cov_type)
    a, b = "C(firm)[T.General Electric]", "C(firm)[T.US Steel]"
    for j, ref in enumerate(refs):
        y = ours.model.endog_names[j]
        t1, t2 = ours.t_test(f"{a} = {b}", response=y), ref.t_test(f"{a} = {b}")
        np.testing.assert_allclose(t1.effect, t2.effect, rtol=1e-8)
        np.testing.assert_allclose(t1.sd, t2.sd, rtol=1e-7)
        np.testing.assert_allclose(t1.pvalue, t2.pvalue, rtol=1e-6, atol=1e-14)
        hyp = f"{a} = 0, capital = 0"
        for f1, f2 in ((ours.f_test(hyp, response=j), ref.f_test(hyp)),
                       (ours.wald_test(hyp, response=y), ref.wald_test(hyp))):
            np.testing.assert_allclose(f1.statistic, f2.statistic, rtol=1e-6)
            np.testing.assert_allclose(f1.pvalue, f2.pvalue, rtol=1e-6, atol=1e-14)
            assert f1.df_denom == f2.df_denom
        # a matrix constraint over params_full
        R = np.zeros((1, len(ours.param_names)))
        R[0, ours.param_names.index("capital")] = 1
        np.testing.assert_allclose(ours.t_test(R, response=y).tvalue,
                                   ours.tvalues.loc["capital", y], rtol=1e-12)


def test_use_t_override_and_cluster_df():
    d = _grunfeld()
    formula = "invest ~ capital + I(year**2)"
    g = d["firm"]
    ours = mt.OLS.from_formula(formula, d).fit(cov_type="cluster", cov_kwds={"groups": g},
                                              use_t=True)
    ref = smf.ols(formula, d).fit(cov_type="cluster", use_t=True,
                                  cov_kwds={"groups": pd.factorize(g)[0]})
    assert ours.df_resid_inference == ref.df_resid_inference == g.nunique() - 1
    np.testing.assert_allclose(ours.pvalues, ref.pvalues, rtol=1e-7)
    np.testing.assert_allclose(ours.conf_int(), ref.conf_int(), rtol=1e-8)


# ---- cluster groups: aligned by index ----------------------------------------------------
def test_cluster_groups_aligned_by_index_and_dropped_rows():
    d = _grunfeld()
    formula = "invest ~ capital + C(firm)"
    g = d["firm"]
    base = mt.OLS.from_formula(formula, d).fit(cov_type="cluster", cov_kwds={"groups": g})
    shuffled = g.sample(frac=1.0, random_state=0)
    same = mt.OLS.from_formula(formula, d).fit(cov_type="cluster",
                                               cov_kwds={"groups": shuffled})
    np.testing.assert_allclose(same.bse, base.bse, rtol=1e-13)
    # missing rows dropped: a full-length array or a Series both follow the kept rows
    dd = d.copy()
    dd.loc[[3, 50, 120], "capital"] = np.nan
    ref = smf.ols(formula, dd.dropna()).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(dd.dropna()["firm"])[0]})
    for groups in (dd["firm"], dd["firm"].to_numpy()):
        ours = mt.OLS.from_formula(formula, dd, missing="drop").fit(
            cov_type="cluster", cov_kwds={"groups": groups})
        np.testing.assert_allclose(ours.bse, ref.bse, rtol=1e-7)
    with pytest.raises(ValueError, match="lacks labels"):
        mt.OLS.from_formula(formula, d).fit(cov_type="cluster",
                                            cov_kwds={"groups": g.iloc[:-5]})
    with pytest.raises(ValueError, match="one label per row"):
        mt.OLS.from_formula(formula, d).fit(cov_type="cluster",
                                            cov_kwds={"groups": g.to_numpy()[:-5]})


@pytest.mark.parametrize("kwargs, err, match", [
    ({"cov_type": "HC4"}, ValueError, "cov_type"),
    ({"cov_type": "HC1", "cov_kwds": {"groups": [1]}}, ValueError, "takes no cov_kwds"),
    ({"cov_type": "cluster"}, ValueError, "groups"),
    ({"cov_type": "cluster", "cov_kwds": {"group": [1]}}, ValueError, "groups"),
    ({"use_t": "yes"}, TypeError, "use_t"),
])
def test_bad_covariance_options(kwargs, err, match):
    d = _longley()
    with pytest.raises(err, match=match):
        mt.OLS.from_formula("TOTEMP ~ GNP", d).fit(**kwargs)


def test_rank_deficient_design_refused():
    d = _longley()
    d["GNP2"] = 2 * d["GNP"]
    with pytest.warns(SingularMatrixWarning,
                      match=r"rank deficient \(rank 2 of 3 predictors\): collinear "
                            r"columns: GNP, GNP2"):
        res = mt.OLS.from_formula("TOTEMP ~ GNP + GNP2 + POP", d).fit()
    for attr in ("bse", "pvalues"):
        with pytest.raises(ValueError, match=r"rank 2 of 3 predictors.*GNP, GNP2"):
            getattr(res, attr)
    with pytest.raises(ValueError, match="identified"):
        res.get_prediction(d.iloc[:2])
    # the summary shows the coefficients and says why there are no standard errors
    text = res.summary().as_text()
    assert "No standard errors" in text and "GNP, GNP2" in text and "P>|t|" not in text


# ---- predictions ------------------------------------------------------------------------
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1"])
@pytest.mark.parametrize("name", list(CASES))
def test_get_prediction_summary_frame(fits, name, cov_type):
    ours, refs, data, _ = fits(name, cov_type)
    new = data.iloc[[0, 7, 30, 150]] if len(data) > 150 else data.iloc[[0, 5, 11]]
    frame = ours.get_prediction(new).summary_frame(alpha=0.1)
    assert list(frame.index) == list(new.index)
    for y, ref in zip(ours.model.endog_names, refs):
        expect = ref.get_prediction(new).summary_frame(alpha=0.1)
        assert list(frame[y].columns) == list(expect.columns)
        np.testing.assert_allclose(frame[y], expect, rtol=1e-8)
    # in-sample prediction: the fitted values
    one = ours.get_prediction()[ours.model.endog_names[0]]
    y0 = refs[0].model.endog
    np.testing.assert_allclose(one.predicted_mean, refs[0].fittedvalues, rtol=1e-10,
                               atol=1e-10 * np.max(np.abs(y0)))
    np.testing.assert_allclose(one.se_mean, refs[0].get_prediction().se_mean, rtol=1e-8)


def test_prediction_one_response_is_statsmodels_class_and_nan_rows():
    d = _longley()
    formula = "TOTEMP ~ GNP + UNEMP"
    ours, ref = mt.OLS.from_formula(formula, d).fit(), smf.ols(formula, d).fit()
    new = d.iloc[:3].copy()
    new.loc[new.index[1], "GNP"] = np.nan
    pred = ours.get_prediction(newdata=new)
    assert type(pred).__name__ == "PredictionResults"
    frame = pred.summary_frame()
    assert frame.iloc[1].isna().all() and not frame.iloc[[0, 2]].isna().any().any()
    np.testing.assert_allclose(frame.iloc[[0, 2]],
                               ref.get_prediction(new.iloc[[0, 2]]).summary_frame(),
                               rtol=1e-8)


# ---- multivariate tests -----------------------------------------------------------------
def exact_wilks(Z, Y, L):
    """Wilks' lambda det(E) / det(E + H) of ``L B = 0`` for two responses, 50 digits."""
    with localcontext() as ctx:
        ctx.prec = 50
        Zd, Yd, Ld = _dec(Z), _dec(Y), _dec(L)
        G = _inv(Zd.T.dot(Zd))
        B = G.dot(Zd.T.dot(Yd))
        R = Yd - Zd.dot(B)
        E = R.T.dot(R)
        LB = Ld.dot(B)
        H = LB.T.dot(_inv(Ld.dot(G).dot(Ld.T))).dot(LB)

        def det(M):
            return M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0]

        return float(det(E) / det(E + H))


@pytest.mark.parametrize("name", ["macro", "grunfeld", "longley"])
def test_mv_test_matches_multivariate_ols(fits, name):
    """statsmodels forms the residual cross-products as Y'Y - B'X'XB, which loses up to
    ~6e-8 on longley: both are also checked against a 50-digit Wilks' lambda."""
    ours, _, data, _ = fits(name, "nonrobust")
    formula = " + ".join(ours.model.endog_names) + " ~ " + CASES[name][2]
    mod = _MultivariateOLS.from_formula(formula, data)
    ref = mod.fit().mv_test()
    got = ours.mv_test()
    assert list(got.results) == list(ref.results)
    for key in ref.results:
        a = got.results[key]["stat"].to_numpy(dtype=float)
        b = ref.results[key]["stat"].to_numpy(dtype=float)
        wilks = exact_wilks(mod.exog, mod.endog, ref.results[key]["contrast_L"])
        assert abs(a[0, 0] - wilks) < 1e-10 * wilks
        sm_err = abs(b[0, 0] - wilks) / wilks
        # value, df, F; p-values as log p (an F that agrees to 1e-8 moves a p of
        # 1e-150 by ~1e-6 relative)
        np.testing.assert_allclose(a[:, :4], b[:, :4], rtol=1e-8 + 2 * sm_err)
        np.testing.assert_allclose(np.log(a[:, 4]), np.log(b[:, 4]), rtol=1e-8 + 2 * sm_err)
    # a hypothesis given by strings; the statistics do not depend on the input layout
    hyp = [("cpi=unemp", ["cpi = unemp"])] if name == "macro" else []
    if hyp:
        a = ours.mv_test(hyp).results["cpi=unemp"]["stat"].to_numpy(dtype=float)
        b = _MultivariateOLS.from_formula(formula, data).fit().mv_test(hyp)
        np.testing.assert_allclose(a, b.results["cpi=unemp"]["stat"].to_numpy(dtype=float),
                                   rtol=1e-7)


def test_mv_test_array_input_by_position():
    m = _macro()
    X = sm.add_constant(m[["gdp_dollars", "cpi", "unemp"]])
    Y = m[["realcons", "realinv"]]
    got = mt.OLS(Y, X).fit().mv_test(skip_intercept_test=True)
    ref = _MultivariateOLS(Y, X).fit().mv_test(skip_intercept_test=False)
    assert list(got.results) == ["gdp_dollars", "cpi", "unemp"]
    for name, key in zip(got.results, ["x1", "x2", "x3"]):
        np.testing.assert_allclose(got.results[name]["stat"].to_numpy(dtype=float),
                                   ref.results[key]["stat"].to_numpy(dtype=float),
                                   rtol=1e-7)
    with pytest.raises(ValueError, match="several responses"):
        mt.OLS(m["realcons"], X).fit().mv_test()


def test_inference_after_save_and_load(tmp_path):
    d = _grunfeld()
    res = mt.OLS.from_formula("invest + value ~ capital + C(firm)", d).fit(
        cov_type="cluster", cov_kwds={"groups": d["firm"]})
    before = res.bse
    res.save(tmp_path / "fit.mtl")
    back = mt.load(tmp_path / "fit.mtl")
    assert back.cov_type == "cluster"
    pd.testing.assert_frame_equal(back.bse, before, rtol=1e-14)


def test_inference_without_the_training_rows(tmp_path):
    """save(remove_data=True) keeps what the per-response inference needs."""
    m = _macro()
    res = mt.OLS.from_formula("realcons + realinv ~ gdp_dollars + cpi", m).fit(cov_type="HC3")
    res.save(tmp_path / "fit.mtl", remove_data=True)
    back = mt.load(tmp_path / "fit.mtl")
    pd.testing.assert_frame_equal(back.bse, res.bse, rtol=1e-14)
    pd.testing.assert_frame_equal(back.conf_int(), res.conf_int(), rtol=1e-14)
    new = m.iloc[:3]
    pd.testing.assert_frame_equal(back.get_prediction(new).summary_frame(),
                                  res.get_prediction(new).summary_frame(), rtol=1e-14)
    a = back.t_test("cpi = 0", response="realinv")
    np.testing.assert_allclose(a.tvalue, res.tvalues.loc["cpi", "realinv"], rtol=1e-14)
    got, ref = back.mv_test(), res.mv_test()
    np.testing.assert_allclose(got.results["cpi"]["stat"].to_numpy(dtype=float),
                               ref.results["cpi"]["stat"].to_numpy(dtype=float), rtol=1e-14)
    assert "P>|z|" in back.summary().as_text()
    # nonrobust: the joint covariance and cross-equation tests too
    res = mt.OLS.from_formula("realcons + realinv ~ gdp_dollars + cpi", m).fit()
    res.save(tmp_path / "fit2.mtl", remove_data=True)
    back = mt.load(tmp_path / "fit2.mtl")
    pd.testing.assert_frame_equal(back.cov_params(), res.cov_params(), rtol=1e-14)
    hyp = "yrealcons_cpi = yrealinv_cpi"
    np.testing.assert_allclose(back.wald_test(hyp).statistic, res.wald_test(hyp).statistic,
                               rtol=1e-12)


@pytest.mark.parametrize("cov_type", ["HC0", "cluster"])
def test_joint_robust_covariance_is_the_stacked_regression(cov_type):
    """The joint sandwich of several responses is statsmodels' cluster covariance of the
    stacked regression [y1; y2] on blockdiag(Z, Z): clusters of one row's two
    equations for HC0, of the given groups for "cluster" (no small-sample factor)."""
    g = _grunfeld()
    ys, rhs = ["invest", "value"], "capital + C(firm)"
    groups = g["year"]
    kw = {"groups": groups, "use_correction": False} if cov_type == "cluster" else None
    ours = mt.OLS.from_formula(" + ".join(ys) + " ~ " + rhs, g).fit(cov_type=cov_type,
                                                                   cov_kwds=kw)
    ref = _stacked_reference(g, ys, rhs, cov_type, groups)
    order = [(x, y) for y in ys for x in ours.param_names]     # stacked order
    cov = ours.cov_params().loc[order, order].to_numpy()
    sd = np.sqrt(np.diag(ref.cov_params()))
    assert np.max(np.abs(cov - ref.cov_params()) / np.outer(sd, sd)) < 1e-8


def test_saturated_fit_refuses_inference_instead_of_nan():
    """Longley's first 4 rows with 3 predictors and an intercept: no residual degrees of
    freedom. statsmodels returns inf standard errors; here a clear error, never NaN."""
    d = sm.datasets.longley.load_pandas().data.iloc[:4]
    with pytest.warns(ValueWarning, match="saturated"):
        res = mt.OLS.from_formula("TOTEMP ~ GNPDEFL + GNP + UNEMP", d).fit()
    for attr in ("bse", "pvalues"):
        with pytest.raises(ValueError, match="residual degrees of freedom"):
            getattr(res, attr)


# ---- the joint robust covariance without the training rows ----------------------------
def _stacked_reference(g, ys, rhs, cov_type, groups):
    """statsmodels' cluster covariance of the stacked regression [y1; y2] on
    blockdiag(Z, Z) (see test_joint_robust_covariance_is_the_stacked_regression)."""
    Z = smf.ols(f"{ys[0]} ~ {rhs}", g).fit().model.exog
    n, k = Z.shape
    Zs = np.zeros((2 * n, 2 * k))
    Zs[:n, :k], Zs[n:, k:] = Z, Z
    ystack = np.concatenate([g[y].to_numpy() for y in ys])
    ids = np.tile(np.arange(n) if cov_type == "HC0" else pd.factorize(groups)[0], 2)
    return sm.OLS(ystack, Zs).fit(cov_type="cluster",
                                  cov_kwds={"groups": ids, "use_correction": False})


@pytest.mark.parametrize("cov_type", ["HC0", "HC3", "cluster"])
@pytest.mark.parametrize("how", ["remove_data()", "save"])
def test_joint_robust_inference_after_remove_data(cov_type, how, tmp_path):
    """Without the rows the joint (cross-response) sandwich covariance, cov_params and
    the cross-equation t/F/Wald tests are those of the full results to 1e-12, and
    (HC0, cluster without correction) statsmodels' stacked regression's."""
    g = _grunfeld()
    ys, rhs = ["invest", "value"], "capital + C(firm)"
    kw = {"groups": g["year"], "use_correction": False} if cov_type == "cluster" else None
    res = mt.OLS.from_formula(" + ".join(ys) + " ~ " + rhs, g).fit(cov_type=cov_type,
                                                                  cov_kwds=kw)
    hyp = "yinvest_capital = yvalue_capital, yinvest_C(firm)[T.Chrysler] = 0"
    before = dict(cov=res.cov_params(), bse=res.bse,
                  t=res.t_test("yinvest_capital - yvalue_capital = 0"),
                  f=res.f_test(hyp), w=res.wald_test(hyp, use_f=False, scalar=True))
    if how == "save":
        res.save(tmp_path / "fit.mtl", remove_data=True)
        light = mt.load(tmp_path / "fit.mtl")
    else:
        light = mt.OLS.from_formula(" + ".join(ys) + " ~ " + rhs, g).fit(
            cov_type=cov_type, cov_kwds=kw)
        light.remove_data()
        with pytest.raises(ValueError, match="removed"):
            light.resid
    tol = dict(rtol=1e-12, atol=0)
    np.testing.assert_allclose(light.cov_params().to_numpy(), before["cov"].to_numpy(),
                               atol=1e-12 * np.abs(before["cov"].to_numpy()).max())
    pd.testing.assert_frame_equal(light.bse, before["bse"], rtol=1e-12)
    t = light.t_test("yinvest_capital - yvalue_capital = 0")
    np.testing.assert_allclose([t.effect[0], t.sd[0, 0], t.pvalue],
                               [before["t"].effect[0], before["t"].sd[0, 0],
                                before["t"].pvalue], **tol)
    np.testing.assert_allclose([light.f_test(hyp).fvalue, light.f_test(hyp).pvalue],
                               [before["f"].fvalue, before["f"].pvalue], **tol)
    w = light.wald_test(hyp, use_f=False, scalar=True)
    np.testing.assert_allclose(w.statistic, before["w"].statistic, **tol)
    if cov_type == "HC3":
        return
    ref = _stacked_reference(g, ys, rhs, cov_type, g["year"])
    order = [(x, y) for y in ys for x in light.param_names]      # stacked order
    cov = light.cov_params().loc[order, order].to_numpy()
    sd = np.sqrt(np.diag(ref.cov_params()))
    assert np.max(np.abs(cov - ref.cov_params()) / np.outer(sd, sd)) < 1e-8
    # the same hypothesis on the stacked parameters: statsmodels' chi-square Wald statistic
    names = [f"y{y}_{x}" for y in ys for x in light.param_names]
    R = np.zeros((2, len(names)))
    R[0, names.index("yinvest_capital")], R[0, names.index("yvalue_capital")] = 1, -1
    R[1, names.index("yinvest_C(firm)[T.Chrysler]")] = 1
    ref_w = ref.wald_test(R, use_f=False, scalar=True).statistic
    assert abs(w.statistic - ref_w) < 1e-8 * ref_w


def test_too_large_joint_robust_covariance_is_not_kept(monkeypatch):
    """Beyond JOINT_KEPT_MAX parameters the joint sandwich is not kept: without the rows
    the cross-equation covariance is refused with a clear error, per response it works."""
    import mtltransfer.inference as inference

    g = _grunfeld()
    res = mt.OLS.from_formula("invest + value ~ capital + C(firm)", g).fit(cov_type="HC1")
    before = res.cov_params(response="value")
    monkeypatch.setattr(inference, "JOINT_KEPT_MAX", 10)
    res.remove_data()
    with pytest.raises(ValueError, match="too large to keep"):
        res.cov_params()
    pd.testing.assert_frame_equal(res.cov_params(response="value"), before, rtol=1e-12)


def test_remove_data_leaves_the_fitted_model_alone():
    """remove_data() swaps in a copy of the model without rows: predictions and params
    are unchanged, the model the user fitted still has its rows."""
    d = _longley()
    model = mt.OLS.from_formula("TOTEMP + GNP ~ UNEMP + ARMED", d)
    res = model.fit()
    pred, params = res.predict(d.iloc[:5]), res.params
    res.remove_data()
    assert res.model is not model
    np.testing.assert_array_equal(model.endog, d[["TOTEMP", "GNP"]].to_numpy())
    pd.testing.assert_frame_equal(res.predict(d.iloc[:5]), pred, rtol=1e-15)
    pd.testing.assert_frame_equal(res.params, params)
    with pytest.raises(ValueError, match="removed"):
        res.fittedvalues
