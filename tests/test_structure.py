"""One results family and one construction path for every model."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.models.base import PenalizedResults, Results

from conftest import make_problem


@pytest.fixture(scope="module")
def frame():
    X, Y, _ = make_problem(60, 5, 3, seed=21)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    for j in range(3):
        df[f"Y{j}"] = Y[:, j]
    return df


FORMULA = "Y0 + Y1 + Y2 ~ x0 + x1 + x2 + x3 + x4"


@pytest.fixture(scope="module")
def fits(frame):
    src = mt.OLS.from_formula(FORMULA, frame).fit()
    s = mt.datasets.simulate_shared(15, 10, 5, 2, random_state=3)
    return {
        "OLS": src,
        "Ridge": mt.Ridge.from_formula(FORMULA, frame).fit(),
        "ReducedRank": mt.ReducedRank.from_formula(FORMULA, frame).fit(),
        "NuclearNorm": mt.NuclearNorm.from_formula(FORMULA, frame).fit(lam=0.05),
        "SMART": mt.SMART.from_formula(FORMULA, frame, source=src).fit(
            rank=1, structural_rank=2, lam=0.01),
        "SharedRepresentation": mt.SharedRepresentation(s.y, s.X, s.task).fit(k=2),
    }


def test_every_results_object_is_one_family(fits):
    for name, res in fits.items():
        assert isinstance(res, Results), name
        # one definition of each criterion, from the same likelihood
        assert res.aic == pytest.approx(-2 * res.llf + 2 * res.k_params, rel=1e-12)
        assert res.bic == pytest.approx(-2 * res.llf + np.log(res.nobs) * res.k_params,
                                        rel=1e-12)
        assert isinstance(res.tuning, dict)
        assert all(isinstance(v, pd.DataFrame) for v in res.tuning.values())
        assert res.stop_reason in ("converged", "max_iter", "stalled", "closed_form")
        h = res.history
        if len(h):
            assert h.index[0] == 1 and h.index[-1] == len(h) == res.n_iter, name
    for name in ("Ridge", "ReducedRank", "NuclearNorm", "SMART"):
        assert isinstance(fits[name], PenalizedResults), name
    assert fits["OLS"].stop_reason == "closed_form" and fits["OLS"].tuning == {}
    assert fits["Ridge"].chosen_by == {"alpha": "GCV"} and "gcv" in fits["Ridge"].tuning
    assert fits["ReducedRank"].rank == len(fits["ReducedRank"].tuning["rank"].query(
        "selected"))
    with pytest.raises(AttributeError, match="no 'rank'"):
        fits["Ridge"].rank


def test_from_formula_goes_through_init(frame):
    calls = []

    class Counted(mt.Ridge):
        def __init__(self, *args, **kwargs):
            calls.append(kwargs)
            super().__init__(*args, **kwargs)

    mod = Counted.from_formula(FORMULA, frame)
    assert len(calls) == 1 and mod.formula == FORMULA
    with pytest.raises(TypeError, match="source"):
        mt.OLS.from_formula(FORMULA, frame, source=np.ones((5, 3)))


def test_shared_representation_options_are_honest():
    s = mt.datasets.simulate_shared(20, 8, 5, 2, random_state=4)
    mod = mt.SharedRepresentation(s.y, s.X, s.task)
    for method in ("per_task", "mom"):
        with pytest.raises(ValueError, match="no CVXPY formulation"):
            mod.fit(k=2, method=method, backend="cvxpy")
    # max_iter is the cap given, not ten times it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mt.ConvergenceWarning)
        res = mod.fit(method="nuclear", lam=1e-4, max_iter=3, tol=1e-14)
    assert res.n_iter == 3 and not res.converged and res.stop_reason == "max_iter"
