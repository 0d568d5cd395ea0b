"""The SMART revision's comparators: ReducedRankRidge and TwoStageTransfer.

Closed form against the augmented-data reduced-rank regression, CVXPY and a brute-force
search; the limits (ridge 0, full subspaces, a huge or dominated stage-2 penalty, an
identical source); tuning traces recomputed independently; the results API; bad input.
"""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.gram import kfold_stats, total_stats, validation_loss
from mtltransfer.models.revision import RIDGE_FACTORS, pooled_moments
from mtltransfer.solvers.prox import nuclear_norm_apg

from conftest import make_problem


@pytest.fixture(scope="module")
def sim():
    return mt.datasets.simulate_smart(120, 12, 6, rank=2, source_rank=4, sigma0=0.05,
                                      random_state=8)


def _rrs_objective(X, Y, C, ridge):
    n = X.shape[0]
    return 0.5 / n * np.sum((Y - X @ C) ** 2) + 0.5 * ridge * np.sum(C * C)


# ---- ReducedRankRidge: the closed form ----------------------------------------------------
def test_closed_form_is_reduced_rank_on_the_augmented_rows(sim):
    n, p = sim.X.shape
    ridge = 0.2
    res = mt.ReducedRankRidge(sim.Y, sim.X, intercept=True).fit(rank=2, ridge=ridge)
    Xc, Yc = sim.X - sim.X.mean(0), sim.Y - sim.Y.mean(0)
    Xa = np.vstack([Xc, np.sqrt(n * ridge) * np.eye(p)])
    Ya = np.vstack([Yc, np.zeros((p, sim.Y.shape[1]))])
    # reduced-rank regression of the augmented rows (no intercept: already centred)
    ref = mt.ReducedRank(Ya, Xa, intercept=False).fit(rank=2)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-9, atol=1e-12)
    assert np.linalg.matrix_rank(res.coef, tol=1e-9) == 2


def test_closed_form_matches_its_cvxpy_twin(sim):
    mod = mt.ReducedRankRidge(sim.Y, sim.X)
    fast = mod.fit(rank=2, ridge=0.05)
    ref = mod.fit(rank=2, ridge=0.05, backend="cvxpy")
    np.testing.assert_allclose(fast.coef, ref.coef, atol=1e-6)
    assert _rrs_objective(sim.X, sim.Y, fast.coef, 0.05) <= \
        _rrs_objective(sim.X, sim.Y, ref.coef, 0.05) + 1e-10
    # the source form's twin solves the same problem in the source's coordinates
    mod_s = mt.ReducedRankRidge(sim.Y, sim.X, source=sim.C0)
    a = mod_s.fit(rank=2, ridge=0.05, subspace_rank=(5, 4))
    b = mod_s.fit(rank=2, ridge=0.05, subspace_rank=(5, 4), backend="cvxpy")
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-6)


def test_rank_constrained_optimum_by_brute_force_and_random_feasible_points():
    """The rank constraint is not convex: check optimality directly. For q = 2 and rank 1,
    C = c v^T with v = (cos t, sin t) and, for each t, c the ridge fit of Y v on X (since
    ||Y - X c v^T||^2 = ||Y v - X c||^2 + ||Y v_perp||^2 and ||c v^T|| = ||c||): a fine
    grid over t is a brute-force search of the whole feasible set."""
    rng = np.random.default_rng(3)
    n, p, ridge = 30, 3, 0.4
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, 2)) + 0.5 * rng.standard_normal((n, 2))
    res = mt.ReducedRankRidge(Y, X, intercept=False).fit(rank=1, ridge=ridge)
    best = _rrs_objective(X, Y, res.coef, ridge)
    A = X.T @ X / n + ridge * np.eye(p)
    t = np.linspace(0.0, np.pi, 200001)
    V = np.stack([np.cos(t), np.sin(t)])                     # 2 x T
    c = np.linalg.solve(A, X.T @ Y @ V / n)                   # p x T
    obj = 0.5 / n * (np.sum(Y ** 2) - 2 * np.sum((X.T @ Y @ V) * c, axis=0) +
                     np.sum((X.T @ X @ c) * c, axis=0)) + 0.5 * ridge * np.sum(c * c, axis=0)
    assert best <= obj.min() + 1e-12
    assert best == pytest.approx(obj.min(), rel=1e-9)
    # random rank-1 points and small rank-1 perturbations of the solution do no better
    U, s, Vt = np.linalg.svd(res.coef)
    for _ in range(500):
        C = np.outer(rng.standard_normal(p), rng.standard_normal(2))
        assert _rrs_objective(X, Y, C, ridge) >= best
        u = U[:, 0] * s[0] + 1e-3 * rng.standard_normal(p)
        v = Vt[0] + 1e-3 * rng.standard_normal(2)
        assert _rrs_objective(X, Y, np.outer(u, v), ridge) >= best - 1e-14


