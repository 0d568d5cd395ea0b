"""The Examples sections of the scikit-learn regressors (mtltransfer.sklearn, generated from
its table of estimators) run as doctests, and every regressor has one: the complement of
tests/test_doctests.py, which covers the classes of ``mtltransfer.__all__``."""

import doctest
import inspect
import warnings

import pytest

from mtltransfer import sklearn as mts

REGRESSORS = [spec.name for spec in mts.ESTIMATORS]


def test_every_regressor_of_the_table_is_public():
    assert set(REGRESSORS) <= set(mts.__all__)
    assert len(REGRESSORS) == 14


@pytest.mark.parametrize("name", REGRESSORS)
def test_every_regressor_has_examples(name):
    doc = inspect.getdoc(getattr(mts, name))
    assert "\nExamples\n--------\n" in doc, name
    examples = doc.split("\nExamples\n--------\n", 1)[1]
    assert f"{name}(" in examples and ".fit(" in examples, name


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressor_examples_run(name):
    """The example gives the output it shows: the fit's shapes, predict = X coef_' +
    intercept_, and coef_' equal to the native results' params."""
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS |
                                   doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(getattr(mts, name), name, globs={}) if t.examples]
    assert len(tests) == 1, name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner.run(tests[0], clear_globs=True)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 8
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
