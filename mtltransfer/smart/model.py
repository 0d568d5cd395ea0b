"""SMART: spectral transfer of a source study's singular subspaces to a small target study.

The model (Zhao, Kolar and Lv, 2026) estimates a rank-r coefficient matrix
C = U diag(d) V^T of the target by

    minimise (1/2n)||Y - X U diag(d) V^T||_F^2 + lam_u ||U_perp^T U||_1 + lam_v ||V_perp^T V||_1
    subject to U^T U = I_r, V^T V = I_r,

where U_perp, V_perp are the source coefficient matrix's singular vectors beyond the first
r_u (left) and r_v (right). Only the source's coefficient matrix C0 is used.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy import linalg

from .. import plotting as _plotting
from .._validation import Param, Parts
from ..models.base import RANK_PARAM, PenalizedResults, check_backend, warn_penalty_scale
from ..models.source import SourceModel
from .admm import smart_solve, smart_verify, stationarity
from .problem import SmartProblem


def _pair(value, cast):
    """A scalar or a pair -> a pair (tied values by default); the values were checked
    against the declarations (``SMART._param_table``) by fit's wrapper."""
    if value is None:
        return None
    if np.ndim(value) == 0:
        return (cast(value), cast(value))
    a, b = value
    return (cast(a), cast(b))


def _p(model):
    return model.k_exog


def _q(model):
    return model.k_endog


#: SMART's structural ranks (r_u, r_v): 0 <= r_u <= p, 0 <= r_v <= q (a scalar ties them)
STRUCTURAL_RANK_PARAM = Parts(
    {"r_u": Param("int", 0, _p, why=lambda m: f"r_u <= p = {m.k_exog} predictor(s)"),
     "r_v": Param("int", 0, _q, why=lambda m: f"r_v <= q = {m.k_endog} response(s)")},
    none=True, what="a pair (r_u, r_v)", tuned=True, label="structural rank (r_u, r_v)")
#: SMART's penalties (lam_u, lam_v) >= 0 (a scalar ties them)
LAM_PAIR_PARAM = Parts({"lam_u": Param("real", 0), "lam_v": Param("real", 0)}, none=True,
                       what="a pair (lam_u, lam_v)", tuned=True)


#: stationarity tolerance of the bootstrap replicates' fits (at least; see
#: SMARTResults.warm_start_kwargs)
_BOOTSTRAP_TOL = 1e-4