def test_limits_reduced_rank_target_only_and_subspace(sim):
    mod = mt.ReducedRankRidge(sim.Y, sim.X)
    rrr = mt.ReducedRank(sim.Y, sim.X).fit(rank=2)
    np.testing.assert_array_equal(mod.fit(rank=2, ridge=0.0).coef, rrr.coef)
    target = mod.fit(rank=2, ridge=0.07)
    mod_s = mt.ReducedRankRidge(sim.Y, sim.X, source=sim.C0)
    full = mod_s.fit(rank=2, ridge=0.07, subspace_rank=(12, 6))
    np.testing.assert_allclose(full.coef, target.coef, rtol=1e-9, atol=1e-12)
    ssr = mt.SourceSubspaceRRR(sim.Y, sim.X, source=sim.C0).fit(rank=2, subspace_rank=4)
    np.testing.assert_allclose(mod_s.fit(rank=2, ridge=0.0, subspace_rank=4).coef,
                               ssr.coef, rtol=1e-12, atol=1e-14)
    # inside the subspaces: C = U0u M V0v^T
    U0, _, V0 = mod_s.source_svd
    C = mod_s.fit(rank=2, ridge=0.07, subspace_rank=(5, 3)).coef
    np.testing.assert_allclose(U0[:, 5:].T @ C, 0, atol=1e-12)
    np.testing.assert_allclose(C @ V0[:, 3:], 0, atol=1e-12)
    # df: reduced rank's count with the ridge's effective number of predictors
    w = np.linalg.eigvalsh(mod.moments()[0])
    assert target.df_model == pytest.approx(2 * (np.sum(w / (w + 0.07)) + 6 - 2))
    assert mod.fit(rank=2, ridge=0.0).df_model == rrr.df_model


