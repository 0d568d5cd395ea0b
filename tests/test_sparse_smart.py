"""SparseSMART: group-sparse use of the source's singular directions.

The prox of the row-plus-column group penalty and the convex problem (no rank
constraint) against CVXPY; lam = 0 from zero reaches reduced-rank regression; a huge lam
leaves only the anchors (the restricted reduced-rank fit); support recovery on a design
with sparse alignments; the validation table recomputed by hand; the results API; bad
input.
"""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.gram import SufficientStats, validation_loss
from mtltransfer.smart import blocks as bk
from mtltransfer.smart import sparse as sp
from mtltransfer.smart.problem import source_svd


@pytest.fixture(scope="module")
def aligned():
    """A rank-8 source; a rank-2 target that uses 4 of its left and 4 of its right
    directions (more than the rank: the anchors alone cannot hold it)."""
    rng = np.random.default_rng(5)
    p, q, n, k = 30, 20, 400, 8
    U = np.linalg.qr(rng.standard_normal((p, k)))[0]
    V = np.linalg.qr(rng.standard_normal((q, k)))[0]
    C0 = (U * np.linspace(10, 3, k)) @ V.T + 0.01 * rng.standard_normal((p, q))
    S_u, S_v = [1, 3, 4, 6], [0, 2, 5, 7]
    M = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 4))
    C = U[:, S_u] @ M @ V[:, S_v].T
    X = rng.standard_normal((n, p))
    Y = X @ C + 0.1 * rng.standard_normal((n, q))
    return X, Y, C0, C, S_u, S_v


def _moments(X, Y, C0):
    n = len(X)
    U0, _, V0 = source_svd(C0)
    G = U0.T @ (X.T @ X / n) @ U0
    return 0.5 * (G + G.T), U0.T @ (X.T @ Y / n) @ V0, U0, V0


def test_prox_of_rows_plus_columns_matches_cvxpy():
    import cvxpy as cp

    rng = np.random.default_rng(0)
    B = rng.standard_normal((7, 5))
    free_u = np.array([1, 1, 0, 1, 1, 0, 1], bool)
    free_v = np.array([0, 1, 1, 1, 0], bool)
    out = sp.prox_rows_columns(B, 0.6, free_u, free_v)
    A = cp.Variable(B.shape)
    pen = cp.sum(cp.norm(A[np.flatnonzero(free_u), :], 2, axis=1)) + \
        cp.sum(cp.norm(A[:, np.flatnonzero(free_v)], 2, axis=0))
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A - B) + 0.6 * pen)).solve()
    np.testing.assert_allclose(out, A.value, atol=2e-5)        # CVXPY's accuracy

    def f(Z):
        return 0.5 * np.sum((Z - B) ** 2) + sp.penalty(Z, 0.6, free_u, free_v)

    assert f(out) <= f(A.value) + 1e-12                           # ours is no worse
    # one group only: the closed form
    rows = sp.prox_rows_columns(B, 0.6, free_u, np.zeros(5, bool))
    norms = np.linalg.norm(B, axis=1)
    expect = B * np.where(free_u, np.maximum(1 - 0.6 / norms, 0), 1.0)[:, None]
    np.testing.assert_allclose(rows, expect, rtol=1e-12)


def test_convex_problem_matches_its_cvxpy_twin(aligned):
    X, Y, C0, *_ = aligned
    G, H, _, _ = _moments(X, Y, C0)
    a_u, a_v = np.array([0, 3]), np.array([1])
    for lam in (0.05, 0.3):
        fast = sp.sparse_smart(G, H, 20, lam, a_u, a_v, tol=1e-11, max_iter=20000)
        A, obj = sp.sparse_smart_cvx(G, H, lam, a_u, a_v)
        assert fast.converged
        np.testing.assert_allclose(fast.coef, A, atol=2e-5)
        assert fast.objective <= obj + 1e-8
    # the model's cvxpy backend solves the same convex problem
    mod = mt.SparseSMART(Y, X, source=C0)
    a = mod.fit(rank=20, lam=0.3, tol=1e-11, max_iter=20000)
    b = mod.fit(rank=20, lam=0.3, backend="cvxpy")
    np.testing.assert_allclose(a.coef, b.coef, atol=2e-5)


