"""Plots: what is drawn (axes, labels, line and image data), headless on Agg."""

import numpy as np
import pandas as pd
import pytest

import matplotlib  # noqa: E402  (the test extra installs it)
matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import mtltransfer as mt  # noqa: E402
from mtltransfer import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sim():
    return mt.datasets.simulate_smart(100, 14, 9, rank=2, source_rank=4, sigma0=0.01,
                                      sigma=0.5, random_state=3)


@pytest.fixture(scope="module")
def smart_fixed(sim):
    """A fixed-configuration SMART fit with nonzero leakage in Omega_u."""
    return mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=4, lam=0.01)


@pytest.fixture(scope="module")
def smart_tuned(sim):
    return mt.SMART(sim.Y, sim.X, source=sim.C0).fit()


def _lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def _main_axes(fig):
    """Axes that are not colour bars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# -- convergence ------------------------------------------------------------------------
def test_convergence_lines_are_the_history(smart_fixed):
    fig = plotting.plot_convergence(smart_fixed)
    assert isinstance(fig, Figure)
    hist = smart_fixed.history
    axes = fig.axes
    assert len(axes) == 3
    assert [ax.get_title() for ax in axes] == ["Objective", "Residuals", "ADMM penalty rho"]
    it = hist.index.to_numpy(dtype=float)

    obj = _lines(axes[0])["objective"]
    np.testing.assert_array_equal(obj.get_xdata(), it)
    np.testing.assert_array_equal(obj.get_ydata(), hist["objective"].to_numpy())

    res_lines = _lines(axes[1])
    assert set(res_lines) == {"primal residual", "dual residual", "stationarity"}
    for col in ("primal_residual", "dual_residual", "stationarity"):
        line = res_lines[col.replace("_", " ")]
        np.testing.assert_array_equal(line.get_xdata(), it)
        np.testing.assert_array_equal(line.get_ydata(), hist[col].to_numpy())
    assert axes[1].get_yscale() == "log"
    assert axes[1].get_legend() is not None

    rho = _lines(axes[2])["rho"]
    np.testing.assert_array_equal(rho.get_ydata(), hist["rho"].to_numpy())
    assert axes[2].get_yscale() == "log"
    for ax in axes:
        assert ax.get_xlabel() == "iteration"
    assert str(len(hist)) in fig._suptitle.get_text()


def test_convergence_of_other_iterative_models(sim):
    nn = mt.NuclearNorm(sim.Y, sim.X).fit(lam=0.05)
    fig = plotting.plot_convergence(nn)
    assert len(fig.axes) == 2                    # objective, residual-like criterion
    line = _lines(fig.axes[1])["criterion"]
    np.testing.assert_array_equal(line.get_ydata(), nn.history["criterion"].to_numpy())

    s = mt.datasets.simulate_shared(20, 15, 6, 2, random_state=0)
    sr = mt.SharedRepresentation(s.y, s.X, s.task).fit(k=2)
    fig = plotting.plot_convergence(sr)
    np.testing.assert_array_equal(_lines(fig.axes[0])["objective"].get_ydata(),
                                  sr.history["objective"].to_numpy())
    np.testing.assert_array_equal(_lines(fig.axes[0])["objective"].get_xdata(),
                                  sr.history.index.to_numpy(dtype=float))


def test_convergence_needs_a_history(sim):
    with pytest.raises(ValueError, match="no solver history"):
        plotting.plot_convergence(mt.OLS(sim.Y, sim.X).fit())


# -- spectrum ---------------------------------------------------------------------------
def test_spectrum_target_and_source(smart_fixed, sim):
    fig = plotting.plot_spectrum(smart_fixed)
    (ax,) = fig.axes
    lines = _lines(ax)
    s0 = np.linalg.svd(sim.C0, compute_uv=False)
    np.testing.assert_allclose(lines["source s0"].get_ydata(), s0, rtol=1e-10)
    np.testing.assert_array_equal(lines["source s0"].get_xdata(), np.arange(1, 10))
    np.testing.assert_array_equal(lines["target"].get_ydata(),
                                  smart_fixed.singular_values.to_numpy())
    np.testing.assert_array_equal(lines["target"].get_xdata(), [1, 2])
    assert ax.get_xlabel() == "index of singular value"
    assert ax.get_ylabel() == "singular value"
    assert plotting.plot_spectrum(smart_fixed, logy=True).axes[0].get_yscale() == "log"


def test_spectrum_of_a_baseline_with_a_given_source(sim):
    rrr = mt.ReducedRank(sim.Y, sim.X).fit(rank=3)
    fig = plotting.plot_spectrum(rrr, source=sim.C0)
    lines = _lines(fig.axes[0])
    np.testing.assert_allclose(lines["target"].get_ydata(),
                               np.linalg.svd(rrr.coef, compute_uv=False)[:3], rtol=1e-10)
    np.testing.assert_allclose(lines["source s0"].get_ydata(),
                               np.linalg.svd(sim.C0, compute_uv=False), rtol=1e-10)
    # without a source only the target is drawn
    assert set(_lines(plotting.plot_spectrum(rrr).axes[0])) == {"target"}


# -- alignment --------------------------------------------------------------------------
def test_alignment_images_are_the_omega_matrices(smart_fixed):
    fig = plotting.plot_alignment(smart_fixed)
    axes = _main_axes(fig)
    assert len(axes) == 2
    assert len(fig.axes) == 3                    # plus one shared colour bar
    al = smart_fixed.alignment
    assert np.count_nonzero(al["Omega_u"].to_numpy()) > 0   # something to see
    for ax, key in zip(axes, ("Omega_u", "Omega_v")):
        assert ax.get_title().startswith(key)
        nnz = int(np.count_nonzero(al[key].to_numpy()))
        assert f"nnz {nnz} of {al[key].size}" in ax.get_title()
        (im,) = ax.get_images()
        np.testing.assert_array_equal(np.asarray(im.get_array()), al[key].to_numpy())
        assert [t.get_text() for t in ax.get_xticklabels()] == list(al[key].columns)
        assert ax.get_ylabel() == "source direction"
    # one symmetric colour scale for both panels
    limits = {ax.get_images()[0].get_clim() for ax in axes}
    assert len(limits) == 1
    lo, hi = limits.pop()
    assert lo == -hi and hi >= max(np.abs(al["Omega_u"].to_numpy()).max(),
                                   np.abs(al["Omega_v"].to_numpy()).max())


def test_alignment_with_an_empty_block(sim):
    res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=(4, 9),
                                                    lam=0.01)
    assert res.alignment["Omega_v"].size == 0
    fig = plotting.plot_alignment(res)
    ax_u, ax_v = _main_axes(fig)[:2]
    assert len(ax_u.get_images()) == 1
    assert len(ax_v.get_images()) == 0
    assert "no penalised directions" in ax_v.texts[0].get_text()


def test_alignment_needs_smart(sim):
    with pytest.raises(TypeError, match="SMART"):
        plotting.plot_alignment(mt.OLS(sim.Y, sim.X).fit())


# -- tuning -----------------------------------------------------------------------------
def test_tuning_panels_of_a_tuned_smart_fit(smart_tuned):
    tuning = smart_tuned.tuning
    fig = plotting.plot_tuning(smart_tuned)
    # a fully tuned fit has all three traces: rank (RSC), structural ranks (CV), lambda (BIC)
    expected = ["rank", "cv", "bic_path"]
    assert all(len(tuning[k]) > 0 for k in expected)
    assert len(fig.axes) == len(expected)
    titles = [ax.get_title() for ax in fig.axes]
    by_key = dict(zip(expected, fig.axes))
    ax = by_key["rank"]
    assert titles[0] == "Rank (RSC)"
    ev = np.asarray(tuning["rank"]["eigenvalue"], dtype=float)
    np.testing.assert_array_equal(_lines(ax)["eigenvalues of Y'P_X Y"].get_ydata(), ev)
    ax = by_key["cv"]
    cv = pd.DataFrame(tuning["cv"])
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), cv["cv_mean"].to_numpy())
    assert len(ax.get_xticklabels()) == len(cv)
    ax = by_key["bic_path"]
    bic = pd.DataFrame(tuning["bic_path"])
    line = _lines(ax)["BIC"]
    np.testing.assert_array_equal(line.get_xdata(), bic["lam_u"].to_numpy())
    np.testing.assert_array_equal(line.get_ydata(), bic["bic"].to_numpy())
    assert ax.get_ylabel() == "BIC"
    chosen = [ln for ln in ax.get_lines() if ln.get_label().startswith("chosen")]
    assert len(chosen) == 1 and chosen[0].get_xdata()[0] == smart_tuned.lam[0]


def test_tuning_of_ridge_and_nuclear_norm(sim):
    ridge = mt.Ridge(sim.Y, sim.X).fit()
    fig = plotting.plot_tuning(ridge)
    (ax,) = fig.axes
    line = _lines(ax)["gcv"]
    np.testing.assert_array_equal(line.get_xdata(), ridge.tuning["gcv"]["alpha"].to_numpy())
    np.testing.assert_array_equal(line.get_ydata(), ridge.tuning["gcv"]["gcv"].to_numpy())
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "alpha"

    nn = mt.NuclearNorm(sim.Y, sim.X).fit()
    ax = plotting.plot_tuning(nn).axes[0]
    line = _lines(ax)["cv_mse"]
    np.testing.assert_array_equal(line.get_xdata(), nn.tuning["lam_cv"]["lam"].to_numpy())
    np.testing.assert_array_equal(line.get_ydata(),
                                  nn.tuning["lam_cv"]["cv_mse"].to_numpy())


def test_tuning_needs_a_trace(smart_fixed, sim):
    with pytest.raises(ValueError, match="no tuning trace"):
        plotting.plot_tuning(smart_fixed)
    with pytest.raises(ValueError, match="no tuning trace"):
        plotting.plot_tuning(mt.Ridge(sim.Y, sim.X).fit(alpha=1.0))


def test_missing_matplotlib_message(monkeypatch, smart_fixed):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install mtltransfer\[plot\]"):
        plotting.plot_spectrum(smart_fixed)


# -- the same functions as methods of the results ---------------------------------------
def _drawn_data(name, fig):
    """The data of the first panel's main artist, read from the figure."""
    ax = _main_axes(fig)[0]
    if name == "plot_alignment":
        return np.asarray(ax.get_images()[0].get_array())
    if name == "plot_spectrum":
        return _lines(ax)["target"].get_ydata()
    return ax.get_lines()[0].get_ydata()


