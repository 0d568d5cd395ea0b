"""Trust on real data: statsmodels' data sets with statsmodels as the reference.

Every test here reproduces a way the package once gave a silently wrong answer on ordinary
data (badly scaled or ill-conditioned designs, misaligned pandas inputs, degenerate
designs, statsmodels' conventions) and pins the correct behaviour.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
import threadpoolctl

import mtltransfer as mt

GRUNFELD_FORMULA = "invest ~ C(firm) + np.log(capital) + I(year**2)"
LONGLEY_X = ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]


@pytest.fixture(scope="module")
def macro():
    m = sm.datasets.macrodata.load_pandas().data.copy()
    m["gdp_dollars"] = m["realgdp"] * 1e9
    return m


@pytest.fixture(scope="module")
def grunfeld():
    return sm.datasets.grunfeld.load_pandas().data


@pytest.fixture(scope="module")
def longley():
    return sm.datasets.longley.load_pandas().data


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


# ---- numerics that do not depend on units ---------------------------------------------
def test_badly_scaled_predictor_matches_statsmodels(macro):
    res = mt.OLS.from_formula("realcons + realinv ~ gdp_dollars + unemp", macro).fit()
    for y in ("realcons", "realinv"):
        ref = smf.ols(f"{y} ~ gdp_dollars + unemp", macro).fit()
        assert _rel(res.params[y], ref.params[["gdp_dollars", "unemp"]]) < 1e-8
        assert _rel(res.intercept[y], ref.params["Intercept"]) < 1e-8
    # the unemployment coefficient that was once reported as -2e-23
    assert res.params.loc["unemp", "realcons"] == pytest.approx(12.87, abs=0.01)


def test_ill_conditioned_grunfeld_matches_statsmodels(grunfeld):
    res = mt.OLS.from_formula(GRUNFELD_FORMULA, grunfeld).fit()
    ref = smf.ols(GRUNFELD_FORMULA, grunfeld).fit()
    assert _rel(res.params["invest"], ref.params.iloc[1:]) < 1e-8
    assert _rel(res.intercept["invest"], ref.params["Intercept"]) < 1e-8


@pytest.mark.parametrize("model, kw", [(mt.OLS, {}), (mt.ReducedRank, {"rank": 1})])
def test_fitted_values_invariant_to_units(macro, model, kw):
    formula = "realcons + realinv + realgovt ~ realgdp + unemp + infl"
    base = model.from_formula(formula, macro).fit(**kw)
    scaled = macro.assign(realgdp=macro.realgdp * 1e9, infl=macro.infl * 1e-6)
    res = model.from_formula(formula, scaled).fit(**kw)
    fv, fv0 = res.fittedvalues.to_numpy(), base.fittedvalues.to_numpy()
    assert np.max(np.abs(fv - fv0)) <= 1e-9 * np.max(np.abs(fv0))
    # and the coefficients are those of the unscaled fit, mapped back
    np.testing.assert_allclose(res.params.loc["realgdp"] * 1e9, base.params.loc["realgdp"],
                               rtol=1e-9)


def test_rank_selection_is_scale_free(macro):
    formula = "realcons + realinv + realgovt ~ realgdp + unemp + infl + tbilrate"
    base = mt.ReducedRank.from_formula(formula, macro).fit()
    scaled = macro.assign(tbilrate=macro.tbilrate * 1e-8)
    res = mt.ReducedRank.from_formula(formula, scaled).fit()
    assert res.rank == base.rank
    np.testing.assert_allclose(res.tuning["rank"]["eigenvalue"],
                               base.tuning["rank"]["eigenvalue"], rtol=1e-9)


def test_ridge_solves_its_objective_on_a_badly_scaled_design(macro):
    mod = mt.Ridge.from_formula("realcons + realinv ~ gdp_dollars + unemp", macro)
    with pytest.warns(mt.ValueWarning, match="scales differ"):
        res = mod.fit(alpha=1e-3)
    # stationarity of (1/2n)||Yc - Xc C||^2 + alpha/2 ||C||^2, in each column's own units
    X = macro[["gdp_dollars", "unemp"]].to_numpy()
    Y = macro[["realcons", "realinv"]].to_numpy()
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    C = res.coef
    grad = Xc.T @ (Xc @ C - Yc) / len(X) + 1e-3 * C
    scale = np.abs(Xc).T @ np.abs(Yc) / len(X) + np.abs(Xc).T @ np.abs(Xc @ C) / len(X)
    assert np.max(np.abs(grad) / scale) < 1e-12


# ---- the intercept as statsmodels does it ---------------------------------------------
def test_array_input_without_constant_has_no_intercept(longley):
    y, X = longley["TOTEMP"], longley[["GNP", "UNEMP"]]
    res = mt.OLS(y, X).fit()
    ref = sm.OLS(y, X).fit()
    np.testing.assert_allclose(res.params["TOTEMP"], ref.params, rtol=1e-10)
    assert not res.model.center and np.all(res.intercept == 0)
    Xc = sm.add_constant(X)
    res = mt.OLS(y, Xc).fit()
    ref = sm.OLS(y, Xc).fit()
    assert list(res.params.index) == ["GNP", "UNEMP"]
    np.testing.assert_allclose(res.params["TOTEMP"], ref.params[["GNP", "UNEMP"]], rtol=1e-10)
    assert res.intercept["TOTEMP"] == pytest.approx(ref.params["const"], rel=1e-10)
    forced = mt.OLS(y, X, intercept=True).fit()
    assert forced.intercept["TOTEMP"] == pytest.approx(ref.params["const"], rel=1e-10)


def test_no_column_is_dropped_silently():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(8), rng.standard_normal((8, 3)), np.ones(8)])
    Y = rng.standard_normal((8, 2))
    with pytest.warns(mt.SingularMatrixWarning, match="x5"):
        res = mt.OLS(Y, X).fit()
    # the first constant column is the intercept; the dummy that is all ones stays
    assert res.model.k_exog == 4 and res.params.index[-1] == "x5"


def test_predict_requires_the_fitted_columns_and_keeps_constant_position():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.standard_normal((40, 2)), columns=["a", "b"])
    X = sm.add_constant(X, prepend=False)
    y = 1.0 + X["a"] - 2 * X["b"] + 0.1 * rng.standard_normal(40)
    res = mt.OLS(y, X).fit()
    ref = sm.OLS(y, X).fit()
    new = X.iloc[:5].copy()
    new["a"] = 3.0                        # a predictor constant in this batch
    np.testing.assert_allclose(res.predict(new).to_numpy().ravel(), ref.predict(new),
                               rtol=1e-10)
    np.testing.assert_allclose(res.predict(new.to_numpy()).to_numpy().ravel(),
                               ref.predict(new.to_numpy()), rtol=1e-10)
    with pytest.raises(ValueError, match="3 columns"):
        res.predict(new[["a", "b"]].to_numpy())
    with pytest.raises(ValueError, match="missing: \\['const'\\]"):
        res.predict(new[["a", "b"]])


# ---- alignment --------------------------------------------------------------------------
def test_misaligned_pandas_inputs_are_refused(longley):
    y, X = longley["TOTEMP"], longley[["GNP", "UNEMP"]]
    with pytest.raises(ValueError, match="not aligned"):
        mt.OLS(y, X.sample(frac=1, random_state=0))
    with pytest.raises(ValueError, match="not aligned"):
        mt.OLS(y, X.set_axis(X.index + 100))
    # the same rows in the same order under the same labels are fine
    assert mt.OLS(y, X.loc[y.index]).fit().nobs == 16


def test_misaligned_groups_are_refused():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.standard_normal((40, 3)), columns=["a", "b", "c"])
    y = pd.Series(rng.standard_normal(40), name="y")
    g = pd.Series(np.repeat(["s", "t", "u", "v"], 10))
    with pytest.raises(ValueError, match="not aligned"):
        mt.SharedRepresentation(y, X, g.sample(frac=1, random_state=0))
    assert mt.SharedRepresentation(y, X, g).n_tasks == 4


# ---- warnings ---------------------------------------------------------------------------
def test_degenerate_designs_warn():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 3))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])
    Y = rng.standard_normal((20, 2))
    with pytest.warns(mt.SingularMatrixWarning, match="x1, x2, x4"):
        mt.OLS(Y, X, intercept=True).fit()
    with pytest.warns(mt.SingularMatrixWarning, match="more predictors"):
        mt.OLS(Y[:5], rng.standard_normal((5, 8)), intercept=True).fit()
    Xs = rng.standard_normal((6, 5))
    with pytest.warns(mt.ValueWarning, match="saturated"):
        mt.OLS(Xs @ np.ones((5, 1)) + 1.0, Xs, intercept=True).fit()


def test_zero_or_nonfinite_source_is_an_error():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    with pytest.raises(ValueError, match="all zero"):
        mt.SMART(Y, X, source=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        mt.SMART(Y, X, source=np.full((4, 3), np.inf))


def test_one_row_task_warns_and_adapt_refuses_two_tasks():
    s = mt.datasets.simulate_shared(20, 10, 6, 2, random_state=0)
    df = pd.DataFrame(s.X, columns=[f"x{j}" for j in range(6)]).assign(
        y=s.y, task=[f"t{t}" for t in s.task])
    formula = "y ~ " + " + ".join(f"x{j}" for j in range(6))
    lone = df.iloc[:1].assign(task="lonely")
    with pytest.warns(mt.ValueWarning, match="single row.*lonely"):
        mt.SharedRepresentation.from_formula(formula, pd.concat([df, lone]), groups="task")
    res = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=2)
    with pytest.raises(ValueError, match="2 tasks"):
        res.adapt(df[df.task.isin(["t0", "t1"])])
    with pytest.raises(ValueError, match="response.*y"):
        res.adapt(df[df.task == "t0"].drop(columns="y"))


# ---- predict ----------------------------------------------------------------------------
def test_predict_nan_rows_and_statsmodels_keywords(longley):
    formula = "TOTEMP ~ GNP + UNEMP + np.log(POP)"
    res = mt.OLS.from_formula(formula, longley).fit()
    ref = smf.ols(formula, longley).fit()
    new = longley.iloc[3:9].copy()
    new.loc[5, "UNEMP"] = np.nan
    pred = res.predict(new)
    expected = ref.predict(new)           # statsmodels: NaN for that row, same index
    assert list(pred.index) == list(new.index)
    assert np.isnan(pred.loc[5, "TOTEMP"])
    np.testing.assert_allclose(pred["TOTEMP"].drop(5), expected.drop(5), rtol=1e-10)
    np.testing.assert_allclose(res.predict(exog=new)["TOTEMP"].drop(5), expected.drop(5),
                               rtol=1e-10)
    design = ref.model.exog[3:9]          # transform=False: the design matrix itself
    np.testing.assert_allclose(res.predict(design, transform=False)["TOTEMP"],
                               ref.predict(design, transform=False), rtol=1e-10)


# ---- likelihood and information criteria ----------------------------------------------
def test_information_criteria_equal_statsmodels(longley):
    formula = "TOTEMP ~ " + " + ".join(LONGLEY_X)
    res = mt.OLS.from_formula(formula, longley).fit()
    ref = smf.ols(formula, longley).fit()
    for name in ("llf", "aic", "bic", "df_model", "df_resid", "nobs"):
        assert getattr(res, name) == pytest.approx(getattr(ref, name), rel=1e-8), name
    assert res.rsquared["TOTEMP"] == pytest.approx(ref.rsquared, rel=1e-10)
    assert res.scale == pytest.approx(ref.scale, rel=1e-8)
    text = res.summary().as_text()
    assert f"{ref.bic:#.4g}" in text and f"{ref.llf:#.4g}" in text


def test_several_responses_sum_the_per_response_likelihoods(longley):
    ys = ["TOTEMP", "GNP"]
    xs = ["UNEMP", "ARMED", "POP"]
    res = mt.OLS.from_formula(" + ".join(ys) + " ~ " + " + ".join(xs), longley).fit()
    refs = [smf.ols(f"{y} ~ " + " + ".join(xs), longley).fit() for y in ys]
    for name in ("llf", "aic", "bic", "df_model"):
        assert getattr(res, name) == pytest.approx(sum(getattr(r, name) for r in refs),
                                                   rel=1e-10), name
    assert res.df_resid == refs[0].df_resid


def test_implicit_constant_follows_statsmodels(grunfeld):
    X = pd.get_dummies(grunfeld["firm"], dtype=float).assign(value=grunfeld["value"])
    res = mt.OLS(grunfeld["invest"], X).fit()
    ref = sm.OLS(grunfeld["invest"], X).fit()
    assert ref.k_constant == 1 and res.model.k_constant == 1
    np.testing.assert_allclose(res.params["invest"], ref.params, rtol=1e-9)
    for name in ("df_model", "df_resid", "llf", "aic", "bic"):
        assert getattr(res, name) == pytest.approx(getattr(ref, name), rel=1e-9), name
    assert res.rsquared["invest"] == pytest.approx(ref.rsquared, rel=1e-9)


def test_shared_representation_criteria_on_one_scale():
    s = mt.datasets.simulate_shared(30, 12, 6, 2, random_state=1)
    res = mt.SharedRepresentation(s.y, s.X, s.task, intercept=True).fit(k=2, method="gd")
    n = len(s.y)
    llf = -n / 2 * (np.log(2 * np.pi * res.ssr / n) + 1)
    k = 2 * (6 - 2) + 2 * 30 + 30
    assert res.llf == pytest.approx(llf, rel=1e-12)
    assert res.bic == pytest.approx(-2 * llf + np.log(n) * k, rel=1e-12)
    assert res.aic == pytest.approx(-2 * llf + 2 * k, rel=1e-12)
    chosen = mt.SharedRepresentation(s.y, s.X, s.task, intercept=True).fit()
    assert set(chosen.tuning["k"]["k"]) >= {1, 2}


# ---- sources from statsmodels ---------------------------------------------------------
def test_statsmodels_results_as_source(macro):
    ys, xs = ["realcons", "realinv", "realgovt"], ["realgdp", "unemp", "infl", "tbilrate"]
    formula = " + ".join(ys) + " ~ " + " + ".join(xs)
    src, tgt = macro.iloc[:150], macro.iloc[150:]
    fits = {y: smf.ols(f"{y} ~ " + " + ".join(xs), src).fit() for y in ys}
    expected = pd.DataFrame({y: fits[y].params[xs] for y in ys})
    cfg = dict(rank=1, structural_rank=(2, 2), lam=0.01)
    as_frame = mt.SMART.from_formula(formula, tgt, source=expected).fit(**cfg)
    for source in (fits, list(fits.values())):
        mod = mt.SMART.from_formula(formula, tgt, source=source)
        np.testing.assert_array_equal(mod.source, expected.to_numpy())
        np.testing.assert_allclose(mod.fit(**cfg).coef, as_frame.coef, rtol=1e-12)
    mv = sm.MultivariateLS.from_formula(formula, src).fit()
    np.testing.assert_allclose(mt.SMART.from_formula(formula, tgt, source=mv).source,
                               expected.to_numpy(), rtol=1e-8)
    one = mt.SMART.from_formula("realcons ~ " + " + ".join(xs), tgt, source=fits["realcons"])
    np.testing.assert_array_equal(one.source[:, 0], expected["realcons"].to_numpy())


def test_a_level_missing_in_the_target_is_re_expressed_exactly(grunfeld):
    """The target lacks one of the source's firms but shares its reference level: each
    of the target's contrasts is the source's own, so the source's coefficients are
    taken as they are (codings are compared, not names; the US Steel contrast has no
    place in the target)."""
    formula = "invest + value ~ C(firm) + capital"
    src = mt.OLS.from_formula(formula, grunfeld).fit()
    tgt = grunfeld[grunfeld.firm != "US Steel"]
    mod = mt.SMART.from_formula(formula, tgt, source=src)
    assert "C(firm)[T.US Steel]" in src.params.index
    assert "C(firm)[T.US Steel]" not in mod.exog_names
    np.testing.assert_array_equal(
        mod.source, src.params.loc[mod.exog_names, mod.endog_names].to_numpy())


# ---- messages -------------------------------------------------------------------------
def test_messages_name_what_the_user_gave(longley):
    tiny = longley.iloc[:4]
    with pytest.raises(ValueError, match="SMART needs at least 10 rows for 5-fold"):
        mt.SMART.from_formula("TOTEMP + GNP ~ UNEMP + ARMED", tiny,
                              source=np.ones((2, 2))).fit(rank=1)
    with pytest.raises(ValueError, match="NuclearNorm needs at least 10 rows"):
        mt.NuclearNorm.from_formula("TOTEMP + GNP ~ UNEMP", tiny).fit()
    holed = longley.assign(UNEMP=longley.UNEMP.where(longley.index != 3))
    with pytest.raises(ValueError, match=r"column\(s\) \['UNEMP'\]"):
        mt.OLS.from_formula("TOTEMP ~ UNEMP + ARMED", holed)
    with pytest.raises(ValueError, match=r"\['UNEMP'\]"):
        mt.OLS(holed["TOTEMP"], holed[["UNEMP", "ARMED"]])
    dup = longley[["UNEMP", "ARMED"]].set_axis(["UNEMP", "UNEMP"], axis=1)
    with pytest.raises(ValueError, match="duplicate column name.*UNEMP"):
        mt.OLS(longley["TOTEMP"], dup)


def test_determinism_across_blas_threads():
    sim = mt.datasets.simulate_smart(120, 30, 12, rank=2, source_rank=4, random_state=5)
    fits = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", mt.ConvergenceWarning)
                fits.append(mt.SMART(sim.Y, sim.X, source=sim.C0).fit())
    a, b = fits
    assert (a.rank, a.structural_rank) == (b.rank, b.structural_rank)
    assert a.lam == pytest.approx(b.lam, rel=1e-10)
    np.testing.assert_allclose(a.coef, b.coef, rtol=0, atol=1e-10 * np.abs(a.coef).max())


def test_formula_messages_do_not_blame_numpy():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 6], "x": [1.0, 3, 2, 5, 4, 6],
                       "g": list("ababab")})
    with pytest.raises(ValueError, match="lacks column\\(s\\) named in the formula: xx$"):
        mt.OLS.from_formula("y ~ np.log(xx) + C(g)", df)
    C = 5  # noqa: F841  (a session variable that hides patsy's C())
    with pytest.raises(ValueError, match=r"\['C'\].*hide the formula functions"):
        mt.OLS.from_formula("y ~ np.log(x) + C(g)", df)


LONGLEY_MULTI = "TOTEMP + GNP + ARMED ~ GNPDEFL + UNEMP + POP + YEAR"


def test_nuclear_norm_solves_its_objective_on_longley(longley):
    """Predictor scales 5 to 7000 and a near-collinear design: the proximal-gradient
    path reaches the CVXPY optimum."""
    mod = mt.NuclearNorm.from_formula(LONGLEY_MULTI, longley)
    Sxx, Sxy, Syy = mod.moments()
    lam = 0.05 * np.linalg.norm(Sxy, 2)
    fast = mod.fit(lam=lam, tol=1e-10, max_iter=100000)
    ref = mod.fit(lam=lam, backend="cvxpy")
    assert fast.converged

    def objective(C):
        return 0.5 * np.trace(Syy) - np.sum(Sxy * C) + 0.5 * np.sum((Sxx @ C) * C) + \
            lam * np.linalg.norm(C, "nuc")

    f, g = objective(fast.coef), objective(ref.coef)
    assert f <= g * (1 + 1e-10)              # at least as good as the interior point
    assert abs(f - g) <= 1e-8 * abs(g)
    assert np.abs(fast.coef - ref.coef).max() <= 1e-5 * np.abs(ref.coef).max()


def test_smart_special_case_on_longley_is_reduced_rank(longley):
    rrr = mt.ReducedRank.from_formula(LONGLEY_MULTI, longley).fit(rank=1)
    src = mt.ReducedRank.from_formula(LONGLEY_MULTI, longley).fit(rank=2).params * 1.1
    res = mt.SMART.from_formula(LONGLEY_MULTI, longley, source=src).fit(
        rank=1, structural_rank=(4, 3), lam=0.0, tol=1e-10)
    np.testing.assert_allclose(res.coef, rrr.coef, rtol=1e-8,
                               atol=1e-10 * np.abs(rrr.coef).max())
    assert res.ssr == pytest.approx(rrr.ssr, rel=1e-10)


def test_shared_predict_nan_rows():
    s = mt.datasets.simulate_shared(10, 12, 4, 2, random_state=6)
    df = pd.DataFrame(s.X, columns=["a", "b", "c", "d"]).assign(
        y=s.y, task=[f"t{t}" for t in s.task])
    res = mt.SharedRepresentation.from_formula("y ~ a + b + c + d", df,
                                               groups="task").fit(k=2)
    new = df.iloc[:6].copy()
    new.loc[1, "b"] = np.nan
    new.loc[3, "task"] = None
    pred = res.predict(new)
    assert list(pred.index) == list(new.index)
    assert pred.isna().tolist() == [False, True, False, True, False, False]
    np.testing.assert_allclose(pred.drop([1, 3]), res.fittedvalues.iloc[[0, 2, 4, 5]],
                               rtol=1e-12)
