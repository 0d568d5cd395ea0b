"""Transfer: the cross-validated choice over the transfer family (one and several sources)."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt

FAST = ("source", "source slopes", "RidgeToSource", "OLS", "Ridge")


def _frames(X, Y, offset=0):
    xn = [f"x{j + 1}" for j in range(X.shape[1])]
    yn = [f"y{j + 1}" for j in range(Y.shape[1])]
    idx = pd.RangeIndex(offset, offset + len(X))
    return pd.DataFrame(X, columns=xn, index=idx).join(pd.DataFrame(Y, columns=yn,
                                                                    index=idx)), xn, yn


@pytest.fixture(scope="module")
def study():
    """A source study (400 rows) whose coefficients are the target's up to a small
    shift, and a target of 30 rows with a shifted mean."""
    rng = np.random.default_rng(7)
    p, q = 6, 5
    C = rng.standard_normal((p, q))
    Xs = rng.standard_normal((400, p))
    Ys = 1.0 + Xs @ C + rng.standard_normal((400, q))
    Xt = rng.standard_normal((30, p))
    Yt = 1.3 + Xt @ (C + 0.05 * rng.standard_normal((p, q))) + rng.standard_normal((30, q))
    src, xn, yn = _frames(Xs, Ys)
    tgt, _, _ = _frames(Xt, Yt)
    formula = " + ".join(yn) + " ~ " + " + ".join(xn)
    source = mt.OLS.from_formula(formula, src).fit()
    return {"formula": formula, "target": tgt, "source": source, "C": C, "xn": xn,
            "yn": yn}


def _fold_mse(res, fit):
    """Fold losses of a candidate recomputed from the model's folds (held-out rows)."""
    mod = res.model
    n = mod.nobs
    out = []
    for held in mod._folds(5):
        train = np.setdiff1d(np.arange(n), held)
        C, b = fit(mod.exog[train], mod.endog[train])
        R = mod.endog[held] - (mod.exog[held] @ C + b)
        out.append(np.mean(R * R))
    return np.array(out)


def test_cv_table_is_the_same_folds_for_every_candidate(study):
    mod = mt.Transfer.from_formula(study["formula"], study["target"],
                                   source=study["source"])
    res = mod.fit(candidates=FAST)
    table = res.tuning["transfer_cv"]
    C0 = study["source"].coef

    def ols(X, Y):
        Xc = np.column_stack([np.ones(len(X)), X])
        B = np.linalg.lstsq(Xc, Y, rcond=None)[0]
        return B[1:], B[0]

    def slopes(X, Y):
        return C0, Y.mean(0) - C0.T @ X.mean(0)

    folds = [f"fold{k + 1}" for k in range(5)]
    np.testing.assert_allclose(table.loc["OLS", folds].to_numpy(float),
                               _fold_mse(res, ols), rtol=1e-9)
    np.testing.assert_allclose(table.loc["source slopes", folds].to_numpy(float),
                               _fold_mse(res, slopes), rtol=1e-12)
    b0 = study["source"].intercept.to_numpy()
    np.testing.assert_allclose(table.loc["source", folds].to_numpy(float),
                               _fold_mse(res, lambda X, Y: (C0, b0)), rtol=1e-12)
    # one-standard-error rule: the first candidate within one se of the smallest error
    best = table["cv_mse"].idxmin()
    within = table.index[table["cv_mse"] <= table.loc[best, "cv_mse"]
                         + table.loc[best, "cv_se"]]
    assert res.method == within[0]
    assert mod.fit(candidates=FAST, rule="min").method == best
    assert set(table["kind"]) == {"transfer", "target only"}


def test_chosen_fit_is_the_candidates_full_data_fit(study):
    mod = mt.Transfer.from_formula(study["formula"], study["target"],
                                   source=study["source"])
    res = mod.fit(method="RidgeToSource")
    ref = mt.RidgeToSource.from_formula(study["formula"], study["target"],
                                        source=study["source"]).fit()
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12)
    np.testing.assert_allclose(res.intercept, ref.intercept, rtol=1e-12)
    assert res.hyperparameters["method_options"] == {"alpha": ref.alpha}
    # the source as is predicts with the source's own slopes and intercept
    src = mod.fit(method="source")
    new = study["target"].iloc[:4]
    X = new[study["xn"]].to_numpy()
    np.testing.assert_allclose(src.predict(new).to_numpy(),
                               X @ study["source"].coef + study["source"].intercept.to_numpy(),
                               rtol=1e-12)


