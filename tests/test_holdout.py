"""fit(tuning="holdout"): one validation split, no refit, for every tuned model.

For each tuned model, on a given split (a boolean mask), the chosen candidate is the one
whose fit on the training rows, with that candidate's hyperparameters fixed, has the
smallest mean squared error on the validation rows, recomputed here by hand; and the
returned coefficients are those of that fixed-hyperparameter fit on the training rows.
"""

import warnings

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.holdout import HOLDOUT_RIDGE_FACTORS, split_rows

rng = np.random.default_rng(7)
N, P, Q = 80, 6, 4
X = rng.standard_normal((N, P))
C_TRUE = rng.standard_normal((P, 2)) @ rng.standard_normal((2, Q))
Y = X @ C_TRUE + 1.0 + rng.standard_normal((N, Q))
C0 = C_TRUE + 0.15 * rng.standard_normal((P, Q))
XS = rng.standard_normal((300, P))
YS = XS @ C0 + rng.standard_normal((300, Q))
MASK = np.zeros(N, dtype=bool)
MASK[::4] = True                                 # validation: every fourth row
T, V = np.flatnonzero(~MASK), np.flatnonzero(MASK)


def val_mse(res):
    """Mean squared validation error per response, from the rows."""
    C, b = res.coefficient_arrays()
    R = Y[V] - X[V] @ C - b
    return float(np.mean(R * R))


def rows(table, cols):
    return [dict(zip(cols, vals)) for vals in table[cols].itertuples(index=False)]


def as_pair(d, key_u, key_v, name):
    d = dict(d)
    d[name] = (int(d.pop(key_u)), int(d.pop(key_v)))
    return d


# name, class, constructor keywords, fit keywords, candidates(res) (fit keywords that
# differ between candidates), fixed(res) (the keywords every candidate shares)
CASES = {
    "Ridge": (mt.Ridge, {}, {},
              lambda r: rows(r.tuning["holdout"]["table"], ["alpha"]), lambda r: {}),
    "ReducedRank": (mt.ReducedRank, {}, {},
                    lambda r: [{"rank": k} for k in range(1, Q + 1)], lambda r: {}),
    "RidgeToSource": (mt.RidgeToSource, {"source": C0}, {},
                      lambda r: rows(r.tuning["holdout"]["table"], ["alpha"]),
                      lambda r: {}),
    "NuclearNorm": (mt.NuclearNorm, {}, {"tol": 1e-12, "max_iter": 50000},
                    lambda r: rows(r.tuning["lam_cv"], ["lam"]), lambda r: {}),
    "SourceMixture": (mt.SourceMixture, {"source": C0}, {},
                      lambda r: rows(r.tuning["cv"], ["weight"]),
                      lambda r: {"rank": r.rank}),
    "SourceSubspaceRRR": (mt.SourceSubspaceRRR, {"source": C0}, {},
                          lambda r: [as_pair(d, "d_u", "d_v", "subspace_rank") for d in
                                     rows(r.tuning["cv"], ["d_u", "d_v"])],
                          lambda r: {"rank": r.rank}),
    "SparseReducedRank": (mt.SparseReducedRank, {}, {"tol": 1e-10, "max_iter": 5000},
                          lambda r: rows(r.tuning["holdout"]["table"], ["lam"]),
                          lambda r: {"rank": r.rank}),
    "SOFAR": (mt.SOFAR, {}, {"tol": 1e-9, "max_iter": 20000},
              lambda r: [{"lam": t} for t in r.tuning["cv"]["t"]],
              lambda r: {"rank": r.rank}),
    "BISMART": (mt.BISMART, {"source": C0}, {},
                lambda r: [{"rule": d["rule"], "c_gap": d["c_gap"]}
                           if d["rule"] in ("zero", "target") else
                           {"rule": d["rule"], "c_gap": d["c_gap"],
                            "budget": (int(d["budget_u"]), int(d["budget_v"]))}
                           for d in rows(r.tuning["cv"], ["rule", "budget_u", "budget_v",
                                                          "c_gap"])],
                lambda r: {"rank": r.rank}),
    "SparseSMART": (mt.SparseSMART, {"source": C0}, {"tol": 1e-12, "n_lam": 6},
                    lambda r: rows(r.tuning["validation"], ["lam"]),
                    lambda r: {"rank": r.rank}),
    "ReducedRankRidge": (mt.ReducedRankRidge, {"source": C0}, {},
                         lambda r: [as_pair(d, "d_u", "d_v", "subspace_rank") for d in
                                    rows(r.tuning["cv"], ["d_u", "d_v", "rank", "ridge"])],
                         lambda r: {}),
    "TwoStageTransfer": (mt.TwoStageTransfer, {"source_endog": YS, "source_exog": XS},
                         {"tol": 1e-12, "max_iter": 50000},
                         lambda r: rows(r.tuning["cv_delta"], ["lam"]),
                         lambda r: {"lam_pool": r.hyperparameters["lam_pool"]}),
    "SMART": (mt.SMART, {"source": C0}, {},
              lambda r: [as_pair(d, "r_u", "r_v", "structural_rank") for d in
                         rows(r.tuning["cv"], ["r_u", "r_v"])],
              lambda r: {"rank": r.rank}),
    "Transfer": (mt.Transfer, {"source": C0},
                 {"candidates": ["source slopes", "SourceMixture", "Ridge", "ReducedRank"]},
                 lambda r: rows(r.tuning["holdout"]["table"], ["method"]), lambda r: {}),
}


