"""SMART tuning: RSC rank, BIC lambda path, K-fold structural ranks, the driver."""

import numpy as np
import pytest

from mtltransfer import gram, selection as sel
from mtltransfer.smart import tuning
from mtltransfer.datasets import simulate_smart
from mtltransfer.gram import SufficientStats
from mtltransfer.solvers.linear import reduced_rank


def _err(Ch, C):
    return np.linalg.norm(Ch - C) / np.sqrt(C.size)


@pytest.fixture(scope="module")
def model1():
    sim = simulate_smart(200, 100, 50, rank=5, sigma0=0.01, sigma=0.5, random_state=0)
    return sim, SufficientStats.from_arrays(sim.X, sim.Y)


@pytest.mark.parametrize("seed", [0, 1])
def test_rsc_selects_true_rank_model1(seed):
    X, Y, C, C0 = simulate_smart(200, 100, 50, rank=5, random_state=seed)
    st = SufficientStats.from_arrays(X, Y)
    rank, info = sel.select_rank_rsc(st)
    assert rank == 5
    assert info["sigma_method"] == "residual"
    assert info["sigma2"] == pytest.approx(0.25, rel=0.2)
    # moments interface gives the same, and the cap binds
    Sxx, Sxy, Syy = st.moments()
    assert sel.select_rank_rsc(Sxx, Sxy, Syy, st.n)[0] == 5
    assert sel.select_rank_rsc(st, cap=3)[0] == 3


def test_rsc_fallback_when_n_le_rank_x():
    X, Y, C, C0 = simulate_smart(60, 100, 30, rank=3, sigma=0.5, random_state=2)
    rank, info = sel.select_rank_rsc(SufficientStats.from_arrays(X, Y))
    assert info["sigma_method"] == "ridge-gcv"
    # true rank 3 and noise variance 0.25; the intercept counts as a fitted parameter
    assert 0.5 * 0.25 < info["sigma2"] < 1.5 * 0.25
    assert 3 <= rank <= 4


def test_structural_grid_keeps_transfer_candidates_when_rank_is_full():
    # a single response (q = 1): only U can be penalised, and it must be tried
    assert tuning.default_structural_grid(1, 30, 1) == [(1, 1), (2, 1), (3, 1), (4, 1),
                                                     (30, 1)]
    grid = tuning.default_structural_grid(3, 20, 3)
    assert grid[-1] == (20, 3) and len(grid) > 1 and all(r_v == 3 for _, r_v in grid)


def test_kfold_stats_and_validation_loss():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((53, 4)), rng.standard_normal((53, 3))
    folds = gram.kfold_stats(X, Y, 5, seed=1)
    again = gram.kfold_stats(X, Y, 5, seed=1)
    total = SufficientStats.from_arrays(X, Y)
    s = folds[0]
    for f in folds[1:]:
        s = s + f
    np.testing.assert_allclose(s.XtY, total.XtY)
    assert s.n == 53 and [f.n for f in folds] == [f.n for f in again]
    np.testing.assert_array_equal(folds[2].XtX, again[2].XtX)
    # validation loss from statistics equals the loss computed from rows
    perm = np.random.default_rng(1).permutation(53)
    idx = np.array_split(perm, 5)[0]
    tr = np.setdiff1d(np.arange(53), idx)
    C = rng.standard_normal((4, 3))
    pred = Y[tr].mean(0) + (X[idx] - X[tr].mean(0)) @ C
    direct = np.sum((Y[idx] - pred) ** 2) / len(idx)
    assert gram.validation_loss(folds[0], total - folds[0], C) == pytest.approx(direct)


