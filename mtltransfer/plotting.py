"""Diagnostic plots of fitted models (optional: needs matplotlib).

Every function takes a results object as its first argument and returns a
:class:`matplotlib.figure.Figure`; nothing is shown or saved, so the functions work
headless (``matplotlib.use("Agg")``) and in notebooks alike.

* :func:`plot_convergence` -- solver history: objective, residuals and ADMM penalty.
* :func:`plot_spectrum` -- singular values of the target fit beside the source's.
* :func:`plot_alignment` -- the SMART alignment matrices Omega_u and Omega_v as heat maps.
* :func:`plot_tuning` -- the tuning curves (rank criterion, cross-validation, BIC path).

matplotlib is imported inside the functions: ``import mtltransfer`` never needs it.
Install it with ``pip install mtltransfer[plot]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_convergence", "plot_spectrum", "plot_alignment", "plot_tuning"]

#: solver-history columns drawn as residuals (log scale), in this order
_RESIDUAL_COLUMNS = ("primal_residual", "dual_residual", "stationarity", "criterion")
#: above this many rows a heat map shows every k-th tick label only
_MAX_TICK_LABELS = 25


def _pyplot():
    """matplotlib.pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - exercised without matplotlib only
        raise ImportError("mtltransfer's plots need matplotlib: "
                          "pip install mtltransfer[plot]  (or: pip install matplotlib)"
                          ) from err
    return plt


def _new_figure(plt, ncols, figsize, nrows=1):
    if figsize is None:
        figsize = (4.2 * ncols, 3.4 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False,
                             layout="constrained")
    return fig, list(axes.ravel())


def _label(obj):
    return f"{type(obj.model).__name__}" if hasattr(obj, "model") else type(obj).__name__


# ---------------------------------------------------------------------------------------
# convergence
# ---------------------------------------------------------------------------------------
def plot_convergence(res, *, figsize=None):
    """Solver convergence: objective, residuals and (ADMM) penalty per iteration.

    Parameters
    ----------
    res : results
        Any results object with a non-empty ``history`` DataFrame: SMART (ADMM: columns
        ``objective``, ``primal_residual``, ``dual_residual``, ``stationarity``, ``rho``),
        SharedRepresentation (``objective``, ``criterion``) or an iterative baseline such
        as NuclearNorm.
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
        One panel "objective" (log scale when it is positive and spans more than a
        factor of 10, else linear), one panel
        "residuals" (log scale) with one line per residual column present, and a panel
        "rho" when the history has an ADMM penalty. The x data of every line is the
        history's iteration index.

    Raises
    ------
    ValueError
        If ``res.history`` is empty (closed-form fits have no iterations).
    """
    hist = getattr(res, "history", None)
    if hist is None or len(hist) == 0:
        raise ValueError(f"{type(res).__name__} has no solver history to plot (closed-form "
                         "fits such as OLS, Ridge and ReducedRank have no iterations)")
    plt = _pyplot()
    it = np.asarray(hist.index, dtype=float)
    resid_cols = [c for c in _RESIDUAL_COLUMNS if c in hist.columns]
    panels = ["objective"] + (["residuals"] if resid_cols else []) + \
        (["rho"] if "rho" in hist.columns else [])
    fig, axes = _new_figure(plt, len(panels), figsize)
    for ax, panel in zip(axes, panels):
        ax.set_xlabel("iteration")
        ax.grid(True, which="major", alpha=0.3)
        if panel == "objective":
            obj = hist["objective"].to_numpy(dtype=float)
            ax.plot(it, obj, color="C0", label="objective")
            if np.all(obj > 0) and obj.max() > 10 * obj.min():
                ax.set_yscale("log")
            ax.set_ylabel("objective")
            ax.set_title("Objective")
        elif panel == "residuals":
            for j, col in enumerate(resid_cols):
                ax.plot(it, hist[col].to_numpy(dtype=float), color=f"C{j + 1}",
                        label=col.replace("_", " "))
            ax.set_yscale("log")
            ax.set_ylabel("residual")
            ax.set_title("Residuals")
            ax.legend(fontsize="small")
        else:
            ax.plot(it, hist["rho"].to_numpy(dtype=float), color="C5",
                    drawstyle="steps-post", label="rho")
            ax.set_yscale("log")
            ax.set_ylabel("rho")
            ax.set_title("ADMM penalty rho")
    status = "converged" if getattr(res, "converged", True) else "NOT converged"
    fig.suptitle(f"{_label(res)}: {len(hist)} iterations, {status}")
    return fig


