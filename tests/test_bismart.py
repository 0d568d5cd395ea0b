"""BI-SMART: certified source blocks, restricted reduced-rank fits.

Rotation invariance (tied source singular values rotated within their block: the same
fit to 1e-8, SMART's differs); the special cases (every direction: ReducedRank; leading
singleton blocks: the source-subspace RRR; no direction: zero); the restricted fit's
optimality conditions, a random search and its CVXPY twin; the knapsack against
enumeration; the cut rule, the certificate's coverage and Wedin's bound; the
cross-validation table recomputed by hand; the results API (summary, predict,
save/load, bootstrap replaying the fit); bad input.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ortho_group

import mtltransfer as mt
from mtltransfer.gram import kfold_stats, total_stats, validation_loss
from mtltransfer.smart import blocks as bk
from mtltransfer.smart.problem import source_svd
from mtltransfer.solvers import linear as lin


@pytest.fixture(scope="module")
def tied():
    """A source with tied singular values (4, 4, 4, 2, 2, 1), the same matrix written
    with its singular vectors rotated within the tied blocks, and a target inside the
    first block's spans but along none of either basis' vectors."""
    rng = np.random.default_rng(1)
    p, q, n = 12, 8, 80
    U = np.linalg.qr(rng.standard_normal((p, 6)))[0]
    V = np.linalg.qr(rng.standard_normal((q, 6)))[0]
    D = np.array([4.0, 4.0, 4.0, 2.0, 2.0, 1.0])
    Q = np.eye(6)
    Q[:3, :3] = ortho_group.rvs(3, random_state=3)
    Q[3:5, 3:5] = ortho_group.rvs(2, random_state=4)
    C0a = (U * D) @ V.T
    C0b = ((U @ Q) * D) @ (V @ Q).T
    A = ortho_group.rvs(3, random_state=5)[:, :2]
    B = ortho_group.rvs(3, random_state=6)[:, :2]
    C = U[:, :3] @ A @ np.diag([3.0, 2.0]) @ (V[:, :3] @ B).T
    X = rng.standard_normal((n, p))
    Y = X @ C + 0.5 * rng.standard_normal((n, q))
    return X, Y, C0a, C0b, C


@pytest.fixture(scope="module")
def sim():
    return mt.datasets.simulate_smart(150, 30, 20, rank=3, source_rank=8, sigma0=0.01,
                                      random_state=2)


# ---- rotation invariance ---------------------------------------------------------------
def test_rotation_within_tied_blocks_leaves_the_fit_unchanged(tied):
    X, Y, C0a, C0b, _ = tied
    assert np.abs(C0a - C0b).max() < 1e-14                     # the same source matrix
    # ... whose SVD picks other vectors within the tied block
    Ua, Ub = source_svd(C0a)[0][:, :3], source_svd(C0b)[0][:, :3]
    assert np.abs(Ua - Ub).max() > 0.1
    for kwargs in ({}, {"rank": 2, "rule": "leading", "budget": 3},
                   {"rank": 2, "rule": "energy", "budget": 5}):
        a = mt.BISMART(Y, X, source=C0a).fit(source_sd=0, **kwargs)
        b = mt.BISMART(Y, X, source=C0b).fit(source_sd=0, **kwargs)
        np.testing.assert_allclose(a.coef, b.coef, rtol=0, atol=1e-8)
        assert (a.rule, a.budget, a.subspace_rank) == (b.rule, b.budget, b.subspace_rank)
    # the blocks are the tied groups
    assert [tuple(r) for r in a.blocks[["start", "stop"]].to_numpy()] == \
        [(0, 3), (3, 5), (5, 6), (6, 12)]


def test_smart_depends_on_the_rotation(tied):
    """SMART's entrywise penalty acts on individual source singular vectors."""
    X, Y, C0a, C0b, _ = tied
    a = mt.SMART(Y, X, source=C0a).fit(rank=2, structural_rank=(2, 2), lam=0.05)
    b = mt.SMART(Y, X, source=C0b).fit(rank=2, structural_rank=(2, 2), lam=0.05)
    assert a.converged and b.converged
    assert np.abs(a.coef - b.coef).max() > 1e-3


