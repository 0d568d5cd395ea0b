"""Data refused by name before patsy sees them (complex numbers, numbers stored as
text), the Dask front end's missing-value message, and statsmodels' ``subset=``."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import mtltransfer as mt


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y1": rng.normal(size=n), "y2": rng.normal(size=n),
                         "x1": rng.normal(size=n), "x2": rng.normal(size=n),
                         "g": rng.choice(["a", "b", "c"], n)})


def _grunfeld():
    g = sm.datasets.grunfeld.load_pandas().data
    return g.assign(li=np.log(g.invest), lv=np.log(g.value), lc=np.log(g.capital))


def test_numbers_stored_as_text_are_refused_naming_the_column():
    df = _frame()
    text = df.assign(x1=df.x1.astype(str))          # pandas 3: the str dtype
    text.loc[3, "x1"] = "n/a"
    with pytest.raises(TypeError, match=r"data column 'x1' holds numbers stored as text "
                                        r".*such as 'n/a' \(row 3\)"):
        mt.OLS.from_formula("y1 ~ x1 + x2", text)
    with pytest.raises(TypeError, match=r"data column 'x1' holds numbers stored as text"):
        mt.ReducedRank.from_formula("y1 + y2 ~ x1 + x2", df.assign(x1=df.x1.astype(str)))
    # words, integer codes and C(...) stay categorical, as in statsmodels
    res = mt.OLS.from_formula("y1 ~ g + x2", df).fit()
    ref = smf.ols("y1 ~ g + x2", df).fit()
    np.testing.assert_allclose(res.params_full.to_numpy(), ref.params.to_numpy(), rtol=1e-10)
    assert mt.OLS.from_formula("y1 ~ C(x1) + x2", df.assign(
        x1=df.x1.astype(str))).k_exog == 40


@pytest.mark.parametrize("call", ["predict", "get_prediction"])
def test_text_in_new_data_is_refused_naming_the_column(call):
    df = _frame()
    res = mt.OLS.from_formula("y1 ~ x1 + x2 + g", df).fit()
    new = df.head(5).assign(x1=df.x1.head(5).astype(str))
    with pytest.raises(TypeError, match=r"exog column 'x1' is not numeric \(dtype str\) but "
                                        r"the fitted term 'x1' is"):
        getattr(res, call)(new)
    with pytest.raises(TypeError, match=r"exog column 'x2' is complex"):
        getattr(res, call)(df.head(5).assign(x2=df.x2.head(5) + 1j))


def test_complex_predictors_are_refused():
    df = _frame()
    with pytest.raises(TypeError, match=r"data column 'x1' is complex \(complex128\)"):
        mt.OLS.from_formula("y1 ~ x1", df.assign(x1=df.x1 + 1j))
    with pytest.raises(TypeError, match=r"exog column 'x1' is complex"):
        mt.Ridge(df[["y1"]], df[["x1"]].assign(x1=df.x1 + 2j))
    with pytest.raises(TypeError, match=r"^exog is complex"):
        mt.NuclearNorm(df[["y1", "y2"]].to_numpy(), df[["x1", "x2"]].to_numpy() * 1j)


def test_dask_missing_value_message_names_the_column():
    import dask.dataframe as dd
    df = _frame(60)
    df.loc[5, "x2"] = np.nan
    for formula in ("y1 + y2 ~ x1 + x2", "y1 + y2 ~ x1 + np.exp(x2)"):
        with pytest.raises(ValueError, match=r"missing values in column\(s\) \['x2'\]"):
            mt.OLS.from_formula(formula, df)
        with pytest.raises(ValueError, match=r"missing values \(NaN or inf\) in column\(s\) "
                                             r"\['x2'\] used by the formula"):
            mt.OLS.from_formula(formula, dd.from_pandas(df, npartitions=2)).fit()


def test_subset_equals_statsmodels():
    g = _grunfeld()
    keep = g.year > 1940
    res = mt.OLS.from_formula("li ~ lv + lc", g, subset=keep).fit()
    ref = smf.ols("li ~ lv + lc", g, subset=keep).fit()
    assert res.nobs == ref.nobs == int(keep.sum())
    np.testing.assert_allclose(res.params_full.to_numpy(), ref.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-8)
    # row labels select the same rows; the rows used are the subset's
    by_label = mt.OLS.from_formula("li ~ lv + lc", g, subset=g.index[keep]).fit()
    np.testing.assert_allclose(by_label.params, res.params, rtol=1e-12)
    assert list(res.fittedvalues.index) == list(g.index[keep])
    shared = mt.SharedRepresentation.from_formula("li ~ lv + lc", g, groups="firm",
                                                  subset=keep.to_numpy())
    assert shared.nobs == int(keep.sum())
    with pytest.raises(ValueError, match=r"subset as a boolean mask must have one value per "
                                         r"row of data \(220\)"):
        mt.OLS.from_formula("li ~ lv + lc", g, subset=keep.to_numpy()[:10])
    with pytest.raises(ValueError, match=r"subset names rows that are not in data's index"):
        mt.OLS.from_formula("li ~ lv + lc", g, subset=[0, 1, 999])
    with pytest.raises(ValueError, match=r"subset selects no row"):
        mt.OLS.from_formula("li ~ lv + lc", g, subset=g.year > 3000)


def test_only_the_formulas_own_columns_are_checked():
    df = _frame()
    # "x" (numbers stored as text) is not in "y1 ~ x1 + x2", though "x" is in "x1"
    res = mt.OLS.from_formula("y1 ~ x1 + x2", df.assign(x=df.x1.astype(str))).fit()
    ref = smf.ols("y1 ~ x1 + x2", df).fit()
    np.testing.assert_allclose(res.params_full.to_numpy(), ref.params.to_numpy(), rtol=1e-10)