# ---------------------------------------------------------------------------------------
# spectrum
# ---------------------------------------------------------------------------------------
def _source_singular_values(res, source):
    if source is not None:
        if hasattr(source, "params"):
            source = source.params
        return np.linalg.svd(np.asarray(source, dtype=float), compute_uv=False)
    svd0 = getattr(getattr(res, "model", None), "source_svd", None)
    return None if svd0 is None else np.asarray(svd0[1], dtype=float)


def plot_spectrum(res, source=None, *, logy=False, figsize=None):
    """Singular values of the target fit beside those of the source matrix C0.

    Parameters
    ----------
    res : results
        A SMART results object (its ``singular_values`` d and the source's s0 from
        ``res.model``), or any multi-response results (singular values of ``params``).
    source : results, DataFrame or array_like, optional
        A source coefficient matrix to compare with; default: the SMART model's source.
    logy : bool
        Log-scale y axis.
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes with a line "source s0" (all min(p, q) singular values of C0, when a
        source is known) and a line "target" (the r fitted singular values); x is the
        index 1, 2, ... of the singular value.
    """
    plt = _pyplot()
    if hasattr(res, "singular_values"):
        d = np.asarray(res.singular_values, dtype=float)
    else:
        d = np.linalg.svd(np.asarray(res.params, dtype=float), compute_uv=False)
        d = d[d > max(d.shape[0], 1) * np.finfo(float).eps * d.max(initial=0.0)]
    s0 = _source_singular_values(res, source)
    fig, (ax,) = _new_figure(plt, 1, figsize or (5.0, 3.6))
    if s0 is not None:
        ax.plot(np.arange(1, s0.size + 1), s0, "o-", color="0.55", markersize=4,
                label="source s0")
    ax.plot(np.arange(1, d.size + 1), d, "s-", color="C3", markersize=6,
            label="target")
    ax.set_xlabel("index of singular value")
    ax.set_ylabel("singular value")
    if logy:
        ax.set_yscale("log")
    ax.set_title(f"{_label(res)}: spectrum of the coefficient matrix")
    ax.legend()
    ax.grid(True, alpha=0.3)
    return fig


# ---------------------------------------------------------------------------------------
# alignment
# ---------------------------------------------------------------------------------------
def _heatmap(ax, frame, vmax, cmap, title):
    if frame.size == 0:
        ax.text(0.5, 0.5, "no penalised directions\n(structural rank = full)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title)
        return None
    im = ax.imshow(frame.to_numpy(dtype=float), cmap=cmap, vmin=-vmax, vmax=vmax,
                   aspect="auto", interpolation="nearest")
    n_rows, n_cols = frame.shape
    step = max(1, int(np.ceil(n_rows / _MAX_TICK_LABELS)))
    ax.set_yticks(np.arange(0, n_rows, step))
    ax.set_yticklabels([str(v) for v in frame.index[::step]], fontsize="small")
    ax.set_xticks(np.arange(n_cols))
    ax.set_xticklabels([str(c) for c in frame.columns], rotation=45, fontsize="small")
    ax.set_xlabel("target component")
    ax.set_ylabel("source direction")
    nnz = int(np.count_nonzero(frame.to_numpy()))
    ax.set_title(f"{title} (nnz {nnz} of {frame.size})")
    return im


def plot_alignment(res, *, cmap="RdBu_r", figsize=None):
    """Heat maps of the SMART alignment matrices Omega_u and Omega_v.

    Omega_u = U_perp^T U holds the coordinates of the target's left singular vectors
    (columns) along the source's left singular directions beyond the first r_u (rows);
    nonzero entries are the sparse "leakage" outside the source's leading subspace.
    Omega_v likewise on the right.

    Parameters
    ----------
    res : SMARTResults
    cmap : str
        A diverging colormap; the colour scale is symmetric about zero and shared by both
        panels.
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
        Two heat-map axes titled "Omega_u ..." and "Omega_v ..." (an empty matrix, when
        r_u = p or r_v = q, is shown as a note) and a colour bar.
    """
    if not hasattr(res, "alignment"):
        raise TypeError(f"{type(res).__name__} has no alignment matrices; "
                        "plot_alignment needs SMART results")
    plt = _pyplot()
    al = res.alignment
    om_u, om_v = al["Omega_u"], al["Omega_v"]
    vmax = max(float(np.abs(om_u.to_numpy()).max(initial=0.0)),
               float(np.abs(om_v.to_numpy()).max(initial=0.0)))
    vmax = vmax if vmax > 0 else 1.0
    if figsize is None:
        h = 1.6 + 0.16 * min(max(om_u.shape[0], om_v.shape[0]), 40)
        figsize = (8.4, max(3.2, h))
    fig, axes = _new_figure(plt, 2, figsize)
    im_u = _heatmap(axes[0], om_u, vmax, cmap, "Omega_u")
    im_v = _heatmap(axes[1], om_v, vmax, cmap, "Omega_v")
    im = im_u if im_u is not None else im_v
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="loading")
    r_u, r_v = getattr(res, "structural_rank", ("?", "?"))
    fig.suptitle(f"Alignment with the source: r_u = {r_u}, r_v = {r_v}")
    return fig


