"""The rank selection criterion on pairs-bootstrap replicates: rows that are copies of one
observation count once (residual degrees of freedom and noise level of the distinct rows)."""

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.selection import _replicate_df, select_rank_rsc
from mtltransfer.solvers.linear import design_svd


def _model_one(seed=0):
    return mt.datasets.simulate_smart(200, 100, 50, rank=5, source_rank=10, sigma0=0.01,
                                      random_state=seed)


def _rows(X, Y, idx):
    Xb, Yb = X[idx], Y[idx]
    return design_svd(Xb - Xb.mean(0)), Yb - Yb.mean(0)


def test_replicate_df_is_the_weighted_residual_trace():
    # independent computation on the distinct rows with weights m_i:
    # E[e^T W e] / sigma^2 = tr(W (I - H)), H = Z (Z^T W Z)^+ Z^T W, Z = [1, X]
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 6))
    idx = rng.integers(0, 40, 40)
    dsvd, _ = _rows(X, np.zeros((40, 1)), idx)
    m = np.bincount(idx, minlength=40)[idx]
    df, c = _replicate_df(dsvd, m, 40, center=True)
    keep = np.unique(idx)
    W = np.diag(np.bincount(idx, minlength=40)[keep].astype(float))
    Z = np.column_stack([np.ones(keep.size), X[keep]])
    H = Z @ np.linalg.pinv(Z.T @ W @ Z) @ Z.T @ W
    assert df == pytest.approx(np.trace(W @ (np.eye(keep.size) - H)), rel=1e-10)
    # c: the noise trace of Y^T P_X Y (centred) against rank X
    Zc = X[keep] - (W.diagonal() @ X[keep]) / W.trace()
    Hc = W @ Zc @ np.linalg.pinv(Zc.T @ W @ Zc) @ Zc.T @ W
    assert c == pytest.approx(np.trace(Hc) / 6, rel=1e-10)
    # distinct rows: the classical n - rank X - 1 and c = 1
    dsvd1, _ = _rows(X, np.zeros((40, 1)), np.arange(40))
    df1, c1 = _replicate_df(dsvd1, np.ones(40), 40, center=True)
    assert df1 == pytest.approx(40 - 6 - 1, rel=1e-12) and c1 == pytest.approx(1, 1e-12)


def test_pairs_replicate_of_a_rank_5_design_selects_rank_5():
    X, Y, _, _ = _model_one()
    rng = np.random.default_rng(1)
    naive = []
    for _ in range(5):
        idx = rng.integers(0, 200, 200)
        rows = _rows(X, Y, idx)
        m = np.bincount(idx, minlength=200)[idx]
        r, info = select_rank_rsc(None, rows=rows, multiplicity=m)
        assert r == 5
        # the rows counted as distinct: the residual of copies looks small (the failure)
        naive.append(select_rank_rsc(None, rows=rows)[0])
        # the noise variance is that of the full data (sigma = 0.5: 0.25) within 25%
        assert info["sigma2"] == pytest.approx(0.25, rel=0.25)
    assert min(naive) > 10


def test_distinct_rows_unchanged_and_model_replicates_carry_multiplicity():
    X, Y, _, C0 = _model_one()
    rows = _rows(X, Y, np.arange(200))
    r0, info0 = select_rank_rsc(None, rows=rows)
    r1, info1 = select_rank_rsc(None, rows=rows, multiplicity=np.ones(200))
    assert r0 == r1 == 5
    assert info0["sigma2"] == pytest.approx(info1["sigma2"], rel=1e-12)
    assert info0["mu"] == pytest.approx(info1["mu"], rel=1e-12)
    mod = mt.SMART(Y, X, source=C0, intercept=False)
    assert mod.row_multiplicity() is None
    idx = np.random.default_rng(2).integers(0, 200, 200)
    rep = mod.replace_data(rows=idx)
    np.testing.assert_array_equal(rep.row_multiplicity(),
                                  np.bincount(idx, minlength=200)[idx])
    # a replicate of a replicate counts copies of the original observations
    idx2 = np.random.default_rng(3).integers(0, 200, 200)
    np.testing.assert_array_equal(rep.replace_data(rows=idx2).row_multiplicity(),
                                  np.bincount(idx[idx2], minlength=200)[idx[idx2]])
    # the residual bootstrap keeps the rows: no multiplicity
    assert mod.replace_data(endog=Y + 1).row_multiplicity() is None
    assert rep.select_rank(cap=10)[0] == 5
    with pytest.raises(ValueError, match="multiplicity needs rows"):
        select_rank_rsc(*mod.moments(), 200, multiplicity=np.ones(200))
    with pytest.raises(ValueError, match="multiplicity must hold"):
        select_rank_rsc(None, rows=rows, multiplicity=np.ones(199))


def test_replicate_folds_keep_copies_together():
    X, Y, _, C0 = _model_one()
    idx = np.random.default_rng(4).integers(0, 200, 200)
    rep = mt.SMART(Y, X, source=C0, intercept=False).replace_data(rows=idx)
    folds = rep.fold_stats(5)
    assert sum(f.n for f in folds) == 200
    # the copies of each observation land in one fold (a permutation of the observations)
    ids = np.unique(idx)
    fold_of = np.empty(ids.size, int)
    for k, b in enumerate(np.array_split(np.random.default_rng(0).permutation(ids.size), 5)):
        fold_of[b] = k
    where = fold_of[np.searchsorted(ids, idx)]
    for k, f in enumerate(folds):
        np.testing.assert_allclose(f.n, np.sum(where == k))
        np.testing.assert_allclose(f.moments(center=False)[1] * f.n,
                                   X[idx][where == k].T @ Y[idx][where == k], rtol=1e-10)
    # distinct rows: the model's own folds, unchanged
    mod = mt.SMART(Y, X, source=C0, intercept=False)
    plain = mod.replace_data(rows=np.arange(200)).fold_stats(5)
    for a, b in zip(plain, mod.fold_stats(5)):
        np.testing.assert_array_equal(a.moments()[1], b.moments()[1])


def test_retuned_replicate_scores_the_full_data_structural_ranks_first():
    X, Y, _, C0 = mt.datasets.simulate_smart(120, 20, 10, rank=2, source_rank=4,
                                             sigma0=0.01, random_state=5)
    mod = mt.SMART(Y, X, source=C0, intercept=False)
    res = mod.fit()
    kw = mt.bootstrap.replicate_fit_kwargs(res, refit_tuning=True)
    assert kw["init"] == {"r_u": res.structural_rank[0], "r_v": res.structural_rank[1]}
    fixed = mod.fit(structural_rank=res.structural_rank)
    assert "init" not in mt.bootstrap.replicate_fit_kwargs(fixed, refit_tuning=True)
    rep = mod.replace_data(rows=np.random.default_rng(6).integers(0, 120, 120))
    a = rep.fit(**kw)
    cv = a.tuning["cv"]
    # the choice is the smallest mean loss among the candidates kept
    best = cv.loc[cv["cv_mean"].idxmin()]
    assert a.structural_rank == (best["r_u"], best["r_v"])
    # the hinted candidate was scored on every fold
    hint = cv[(cv["r_u"] == res.structural_rank[0]) & (cv["r_v"] == res.structural_rank[1])]
    assert np.isfinite(hint.filter(like="fold").to_numpy()).all()
