"""Every public estimator documents its fit: a numpydoc docstring with its parameters
(a docstring built by string concatenation is no docstring at all: Python drops it)."""
import inspect

import pytest

import mtltransfer as mt

ESTIMATORS = sorted(name for name in mt.__all__
                    if inspect.isclass(getattr(mt, name))
                    and callable(getattr(getattr(mt, name), "fit", None)))


def test_there_are_estimators_to_check():
    assert {"OLS", "Ridge", "ReducedRank", "NuclearNorm", "SMART",
            "SharedRepresentation"} <= set(ESTIMATORS)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_has_a_numpydoc_docstring(name):
    fit = getattr(mt, name).fit
    doc = inspect.getdoc(fit)
    assert doc, f"{name}.fit has no docstring"
    assert "Parameters\n----------" in doc and "Returns\n-------" in doc, name
    assert "<fit options>" not in doc and "<closed form>" not in doc
    documented = doc.split("Returns\n-------")[0]
    for param in inspect.signature(fit).parameters:
        if param in ("self", "kwargs", "args"):
            continue
        assert param in documented, f"{name}.fit does not document {param!r}"