def test_results_api(study, tmp_path):
    res = mt.Transfer.from_formula(study["formula"], study["target"],
                                   source=study["source"]).fit(candidates=FAST)
    text = res.summary().as_text()
    assert "Transfer chosen by cross-validation" in text and res.method in text
    res.save(tmp_path / "t.mtl")
    back = mt.load(tmp_path / "t.mtl")
    np.testing.assert_array_equal(back.coef, res.coef)
    pd.testing.assert_frame_equal(back.tuning["transfer_cv"], res.tuning["transfer_cv"])
    new = study["target"].iloc[:3]
    np.testing.assert_allclose(back.predict(new), res.predict(new), rtol=1e-12)
    boot = res.bootstrap(n_boot=20, random_state=0)
    assert boot.bse.shape == res.params.shape and np.all(np.isfinite(boot.bse.to_numpy()))
    # replicates refit the chosen method with its hyperparameters, not a new choice
    from mtltransfer.bootstrap import replicate_fit_kwargs
    kw = replicate_fit_kwargs(res)
    assert kw["method"] == res.method
    assert kw["method_options"] == res.hyperparameters["method_options"]


def test_misleading_source_falls_back_to_the_target(study):
    rng = np.random.default_rng(1)
    bad = pd.DataFrame(5 * rng.standard_normal(study["source"].params.shape),
                       index=study["xn"], columns=study["yn"])
    res = mt.Transfer.from_formula(study["formula"], study["target"],
                                   source=bad).fit(candidates=FAST)
    table = res.tuning["transfer_cv"]
    assert "source" not in table.index     # no intercept given
    # the source's slopes are far off; the choice is within one se of the target alone
    target = table[table["kind"] == "target only"]["cv_mse"]
    assert table.loc["source slopes", "cv_mse"] > 10 * target.min()
    assert res.method != "source slopes"
    assert table.loc[res.method, "cv_mse"] <= target.min() + table.loc[target.idxmin(),
                                                                        "cv_se"]


def test_default_candidates_include_smart(study):
    res = mt.Transfer.from_formula(study["formula"], study["target"],
                                   source=study["source"]).fit(n_folds=3)
    table = res.tuning["transfer_cv"]
    family = mt.models.transfer_family
    # every candidate, and (the source carries an intercept) each source-aware one but
    # the source as is also with its intercept pulled towards the source's, just before it
    assert [c for c in table.index if not c.endswith(family.EB_SUFFIX)] == \
        list(family.TRANSFER_CANDIDATES)
    assert [c for c in table.index if c.endswith(family.EB_SUFFIX)] == [
        c + family.EB_SUFFIX for c in family.TRANSFER_CANDIDATES
        if c not in family.TARGET_ONLY and c != "source"]
    assert np.all(np.isfinite(table["cv_mse"]))
    assert table.loc[res.method, "cv_mse"] <= table["cv_mse"].min() + \
        table.loc[table["cv_mse"].idxmin(), "cv_se"]


def test_good_and_misleading_sources(study):
    rng = np.random.default_rng(2)
    bad = pd.DataFrame(5 * rng.standard_normal(study["source"].params.shape),
                       index=study["xn"], columns=study["yn"])
    single = mt.Transfer.from_formula(study["formula"], study["target"],
                                      source=study["source"]).fit(candidates=FAST)
    res = mt.Transfer.from_formula(study["formula"], study["target"],
                                   source=[bad, study["source"]]).fit(candidates=FAST)
    w = res.tuning["source_weights"]
    assert w.loc["source1", "pooled_weight"] == 0.0
    assert w.loc["source2", "pooled_weight"] == 1.0
    assert res.source_weights["source1"] == 0.0
    table = res.tuning["transfer_cv"]
    # never worse in CV than the best single source (here: exactly as good or better)
    assert table["cv_mse"].min() <= single.tuning["transfer_cv"]["cv_mse"].min() + 1e-12
    assert "Weight of each source" in res.summary().as_text()