# ---- special cases -----------------------------------------------------------------------
def test_every_direction_is_reduced_rank_and_none_is_zero(sim):
    mod = mt.BISMART(sim.Y, sim.X, source=sim.C0)
    res = mod.fit(rank=3, rule="target")
    ref = mt.ReducedRank(sim.Y, sim.X).fit(rank=3)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.intercept, ref.intercept, rtol=1e-10, atol=1e-12)
    assert res.subspace_rank == (30, 20) and res.df_model == 3 * (30 + 20 - 3)
    zero = mt.BISMART(sim.Y, sim.X, source=sim.C0, intercept=True).fit(rank=3,
                                                                       rule="zero")
    assert np.all(zero.coef == 0) and zero.df_model == 0
    np.testing.assert_allclose(zero.intercept, sim.Y.mean(0), rtol=1e-12)


def test_leading_singleton_blocks_are_the_source_subspace_rrr(sim):
    """The design's source values 1, ..., 10 (step 9/7) are far apart against its error
    0.01: every leading value is its own block, and the leading rule at budget d is the
    reduced-rank fit in the source's leading d-dimensional subspaces."""
    res = mt.BISMART(sim.Y, sim.X, source=sim.C0).fit(rank=3, rule="leading", budget=5)
    sizes = res.blocks["size"].to_numpy()
    assert np.all(sizes[:8] == 1) and sizes[8] == 30 - 8
    ref = mt.ReducedRankRidge(sim.Y, sim.X, source=sim.C0).fit(rank=3, ridge=0.0,
                                                                  subspace_rank=5)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-10, atol=1e-12)
    assert res.selected[0].tolist() == [0, 1, 2, 3, 4]
    # the same optimum as SMART's constrained to the leading 5 (a penalty so large
    # that no leakage survives), to SMART's solver tolerance
    sm = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=3, structural_rank=(5, 5),
                                                    lam=1e3, tol=1e-9, max_iter=20000)
    assert np.abs(sm.coef - res.coef).max() < 1e-5 * np.abs(res.coef).max()


def test_the_estimated_certificate_recovers_the_source_noise(sim):
    res = mt.BISMART(sim.Y, sim.X, source=sim.C0).fit(rank=3, rule="leading", budget=5)
    assert res.chosen_by["source_sd"] == "estimated"
    assert 0.007 < res.source_sd < 0.013                       # sigma0 = 0.01
    assert res.eps0 == pytest.approx(res.source_sd * (np.sqrt(30) + np.sqrt(20) +
                                                      np.sqrt(6)), rel=1e-12)


# ---- the restricted fit ------------------------------------------------------------------
def test_restricted_fit_is_stationary_and_beats_random_feasible_points(sim):
    res = mt.BISMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, rule="energy", budget=6)
    U0, _, V0 = res.model.source_svd
    I_u, I_v = res.selected
    U, V = U0[:, I_u], V0[:, I_v]
    Sxx, Sxy, Syy = res.model.moments()
    G, H = U.T @ Sxx @ U, U.T @ Sxy @ V
    M = U.T @ res.coef @ V
    np.testing.assert_allclose(U @ M @ V.T, res.coef, atol=1e-12)  # C lies in the spans
    assert np.linalg.matrix_rank(M, tol=1e-9) == 2
    # first-order conditions on the rank-2 manifold: the gradient G M - H is orthogonal
    # to M's row and column spaces
    grad = G @ M - H
    Um, _, Vmt = np.linalg.svd(M)
    scale = np.abs(H).max()
    assert np.abs(grad @ Vmt[:2].T).max() < 1e-10 * scale
    assert np.abs(Um[:, :2].T @ grad).max() < 1e-10 * scale

    def f(Mx):
        return 0.5 * np.sum((G @ Mx) * Mx) - np.sum(H * Mx)

    rng = np.random.default_rng(0)
    best = f(M)
    for _ in range(300):
        A = Um[:, :2] + 0.05 * rng.standard_normal((len(I_u), 2))
        B = Vmt[:2].T + 0.05 * rng.standard_normal((len(I_v), 2))
        # the best M = A W B^T for these factors (least squares in W)
        K = np.kron(B.T @ B, A.T @ G @ A)
        w = np.linalg.solve(K, (A.T @ H @ B).ravel(order="F"))
        assert f(A @ w.reshape(2, 2, order="F") @ B.T) >= best - 1e-12


