"""Sparse reduced-rank comparators of the R package rrpack: SparseReducedRank (``srrr``),
SOFAR (``sofar``) and RSSVD (``rssvd``).

Each fits from the model's moments (:mod:`mtltransfer.gram`) with the kernels of
:mod:`mtltransfer.solvers.sparse_rrr` and :mod:`mtltransfer.solvers.sofar`, tunes its
penalty along a warm-started path by an information criterion (or cross-validation) as
rrpack does, and returns :class:`~mtltransfer.models.results.PenalizedResults` with the
path under ``tuning``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..gram import total_stats, validation_loss
from ..solvers import sofar as sf
from ..solvers import sparse_rrr as sr
from ..solvers._base import SolverResult, warn_not_converged
from ..exceptions import user_stacklevel
from .._validation import Param, Parts
from .base import RANK_PARAM, MultiResponseModel, PenalizedResults, check_int, warn_penalty_scale

_CRITERIA = ("BIC", "GIC")


def _check_criterion(criterion, allowed=_CRITERIA):
    if criterion not in allowed:
        raise ValueError(f"criterion must be one of {allowed}; got {criterion!r}")
    return criterion


def _fast_only(model, backend):
    if backend != "fast":
        raise ValueError(f"{type(model).__name__} is nonconvex; backend must be 'fast' (the "
                         "convex U-step has a CVXPY twin: "
                         "mtltransfer.solvers.cvx.srrr_u_step_cvx)")


class _RankedModel(MultiResponseModel):
    """Shared pieces: the rank (given, or by the rank selection criterion)."""

    #: declared fit options (see mtltransfer._validation), checked by fit's wrapper; each
    #: comparator declares its own ``lam``
    _param_table = {"rank": RANK_PARAM, "gamma": Param("real", 0), "adaptive": Param("bool"),
                    "tol": Param("real", 0, low_open=True),
                    "max_iter": Param("int", 1, 10 ** 7)}

    def _rank(self, rank, tuning, how):
        p, q = self.k_exog, self.k_endog
        if rank is None:
            from ..selection import rank_table
            rank, info = self.select_rank()
            tuning["rank"] = rank_table(info, rank)
            how["rank"] = "RSC"
        else:
            how["rank"] = "given"
        return check_int("rank", rank, 1, min(p, q))


class SparseReducedRank(_RankedModel):
    r"""Sparse reduced-rank regression (SRRR; Chen and Huang, 2012, JASA).

    Minimise over :math:`U` (:math:`p\times r`) and :math:`V` (:math:`q\times r`)

    .. math::

       \frac{1}{2n}\lVert Y - X U V^\top\rVert_F^2 + \lambda \sum_j w_j \lVert U_{j\cdot}\rVert_2
       \quad\text{subject to}\quad V^\top V = I_r,

    a row-sparse (predictor-selecting) reduced-rank fit ``C = U V^T``. The algorithm is the
    paper's: block coordinate descent alternating a group lasso in U at fixed V
    (accelerated proximal gradient with row-wise group soft-thresholding) and an orthogonal
    Procrustes step in V (the polar factor of ``Sxy^T U``), see
    :func:`mtltransfer.solvers.sparse_rrr.srrr`.

    Tuning (rrpack's ``srrr``): lam along ``0`` (the exact reduced-rank fit) followed by
    ``lam_max * logspace(-4, 0, n_lams - 1)``, warm-started, chosen by BIC
    ``log SSE + log(nq) df / (nq)`` with ``df = r (s + q - r)`` for s selected rows
    (``criterion="GIC"``: ``log(log nq) log(pq)`` in place of ``log(nq)``). Weights
    ``w_j = 1`` (group lasso; ``adaptive=True``: ``||C_rrr,j.||^-gamma``, rrpack's
    ``"adglasso"``). The rank is given or chosen by the rank selection criterion.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> res = mt.SparseReducedRank.from_formula(formula, target).fit(rank=3)
    >>> res.params.shape
    (30, 12)
    """

    _method = "Sparse reduced-rank regression (row group lasso)"
    _param_table = {"lam": Param("real", 0, none=True, tuned=True)}
    #: ``fit(tuning="holdout")`` tries the lams of the fit's path (:mod:`mtltransfer.holdout`)
    _holdout_grid = {"lam": lambda m, call: m._lam_path(call)}

    def _lam_path(self, call):
        """The lams the fit's path visits on these rows: 0, then ``lam_max *
        logspace(-4, 0, n_lams - 1)`` with the rank and weights of the call."""
        rank = call.get("rank") or self.select_rank()[0]
        Sxx, Sxy, _ = self.moments()
        w = np.ones(self.k_exog)
        if call.get("adaptive", False):
            from ..solvers.linear import reduced_rank
            C_rr, _ = reduced_rank(Sxx, Sxy, rank)
            w = np.maximum(np.linalg.norm(C_rr, axis=1), 1e-12) ** -call.get("gamma", 2.0)
        n_lams = call.get("n_lams", 20)
        return np.append(0.0, sr.srrr_lam_max(Sxy, w) * np.logspace(-4, 0, n_lams - 1))

    def fit(self, lam=None, rank=None, *, criterion="BIC", n_lams=20, adaptive=False,
            gamma=2.0, backend="fast", tol=1e-6, max_iter=300, verbose=False):
        """Fit; lam and rank left as None are tuned.

        Parameters
        ----------
        lam : float or None
            Group-lasso penalty (>= 0); None: chosen along the path by ``criterion``.
        rank : int or None
            Rank r (fixed when given; else the rank selection criterion).
        criterion : {"BIC", "GIC"}
        n_lams : int
            Path length (including lam = 0).
        adaptive : bool
            Adaptive group weights ``||C_rrr,j.||^-gamma``.
        gamma : float
        backend : {"fast"}
        tol, max_iter : float, int
            Stopping rule of the block coordinate descent (relative change of C).
        verbose : bool
            Unused.

        Returns
        -------
        PenalizedResults
            ``tuning["ic_path"]`` holds the path (lam, selected rows, df, SSE, criterion).
        """
        _fast_only(self, backend)
        _check_criterion(criterion)
        # lam and the solver options were checked against _param_table by fit's wrapper
        lam = None if lam is None else float(lam)
        warn_penalty_scale(self)
        how, tuning = {}, {}
        rank = self._rank(rank, tuning, how)
        Sxx, Sxy, Syy = self.moments()
        p, q, n = self.k_exog, self.k_endog, self.nobs
        w = np.ones(p)
        if adaptive:
            from ..solvers.linear import reduced_rank
            C_rr, _ = reduced_rank(Sxx, Sxy, rank)
            w = np.maximum(np.linalg.norm(C_rr, axis=1), 1e-12) ** -gamma
        if lam is None:
            lams = np.append(0.0, sr.srrr_lam_max(Sxy, w) * np.logspace(-4, 0, n_lams - 1))
            fits, table = sr.srrr_path(Sxx, Sxy, Syy, rank, n, lams, weights=w,
                                       criterion=criterion, tol=tol, max_iter=max_iter)
            best = int(np.argmin(table["ic"]))
            sol, lam = fits[best], float(table["lam"][best])
            tuning["ic_path"] = pd.DataFrame(table)
            how["lam"] = criterion
            if not sol.converged:
                warn_not_converged("SRRR block coordinate descent", sol.n_iter,
                                   sol.history["criterion"][-1], tol)
        else:
            sol = sr.srrr(Sxx, Sxy, Syy, rank, lam, weights=w, tol=tol, max_iter=max_iter)
            how["lam"] = "given"
        s = int(sol.extra["support"].sum())
        r_eff = min(rank, s)
        return PenalizedResults(
            self, sol.coef, hyperparameters={"lam": lam, "rank": rank, "n_selected": s},
            chosen_by=how, solver=sol, df_model=r_eff * (s + q - r_eff), tuning=tuning)


class SOFAR(_RankedModel):
    r"""Sparse orthogonal factor regression (Uematsu, Fan, Chen, Lv and Lin, 2019, IEEE
    Trans. Inf. Theory).

    :math:`C = U D V^\top` with :math:`U^\top U = V^\top V = I_r`,
    :math:`D = \operatorname{diag}(d)`, :math:`d \ge 0`, minimising

    .. math::

       \frac{1}{2n}\lVert Y - X U D V^\top\rVert_F^2 + \lambda_d \lVert w_d \circ d\rVert_1
       + \lambda_a \lVert W_A \circ (U D)\rVert_1 + \lambda_b \lVert W_B \circ (V D)\rVert_1,

    with rrpack's adaptive-lasso weights ``W_A = |U0 D0|^-gamma``, ``W_B = |V0 D0|^-gamma``,
    ``w_d = d0^-gamma`` from the SVD of the rank-r reduced-rank fit (gamma = 2). The
    algorithm is the paper's ADMM on the splitting ``A = U D``, ``B = V D``, ``o = d``
    (:func:`mtltransfer.solvers.sofar.sofar_admm`): Procrustes-type U- and V-steps,
    a closed-form d-step and soft-thresholding of the split variables. The rank r is an
    upper bound: a singular value may be thresholded to zero
    (``res.hyperparameters["fitted_rank"]`` counts those left).

    Tuning: one scale t for the three penalties, ``lam = t lam_max`` for t in
    ``logspace(-6, 0, n_lams)``, ascending and warm-started. The default,
    ``criterion="CV"``, is rrpack's ``cv.sofar``: K-fold cross-validation over the t grid
    with the full-data weights, the folds in lockstep, stopping once the mean held-out
    error has risen three times in a row. ``criterion="BIC"`` or ``"GIC"`` (rrpack's
    ``sofar``; GIC is its default) choose t by ``log SSE + c df / (nq)`` with
    ``c = log(nq)`` or ``log(log nq) log(pq)`` and rrpack's
    ``df = nnz(U) rank(X)/p + nnz(V) - r^2``, along the same path (stopped once the
    criterion has risen three times). On a dense low-rank truth the two criteria choose
    too sparse a fit (on the SMART paper's Model-I, error / RRR error 1.25 with BIC and
    1.60 with GIC, against 1.04 with CV), hence the default.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> res = mt.SOFAR.from_formula(formula, target).fit(rank=3)
    >>> res.params.shape
    (30, 12)
    """

    _method = "Sparse orthogonal factor regression (ADMM)"
    _param_table = {"lam": Parts({"lam_a": Param("real", 0), "lam_b": Param("real", 0),
                                  "lam_d": Param("real", 0)}, none=True,
                                 what="a triplet (lam_a, lam_b, lam_d)", tuned=True)}

    def fit(self, lam=None, rank=None, *, criterion="CV", n_lams=20, n_folds=5, gamma=2.0,
            backend="fast", tol=1e-4, max_iter=1000, verbose=False):
        """Fit; lam and rank left as None are tuned.

        Parameters
        ----------
        lam : float, (float, float, float) or None
            The scale t of the penalties (a float: ``t * lam_max``) or the triplet
            ``(lam_a, lam_b, lam_d)``; None: tuned.
        rank : int or None
            Rank r (an upper bound of the fitted rank; else the rank selection criterion).
        criterion : {"CV", "BIC", "GIC"}
            How t is chosen (see the class docstring).
        n_lams, n_folds : int
            Path length; folds of ``criterion="CV"``.
        gamma : float
            Power of the adaptive weights.
        backend : {"fast"}
        tol, max_iter : float, int
            ADMM stopping rule (primal and dual residuals) and iteration cap.
        verbose : bool
            Unused.

        Returns
        -------
        PenalizedResults
            ``tuning["ic_path"]`` (or ``"cv"``) holds the path.
        """
        _fast_only(self, backend)
        _check_criterion(criterion, _CRITERIA + ("CV",))
        warn_penalty_scale(self)
        how, tuning = {}, {}
        rank = self._rank(rank, tuning, how)
        Sxx, Sxy, Syy = self.moments()
        p, n = self.k_exog, self.nobs
        xrank = self.design_svd.rank
        start, weights, lam_max = sf.sofar_start(Sxx, Sxy, rank, gamma)
        ts = np.logspace(-6, 0, n_lams)
        common = dict(gamma=gamma, tol=tol, max_iter=max_iter, design_rank=xrank,
                      weights=weights, lam_max=lam_max)
        if lam is None:
            if criterion == "CV":
                t_best, tuning["cv"] = self._cv(rank, ts, n_folds, common)
                ts = ts[ts <= t_best]
                fits, table, _ = sf.sofar_path(Sxx, Sxy, Syy, rank, n, ts=ts, patience=None,
                                               **common)
                best = len(fits) - 1
                how["lam"] = f"{n_folds}-fold CV"
            else:
                fits, table, _ = sf.sofar_path(Sxx, Sxy, Syy, rank, n, ts=ts,
                                               criterion=criterion, **common)
                best = int(np.argmin(table["ic"]))
                how["lam"] = criterion
            tuning["ic_path"] = pd.DataFrame(table)
            sol = fits[best]
            lams = (table["lam_a"][best], table["lam_b"][best], table["lam_d"][best])
            if not sol.converged:
                warn_not_converged("SOFAR ADMM", sol.n_iter, max(sol.history["primal"][-1],
                                                               sol.history["dual"][-1]), tol)
        else:
            # checked against _param_table by fit's wrapper: a scale t >= 0 or a triplet
            if np.ndim(lam) == 0:
                lams = tuple(float(lam) * m for m in lam_max)
            else:
                lams = tuple(float(v) for v in lam)
            U0, d0, V0 = start
            sol = sf.sofar_admm(Sxx, Sxy, Syy, lams, weights, U0, d0, V0, tol=tol,
                                max_iter=max_iter, mu=0.3 * sr.lipschitz(Sxx))
            how["lam"] = "given"
        e = sol.extra
        live = e["o"] > 0
        r_fit = int(live.sum())
        nnz_u = int(np.count_nonzero(e["A"][:, live]))
        nnz_v = int(np.count_nonzero(e["B"][:, live]))
        df = max(nnz_u * xrank / p + nnz_v - r_fit ** 2, 0.0)
        return PenalizedResults(
            self, sol.coef, hyperparameters={"lam": tuple(float(v) for v in lams),
                                             "rank": rank, "fitted_rank": r_fit},
            chosen_by=how, solver=sol, df_model=df, tuning=tuning)

    def _cv(self, rank, ts, n_folds, common, patience=3):
        """K-fold CV along ``ts`` (ascending), all folds in lockstep and warm-started; the
        full-data weights and penalty maxima (as rrpack's ``cv.sofar``). The path stops
        once the mean held-out error has risen ``patience`` times in a row."""
        folds, n_folds = self.cv_folds(n_folds)
        total = total_stats(folds)
        trains = [total - held for held in folds]
        moments = [t.moments(center=self.center) for t in trains]
        starts = [sf.sofar_start(m[0], m[1], rank, common["gamma"])[0] for m in moments]
        lips = [sr.lipschitz(m[0]) for m in moments]
        states = [None] * n_folds
        weights, lam_max = common["weights"], common["lam_max"]
        err = []
        for t in ts:
            lams = tuple(t * m for m in lam_max)
            e = 0.0
            for k, (held, train) in enumerate(zip(folds, trains)):
                U, d, V = starts[k]
                sol = sf.sofar_admm(*moments[k], lams, weights, U, d, V, L=lips[k],
                                    mu=0.3 * lips[k], tol=common["tol"],
                                    max_iter=common["max_iter"], state=states[k], warn=False)
                states[k] = sol.extra
                starts[k] = (sol.extra["U"], sol.extra["d"], sol.extra["V"])
                e += held.n * validation_loss(held, train, sol.coef, center=self.center)
            err.append(e / total.n)
            if len(err) - 1 - int(np.argmin(err)) >= patience:
                break
        best = int(np.argmin(err))
        return float(ts[best]), pd.DataFrame({"t": ts[:len(err)], "cv_mse": err})


class RSSVD(_RankedModel):
    r"""Reduced-rank regression with a sparse singular value decomposition (RSSVD; Chen,
    Chan and Stenseth, 2012, JRSS-B).

    ``C = sum_k d_k u_k v_k^T`` with sparse unit vectors, fitted layer by layer (the
    exclusive extraction of the paper): with ``C_rrr = sum_k d~_k u~_k v~_k^T`` the
    reduced-rank fit, layer :math:`k` minimises

    .. math::

       \frac{1}{2n}\lVert Y_k - X d\, u v^\top\rVert_F^2
       + \lambda \tilde d_k^{-\gamma} d \lVert w_u \circ u\rVert_1 \lVert w_v \circ v\rVert_1,

    ``Y_k = Y - X (C_rrr - d~_k u~_k v~_k^T)``, ``||u|| = ||v|| = 1``, adaptive weights
    ``w_u = |u~_k|^-gamma``, ``w_v = |v~_k|^-gamma`` (gamma = 2). The penalty is the
    weighted lasso of the entries of the unit-rank matrix. Each layer alternates a weighted
    lasso in ``d u`` (accelerated proximal gradient) and a closed-form soft-thresholding in
    ``d v`` (:func:`mtltransfer.solvers.sparse_rrr.unit_rank_fit`).

    Tuning (rrpack's ``rssvd``): per layer, lam along ``lam_max * logspace(log10 0.9, -5,
    n_lams - 1)`` followed by 0, warm-started, chosen by BIC
    ``log SSE_k + log(nq) df_k / (nq)`` with ``df_k = nnz(u) + nnz(v) - 1`` (an empty layer
    competes with df = 0). ``fit(tuning="holdout")``: every layer at the same position of
    its path (every other position and lam = 0), each fitted at its lam on the training
    rows; the smallest validation error wins. The rank is an upper bound (layers may
    vanish); ``res.hyperparameters["fitted_rank"]`` counts the nonempty layers.

    See Also
    --------
    MultiResponseResults : what :meth:`fit` returns.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> res = mt.RSSVD.from_formula(formula, target).fit(rank=3)
    >>> res.params.shape
    (30, 12)
    """

    _method = "Reduced-rank regression with a sparse SVD"
    _param_table = {"lam": Parts(Param("real", 0, nan=True), none=True,
                                 what="one penalty per layer (NaN: an empty layer)",
                                 tuned=True)}
    #: ``fit(tuning="holdout")`` tries the layers' paths at common positions
    #: (:mod:`mtltransfer.holdout`)
    _holdout_grid = {"lam": lambda m, call: m._lam_grid(call)}

    def _lam_grid(self, call):
        """The candidates of ``tuning="holdout"``: one lam per layer, each layer at the
        same position of its own BIC path (positions 0, 2, 4, ... of the ``n_lams``,
        and the last, lam = 0), sparsest first."""
        rank = call.get("rank") or self.select_rank()[0]
        paths = sr.rssvd_lam_paths(*self.moments(), rank, gamma=call.get("gamma", 2.0),
                                   n_lams=call.get("n_lams", 25))
        keep = sorted(set(range(0, len(paths), 2)) | {len(paths) - 1})
        return [tuple(float(v) for v in paths[i]) for i in keep]

    def fit(self, lam=None, rank=None, *, criterion="BIC", n_lams=25, gamma=2.0,
            backend="fast", tol=1e-6, max_iter=200, verbose=False):
        """Fit; lam and rank left as None are tuned.

        Parameters
        ----------
        lam : sequence of float or None
            One penalty per layer (NaN: the layer is empty); None: each chosen by
            ``criterion`` along its path.
        rank : int or None
            Number of layers (an upper bound of the fitted rank).
        criterion : {"BIC", "GIC"}
        n_lams : int
            Path length per layer (including 0).
        gamma : float
            Power of the adaptive weights.
        backend : {"fast"}
        tol, max_iter : float, int
            Stopping rule of each layer's alternating fit.
        verbose : bool
            Unused.

        Returns
        -------
        PenalizedResults
            ``hyperparameters["lam"]`` is the per-layer penalty; ``tuning["ic_path"]`` the
            layers' paths.
        """
        _fast_only(self, backend)
        _check_criterion(criterion)
        warn_penalty_scale(self)
        how, tuning = {}, {}
        rank = self._rank(rank, tuning, how)
        if lam is not None:       # each entry checked against _param_table by fit's wrapper
            lam = np.asarray(lam, dtype=float).ravel()
            if lam.size != rank:
                raise ValueError(f"lam must hold one penalty per layer ({rank} layers, "
                                 f"the rank); got {lam.size}")
        Sxx, Sxy, Syy = self.moments()
        sol = sr.rssvd(Sxx, Sxy, Syy, rank, self.nobs, gamma=gamma, n_lams=n_lams,
                       criterion=criterion, layer_lams=lam, tol=tol, max_iter=max_iter)
        e = sol.extra
        if not sol.converged:
            import warnings

            from ..exceptions import ConvergenceWarning
            warnings.warn(f"RSSVD: some unit-rank fits along the layers' paths did not "
                          f"converge in max_iter={max_iter} alternations (tol={tol:.3g}); "
                          "increase max_iter or loosen tol", ConvergenceWarning,
                          stacklevel=user_stacklevel())
        tuning["ic_path"] = pd.concat(
            [pd.DataFrame(pth).assign(layer=k + 1) for k, pth in enumerate(e["paths"]) if pth],
            ignore_index=True) if any(e["paths"]) else pd.DataFrame()
        r_fit = int(np.count_nonzero(e["d"]))
        sol = SolverResult(sol.coef, sol.converged, sol.n_iter, {}, sol.objective, e,
                           stop_reason="converged" if sol.converged else "max_iter")
        return PenalizedResults(
            self, sol.coef, hyperparameters={"lam": tuple(float(v) for v in e["lam"]),
                                             "rank": rank, "fitted_rank": r_fit},
            chosen_by={"lam": criterion if lam is None else "given", "rank": how["rank"]},
            solver=sol, df_model=float(e["df"]), tuning=tuning)