def test_cv_table_is_the_folds_held_out_error(sim):
    mod = mt.ReducedRankRidge(sim.Y, sim.X, source=sim.C0)
    res = mod.fit()
    cv = res.tuning["cv"]
    assert res.chosen_by == {"rank": "RSC", "ridge": "5-fold CV",
                             "subspace_rank": "5-fold CV"}
    best = cv["cv_mean"].idxmin()
    assert (res.subspace_rank, res.ridge) == ((cv.d_u[best], cv.d_v[best]),
                                              cv.ridge[best])
    lam_max = np.linalg.eigvalsh(mod.moments()[0])[-1]
    np.testing.assert_allclose(np.unique(cv.ridge), np.array(RIDGE_FACTORS) * lam_max)
    # one candidate recomputed from the folds with the full coefficient matrix
    row = cv.iloc[len(cv) // 2]
    folds = kfold_stats(sim.X, sim.Y, 5)
    total = total_stats(folds)
    errs, sizes = [], []
    for f in folds:
        t = total - f
        Sxx, Sxy, _ = t.moments(center=mod.center)
        sub = mt.ReducedRankRidge(sim.Y, sim.X, source=sim.C0)
        U0, _, V0 = sub.source_svd
        Uu, Vv = U0[:, :int(row.d_u)], V0[:, :int(row.d_v)]
        G, H = Uu.T @ Sxx @ Uu, Uu.T @ Sxy @ Vv
        CR = np.linalg.solve(G + row.ridge * np.eye(len(G)), H) if row.ridge > 0 else \
            np.linalg.lstsq(G, H, rcond=None)[0]
        _, Q = np.linalg.eigh(CR.T @ (G + row.ridge * np.eye(len(G))) @ CR)
        Vr = Q[:, ::-1][:, :int(row["rank"])]
        errs.append(validation_loss(f, t, Uu @ CR @ Vr @ Vr.T @ Vv.T, center=mod.center))
        sizes.append(f.n)
    assert row.cv_mean == pytest.approx(np.dot(sizes, errs) / np.sum(sizes), rel=1e-8)
    given = mod.fit(rank=2)              # the rank given, the rest cross-validated
    assert given.chosen_by == {"rank": "given", "ridge": "5-fold CV",
                               "subspace_rank": "5-fold CV"}
    assert set(given.tuning["cv"]["rank"]) == {2}
    # rank by CV: ranks 1..min(p, q) compete
    rc = mt.ReducedRankRidge(sim.Y, sim.X).fit(rank_method="cv")
    assert set(rc.tuning["cv"]["rank"]) == set(range(1, 7))
    assert rc.chosen_by["rank"] == "5-fold CV"


def test_gcv_is_the_plug_in_criterion(sim):
    n, p = sim.X.shape
    q = sim.Y.shape[1]
    mod = mt.ReducedRankRidge(sim.Y, sim.X)
    res = mod.fit(rank=2, ridge_method="gcv")
    g = res.tuning["gcv"]
    assert res.ridge == g.loc[g["gcv"].idxmin(), "ridge"]
    lam = g.ridge[3]
    C = mod.fit(rank=2, ridge=lam).coef
    hat = sim.X @ np.linalg.solve(sim.X.T @ sim.X + n * lam * np.eye(p), sim.X.T)
    rss = np.sum((sim.Y - sim.X @ C) ** 2)
    df = 2 * np.trace(hat)
    assert g.gcv[3] == pytest.approx(n * q * rss / (n * q - df) ** 2, rel=1e-9)


# ---- TwoStageTransfer ------------------------------------------------------------------
@pytest.fixture(scope="module")
def two():
    rng = np.random.default_rng(5)
    n, ns, p, q = 60, 240, 8, 5
    X, Y, C = make_problem(n, p, q, rank=2, seed=11)
    Xs = rng.standard_normal((ns, p)) + 2.0
    Ys = 4.0 + Xs @ (C + 0.1 * rng.standard_normal((p, q))) + \
        0.3 * rng.standard_normal((ns, q))
    return X, Y, Xs, Ys


def _nuc_objective(Sxx, Sxy, Syy, C, lam, C0=0.0):
    return 0.5 * np.trace(Syy) - np.sum(Sxy * C) + 0.5 * np.sum((Sxx @ C) * C) + \
        lam * np.linalg.norm(C - C0, "nuc")


def test_stage_one_is_the_pooled_nuclear_norm_fit(two):
    X, Y, Xs, Ys = two
    mod = mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=Xs,
                              intercept=True)
    res = mod.fit(lam_pool=0.05, lam_delta=1e8, tol=1e-11, max_iter=100000)
    # each study centred by its own means, rows stacked: a plain nuclear-norm fit
    Xp = np.vstack([Xs - Xs.mean(0), X - X.mean(0)])
    Yp = np.vstack([Ys - Ys.mean(0), Y - Y.mean(0)])
    ref = mt.NuclearNorm(Yp, Xp, intercept=False).fit(lam=0.05, tol=1e-11, max_iter=100000)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
    np.testing.assert_array_equal(res.contrast_params.to_numpy(), 0.0)   # Delta = 0
    np.testing.assert_allclose(res.intercept, Y.mean(0) - res.coef.T @ X.mean(0))
    assert res.converged and res.history["stage"].iloc[-1] == 2


def test_identical_source_gives_the_target_nuclear_norm_fit(two):
    """With the target's own rows as source, the pooled moments are the target's, so W is
    the target's nuclear-norm fit at lam_pool; its optimality gives ||Sxy - Sxx W||_2 <=
    lam_pool, so any lam_delta >= lam_pool leaves Delta = 0."""
    X, Y, _, _ = two
    mod = mt.TwoStageTransfer(Y, X, source_endog=Y, source_exog=X, intercept=True)
    for a, b in zip(pooled_moments(mod.source_stats, mod.stats), mod.moments()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    res = mod.fit(lam_pool=0.1, lam_delta=0.1, tol=1e-11, max_iter=100000)
    ref = mt.NuclearNorm(Y, X, intercept=True).fit(lam=0.1, tol=1e-11, max_iter=100000)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
    np.testing.assert_allclose(res.contrast_params.to_numpy(), 0.0, atol=1e-8)


def test_two_stages_match_their_cvxpy_twins(two):
    X, Y, Xs, Ys = two
    mod = mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=Xs,
                              intercept=True)
    lam1, lam2 = 0.2, 0.05
    fast = mod.fit(lam_pool=lam1, lam_delta=lam2, tol=1e-11, max_iter=100000)
    ref = mod.fit(lam_pool=lam1, lam_delta=lam2, backend="cvxpy")
    pooled = pooled_moments(mod.source_stats, mod.stats)
    W_f, W_c = fast.pooled_params.to_numpy(), ref.pooled_params.to_numpy()
    assert _nuc_objective(*pooled, W_f, lam1) == pytest.approx(
        _nuc_objective(*pooled, W_c, lam1), rel=1e-7)
    np.testing.assert_allclose(W_f, W_c, atol=1e-5)
    # stage 2 compared on the same W (the fast one)
    from mtltransfer.solvers.cvx import nuclear_norm_cvx
    C_c, _ = nuclear_norm_cvx(*mod.moments(), lam2, C0=W_f)
    target = mod.moments()
    assert _nuc_objective(*target, fast.coef, lam2, W_f) == pytest.approx(
        _nuc_objective(*target, C_c, lam2, W_f), rel=1e-7)
    np.testing.assert_allclose(fast.coef, C_c, atol=1e-5)


