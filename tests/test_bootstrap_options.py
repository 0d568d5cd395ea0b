"""Bootstrap replicates refit with the full-data fit's options; failures are reported;
arguments are checked; warnings point at the user's line."""

import warnings

import numpy as np
import pytest

import mtltransfer as mt
import mtltransfer.bootstrap as bs
from mtltransfer.exceptions import ConvergenceWarning, MtlWarning
from mtltransfer.solvers.shared_baselines import subspace_distance

from conftest import make_problem


@pytest.fixture(scope="module")
def shared():
    X, y, task, B, W = mt.datasets.simulate_shared(60, 12, 8, 2, random_state=0)
    return X, y, task


def test_fit_kwargs_record_the_call_and_replicates_replay_them(shared):
    X, y, task = shared
    res = mt.SharedRepresentation(y, X, groups=task).fit(None, method="gd", w_ridge=0.5)
    assert res.fit_kwargs == {"k": None, "method": "gd", "w_ridge": 0.5}
    # re-tuned replicates: the call as given (k chosen again, the same method and ridge)
    assert bs.replicate_fit_kwargs(res, True) == {"k": None, "method": "gd",
                                                  "w_ridge": 0.5}
    # fixed tuning: the chosen k, the same options, a warm start at the fitted B
    fixed = bs.replicate_fit_kwargs(res, False)
    assert fixed["k"] == res.k and fixed["method"] == "gd" and fixed["w_ridge"] == 0.5
    np.testing.assert_array_equal(fixed["init"], res.representation.to_numpy())


def test_replicates_use_the_fit_method(shared, monkeypatch):
    """Every replicate's fit is called with method='gd' (it was refitted by the default
    'marginal' method when re-tuned)."""
    X, y, task = shared
    res = mt.SharedRepresentation(y, X, groups=task).fit(2, method="gd")
    seen = []
    original = mt.SharedRepresentation.fit

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("method"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(mt.SharedRepresentation, "fit", spy)
    res.bootstrap(n_boot=3, random_state=0, refit_tuning=True)
    res.bootstrap(n_boot=3, random_state=0)
    assert seen == ["gd"] * 6


def test_retuned_replicates_with_another_k_are_kept(shared):
    X, y, task = shared
    res = mt.SharedRepresentation(y, X, groups=task).fit(None)
    boot = res.bootstrap(n_boot=6, method="pairs", random_state=3, refit_tuning=True)
    assert boot.n_failed == 0 and boot.coef.shape[0] == 6
    dist = boot.extra["subspace_distance"].ravel()
    k_rep = boot.extra["k"].ravel()
    assert len(dist) == len(k_rep) == 6
    other = k_rep != res.k
    assert other.any(), "no replicate chose another k: the test would prove nothing"
    # spans of dimensions k1 != k2 are at least sqrt(|k1 - k2| / 2) apart:
    # ||P1 - P2||_F^2 / 2 = (k1 + k2 - 2 ||B1'B2||_F^2) / 2 >= |k1 - k2| / 2
    assert np.all(dist[other] >= np.sqrt(np.abs(k_rep[other] - res.k) / 2) - 1e-12)
    assert np.all(dist <= np.sqrt((k_rep + res.k) / 2) + 1e-12)


def test_subspace_distance_between_dimensions():
    e = np.eye(5)
    # span(e1, e2) against span(e1): (2 + 1)/2 - 1 = 1/2
    assert subspace_distance(e[:, :2], e[:, :1]) == pytest.approx(np.sqrt(0.5))
    rng = np.random.default_rng(0)
    B1 = np.linalg.qr(rng.standard_normal((7, 3)))[0]
    B2 = np.linalg.qr(rng.standard_normal((7, 2)))[0]
    ref = np.linalg.norm(B1 @ B1.T - B2 @ B2.T) / np.sqrt(2)
    assert subspace_distance(B1, B2) == pytest.approx(ref, rel=1e-12)
    assert subspace_distance(B2, B1) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="same number of rows"):
        subspace_distance(B1, B2[:6])


