"""The faster SMART paths: dropped CV candidates, parallel folds, capped paths, screening."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.exceptions import ConvergenceWarning
from mtltransfer.gram import kfold_stats
from mtltransfer.smart.tuning import cv_structural_rank, lambda_path
from mtltransfer.smart.admm import smart_solve
from mtltransfer.smart.certify import verify_state
from mtltransfer.smart.problem import SmartProblem, source_svd

from conftest import gradient_scale


@pytest.fixture(scope="module")
def misleading():
    """Model-I sized problem with a very noisy source: SMART candidates are dominated."""
    X, Y, C, C0 = mt.datasets.simulate_smart(100, 24, 12, rank=3, source_rank=6,
                                             sigma0=0.5, random_state=3)
    return X, Y, C, C0


def _cv(X, Y, C0, **kw):
    folds = kfold_stats(X, Y, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # capped fits, expected
        return cv_structural_rank(folds, C0, 3, center=False, n_lam=6,
                                  grid=[(3, 3), (5, 5), (6, 6), (9, 9), (24, 12)], **kw)


def test_dropped_candidates_do_not_change_the_choice(misleading):
    X, Y, _, C0 = misleading
    best_all, tr_all = _cv(X, Y, C0, drop=False)
    best_drop, tr_drop = _cv(X, Y, C0, drop=True)
    assert best_drop == best_all
    dropped = np.array(tr_drop["dropped"])
    assert dropped.any()                      # the rule did something here
    full = np.array(tr_all["cv_mean"])
    # every dropped candidate is worse than the chosen one on the full CV
    chosen = tr_all["r_u"].index(best_all[0])
    assert np.all(full[dropped] > full[chosen])
    # the candidates kept have the same CV losses as without dropping
    kept = ~dropped
    np.testing.assert_allclose(np.array(tr_drop["cv_mean"])[kept], full[kept], rtol=1e-12)


def test_n_jobs_gives_identical_results(misleading):
    X, Y, _, C0 = misleading
    b1, t1 = _cv(X, Y, C0, n_jobs=1)
    b2, t2 = _cv(X, Y, C0, n_jobs=2)
    assert b1 == b2
    np.testing.assert_allclose(np.array(t1["fold_loss"], float),
                               np.array(t2["fold_loss"], float), rtol=0, atol=1e-12)


def test_fit_n_jobs_identical_params():
    X, Y, _, C0 = mt.datasets.simulate_smart(80, 20, 10, rank=2, source_rank=4,
                                             sigma0=0.01, random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # capped fits, expected
        r1 = mt.SMART(Y, X, source=C0, intercept=False).fit(rank=2, n_jobs=1)
        r2 = mt.SMART(Y, X, source=C0, intercept=False).fit(rank=2, n_jobs=2)
    assert r1.structural_rank == r2.structural_rank
    np.testing.assert_allclose(r1.params.to_numpy(), r2.params.to_numpy(), rtol=0,
                               atol=1e-12)


def test_capped_path_is_polished_to_stationarity():
    X, Y, _, C0 = mt.datasets.simulate_smart(100, 30, 15, rank=3, source_rank=6,
                                             sigma0=0.1, random_state=7)
    n = X.shape[0]
    prob = SmartProblem.from_moments(X.T @ X / n, X.T @ Y / n, Y.T @ Y / n, C0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # capped fits, expected
        out = lambda_path(prob, n, 3, (0, 0),
                                path_max_iter=5, tol=1e-6)
    its = out["trace"]["n_iter"]
    # only fits that had the best BIC at some point are solved beyond the cap
    over = [i for i, k in enumerate(its) if k > 5]
    assert 0 < len(over) < len(its) // 2
    assert out["index"] in over
    res = out["result"]
    assert res.converged
    chk = verify_state(prob, res.extra)
    # KKT of the polished fit at the tolerance's scale (as tests/test_admm.py, tol 1e-6)
    bound = 10 * 1e-6 * gradient_scale(X.T @ Y / n)
    assert chk["kkt_u"] < bound and chk["kkt_v"] < bound
    assert chk["primal_residual_u"] < 1e-5 and chk["primal_residual_v"] < 1e-5


# ---------------------------------------------------------------------------------------
# screening
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def screen_data():
    rng = np.random.default_rng(11)
    n, p, q = 90, 30, 4
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3, p)
    B = np.zeros((p, q))
    B[[2, 7, 19]] = rng.uniform(1, 2, (3, q))
    Y = X @ B + 0.5 * rng.standard_normal((n, q))
    Xf = pd.DataFrame(X, columns=[f"g{j}" for j in range(p)])
    Yf = pd.DataFrame(Y, columns=[f"r{k}" for k in range(q)])
    return Xf, Yf


@pytest.mark.parametrize("kind", ["regression", "correlation"])
@pytest.mark.parametrize("norm", ["l1", "l2", "linf"])
def test_screening_scores_match_direct_computation(screen_data, kind, norm):
    X, Y = screen_data
    scr = mt.MarginalScreening(m=5, norm=norm, kind=kind).fit(Y, X)
    p, q = X.shape[1], Y.shape[1]
    direct = np.empty((p, q))
    for j in range(p):
        for k in range(q):
            x, y = X.iloc[:, j], Y.iloc[:, k]
            if kind == "regression":
                direct[j, k] = np.polyfit(x, y, 1)[0]
            else:
                direct[j, k] = np.corrcoef(x, y)[0, 1]
    agg = {"l1": np.abs(direct).sum(1), "l2": np.sqrt((direct ** 2).sum(1)),
           "linf": np.abs(direct).max(1)}[norm]
    np.testing.assert_allclose(scr.scores.to_numpy(), agg, rtol=1e-10)
    top = set(X.columns[np.argsort(-agg)[:5]])
    assert set(scr.kept) == top
    assert {"g2", "g7", "g19"} <= set(scr.kept)


def test_screening_default_size_and_new_data(screen_data):
    X, Y = screen_data
    scr = mt.MarginalScreening().fit(Y, X)
    n = len(X)
    assert scr.m_ == int(np.floor(n / np.log(n)))
    Xs = scr.transform(X)
    assert list(Xs.columns) == scr.kept
    res = mt.ReducedRank(Y, Xs).fit(rank=1)
    new = X.iloc[:7].copy()
    new[[c for c in X.columns if c not in scr.kept]] = np.nan   # unused columns
    pred = res.predict(scr.transform(new))
    np.testing.assert_allclose(np.asarray(pred), np.asarray(res.predict(Xs.iloc[:7])),
                               rtol=1e-12)
    # arrays: positional selection agrees with the DataFrame one
    scr_a = mt.MarginalScreening().fit(Y.to_numpy(), X.to_numpy())
    np.testing.assert_array_equal(scr_a.support, scr.support)


def test_screening_from_formula(screen_data):
    X, Y = screen_data
    data = pd.concat([X, Y], axis=1)
    rhs = " + ".join(X.columns)
    scr = mt.MarginalScreening(m=4).fit_formula("r0 + r1 + r2 + r3 ~ " + rhs, data)
    direct = mt.MarginalScreening(m=4).fit(Y, X)
    assert scr.kept == direct.kept
    f = scr.formula()
    assert f.split("~")[1].strip() == " + ".join(direct.kept)
    fit = mt.ReducedRank.from_formula(f, data).fit(rank=1)
    assert [c for c in fit.params.index if c != "Intercept"] == direct.kept


def test_screening_rejects_bad_arguments():
    with pytest.raises(ValueError, match="norm"):
        mt.MarginalScreening(norm="l3")
    with pytest.raises(ValueError, match="kind"):
        mt.MarginalScreening(kind="spearman")
    with pytest.raises(ValueError, match="m must"):
        mt.MarginalScreening(m=0)


def test_rows_path_agrees_with_moments_path():
    """n < p: products through the rows give the same fit as through Sxx."""
    X, Y, _, C0 = mt.datasets.simulate_smart(30, 70, 12, rank=2, source_rank=4,
                                             sigma0=0.01, random_state=9)
    n = X.shape[0]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    mom = (Xc.T @ Xc / n, Xc.T @ Yc / n, Yc.T @ Yc / n)
    svd0 = source_svd(C0)
    dense = SmartProblem.from_moments(*mom, svd0=svd0)
    thin = SmartProblem.from_moments(*mom, svd0=svd0, rows=Xc)
    A = np.linalg.qr(np.random.default_rng(0).standard_normal((70, 2)))[0]
    np.testing.assert_allclose(thin.gram(A), dense.G @ A, atol=1e-12)
    np.testing.assert_allclose(thin.G, dense.G, atol=1e-12)
    assert thin.lmax_G == pytest.approx(dense.lmax_G, rel=1e-12)
    # the same iterates (rounding only) for a fixed number of plain iterations ...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # capped fits, expected
        runs = [smart_solve(pr, 2, (4, 4), 0.05, tol=1e-14,
                           max_iter=20, accelerate=False)
                for pr in (dense, thin)]
    np.testing.assert_allclose(runs[1].coef, runs[0].coef, rtol=0, atol=1e-10)
    # ... and the same solution at convergence, to the tolerance's scale
    fits = [smart_solve(pr, 2, (4, 4), 0.05, tol=1e-11, max_iter=5000) for pr in (dense, thin)]
    assert all(f.converged for f in fits)
    np.testing.assert_allclose(fits[1].coef, fits[0].coef, rtol=0, atol=1e-8)
    # through the model (n < p / 2 switches the rows path on)
    res = mt.SMART(Y, X, source=C0, intercept=True).fit(rank=2, structural_rank=4,
                                                        lam=0.05, tol=1e-11,
                                                        max_iter=5000)
    np.testing.assert_allclose(res.params.to_numpy(), fits[0].coef, rtol=0, atol=1e-8)


def test_identical_fit_with_one_or_two_blas_threads_above_the_thread_threshold():
    """At p = 1200 the ADMM products (2 p^2 r flops) are large enough to keep every BLAS
    thread; the fit is the same with one thread or two up to rounding (a threaded BLAS
    may split a reduction differently: about 1e-15 here), with the same lambda chosen."""
    from threadpoolctl import threadpool_limits

    from mtltransfer._threads import SMALL_PRODUCT_FLOPS as _SMALL_PRODUCT_FLOPS

    p, rank = 1200, 8
    assert 2.0 * p * p * rank >= _SMALL_PRODUCT_FLOPS
    X, Y, C, C0 = mt.datasets.simulate_smart(1300, p, 60, rank=rank, source_rank=12,
                                             sigma0=0.01, random_state=0)
    mod = mt.SMART(Y, X, source=C0, intercept=False)
    fits = {}
    for threads in (1, 2):
        with threadpool_limits(threads):
            fits[threads] = mod.fit(rank=rank, structural_rank=(12, 12))
    a, b = fits[1].params.to_numpy(), fits[2].params.to_numpy()
    assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()
    assert fits[1].lam == pytest.approx(fits[2].lam, rel=1e-12)   # the same path point


def test_fit_threads_follow_the_product_size(monkeypatch):
    """Every model's fit runs its iterations on one BLAS thread when its products are
    small (2 p^2 q < 2e7 for the multi-response models) and keeps the caller's threads
    when they are large."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from mtltransfer.solvers import prox

    # what the test needs: a BLAS that threadpoolctl sees and that takes two threads
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas, ("this test needs a BLAS library that threadpoolctl can see "
                  f"(threadpool_info() lists {threadpool_info()!r})")
    with threadpool_limits(2, user_api="blas"):
        took = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    assert took == 2, (f"this test needs a BLAS that accepts 2 threads; "
                       f"threadpool_limits(2) left {took} ({blas!r})")
    seen = []
    original = prox.nuclear_norm_apg

    def spy(*args, **kwargs):
        seen.append(max(i["num_threads"] for i in threadpool_info()
                        if i["user_api"] == "blas"))
        return original(*args, **kwargs)

    monkeypatch.setattr(prox, "nuclear_norm_apg", spy)
    rng = np.random.default_rng(0)
    with threadpool_limits(2, user_api="blas"):
        for p, q in ((20, 5), (300, 150)):          # 2 p^2 q = 4e3 and 2.7e7 flops
            X = rng.standard_normal((400, p))
            Y = X[:, :2] @ rng.standard_normal((2, q)) + rng.standard_normal((400, q))
            mt.NuclearNorm(Y, X).fit(lam=0.5, max_iter=50)
    assert seen == [1, 2]
