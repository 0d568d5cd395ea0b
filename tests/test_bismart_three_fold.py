"""BI-SMART's three-fold protocol and its quotient Gauss-Newton refinement.

The refinement never increases the joint objective and its first step decreases it;
its Jacobian-vector product and adjoint agree with finite differences and with each
other; the refined fit is invariant to rotations of the source's singular vectors
within tied blocks (1e-8). The protocol's choice is the candidate with the smallest
validation error on fold 3, recomputed by hand, with the safeguards always present.
"""

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.gram import SufficientStats
from mtltransfer.smart import block_refine as br
from mtltransfer.smart import blocks as bk


def _tied(seed=0, p=20, q=15, n=60):
    """A source with tied singular values (5, 5, 5, 2, 2, 1) and a target near its
    first block plus a little outside it."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((p, p)))[0]
    V = np.linalg.qr(rng.standard_normal((q, q)))[0]
    s = np.zeros(min(p, q))
    s[:6] = [5, 5, 5, 2, 2, 1]
    C0 = (U[:, :q] * s) @ V.T
    C = U[:, :3] @ rng.standard_normal((3, 2)) @ rng.standard_normal((2, 3)) @ V[:, :3].T
    C += 0.5 * np.outer(U[:, 4], V[:, 5])
    X = rng.standard_normal((n, p))
    Y = X @ C + 0.5 * rng.standard_normal((n, q))
    return rng, U, V, s, C0, X, Y


BLOCKS = [(0, 3), (3, 5), (5, 6), (6, 20)]


def _refined(U, V, s, C0, X, Y, rank=2):
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    n, p = X.shape
    Sxx, Sxy = Xc.T @ Xc / n, Xc.T @ Yc / n
    I = np.arange(3)
    C_r, M = bk.restricted_rrr(Sxx, Sxy, U[:, I], V[:, I], rank)
    state = br.initial_state(U, s, V, BLOCKS, 6, I, I, M, rank)
    prob = br.Problem(Xc, Yc, C0, omega=np.trace(Sxx) / p)
    out, hist = br.refine(prob, state)
    return C_r, state, out, hist, prob


def test_refinement_decreases_the_objective_and_starts_at_the_restricted_fit():
    _, U, V, s, C0, X, Y = _tied()
    C_r, start, out, hist, prob = _refined(U, V, s, C0, X, Y)
    np.testing.assert_allclose(start.coef(), C_r, atol=1e-12)
    np.testing.assert_allclose(start.source(), C0, atol=1e-12)
    assert len(hist) >= 2
    assert np.all(np.diff(hist) <= 0)
    assert hist[-1] < hist[0] * (1 - 1e-3)          # the tilt pays on this design
    assert prob.value(out) == pytest.approx(hist[-1], rel=1e-14)
    # the state stays on its manifold: orthonormal bases, zero unselected rows
    np.testing.assert_allclose(out.U0.T @ out.U0, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(out.V0.T @ out.V0, np.eye(6), atol=1e-12)
    assert not np.any(out.A[3:]) and not np.any(out.B[3:])
    assert not np.any(out.G[~out.pattern])


def test_jacobian_matches_finite_differences_and_its_adjoint():
    rng, U, V, s, C0, X, Y = _tied(1)
    _, state, _, _, prob = _refined(U, V, s, C0, X, Y)
    shapes = [state.U0, state.V0, state.A, state.B, state.H, state.G]
    d = prob.project(state, tuple(rng.standard_normal(x.shape) for x in shapes))
    e = tuple(rng.standard_normal(x.shape) for x in prob.residual(state))
    Jd = prob.jvp(state, d)
    # <J d, e> = <d, J^T e> on tangent directions
    lhs = sum(np.sum(a * b) for a, b in zip(Jd, e))
    rhs = sum(np.sum(a * b) for a, b in zip(d, prob.vjp(state, e)))
    assert lhs == pytest.approx(rhs, rel=1e-10)
    # J d against central differences of the residual along the (unretracted) line
    h = 1e-6

    def line(t):
        st = br.State(*(x + t * dx for x, dx in zip(shapes, d)), state.act_u,
                      state.act_v, state.pattern)
        return prob.residual(st)
    fd = [(a - b) / (2 * h) for a, b in zip(line(h), line(-h))]
    for a, b in zip(Jd, fd):
        np.testing.assert_allclose(a, b, atol=1e-6 * max(1.0, np.abs(b).max()))


def test_refined_fit_is_invariant_to_rotations_within_tied_blocks():
    rng, U, V, s, C0, X, Y = _tied(2)
    R = np.eye(20)
    Rv = np.eye(15)
    Q3 = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    Q2 = np.linalg.qr(rng.standard_normal((2, 2)))[0]
    R[:3, :3], Rv[:3, :3] = Q3, Q3
    R[3:5, 3:5], Rv[3:5, 3:5] = Q2, Q2
    U2, V2 = U @ R, V @ Rv
    np.testing.assert_allclose((U2[:, :15] * s) @ V2.T, C0, atol=1e-12)   # same source
    a = _refined(U, V, s, C0, X, Y)[2].coef()
    b = _refined(U2, V2, s, C0, X, Y)[2].coef()
    assert np.abs(a - _refined(U, V, s, C0, X, Y)[0]).max() > 1e-3    # it moved
    np.testing.assert_allclose(a, b, atol=1e-8)


def test_three_fold_choice_is_the_smallest_validation_error_with_the_safeguards():
    sim = mt.datasets.simulate_smart(150, 20, 12, rank=2, source_rank=5, sigma0=0.01,
                                     sigma=0.5, random_state=3)
    mod = mt.BISMART(sim.Y, sim.X, source=sim.C0)
    res = mod.fit(protocol="three-fold")
    table = res.tuning["three_fold"]
    rows = res.tuning["three_fold_rows"]
    labels = set(table["label"])
    assert {"zero", "one block, full budget", "target only (minimum-norm RRR)"} <= labels
    assert "refined" in labels and "restricted RRR" in labels
    # the fit is on fold 2 (no refit), validated on fold 3, screened on fold 1
    assert res.nobs == len(rows["fit"])
    assert sorted(np.r_[rows["screen"], rows["fit"], rows["validation"]]) == list(range(150))
    X3, Y3 = sim.X[rows["validation"]], sim.Y[rows["validation"]]
    err = np.mean((Y3 - X3 @ res.coef - res.intercept.to_numpy()) ** 2)
    assert err == pytest.approx(table["val_mse"].min(), rel=1e-10)
    # the target-only safeguard recomputed by hand on fold 2
    X2, Y2 = sim.X[rows["fit"]], sim.Y[rows["fit"]]
    rrr = mt.ReducedRank(Y2, X2).fit(rank=res.rank)
    e_t = np.mean((Y3 - X3 @ rrr.coef - rrr.intercept.to_numpy()) ** 2)
    row = table[table["label"] == "target only (minimum-norm RRR)"]
    assert float(row["val_mse"].iloc[0]) == pytest.approx(e_t, rel=1e-8)
    # each refinement decreased its objective
    ref = table[table["label"] == "refined"]
    assert np.all(ref["f_end"] <= ref["f_start"])


def test_three_fold_refuses_what_it_does_not_do():
    sim = mt.datasets.simulate_smart(60, 10, 6, rank=2, source_rank=4, sigma0=0.01,
                                     random_state=0)
    with pytest.raises(ValueError, match="rule=None"):
        mt.BISMART(sim.Y, sim.X, source=sim.C0).fit(protocol="three-fold", rule="leading")
    with pytest.raises(ValueError, match="protocol"):
        mt.BISMART(sim.Y, sim.X, source=sim.C0).fit(protocol="two-fold")