@pytest.mark.parametrize("name,own_data", [
    ("plot_convergence", lambda r: r.history["objective"].to_numpy()),
    ("plot_spectrum", lambda r: r.singular_values.to_numpy()),
    ("plot_alignment", lambda r: r.alignment["Omega_u"].to_numpy()),
    ("plot_tuning", lambda r: np.asarray(r.tuning["rank"]["eigenvalue"], dtype=float)),
])
def test_methods_draw_the_results_own_data(smart_tuned, smart_fixed, name, own_data):
    # every results method exists (a missing one is a failure, not a skip) and is the
    # plotting function bound to the results it is called on
    assert getattr(type(smart_tuned), name) is getattr(plotting, name)
    fig = getattr(smart_tuned, name)()
    assert isinstance(fig, Figure)
    np.testing.assert_array_equal(_drawn_data(name, fig), own_data(smart_tuned))
    if name != "plot_tuning":       # a fixed fit has no tuning trace
        other = _drawn_data(name, getattr(smart_fixed, name)())
        np.testing.assert_array_equal(other, own_data(smart_fixed))


def test_shared_results_methods_draw_their_own_history():
    s = mt.datasets.simulate_shared(20, 15, 6, 2, random_state=0)
    sr = mt.SharedRepresentation(s.y, s.X, s.task).fit(k=2)
    assert type(sr).plot_convergence is plotting.plot_convergence
    assert type(sr).plot_tuning is plotting.plot_tuning
    line = _lines(sr.plot_convergence().axes[0])["objective"]
    np.testing.assert_array_equal(line.get_ydata(), sr.history["objective"].to_numpy())