class SMART(SourceModel):
    r"""Spectral transfer regression (SMART).

    Parameters
    ----------
    endog : array_like or DataFrame, shape (n, q)
        Target responses.
    exog : array_like or DataFrame, shape (n, p)
        Target predictors (a constant column is the intercept and is removed).
    source : results, DataFrame or array_like
        The source study's coefficient matrix: a fitted mtltransfer multi-response results
        object; statsmodels results (an OLS/WLS fit of one response, a list or dict of
        them, one per response, or a multivariate ``MultivariateLS`` fit); a DataFrame
        indexed by predictor names with response names as columns (aligned to the target
        by name, an ``Intercept`` row ignored); or a p x q array (positional). The
        source's raw data are never needed. A zero or non-finite source is an error.
    intercept : bool or None, default None
        As statsmodels (see :class:`~mtltransfer.models.base.MultiResponseModel`).
    missing : {"raise", "drop"}
    screen : MarginalScreening, int or None, default None
        Screen the predictors on the target's rows before fitting
        (:class:`~mtltransfer.MarginalScreening`; an int m is ``MarginalScreening(m)``,
        a given screening's settings are used and the model fits its own copy). The
        source is aligned to all predictors, then the model keeps the selected
        predictors and the same rows of the source; ``predict`` takes new data with all
        the original columns. The selection is ``results.screening`` and a line of the
        summary.

    Notes
    -----
    With the full SVD :math:`C_0 = U_0 S_0 V_0^\top`, :math:`U_\perp = U_0[:, r_u{:}]` and
    :math:`V_\perp = V_0[:, r_v{:}]`, SMART writes :math:`C = U \operatorname{diag}(d) V^\top`
    and solves

    .. math::

       \min_{U, d, V}\; \frac{1}{2n}\lVert Y - X U \operatorname{diag}(d) V^\top\rVert_F^2
       + \lambda_u \lVert U_\perp^\top U\rVert_1 + \lambda_v \lVert V_\perp^\top V\rVert_1
       \quad\text{s.t.}\quad U^\top U = V^\top V = I_r:

    the target's singular subspaces are encouraged to lie in the source's leading ones, with
    sparse leakage along individual source directions. The problem is solved by ADMM on the
    Stiefel manifolds (:func:`mtltransfer.smart.admm.smart_admm`) from the sufficient
    statistics; ``fit()`` tunes the rank (rank selection criterion), the structural ranks
    (K-fold cross-validation) and the penalties (BIC path) automatically.

    See Also
    --------
    SMARTResults : what :meth:`fit` returns.
    Transfer : chooses among SMART, the source and target-only fits.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.SMART.from_formula(formula, target, source=source).fit()
    >>> int(res.rank), res.structural_rank
    (3, (3, 3))
    >>> bool(res.converged)
    True
    >>> res.predict(demo["test"]).shape
    (400, 12)
    """

    _method = "SMART (spectral transfer, ADMM)"
    #: declared fit options (mtltransfer._validation), checked by fit's wrapper
    _param_table = {"rank": RANK_PARAM, "structural_rank": STRUCTURAL_RANK_PARAM,
                    "lam": LAM_PAIR_PARAM,
                    "gamma": Param("real", 0, options=("cv",), tuned=True,
                                   label="gamma (pull to C0)"),
                    "tol": Param("real", 0, low_open=True),
                    "max_iter": Param("int", 1, 10 ** 7)}

    def _product_flops(self):
        # the ADMM and the cross-validation apply their own rule (2 p^2 r per product)
        return float("inf")

    def fit(self, rank=None, structural_rank=None, lam=None, *, gamma=0.0, backend="fast",
            tol=1e-6, max_iter=2000, n_folds=5, init=None, verbose=False, n_jobs=None):
        """Fit SMART; every hyperparameter left as None is tuned.

        Parameters
        ----------
        rank : int or None
            Rank r in [1, min(p, q)]. None: the rank selection criterion of Bunea, She and
            Wegkamp (2011), capped by the source's rank.
        structural_rank : int, (int, int) or None
            (r_u, r_v) with 0 <= r_u <= p, 0 <= r_v <= q; a scalar ties them. None: K-fold
            cross-validation over a grid (see :func:`mtltransfer.smart.tuning.tune_smart`).
        lam : float, (float, float) or None
            (lam_u, lam_v) >= 0; a scalar ties them. None: BIC along a warm-started
            log-spaced path.
        gamma : float or "cv", default 0.0
            Weight of the magnitude pull ``(gamma/2)||C - C0||_F^2`` towards the source
            (:mod:`mtltransfer.smart.magnitude`; docs/smart.rst). 0 is the
            paper's SMART; ``"cv"`` chooses it (with the rank) by K-fold
            cross-validation after the other hyperparameters are tuned at 0; a given
            gamma > 0 with other hyperparameters left None tunes those at 0.
        backend : {"fast", "cvxpy"}
            Solve the convex d- and Omega-subproblems in closed form or in CVXPY.
        tol, max_iter : float, int
            ADMM tolerance (on primal, dual residuals and stationarity) and iteration cap.
        n_folds : int
            Folds of the structural-rank cross-validation.
        init : dict, optional
            Warm start (``results.state`` of an earlier fit) for a fully fixed
            configuration. When anything is tuned, the tuning's own warm-started paths
            are used, and the structural ranks of ``init`` (``r_u``, ``r_v``), when
            cross-validated, are scored first (the early incumbent of the dropping rule
            of :func:`~mtltransfer.smart.tuning.cv_structural_rank`; a bootstrap
            replicate with ``refit_tuning=True`` passes the full-data fit's state).
        verbose : bool
            Report tuning progress on stderr.
        n_jobs : int or None
            Parallel jobs (joblib) for the cross-validation fits of the structural ranks;
            None or 1 runs them in this process. The result does not depend on it.

        Returns
        -------
        SMARTResults
        """
        check_backend(backend)
        warn_penalty_scale(self)
        p, q = self.k_exog, self.k_endog
        from .magnitude import fit_smart_magnitude

        # the values were checked against _param_table by fit's wrapper
        gamma = gamma if isinstance(gamma, str) else float(gamma)
        rank = None if rank is None else int(rank)
        structural_rank = _pair(structural_rank, int)
        lam = _pair(lam, float)
        tol, max_iter = float(tol), int(max_iter)
        if gamma != 0.0:
            return fit_smart_magnitude(self, rank, structural_rank, lam, gamma,
                                       backend=backend, tol=tol, max_iter=max_iter,
                                       n_folds=n_folds, init=init, verbose=verbose,
                                       n_jobs=n_jobs, results_cls=SMARTResults)
        how = {"rank": "given", "structural_rank": "given", "lam": "given"}
        Sxx, Sxy, Syy = self.moments()
        tuning = {}
        # with fewer rows than predictors, products with G = U0^T Sxx U0 go through the
        # rows (4 n p r flops against 2 p^2 r; docs/smart.rst, "Where the time goes")
        # (a model built from statistics only, e.g. on Dask, has no rows in memory)
        rows = (self.centred_rows[0]
                if 2 * self.nobs < p and isinstance(self.exog, np.ndarray) else None)
        if rank is not None and structural_rank is not None and lam is not None:
            prob = SmartProblem.from_moments(Sxx, Sxy, Syy, svd0=self.source_svd,
                                             rows=rows)
            sol = smart_solve(prob, rank, structural_rank, lam, tol=tol, max_iter=max_iter,
                              init=init, backend=backend)
        else:
            from .tuning import tune_smart

            from ..selection import rank_table

            folds = None
            if structural_rank is None:
                folds, n_folds = self.cv_folds(n_folds,
                                               "cross-validation of the structural ranks")
            if verbose:
                print("SMART: tuning " + ", ".join(k for k, v in (
                    ("rank (RSC)", rank), ("structural ranks (CV)", structural_rank),
                    ("lambda (BIC path)", lam)) if v is None), file=sys.stderr)
            from .._threads import smart_iteration_threads

            with smart_iteration_threads(p, rank or min(p, q)):
                out = tune_smart(self.stats, self.source, rank=rank,
                                 structural_rank=structural_rank, lam=lam, fold_stats=folds,
                                 tol=tol, max_iter=max_iter, backend=backend,
                                 center=self.center, svd0=self.source_svd,
                                 rank_rows=self.rank_rows() if rank is None else None,
                                 multiplicity=self.row_multiplicity(),
                                 structural_first=None if init is None else
                                 (init.get("r_u"), init.get("r_v")),
                                 n_jobs=n_jobs, rows=rows)
            sol = out.result
            names = {"rsc": "RSC", "cv": f"{n_folds}-fold CV", "bic": "BIC",
                     "given": "given"}
            how = {key: names.get(out.how[key], out.how[key]) for key in how}
            if out.rank_info is not None:
                tuning["rank"] = rank_table(out.rank_info, len(sol.extra["d"]))
            if out.cv:
                cv = dict(out.cv)
                folds = np.array(cv.pop("fold_loss"), dtype=float)   # candidates x folds
                tuning["cv"] = pd.DataFrame(cv).join(pd.DataFrame(
                    folds, columns=[f"fold{k + 1}" for k in range(folds.shape[1])]))
            if out.bic_path:
                tuning["bic_path"] = pd.DataFrame(out.bic_path)
        return SMARTResults(self, sol, how, tuning)