def test_bic_path_model1_accuracy(model1):
    sim, st = model1
    Sxx, Sxy, Syy = st.moments()
    out = tuning.smart_lambda_path(Sxx, Sxy, Syy, st.n, sim.C0, 5, (10, 10))
    tr = out["trace"]
    lam = np.array(tr["lam_u"])
    assert np.all(np.diff(lam) < 0) and lam[-1] == 0.0
    assert tr["nnz"][0] == 0 and tr["nnz"][-1] > 0
    assert len({len(v) for v in tr.values()}) == 1
    assert out["result"].converged
    e = _err(out["result"].coef, sim.C)
    e_rrr = _err(reduced_rank(Sxx, Sxy, 5)[0], sim.C)
    assert e < 0.01 and e < 0.5 * e_rrr
    assert tr["bic"][out["index"]] == min(tr["bic"])


def test_tune_fixed_parts_and_traces(model1):
    sim, st = model1
    out = tuning.tune_smart(st, sim.C0, rank=5, structural_rank=(10, 10))
    assert out.how == {"rank": "given", "structural_rank": "given", "lam": "bic"}
    assert out.cv == {}
    # the documented tied path: lam_k = lam_max * lam_ratio^(k / (n_lam - 1)), k < n_lam,
    # then lam = 0 (defaults n_lam = 12, lam_ratio = 1e-3)
    lam_u = np.asarray(out.bic_path["lam_u"], dtype=float)
    np.testing.assert_array_equal(lam_u, np.asarray(out.bic_path["lam_v"], dtype=float))
    assert len(lam_u) == 12 + 1 and lam_u[-1] == 0 and lam_u[0] > 0
    np.testing.assert_allclose(lam_u[:-1], lam_u[0] * 1e-3 ** (np.arange(12) / 11),
                               rtol=1e-12)
    assert out.lam[0] == lam_u[int(np.argmin(out.bic_path["bic"]))]
    assert _err(out.result.coef, sim.C) < 0.01
    out2 = tuning.tune_smart(st, sim.C0, structural_rank=(10, 10), lam=out.lam)
    assert out2.how["rank"] == "rsc" and out2.rank == 5
    np.testing.assert_allclose(out2.result.coef, out.result.coef, atol=1e-4)


def _tuned_vs_rrr(n, p, q, sigma0, seed):
    X, Y, C, C0 = simulate_smart(n, p, q, rank=3, source_rank=6, sigma0=sigma0, sigma=0.5,
                                 random_state=seed)
    st = SufficientStats.from_arrays(X, Y)
    out = tuning.tune_smart(st, C0, fold_stats=gram.kfold_stats(X, Y, 5, seed=0))
    Sxx, Sxy, _ = st.moments()
    return out, _err(out.result.coef, C), _err(reduced_rank(Sxx, Sxy, 3)[0], C)


def test_fully_tuned_uses_a_good_source():
    out, e, e_rrr = _tuned_vs_rrr(120, 40, 30, 0.01, 0)
    assert out.how == {"rank": "rsc", "structural_rank": "cv", "lam": "bic"}
    assert out.rank == 3
    assert out.structural_rank != (40, 30)
    assert e < 0.7 * e_rrr
    cv = out.cv
    assert len({len(v) for v in cv.values()}) == 1 and (40, 30) in zip(cv["r_u"], cv["r_v"])


@pytest.mark.parametrize("sigma0", [0.1, 0.5])
def test_fully_tuned_not_worse_than_rrr_with_misleading_source(sigma0):
    out, e, e_rrr = _tuned_vs_rrr(120, 40, 30, sigma0, 1)
    assert out.rank == 3
    assert e <= 1.02 * e_rrr


def test_near_ties_go_to_the_simplest_candidate():
    from mtltransfer.solvers._base import argmin_simplest

    # candidates ordered simplest first: a later score better by rounding only loses
    assert argmin_simplest([1.0, 1.0 - 1e-12, 1.5]) == 0
    assert argmin_simplest([2.0, 1.0, 1.0 - 1e-12]) == 1
    # a real improvement wins; non-finite scores never do
    assert argmin_simplest([1.0, 0.99, np.inf]) == 1
    assert argmin_simplest([np.nan, 3.0, 2.0]) == 2
