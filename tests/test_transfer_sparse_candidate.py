"""SparseSMART as an opt-in candidate of Transfer.

On a design whose target uses a few non-leading source directions (sparse alignments),
the leading-subspace transfers need the whole source span and gain nothing over the
target-only fit, while SparseSMART keeps just the directions used: Transfer, given it
as a candidate, picks it, and its fit is SparseSMART's own on all rows.
"""

import warnings

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.models.transfer_family import OPTIONAL_CANDIDATES, TRANSFER_CANDIDATES

CANDIDATES = ["source slopes", "SourceSubspaceRRR", "ReducedRank", "SparseSMART"]


@pytest.fixture(scope="module")
def sparse_alignment():
    rng = np.random.default_rng(11)
    p, q, n, k = 20, 12, 80, 10
    U = np.linalg.qr(rng.standard_normal((p, k)))[0]
    V = np.linalg.qr(rng.standard_normal((q, k)))[0]
    C0 = (U * np.linspace(10, 3, k)) @ V.T + 0.01 * rng.standard_normal((p, q))
    C = U[:, [6, 8]] @ (1.5 * rng.standard_normal((2, 2))) @ V[:, [7, 9]].T
    X = rng.standard_normal((n, p))
    Y = X @ C + rng.standard_normal((n, q))
    return X, Y, C0, C


def test_sparse_smart_is_opt_in():
    assert "SparseSMART" in OPTIONAL_CANDIDATES
    assert "SparseSMART" not in TRANSFER_CANDIDATES


def test_transfer_picks_sparse_smart_where_it_wins(sparse_alignment):
    X, Y, C0, C = sparse_alignment
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mt.Transfer(Y, X, source=C0).fit(candidates=CANDIDATES, rule="min",
                                               n_folds=3)
        others = {m: mt.Transfer(Y, X, source=C0).fit(method=m)
                  for m in ("SourceSubspaceRRR", "ReducedRank")}
    table = res.tuning["transfer_cv"]
    assert res.method == "SparseSMART"
    assert table["cv_mse"].idxmin() == "SparseSMART"
    assert table.loc["SparseSMART", "cv_mse"] < 0.95 * table.loc["ReducedRank", "cv_mse"]
    # the chosen fit is SparseSMART's own on all rows
    assert isinstance(res.chosen, mt.SparseSMARTResults) and res.chosen.nobs == len(Y)
    np.testing.assert_array_equal(res.coef, res.chosen.coef)
    # and it wins on the truth too
    err = np.linalg.norm(res.coef - C)
    assert all(err < np.linalg.norm(r.coef - C) for r in others.values())