def test_lam_zero_reaches_reduced_rank_regression_from_zero(aligned):
    X, Y, C0, *_ = aligned
    G, H, U0, V0 = _moments(X, Y, C0)
    sol = sp.sparse_smart(G, H, 2, 0.0, [0, 1], [0, 1], tol=1e-13, max_iter=50000)
    ref = mt.ReducedRank(Y, X).fit(rank=2)
    assert sol.converged
    np.testing.assert_allclose(U0 @ sol.coef @ V0.T, ref.coef, atol=1e-10)
    # the objective never rose (backtracking keeps only descent steps)
    assert np.all(np.diff(sol.history["objective"]) <= 1e-12)


def test_huge_lam_leaves_the_anchors_restricted_fit(aligned):
    X, Y, C0, *_ = aligned
    res = mt.SparseSMART(Y, X, source=C0).fit(rank=2, lam=1e3)
    a_u, a_v = res.anchors
    assert [len(a_u), len(a_v)] == [2, 2]
    np.testing.assert_array_equal(res.support[0], a_u)
    np.testing.assert_array_equal(res.support[1], a_v)
    U0, _, V0 = res.model.source_svd
    n = len(X)
    ref, _ = bk.restricted_rrr(X.T @ X / n, X.T @ Y / n, U0[:, a_u], V0[:, a_v], 2)
    np.testing.assert_allclose(res.coef, ref, atol=1e-7)


def test_support_recovery_on_sparse_alignments(aligned):
    """The target uses source directions {1, 3, 4, 6} (left) and {0, 2, 5, 7} (right);
    over a range of lam the fit uses exactly those."""
    X, Y, C0, C, S_u, S_v = aligned
    mod = mt.SparseSMART(Y, X, source=C0)
    for lam in (0.05, 0.1, 0.2):
        res = mod.fit(rank=2, lam=lam)
        assert res.converged
        assert res.support[0].tolist() == S_u and res.support[1].tolist() == S_v
        assert set(res.anchors[0]) <= set(S_u) and set(res.anchors[1]) <= set(S_v)
    # the group penalty shrinks what it keeps: tuned for prediction (a smaller lam) the
    # fit is closer to C* than the target-only reduced-rank fit
    tuned = mod.fit(rank=2)
    rrr = mt.ReducedRank(Y, X).fit(rank=2)
    assert tuned.lam < 0.05
    assert np.linalg.norm(tuned.coef - C) < np.linalg.norm(rrr.coef - C)


def test_validation_table_recomputed_by_hand(aligned):
    X, Y, C0, *_ = aligned
    mod = mt.SparseSMART(Y, X, source=C0)
    res = mod.fit(rank=2, n_lam=6)
    table = res.tuning["validation"]
    n = len(X)
    perm = np.random.default_rng(0).permutation(n)
    held, train = np.sort(perm[:80]), np.sort(perm[80:])
    tr = SufficientStats.from_arrays(X[train], Y[train])
    ho = SufficientStats.from_arrays(X[held], Y[held])
    Sxx, Sxy, _ = tr.moments(center=False)
    U0, _, V0 = source_svd(C0)
    G, H = U0.T @ Sxx @ U0, U0.T @ Sxy @ V0
    A_p = U0.T @ mt.ReducedRank(Y[train], X[train]).fit(rank=2).coef @ V0
    a_u, a_v = sp.select_anchors(A_p, 2), sp.select_anchors(A_p.T, 2)
    A = A_p
    for _, row in table.iterrows():       # the warm-started path, by hand
        A = sp.sparse_smart(G, H, 2, row.lam, a_u, a_v, A_init=A, tol=1e-6,
                            warn=False).coef
        err = validation_loss(ho, tr, U0 @ A @ V0.T, center=False) / Y.shape[1]
        assert row.val_mse == pytest.approx(err, rel=1e-9)
    assert res.lam == table.lam[table.val_mse.idxmin()]
    assert res.chosen_by["lam"] == "validation (20% held out)"