def test_cv_of_both_stages(two):
    X, Y, Xs, Ys = two
    mod = mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=Xs,
                              intercept=True)
    res = mod.fit()
    assert res.chosen_by == {"lam_pool": "5-fold CV", "lam_delta": "5-fold CV"}
    for name, attr in (("cv_pool", "lam_pool"), ("cv_delta", "lam_delta")):
        t = res.tuning[name]
        assert getattr(res, attr) == pytest.approx(t.loc[t["cv_mse"].idxmin(), "lam"])
    # the stage-1 trace: W fitted on source + the fold's training rows, scored on the fold
    t = res.tuning["cv_pool"]
    lam = t.lam[2]
    folds = kfold_stats(X, Y, 5)
    total = total_stats(folds)
    err = 0.0
    for f in folds:
        tr = total - f
        W = nuclear_norm_apg(*pooled_moments(mod.source_stats, tr), lam, tol=1e-10,
                             max_iter=100000).coef
        err += f.n * validation_loss(f, tr, W)
    assert t.cv_mse[2] == pytest.approx(err / (total.n * 5), rel=1e-4)
    # the source helps here (a close source with many rows): better than the target alone
    C = make_problem(60, 8, 5, rank=2, seed=11)[2]
    nn = mt.NuclearNorm(Y, X, intercept=True).fit()
    assert np.linalg.norm(res.coef - C) < np.linalg.norm(nn.coef - C)


def test_formula_source_data_dask_and_results_api(two, tmp_path):
    X, Y, Xs, Ys = two
    rng = np.random.default_rng(2)

    def frame(X, Y, g):
        df = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
        df["g"] = g
        for j in range(Y.shape[1]):
            df[f"y{j}"] = Y[:, j]
        return df

    tgt = frame(X, Y, rng.choice(["u", "v", "w"], len(X)))
    src = frame(Xs, Ys, rng.choice(["u", "v", "w"], len(Xs)))
    formula = "y0 + y1 + y2 + y3 + y4 ~ a + np.exp(b / 4) + c + C(g)"
    mod = mt.TwoStageTransfer.from_formula(formula, tgt, source_data=src)
    res = mod.fit(lam_pool=0.05, lam_delta=0.02, tol=1e-10, max_iter=20000)
    # the same as arrays: the source's design built with the target's formula
    Xd = mod.exog
    Xsd, _, _ = mod.data.exog_for(src, "source_data")
    arr = mt.TwoStageTransfer(Y, Xd, source_endog=Ys, source_exog=Xsd, intercept=True)
    np.testing.assert_allclose(arr.fit(lam_pool=0.05, lam_delta=0.02, tol=1e-10,
                                       max_iter=20000).coef, res.coef, atol=1e-8)
    np.testing.assert_allclose(np.exp(src.b / 4), Xsd[:, 3])
    # a Dask frame of the source gives the same statistics
    import dask.dataframe as dd
    dmod = mt.TwoStageTransfer.from_formula(formula, tgt,
                                            source_data=dd.from_pandas(src, npartitions=3))
    np.testing.assert_allclose(dmod.source_stats.Cxx, mod.source_stats.Cxx, rtol=1e-10)
    np.testing.assert_allclose(dmod.source_stats.Cxy, mod.source_stats.Cxy, rtol=1e-10)
    assert dmod.source_nobs == len(src)
    # predict, summary, save/load
    new = tgt.iloc[:7]
    np.testing.assert_allclose(res.predict(new).to_numpy(),
                               res.params.to_numpy().T.dot(Xd[:7].T).T +
                               res.intercept.to_numpy())
    text = res.summary().as_text()
    assert "Two-stage nuclear-norm transfer" in text
    assert f"Source rows: {len(src)}" in " ".join(text.split())
    res.save(tmp_path / "two.mtl")
    back = mt.load(tmp_path / "two.mtl")
    pd.testing.assert_frame_equal(back.predict(new), res.predict(new))
    pd.testing.assert_frame_equal(back.pooled_params, res.pooled_params)
    assert back.lam_pool == 0.05 and back.model.source_nobs == len(src)
    rr = mt.ReducedRankRidge.from_formula(formula, tgt).fit(rank=2, ridge=0.01)
    rr.save(tmp_path / "rr.mtl")
    back = mt.load(tmp_path / "rr.mtl")
    pd.testing.assert_frame_equal(back.predict(new), rr.predict(new))
    assert back.ridge == 0.01 and "Reduced-rank ridge" in back.summary().as_text()


