"""The source-aware transfer baselines: closed forms, CVXPY twins, limits, tuning."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.gram import offset_moments


@pytest.fixture(scope="module")
def sim():
    return mt.datasets.simulate_smart(120, 12, 6, rank=2, source_rank=4, sigma0=0.05,
                                      random_state=8)


def _objective(res, C0, penalty):
    Sxx, Sxy, Syy = res.model.moments()
    C = res.coef
    return 0.5 * np.trace(Syy) - np.sum(Sxy * C) + 0.5 * np.sum((Sxx @ C) * C) + \
        penalty(C - C0)


def test_ridge_to_source_matches_cvxpy_and_its_limits(sim):
    mod = mt.RidgeToSource(sim.Y, sim.X, source=sim.C0)
    alpha = 0.3
    fast = mod.fit(alpha=alpha)
    ref = mod.fit(alpha=alpha, backend="cvxpy")

    def pen(D):
        return 0.5 * alpha * np.sum(D ** 2)

    assert _objective(fast, sim.C0, pen) == pytest.approx(_objective(ref, sim.C0, pen),
                                                          rel=1e-8)
    np.testing.assert_allclose(fast.coef, ref.coef, atol=1e-6)
    # closed form (Sxx + alpha I)^{-1} (Sxy + alpha C0)
    Sxx, Sxy, _ = mod.moments()
    np.testing.assert_allclose(fast.coef, np.linalg.solve(Sxx + alpha * np.eye(12),
                                                          Sxy + alpha * sim.C0), rtol=1e-10)
    np.testing.assert_allclose(mod.fit(alpha=1e12).coef, sim.C0, atol=1e-9)
    tuned = mod.fit()
    assert tuned.chosen_by["alpha"] == "GCV" and 0 < tuned.alpha
    g = tuned.tuning["gcv"]
    assert tuned.alpha == pytest.approx(g.loc[g["gcv"].idxmin(), "alpha"])


def test_nuclear_contrast_matches_cvxpy_and_is_the_source_above_lam_max(sim):
    mod = mt.NuclearContrast(sim.Y, sim.X, source=sim.C0)
    Sxx, Sxy, Syy = offset_moments(*mod.moments(), sim.C0)
    lam_max = np.linalg.norm(Sxy, 2)
    lam = 0.1 * lam_max
    fast = mod.fit(lam=lam, tol=1e-10, max_iter=50000)
    ref = mod.fit(lam=lam, backend="cvxpy")

    def pen(D):
        return lam * np.linalg.norm(D, "nuc")

    assert _objective(fast, sim.C0, pen) == pytest.approx(_objective(ref, sim.C0, pen),
                                                          rel=1e-6)
    np.testing.assert_allclose(fast.coef, ref.coef, atol=1e-4)
    np.testing.assert_allclose(mod.fit(lam=1.01 * lam_max).coef, sim.C0, atol=1e-12)
    assert mod.fit(lam=0.99 * lam_max).rank >= 1


def test_subspace_rrr_is_smart_without_leakage_and_rrr_at_full_subspaces(sim):
    mod = mt.SourceSubspaceRRR(sim.Y, sim.X, source=sim.C0)
    res = mod.fit(rank=2, subspace_rank=4)
    # SMART with an overwhelming penalty keeps U, V inside the same subspaces
    smart = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=4, lam=1e3,
                                                      tol=1e-10)
    np.testing.assert_allclose(res.coef, smart.coef, atol=1e-7 * np.abs(res.coef).max())
    full = mod.fit(rank=2, subspace_rank=(12, 6))
    rrr = mt.ReducedRank(sim.Y, sim.X).fit(rank=2)
    np.testing.assert_allclose(full.coef, rrr.coef, rtol=1e-9, atol=1e-12)
    tuned = mod.fit()
    cv = tuned.tuning["cv"]
    best = cv["cv_mean"].idxmin()
    assert tuned.subspace_rank == (cv.d_u[best], cv.d_v[best])
    assert tuned.rank <= mod.source_rank
    with pytest.raises(ValueError, match="d_u"):
        mod.fit(rank=3, subspace_rank=2)


def test_mixture_limits_and_cv(sim):
    mod = mt.SourceMixture(sim.Y, sim.X, source=sim.C0)
    rrr = mt.ReducedRank(sim.Y, sim.X).fit(rank=2)
    np.testing.assert_allclose(mod.fit(weight=0.0, rank=2).coef, rrr.coef, rtol=1e-12)
    np.testing.assert_allclose(mod.fit(weight=1.0, rank=2).coef, sim.C0, rtol=1e-12)
    tuned = mod.fit(rank=2)
    cv = tuned.tuning["cv"]
    assert tuned.weight == pytest.approx(cv.loc[cv["cv_mse"].idxmin(), "weight"])
    with pytest.raises(ValueError, match="weight"):
        mod.fit(weight=1.5)


def test_transfer_baselines_take_sources_like_smart(sim, tmp_path):
    xn, yn = [f"x{j}" for j in range(12)], [f"Y{j}" for j in range(6)]
    df = pd.concat([pd.DataFrame(sim.X, columns=xn), pd.DataFrame(sim.Y, columns=yn)],
                   axis=1)
    src = pd.DataFrame(sim.C0, index=xn, columns=yn).iloc[::-1]
    formula = " + ".join(yn) + " ~ " + " + ".join(xn) + " - 1"
    for model in (mt.RidgeToSource, mt.NuclearContrast, mt.SourceSubspaceRRR,
                  mt.SourceMixture):
        with pytest.raises(TypeError, match="needs source="):
            model(sim.Y, sim.X)
        a = model.from_formula(formula, df, source=src)
        np.testing.assert_array_equal(a.source, sim.C0)
    res = mt.SourceSubspaceRRR.from_formula(formula, df, source=src).fit(rank=2,
                                                                        subspace_rank=4)
    res.save(tmp_path / "r.mtl")
    back = mt.load(tmp_path / "r.mtl")
    pd.testing.assert_frame_equal(back.predict(df.iloc[:5]), res.predict(df.iloc[:5]))
    assert "Reduced rank inside the source" in res.summary().as_text()


@pytest.mark.parametrize("model", ["NuclearNorm", "NuclearContrast"])
def test_nuclear_cv_path_is_the_minimisers_path(sim, model):
    """The CV path's extrapolated warm starts change iteration counts, not answers: every
    visited lam's held-out error is that of the fold problems solved tightly from zero,
    the chosen lam is their minimiser, and the final fit (started from the folds' mean
    solution) is the fit at that lam from zero, in fewer iterations."""
    from mtltransfer.gram import total_stats, validation_loss
    from mtltransfer.solvers.prox import nuclear_norm_apg

    kw = {} if model == "NuclearNorm" else {"source": sim.C0}
    mod = getattr(mt, model)(sim.Y, sim.X, **kw)
    res = mod.fit()
    table = res.tuning["lam_cv"]
    C0 = mod.offset()
    folds = mod.fold_stats(5)
    total = total_stats(folds)
    ref = []
    for lam in table["lam"]:
        e = 0.0
        for held in folds:
            train = total - held
            D = nuclear_norm_apg(*offset_moments(*train.moments(center=mod.center), C0),
                                 lam, tol=1e-11, max_iter=100000).coef
            e += held.n * validation_loss(held, train, D if C0 is None else C0 + D,
                                          center=mod.center)
        ref.append(e / (mod.nobs * mod.k_endog))
    # the path is screened at tolerance 1e-5 on the prox-gradient mapping: the held-out
    # errors are first order in the coefficients' error, so they agree to about 1e-5
    # times the design's conditioning
    np.testing.assert_allclose(table["cv_mse"], ref, rtol=1e-4)
    assert res.lam == table["lam"][int(np.argmin(ref))]
    cold = mod.fit(lam=res.lam)
    np.testing.assert_allclose(res.coef, cold.coef, rtol=0, atol=1e-6 * np.abs(
        cold.coef).max())
    assert res.n_iter < cold.n_iter


def test_nuclear_cv_fit_is_the_fit_at_its_lam_when_the_minimiser_is_not_unique():
    """With p > n (Sxx singular) the minimiser need not be unique: the final fit then
    starts from zero, exactly as fit(lam=...) does, and returns the same matrix."""
    sim = mt.datasets.simulate_smart(30, 40, 6, rank=2, source_rank=4, sigma0=0.05,
                                     random_state=3)
    for mod in (mt.NuclearNorm(sim.Y, sim.X),
                mt.NuclearContrast(sim.Y, sim.X, source=sim.C0)):
        res = mod.fit()
        np.testing.assert_array_equal(res.coef, mod.fit(lam=res.lam).coef)


@pytest.mark.parametrize("name, kwargs", [
    ("RidgeToSource", {"alpha": 0.3}),
    ("NuclearContrast", {"lam": 0.05}),
    ("SourceSubspaceRRR", {"rank": 2, "subspace_rank": 4}),
    ("SourceMixture", {"weight": 0.4, "rank": 2}),
])
def test_every_transfer_baseline_from_a_results_source(sim, tmp_path, name, kwargs):
    """A fitted source results object as ``source=`` (its params are the source, names
    aligned), then summary, save/load and bootstrap, as for SMART."""
    xn, yn = [f"x{j}" for j in range(12)], [f"Y{j}" for j in range(6)]
    df = pd.concat([pd.DataFrame(sim.X, columns=xn), pd.DataFrame(sim.Y, columns=yn)],
                   axis=1)
    formula = " + ".join(yn) + " ~ " + " + ".join(xn)
    rng = np.random.default_rng(1)
    src_df = pd.DataFrame(rng.standard_normal((300, 12)), columns=xn)
    src_Y = src_df.to_numpy() @ sim.C0 + 0.1 * rng.standard_normal((300, 6))
    src_df = pd.concat([src_df, pd.DataFrame(src_Y, columns=yn)], axis=1)
    source = mt.ReducedRank.from_formula(formula, src_df).fit(rank=4)
    model = getattr(mt, name)
    mod = model.from_formula(formula, df, source=source)
    np.testing.assert_array_equal(mod.source, source.params.loc[xn, yn].to_numpy())
    res = mod.fit(**kwargs)
    assert name in res.summary().as_text()
    res.save(tmp_path / "r.mtl")
    back = mt.load(tmp_path / "r.mtl")
    pd.testing.assert_frame_equal(back.params, res.params)
    pd.testing.assert_frame_equal(back.predict(df.iloc[:4]), res.predict(df.iloc[:4]))
    boot = res.bootstrap(n_boot=40, random_state=0, source_sd=0)
    assert boot.n_failed == 0 and boot.coef.shape == (40, 12, 6)
    # the residual bootstrap's draws scatter around its noise-free replicate (the model
    # refitted on its own fitted values: the fit itself for least squares, a further
    # shrinkage of it for a penalised fit): the mean draw lies within 5 Monte Carlo
    # standard errors (bse / sqrt(n_boot)) of it in at least 90% of the entries (these
    # estimators are nonlinear, so a few entries may carry a second-order bias)
    bse = boot.bse.to_numpy()
    assert np.all(bse > 0)
    centre = mod.replace_data(endog=res.fittedvalues.to_numpy()).fit(**kwargs).coef
    z = np.abs(boot.coef.mean(0) - centre) / (bse / np.sqrt(40))
    assert np.mean(z <= 5) >= 0.9, np.sort(z.ravel())[-5:]


def test_residual_bootstrap_of_ridge_to_source_has_the_closed_form_spread(sim):
    """RidgeToSource is linear in Y: C = A (X_c'Y / n + alpha C0), A = (S_xx + alpha I)^-1.
    The residual bootstrap redraws Y* = fitted + e* with the rows of e* drawn from the
    residuals, so Cov(C*[:, j]) = s_j^2 A S_xx A / n with s_j^2 the residuals' variance:
    the draws must match that closed form to Monte Carlo accuracy."""
    alpha, n_boot = 0.3, 600
    res = mt.RidgeToSource(sim.Y, sim.X, source=sim.C0, intercept=True).fit(alpha=alpha)
    Xc = sim.X - sim.X.mean(0)
    n, p = Xc.shape
    Sxx = Xc.T @ Xc / n
    A = np.linalg.inv(Sxx + alpha * np.eye(p))
    Yc = sim.Y - sim.Y.mean(0)
    np.testing.assert_allclose(res.coef, A @ (Xc.T @ Yc / n + alpha * sim.C0), atol=1e-10)
    # the residuals are centred and inflated by sqrt(n / df_resid) before resampling
    s2 = res.resid.to_numpy().var(axis=0) * n / res.df_resid
    se_closed = np.sqrt(np.outer(np.diag(A @ Sxx @ A) / n, s2))
    boot = res.bootstrap(n_boot=n_boot, random_state=4, source_sd=0)
    bse = boot.bse.to_numpy()
    # an sd estimated from B normal draws has relative sd 1/sqrt(2B) = 0.029 at B = 600
    ratio = bse / se_closed
    assert abs(np.median(ratio) - 1) < 0.03
    assert np.all(np.abs(ratio - 1) < 5 / np.sqrt(2 * n_boot)), ratio
    # the draws centre on the noise-free replicate A (S_xx C + alpha C0), which shrinks
    # the fit C once more towards C0 (the mean draw is not the fit for a penalised fit)
    centre = A @ (Sxx @ res.coef + alpha * sim.C0)
    z = np.abs(boot.coef.mean(0) - centre) / (se_closed / np.sqrt(n_boot))
    assert np.all(z < 5), z.max()
    assert np.abs(centre - res.coef).max() > 10 * se_closed.max() / np.sqrt(n_boot)

@pytest.mark.parametrize("name, kwargs, match", [
    ("SparseReducedRank", {"max_iter": 0}, "max_iter"),
    ("SparseReducedRank", {"n_lams": 0}, "n_lams"),
    ("SOFAR", {"tol": 0}, "tol"),
    ("SOFAR", {"gamma": -1}, "gamma"),
    ("SOFAR", {"n_lams": 1}, "n_lams"),
    ("RSSVD", {"tol": -1}, "tol"),
    ("SourceSubspaceRRR", {"rank": 2, "subspace_rank": (3,)}, "subspace_rank"),
    ("SourceMixture", {"rank": 2, "n_weights": 1}, "n_weights"),
])
def test_comparator_options_are_checked_by_name(sim, name, kwargs, match):
    model = getattr(mt, name)
    mod = model(sim.Y, sim.X, source=sim.C0) if name.startswith("Source") else \
        model(sim.Y, sim.X)
    with pytest.raises(ValueError, match=match):
        mod.fit(**kwargs)
    if name == "SourceMixture":
        with pytest.raises(TypeError, match="weight"):
            mod.fit(weight="x", rank=2)