# ---------------------------------------------------------------------------------------
# tuning
# ---------------------------------------------------------------------------------------
def _as_frame(obj):
    if obj is None:
        return None
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, dict):
        try:
            return pd.DataFrame(obj)
        except ValueError:
            return None
    return None


def _first(frame, names):
    for n in names:
        if n in frame.columns:
            return n
    return None


def _log_x(ax, x):
    """Log x axis when x > 0; with zeros present, symlog linear below the smallest
    positive value."""
    pos = x[x > 0]
    if pos.size == 0:
        return
    if np.all(x > 0):
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=float(pos.min()))


def _tuning_rank(ax, tab, res):
    ev_col = _first(tab, ("eigenvalue", "eigenvalues", "ev"))
    ev = tab[ev_col].to_numpy(dtype=float)
    idx = np.arange(1, ev.size + 1)
    ax.plot(idx, ev, "o-", color="C0", label="eigenvalues of Y'P_X Y")
    mu_col = _first(tab, ("threshold mu", "mu", "threshold"))
    if mu_col is not None:
        mu = float(np.asarray(tab[mu_col], dtype=float).ravel()[0])
        ax.axhline(mu, color="C3", linestyle="--", label="threshold mu")
    if np.all(ev > 0):
        ax.set_yscale("log")
    r = getattr(res, "rank", None)
    if isinstance(r, (int, np.integer)):
        ax.axvline(r, color="0.4", linestyle=":", label=f"chosen rank {r}")
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue")
    ax.set_title("Rank (RSC)")
    ax.legend(fontsize="small")


def _tuning_cv(ax, tab, res):
    loss_col = _first(tab, ("cv_mean", "cv_mse", "cv_loss", "cv"))
    y = tab[loss_col].to_numpy(dtype=float)
    if "r_u" in tab.columns and "r_v" in tab.columns:
        labels = [f"{int(a)}" if int(a) == int(b) else f"({int(a)},{int(b)})"
                  for a, b in zip(tab["r_u"], tab["r_v"])]
        x = np.arange(len(y), dtype=float)
        se = tab["cv_se"].to_numpy(dtype=float) if "cv_se" in tab.columns else None
        ax.errorbar(x, y, yerr=se, fmt="o-", color="C0", capsize=3, label="CV loss")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize="small")
        chosen = getattr(res, "structural_rank", None)
        for i, (a, b) in enumerate(zip(tab["r_u"], tab["r_v"])):
            if chosen is not None and (int(a), int(b)) == tuple(chosen):
                ax.axvline(x[i], color="0.4", linestyle=":",
                           label=f"chosen {tuple(chosen)}")
        ax.set_xlabel("structural rank r_u = r_v (or (r_u, r_v))")
        ax.set_title("Structural rank (K-fold CV)")
    else:
        x_col = _first(tab, ("lam", "alpha", "rank", "k"))
        x = tab[x_col].to_numpy(dtype=float)
        ax.plot(x, y, "o-", color="C0", label="CV loss")
        if x_col in ("lam", "alpha"):
            _log_x(ax, x)
        ax.set_xlabel(x_col)
        ax.set_title(f"{x_col} (cross-validation)")
    ax.set_ylabel("mean validation loss")
    ax.legend(fontsize="small")


def _tuning_bic(ax, tab, res):
    x = tab["lam_u"].to_numpy(dtype=float) if "lam_u" in tab.columns else \
        tab["lam"].to_numpy(dtype=float)
    y = tab["bic"].to_numpy(dtype=float)
    ax.plot(x, y, "o-", color="C2", label="BIC")
    _log_x(ax, x)
    lam = getattr(res, "lam", None)
    if isinstance(lam, tuple) and len(lam) == 2:
        ax.axvline(lam[0], color="0.4", linestyle=":", label=f"chosen {lam[0]:.3g}")
    ax.set_xlabel("lambda (lam_u)")
    ax.set_ylabel("BIC")
    ax.set_title("Penalty (BIC path)")
    ax.legend(fontsize="small")


