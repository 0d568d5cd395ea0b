"""The estimator contract is declared: each estimator's ``_param_table`` says which fit
options its fit tunes (``tuned=True``), and the bootstrap fixes exactly those in its
replicates (nothing is matched by name)."""
import inspect
import warnings

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer._validation import Param, declared_params, tuned_params
from mtltransfer.bootstrap import replicate_fit_kwargs

ESTIMATORS = ["SMART", "OLS", "Ridge", "ReducedRank", "NuclearNorm", "RidgeToSource",
              "NuclearContrast", "SourceSubspaceRRR", "SourceMixture", "SparseReducedRank",
              "SOFAR", "RSSVD", "ReducedRankRidge", "BISMART", "SparseSMART",
              "SharedRepresentation"]


@pytest.fixture(scope="module")
def demo():
    demo = mt.datasets.load_demo()
    demo["source_fit"] = mt.ReducedRank.from_formula(demo["formula"], demo["source"]).fit()
    return demo


def _fit(name, demo):
    cls = getattr(mt, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "SharedRepresentation":
            X, y, task, _, _ = mt.datasets.simulate_shared(T=20, N=12, d=4, k=1,
                                                           random_state=0)
            return cls(y, X, task).fit()
        if "source" in inspect.signature(cls.__init__).parameters:
            return cls.from_formula(demo["formula"], demo["target"],
                                    source=demo["source_fit"]).fit()
        return cls.from_formula(demo["formula"], demo["target"]).fit()


def test_every_estimator_is_listed():
    fitted = {n for n in mt.__all__ if inspect.isclass(getattr(mt, n))
              and hasattr(getattr(mt, n), "fit") and hasattr(getattr(mt, n), "from_formula")}
    # Transfer (it refits its candidates) and TwoStageTransfer (it needs the source's
    # rows) are held by their own tests
    assert fitted - set(ESTIMATORS) == {"Transfer", "TwoStageTransfer"}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_what_the_fit_chooses_is_declared_tuned(name, demo):
    """Every hyperparameter the fit reports that is a fit option and is not the value the
    user gave (or the default) was chosen by the fit, so it must be declared tuned; and
    every declared tuned name is a fit option."""
    cls = getattr(mt, name)
    signature = inspect.signature(cls.fit).parameters
    tuned = tuned_params(cls)
    assert tuned <= set(signature), name
    res = _fit(name, demo)
    hyper = getattr(res, "hyperparameters", {})
    for key, value in hyper.items():
        if key not in signature:
            continue
        given = res.fit_kwargs.get(key, signature[key].default)
        if key not in tuned:
            assert np.all(np.asarray(given, dtype=object) == np.asarray(value, dtype=object)), \
                (name, key, given, value)
    # the replicate fixes exactly the declared tuned choices
    fixed = replicate_fit_kwargs(res)
    for key in tuned & set(hyper):
        assert fixed[key] is res.hyperparameters[key] or \
            np.all(np.asarray(fixed[key]) == np.asarray(hyper[key]))
    assert not (set(replicate_fit_kwargs(res, refit_tuning=True)) & tuned - set(res.fit_kwargs))


def test_an_undeclared_choice_is_not_fixed(demo, monkeypatch):
    """The bootstrap reads the declaration: take ``tuned`` away from Ridge's alpha and a
    replicate no longer fixes it (it would re-tune)."""
    res = mt.Ridge.from_formula(demo["formula"], demo["target"]).fit()
    assert replicate_fit_kwargs(res)["alpha"] == res.alpha
    monkeypatch.setitem(mt.Ridge.__dict__["_param_table"], "alpha",
                        Param("real", 0, none=True))
    assert "alpha" not in tuned_params(mt.Ridge)
    assert "alpha" not in replicate_fit_kwargs(res)


def test_a_declared_pair_is_checked_with_its_name(demo):
    model = mt.ReducedRankRidge.from_formula(demo["formula"], demo["target"],
                                             source=demo["source_fit"])
    assert "subspace_rank" in declared_params(mt.ReducedRankRidge)
    with pytest.raises(ValueError, match=r"subspace_rank \(d_v\)"):
        model.fit(rank=2, subspace_rank=(3, 99))
