"""SharedRepresentation model layer: formula/array paths, intercepts, predict, adapt."""

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt

D, K = 12, 2


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(8)
    sim = mt.datasets.simulate_shared(60, rng.integers(8, 30, size=60), D, K, sigma=0.5,
                                      random_state=3)
    xn = [f"x{j + 1}" for j in range(D)]
    df = pd.DataFrame(sim.X, columns=xn)
    b = np.linspace(-2, 2, 60)  # per-task intercepts
    df["y"] = sim.y + b[sim.task]
    df["task"] = [f"t{t:02d}" for t in sim.task]
    return sim, df, "y ~ " + " + ".join(xn), b


def test_formula_and_array_paths_agree(data):
    sim, df, formula, _ = data
    f = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=K)
    a = mt.SharedRepresentation(df["y"], df.drop(columns=["y", "task"]),
                                groups=df["task"], intercept=True).fit(k=K)
    np.testing.assert_allclose(f.params.to_numpy(), a.params.to_numpy(), atol=1e-10)
    assert f.representation.shape == (D, K) and f.task_params.shape == (K, 60)
    assert list(f.params.columns) == sorted(df.task.unique())
    B = f.representation.to_numpy()
    np.testing.assert_allclose(B.T @ B, np.eye(K), atol=1e-10)
    np.testing.assert_allclose(B @ f.task_params.to_numpy(), f.params.to_numpy(),
                               atol=1e-12)
    assert f.converged and f.n_iter == len(f.history) and f.history.index[0] == 1


def test_per_task_intercepts_and_recovery(data):
    sim, df, formula, b = data
    res = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=K)
    assert res.subspace_distance(sim.B) < 0.15
    # intercepts are recovered although the representation never sees them
    assert np.corrcoef(res.intercept.to_numpy(), b)[0, 1] > 0.99
    # the fitted values are the per-task linear predictions
    t = df.task.to_numpy()
    manual = np.einsum("id,di->i", df.iloc[:, :D].to_numpy(), res.params[t].to_numpy()) + \
        res.intercept[t].to_numpy()
    np.testing.assert_allclose(res.fittedvalues.to_numpy(), manual, atol=1e-10)
    # per-task least squares is worse on short tasks than the shared fit
    pt = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(
        method="per_task")
    truth = sim.B @ sim.W
    err = lambda r: np.linalg.norm(r.params.to_numpy() - truth)
    assert err(res) < err(pt)
    assert pt.representation is None


def test_predict_by_task_and_unknown_task(data):
    _, df, formula, _ = data
    res = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=K)
    new = df.sample(9, random_state=2)
    np.testing.assert_allclose(res.predict(new).to_numpy(),
                               res.fittedvalues.loc[new.index].to_numpy(), atol=1e-12)
    bad = new.assign(task="unseen")
    with pytest.raises(ValueError, match="unseen"):
        res.predict(bad)
    with pytest.raises(ValueError, match="task"):
        res.predict(new.drop(columns="task"))