def test_anchors_are_high_energy_and_independent():
    A = np.zeros((6, 3))
    A[2] = [5.0, 0, 0]
    A[4] = [4.9, 0.1, 0]          # nearly parallel to row 2
    A[0] = [0, 3.0, 0]
    A[5] = [0, 0, 0.5]
    assert sp.select_anchors(A, 2).tolist() == [0, 2]       # 2 and 0, not 2 and 4


def test_results_api(tmp_path, aligned):
    X, Y, C0, *_ = aligned
    cols = [f"x{j}" for j in range(30)]
    ys = [f"y{j}" for j in range(20)]
    df = pd.DataFrame(np.hstack([X, Y]), columns=cols + ys)
    src = pd.DataFrame(C0, index=cols, columns=ys)
    formula = " + ".join(ys) + " ~ " + " + ".join(cols)
    res = mt.SparseSMART.from_formula(formula, df, source=src).fit(rank=2, lam=0.1)
    arr = mt.SparseSMART(Y, X, source=C0, intercept=True).fit(rank=2, lam=0.1)
    np.testing.assert_allclose(res.params.to_numpy(), arr.coef, rtol=1e-8, atol=1e-10)
    text = res.summary().as_text()
    assert "SparseSMART" in text and "Source directions used:" in text
    new = df.iloc[:5]
    pred = res.predict(new)
    res.save(tmp_path / "sp.mtl")
    back = mt.load(tmp_path / "sp.mtl")
    pd.testing.assert_frame_equal(back.predict(new), pred)
    assert back.lam == 0.1
    np.testing.assert_array_equal(back.support[0], res.support[0])
    boot = arr.bootstrap(n_boot=2, random_state=0, source_sd=0)
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[0])
    spec = arr.bootstrap_spec("residual")
    Ystar = spec.fitted + spec.resid[spec.rows(rng)]
    ref = mt.SparseSMART(Ystar, X, source=C0, intercept=True).fit(rank=2, lam=0.1)
    np.testing.assert_allclose(boot.coef[0], ref.coef, rtol=1e-10, atol=1e-12)


def test_bad_input_is_named(aligned):
    X, Y, C0, *_ = aligned
    mod = mt.SparseSMART(Y, X, source=C0)
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        mod.fit(rank=2, lam=-1.0)
    with pytest.raises(ValueError, match="validation must be a finite number > 0 and <= 0.5"):
        mod.fit(rank=2, validation=0.9)
    with pytest.raises(ValueError, match="backend='cvxpy' solves the convex problem"):
        mod.fit(rank=2, lam=0.1, backend="cvxpy")
    with pytest.raises(ValueError, match="rank must be an integer in"):
        mod.fit(rank=21)


def test_badly_scaled_predictors_warn_as_every_penalised_model():
    """The group penalties act in the source's coordinates and are not invariant to the
    predictors' units: a column in units 1e6 times larger changes the fit, so the fit
    says so (as SMART and the other penalised models do)."""
    import statsmodels.api as sm

    g = sm.datasets.grunfeld.load_pandas().data
    g = g.assign(li=np.log(g.invest), lv=np.log(g.value), lc=np.log(g.capital),
                 year=g.year * 1e6)
    f = "li + lv ~ lc + year"
    src = mt.OLS.from_formula(f, g[g.firm != "IBM"]).fit()
    model = mt.SparseSMART.from_formula(f, g[g.firm == "IBM"].iloc[:10], source=src)
    with pytest.warns(mt.ValueWarning, match="SparseSMART: the predictors' scales differ"):
        model.fit(rank=1, lam=0.01)
