"""What a fit says about itself agrees with itself and with statsmodels: warnings and
values, summary labels, per-response goodness of fit, messages that print the user's
values, and the documentation of adapt()."""

import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import mtltransfer as mt
from mtltransfer.exceptions import ValueWarning

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _longley():
    return sm.datasets.longley.load_pandas().data


def test_constant_response_warns_what_rsquared_says():
    d = _longley().assign(K=3.0)
    with pytest.warns(ValueWarning, match=r"constant response\(s\) \['K'\].*R-squared is "
                                          r"undefined \(NaN"):
        res = mt.OLS.from_formula("K + TOTEMP ~ GNP + UNEMP", d).fit()
    assert np.isnan(res.rsquared["K"]) and 0.9 < res.rsquared["TOTEMP"] < 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mt.OLS.from_formula("K ~ GNP + UNEMP", d).fit()
    assert not any("R-squared = 1" in str(w.message) for w in caught)
    # (statsmodels divides its rounding error by a zero total sum of squares: -inf here)


def test_one_response_summary_reports_its_own_rsquared_as_statsmodels():
    d = _longley()
    res = mt.OLS.from_formula("TOTEMP ~ GNPDEFL + GNP + UNEMP", d).fit()
    ref = smf.ols("TOTEMP ~ GNPDEFL + GNP + UNEMP", d).fit()
    text = res.summary().as_text()
    assert "Mean R-squared" not in text
    for label, value in (("R-squared:", ref.rsquared), ("Adj. R-squared:", ref.rsquared_adj),
                         ("F-statistic:", ref.fvalue), ("Prob (F-statistic):", ref.f_pvalue)):
        line = next(ln for ln in text.splitlines() if label in ln)
        shown = float(line.split(label)[1].split()[0])
        np.testing.assert_allclose(shown, value, rtol=5e-4)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1", "cluster"])
def test_rsquared_adj_and_f_test_per_response_equal_statsmodels(cov_type):
    d = _longley()
    kw = {"cov_kwds": {"groups": (d.index % 4).to_numpy()}} if cov_type == "cluster" else {}
    res = mt.OLS.from_formula("TOTEMP + GNP ~ GNPDEFL + UNEMP + ARMED", d).fit(
        cov_type=cov_type, **kw)
    for y in ("TOTEMP", "GNP"):
        ref = smf.ols(f"{y} ~ GNPDEFL + UNEMP + ARMED", d).fit(cov_type=cov_type, **kw)
        np.testing.assert_allclose(res.rsquared_adj[y], ref.rsquared_adj, rtol=1e-10)
        np.testing.assert_allclose(res.fvalue[y], ref.fvalue, rtol=1e-7)
        np.testing.assert_allclose(res.f_pvalue[y], ref.f_pvalue, rtol=1e-6)
    text = res.summary().as_text()
    assert "Fit per response" in text and "Mean R-squared" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("GNP "))
    assert row.split()[1] == f"{res.rsquared['GNP']:#.4g}"


def test_penalised_fit_per_response_rsquared_in_summary():
    d = _longley()
    res = mt.ReducedRank.from_formula("TOTEMP + GNP ~ GNPDEFL + UNEMP + ARMED", d).fit(rank=1)
    text = res.summary().as_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("TOTEMP "))
    assert row.split()[1:3] == [f"{res.rsquared['TOTEMP']:#.4g}",
                                f"{res.rsquared_adj['TOTEMP']:#.4g}"]
    # adjusted R^2 with the fit's own residual degrees of freedom
    np.testing.assert_allclose(res.rsquared_adj, 1 - (16 - 1) / res.df_resid *
                               (1 - res.rsquared), rtol=1e-12)


def _shared_fit():
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(60, 4)), columns=["y", "x1", "x2", "x3"])
    df["g"] = np.arange(60) % 3
    return df, mt.SharedRepresentation.from_formula("y ~ x1 + x2 + x3", df,
                                                    groups="g").fit(k=1)


def test_messages_show_the_users_values():
    df, res = _shared_fit()
    new = df.head(4).assign(g=99)
    with pytest.raises(ValueError, match=r"tasks not seen in fitting: \[99\];"):
        res.predict(new)
    new = df.head(6).assign(g=7)
    new.loc[[0, 1], "x1"] = np.nan
    with pytest.raises(ValueError, match=r"missing values in 2 row\(s\) \(positions "
                                         r"\[0, 1\]\)"):
        res.adapt(new)
    with pytest.raises(ValueError, match=r"lacks labels of 5 row\(s\) of the data \(first: "
                                         r"\[0, 1, 2, 3, 4\]\)"):
        mt.OLS.from_formula("y ~ x1", df).fit(cov_type="cluster",
                                              cov_kwds={"groups": df.g.iloc[5:]})


def test_docs_call_the_default_adapt_a_posterior_mean():
    text = (ROOT / "docs" / "shared_representation.rst").read_text()
    section = text.split("Transfer to a new task: ``adapt``")[1].split("API\n---")[0]
    assert "``res.adapt(new_rows)`` uses :math:`s = 0`" not in section
    assert "posterior mean of :math:`w`" in section and "``shrink=0`` is least squares" \
        in section


def test_one_conf_int_layout_for_least_squares_and_the_bootstrap():
    d = _longley()
    res = mt.OLS.from_formula("TOTEMP + GNP ~ GNPDEFL + UNEMP", d).fit()
    boot = res.bootstrap(n_boot=30, random_state=0)
    ls, bs = res.conf_int(0.1), boot.conf_int(0.1)
    assert list(ls.columns) == list(bs.columns) == [0, 1]
    assert ls.index.names == bs.index.names == ["predictor", "response"]
    # the bootstrap's percentile interval of each coefficient, in column 0 and 1
    draws = boot.params[("UNEMP", "GNP")]
    np.testing.assert_allclose(bs.loc[("UNEMP", "GNP")].to_numpy(),
                               np.quantile(draws, [0.05, 0.95]), rtol=1e-12)


def test_adapted_task_get_prediction_has_summary_frame():
    from scipy import stats

    df, _ = _shared_fit()
    res = mt.SharedRepresentation.from_formula("y ~ x1 + x2 + x3", df, groups="g").fit(k=1)
    new = res.adapt(df.head(8).assign(g=7))
    pred = new.get_prediction(df.iloc[10:13])
    frame = pred.summary_frame(alpha=0.1)
    assert list(frame.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper",
                                   "obs_ci_lower", "obs_ci_upper"]
    np.testing.assert_allclose(frame["mean"], new.predict(df.iloc[10:13]), rtol=1e-12)
    np.testing.assert_allclose(frame["mean_ci_upper"] - frame["mean"],
                               stats.norm.ppf(0.95) * pred.se_mean, rtol=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        pred.summary_frame(alpha=1.5)
    # the B-fixed coefficient intervals in statsmodels' layout too
    ci = res.adapt(df.head(8).assign(g=7), shrink=0).conf_int(0.1)
    assert list(ci.columns) == [0, 1] and (ci[0] < ci[1]).all()


def test_one_task_marginal_fit_is_refused_not_nan():
    """One task: the marginal likelihood cannot identify the weights' distribution; the
    fit used to return NaN coefficients with only a ConvergenceWarning."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = X @ np.array([1.0, 2.0, 3.0]) + rng.standard_normal(30)
    with pytest.raises(ValueError, match="method='marginal' needs at least two tasks"):
        mt.SharedRepresentation(y, X, groups=np.zeros(30)).fit()
    res = mt.SharedRepresentation(y, X, groups=np.zeros(30)).fit(method="per_task")
    assert np.all(np.isfinite(res.params.to_numpy()))