# -- SharedRepresentation: the k-selection criterion ------------------------------------
@pytest.fixture(scope="module")
def shared_sim():
    return mt.datasets.simulate_shared(40, 15, 8, 2, random_state=0)


@pytest.mark.parametrize("method", ["marginal", "gd"])
def test_tuning_of_shared_representation_is_the_k_table(shared_sim, method):
    s = shared_sim
    res = mt.SharedRepresentation(s.y, s.X, s.task).fit(method=method)
    tab = res.tuning["k"]
    assert res.k_chosen_by == "BIC" and len(tab) >= 2
    fig = res.plot_tuning()
    (ax,) = fig.axes
    lines = _lines(ax)
    curve = lines["BIC"]
    np.testing.assert_array_equal(curve.get_xdata(), tab["k"].to_numpy(dtype=float))
    np.testing.assert_array_equal(curve.get_ydata(), tab["score"].to_numpy(dtype=float))
    # the chosen k: a vertical line at k and a circled point on the curve at (k, BIC(k))
    vline = lines[f"chosen k = {res.k}"]
    np.testing.assert_array_equal(vline.get_xdata(), [res.k, res.k])
    point = lines["chosen"]
    np.testing.assert_array_equal(point.get_xdata(), [res.k])
    np.testing.assert_array_equal(point.get_ydata(), [res.k_scores[res.k]])
    assert ax.get_xlabel() == "representation dimension k" and ax.get_ylabel() == "BIC"
    # the function and the method draw the same
    by_function = plotting.plot_tuning(res).axes[0]
    np.testing.assert_array_equal(_lines(by_function)["BIC"].get_ydata(),
                                  curve.get_ydata())


@pytest.mark.parametrize("method", ["marginal", "gd"])
def test_tuning_of_shared_representation_needs_a_selected_k(shared_sim, method):
    s = shared_sim
    res = mt.SharedRepresentation(s.y, s.X, s.task).fit(k=2, method=method)
    assert res.tuning == {}
    with pytest.raises(ValueError, match="k=2 was given to fit"):
        res.plot_tuning()