def test_failed_replicates_warn_and_are_counted(monkeypatch):
    X, Y, _ = make_problem(60, 5, 3, seed=31)
    res = mt.ReducedRank(Y, X, intercept=True).fit(rank=2)
    original = bs.Resampler.fit_replicate

    def flaky(self, rng, kwargs):
        if rng.random() < 0.4:
            raise ValueError("a degenerate resample")
        return original(self, rng, kwargs)

    monkeypatch.setattr(bs.Resampler, "fit_replicate", flaky)
    with pytest.warns(MtlWarning, match=r"of 30 bootstrap replicates could not be fitted"):
        boot = res.bootstrap(n_boot=30, random_state=0)
    expected = sum(np.random.default_rng(s).random() < 0.4
                   for s in np.random.SeedSequence(0).spawn(30))
    assert boot.n_failed == expected > 0 and boot.coef.shape[0] == 30 - expected


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_jobs": "2"}, ValueError, "n_jobs"),
    ({"n_jobs": 1.5}, ValueError, "n_jobs"),
    ({"n_jobs": 0}, ValueError, "n_jobs"),
    ({"refit_tuning": "no"}, TypeError, "refit_tuning"),
    ({"random_state": "seed"}, TypeError, "random_state"),
    ({"random_state": -1}, TypeError, "random_state"),
])
def test_bad_bootstrap_arguments_name_themselves(kwargs, error, match):
    X, Y, _ = make_problem(40, 4, 2, seed=1)
    res = mt.OLS(Y, X).fit()
    with pytest.raises(error, match=match):
        res.bootstrap(n_boot=4, **kwargs)


def test_generator_random_state_is_accepted_and_reproducible():
    X, Y, _ = make_problem(40, 4, 2, seed=1)
    res = mt.OLS(Y, X).fit()
    a = res.bootstrap(n_boot=5, random_state=np.random.default_rng(11))
    b = res.bootstrap(n_boot=5, random_state=np.random.default_rng(11))
    np.testing.assert_array_equal(a.coef, b.coef)


@pytest.mark.parametrize("alpha", [1.5, 0, "0.1", True])
def test_bad_alpha_is_refused_everywhere(shared, alpha):
    X, y, task = shared
    res = mt.SharedRepresentation(y, X, groups=task).fit(2)
    new = res.adapt(X[:6], y[:6])
    Xo, Y, _ = make_problem(40, 4, 2, seed=1)
    ols = mt.OLS(Y, Xo).fit()
    boot = ols.bootstrap(n_boot=4, random_state=0)
    for call in (lambda: new.conf_int(alpha), lambda: new.predict_interval(X[:3], alpha),
                 lambda: new.get_prediction(X[:3]).summary_frame(alpha),
                 lambda: ols.get_prediction(Xo[:3]).summary_frame(alpha),
                 lambda: boot.conf_int(alpha), lambda: ols.conf_int(alpha)):
        with pytest.raises(ValueError, match="alpha"):
            call()


def test_warnings_point_at_the_users_line():
    X, Y, C = make_problem(80, 6, 4, seed=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mt.NuclearNorm(Y, X).fit(lam=0.01, max_iter=2)
    conv = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert conv and all(w.filename == __file__ for w in conv)


def test_labelled_params_draws_and_newdata():
    X, Y, _ = make_problem(60, 5, 3, seed=31)
    res = mt.ReducedRank(Y, X, intercept=True).fit(rank=2)
    boot = res.bootstrap(n_boot=7, random_state=2)
    draws = boot.params
    assert draws.shape == (7, 15)
    # replicate 3's coefficient of (x2, Y3) is coef[3, 1, 2]
    assert draws.loc[3, ("x2", "Y3")] == boot.coef[3, 1, 2]
    np.testing.assert_allclose(draws.std(ddof=1).unstack().loc[res.params.index,
                                                                res.params.columns],
                               boot.bse, rtol=1e-12)
    a = boot.predict(newdata=X[:3])
    b = boot.predict(X[:3])
    assert a.equals(b)
    with pytest.raises(TypeError, match="not both"):
        boot.predict(X[:3], newdata=X[:3])


def test_bootstrap_of_results_without_rows_is_refused(tmp_path):
    X, Y, _ = make_problem(60, 5, 3, seed=31)
    res = mt.ReducedRank(Y, X, intercept=True).fit(rank=2)
    res.save(tmp_path / "r.mtl", remove_data=True)
    back = mt.load(tmp_path / "r.mtl")
    with pytest.raises(TypeError, match="needs the training rows in memory"):
        back.bootstrap(n_boot=4)
