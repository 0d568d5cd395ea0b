"""Options given as parts (SMART's structural_rank and lam pairs, the sparse comparators'
lam) are checked from the estimators' declarations (``_param_table``), by fit's wrapper:
the same message, naming the argument and the part, wherever the option is taken."""

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer._validation import Param, Parts, declared_params
from conftest import make_problem

X, Y, _ = make_problem(40, 5, 3, seed=1)          # p = 5, q = 3
SOURCE = np.random.default_rng(2).standard_normal((5, 3))


def test_smart_structural_rank_is_declared_and_refused_by_part():
    assert isinstance(declared_params(mt.SMART)["structural_rank"], Parts)
    m = mt.SMART(Y, X, source=SOURCE)
    with pytest.raises(ValueError, match=r"^structural_rank \(r_u\) must be an integer in "
                                         r"\[0, 5\] \(r_u <= p = 5 predictor\(s\)\); got 6$"):
        m.fit(rank=1, structural_rank=(6, 1), lam=0.1)
    with pytest.raises(ValueError, match=r"^structural_rank \(r_v\) must be an integer in "
                                         r"\[0, 3\] \(r_v <= q = 3 response\(s\)\); got 4$"):
        m.fit(rank=1, structural_rank=(1, 4), lam=0.1)
    # a scalar ties r_u and r_v: both bounds hold (4 <= p but 4 > q)
    with pytest.raises(ValueError, match=r"^structural_rank \(r_v\) must be .*got 4$"):
        m.fit(rank=1, structural_rank=4, lam=0.1)
    with pytest.raises(TypeError, match=r"^structural_rank must be a number or a pair "
                                         r"\(r_u, r_v\); got 3 values$"):
        m.fit(rank=1, structural_rank=(1, 2, 3), lam=0.1)
    with pytest.raises(TypeError, match=r"^structural_rank \(r_u\) must be an integer .*"
                                        r"got 1.5$"):
        m.fit(rank=1, structural_rank=(1.5, 2), lam=0.1)
    with pytest.raises(ValueError, match=r"^structural_rank \(r_u\) must be .*got -1$"):
        m.fit(structural_rank=(-1, 1))                  # refused before any tuning


def test_smart_lam_pair_is_declared_and_refused_by_part():
    m = mt.SMART(Y, X, source=SOURCE)
    with pytest.raises(ValueError, match=r"^lam \(lam_v\) must be a finite number >= 0; "
                                         r"got -0.5$"):
        m.fit(rank=1, structural_rank=2, lam=(0.1, -0.5))
    with pytest.raises(ValueError, match=r"^lam must be a finite number >= 0; got -1$"):
        m.fit(rank=1, structural_rank=2, lam=-1)
    with pytest.raises(ValueError, match=r"^lam \(lam_u\) must be a finite number >= 0; "
                                         r"got nan$"):
        m.fit(rank=1, structural_rank=2, lam=(float("nan"), 0.1))
    with pytest.raises(TypeError, match=r"^lam must be a finite number >= 0; got 'a'$"):
        m.fit(rank=1, structural_rank=2, lam="a")
    with pytest.raises(ValueError, match=r"^gamma must be a finite number >= 0 or 'cv'; "
                                         r"got -1$"):
        m.fit(rank=1, structural_rank=2, lam=0.1, gamma=-1)
    with pytest.raises(TypeError, match=r"^max_iter must be an integer in \[1, 10000000\]; "
                                        r"got None$"):
        m.fit(rank=1, structural_rank=2, lam=0.1, max_iter=None)


def test_smart_accepts_the_declared_forms_and_ties_scalars():
    m = mt.SMART(Y, X, source=SOURCE)
    tied = m.fit(rank=1, structural_rank=np.int64(2), lam=np.float64(0.05))
    pair = m.fit(rank=1, structural_rank=(2, 2), lam=[0.05, 0.05])
    assert tied.structural_rank == (2, 2) and tied.lam == (0.05, 0.05)
    np.testing.assert_allclose(tied.coef, pair.coef, atol=1e-12)


@pytest.mark.parametrize("cls", ["SparseReducedRank", "SOFAR", "RSSVD"])
def test_sparse_comparators_refuse_a_negative_lam_from_their_declaration(cls):
    model = getattr(mt, cls)(Y, X)
    assert "lam" in declared_params(type(model))
    with pytest.raises(ValueError, match=r"^lam must be a finite number >= 0( or NaN)?"
                                         r"( or None)?; got -1.0$"):
        model.fit(lam=-1.0, rank=1)
    with pytest.raises(TypeError, match=r"^lam must be a finite number >= 0"):
        model.fit(lam="0.1", rank=1)
    with pytest.raises(ValueError, match=r"^tol must be a finite number > 0; got 0$"):
        model.fit(lam=0.1, rank=1, tol=0)
    with pytest.raises(TypeError, match=r"^tol must be a finite number > 0; got None$"):
        model.fit(lam=0.1, rank=1, tol=None)


def test_sofar_triplet_and_rssvd_layers_checked_by_part():
    with pytest.raises(ValueError, match=r"^lam \(lam_b\) must be a finite number >= 0; "
                                         r"got -2.0$"):
        mt.SOFAR(Y, X).fit(lam=(1.0, -2.0, 3.0), rank=2)
    with pytest.raises(TypeError, match=r"^lam must be a number or a triplet \(lam_a, "
                                         r"lam_b, lam_d\); got 2 values$"):
        mt.SOFAR(Y, X).fit(lam=(1.0, 2.0), rank=2)
    with pytest.raises(ValueError, match=r"^lam\[1\] must be a finite number >= 0 or NaN; "
                                         r"got -1.0$"):
        mt.RSSVD(Y, X).fit(lam=[0.1, -1.0], rank=2)
    with pytest.raises(ValueError, match=r"^lam must hold one penalty per layer \(2 layers, "
                                         r"the rank\); got 3$"):
        mt.RSSVD(Y, X).fit(lam=[0.1, 0.1, 0.1], rank=2)
    # NaN marks an empty layer: accepted, and the layer is empty
    res = mt.RSSVD(Y, X).fit(lam=[0.01, float("nan")], rank=2)
    assert np.isnan(res.hyperparameters["lam"][1]) and res.hyperparameters["fitted_rank"] == 1


def test_parts_declaration_checks_each_part_with_its_own_bounds():
    spec = Parts({"a": Param("int", 0, 2), "b": Param("int", 0, 5)}, what="a pair (a, b)")
    assert spec.check("s", (2, 5)) == (2, 5)
    assert spec.check("s", 2) == 2
    with pytest.raises(ValueError, match=r"^s \(b\) must be an integer in \[0, 5\]; got 6$"):
        spec.check("s", (1, 6))
    with pytest.raises(ValueError, match=r"^s \(a\) must be an integer in \[0, 2\]; got 3$"):
        spec.check("s", 3)
    with pytest.raises(TypeError, match=r"^s must be a pair \(a, b\); got None$"):
        spec.check("s", None)
    with pytest.raises(TypeError, match=r"^s must be a number or a pair \(a, b\); got "):
        spec.check("s", [[1, 2]])