def test_restricted_fit_matches_its_cvxpy_twin(sim):
    mod = mt.BISMART(sim.Y, sim.X, source=sim.C0)
    fast = mod.fit(rank=2, rule="energy", budget=6)
    ref = mod.fit(rank=2, rule="energy", budget=6, backend="cvxpy")
    np.testing.assert_allclose(fast.coef, ref.coef, atol=1e-6)


def test_restricted_rrr_on_moments_equals_the_rows(sim):
    U0, _, V0 = source_svd(sim.C0)
    Xc, Yc = sim.X - sim.X.mean(0), sim.Y - sim.Y.mean(0)
    n = len(Xc)
    U, V = U0[:, [0, 2, 5]], V0[:, [1, 2, 3, 7]]
    C, M = bk.restricted_rrr(Xc.T @ Xc / n, Xc.T @ Yc / n, U, V, 2)
    M_rows, _, _ = lin.reduced_rank_rows(lin.design_svd(Xc @ U), Yc @ V, 2)
    np.testing.assert_allclose(M, M_rows, rtol=1e-9, atol=1e-12)
    C0, _ = bk.restricted_rrr(Xc.T @ Xc / n, Xc.T @ Yc / n, U[:, :0], V, 2)
    assert np.all(C0 == 0)


# ---- blocks, knapsack, certificate -----------------------------------------------------
def test_knapsack_is_exact_against_enumeration():
    rng = np.random.default_rng(4)
    for _ in range(40):
        K = rng.integers(1, 8)
        sizes = rng.integers(1, 6, K)
        values = rng.exponential(1.0, K)
        budget = int(rng.integers(1, 15))
        best = 0.0
        for mask in itertools.product([0, 1], repeat=K):
            m = np.array(mask, bool)
            if sizes[m].sum() <= budget:
                best = max(best, values[m].sum())
        chosen = bk.knapsack(sizes, values, budget)
        assert sizes[chosen].sum() <= budget
        assert values[chosen].sum() == pytest.approx(best, rel=1e-12, abs=1e-15)


def test_blocks_cut_exactly_at_certified_gaps():
    s = np.array([10.0, 9.95, 9.0, 5.0, 4.99, 4.98, 0.1])
    blocks = bk.spectral_blocks(s, 9, 7, eps0=0.1, c_gap=3.0)       # cut at gaps > 0.3
    assert blocks == [(0, 2), (2, 3), (3, 6), (6, 9)]
    t = bk.extended_spectrum(s, 9, 7)
    assert t.tolist() == s.tolist() + [0.0, 0.0]
    assert bk.side_blocks(blocks, 7) == [(0, 0, 2), (1, 2, 3), (2, 3, 6), (3, 6, 7)]
    # Wedin's bound of a union of whole blocks is eps0 / (smallest cross gap) <= 1/c_gap
    for sel in ([0, 1], [2], [3, 4, 5], [0, 1, 3, 4, 5]):
        bound = bk.wedin_bound(t, np.array(sel), 0.1)
        gap = min(abs(t[i] - t[j]) for i in sel for j in range(9) if j not in sel)
        assert bound == pytest.approx(0.1 / gap) and bound <= 1 / 3.0
    # the leading rule never splits a block and takes at least the first
    sides = bk.side_blocks(blocks, 9)
    assert bk.select_blocks("leading", sides, None, 4).tolist() == [0, 1, 2]
    assert bk.select_blocks("leading", sides, None, 1).tolist() == [0, 1]


def test_certificate_bounds_gaussian_noise_with_its_probability():
    rng = np.random.default_rng(7)
    p, q, tau0, x0 = 40, 25, 0.3, 1.0
    eps0 = bk.source_certificate(tau0, p, q, s_max=1.0, x0=x0)
    assert eps0 == pytest.approx(tau0 * (np.sqrt(p) + np.sqrt(q) + np.sqrt(2 * x0)))
    norms = [np.linalg.norm(tau0 * rng.standard_normal((p, q)), 2) for _ in range(300)]
    assert np.mean(np.array(norms) <= eps0) >= 1 - np.exp(-x0)
    # the rounding floor
    assert bk.source_certificate(0.0, p, q, s_max=2.0) == pytest.approx(2.0 * bk.EPS_FLOOR)


