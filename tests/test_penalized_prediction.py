"""get_prediction on every tuned (penalised) fit: statsmodels' summary_frame columns from
the bootstrap draws (the stored bootstrap, or one run and stored first)."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.bootstrap import interval
from mtltransfer.exceptions import MtlWarning
from conftest import make_problem

X, Y, _ = make_problem(40, 5, 3, seed=1)
SOURCE = np.random.default_rng(2).standard_normal((5, 3))


@pytest.mark.parametrize("make", [lambda: mt.Ridge(Y, X).fit(),
                                  lambda: mt.ReducedRank(Y, X).fit(rank=2),
                                  lambda: mt.SMART(Y, X, source=SOURCE).fit(
                                      rank=2, structural_rank=3, lam=0.01),
                                  lambda: mt.RidgeToSource(Y, X, source=SOURCE).fit()])
def test_summary_frame_is_the_bootstraps_draws(make):
    res = make()
    assert res.bootstrap_results is None
    new = X[:4]
    if getattr(res.model, "source", None) is not None:    # an array source: said once
        with pytest.warns(MtlWarning, match="the source is treated as exact"):
            pred = res.get_prediction(new, n_boot=60, random_state=3)
    else:
        pred = res.get_prediction(new, n_boot=60, random_state=3)
    boot = res.bootstrap_results                      # run once and stored
    assert boot is not None and boot.n_boot == 60
    draws = res.predict_draws(new, boot.coef, boot.intercept)      # B x rows x q
    point = res.predict(new).to_numpy()
    frame = pred.summary_frame(alpha=0.1)
    assert list(frame.columns.get_level_values(1).unique()) == [
        "mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    lo, hi = interval(draws, point, 0.1, "percentile")
    for j, name in enumerate(res.model.endog_names):
        np.testing.assert_allclose(frame[(name, "mean")], point[:, j], rtol=1e-12)
        np.testing.assert_allclose(frame[(name, "mean_se")], draws[:, :, j].std(0, ddof=1),
                                   rtol=1e-12)
        np.testing.assert_allclose(frame[(name, "mean_ci_lower")], lo[:, j], rtol=1e-12)
        np.testing.assert_allclose(frame[(name, "mean_ci_upper")], hi[:, j], rtol=1e-12)
    # the same intervals as the bootstrap's own predict
    other = boot.predict(new, alpha=0.1)
    np.testing.assert_allclose(other[(res.model.endog_names[0], "lower")],
                               lo[:, 0], rtol=1e-12)
    # a second call reuses the stored draws
    again = res.get_prediction(new).summary_frame(0.1)
    pd.testing.assert_frame_equal(again, frame)


def test_one_response_frame_and_checked_alpha():
    res = mt.Ridge(Y[:, :1], X).fit()
    frame = res.get_prediction(X[:3], n_boot=30, random_state=0).summary_frame(0.05)
    assert list(frame.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    assert np.all(frame["mean_ci_lower"] <= frame["mean_ci_upper"])
    with pytest.raises(ValueError, match="alpha"):
        res.get_prediction(X[:3]).summary_frame(1.5)
    with pytest.raises(ValueError, match="kind must be one of"):
        res.get_prediction(X[:3], kind="studentized")
