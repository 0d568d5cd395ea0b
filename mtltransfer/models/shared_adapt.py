"""A new task fitted on a learned shared representation (``results.adapt``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import check_alpha


class AdaptedTask:
    r"""A new task fitted on a learned representation by
    :meth:`mtltransfer.SharedRepresentationResults.adapt`.

    Attributes
    ----------
    w : ndarray (k,)
    params : Series (d,)
        The task's coefficients B w.
    intercept : float
    df_resid : int
        ``n_new - k - 1 (intercept)``: the degrees of freedom of the B-fixed intervals.
    w_cov : ndarray (k x k) or None
        Posterior covariance of w (when fitted as a posterior mean under
        ``method="marginal"``).

    Notes
    -----
    Two kinds of intervals. :meth:`get_prediction` (fits of ``method="marginal"``) uses the
    Gaussian posterior of :math:`w` under the fitted :math:`\mu_w, \Sigma_w, \sigma^2`.
    Intervals (:meth:`conf_int`, :meth:`predict_interval`) hold the learned :math:`B`
    fixed: with :math:`Z = X_c B` (centred rows when there is an intercept),
    :math:`A = Z^\top Z + n s P` (:math:`sP` the shrinkage, zero for least squares) and
    :math:`s^2 = \lVert y_c - Z w\rVert^2 / \mathrm{df_{resid}}`,

    .. math::

       \operatorname{Var}(w) = s^2 A^{-1} Z^\top Z A^{-1}, \qquad
       \operatorname{Var}(x^\top B w + b)
       = s^2/n + (x - \bar x)^\top B \operatorname{Var}(w) B^\top (x - \bar x)

    (the :math:`s^2/n` term and the centring only with an intercept),

    with Student-t quantiles on ``df_resid``. This is exact for least squares when B spans
    the true representation; B's own error (learned from the other tasks) and the shrinkage
    bias are left out.

    See Also
    --------
    SharedRepresentationResults.adapt : returns these results.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> X, y, task, B, W = mt.datasets.simulate_shared(T=40, N=20, d=8, k=2,
    ...                                                random_state=0)
    >>> res = mt.SharedRepresentation(y, X, task).fit()
    >>> new = res.adapt(X[:4], y[:4])
    >>> new.predict(X[:2]).shape
    (2,)
    >>> new.get_prediction(X[:2]).summary_frame().shape[0]
    2
    """

    #: results of this class can be written by :func:`mtltransfer.save`
    _saveable = True

    def __init__(self, parent, w, theta, b, fit=None, posterior=None):
        self._parent = parent
        self.w = w
        self.params = pd.Series(theta, index=parent.model.exog_names)
        self.intercept = b
        self._fit = fit
        if fit is not None:
            Z, e, _, xm = fit
            self.df_resid = int(len(e) - Z.shape[1] - (xm is not None))
        self._post = posterior
        self.w_cov = None if posterior is None else posterior["w_cov"]

    def cov_w(self):
        """Var(w) (k x k) with B fixed (see the Notes)."""
        if self._fit is None or self.df_resid < 1:
            raise ValueError("intervals need at least k + 2 rows (k + 1 without an "
                             "intercept) in the new task")
        Z, e, gram, _ = self._fit
        s2 = float(e @ e) / self.df_resid
        Ainv = np.linalg.inv(gram)
        return s2 * Ainv @ (Z.T @ Z) @ Ainv, s2

    def conf_int(self, alpha=0.05):
        """Intervals for the coefficients ``B w`` (DataFrame: columns 0 (lower) and 1
        (upper), statsmodels' layout)."""
        from scipy import stats

        alpha = check_alpha(alpha)
        cov_w, _ = self.cov_w()
        B = self._parent._B
        se = np.sqrt(np.einsum("ik,kl,il->i", B, cov_w, B))
        t = stats.t.ppf(1 - alpha / 2, self.df_resid)
        return pd.DataFrame({0: self.params - t * se, 1: self.params + t * se})

    def predict_interval(self, exog, alpha=0.05, transform=True):
        """Predictions of E[y | x] for the new task with intervals (B fixed).

        Returns
        -------
        DataFrame
            Columns ``mean``, ``lower``, ``upper``.
        """
        from scipy import stats

        alpha = check_alpha(alpha)
        X, const, index = self._parent.model.data.exog_for(exog, "exog", transform=transform)
        cov_w, s2 = self.cov_w()
        xm = self._fit[3]
        G = (X - (xm if xm is not None else 0.0)) @ self._parent._B
        var = np.einsum("ik,kl,il->i", G, cov_w, G) + (s2 / len(self._fit[1])
                                                        if xm is not None else 0.0)
        mean = X @ self.params.to_numpy() + const * self.intercept
        t = stats.t.ppf(1 - alpha / 2, self.df_resid)
        half = t * np.sqrt(var)
        return pd.DataFrame({"mean": mean, "lower": mean - half, "upper": mean + half},
                            index=index)

    def get_prediction(self, exog, transform=True):
        """Predictions for the new task's rows with posterior intervals.

        For a row x, with z = B^T (x - xbar) (xbar the new task's predictor means when
        the model has an intercept, else 0): the mean ``x^T B w + b`` has variance
        ``z^T V z + sigma^2 / n`` (V the posterior covariance of w; the second term, the
        intercept's, only with an intercept), a new observation ``+ sigma^2``.

        Returns
        -------
        mtltransfer.inference.PredictionResults
            As least squares' ``get_prediction``: ``summary_frame(alpha)`` gives
            ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper``,
            ``obs_ci_lower``, ``obs_ci_upper`` (statsmodels' names), normal quantiles.
        """
        from ..inference import PredictionResults

        if self._post is None:
            raise ValueError("intervals need the posterior of w: adapt() with shrink=None "
                             "on a method='marginal' fit")
        X, const, index = self._parent.model.data.exog_for(exog, "exog", transform=transform)
        mean = X @ self.params.to_numpy() + const * self.intercept
        p = self._post
        Xc = X - p["xm"] if p["xm"] is not None else X
        Z = Xc @ self._parent._B
        var = np.einsum("ik,kl,il->i", Z, p["w_cov"], Z)
        if p["xm"] is not None:
            var = var + p["sigma2"] / p["n"]
        return PredictionResults(mean, var, p["sigma2"], dist="norm", row_labels=index)

    def predict(self, exog, transform=True):
        """Predictions for the new task's rows (DataFrame for a formula model, else X);
        rows with a missing value are NaN."""
        X, const, index = self._parent.model.data.exog_for(exog, "exog", transform=transform)
        return pd.Series(X @ self.params.to_numpy() + const * self.intercept, index=index)
