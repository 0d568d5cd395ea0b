"""SMART with the magnitude pull (gamma/2)||C - C0||_F^2 (mtltransfer.smart.gamma)."""

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.smart.admm import smart_objective
from mtltransfer.smart.gamma import (magnitude_d_step, magnitude_d_step_cvx,
                                             magnitude_penalty, source_d0)


@pytest.fixture(scope="module")
def sim():
    return mt.datasets.simulate_smart(60, 12, 8, rank=2, source_rank=4, sigma0=0.05,
                                      sigma=1.0, random_state=3)


def test_d_step_matches_cvxpy():
    rng = np.random.default_rng(0)
    for gamma in (0.0, 0.3, 7.0):
        c, d0 = rng.standard_normal(5), rng.standard_normal(5)
        g = rng.uniform(0.1, 3.0, 5)
        np.testing.assert_allclose(magnitude_d_step(c, g, d0, gamma),
                                   magnitude_d_step_cvx(c, g, d0, gamma), atol=1e-7)
    # gamma = 0 is the paper's d-step c / g
    np.testing.assert_allclose(magnitude_d_step(c, g, d0, 0.0), c / g, rtol=1e-14)


def test_solution_satisfies_its_d_step_and_objective(sim):
    mod = mt.SMART(sim.Y, sim.X, source=sim.C0)
    gamma = 0.7
    res = mod.fit(rank=2, structural_rank=4, lam=0.02, gamma=gamma, tol=1e-9,
                  max_iter=5000)
    assert res.converged and res.gamma == gamma
    # the d-step of the original (not augmented) moments with the source's d0
    Sxx, Sxy, Syy = mod.moments()
    U0, s0, V0 = mod.source_svd
    A, B = U0.T @ res.state["U"], V0.T @ res.state["V"]
    c = np.einsum("ij,ij->j", A, U0.T @ Sxy @ V0 @ B)
    g = np.einsum("ij,ij->j", A, U0.T @ Sxx @ U0 @ A)
    d = magnitude_d_step(c, g, source_d0(A, B, s0), gamma)
    np.testing.assert_allclose(d, res.singular_values.to_numpy(), rtol=1e-8)
    # the reported objective is SMART's objective plus the pull, computed independently
    obj = smart_objective(Sxx, Sxy, Syy, sim.C0, res.state["U"], res.state["d"],
                          res.state["V"], (4, 4), 0.02) + \
        magnitude_penalty(res.coef, sim.C0, gamma)
    assert res.objective == pytest.approx(obj, rel=1e-10)
    ver = res.verify()["value"]
    assert ver["d_step"] < 1e-7


def test_gamma_zero_is_the_papers_smart(sim):
    mod = mt.SMART(sim.Y, sim.X, source=sim.C0)
    a = mod.fit(rank=2, structural_rank=4, lam=0.02)
    b = mod.fit(rank=2, structural_rank=4, lam=0.02, gamma=0.0)
    np.testing.assert_array_equal(a.coef, b.coef)
    assert "gamma (pull to C0)" not in a.config


def test_large_gamma_gives_the_source(sim):
    mod = mt.SMART(sim.Y, sim.X, source=sim.C0)
    s0 = mod.source_svd[1]
    C0r = sim.C0            # full rank source (noisy): rank min(p, q) = 8
    for srank in ((12, 8), (4, 4)):
        res = mod.fit(rank=8, structural_rank=srank, lam=0.05, gamma=1e7, tol=1e-10,
                      max_iter=5000)
        err = np.linalg.norm(res.coef - C0r) / np.linalg.norm(C0r)
        # the gap shrinks as 1/gamma: the data's pull over gamma
        assert err < 1e-5, (srank, err)
    assert s0.size == 8


def test_full_ranks_are_ridge_to_the_source(sim):
    gamma = 0.4
    res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=8, structural_rank=(12, 8),
                                                    lam=0.0, gamma=gamma, tol=1e-10)
    ref = mt.RidgeToSource(sim.Y, sim.X, source=sim.C0).fit(alpha=gamma)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-7, atol=1e-9)


def test_gamma_cv_picks_its_best_candidate_and_reports(sim, tmp_path):
    res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(gamma="cv")
    table = res.tuning["gamma_cv"]
    best = table.loc[table["cv_mean"].idxmin()]
    assert res.gamma == pytest.approx(best["gamma"]) and res.rank == best["rank"]
    assert res.chosen_by["gamma"] == "5-fold CV"
    assert "gamma (pull to C0)" in res.summary().as_text()
    res.save(tmp_path / "g.mtl")
    back = mt.load(tmp_path / "g.mtl")
    assert back.gamma == res.gamma
    np.testing.assert_array_equal(back.coef, res.coef)


@pytest.mark.parametrize("bad, err", [(-1.0, ValueError), ("auto", ValueError),
                                      (np.inf, ValueError), ([1.0], TypeError)])
def test_bad_gamma(sim, bad, err):
    with pytest.raises(err, match="gamma"):
        mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=4, lam=0.1,
                                                  gamma=bad)
