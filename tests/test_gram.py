import numpy as np
import pandas as pd
import pytest

from mtltransfer.gram import SufficientStats, kfold_stats, quadratic_loss, total_stats

from conftest import make_problem


def test_chunked_equals_one_shot():
    X, Y, _ = make_problem(1003, 7, 4, seed=1)
    one = SufficientStats.from_arrays(X, Y)
    chunks = ((pd.DataFrame(X[i:i + 100]), pd.DataFrame(Y[i:i + 100]))
              for i in range(0, 1003, 100))
    many = SufficientStats.from_chunks(chunks)
    assert many.n == one.n == 1003
    for a, b in [(one.XtX, many.XtX), (one.XtY, many.XtY), (one.YtY, many.YtY),
                 (one.x_sum, many.x_sum), (one.y_sum, many.y_sum)]:
        assert np.linalg.norm(a - b) <= 1e-10 * np.linalg.norm(a)
    for a, b in zip(one.moments(), many.moments()):
        assert np.linalg.norm(a - b) <= 1e-10 * np.linalg.norm(a)


def test_centred_moments_match_centred_data():
    X, Y, C = make_problem(50, 5, 3, seed=2)
    Sxx, Sxy, Syy = SufficientStats.from_arrays(X, Y).moments(center=True)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    np.testing.assert_allclose(Sxx, Xc.T @ Xc / 50, atol=1e-12)
    np.testing.assert_allclose(Sxy, Xc.T @ Yc / 50, atol=1e-12)
    direct = 0.5 * np.sum((Yc - Xc @ C) ** 2) / 50
    assert quadratic_loss(Sxx, Sxy, Syy, C) == pytest.approx(direct, rel=1e-12)


def test_folds_partition_rows():
    X, Y, _ = make_problem(53, 4, 3, seed=3)
    folds = kfold_stats(X, Y, 5, seed=2)
    assert sorted(f.n for f in folds) == [10, 10, 11, 11, 11]
    total = total_stats(folds)
    one = SufficientStats.from_arrays(X, Y)
    np.testing.assert_allclose(total.XtY, one.XtY, rtol=1e-12)
    with pytest.raises(ValueError, match="n_folds"):
        kfold_stats(X, Y, 1)


def test_bad_chunks():
    with pytest.raises(ValueError, match="chunks is empty"):
        SufficientStats.from_chunks([])
    with pytest.raises(TypeError, match="chunks must yield"):
        SufficientStats.from_chunks([np.zeros(3)])
