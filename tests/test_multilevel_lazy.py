"""The multilevel rank selection builds only the chosen candidate's results; the
criterion table's log-likelihoods come from the deviances and equal the built results'."""

import numpy as np
import pytest

import mtltransfer as mt
from mtltransfer.solvers import shared_multilevel as sml


@pytest.mark.parametrize("reml", [False, True])
def test_table_llf_equals_the_built_results(reml):
    X, y, task, B, W = mt.datasets.simulate_shared(T=30, N=12, d=2, k=1, random_state=3)
    Xc = np.column_stack([np.ones(len(y)), X])
    model = mt.SharedRepresentation(y, Xc, task, exog_re=Xc[:, :2])
    st = model.group_stats()
    choice, table, sols = sml.select_k_multilevel(st, reml=reml, intercept_col=0)
    assert set(table) == {"intercept", 1, 2}
    for c in table:
        sol = sols[c]                       # built on reading
        assert abs(table[c][0] - sol.extra["llf"]) <= 1e-9 * abs(sol.extra["llf"])
        assert table[c][3] == sol.converged
    # the chosen candidate is the full fit's answer at its rank
    direct = sml.fit_multilevel(st, choice, reml=reml) if choice != "intercept" else \
        sml.fit_restricted(st, [0], 1, reml=reml)
    assert abs(direct.extra["llf"] - table[choice][0]) < 1e-7
