"""The Examples sections of the public classes' docstrings run, as doctests, against the
mtltransfer that is imported (the installed wheel in CI), and every public class has one.
"""

import doctest
import inspect
import warnings

import pytest

import mtltransfer as mt

#: public classes that are not warnings (those are documented by their one line)
CLASSES = sorted(name for name in mt.__all__
                 if inspect.isclass(getattr(mt, name))
                 and not issubclass(getattr(mt, name), Warning))


def test_the_public_classes_are_found():
    assert {"SMART", "SMARTResults", "Transfer", "SharedRepresentation", "OLS",
            "MultiResponseResults"} <= set(CLASSES)


@pytest.mark.parametrize("name", CLASSES)
def test_every_public_class_has_examples(name):
    doc = inspect.getdoc(getattr(mt, name))
    assert "\nExamples\n--------\n" in doc, name
    assert ">>> " in doc.split("\nExamples\n--------\n", 1)[1], name


@pytest.mark.parametrize("name", CLASSES)
def test_docstring_examples_run(name):
    """The class docstring's examples (and any of its methods') give the output they
    show; warnings they raise are not errors here (the tests of each model check its
    warnings), failures are."""
    finder = doctest.DocTestFinder(recurse=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS |
                                   doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(getattr(mt, name), name, globs={}) if t.examples]
    assert tests, name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for test in tests:
            runner.run(test, clear_globs=True)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
