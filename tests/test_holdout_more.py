"""fit(tuning="holdout") for RSSVD (its per-layer penalties) and SharedRepresentation
(its k, on validation rows within tasks).

As in tests/test_holdout.py: on a given split, the chosen candidate is the one whose fit
on the training rows, with the candidate fixed, has the smallest mean squared error on
the validation rows, recomputed here by hand; and the returned coefficients are those of
that fixed fit on the training rows (no refit).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt

rng = np.random.default_rng(7)
N, P, Q = 80, 6, 4
X = rng.standard_normal((N, P))
C_TRUE = rng.standard_normal((P, 2)) @ rng.standard_normal((2, Q))
Y = X @ C_TRUE + 1.0 + rng.standard_normal((N, Q))
MASK = np.zeros(N, dtype=bool)
MASK[::4] = True                                 # validation: every fourth row
T, V = np.flatnonzero(~MASK), np.flatnonzero(MASK)


def test_rssvd_holdout_picks_the_smallest_validation_error_and_does_not_refit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # convergence of far candidates
        res = mt.RSSVD(Y, X, intercept=True).fit(tuning="holdout", holdout=MASK)
        table = res.tuning["holdout"]["table"]
        rank = res.hyperparameters["rank"]
        cands = list(table["lam"])
        fits = [mt.RSSVD(Y[T], X[T], intercept=True).fit(lam=c, rank=rank) for c in cands]
    errs = []
    for f in fits:
        C, b = f.coefficient_arrays()
        R = Y[V] - X[V] @ C - b
        errs.append(float(np.mean(R * R)))
    # the candidates: every layer at the same position of its path, sparsest first,
    # ending with lam = 0 (the layers of the reduced-rank fit)
    assert len(cands) == 13 and all(v == 0.0 for v in cands[-1])
    lam0 = np.array(cands[0])
    for c, rel in zip(cands[:-1], np.logspace(np.log10(0.9), -5, 24)[::2]):
        np.testing.assert_allclose(np.array(c), lam0 / 0.9 * rel, rtol=1e-12)
    best = int(np.argmin(errs))
    assert res.tuning["holdout"]["val_mse"] == pytest.approx(min(errs), rel=1e-10)
    np.testing.assert_allclose(table["val_mse"], errs, rtol=1e-10)
    assert res.hyperparameters["lam"] == pytest.approx(cands[best], rel=1e-12)
    np.testing.assert_allclose(res.coef, fits[best].coef, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.intercept, fits[best].intercept, rtol=0, atol=1e-8)
    assert res.nobs == len(T) and res.tuning["holdout"]["refit"] is False
    assert res.chosen_by["lam"] == "holdout, 20 rows"
    assert "(holdout, 20 rows)" in res.summary().as_text()


def test_rssvd_holdout_with_given_penalties_has_nothing_to_choose():
    with pytest.raises(ValueError, match="nothing to choose"):
        mt.RSSVD(Y, X).fit(tuning="holdout", lam=(0.1, 0.1), rank=2)


XS, yS, taskS, _, _ = mt.datasets.simulate_shared(T=12, N=10, d=5, k=2, random_state=0)
yS = yS + np.linspace(-1, 1, 12)[taskS]         # per-task intercepts
MASK_S = np.arange(len(yS)) % 5 == 0             # two rows of each 10-row task
TS, VS = np.flatnonzero(~MASK_S), np.flatnonzero(MASK_S)


def _shared_val_mse(fit):
    """Validation error of a fit on the training rows, by hand: b_t + x_i^T theta_t."""
    theta = fit.params.to_numpy()
    b = fit.intercept.to_numpy()
    col = pd.Index(fit.params.columns).get_indexer(taskS[VS])
    pred = np.einsum("id,di->i", XS[VS], theta[:, col]) + b[col]
    return float(np.mean((yS[VS] - pred) ** 2))


@pytest.mark.parametrize("method", ["marginal", "gd"])
def test_shared_holdout_picks_k_by_validation_rows_within_tasks(method):
    np.testing.assert_array_equal(np.bincount(taskS[VS]), np.full(12, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # EM slow at k above the true one
        res = mt.SharedRepresentation(yS, XS, taskS, intercept=True).fit(
            tuning="holdout", holdout=MASK_S, method=method, tol=1e-6)
        ks = list(res.tuning["holdout"]["table"]["k"])
        fits = [mt.SharedRepresentation(yS[TS], XS[TS], taskS[TS], intercept=True).fit(
            k=k, method=method, tol=1e-6) for k in ks]
    assert ks == list(range(1, 6))               # 1..min(d, T - 1, 12); 1..min(d, T)
    errs = [_shared_val_mse(f) for f in fits]
    best = int(np.argmin(errs))
    np.testing.assert_allclose(res.tuning["holdout"]["table"]["val_mse"], errs, rtol=1e-10)
    assert res.k == ks[best]
    assert _shared_val_mse(res) == pytest.approx(min(errs), rel=1e-10)
    np.testing.assert_allclose(res.params.to_numpy(), fits[best].params.to_numpy(),
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.intercept.to_numpy(), fits[best].intercept.to_numpy(),
                               rtol=0, atol=1e-8)
    assert list(res.params.columns) == list(range(12))     # task labels kept
    assert res.nobs == len(TS) and res.tuning["holdout"]["refit"] is False
    assert res.chosen_by == {"k": "holdout, 24 rows"}
    assert f"{res.k} (holdout, 24 rows)" in res.summary().as_text()


def test_shared_holdout_share_is_taken_within_each_task():
    y = yS[:-7]                                  # the last task keeps 3 rows
    model = mt.SharedRepresentation(y, XS[:-7], taskS[:-7], intercept=True)
    train, val = model._holdout_split(0.2, 3)
    counts = np.bincount(taskS[:-7][val], minlength=12)
    np.testing.assert_array_equal(counts, [2] * 11 + [1])   # round(0.2 N_t), N_t - 2 cap
    np.testing.assert_array_equal(np.sort(np.r_[train, val]), np.arange(len(y)))
    y2 = yS[:-8]                                 # 2 rows: the task keeps both
    _, val2 = mt.SharedRepresentation(y2, XS[:-8], taskS[:-8])._holdout_split(0.2, 3)
    assert np.bincount(taskS[:-8][val2], minlength=12)[11] == 0


def test_shared_holdout_refusals():
    model = mt.SharedRepresentation(yS, XS, taskS)
    with pytest.raises(ValueError, match="each task training rows"):
        model.fit(tuning="holdout", holdout=taskS == 3)
    with pytest.raises(ValueError, match="nothing to choose"):
        model.fit(tuning="holdout", method="per_task")
    with pytest.raises(ValueError, match="nothing to choose"):
        model.fit(tuning="holdout", k=2)


# a full-rank random part (slopes of rank 3 and task intercepts): no candidate is above
# the truth, so each fixed-k fit is unique (a rank above the truth leaves a flat direction)
XM, yM, taskM, _, _ = mt.datasets.simulate_shared(T=30, N=12, d=3, k=3, random_state=0)
yM = yM + np.random.default_rng(1).standard_normal(30)[taskM]
XM = np.column_stack([np.ones(len(yM)), XM])     # intercept and slopes, all random
MASK_M = np.arange(len(yM)) % 6 == 1             # two rows of each 12-row group
TM, VM = np.flatnonzero(~MASK_M), np.flatnonzero(MASK_M)


def test_multilevel_holdout_picks_the_random_part_by_validation_rows_within_groups():
    res = mt.SharedRepresentation(yM, XM, taskM, exog_re=XM).fit(tuning="holdout",
                                                                 holdout=MASK_M)
    ks = list(res.tuning["holdout"]["table"]["k"])
    assert ks == ["intercept", 1, 2, 3, 4]
    errs, fits = [], []
    for k in ks:
        f = mt.SharedRepresentation(yM[TM], XM[TM], taskM[TM], exog_re=XM[TM]).fit(k=k)
        u = np.stack([np.asarray(f.random_effects[t]) for t in range(30)])   # by group
        pred = XM[VM] @ f.fe_params.to_numpy() + np.sum(XM[VM] * u[taskM[VM]], axis=1)
        errs.append(float(np.mean((yM[VM] - pred) ** 2)))
        fits.append(f)
    best = int(np.argmin(errs))
    np.testing.assert_allclose(res.tuning["holdout"]["table"]["val_mse"], errs, rtol=1e-10)
    assert res.random_part == fits[best].random_part
    np.testing.assert_allclose(res.fe_params.to_numpy(), fits[best].fe_params.to_numpy(),
                               rtol=0, atol=1e-8)
    for t in range(30):
        np.testing.assert_allclose(np.asarray(res.random_effects[t]),
                                   np.asarray(fits[best].random_effects[t]), rtol=0,
                                   atol=1e-8)
    assert res.nobs == len(TM) and res.k_chosen_by == "holdout, 60 rows"


def test_shared_formula_holdout_predicts_the_validation_rows_by_their_groups_column():
    frame = pd.DataFrame(XS, columns=[f"x{j}" for j in range(5)]).assign(y=yS, g=taskS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mt.SharedRepresentation.from_formula(
            "y ~ x0 + x1 + x2 + x3 + x4", frame, groups="g").fit(
            tuning="holdout", holdout=0.2, tol=1e-6)
    val = res.tuning["holdout"]["validation_rows"]
    np.testing.assert_array_equal(np.bincount(taskS[val]), np.full(12, 2))
    pred = np.asarray(res.predict(frame.iloc[val]))          # groups read from "g"
    assert np.mean((yS[val] - pred) ** 2) == pytest.approx(
        res.tuning["holdout"]["val_mse"], rel=1e-10)