# ---- tuning -----------------------------------------------------------------------------
def test_cross_validation_table_recomputed_by_hand(sim):
    mod = mt.BISMART(sim.Y, sim.X, source=sim.C0, intercept=True)
    res = mod.fit(rank=3, n_folds=4)
    table = res.tuning["cv"]
    assert table.rule.iloc[0] == "zero" and table.rule.iloc[-1] == "target"
    folds = kfold_stats(sim.X, sim.Y, 4)
    total = total_stats(folds)
    U0, s0, V0 = source_svd(sim.C0)
    assert set(table.c_gap) == {3.0}     # the finer partition is the same one here
    for _, row in table.iterrows():
        errs = []
        for f in folds:
            t = total - f
            Sxx, Sxy, _ = t.moments()
            pilot = lin.reduced_rank(Sxx, Sxy, 3)[0]
            budget = None if row.rule in ("zero", "target") else \
                (int(row.budget_u), int(row.budget_v))
            blocks = bk.spectral_blocks(s0, 30, 20, res.eps0, row.c_gap)
            I_u, I_v = bk.candidate_subspaces(row.rule, budget, blocks, U0, V0, pilot)
            C, _ = bk.restricted_rrr(Sxx, Sxy, U0[:, I_u], V0[:, I_v], 3)
            errs.append(validation_loss(f, t, C))
        sizes = np.array([f.n for f in folds])
        assert row.cv_mean == pytest.approx(np.dot(sizes, errs) / sizes.sum(), rel=1e-10)
    best = table.cv_mean.idxmin()
    assert (res.rule, res.budget) == (table.rule[best], None if table.rule[best] in (
        "zero", "target") else (int(table.budget_u[best]), int(table.budget_v[best])))
    assert res.chosen_by["rule"] == "4-fold CV"


def test_finer_partition_where_the_certificate_merges_the_spectrum():
    """At source noise 0.02 the certificate (0.39) times 3 exceeds the design's gaps of
    1: the certified partition is one block (the target-only fit); the finer partition
    (gaps above the certificate) keeps the ten directions apart, and cross-validation
    takes it."""
    sim = mt.datasets.simulate_smart(200, 100, 50, rank=3, source_rank=10, sigma0=0.02,
                                     random_state=3)
    mod = mt.BISMART(sim.Y, sim.X, source=sim.C0)
    coarse = mod.fit(rank=3, c_gap=3.0)
    assert len(coarse.blocks) == 1 and coarse.subspace_rank == (100, 50)
    res = mod.fit(rank=3)
    assert res.c_gap == 1.0 and res.chosen_by["c_gap"] == "5-fold CV"
    assert np.all(res.blocks["size"].to_numpy()[:10] == 1)
    assert np.linalg.norm(res.coef - sim.C) < 0.7 * np.linalg.norm(coarse.coef - sim.C)
    assert set(res.tuning["cv"].c_gap) == {3.0, 1.0}


def test_tuned_fit_finds_the_targets_source_directions(sim):
    """Model-I-like design: the target uses 3 of the source's 8 directions on each side;
    the energy rule finds them (pilot energy) and beats the leading subspaces."""
    res = mt.BISMART(sim.Y, sim.X, source=sim.C0).fit()
    assert res.rank == 3 and res.rule == "energy"
    U0, _, V0 = res.model.source_svd
    # the selected left span contains the target's column space (principal angles)
    P = U0[:, res.selected[0]]
    Uc = np.linalg.svd(sim.C)[0][:, :3]
    assert np.linalg.norm(Uc - P @ (P.T @ Uc), 2) < 0.05
    lead = mt.ReducedRankRidge(sim.Y, sim.X, source=sim.C0).fit(rank=3, ridge=0.0,
                                                                   subspace_rank=8)
    assert np.linalg.norm(res.coef - sim.C) < np.linalg.norm(lead.coef - sim.C)


