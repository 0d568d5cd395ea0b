"""tuning="holdout" with a pandas Series mask reads it by the rows' labels, as every
pandas input of the package, never by position."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt


def _frame():
    sim = mt.datasets.simulate_smart(60, 6, 3, rank=2, source_rank=3, sigma0=0.01,
                                     random_state=0)
    X, Y = sim.X, sim.Y
    df = pd.DataFrame(np.column_stack([Y, X]),
                      columns=["y1", "y2", "y3"] + [f"x{j}" for j in range(6)])
    df.index = 1000 + np.arange(60)[::-1]                  # labels not positions
    return df


def test_series_mask_is_read_by_index():
    df = _frame()
    f = "y1 + y2 + y3 ~ " + " + ".join(f"x{j}" for j in range(6))
    mask = pd.Series(np.arange(60) % 5 == 0, index=df.index)
    shuffled = mask.sample(frac=1.0, random_state=1)       # same labels, other order
    a = mt.Ridge.from_formula(f, df).fit(tuning="holdout", holdout=mask)
    b = mt.Ridge.from_formula(f, df).fit(tuning="holdout", holdout=shuffled)
    np.testing.assert_allclose(b.params.to_numpy(), a.params.to_numpy(), rtol=0, atol=0)
    # by position the shuffled mask would hold out other rows, and give another fit
    c = mt.Ridge.from_formula(f, df).fit(tuning="holdout", holdout=shuffled.to_numpy())
    assert np.abs(c.params.to_numpy() - a.params.to_numpy()).max() > 1e-6


def test_series_mask_missing_labels_is_refused():
    df = _frame()
    f = "y1 + y2 + y3 ~ " + " + ".join(f"x{j}" for j in range(6))
    mask = pd.Series(np.arange(60) % 5 == 0, index=np.arange(60))
    with pytest.raises(ValueError, match="read by its index"):
        mt.Ridge.from_formula(f, df).fit(tuning="holdout", holdout=mask)