def test_bootstrap_replays_the_fit(two):
    X, Y, Xs, Ys = two
    rr = mt.ReducedRankRidge(Y, X).fit(rank=2, ridge=0.01)
    boot = rr.bootstrap(n_boot=8, random_state=0)
    # every replicate is refitted at rank 2 (the hyperparameters are replayed)
    assert all(np.linalg.matrix_rank(c, tol=1e-9) == 2 for c in boot.coef)
    assert np.all(boot.coef.std(axis=0) > 0)
    mod = mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=Xs,
                              intercept=True)
    res = mod.fit(lam_pool=0.05, lam_delta=0.02)
    boot = res.bootstrap(n_boot=4, random_state=1)
    # replicate 0 by hand: the residual resample of the target, the same source
    rng = np.random.default_rng(np.random.SeedSequence(1).spawn(4)[0])
    spec = res.bootstrap_spec("residual")
    rows = spec.rows(rng)
    Ystar = spec.fitted + spec.resid[rows]
    ref = mt.TwoStageTransfer(Ystar, X, source_stats=mod.source_stats,
                               intercept=True).fit(
        lam_pool=0.05, lam_delta=0.02)
    np.testing.assert_allclose(boot.coef[0], ref.coef, rtol=1e-10, atol=1e-12)


# ---- bad input -------------------------------------------------------------------------
def test_bad_input_is_named(sim, two):
    mod = mt.ReducedRankRidge(sim.Y, sim.X)
    with pytest.raises(ValueError, match="ridge must be a finite number >= 0"):
        mod.fit(rank=2, ridge=-1.0)
    with pytest.raises(TypeError, match="ridge must be a finite number"):
        mod.fit(rank=2, ridge="big")
    with pytest.raises(ValueError, match="rank must be an integer in"):
        mod.fit(rank=7)
    with pytest.raises(ValueError, match="rank_method"):
        mod.fit(rank_method="aic")
    with pytest.raises(ValueError, match="ridge_method"):
        mod.fit(ridge_method="loo")
    with pytest.raises(ValueError, match="subspace_rank applies"):
        mod.fit(subspace_rank=3)
    with pytest.raises(ValueError, match="ridge_method='gcv' needs"):
        mt.ReducedRankRidge(sim.Y, sim.X, source=sim.C0).fit(ridge_method="gcv")
    with pytest.raises(ValueError, match="d_u must be in"):
        mt.ReducedRankRidge(sim.Y, sim.X, source=sim.C0).fit(rank=3, subspace_rank=2)
    with pytest.raises(ValueError, match="source must be a 12 x 6"):
        mt.ReducedRankRidge(sim.Y, sim.X, source=np.ones((3, 3)))
    with pytest.raises(TypeError, match="unexpected keyword"):
        mod.fit(lam=1.0)
    X, Y, Xs, Ys = two
    with pytest.raises(TypeError, match="needs the source"):
        mt.TwoStageTransfer(Y, X)
    with pytest.raises(TypeError, match="needs source_exog"):
        mt.TwoStageTransfer(Y, X, source_endog=Ys)
    with pytest.raises(ValueError, match="source_exog must have 8 columns"):
        mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=Xs[:, :5])
    with pytest.raises(ValueError, match="source_endog must have 5 columns"):
        mt.TwoStageTransfer(Y, X, source_endog=Ys[:, :2], source_exog=Xs)
    with pytest.raises(ValueError, match="same number of rows"):
        mt.TwoStageTransfer(Y, X, source_endog=Ys[:10], source_exog=Xs)
    with pytest.raises(TypeError, match="source_data= takes"):
        mt.TwoStageTransfer(Y, X, source_data=pd.DataFrame(Xs))
    with pytest.raises(TypeError, match="source_stats must be"):
        mt.TwoStageTransfer(Y, X, source_stats=Xs)
    bad = Xs.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=bad)
    kept = mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=bad, missing="drop")
    assert kept.source_nobs == len(Xs) - 1
    assert not np.isnan(Xs).any() and bad[3, 1] != bad[3, 1]    # inputs untouched
    mod = mt.TwoStageTransfer(Y, X, source_endog=Ys, source_exog=Xs,
                              intercept=True)
    with pytest.raises(ValueError, match="lam_pool must be a finite number >= 0"):
        mod.fit(lam_pool=-1.0, lam_delta=0.1)
    with pytest.raises(ValueError, match="lam_delta must be a finite number >= 0"):
        mod.fit(lam_pool=0.1, lam_delta=np.inf)
    with pytest.raises(ValueError, match="n_folds"):
        mod.fit(n_folds=1)


