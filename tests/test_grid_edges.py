"""Tuned choices at the edge of their grid warn (one helper, selection.warn_grid_edge);
natural boundaries do not; a zero fit has rank 0 and no slope degrees of freedom."""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

import mtltransfer as mt
from mtltransfer.exceptions import GridEdgeWarning
from mtltransfer.selection import warn_grid_edge
from mtltransfer.solvers import prox


def _noise(seed=0, n=30, p=8, q=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal((n, q))


def test_helper_tells_a_grid_end_from_a_natural_boundary():
    grid = [0.1, 1.0, 10.0]
    with pytest.warns(GridEdgeWarning, match=r"M: lam = 10 was chosen at the upper edge of "
                      r"its grid \(0.1 to 10, 3 values\); the criterion may keep"):
        assert warn_grid_edge("M", "lam", 10.0, grid) == "high"
    with pytest.warns(GridEdgeWarning, match="lower edge.*: all zero"):
        assert warn_grid_edge("M", "lam", 0.1, grid, low="all zero") == "low"
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridEdgeWarning)
        assert warn_grid_edge("M", "lam", 1.0, grid) is None          # inside
        assert warn_grid_edge("M", "w", 1.0, [0.0, 1.0], high=True) == "high"   # natural
        assert warn_grid_edge("M", "k", 3, [3]) is None               # nothing to choose


def test_nuclear_norm_zero_fit_has_rank_zero_and_no_slope_df():
    """At lam >= lam_max = ||Sxy||_2 the minimiser is exactly zero: rank 0, df_model 0,
    and llf/AIC/BIC those of the intercept-only fits (statsmodels)."""
    X, Y = _noise()
    model = mt.NuclearNorm(Y, sm.add_constant(X))        # with an intercept
    lam_max = prox.nuclear_norm_lam_max(model.moments()[1])
    res = model.fit(lam=lam_max)
    assert res.rank == 0 and res.df_model == 0
    assert not np.any(res.params.to_numpy())
    llf = sum(sm.OLS(Y[:, j], np.ones(len(Y))).fit().llf for j in range(3))
    assert res.llf == pytest.approx(llf, rel=1e-12)
    assert res.aic == pytest.approx(-2 * llf + 2 * 3, rel=1e-12)
    assert res.bic == pytest.approx(-2 * llf + np.log(30) * 3, rel=1e-12)
    # tuned: cross-validation picks the top of the path on pure noise, and says so
    with pytest.warns(GridEdgeWarning, match=r"NuclearNorm: lam = .* upper edge .*the fit "
                      r"is all zero \(rank 0, no slopes\)"):
        tuned = model.fit()
    assert tuned.rank == 0 and tuned.df_model == 0
    assert tuned.hyperparameters["lam"] == pytest.approx(lam_max, rel=1e-12)


def test_nuclear_norm_lower_edge_warns():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    Y = X @ rng.standard_normal((6, 4)) + 0.01 * rng.standard_normal((200, 4))
    with pytest.warns(GridEdgeWarning, match=r"NuclearNorm: lam = .* lower edge of its "
                      r"grid .*30 values\); the criterion may keep improving"):
        res = mt.NuclearNorm(Y, X).fit()
    grid = res.tuning["lam_cv"]["lam"]
    assert res.hyperparameters["lam"] == pytest.approx(grid.iloc[0] * 1e-3, rel=1e-9)


def test_natural_boundaries_do_not_warn():
    """Ridge's GCV grid, the target-only fit (SourceMixture w = 0 for a misleading source)
    and SMART's
    grids (lam path from lam_max to 0, structural ranks from r to (p, q)) end at the
    parameters' own boundaries: nothing beyond them, no warning."""
    sim = mt.datasets.simulate_smart(60, 8, 4, rank=2, source_rank=3, sigma0=0.0,
                                     sigma=0.5, random_state=3)
    X, Y = _noise()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridEdgeWarning)
        # Ridge at the top of its GCV grid: every slope shrunk by >= 99% (natural)
        ridge = mt.Ridge(Y, X).fit()
        assert ridge.hyperparameters["alpha"] == ridge.tuning["gcv"]["alpha"].max()
        far = mt.SourceMixture(sim.Y, sim.X, source=-5 * sim.C).fit(rank=2)
        assert far.hyperparameters["weight"] == 0.0
        res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit()
    assert res.chosen_by["lam"] == "BIC"
