"""A formula source and a formula target are paired by their codings, not by names.

Grunfeld (statsmodels): li, lv, lc the logs of invest, value and capital. Ordinary least
squares is invariant to the coding of a categorical, so the source refitted with the
target's coding gives the exact re-expressed coefficients to compare with.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import mtltransfer as mt

SRC_FIRMS = ["General Motors", "US Steel", "IBM"]


@pytest.fixture(scope="module")
def g():
    d = sm.datasets.grunfeld.load_pandas().data
    return pd.DataFrame({"li": np.log(d["invest"]), "lv": np.log(d["value"]),
                         "lc": np.log(d["capital"]), "firm": d["firm"].astype(str)})


def _src(g, formula="li + lv ~ lc + C(firm)", firms=SRC_FIRMS):
    return mt.OLS.from_formula(formula, g[g.firm.isin(firms)]).fit()


@pytest.mark.parametrize("cls", [mt.SMART, mt.RidgeToSource, mt.NuclearContrast,
                                 mt.SourceSubspaceRRR, mt.SourceMixture])
def test_other_reference_level_is_refused_naming_the_term_and_both_references(g, cls):
    """The issue's example: both have columns C(firm)[T.IBM], C(firm)[T.US Steel], but
    against General Motors in the source and Chrysler in the target."""
    tgt = g[g.firm.isin(["IBM", "Chrysler", "US Steel"])]
    with pytest.raises(ValueError, match=r"'C\(firm\)' reference 'General Motors'.*target: "
                       r"'C\(firm\)' reference 'Chrysler'.*\['Chrysler'\] do not occur"):
        cls.from_formula("li + lv ~ lc + C(firm)", tgt, source=_src(g))
    sm_src = {y: smf.ols(f"{y} ~ lc + C(firm)", g[g.firm.isin(SRC_FIRMS)]).fit()
              for y in ("li", "lv")}
    with pytest.raises(ValueError, match=r"reference 'General Motors'.*reference "
                       r"'Chrysler'"):
        cls.from_formula("li + lv ~ lc + C(firm)", tgt, source=sm_src)


@pytest.mark.parametrize("coding", ["C(firm, Treatment('IBM'))", "C(firm, Sum)",
                                    "C(firm, levels=['US Steel', 'IBM', 'General Motors'])"])
def test_another_coding_of_the_same_levels_is_re_expressed_exactly(g, coding):
    """Same firms, another reference or contrast: the source's coefficients in the
    target's coding equal the source refitted with that coding (OLS is invariant)."""
    src = _src(g)
    formula = f"li + lv ~ lc + {coding}"
    want = mt.OLS.from_formula(formula, g[g.firm.isin(SRC_FIRMS)]).fit().params
    model = mt.SMART.from_formula(formula, g[g.firm.isin(SRC_FIRMS)], source=src)
    got = model.source_params
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-10)
    # the same through a statsmodels source (one OLS per response)
    sm_src = {y: smf.ols(f"{y} ~ lc + C(firm)", g[g.firm.isin(SRC_FIRMS)]).fit()
              for y in ("li", "lv")}
    got = mt.SMART.from_formula(formula, g[g.firm.isin(SRC_FIRMS)],
                                source=sm_src).source_params
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-10)


def test_fewer_levels_in_the_target_are_differences_of_the_sources(g):
    """Target firms {IBM, US Steel} (reference IBM): its contrast US Steel - IBM is the
    difference of the source's contrasts against General Motors."""
    src = _src(g)
    model = mt.SMART.from_formula("li + lv ~ lc + C(firm)",
                                  g[g.firm.isin(["IBM", "US Steel"])], source=src)
    P = src.params
    want = P.loc["C(firm)[T.US Steel]"] - P.loc["C(firm)[T.IBM]"]
    got = model.source_params
    np.testing.assert_allclose(got.loc["C(firm)[T.US Steel]"], want, rtol=1e-12)
    np.testing.assert_allclose(got.loc["lc"], P.loc["lc"], rtol=1e-12)
    assert list(got.index) == ["C(firm)[T.US Steel]", "lc"]


def test_a_full_coding_without_intercept_uses_the_sources_intercept(g):
    """``- 1``: the target codes every firm's level; the source's level of firm f is its
    intercept plus its contrast."""
    src = _src(g)
    model = mt.SMART.from_formula("li + lv ~ C(firm) + lc - 1",
                                  g[g.firm.isin(SRC_FIRMS)], source=src)
    want = mt.OLS.from_formula("li + lv ~ C(firm) + lc - 1",
                               g[g.firm.isin(SRC_FIRMS)]).fit().params
    np.testing.assert_allclose(model.source_params.to_numpy(), want.to_numpy(), rtol=1e-9,
                               atol=1e-10)


def test_an_interaction_coded_differently_is_refused(g):
    src = _src(g, "li + lv ~ lc * C(firm)")
    with pytest.raises(ValueError, match=r"'firm' differently.*enters an interaction"):
        mt.SMART.from_formula("li + lv ~ lc * C(firm, Treatment('IBM'))",
                              g[g.firm.isin(SRC_FIRMS)], source=src)


def test_the_coding_survives_save_and_load(g, tmp_path):
    """A saved source (data only) rebuilds its design: the comparison still works."""
    src = _src(g)
    src.save(tmp_path / "src.mtl")
    back = mt.load(tmp_path / "src.mtl")
    tgt = g[g.firm.isin(["IBM", "Chrysler", "US Steel"])]
    with pytest.raises(ValueError, match="reference 'General Motors'"):
        mt.SMART.from_formula("li + lv ~ lc + C(firm)", tgt, source=back)
    model = mt.SMART.from_formula("li + lv ~ lc + C(firm, Treatment('IBM'))",
                                  g[g.firm.isin(SRC_FIRMS)], source=back)
    want = mt.OLS.from_formula("li + lv ~ lc + C(firm, Treatment('IBM'))",
                               g[g.firm.isin(SRC_FIRMS)]).fit().params
    np.testing.assert_allclose(model.source_params.to_numpy(), want.to_numpy(), rtol=1e-9)


def test_identical_codings_still_pair_by_name(g):
    src = _src(g)
    model = mt.SMART.from_formula("li + lv ~ lc + C(firm)", g[g.firm.isin(SRC_FIRMS)],
                                  source=src)
    np.testing.assert_array_equal(model.source_params.to_numpy(), src.params.to_numpy())
