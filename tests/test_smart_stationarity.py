"""SMART's ``converged`` means stationary: the final fit of every SMART fit, tuned or not,
passes the KKT certificate (:func:`mtltransfer.smart.admm.stationarity`) at ``tol``,
and a tuned fit is the fit of its own settings."""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

import mtltransfer as mt
from mtltransfer.exceptions import ConvergenceWarning
from mtltransfer.smart.admm import smart_solve, stationarity
from mtltransfer.smart.problem import SmartProblem

FORMULA = "li + lv ~ lc + C(era) + year"
CERTIFIED = ["primal_residual_u", "primal_residual_v", "rgrad_u", "kkt_u", "rgrad_v",
             "kkt_v", "grad_d"]


@pytest.fixture(scope="module")
def grunfeld():
    g = sm.datasets.grunfeld.load_pandas().data.copy()
    g["li"], g["lv"], g["lc"] = np.log(g.invest), np.log(g.value), np.log(g.capital)
    g["era"] = np.where(g.year < 1945, "pre", "post")
    return g


@pytest.fixture(scope="module")
def ibm(grunfeld):
    src = mt.OLS.from_formula(FORMULA, grunfeld[grunfeld.firm != "IBM"]).fit()
    return mt.SMART.from_formula(FORMULA, grunfeld[grunfeld.firm == "IBM"].iloc[::2],
                                 source=src)


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b))
                 / max(np.linalg.norm(np.asarray(b)), 1e-300))


def test_tuned_grunfeld_fit_is_the_refit_at_its_settings_and_stationary(ibm):
    """IBM target, 10 rows: the tuned fit once stopped after 3 iterations at objective
    0.019879 with kkt_u = 7e-3 (the C(era) coefficient 0.094 against 0.261 refitted)."""
    t = ibm.fit()
    x = ibm.fit(rank=t.rank, structural_rank=t.structural_rank, lam=t.lam)
    assert t.converged and x.converged
    assert t.objective == pytest.approx(x.objective, rel=1e-6)
    assert _rel(t.params, x.params) <= 1e-6
    v = t.verify()
    assert list(v.columns) == ["value", "threshold", "passed"]
    assert v.loc[CERTIFIED, "passed"].all()
    assert (v.loc[CERTIFIED, "value"] <= v.loc[CERTIFIED, "threshold"]).all()
    # the threshold is tol times the gradient scale, at least f(0) = tr(Syy) / 2
    Syy = ibm.moments()[2]
    assert v.loc["kkt_u", "threshold"] >= 1e-6 * 0.5 * np.trace(Syy) * (1 - 1e-12)


def test_certificate_rejects_a_state_the_residual_rule_accepts(ibm):
    """The lambda path's last fit (lam = 0, warm-started along the path) passes the
    ADMM's residual rule but not the certificate; certified iterations from it reach
    the reduced-rank optimum."""
    prob = SmartProblem.from_moments(*ibm.moments(), svd0=ibm.source_svd)
    warm = None
    for lam in np.append(0.83 * np.logspace(0, -3, 12), 0.0):
        warm = smart_solve(prob, 1, (1, 1), lam, tol=1e-4,
                          max_iter=100, certify=False,
                          init=None if warm is None else warm.extra)
    assert warm.converged                 # by the residual rule alone
    cert = stationarity(prob, warm.extra, 1, 1, tol=1e-6)
    assert not cert["passed"] and cert["kkt_u"] > cert["thresholds"]["kkt_u"]
    polished = smart_solve(prob, 1, (1, 1), 0.0,
                          init=warm.extra, max_iter=20000)
    again = stationarity(prob, polished.extra, 1, 1, tol=1e-6)
    assert polished.converged and again["passed"]
    ref = smart_solve(prob, 1, (1, 1), 0.0)
    assert polished.objective == pytest.approx(ref.objective, rel=1e-6)
    assert polished.objective < warm.objective


def test_not_stationary_means_converged_false_with_a_warning():
    X, Y, C, C0 = mt.datasets.simulate_smart(200, 100, 50, rank=5, source_rank=10,
                                             sigma0=0.01, random_state=1)
    mod = mt.SMART(Y, X, source=C0, intercept=False)
    with pytest.warns(ConvergenceWarning, match="did not converge in 5 iterations"):
        res = mod.fit(rank=5, structural_rank=(5, 5), lam=0.3, max_iter=5)
    assert not res.converged
    v = res.verify()
    assert not v.loc[CERTIFIED, "passed"].all()


def test_every_certified_fit_passes_its_own_verify():
    X, Y, C, C0 = mt.datasets.simulate_smart(200, 100, 50, rank=5, source_rank=10,
                                             sigma0=0.01, random_state=0)
    mod = mt.SMART(Y, X, source=C0, intercept=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = mod.fit(rank=5, structural_rank=10)
    assert res.converged
    v = res.verify()
    assert v.loc[CERTIFIED, "passed"].all()
    again = mod.fit(rank=5, structural_rank=10, lam=res.lam)
    assert again.objective == pytest.approx(res.objective, rel=1e-12)
    np.testing.assert_allclose(again.params, res.params, rtol=0, atol=1e-12)


def test_bootstrap_replicates_are_certified_at_their_own_tolerance():
    """Replicates are solved to tol = max(tol, 1e-4) (SMARTResults.warm_start_kwargs);
    such a fit passes its own certificate and lies within 1% of the 1e-6 fit, far inside
    the estimate's error against the truth."""
    X, Y, C, C0 = mt.datasets.simulate_smart(200, 100, 50, rank=5, source_rank=10,
                                             sigma0=0.01, random_state=2)
    mod = mt.SMART(Y, X, source=C0, intercept=False)
    full = mod.fit(rank=5, structural_rank=8, lam=0.5)
    kw = full.warm_start_kwargs()
    assert kw == {"tol": 1e-4}
    rep = mod.fit(rank=5, structural_rank=8, lam=0.5, **kw)
    assert rep.converged and rep.verify().loc[CERTIFIED, "passed"].all()
    gap = _rel(rep.params, full.params)
    assert gap < 1e-2
    assert gap < 0.1 * _rel(full.params, C)
