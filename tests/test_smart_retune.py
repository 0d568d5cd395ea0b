"""Bootstrap replicates of SMART with refit_tuning=True: tuned as the full fit, solved to
the replicates' certificate tolerance."""

import numpy as np

import mtltransfer as mt
from mtltransfer.bootstrap import replicate_fit_kwargs


def test_retuned_replicate_is_the_tuned_fit_at_the_replicate_tolerance():
    X, Y, C, C0 = mt.datasets.simulate_smart(80, 10, 6, rank=2, source_rank=4, sigma0=0.01,
                                             random_state=1)
    res = mt.SMART(Y, X, source=C0, intercept=False).fit()
    kw = replicate_fit_kwargs(res, refit_tuning=True)
    # nothing of the tuning is fixed, only the certificate tolerance is the replicates'
    assert kw["tol"] == 1e-4 and not {"rank", "structural_rank", "lam"} & set(kw)
    assert replicate_fit_kwargs(res, refit_tuning=False)["tol"] == 1e-4
    # a tighter user tol is kept at 1e-4 at most, a looser one as given
    loose = mt.SMART(Y, X, source=C0, intercept=False).fit(tol=1e-3)
    assert replicate_fit_kwargs(loose, refit_tuning=True)["tol"] == 1e-3
    # a re-tuned replicate is the fully tuned fit of its rows at that tolerance
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 80, 80)
    a = mt.SMART(Y[idx], X[idx], source=C0, intercept=False).fit(**kw)
    assert a.converged and a.state["tol"] == 1e-4
    # other models keep their full-data keywords unchanged
    ols = mt.OLS(Y, X).fit()
    assert replicate_fit_kwargs(ols, refit_tuning=True) == dict(ols.fit_kwargs)