def test_bad_arguments(study):
    mod = mt.Transfer.from_formula(study["formula"], study["target"],
                                   source=study["source"])
    with pytest.raises(ValueError, match="candidates"):
        mod.fit(candidates=("SMART", "lasso"))
    with pytest.raises(ValueError, match="method"):
        mod.fit(method="nonsense")
    with pytest.raises(TypeError, match="source"):
        mt.Transfer.from_formula(study["formula"], study["target"])
    with pytest.raises(ValueError, match="source_intercept"):
        mt.Transfer.from_formula(study["formula"], study["target"],
                                 source=study["source"], source_intercept=[1.0, 2.0])


def test_smart_with_a_good_and_a_misleading_source(study):
    rng = np.random.default_rng(3)
    bad = pd.DataFrame(5 * rng.standard_normal(study["source"].params.shape),
                       index=study["xn"], columns=study["yn"])
    mod = mt.SMART.from_formula(study["formula"], study["target"],
                                source=[bad, study["source"]])
    w = mod.source_weights
    assert w.loc["source1", "weight"] == 0.0 and w.loc["source2", "weight"] == 1.0
    # the misleading source's ridge is worse than the target alone; the good one better
    assert w.loc["source1", "cv_mse"] > w.loc["target only", "cv_mse"] > \
        w.loc["source2", "cv_mse"]
    one = mt.SMART.from_formula(study["formula"], study["target"], source=study["source"])
    np.testing.assert_array_equal(mod.source, one.source)
    res = mod.fit(rank=2, structural_rank=3, lam=0.01)
    np.testing.assert_allclose(res.coef, one.fit(rank=2, structural_rank=3, lam=0.01).coef,
                               rtol=1e-12)
    assert "Sources weighted by cross-validation" in res.summary().as_text()


def test_two_useful_sources_are_pooled(study):
    rng = np.random.default_rng(4)
    C0 = study["source"].params
    a = C0 + 0.3 * rng.standard_normal(C0.shape)
    b = C0 + 0.3 * rng.standard_normal(C0.shape)
    mod = mt.RidgeToSource.from_formula(study["formula"], study["target"], source=[a, b])
    w = mod.source_weights
    assert np.all(w.loc[["source1", "source2"], "weight"] > 0)
    assert w.loc[["source1", "source2"], "weight"].sum() == pytest.approx(1.0)
    # pooled only when not worse than the best single source on the same folds
    assert w.loc["pooled", "cv_mse"] <= w.loc[["source1", "source2"], "cv_mse"].min()
    expect = sum(w.loc[s, "weight"] * m.to_numpy() for s, m in (("source1", a),
                                                                 ("source2", b)))
    np.testing.assert_allclose(mod.source, expect, rtol=1e-12)


def test_blocked_folds_are_contiguous_blocks(study):
    mod = mt.Transfer.from_formula(study["formula"], study["target"],
                                   source=study["source"])
    res = mod.fit(candidates=("source slopes", "OLS"), folds="blocked")
    C0 = study["source"].coef
    n = mod.nobs
    expect = []
    for held in np.array_split(np.arange(n), 5):
        train = np.setdiff1d(np.arange(n), held)
        b = mod.endog[train].mean(0) - C0.T @ mod.exog[train].mean(0)
        R = mod.endog[held] - (mod.exog[held] @ C0 + b)
        expect.append(np.mean(R * R))
    got = res.tuning["transfer_cv"].loc["source slopes", [f"fold{k}" for k in range(1, 6)]]
    np.testing.assert_allclose(got.to_numpy(float), expect, rtol=1e-12)
    assert res.chosen_by["method"] == "5-fold CV, blocked, 1-se rule"
    with pytest.raises(ValueError, match="folds"):
        mod.fit(folds="time")
    with pytest.raises(ValueError, match="rule"):
        mod.fit(rule="aic")
