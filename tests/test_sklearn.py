"""The scikit-learn estimators of mtltransfer.sklearn: scikit-learn's estimator checks, and
agreement of GridSearchCV, cross_val_score and metadata routing with the native models."""

import inspect

import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

import mtltransfer as mt
from mtltransfer import sklearn as mts

from conftest import make_problem


def _source(xnames, ynames):
    """A fixed nonzero source for any shape (the estimator checks vary p and q)."""
    p, q = len(xnames), len(ynames)
    return np.add.outer(np.arange(1.0, p + 1), np.linspace(1.0, 2.0, q)) / p


def _check_instances():
    out = []
    for spec in mts.ESTIMATORS:
        cls = getattr(mts, spec.name)
        if spec.source:
            out.append(cls(source=_source))
            if spec.name == "SMARTRegressor":     # without a source: the checks that fit
                out.append(cls())                # are listed in its tags

        elif spec.groups:
            out += [cls(method="gd"), cls()]
        else:
            out.append(cls())
    return out


@parametrize_with_checks(_check_instances(),
                         expected_failed_checks=lambda est: get_tags(est).expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    state = np.random.get_state()    # some checks draw from NumPy's global generator
    try:
        check(estimator)
    finally:
        np.random.set_state(state)


def _r2_mean(Y, P):
    """R^2 per response (centred total sum of squares), averaged."""
    Y, P = np.asarray(Y).reshape(len(Y), -1), np.asarray(P).reshape(len(P), -1)
    return float(np.mean(1 - ((Y - P) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)))


def _standardise(train, test):
    """The scaler's arithmetic exactly: SMART is solved to tol=1e-6 (nonconvex ADMM), so
    inputs that differ in the last bits can give fits that differ at that level."""
    scaler = StandardScaler().fit(train)
    return scaler.transform(train), scaler.transform(test)


@pytest.fixture(scope="module")
def transfer_problem():
    X, Y, C = make_problem(90, 8, 5, rank=2, noise=0.5, seed=3)
    X = X * np.array([1, 10, 0.1, 1, 5, 1, 2, 1])        # units differ: the scaler matters
    rng = np.random.default_rng(4)
    C0 = C + 0.05 * rng.standard_normal(C.shape)
    return X, Y, C0


def test_grid_search_in_pipeline_matches_native_fits(transfer_problem):
    X, Y, C0 = transfer_problem
    grid = {"smartregressor__rank": [1, 2, 3], "smartregressor__lam": [0.01, 0.2]}
    cv = KFold(3, shuffle=True, random_state=0)
    pipe = make_pipeline(StandardScaler(), mts.SMARTRegressor(source=C0, structural_rank=3))
    gs = GridSearchCV(pipe, grid, cv=cv).fit(X, Y)
    # each candidate's CV score, recomputed with the native model on the same splits
    expected = []
    for rank, lam in zip(gs.cv_results_["param_smartregressor__rank"],
                         gs.cv_results_["param_smartregressor__lam"]):
        scores = []
        for train, test in cv.split(X):
            Xtr, Xte = _standardise(X[train], X[test])
            res = mt.SMART(Y[train], Xtr, source=C0, intercept=True).fit(
                rank=rank, structural_rank=3, lam=lam)
            scores.append(_r2_mean(Y[test], res.predict(Xte)))
        expected.append(np.mean(scores))
    assert_allclose(gs.cv_results_["mean_test_score"], expected, rtol=0, atol=1e-12)
    best = int(np.argmax(expected))
    assert gs.best_index_ == best
    # the refit equals the native fit on the standardised data with the chosen settings
    Xs = _standardise(X, X)[0]
    native = mt.SMART(Y, Xs, source=C0, intercept=True).fit(
        rank=gs.best_params_["smartregressor__rank"], structural_rank=3,
        lam=gs.best_params_["smartregressor__lam"])
    est = gs.best_estimator_[-1]
    assert_allclose(est.coef_, native.params.to_numpy().T, rtol=0, atol=1e-12)
    assert_allclose(est.intercept_, native.intercept.to_numpy(), rtol=0, atol=1e-12)
    assert est.rank_ == native.rank == gs.best_params_["smartregressor__rank"]
    assert est.results_.lam == native.lam


def test_cross_val_score_n_jobs_two_equals_one_and_native(transfer_problem):
    X, Y, C0 = transfer_problem
    est = make_pipeline(StandardScaler(), mts.SMARTRegressor(source=C0))   # all tuned
    cv = KFold(3, shuffle=True, random_state=1)
    one = cross_val_score(est, X, Y, cv=cv, n_jobs=1)
    two = cross_val_score(est, X, Y, cv=cv, n_jobs=2)
    assert_array_equal(one, two)
    native = []
    for train, test in cv.split(X):
        Xtr, Xte = _standardise(X[train], X[test])
        res = mt.SMART(Y[train], Xtr, source=C0, intercept=True).fit()
        native.append(_r2_mean(Y[test], res.predict(Xte)))
    assert_allclose(one, native, rtol=0, atol=1e-12)


def test_attributes_score_and_shapes():
    X, Y, _ = make_problem(60, 6, 4, rank=2, seed=5)
    est = mts.ReducedRankRegressor(rank=2).fit(X, Y)
    res = mt.ReducedRank(Y, X, intercept=True).fit(rank=2)
    assert_allclose(est.coef_, res.params.to_numpy().T, atol=1e-12)
    assert_allclose(est.intercept_, res.intercept.to_numpy(), atol=1e-12)
    assert est.rank_ == 2 and est.n_features_in_ == 6
    assert_allclose(est.predict(X), X @ res.params.to_numpy() + res.intercept.to_numpy(),
                    atol=1e-10)
    assert_allclose(est.score(X, Y), _r2_mean(Y, est.predict(X)), atol=1e-12)
    assert est.hyperparameters_ == {"rank": 2}
    # one response given as 1-d: coef_ (p,), a float intercept, 1-d predictions
    one = mts.OLSRegressor().fit(X, Y[:, 0])
    ols = mt.OLS(Y[:, :1], X, intercept=True).fit()
    assert one.coef_.shape == (6,) and isinstance(one.intercept_, float)
    assert_allclose(one.coef_, ols.params.to_numpy()[:, 0], atol=1e-10)
    assert one.predict(X).shape == (60,)
    assert_allclose(one.score(X, Y[:, 0]), ols.rsquared.iloc[0], atol=1e-10)


def test_defaults_are_the_native_fits():
    for spec in mts.ESTIMATORS:
        params = getattr(mts, spec.name)().get_params()
        native = inspect.signature(spec.model.fit).parameters
        assert {k: params[k] for k in spec.fit} == {k: native[k].default for k in spec.fit}
        assert params["fit_intercept"] is True and ("source" in params) == spec.source


def test_pandas_names_source_alignment_and_output(transfer_problem):
    X, Y, C0 = transfer_problem
    X = StandardScaler().fit_transform(X)
    xn, yn = [f"f{j}" for j in range(X.shape[1])], [f"r{j}" for j in range(Y.shape[1])]
    Xdf = pd.DataFrame(X, columns=xn, index=pd.RangeIndex(100, 190))
    Ydf = pd.DataFrame(Y, columns=yn, index=Xdf.index)
    # a source DataFrame in another row and column order is aligned by name
    src = pd.DataFrame(C0, index=xn, columns=yn).iloc[::-1, ::-1]
    # (solved to 1e-10: pandas and NumPy inputs differ in memory layout, hence in the last
    # bits of the products, and the ADMM's answer moves by about its tolerance)
    kw = dict(rank=2, structural_rank=3, lam=0.1, tol=1e-10)
    by_name = mts.SMARTRegressor(source=src, **kw).fit(Xdf, Ydf)
    by_pos = mts.SMARTRegressor(source=C0, **kw).fit(X, Y)
    assert list(by_name.feature_names_in_) == xn
    assert list(by_name.results_.params.index) == xn
    assert list(by_name.results_.params.columns) == yn
    assert_allclose(by_name.coef_, by_pos.coef_, atol=1e-8)
    est = clone(by_name.set_output(transform="pandas")).fit(Xdf, Ydf)
    pred = est.predict(Xdf.iloc[:7])
    assert isinstance(pred, pd.DataFrame) and list(pred.columns) == yn
    assert pred.index.equals(Xdf.index[:7])
    assert_allclose(pred.to_numpy(), by_name.predict(Xdf.iloc[:7]), atol=1e-12)
    series = mts.OLSRegressor().set_output(transform="pandas").fit(Xdf, Ydf["r1"]).predict(Xdf)
    assert isinstance(series, pd.Series) and series.name == "r1"
    with pytest.raises(ValueError, match="transform must be"):
        mts.OLSRegressor().set_output(transform="polars")


def test_source_errors_name_the_argument(transfer_problem):
    X, Y, C0 = transfer_problem
    with pytest.raises(TypeError, match="source="):
        mts.SMARTRegressor().fit(X, Y)
    with pytest.raises(ValueError, match="source must be a 8 x 5 array"):
        mts.RidgeToSourceRegressor(source=C0[:-1]).fit(X, Y)


def test_constant_column_is_the_intercept():
    X, Y, _ = make_problem(50, 4, 3, seed=6)
    Xc = np.column_stack([X[:, :2], np.full(50, 2.0), X[:, 2:]])
    with_const = mts.ReducedRankRegressor(rank=2).fit(Xc, Y)
    without = mts.ReducedRankRegressor(rank=2).fit(X, Y)
    assert_array_equal(with_const.coef_[:, 2], 0.0)
    assert_allclose(np.delete(with_const.coef_, 2, axis=1), without.coef_, atol=1e-12)
    assert_allclose(with_const.predict(Xc), without.predict(X), atol=1e-12)


def _tasks(T=6, N=30, d=5, k=2, seed=7):
    rng = np.random.default_rng(seed)
    B = np.linalg.qr(rng.standard_normal((d, k)))[0]
    W = rng.standard_normal((k, T))
    g = np.repeat(np.arange(T), N)
    X = rng.standard_normal((T * N, d))
    y = np.einsum("id,di->i", X, (B @ W)[:, g]) + 0.5 * g + 0.3 * rng.standard_normal(T * N)
    return X, y, g


def test_shared_representation_groups_by_metadata_routing():
    X, y, g = _tasks()
    est = mts.SharedRepresentationRegressor(k=2)
    cv = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(est, X, y, cv=cv, params={"groups": g})
    native = []
    for train, test in cv.split(X):
        res = mt.SharedRepresentation(y[train], X[train], g[train], intercept=True).fit(k=2)
        native.append(_r2_mean(y[test], res.predict(X[test], groups=g[test])))
    assert_allclose(scores, native, rtol=0, atol=1e-12)
    fitted = est.fit(X, y, groups=g)
    res = mt.SharedRepresentation(y, X, g, intercept=True).fit(k=2)
    assert_allclose(fitted.coef_, res.params.to_numpy().T, atol=1e-10)
    assert fitted.rank_ == 2 and list(fitted.tasks_) == list(range(6))
    with pytest.raises(ValueError, match="groups is required"):
        fitted.predict(X)
    with pytest.raises(ValueError, match=r"tasks not seen in fitting: \['9'\]"):
        fitted.predict(X[:2], groups=[0, 9])
    with pytest.raises(ValueError, match="at least two tasks"):
        mts.SharedRepresentationRegressor().fit(X, y)


def test_transfer_regressor_is_the_native_transfer_call(transfer_problem):
    """The transfer-family call through scikit-learn: the same choice, the same fit."""
    import mtltransfer as mt

    X, Y, C0 = transfer_problem
    est = mts.TransferRegressor(source=C0, candidates=("source", "source slopes",
                                                       "RidgeToSource", "OLS")).fit(X, Y)
    native = mt.Transfer(Y, X, source=C0, intercept=True).fit(
        candidates=("source", "source slopes", "RidgeToSource", "OLS"))
    assert est.results_.method == native.method
    assert_allclose(est.coef_, native.coef.T, atol=1e-10)
    assert_allclose(est.intercept_, native.intercept.to_numpy(), atol=1e-10)