class SMARTResults(PenalizedResults):
    """Results of :class:`SMART`: everything of a multi-response fit plus the factors.

    Attributes
    ----------
    rank : int
    structural_rank : tuple of int
        (r_u, r_v).
    lam : tuple of float
        (lam_u, lam_v).
    U, V : DataFrame
        Left (p x r) and right (q x r) singular vectors of the fit.
    singular_values : Series
        d, descending.
    alignment : dict of DataFrame
        ``Omega_u = U_perp^T U`` ((p - r_u) x r) and ``Omega_v = V_perp^T V``: the leakage
        of the target's singular vectors outside the source's leading subspaces.
    tuning : dict of DataFrame
        The tuning trace (``"rank"``, ``"cv"``, ``"bic_path"``), where tuned.
    state : dict
        The solver's final state (a warm start for ``SMART.fit(init=...)``).

    See Also
    --------
    SMART : the model whose :meth:`SMART.fit` returns these results.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> res = mt.SMART.from_formula(formula, target, source=source).fit()
    >>> res.params.shape                  # predictors x responses
    (30, 12)
    >>> [int(v) for v in res.nnz_alignment]   # leaks outside the source's subspaces
    [7, 0]
    >>> res.principal_angles().shape
    (3, 2)
    """

    def __init__(self, model, sol, how, tuning):
        ex = sol.extra
        self.state = dict(ex)
        r = int(len(ex["d"]))
        r_u, r_v = int(ex["r_u"]), int(ex["r_v"])
        lam = (float(ex["lam_u"]), float(ex["lam_v"]))
        gamma = float(ex.get("gamma", 0.0))
        # a rank-r matrix with column space in an r_u- and row space in an r_v-dimensional
        # subspace has r (r_u + r_v - r) free parameters; each leaked coordinate adds one
        df = r * (max(r_u, r) + max(r_v, r) - r) + ex["nnz"]
        super().__init__(model, sol.coef, hyperparameters={
            "rank": r, "structural_rank": (r_u, r_v), "lam": lam, "gamma": gamma},
            chosen_by=how,
            solver=sol, df_model=df, tuning=tuning)
        self.objective = float(sol.objective)

    @property
    def gamma(self):
        """Weight of the magnitude pull ``(gamma/2)||C - C0||_F^2`` (0: the paper's SMART)."""
        return self.hyperparameters["gamma"]

    @property
    def how(self):
        """How each hyperparameter was chosen (same as ``chosen_by``)."""
        return self.chosen_by

    def default_bootstrap_method(self):
        """``"residual"``: the design kept, responses redrawn from the fitted values and
        the resampled (unbiased-scale) residuals, and the source redrawn from its
        sampling distribution (a results source; see :mod:`mtltransfer.bootstrap`).

        The source's redraw is what makes the intervals honest: SMART shrinks towards the
        observed source subspaces, so its error carries the source's error as a bias that
        resampling the target alone cannot see (nominal 95% intervals for E[y | x] then
        cover 0.81 with a good source, sigma0 = 0.01, at p=20, q=8, n=150); with the
        redraw, percentile intervals cover 0.92 (200 data sets; ``benchmarks/coverage.py``
        and the Uncertainty page). Pairs resampling with the redraw covers a little more
        (wider intervals, 30% more time); the residual bootstrap keeps the design and is
        the cheaper of the two that reach the goal.
        """
        return "residual"

    def warm_start_kwargs(self):
        """The replicates' solver options: SMART's own deterministic start (the better
        of two exact reduced-rank fits is closer to a replicate's solution than the
        full-data state with its duals and rho; Model-I: 8 ADMM iterations against 240),
        and the stationarity certificate at ``tol = max(tol, 1e-4)``.

        A replicate is a draw: at Model-I (fixed ranks (8, 8) and (5, 5), 3 data sets)
        its coefficients at ``tol = 1e-4`` are within 0.04-0.45% (relative Frobenius) of
        the fit at ``1e-6``, against a 4-15% estimation error, so the bootstrap spread is
        unchanged, for 2.5-6 times fewer ADMM iterations.
        """
        return {"tol": max(float(self.state.get("tol", 1e-6)), _BOOTSTRAP_TOL)}

    def retune_kwargs(self):
        """The solver options of a replicate with ``refit_tuning=True``: the same
        certificate tolerance as a replicate with the tuning fixed
        (:meth:`warm_start_kwargs`); the tuning itself runs as in the full-data fit,
        with the full-data structural ranks, when they were cross-validated, scored
        first (``init``: the early incumbent of the dropping rule; the choice is still
        the cross-validation's)."""
        kwargs = {"tol": max(float(self.fit_kwargs.get("tol", self.state.get("tol", 1e-6))),
                             _BOOTSTRAP_TOL)}
        if self.fit_kwargs.get("structural_rank") is None:
            kwargs["init"] = {"r_u": self.structural_rank[0], "r_v": self.structural_rank[1]}
        return kwargs

    def bootstrap_extra(self, rep):
        """Principal angles (degrees) of a replicate to the source subspaces."""
        angles = rep.principal_angles()
        return {"angles_u": angles["left"].to_numpy(), "angles_v": angles["right"].to_numpy()}

    # -- factors ----------------------------------------------------------------------
    def _components(self):
        return [f"comp{j + 1}" for j in range(self.rank)]

    @property
    def U(self):
        return pd.DataFrame(self.state["U"], index=self.model.exog_names,
                            columns=self._components())

    @property
    def V(self):
        return pd.DataFrame(self.state["V"], index=self.model.endog_names,
                            columns=self._components())

    @property
    def singular_values(self):
        return pd.Series(self.state["d"], index=self._components(), name="singular value")

    @property
    def alignment(self):
        r_u, r_v = self.structural_rank
        comps = self._components()
        Om_u = pd.DataFrame(self.state["Omega_u"], columns=comps,
                            index=[f"u0_{i + 1}" for i in range(r_u, self.model.k_exog)])
        Om_v = pd.DataFrame(self.state["Omega_v"], columns=comps,
                            index=[f"v0_{i + 1}" for i in range(r_v, self.model.k_endog)])
        return {"Omega_u": Om_u, "Omega_v": Om_v}

    @property
    def nnz_alignment(self):
        """Nonzeros of (Omega_u, Omega_v)."""
        return (int(np.count_nonzero(self.state["Omega_u"])),
                int(np.count_nonzero(self.state["Omega_v"])))

    def principal_angles(self):
        """Principal angles (degrees) between the target's and the source's subspaces.

        Left: span(U) against the source's leading k_u left singular vectors, with
        k_u = r_u when r <= r_u < p (the subspace SMART shrinks towards) and k_u = r
        otherwise; right likewise. Returns a DataFrame with columns ``left``, ``right``.
        """
        U0, _, V0 = self.model.source_svd
        r = self.rank
        r_u, r_v = self.structural_rank
        k_u = r_u if r <= r_u < U0.shape[0] else r
        k_v = r_v if r <= r_v < V0.shape[0] else r
        left = np.degrees(np.sort(linalg.subspace_angles(self.state["U"], U0[:, :k_u])))
        right = np.degrees(np.sort(linalg.subspace_angles(self.state["V"], V0[:, :k_v])))
        return pd.DataFrame({"left": left[:r], "right": right[:r]}, index=self._components())

    plot_alignment = _plotting.plot_alignment

    # -- verification -----------------------------------------------------------------
    def verify(self, solver_opts=None):
        """Re-solve the convex subproblems at the solution in CVXPY; measure optimality.

        Parameters
        ----------
        solver_opts : dict or None
            Options of the CVXPY solves (default: Clarabel with tight tolerances). A
            solve that ends ``optimal_inaccurate`` raises ``RuntimeError``.

        Returns
        -------
        DataFrame
            One row per check, with columns ``value``, ``threshold`` and ``passed``:
            ``d_step`` and ``omega_u_step``/``omega_v_step`` (max absolute difference
            between the returned d, Omega and CVXPY's solution of the same convex
            subproblem; threshold ``1e-6 max(1, max|.|)``), the primal residuals, the
            Riemannian gradient norms of the U- and V-subproblems (``rgrad_u``,
            ``rgrad_v``) and of the Lagrangian (``kkt_u``, ``kkt_v``), the d-gradient
            ``grad_d`` (thresholds of the solver's certificate at the fit's ``tol``,
            :func:`mtltransfer.smart.admm.stationarity`: ``tol`` times the gradient
            scale, or times ``s_prim`` for the primal residuals), the orthonormality
            errors (threshold ``1e-10``) and the objective (no threshold, ``passed``
            empty). ``converged`` is true only where every certificate row passes.
        """
        Sxx, Sxy, Syy = self.model.moments()
        pull = float(self.state.get("gamma", 0.0))
        if pull:                             # the problem with the magnitude pull
            from .gamma import magnitude_moments
            Sxx, Sxy, Syy = magnitude_moments(Sxx, Sxy, Syy, self.model.source, pull)
        out = smart_verify(Sxx, Sxy, Syy, None, self.state, svd0=self.model.source_svd,
                           solver_opts=solver_opts)
        prob = SmartProblem.from_moments(Sxx, Sxy, Syy, svd0=self.model.source_svd,
                                         pull=pull)
        r_u, r_v = self.structural_rank
        cert = stationarity(prob, self.state, r_u, r_v,
                            tol=float(self.state.get("tol", 1e-6)))
        out["grad_d"] = cert["grad_d"]
        big = {"d_step": self.state["d"], "omega_u_step": self.state["Omega_u"],
               "omega_v_step": self.state["Omega_v"]}
        thr = {k: 1e-6 * max(1.0, float(np.max(np.abs(v), initial=0.0)))
               for k, v in big.items()}
        thr.update(cert["thresholds"], orth_u=1e-10, orth_v=1e-10)
        rows = [k for k in out if k != "objective"] + ["objective"]
        value = pd.Series(out, index=rows, dtype=float)
        threshold = pd.Series(thr, index=rows, dtype=float)
        passed = pd.Series([None if np.isnan(threshold[k]) else bool(value[k] <= threshold[k])
                            for k in rows], index=rows, dtype=object)
        return pd.DataFrame({"value": value, "threshold": threshold, "passed": passed})

    # -- reporting --------------------------------------------------------------------
    def _summary_rows(self):
        left, right = super()._summary_rows()
        hist = self._solver.history
        if "bic_path" in self.tuning:
            # the final fit starts from the path's solution: show the path's work too
            right += [("Lambda-path iterations:", int(self.tuning["bic_path"]["n_iter"].sum()))]
        right += [("Primal residual:", hist["primal_residual"][-1] if hist else 0.0),
                  ("Dual residual:", hist["dual_residual"][-1] if hist else 0.0),
                  ("Objective:", self.objective)]
        left += [("Source rank:", self.model.source_rank),
                 ("nnz Omega_u, Omega_v:", "{} of {}, {} of {}".format(
                     self.nnz_alignment[0], self.state["Omega_u"].size,
                     self.nnz_alignment[1], self.state["Omega_v"].size))]
        return left, right

    def summary(self, alpha=0.05):
        """Summary: configuration and how it was chosen, fit criteria, convergence,
        singular values beside the source's, principal angles, alignment sparsity, and the
        coefficients (or a per-response table).

        Parameters
        ----------
        alpha : float
            Level of the intervals shown: with a stored bootstrap
            (``res.bootstrap_results``, from :meth:`bootstrap`), the coefficient tables
            show the bootstrap std err and the ``1 - alpha`` percentile interval, as
            ``bootstrap_results.conf_int(alpha)``.

        Returns
        -------
        statsmodels.iolib.summary.Summary
        """
        from ..summary import add_frame, coefficient_block, new_summary

        left, right = self._summary_rows()
        smry = new_summary(self, "SMART Results", left, right)
        s0 = self.model.source_svd[1]
        spec = pd.DataFrame({"target d": self.singular_values.to_numpy(),
                             "source s0": s0[:self.rank]}, index=self._components())
        spec = pd.concat([spec, self.principal_angles().rename(
            columns={"left": "angle U (deg)", "right": "angle V (deg)"})], axis=1)
        add_frame(smry, spec, "Spectrum and principal angles to the source subspaces")
        if getattr(self.model, "source_weights", None) is not None:
            add_frame(smry, self.model.source_weights,
                      "Sources weighted by cross-validation (the source used: sum w C0)")
        fit = pd.DataFrame({"R2": self.rsquared, "RSS": self.ssr_per_response})
        if len(fit) > 12:
            fit = fit.describe().loc[["mean", "min", "25%", "50%", "75%", "max"]]
            add_frame(smry, fit, "Per-response fit (distribution over responses)")
        else:
            add_frame(smry, fit, "Per-response fit")
        coefficient_block(self, smry, alpha)
        notes = [] if self.screening is None else [self.screening.summary_text()]
        smry.add_extra_txt(notes + [
            "Only the source's coefficient matrix was used (no source rows).",
            "nnz Omega counts the target's singular-vector coordinates that leak outside the "
            "source's leading subspaces (U_perp^T U, V_perp^T V)."])
        return smry
