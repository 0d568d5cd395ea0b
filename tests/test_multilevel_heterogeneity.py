"""When ``task_variance="auto"`` keeps the common variance, a new group's intervals
average over the heterogeneity tau = 1/a of the task variances that the training groups
leave possible (``heterogeneity_grid``): checked against the separate model's limit, a
dense per-draw mixture, and the widening of a group whose rows scatter more."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mtltransfer as mt
from mtltransfer.solvers import shared_multilevel as sml


@pytest.fixture(scope="module")
def homogeneous():
    rng = np.random.default_rng(5)
    T, n = 40, 8
    g = np.repeat(np.arange(T), n)
    x = rng.standard_normal(T * n)
    u = rng.multivariate_normal([0, 0], [[1.0, 0.2], [0.2, 0.4]], T)
    y = 2 + 0.5 * x + u[g, 0] + u[g, 1] * x + rng.standard_normal(T * n)
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mt.SharedRepresentation.from_formula("y ~ x", data, groups="g",
                                                   re_formula="~ x").fit()
    return data, res


def test_auto_keeps_common_and_marks_it(homogeneous):
    _, res = homogeneous
    assert res.task_variance == "common"
    assert res.__dict__.get("_auto_common") is True


def test_separate_deviance_tends_to_the_common_one(homogeneous):
    _, res = homogeneous
    st, ex = res.model.group_stats(), res._solver.extra
    s2 = ex["sigma2"] / st.sy ** 2
    common = sml._full_deviance(np.concatenate([ex["beta_s"], ex["theta"], [s2]]), st,
                                ex["k"])[0]
    # the t likelihood tends to the normal one as O(1/a)
    diff = []
    for a in (1e4, 1e5):
        par = np.concatenate([ex["beta_s"], ex["theta"], [np.log(a), np.log(a * s2)]])
        diff.append(sml._separate_deviance(par, st, ex["k"])[0] - common)
    assert abs(diff[1]) < 1e-2 and 8 < diff[0] / diff[1] < 12
    tau, w = sml.heterogeneity_grid(st, res._solver)
    assert tau[0] == 0 and abs(w.sum() - 1) < 1e-12 and np.all(w >= 0)
    # the weights are the trapezoid rule of exp(-dev/2) (one point checked directly)
    j = 10
    par = np.concatenate([ex["beta_s"], ex["theta"], [-np.log(tau[j]),
                                                      np.log(s2 / tau[j])]])
    dj = sml._separate_deviance(par, st, ex["k"])[0]
    dens = np.exp(-0.5 * (dj - common))
    h = np.diff(tau)
    w0 = h[0] / 2                                    # the density at tau = 0 is 1
    assert abs(w[j] / w[0] - dens * (h[j - 1] + h[j]) / 2 / w0) < 1e-8 * w[j] / w[0]


def test_intervals_are_the_mixture_with_tau_draws(homogeneous):
    data, res = homogeneous
    rng = np.random.default_rng(1)
    x = rng.standard_normal(9)
    new = pd.DataFrame({"x": x, "y": 1 + 0.5 * x + 3 * rng.standard_normal(9), "g": -1})
    seen, rest = new.iloc[:5], new.iloc[5:]
    a = res.adapt(seen)
    pr = a.get_prediction(rest, alpha=0.1)
    D, npar, k, sub = a._draws()
    tau = a._tau_draws(len(D))
    assert tau is not None and (tau > 0).mean() > 0.5
    st = res.model.group_stats()
    Xs = np.column_stack([np.ones(5), seen["x"]])
    Xn = np.column_stack([np.ones(4), rest["x"]])
    yv = seen["y"].to_numpy()
    F = []
    grid = pr["obs_ci_lower"].to_numpy(), pr["obs_ci_upper"].to_numpy()
    for d, t in zip(D, tau):
        beta = d[:npar] * st.sy / st.Dx
        nth = len(sml.tril_index(sub.q, k))
        L = sml.unpack_tril(d[npar:npar + nth], sub.q, k) / sub.Dz[:, None]
        Lam = L @ L.T
        V = Xs @ Lam @ Xs.T + np.eye(5)
        e = yv - Xs @ beta
        u = Lam @ Xs.T @ np.linalg.solve(V, e)
        K = Lam - Lam @ Xs.T @ np.linalg.solve(V, Xs @ Lam)
        s = d[-1] * st.sy ** 2
        if t > 0:
            aa = 1 / t
            s = (aa * s + e @ np.linalg.solve(V, e) / 2) / (aa + 2.5)
            cdf = lambda z: stats.t.cdf(z, 2 * aa + 5)           # noqa: E731
        else:
            cdf = stats.norm.cdf
        m = Xn @ beta + Xn @ u
        sd = np.sqrt(s * (1 + np.einsum("ij,jk,ik->i", Xn, K, Xn)))
        F.append([cdf((g - m) / sd) for g in grid])
    F = np.mean(F, axis=0)
    np.testing.assert_allclose(F[0], 0.05, atol=1e-9)
    np.testing.assert_allclose(F[1], 0.95, atol=1e-9)


def test_a_scattered_group_gets_wider_intervals_than_under_common(homogeneous):
    data, res = homogeneous
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        common = mt.SharedRepresentation.from_formula(
            "y ~ x", data, groups="g", re_formula="~ x").fit(task_variance="common")
    assert not common.__dict__.get("_auto_common")
    rng = np.random.default_rng(2)
    x = rng.standard_normal(9)
    width = {}
    for name, sd in (("calm", 1.0), ("scattered", 4.0)):
        new = pd.DataFrame({"x": x, "y": 2 + 0.5 * x + sd * rng.standard_normal(9),
                            "g": -1})
        w = []
        for r in (res, common):
            pr = r.adapt(new.iloc[:5]).get_prediction(new.iloc[5:])
            w.append(float(np.mean(pr["obs_ci_upper"] - pr["obs_ci_lower"])))
        width[name] = w[0] / w[1]
    # a group with the training groups' scatter keeps about the common intervals; one
    # with four times their sd gets wider ones
    assert 0.95 < width["calm"] < 1.08
    assert width["scattered"] > width["calm"] + 0.05