def test_reduced_rank_ridge_on_dask_equals_the_in_memory_fit(sim):
    import dask.dataframe as dd

    xn, yn = [f"x{j}" for j in range(12)], [f"Y{j}" for j in range(6)]
    df = pd.concat([pd.DataFrame(sim.X, columns=xn), pd.DataFrame(sim.Y, columns=yn)],
                   axis=1)
    formula = " + ".join(yn) + " ~ " + " + ".join(xn)
    src = pd.DataFrame(sim.C0, index=xn, columns=yn)
    for kwargs in ({}, {"source": src}):
        on_dask = mt.ReducedRankRidge.from_formula(
            formula, dd.from_pandas(df, npartitions=3), **kwargs).fit()
        in_memory = mt.ReducedRankRidge.from_formula(formula, df, folds="hash",
                                                     **kwargs).fit()
        assert on_dask.rank == in_memory.rank
        assert on_dask.ridge == pytest.approx(in_memory.ridge, rel=1e-12)   # same grid point
        assert on_dask.hyperparameters.get("subspace_rank") == \
            in_memory.hyperparameters.get("subspace_rank")
        np.testing.assert_allclose(on_dask.params, in_memory.params, rtol=1e-8,
                                   atol=1e-10)
        pd.testing.assert_frame_equal(on_dask.tuning["cv"], in_memory.tuning["cv"],
                                      rtol=1e-8)
        # rank 2 at ridge 0: the reduced-rank fit from the statistics' pseudo-rows
        a = mt.ReducedRankRidge.from_formula(formula, dd.from_pandas(df, npartitions=3),
                                             **kwargs).fit(rank=2, ridge=0.0)
        b = mt.ReducedRankRidge.from_formula(formula, df, folds="hash", **kwargs).fit(
            rank=2, ridge=0.0)
        np.testing.assert_allclose(a.params, b.params, rtol=1e-8, atol=1e-10)


def test_singular_value_thresholding_survives_a_gesdd_failure(monkeypatch):
    """LAPACK's gesdd failed to converge on a finite 300 x 200 iterate of the two-stage CV
    path (Model-III); svt then uses gesvd and returns the same thresholding."""
    from scipy import linalg

    from mtltransfer.solvers import prox

    Z = np.random.default_rng(0).standard_normal((30, 20))
    want, s_want = prox.svt(Z, 1.5)
    real_svd, drivers = linalg.svd, []

    def failing_gesdd(a, *args, lapack_driver="gesdd", **kwargs):
        drivers.append(lapack_driver)
        if lapack_driver == "gesdd":
            raise linalg.LinAlgError("SVD did not converge")
        return real_svd(a, *args, lapack_driver=lapack_driver, **kwargs)

    monkeypatch.setattr(prox.linalg, "svd", failing_gesdd)
    got, s_got = prox.svt(Z, 1.5)
    assert drivers == ["gesdd", "gesvd"]
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(s_got, s_want, atol=1e-12)
