"""The rrpack comparators SparseReducedRank, SOFAR and RSSVD: optimality conditions of the
nonconvex solvers, the CVXPY twin of SRRR's convex U-step, limits, and the results API."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.solvers import sofar as sf
from mtltransfer.solvers import sparse_rrr as sr
from mtltransfer.solvers.cvx import srrr_u_step_cvx
from mtltransfer.solvers.linear import reduced_rank


@pytest.fixture(scope="module")
def sim():
    return mt.datasets.simulate_smart(80, 10, 6, rank=2, source_rank=4, sigma0=0.05,
                                      random_state=3)


@pytest.fixture(scope="module")
def sparse_sim():
    """A row- and column-sparse rank-2 truth: 4 of 12 predictors, 4 of 8 responses."""
    rng = np.random.default_rng(11)
    n, p, q = 120, 12, 8
    U = np.zeros((p, 2))
    U[:4] = rng.normal(size=(4, 2))
    V = np.zeros((q, 2))
    V[:4] = rng.normal(size=(4, 2))
    C = U @ V.T
    X = rng.normal(size=(n, p))
    Y = X @ C + 0.3 * rng.normal(size=(n, q))
    return X, Y, C


def _moments(X, Y):
    return mt.SufficientStats.from_arrays(X, Y).moments(center=False)


# ---- SRRR -----------------------------------------------------------------------------
def test_srrr_u_step_matches_cvxpy(sim):
    Sxx, Sxy, Syy = _moments(sim.X, sim.Y)
    V = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 2)))[0]
    w = np.linspace(0.5, 2.0, 10)
    lam_max = sr.srrr_lam_max(Sxy, w)

    def obj(U):
        return 0.5 * np.sum((Sxx @ U) * U) - np.sum((Sxy @ V) * U) + \
            lam * np.sum(w * np.linalg.norm(U, axis=1))

    for lam in (0.05 * lam_max, 0.3 * lam_max):        # the twin is re-solved, not rebuilt
        U, _, _ = sr.srrr_u_step(Sxx, Sxy @ V, lam, w, tol=1e-12, max_iter=100000)
        U_ref, val = srrr_u_step_cvx(Sxx, Sxy @ V, lam, w)
        assert obj(U) == pytest.approx(val, rel=1e-6)
        assert obj(U) <= obj(U_ref) + 1e-9 * abs(val)
        np.testing.assert_allclose(U, U_ref, atol=1e-5)
    # a strong penalty removes some rows, the weak one keeps all
    assert 0 < np.sum(np.linalg.norm(U, axis=1) > 0) < 10


def test_srrr_kkt_limits_and_path(sparse_sim):
    X, Y, C = sparse_sim
    Sxx, Sxy, Syy = _moments(X, Y)
    lam = 0.1 * sr.srrr_lam_max(Sxy, np.ones(12))
    sol = sr.srrr(Sxx, Sxy, Syy, 2, lam, tol=1e-10, max_iter=5000)
    assert sol.converged
    kkt = sr.srrr_kkt(Sxx, Sxy, sol.extra["U"], sol.extra["V"], lam, np.ones(12))
    assert kkt["u_step"] < 1e-7 and kkt["v_step"] < 1e-6
    V = sol.extra["V"]
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-12)
    # the objective never increases along the block coordinate descent
    assert np.all(np.diff(sol.history["objective"]) <= 1e-12)
    # the penalty finds the four true rows
    np.testing.assert_array_equal(sol.extra["support"], np.arange(12) < 4)
    # lam = 0 is reduced-rank regression; lam above lam_max gives C = 0
    np.testing.assert_allclose(sr.srrr(Sxx, Sxy, Syy, 2, 0.0).coef,
                               reduced_rank(Sxx, Sxy, 2)[0], atol=1e-8)
    assert not np.any(sr.srrr(Sxx, Sxy, Syy, 2, 1.01 * sr.srrr_lam_max(Sxy, np.ones(12)))
                      .coef)
    res = mt.SparseReducedRank(Y, X).fit(rank=2)
    path = res.tuning["ic_path"]
    assert res.lam == path.loc[path["ic"].idxmin(), "lam"]
    assert res.hyperparameters["n_selected"] == 4
    assert res.df_model == 2 * (4 + 8 - 2)


# ---- SOFAR ----------------------------------------------------------------------------
def test_sofar_admm_reaches_a_stationary_point(sparse_sim):
    X, Y, C = sparse_sim
    Sxx, Sxy, Syy = _moments(X, Y)
    (U0, d0, V0), weights, lam_max = sf.sofar_start(Sxx, Sxy, 2)
    lams = tuple(0.01 * m for m in lam_max)
    sol = sf.sofar_admm(Sxx, Sxy, Syy, lams, weights, U0, d0, V0, tol=1e-10,
                        max_iter=20000, mu=0.3 * sr.lipschitz(Sxx))
    assert sol.converged
    kkt = sf.sofar_kkt(Sxx, Sxy, sol, lams, weights)
    scale = np.linalg.norm(Sxy)
    for name, value in kkt.items():
        assert value < 1e-6 * max(scale, 1), (name, value)
    U, V = sol.extra["U"], sol.extra["V"]
    np.testing.assert_allclose(U.T @ U, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-10)
    # entrywise sparsity where the truth is zero, on both sides
    A, B = sol.extra["A"], sol.extra["B"]
    assert np.all(A[4:] == 0) and np.all(B[4:] == 0)
    # no penalty: the start (reduced-rank regression) is already stationary
    free = sf.sofar_admm(Sxx, Sxy, Syy, (0.0, 0.0, 0.0), weights, U0, d0, V0, tol=1e-10)
    np.testing.assert_allclose(free.coef, reduced_rank(Sxx, Sxy, 2)[0], atol=1e-8)


def test_sofar_tuning_criteria(sparse_sim):
    X, Y, C = sparse_sim
    mod = mt.SOFAR(Y, X)
    bic = mod.fit(rank=2, criterion="BIC")
    path = bic.tuning["ic_path"]
    best = path["ic"].idxmin()
    assert bic.lam == pytest.approx((path.lam_a[best], path.lam_b[best], path.lam_d[best]))
    cv = mod.fit(rank=2)
    assert cv.chosen_by["lam"] == "5-fold CV"
    t = cv.tuning["cv"]
    assert cv.lam[0] == pytest.approx(t.loc[t["cv_mse"].idxmin(), "t"] *
                                      sf.sofar_start(*mod.moments()[:2], 2)[2][0])
    rrr = mt.ReducedRank(Y, X).fit(rank=2)
    # on a sparse truth the sparse fits beat reduced-rank regression
    for res in (bic, cv):
        assert np.linalg.norm(res.coef - C) < np.linalg.norm(rrr.coef - C)
    with pytest.raises(ValueError, match="criterion"):
        mod.fit(rank=2, criterion="AIC")


# ---- RSSVD ----------------------------------------------------------------------------
def test_rssvd_layer_optimality_and_unpenalised_limit(sparse_sim):
    X, Y, C = sparse_sim
    Sxx, Sxy, Syy = _moments(X, Y)
    P, s, Qt = np.linalg.svd(reduced_rank(Sxx, Sxy, 1)[0])
    wu, wv, wd = np.abs(P[:, 0]) ** -1.0, np.abs(Qt[0]) ** -1.0, 1.0
    lam = 0.02
    d, u, v, it, conv = sr.unit_rank_fit(Sxx, Sxy, Syy, lam, wd, wu, wv, P[:, 0], Qt[0],
                                         tol=1e-12, max_iter=5000)
    assert conv and d > 0
    kkt = sr.rssvd_layer_kkt(Sxx, Sxy, d, u, v, lam, wd, wu, wv)
    assert kkt["b_step"] < 1e-8 and kkt["c_step"] < 1e-8
    assert 0 < np.count_nonzero(u) < 12
    # without a penalty the layer is the rank-one reduced-rank fit
    d0, u0, v0, _, _ = sr.unit_rank_fit(Sxx, Sxy, Syy, 0.0, wd, wu, wv, P[:, 0], Qt[0],
                                        tol=1e-13, max_iter=5000)
    np.testing.assert_allclose(d0 * np.outer(u0, v0), reduced_rank(Sxx, Sxy, 1)[0],
                               atol=1e-7)
    res = mt.RSSVD(Y, X).fit(rank=2)
    path = res.tuning["ic_path"]
    assert np.all(np.isfinite(res.lam)) and len(res.lam) == 2
    for k in (1, 2):
        layer = path[path.layer == k]
        assert res.lam[k - 1] == layer.loc[layer["ic"].idxmin(), "lam"]
    assert np.linalg.norm(res.coef - C) < np.linalg.norm(
        mt.ReducedRank(Y, X).fit(rank=2).coef - C)
    # the chosen penalties reproduce the fit (from another start: to the solver's tol)
    np.testing.assert_allclose(mt.RSSVD(Y, X).fit(lam=res.lam, rank=2).coef, res.coef,
                               atol=1e-5 * np.abs(res.coef).max())


# ---- results API ----------------------------------------------------------------------
@pytest.mark.parametrize("model", [mt.SparseReducedRank, mt.SOFAR, mt.RSSVD])
def test_results_api(model, sim, tmp_path):
    xn, yn = [f"x{j}" for j in range(10)], [f"Y{j}" for j in range(6)]
    df = pd.concat([pd.DataFrame(sim.X, columns=xn), pd.DataFrame(sim.Y, columns=yn)],
                   axis=1)
    formula = " + ".join(yn) + " ~ " + " + ".join(xn)
    res = model.from_formula(formula, df).fit(rank=2)
    arr = model(sim.Y, np.column_stack([np.ones(80), sim.X])).fit(rank=2)
    np.testing.assert_allclose(arr.coef, res.coef, atol=1e-8)   # the constant: intercept
    assert model._method in res.summary().as_text()
    assert res.bic == pytest.approx(-2 * res.llf + np.log(80) * res.k_params, rel=1e-12)
    assert all(isinstance(v, pd.DataFrame) for v in res.tuning.values())
    h = res.history
    if model is mt.RSSVD:    # fitted layer by layer: iterations counted, no joint history
        assert len(h) == 0 and res.n_iter > 0
    else:
        assert h.index[0] == 1 and h.index[-1] == len(h) == res.n_iter
    # the intercept makes the mean prediction the mean response
    np.testing.assert_allclose(res.fittedvalues.mean().to_numpy(), sim.Y.mean(0),
                               atol=1e-10)
    res.save(tmp_path / "r.mtl")
    back = mt.load(tmp_path / "r.mtl")
    pd.testing.assert_frame_equal(back.predict(df.iloc[:5]), res.predict(df.iloc[:5]))
    boot = res.bootstrap(n_boot=4, random_state=0)
    assert boot.bse.shape == (10, 6) and np.all(np.isfinite(boot.bse.to_numpy()))
    with pytest.raises(ValueError, match="backend"):
        model(sim.Y, sim.X).fit(rank=2, backend="cvxpy")
    with pytest.raises(ValueError, match="rank"):
        model(sim.Y, sim.X).fit(rank=7)


# ---- NuclearContrast's faster path -----------------------------------------------------
def test_gram_svt_and_nuclear_contrast_cv_match_the_reference(sim):
    from mtltransfer.solvers.contrast import svt_gram
    from mtltransfer.solvers.prox import svt

    Z = np.random.default_rng(2).normal(size=(10, 6))
    for M in (Z, Z.T):
        for t in (0.0, 1.0, 2.5, 100.0):
            C_ref, s_ref = svt(M, t)
            C, s = svt_gram(M, t)
            np.testing.assert_allclose(C, C_ref, atol=1e-12)
            np.testing.assert_allclose(np.sort(s)[::-1], s_ref[s_ref > 0], rtol=1e-12)
    mod = mt.NuclearContrast(sim.Y, sim.X, source=sim.C0)
    lam, table, _ = mod._cv(12, 4, 1e-8, 5000, False)
    ref = mt.NuclearContrast(sim.Y, sim.X, source=sim.C0)
    ref._cv_threshold = None                       # the reference path: prox.svt
    lam_ref, table_ref, _ = ref._cv(12, 4, 1e-8, 5000, False)
    assert lam == lam_ref
    np.testing.assert_allclose(table.cv_mse, table_ref.cv_mse, rtol=1e-9)
