"""Transfer's candidates with the intercept pulled towards the source's by empirical Bayes
(transfer_family.eb_intercept): the formula, the CV rows, and the final fit."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.models.transfer_family import EB_SUFFIX, eb_intercept


def _study(shift, n=24, seed=0, q=12):
    """Source fitted on 600 rows; a target of n rows whose intercepts differ from the
    source's by ``shift`` (one draw per response) and whose slopes are the source's."""
    rng = np.random.default_rng(seed)
    p = 3
    C = rng.standard_normal((p, q))
    b = rng.standard_normal(q)
    xn, yn = [f"x{j}" for j in range(p)], [f"y{j}" for j in range(q)]

    def frame(m, intercept):
        X = rng.standard_normal((m, p))
        Y = intercept + X @ C + 2.0 * rng.standard_normal((m, q))
        return pd.DataFrame(np.column_stack([X, Y]), columns=xn + yn)

    formula = " + ".join(yn) + " ~ " + " + ".join(xn)
    src = mt.OLS.from_formula(formula, frame(600, b)).fit()
    target = frame(n, b + shift * rng.standard_normal(q))
    return formula, src, target


def test_eb_intercept_is_the_moment_posterior_mean():
    rng = np.random.default_rng(1)
    n, p, q = 30, 2, 8
    X = rng.standard_normal((n, p))
    C = rng.standard_normal((p, q))
    b0 = rng.standard_normal(q)
    Y = 3.0 + X @ C + rng.standard_normal((n, q))
    b, w = eb_intercept(Y, X, C, b0)
    # written out independently: per response the target's intercept and its variance
    bt = np.array([np.mean(Y[:, j] - X @ C[:, j]) for j in range(q)])
    v = np.array([np.var(Y[:, j] - X @ C[:, j], ddof=1) / n for j in range(q)])
    tau2 = max(np.mean((bt - b0) ** 2) - np.mean(v), 0.0)
    np.testing.assert_allclose(w, tau2 / (tau2 + v), rtol=1e-12)
    np.testing.assert_allclose(b, b0 + tau2 / (tau2 + v) * (bt - b0), rtol=1e-12)
    assert np.all((w > 0) & (w < 1))
    # a target whose intercepts are the source's up to less than their noise: tau^2 = 0
    b_same, w_same = eb_intercept(Y, X, C, bt + 1e-3 * rng.standard_normal(q))
    assert np.all(w_same == 0.0)
    np.testing.assert_allclose(b_same, bt, atol=1e-2)
    # far apart: the target's own intercept (w -> 1)
    b_far, w_far = eb_intercept(Y, X, C, bt + 100 * rng.standard_normal(q))
    assert np.all(w_far > 0.999)
    np.testing.assert_allclose(b_far, bt, atol=0.1)


def test_cv_rows_of_the_eb_variants_are_the_base_fits_with_the_pulled_intercept():
    formula, src, target = _study(shift=0.0)
    mod = mt.Transfer.from_formula(formula, target, source=src)
    res = mod.fit(candidates=("source", "source slopes", "RidgeToSource", "Ridge"))
    table = res.tuning["transfer_cv"]
    assert list(table.index) == ["source", "source slopes" + EB_SUFFIX, "source slopes",
                                 "RidgeToSource" + EB_SUFFIX, "RidgeToSource", "Ridge"]
    b0 = src.intercept.to_numpy()
    folds = [f"fold{k + 1}" for k in range(5)]
    exp_rts, exp_slopes = [], []
    for held in mod._folds(5):
        train = np.setdiff1d(np.arange(mod.nobs), held)
        fit = mt.RidgeToSource(mod.endog[train], mod.exog[train], source=src.coef,
                               intercept=True).fit()
        for C, out in ((fit.coef, exp_rts), (src.coef, exp_slopes)):
            b, _ = eb_intercept(mod.endog[train], mod.exog[train], C, b0)
            R = mod.endog[held] - mod.exog[held] @ C - b
            out.append(np.mean(R * R))
    np.testing.assert_allclose(table.loc["RidgeToSource" + EB_SUFFIX, folds].to_numpy(float),
                               exp_rts, rtol=1e-9)
    np.testing.assert_allclose(table.loc["source slopes" + EB_SUFFIX, folds].to_numpy(float),
                               exp_slopes, rtol=1e-12)
    # without the option, the table of the target's intercepts only
    plain = mod.fit(candidates=("source", "source slopes", "RidgeToSource", "Ridge"),
                    eb_intercept=False).tuning["transfer_cv"]
    assert list(plain.index) == ["source", "source slopes", "RidgeToSource", "Ridge"]
    pd.testing.assert_frame_equal(plain, table.loc[plain.index])
    with pytest.raises(TypeError, match="eb_intercept must be True or False"):
        mod.fit(eb_intercept="yes")


def test_final_eb_fit_keeps_the_candidates_slopes_and_reports_the_shares():
    formula, src, target = _study(shift=0.0)
    mod = mt.Transfer.from_formula(formula, target, source=src)
    res = mod.fit(method="RidgeToSource" + EB_SUFFIX)
    ref = mt.RidgeToSource.from_formula(formula, target, source=src).fit()
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12)
    b, w = eb_intercept(mod.endog, mod.exog, ref.coef, src.intercept.to_numpy())
    np.testing.assert_allclose(res.intercept.to_numpy(), b, rtol=1e-12)
    np.testing.assert_allclose(res.intercept_weights.to_numpy(), w, rtol=1e-12)
    assert "Intercept pulled towards the source's by empirical Bayes" in \
        " ".join(res.summary().as_text().split())      # the notes wrap at 88 columns
    # the bootstrap's replicates refit the same method (slopes and pulled intercept)
    boot = res.bootstrap(n_boot=20, random_state=0)
    assert boot.n_boot == 20 and np.all(np.isfinite(boot.intercept))


def test_a_source_intercept_that_holds_is_borrowed_one_that_does_not_is_not():
    """Same intercepts (shift 0): the pulled intercept is near the source's and predicts
    new target rows better than the target's own 24-row intercept; intercepts far off
    (shift 5): the target's share is near 1."""
    gains = []
    for seed in range(6):
        formula, src, target = _study(shift=0.0, seed=seed, n=48)
        fit, test = target.iloc[:24], target.iloc[24:]
        mod = mt.Transfer.from_formula(formula, fit, source=src)
        eb = mod.fit(method="source slopes" + EB_SUFFIX)
        own = mod.fit(method="source slopes")
        ys = src.model.endog_names
        err = [np.mean((test[ys].to_numpy() - r.predict(test).to_numpy()) ** 2)
               for r in (eb, own)]
        gains.append(err[1] - err[0])
    assert np.mean(gains) > 0
    formula, src, target = _study(shift=5.0, seed=0)
    far = mt.Transfer.from_formula(formula, target, source=src).fit(
        method="source slopes" + EB_SUFFIX)
    assert far.intercept_weights.min() > 0.9


def test_several_sources_one_without_an_intercept():
    """EB variants only for the source that carries an intercept, and no pooled EB
    candidate (the pooled intercept needs every source's)."""
    formula, src, target = _study(shift=0.0)
    frame = src.params.copy()                     # slopes only: no intercept row
    mod = mt.Transfer.from_formula(formula, target, source=[src, frame * 1.01])
    res = mod.fit(candidates=("source slopes", "RidgeToSource", "Ridge"))
    labels = list(res.tuning["transfer_cv"].index)
    assert "source slopes" + EB_SUFFIX + " [source1]" in labels
    assert not any(EB_SUFFIX in c and "[source2]" in c for c in labels)
    assert not any(EB_SUFFIX in c and "[pooled]" in c for c in labels)
    assert np.all(np.isfinite(res.tuning["transfer_cv"]["cv_mse"]))