# ---- the results API -----------------------------------------------------------------------
def test_formula_summary_predict_save_load(tmp_path, sim):
    cols = [f"x{j}" for j in range(30)]
    ys = [f"y{j}" for j in range(20)]
    df = pd.DataFrame(np.hstack([sim.X, sim.Y]), columns=cols + ys)
    src = pd.DataFrame(sim.C0, index=cols, columns=ys)
    formula = " + ".join(ys) + " ~ " + " + ".join(cols)
    res = mt.BISMART.from_formula(formula, df, source=src).fit(rank=3, rule="energy",
                                                                budget=4)
    arr = mt.BISMART(sim.Y, sim.X, source=sim.C0, intercept=True).fit(
        rank=3, rule="energy", budget=4)
    np.testing.assert_allclose(res.params.to_numpy(), arr.coef, rtol=1e-9, atol=1e-12)
    text = res.summary().as_text()
    assert "BI-SMART" in text and "Source blocks:" in text
    new = df.iloc[:5]
    pred = res.predict(new)
    np.testing.assert_allclose(pred.to_numpy(), sim.X[:5] @ arr.coef + arr.intercept.to_numpy(),
                               rtol=1e-10)
    res.save(tmp_path / "bi.mtl")
    back = mt.load(tmp_path / "bi.mtl")
    pd.testing.assert_frame_equal(back.predict(new), pred)
    assert back.rule == "energy" and back.budget == (4, 4)
    pd.testing.assert_frame_equal(back.blocks, res.blocks)


def test_bootstrap_replays_rule_budget_and_certificate(sim):
    mod = mt.BISMART(sim.Y, sim.X, source=sim.C0)
    res = mod.fit(rank=3, rule="energy", budget=4)
    boot = res.bootstrap(n_boot=3, random_state=2, source_sd=0)
    rng = np.random.default_rng(np.random.SeedSequence(2).spawn(3)[0])
    spec = res.bootstrap_spec("residual")
    Ystar = spec.fitted + spec.resid[spec.rows(rng)]
    ref = mt.BISMART(Ystar, sim.X, source=sim.C0).fit(rank=3, rule="energy", budget=4,
                                                      source_sd=res.source_sd)
    np.testing.assert_allclose(boot.coef[0], ref.coef, rtol=1e-10, atol=1e-12)
    assert np.all(boot.coef.std(axis=0).max() > 0)


def test_bad_input_is_named(sim):
    mod = mt.BISMART(sim.Y, sim.X, source=sim.C0)
    with pytest.raises(ValueError, match="rule must be one of"):
        mod.fit(rule="best")
    with pytest.raises(TypeError, match=r"budget \(d_u\) must be an integer"):
        mod.fit(budget="big")
    with pytest.raises(ValueError, match="budget d_u must be in"):
        mod.fit(rank=2, budget=(0, 3))
    with pytest.raises(ValueError, match="rank must be an integer in"):
        mod.fit(rank=21)
    with pytest.raises(ValueError, match="source_sd must be a finite number >= 0"):
        mod.fit(rank=2, source_sd=-1.0)
    with pytest.raises(ValueError, match="c_gap must be a finite number > 0"):
        mod.fit(rank=2, c_gap=0)
    with pytest.raises(TypeError, match="needs source="):
        mt.BISMART(sim.Y, sim.X)


def test_bismart_is_a_candidate_of_transfer(sim):
    mod = mt.Transfer(sim.Y, sim.X, source=sim.C0)
    res = mod.fit(method="BISMART")
    ref = mt.BISMART(sim.Y, sim.X, source=sim.C0).fit()
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12, atol=1e-14)
    cv = mod.fit(candidates=["BISMART", "ReducedRank"], n_folds=3)
    table = cv.tuning["transfer_cv"]
    assert list(table.index) == ["BISMART", "ReducedRank"]
    # the transfer wins on this design (3 of the source's 8 directions per side)
    assert cv.method == "BISMART"
    assert table.loc["BISMART", "cv_mse"] < table.loc["ReducedRank", "cv_mse"]
