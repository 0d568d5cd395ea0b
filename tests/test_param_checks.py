"""Every declared fit option is checked, by name, for every estimator that takes it
(the declarations of mtltransfer._validation read by every model's fit)."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer._validation import Param, check_params, declared_params, show
from conftest import make_problem

X, Y, _ = make_problem(40, 5, 3, seed=1)
SOURCE = np.random.default_rng(2).standard_normal((5, 3))


def _models():
    return {
        "OLS": mt.OLS(Y, X), "Ridge": mt.Ridge(Y, X), "ReducedRank": mt.ReducedRank(Y, X),
        "NuclearNorm": mt.NuclearNorm(Y, X),
        "NuclearContrast": mt.NuclearContrast(Y, X, source=SOURCE),
        "RidgeToSource": mt.RidgeToSource(Y, X, source=SOURCE),
        "SMART": mt.SMART(Y, X, source=SOURCE),
        "SourceSubspaceRRR": mt.SourceSubspaceRRR(Y, X, source=SOURCE),
        "SourceMixture": mt.SourceMixture(Y, X, source=SOURCE),
        "SharedRepresentation": mt.SharedRepresentation(Y[:, 0], X,
                                                        groups=np.arange(40) % 4),
    }


# (option, bad value, error, message) refused by every estimator whose fit takes it
BAD = [("tol", -1.0, ValueError, r"tol must be a finite number > 0"),
       ("tol", 0.0, ValueError, r"tol must be a finite number > 0"),
       ("tol", "1e-6", TypeError, r"tol must be a finite number > 0"),
       ("max_iter", 0, ValueError, r"max_iter must be an integer in \[1, 10000000\]"),
       ("max_iter", 2.5, TypeError, r"max_iter must be an integer"),
       ("verbose", "yes", TypeError, r"verbose must be True or False"),
       ("backend", "scipy", ValueError, r"backend must be one of \['fast', 'cvxpy'\]"),
       ("n_folds", 1, ValueError, r"n_folds must be an integer >= 2")]


@pytest.mark.parametrize("option, value, error, match", BAD)
def test_every_estimator_refuses_a_bad_option_by_name(option, value, error, match):
    import inspect

    takers = 0
    for name, model in _models().items():
        params = inspect.signature(type(model).fit).parameters
        if option not in params:
            continue
        takers += 1
        with pytest.raises(error, match=match):
            model.fit(**{option: value})
    assert takers >= 3


@pytest.mark.parametrize("cls", ["NuclearNorm", "NuclearContrast"])
def test_nuclear_models_refuse_negative_tol_and_no_iterations(cls):
    model = _models()[cls]
    with pytest.raises(ValueError, match=r"^tol must be a finite number > 0; got -1$"):
        model.fit(lam=0.1, tol=-1)
    with pytest.raises(ValueError, match=r"^max_iter must be an integer in \[1, 10000000\]; "
                                         r"got 0$"):
        model.fit(lam=0.1, max_iter=0)


def test_penalties_and_ranks_refused_with_the_reason():
    m = _models()
    with pytest.raises(ValueError, match=r"alpha must be a finite number >= 0 or None; "
                                         r"got -0.5"):
        m["Ridge"].fit(alpha=-0.5)
    with pytest.raises(TypeError, match=r"alpha must be .*got 1j"):
        m["Ridge"].fit(alpha=1j)
    with pytest.raises(ValueError, match=r"lam must be a finite number >= 0 or None; "
                                         r"got nan"):
        m["NuclearNorm"].fit(lam=float("nan"))
    with pytest.raises(ValueError, match=r"rank must be an integer in \[1, 3\] or None \(a "
                                         r"rank is at most min\(p, q\): 5 predictor\(s\), "
                                         r"3 response\(s\)\); got 4"):
        m["ReducedRank"].fit(rank=4)


def test_one_task_shared_representation_says_why_k_is_bounded():
    one = mt.SharedRepresentation(Y[:, 0], X, groups=np.zeros(40))
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 1\] or None \(k <= "
                                         r"min\(d, T\): .*predictors \(d = 5\) and tasks "
                                         r"\(T = 1\)\); got 2"):
        one.fit(k=2)
    four = _models()["SharedRepresentation"]
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 4\]"):
        four.fit(k=5)
    with pytest.raises(ValueError, match=r"method must be one of"):
        four.fit(k=1, method="em")


def test_declarations_are_read_from_the_class_and_its_bases():
    table = declared_params(mt.NuclearContrast)
    # the common options of every model, NuclearNorm's own tighter ones inherited
    assert set(table) >= {"tol", "max_iter", "backend", "verbose", "lam", "n_folds"}
    assert not table["tol"].none and "alpha" not in table
    assert declared_params(mt.OLS)["tol"].none          # a closed form ignores tol=None
    # a declaration checks only what it declares, and says which argument is wrong
    spec = {"tol": Param("real", 0, low_open=True)}
    assert check_params(spec, {"tol": 1e-3, "other": -5}) == {"tol": 1e-3, "other": -5}
    with pytest.raises(ValueError, match="^tol must be a finite number > 0; got 0$"):
        check_params(spec, {"tol": 0})


def test_values_in_messages_print_as_python_values():
    assert show(np.array([0, 1], dtype=np.int64)) == "[0, 1]"
    assert show(np.arange(12), 3) == "[0, 1, 2, ...]"
    assert show(pd.Index(["a", "b"])) == "['a', 'b']"


def test_every_ranked_estimator_refuses_a_rank_above_min_p_q_with_the_reason():
    import inspect

    takers = []
    for name, model in _models().items():
        if "rank" not in inspect.signature(type(model).fit).parameters:
            continue
        takers.append(name)
        with pytest.raises(ValueError, match=r"^rank must be an integer in \[1, 3\] or None "
                                             r"\(a rank is at most min\(p, q\)"):
            model.fit(rank=4)
        with pytest.raises(TypeError, match=r"^rank must be an integer"):
            model.fit(rank=1.5)
    for name, cls in (("SparseReducedRank", mt.SparseReducedRank), ("SOFAR", mt.SOFAR),
                      ("RSSVD", mt.RSSVD)):
        takers.append(name)
        with pytest.raises(ValueError, match=r"^rank must be an integer in \[1, 3\]"):
            cls(Y, X).fit(rank=0)
        with pytest.raises(ValueError, match=r"^gamma must be a finite number >= 0"):
            cls(Y, X).fit(rank=1, gamma=-1.0)
    assert {"ReducedRank", "SMART", "SourceSubspaceRRR", "SourceMixture"} <= set(takers)
    with pytest.raises(ValueError, match=r"^weight must be a finite number >= 0 and <= 1 or "
                                         r"None \(the source's share\); got 1.5"):
        _models()["SourceMixture"].fit(weight=1.5, rank=1)


def test_validation_module_is_the_bottom_of_the_import_graph():
    import ast
    import pathlib

    import mtltransfer._validation as v

    tree = ast.parse(pathlib.Path(v.__file__).read_text())
    imported = [node for node in ast.walk(tree) if isinstance(node, (ast.Import,
                                                                     ast.ImportFrom))]
    assert imported
    for node in imported:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not node.module.startswith("mtltransfer")
        else:
            assert not any(a.name.startswith("mtltransfer") for a in node.names)


def test_dask_models_read_the_same_declarations():
    import dask.dataframe as dd

    df = pd.DataFrame(X[:, :3], columns=["x1", "x2", "x3"]).assign(y=Y[:, 0], y2=Y[:, 1],
                                                                   g=np.arange(40) % 2)
    ddf = dd.from_pandas(df, npartitions=2)
    shared = mt.SharedRepresentation.from_formula("y ~ x1 + x2 + x3", ddf, groups="g")
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 2\] or None \(k <= "
                                         r"min\(d, T\).*\(T = 2\)\); got 3"):
        shared.fit(k=3)
    with pytest.raises(ValueError, match=r"^tol must be a finite number > 0; got -1$"):
        mt.NuclearNorm.from_formula("y + y2 ~ x1 + x2", ddf).fit(lam=0.1, tol=-1)