def _fit_train(cls, init, fit_kw, **fixed):
    """The fixed-hyperparameter fit on the training rows, built from the rows here."""
    kw = {k: v for k, v in fit_kw.items() if k != "candidates"}
    if "lam" in fixed and cls is mt.TwoStageTransfer:
        fixed = {"lam_pool": fixed["lam_pool"], "lam_delta": fixed.pop("lam")}
    return cls(Y[T], X[T], intercept=True, **init).fit(**kw, **fixed)


@pytest.mark.parametrize("name", list(CASES))
def test_holdout_picks_the_smallest_validation_error_and_does_not_refit(name):
    cls, init, fit_kw, candidates, fixed = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # grid edges, convergence of far candidates
        res = cls(Y, X, intercept=True, **init).fit(tuning="holdout", holdout=MASK,
                                                    **fit_kw)
        assert res.nobs == len(T)
        assert res.tuning["holdout"]["refit"] is False
        np.testing.assert_array_equal(res.tuning["holdout"]["validation_rows"], V)
        cands = candidates(res)
        assert len(cands) >= 2
        shared = fixed(res)
        errs = [val_mse(_fit_train(cls, init, fit_kw, **shared, **c)) for c in cands]
        best = int(np.argmin(errs))
        ref = _fit_train(cls, init, fit_kw, **shared, **cands[best])
    # the choice: the smallest validation error by hand
    assert val_mse(res) == pytest.approx(min(errs), rel=1e-6)
    # no refit: the coefficients of the fixed fit on the training rows
    np.testing.assert_allclose(res.coef, ref.coef, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.intercept, ref.intercept, rtol=0, atol=1e-8)
    assert res.tuning["holdout"]["val_mse"] == pytest.approx(val_mse(res), rel=1e-12)
    assert any("holdout, 20 rows" == how for how in res.chosen_by.values())


def test_ridge_grid_is_the_revisions_multipliers_of_the_training_rows():
    res = mt.Ridge(Y, X, intercept=True).fit(tuning="holdout", holdout=MASK)
    Xc = X[T] - X[T].mean(0)
    top = np.linalg.norm(Xc, 2) ** 2 / len(T)
    np.testing.assert_allclose(res.tuning["holdout"]["table"]["alpha"],
                               HOLDOUT_RIDGE_FACTORS * top, rtol=1e-10)
    assert "holdout, 20 rows" in res.summary().as_text()


def test_default_keeps_cross_validation():
    res = mt.NuclearNorm(Y, X, intercept=True).fit()
    assert res.nobs == N and res.chosen_by["lam"] == "5-fold CV"
    assert "holdout" not in res.tuning


def test_split_rows():
    train, val = split_rows(100, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    np.testing.assert_array_equal(np.sort(np.r_[train, val]), np.arange(100))
    np.testing.assert_array_equal(val, np.sort(np.random.default_rng(3).permutation(100)[:20]))
    np.testing.assert_array_equal(split_rows(10, np.array([1, 4]))[1], [1, 4])
    with pytest.raises(ValueError, match="holdout must be a share"):
        split_rows(10, 1.5)
    with pytest.raises(ValueError, match="must not repeat"):
        split_rows(10, np.array([1, 1]))
    with pytest.raises(ValueError, match="one value per row"):
        split_rows(10, np.ones(3, bool))
    with pytest.raises(ValueError, match="at least 2 training rows"):
        split_rows(3, np.array([0, 1]))


def test_holdout_refusals():
    with pytest.raises(ValueError, match="tuning must be one of"):
        mt.Ridge(Y, X).fit(tuning="hold")
    with pytest.raises(ValueError, match="pass tuning='holdout'"):
        mt.Ridge(Y, X).fit(holdout=0.3)
    with pytest.raises(ValueError, match="pass tuning='holdout'"):
        mt.Ridge(Y, X).fit(holdout_seed=4)
    with pytest.raises(ValueError, match="nothing to choose"):
        g = np.arange(N) % 4
        mt.SharedRepresentation(Y[:, 0], X[:, :2], g, exog_re=X[:, :2]).fit(
            tuning="holdout", k=1)
    with pytest.raises(ValueError, match="nothing to choose"):
        mt.Ridge(Y, X).fit(tuning="holdout", alpha=1.0)
    with pytest.raises(ValueError, match="nothing to choose"):
        mt.RSSVD(Y, X).fit(tuning="holdout", lam=(0.1, 0.1), rank=2)


def test_weighted_validation_error_is_weighted():
    w = rng.uniform(0.5, 2.0, N)
    res = mt.ReducedRank(Y, X, intercept=True, weights=w).fit(tuning="holdout",
                                                             holdout=MASK)
    table = res.tuning["holdout"]["table"]
    for r, err in zip(table["rank"], table["val_mse"]):
        fit = mt.ReducedRank(Y[T], X[T], intercept=True, weights=w[T]).fit(rank=int(r))
        C, b = fit.coefficient_arrays()
        R = Y[V] - X[V] @ C - b
        assert err == pytest.approx(np.sum(w[V] * np.sum(R * R, 1)) / w[V].sum() / Q,
                                    rel=1e-10)