def test_adapt_new_task(data):
    sim, df, formula, _ = data
    res = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=K, method="gd")
    rng = np.random.default_rng(4)
    w = rng.standard_normal(K)
    Xn = rng.standard_normal((6, D))  # fewer rows than d: per-task OLS is impossible
    new = pd.DataFrame(Xn, columns=df.columns[:D])
    new["y"] = 1.0 + Xn @ sim.B @ w + 0.1 * rng.standard_normal(6)
    fit = res.adapt(new)
    B = res.representation.to_numpy()
    # independent: least squares of y on [1, X B]
    Z = np.column_stack([np.ones(6), Xn @ B])
    coef = np.linalg.lstsq(Z, new["y"].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(fit.w, coef[1:], atol=1e-8)
    assert fit.intercept == pytest.approx(coef[0], abs=1e-8)
    np.testing.assert_allclose(fit.predict(new).to_numpy(), Z @ coef, atol=1e-8)
    assert np.linalg.norm(fit.params.to_numpy() - sim.B @ w) < 0.5 * np.linalg.norm(w)
    # shrinkage towards the learned w's mean moves w towards it
    shrunk = res.adapt(new, shrink=10.0)
    wbar = res.task_params.to_numpy().mean(1)
    assert np.linalg.norm(shrunk.w - wbar) < np.linalg.norm(fit.w - wbar)
    with pytest.raises(ValueError, match="rows"):
        res.adapt(new.iloc[:2])


def test_select_k_and_summary(data):
    sim, df, formula, _ = data
    res = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(
        k=None, tol=1e-6, method="gd")
    assert res.k == K and res.k_chosen_by == "BIC"
    assert min(res.k_scores, key=res.k_scores.get) == K
    text = res.summary().as_text()
    for words in ("SharedRepresentation Results", "No. Tasks (T):", "60", "2 (BIC)",
                  "Log-Likelihood:", "sigma^2", "Per-task R-squared", "Converged:"):
        assert words in text, words
    n = len(df)
    assert res.llf == pytest.approx(-0.5 * n * (np.log(2 * np.pi * res.ssr / n) + 1))


def test_baseline_methods_share_the_api(data):
    _, df, formula, _ = data
    mod = mt.SharedRepresentation.from_formula(formula, df, groups="task")
    gd = mod.fit(k=K)
    alt = mod.fit(k=K, method="altmin", max_iter=3000)
    mom = mod.fit(k=K, method="mom")
    nuc = mod.fit(method="nuclear", lam=0.01)
    for r in (alt, mom, nuc):
        assert r.params.shape == gd.params.shape
    # the joint fit reaches a loss at least as low as the baselines on the same k
    assert gd.ssr <= alt.ssr * (1 + 1e-6) and gd.ssr <= mom.ssr
    with pytest.raises(ValueError, match="lam"):
        mod.fit(method="nuclear")
    with pytest.raises(ValueError, match="method"):
        mod.fit(k=K, method="sgd")


def test_bad_input(data):
    _, df, formula, _ = data
    with pytest.raises(ValueError, match="groups"):
        mt.SharedRepresentation.from_formula(formula, df, groups="nope")
    with pytest.raises(ValueError, match="groups"):
        mt.SharedRepresentation(df["y"], df.iloc[:, :D], groups=df["task"].iloc[:10])
    with pytest.raises(ValueError, match="at most 1"):
        mt.SharedRepresentation.from_formula("y + x1 ~ x2", df, groups="task")
    with pytest.raises(ValueError, match="k must"):
        mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=0)


def test_save_load(data, tmp_path):
    _, df, formula, _ = data
    res = mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=K)
    res.save(tmp_path / "sr.mtl")
    back = mt.load(tmp_path / "sr.mtl")
    new = df.iloc[:5]
    pd.testing.assert_series_equal(back.predict(new), res.predict(new))


def test_missing_drop_with_non_default_index(data):
    _, df, formula, _ = data
    X = df.iloc[:, :D].copy()
    X.index = X.index + 1000
    X.iloc[5, 0] = np.nan
    mod = mt.SharedRepresentation(df["y"].to_numpy(), X, df["task"].to_numpy(),
                                  missing="drop")
    assert mod.nobs == len(df) - 1
    # the labels stay with their rows: dropping row 5 removes one row of its task only
    assert mod.N.sum() == len(df) - 1
    assert mod.N[mod.task_names.index(df["task"].iloc[5])] == \
        (df["task"] == df["task"].iloc[5]).sum() - 1


@pytest.mark.parametrize("method", ["marginal", "gd"])
@pytest.mark.parametrize("k, max_iter", [(None, None), (2, None), (2, 3)])
def test_iteration_counts_agree_in_summary_history_and_plot(method, k, max_iter):
    import re
    import warnings

    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    sim = mt.datasets.simulate_shared(40, 15, 8, 2, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = mt.SharedRepresentation(sim.y, sim.X, sim.task).fit(
            k=k, method=method, max_iter=max_iter)
    if max_iter is not None:                    # stopped at the cap, said so
        assert not res.converged and res.n_iter == max_iter
        assert any(issubclass(w.category, mt.exceptions.ConvergenceWarning)
                   for w in caught)
    shown = int(re.search(r"Iterations:\s+(\d+)", res.summary().as_text()).group(1))
    fig = res.plot_convergence()
    try:
        x = fig.axes[0].get_lines()[0].get_xdata()
        assert res.n_iter >= 1
        assert shown == res.n_iter == len(res.history) == len(x)
        np.testing.assert_array_equal(x, np.arange(1, res.n_iter + 1))
        assert f"{res.n_iter} iterations" in fig._suptitle.get_text()
    finally:
        plt.close(fig)
    if method == "marginal":
        # the start point was dropped, not the last iterate: the last objective is
        # minus the final log marginal likelihood
        assert res.history["objective"].iloc[-1] == pytest.approx(-res.llf, rel=1e-12)
