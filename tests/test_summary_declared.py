"""The summary reads the estimator's declaration: the hyperparameter rows of a fit's
summary are the options the model declares (``_param_table``), each with its fitted value
and how it came (how the fit tuned it, or "given" when the call fixed it)."""

import inspect
import warnings

import pytest

import mtltransfer as mt
from mtltransfer._validation import Param, declared_params, tuned_params
from mtltransfer.summary import fmt

TUNED = ["SMART", "Ridge", "ReducedRank", "NuclearNorm", "RidgeToSource",
         "NuclearContrast", "SourceSubspaceRRR", "SourceMixture", "SparseReducedRank",
         "SOFAR", "RSSVD", "ReducedRankRidge", "BISMART", "SparseSMART",
         "TwoStageTransfer", "SharedRepresentation"]


@pytest.fixture(scope="module")
def demo():
    demo = mt.datasets.load_demo()
    demo["source_fit"] = mt.ReducedRank.from_formula(demo["formula"], demo["source"]).fit()
    return demo


def _model(name, demo):
    cls = getattr(mt, name)
    if name == "SharedRepresentation":
        X, y, task, _, _ = mt.datasets.simulate_shared(T=20, N=12, d=4, k=1,
                                                       random_state=0)
        return cls(y, X, task)
    if name == "TwoStageTransfer":
        return cls.from_formula(demo["formula"], demo["target"], source_data=demo["source"])
    if "source" in inspect.signature(cls.__init__).parameters:
        return cls.from_formula(demo["formula"], demo["target"], source=demo["source_fit"])
    return cls.from_formula(demo["formula"], demo["target"])


def _fit(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(**kw)


def _text(res):
    """The summary's text with runs of spaces (column padding, wrapped cells) as one."""
    return " ".join(res.summary().as_text().split())


def test_every_tuned_estimator_is_listed():
    tuned = {n for n in mt.__all__ if inspect.isclass(getattr(mt, n))
             and hasattr(getattr(mt, n), "fit") and tuned_params(getattr(mt, n))}
    # Transfer's summary is its chosen candidate's (held by its own tests)
    assert tuned - set(TUNED) == {"Transfer"}


@pytest.mark.parametrize("name", TUNED)
def test_each_tuned_choice_is_a_summary_row_from_the_declaration(name, demo):
    res = _fit(_model(name, demo))
    text = _text(res)
    declared = declared_params(type(res.model))
    shown = 0
    for key in tuned_params(type(res.model)):
        how = res.chosen_by.get(key)
        if key not in res.hyperparameters or how in (None, "given"):
            continue                         # not tuned by this fit
        row = f"{declared[key].summary_label(key)}: {fmt(res.hyperparameters[key])} ({how})"
        assert row in text, (name, row)
        shown += 1
    assert shown >= 1, name                  # the default fit tunes something


def test_a_declared_label_is_the_row_name(demo, monkeypatch):
    """Change the declaration and the summary follows it (no per-model list of names)."""
    model = _model("Ridge", demo)
    res = _fit(model)
    assert f"alpha: {fmt(res.alpha)} (GCV)" in _text(res)
    monkeypatch.setitem(mt.Ridge.__dict__["_param_table"], "alpha",
                        Param("real", 0, none=True, tuned=True, label="ridge penalty"))
    text = _text(res)
    assert f"ridge penalty: {fmt(res.alpha)} (GCV)" in text and "alpha:" not in text


def test_a_value_the_user_fixed_is_marked_given(demo):
    ridge = _fit(_model("Ridge", demo), alpha=0.5)
    assert "alpha: 0.5000 (given)" in _text(ridge) and "(GCV)" not in _text(ridge)
    smart = _fit(_model("SMART", demo), rank=2, structural_rank=4, lam=0.02)
    text = _text(smart)
    for row in ("rank: 2 (given)", "structural rank (r_u, r_v): (4, 4) (given)",
                "lam (lam_u, lam_v): (0.02000, 0.02000) (given)"):
        assert row in text, row
    # gamma was neither given nor tuned: SMART without the pull has no gamma row
    assert "gamma (pull to C0)" not in text
    shared = _fit(_model("SharedRepresentation", demo), k=2)
    assert "k: 2 (given)" in _text(shared) and "(BIC)" not in _text(shared)
    tuned = _fit(_model("SharedRepresentation", demo))        # the fit chooses k
    assert f"k: {tuned.k} (BIC)" in _text(tuned) and "(given)" not in _text(tuned)


def test_a_default_the_fit_did_not_tune_is_not_called_given(demo):
    """BISMART's c_gap left at its default is reported as the default, and given when
    the call fixes it (to the same value)."""
    model = _model("BISMART", demo)
    default = _fit(model, rank=2, rule="leading", budget=3)
    assert f"c_gap: {fmt(default.hyperparameters['c_gap'])} (default)" in _text(default)
    given = _fit(model, rank=2, rule="leading", budget=3,
                 c_gap=default.hyperparameters["c_gap"])
    assert f"c_gap: {fmt(default.hyperparameters['c_gap'])} (given)" in _text(given)
    assert "rule: leading (given)" in _text(given)
