"""SMART model layer: source alignment, formula path, results API, summary, verify."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt

from conftest import gradient_scale

CFG = dict(rank=2, structural_rank=(4, 4), lam=0.02)


@pytest.fixture(scope="module")
def sim():
    return mt.datasets.simulate_smart(150, 12, 8, rank=2, source_rank=4, sigma0=0.01,
                                      sigma=0.3, random_state=5)


@pytest.fixture(scope="module")
def frames(sim):
    xn = [f"x{j + 1}" for j in range(12)]
    yn = [f"Y{j + 1}" for j in range(8)]
    df = pd.concat([pd.DataFrame(sim.Y, columns=yn), pd.DataFrame(sim.X, columns=xn)],
                   axis=1)
    src = pd.DataFrame(sim.C0, index=xn, columns=yn)
    return df, src, " + ".join(yn) + " ~ " + " + ".join(xn)


def test_source_forms_agree(sim, frames):
    df, src, formula = frames
    a = mt.SMART(sim.Y, sim.X, source=sim.C0, intercept=True).fit(**CFG)
    # DataFrame source with shuffled rows/columns and an Intercept row: aligned by name
    shuffled = src.sample(frac=1.0, random_state=0)[src.columns[::-1]]
    shuffled.loc["Intercept"] = 99.0
    b = mt.SMART.from_formula(formula, df, source=shuffled).fit(**CFG)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-10)
    # a fitted results object as the source: only its params are used
    ref = mt.OLS(pd.DataFrame(sim.Y, columns=src.columns),
                 pd.DataFrame(sim.X, columns=src.index)).fit()
    c = mt.SMART.from_formula(formula, df, source=ref).fit(**CFG)
    d = mt.SMART.from_formula(formula, df, source=ref.params).fit(**CFG)
    np.testing.assert_allclose(c.coef, d.coef, atol=1e-12)
    assert list(b.params.index) == list(src.index)


def test_source_mismatch_lists_names(frames):
    df, src, formula = frames
    bad = src.rename(index={"x3": "z3"}, columns={"Y2": "W2"})
    with pytest.raises(ValueError) as err:
        mt.SMART.from_formula(formula, df, source=bad)
    msg = str(err.value)
    for name in ("x3", "z3", "Y2", "W2"):
        assert name in msg
    with pytest.raises(ValueError, match="12 x 8"):
        mt.SMART.from_formula(formula, df, source=np.zeros((8, 12)))
    with pytest.raises(TypeError, match="source"):
        mt.SMART.from_formula(formula, df)
    with pytest.raises(ValueError, match="NaN"):
        mt.SMART.from_formula(formula, df, source=src.where(src > 0))


@pytest.mark.parametrize("kw, exc, words", [
    (dict(rank=0), ValueError, "rank"),
    (dict(rank=9), ValueError, "rank"),
    (dict(rank=2, structural_rank=(13, 4), lam=0.1), ValueError, "r_u"),
    (dict(rank=2, structural_rank=(4, 9), lam=0.1), ValueError, "r_v"),
    (dict(rank=2, structural_rank=4, lam=-1.0), ValueError, "lam"),
    (dict(rank=2, structural_rank=4, lam=(0.1, 0.1, 0.1)), TypeError, "lam"),
    (dict(rank=2, structural_rank=4, lam=0.1, tol=0), ValueError, "tol"),
    (dict(rank=2, structural_rank=4, lam=0.1, solver="x"), TypeError, "solver"),
])
def test_fit_argument_errors(sim, kw, exc, words):
    with pytest.raises(exc, match=words):
        mt.SMART(sim.Y, sim.X, source=sim.C0).fit(**kw)


def test_results_api(sim, frames, tmp_path):
    df, src, formula = frames
    res = mt.SMART.from_formula(formula, df, source=src).fit(**CFG)
    assert res.rank == 2 and res.structural_rank == (4, 4) and res.lam == (0.02, 0.02)
    U, V, d = res.U.to_numpy(), res.V.to_numpy(), res.singular_values.to_numpy()
    np.testing.assert_allclose(U.T @ U, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-10)
    assert np.all(np.diff(d) <= 0) and np.all(d >= 0)
    np.testing.assert_allclose((U * d) @ V.T, res.params.to_numpy(), atol=1e-12)
    # alignment = U_perp^T U computed independently from the source's SVD
    U0, s0, V0t = np.linalg.svd(src.to_numpy(), full_matrices=True)
    Om_u = res.alignment["Omega_u"].to_numpy()
    assert Om_u.shape == (8, 2)
    # within the source's rank r0 the singular vectors are determined (up to sign);
    # beyond it any basis of the complement is valid, and the block's norm is invariant
    r0 = np.linalg.matrix_rank(src.to_numpy())
    np.testing.assert_allclose(np.abs(Om_u[:r0 - 4]), np.abs(U0[:, 4:r0].T @ U), atol=1e-5)
    outside = U - U0[:, :r0] @ (U0[:, :r0].T @ U)
    assert np.linalg.norm(Om_u[r0 - 4:]) == pytest.approx(np.linalg.norm(outside), abs=1e-5)
    # llf, aic, bic on statsmodels' Gaussian scale: per response, variance ssr_j / n
    n = 150
    resid = df[src.columns].to_numpy() - res.fittedvalues.to_numpy()
    ssr = np.sum(resid ** 2, axis=0)
    llf = np.sum(-n / 2 * (np.log(2 * np.pi * ssr / n) + 1))
    assert res.llf == pytest.approx(llf, rel=1e-12)
    # df: r (r_u + r_v - r) for the rank-2 matrix in the source subspaces + leaked entries
    k = 2 * (4 + 4 - 2) + sum(res.nnz_alignment) + 8     # + 8 intercepts
    assert res.bic == pytest.approx(-2 * llf + np.log(n) * k, rel=1e-12)
    assert res.aic == pytest.approx(-2 * llf + 2 * k, rel=1e-12)
    # the lambda-path criterion (docs: smart.rst) is a tuning score, kept apart from bic
    hist = res.history
    assert {"objective", "primal_residual", "dual_residual", "rho"} <= set(hist.columns)
    assert len(hist) == res.n_iter and res.converged
    # predict on new rows equals X C + intercept
    new = df.iloc[:4]
    manual = new[src.index].to_numpy() @ res.coef + res.intercept.to_numpy()
    np.testing.assert_allclose(res.predict(new).to_numpy(), manual, atol=1e-12)
    res.save(tmp_path / "s.mtl")
    back = mt.load(tmp_path / "s.mtl")
    pd.testing.assert_frame_equal(back.predict(new), res.predict(new))


def test_summary_shows_configuration_and_spectrum(frames):
    df, src, formula = frames
    res = mt.SMART.from_formula(formula, df, source=src).fit(**CFG)
    text = res.summary().as_text()
    for words in ("SMART Results", "structural rank", "(4, 4) (given)", "BIC:",
                  "Converged:", "Primal residual:", "source s0", "angle U (deg)",
                  "nnz Omega_u", "Per-response fit", "R2"):
        assert words in text, words
    s0 = np.linalg.svd(src.to_numpy(), compute_uv=False)
    assert f"{s0[0]:#.4g}" in text
    angles = res.principal_angles()
    assert angles.shape == (2, 2) and (angles.to_numpy() >= 0).all()
    assert (angles.to_numpy() <= 90).all()


def test_verify_reports_small_discrepancies(sim):
    res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(**CFG, tol=1e-8)
    v = res.verify()["value"]
    assert v["d_step"] < 1e-6
    assert v["omega_u_step"] < 1e-6 and v["omega_v_step"] < 1e-6
    assert v["orth_u"] < 1e-10 and v["orth_v"] < 1e-10
    # Riemannian gradients at the solver's tolerance, in the gradient's own scale
    bound = 10 * 1e-8 * gradient_scale(res.model.moments()[1])
    assert v["rgrad_u"] < bound and v["rgrad_v"] < bound


def test_data_not_modified(sim):
    X, Y, C0 = sim.X.copy(), sim.Y.copy(), sim.C0.copy()
    mt.SMART(sim.Y, sim.X, source=sim.C0).fit(**CFG)
    np.testing.assert_array_equal(X, sim.X)
    np.testing.assert_array_equal(Y, sim.Y)
    np.testing.assert_array_equal(C0, sim.C0)


def test_tuned_summary_reports_the_path_work(sim):
    res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=(4, 4))
    path = res.tuning["bic_path"]
    assert res.lam[0] == pytest.approx(path.loc[path["bic"].idxmin(), "lam_u"])
    text = res.summary().as_text()
    assert "Lambda-path iterations:" in text and str(int(path["n_iter"].sum())) in text
    assert "(BIC)" in text