def _tuning_generic(ax, tab, res):
    x_col = _first(tab, ("alpha", "lam", "rank", "k"))
    y_col = _first(tab, ("gcv", "cv_mse", "cv_mean", "bic", "score"))
    if x_col is None or y_col is None:
        raise ValueError(f"cannot tell which columns of the tuning table to plot: "
                         f"{list(tab.columns)}")
    x = tab[x_col].to_numpy(dtype=float)
    y = tab[y_col].to_numpy(dtype=float)
    ax.plot(x, y, "o-", color="C0", label=y_col)
    if x_col in ("alpha", "lam"):
        _log_x(ax, x)
    chosen = getattr(res, x_col, None)
    if isinstance(chosen, (float, int, np.floating, np.integer)):
        ax.axvline(float(chosen), color="0.4", linestyle=":",
                   label=f"chosen {float(chosen):.3g}")
    ax.set_xlabel(x_col)
    ax.set_ylabel(y_col)
    ax.set_title(f"{_label(res)}: {y_col} over {x_col}")
    ax.legend(fontsize="small")


def _tuning_k(ax, tab, res):
    """SharedRepresentation: the k-selection criterion of each candidate k."""
    name = getattr(res, "k_chosen_by", "score")
    x = tab["k"].to_numpy(dtype=float)
    y = tab["score"].to_numpy(dtype=float)
    ax.plot(x, y, "o-", color="C0", label=name)
    k = getattr(res, "k", None)
    if isinstance(k, (int, np.integer)):
        ax.axvline(float(k), color="0.4", linestyle=":", label=f"chosen k = {k}")
        hit = x == k
        ax.plot(x[hit], y[hit], "o", color="C3", markersize=9, fillstyle="none",
                label="chosen")
    ax.set_xticks(x)
    ax.set_xlabel("representation dimension k")
    ax.set_ylabel(name)
    ax.set_title(f"k selection ({name}; smallest chosen)")
    ax.legend(fontsize="small")


def plot_tuning(res, *, figsize=None):
    """The tuning curves of an automatically tuned fit.

    Parameters
    ----------
    res : results
        Any tuned results; ``res.tuning`` is a dict of DataFrames: SMART's ``"rank"``
        (the eigenvalues of the rank selection criterion and its threshold; also
        ReducedRank's), ``"cv"`` (the cross-validation loss per structural rank) and
        ``"bic_path"`` (the criterion along the lambda path); Ridge's ``"gcv"`` (GCV over
        alpha), NuclearNorm's ``"lam_cv"`` (CV error over lambda), SharedRepresentation's
        ``"k"`` (the criterion of each candidate k: BIC on the marginal likelihood for
        ``method="marginal"``, BIC or CV loss for ``"gd"``/``"altmin"``; the smallest
        is chosen).
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
        One panel per tuning table present, in the order rank, CV, BIC (then the
        others); the chosen value is marked by a dotted vertical line (for k, also by
        a circled point labelled "chosen").

    Raises
    ------
    ValueError
        If nothing was tuned (every hyperparameter was given; for SharedRepresentation,
        ``k`` was given to ``fit()``).
    """
    tuning = getattr(res, "tuning", None)
    panels = []
    drawers = {"rank": _tuning_rank, "cv": _tuning_cv, "bic_path": _tuning_bic,
               "k": _tuning_k}
    for key in sorted(tuning or {}, key=lambda k: list(drawers).index(k) if k in drawers
                      else len(drawers)):
        tab = _as_frame(tuning[key])
        if tab is not None and len(tab):
            panels.append((drawers.get(key, _tuning_generic), tab))
    if not panels and getattr(res, "k_chosen_by", None) == "given":
        raise ValueError(f"{type(res).__name__}: k={res.k} was given to fit(), so no k "
                         "was selected and there is no criterion to plot; fit with "
                         "k=None to select k")
    if not panels:
        raise ValueError(f"{type(res).__name__} has no tuning trace to plot (were all "
                         "hyperparameters given to fit()?)")
    plt = _pyplot()
    fig, axes = _new_figure(plt, len(panels), figsize)
    for ax, (draw, tab) in zip(axes, panels):
        draw(ax, tab, res)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{_label(res)}: tuning")
    return fig
