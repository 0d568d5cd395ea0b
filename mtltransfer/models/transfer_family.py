"""One call that picks the transfer: K-fold cross-validation over the transfer family.

:class:`Transfer` fits, on the same K folds of the target's rows, every candidate a
statistician would try with a small target and a source's coefficients, each with its
own automatic tuning redone inside each fold (nested: the held-out rows never tune the
candidate they judge; SMART's, by default, is shared across the folds: see
``smart_tuning`` of :meth:`Transfer.fit`):

* ``source`` -- the source as is (its slopes and its intercept; only when the source
  carries an intercept: fitted results, or a frame with an ``Intercept`` row);
* ``source slopes`` -- the source's slopes with the target's intercept;
* ``SourceMixture``, ``RidgeToSource``;
* ``SMART`` -- with the magnitude pull tuned (``gamma="cv"``);
* ``SourceSubspaceRRR``, ``BISMART``;
* the target-only ``OLS``, ``Ridge``, ``ReducedRank``.

SMART comes before its restricted cases ``SourceSubspaceRRR`` (SMART without leakage)
and ``BISMART`` (a restricted reduced-rank fit in selected source directions): SMART's
own tuning has already chosen, on the same folds, how far to leave the source's
subspaces, so a near-tie of its CV error with theirs is not evidence for the restricted
fit. (With them first, the rule took ``SourceSubspaceRRR`` on the paper's Model-I, 5%
behind tuned SMART, and on MASS crabs with 10 target rows lost 0.008 RMSE in a split.)

Where the source carries an intercept (and the model has one), every candidate that fits
or takes the source's slopes is tried a second time with its intercept pulled towards the
source's by empirical Bayes (:func:`eb_intercept`; label ``"<name> (EB intercept)"``,
placed just before the candidate itself): the same slopes, scored on the same folds from
the same fold fits. Over a short target window the target's mean is far noisier than a
long source's, and a held-out row shares its window's mean with the training rows, so
cross-validation inside the window cannot see what the source's intercept is worth; the
pooled intercept takes the target's only as far as the responses' intercepts disagree
with the source's beyond their noise.

By the one-standard-error rule, the first candidate in the order above (from the least
estimated on the target to the most, SMART before its restricted cases) whose held-out
mean squared error (per row and response, pooled over the folds) is at most the smallest
plus one standard error of the best candidate's fold errors is refitted on all rows
(``rule="min"``: the smallest).
With several sources (``source=[a, b, ...]``) every source-aware candidate is tried with
every source, and a ``pooled`` source is added (weights proportional to each source's CV
gain over the best target-only candidate, 0 for a source without gain; the pooled
candidates are scored on the same folds after the weights are set from them, so their CV
error is slightly optimistic); each source's weight in the final fit is reported
(``res.source_weights``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .. import design, source_alignment
from .._validation import Param
from ..solvers._base import argmin_simplest
from .base import PenalizedResults, check_int
from .multi_source import is_source_list
from .source import SourceModel

#: the candidates in order (near-ties go to the earlier one)
TRANSFER_CANDIDATES = ("source", "source slopes", "SourceMixture", "RidgeToSource",
                       "SMART", "SourceSubspaceRRR", "BISMART", "OLS", "Ridge",
                       "ReducedRank")
#: candidates tried only when named in ``candidates=`` (SparseSMART: its lam path costs
#: seconds per fit at p = 100, and a 5-fold CV fits it six times)
OPTIONAL_CANDIDATES = ("SparseSMART",)
#: candidates that use no source
TARGET_ONLY = ("OLS", "Ridge", "ReducedRank")
#: candidates that tune by their own K-fold cross-validation (``fit(n_folds=...)``)
INNER_CV = ("SourceMixture", "SourceSubspaceRRR", "BISMART", "SMART")
#: the label suffix of a candidate whose intercept is pulled towards the source's
EB_SUFFIX = " (EB intercept)"


def eb_intercept(Y, X, C, b0):
    """The intercept of slopes ``C`` pulled towards the source's intercept ``b0`` by
    empirical Bayes, and the target's share ``w`` (q,).

    With the target's intercept ``b_t = ybar - C^T xbar`` (variance ``v_j = s_j^2 / n``,
    ``s_j^2`` the residual variance of response j about ``X C + b_t``) and the model
    ``b_t,j = b0_j + delta_j + e_j``, ``delta_j ~ (0, tau^2)``, ``e_j ~ (0, v_j)``, the
    moment estimate ``tau^2 = max(mean_j((b_t,j - b0_j)^2 - v_j), 0)`` over the q
    responses gives the posterior mean

        b_j = b0_j + w_j (b_t,j - b0_j),    w_j = tau^2 / (tau^2 + v_j).

    ``tau^2 = 0`` (the target's intercepts no farther from the source's than their own
    noise) gives the source's intercept; a large ``tau^2`` the target's.
    """
    Y, X = np.asarray(Y, dtype=float), np.asarray(X, dtype=float)
    n = Y.shape[0]
    b_t = Y.mean(0) - C.T @ X.mean(0)
    E = Y - X @ C - b_t
    v = np.einsum("ij,ij->j", E, E) / max(n - 1, 1) / n
    d = b_t - b0
    tau2 = max(float(np.mean(d * d - v)), 0.0)
    denom = tau2 + v
    w = np.divide(tau2, denom, out=np.ones_like(v), where=denom > 0)
    return b0 + w * d, w


def _source_intercept(source, ynames):
    """The intercept a source carries (array q) or None: fitted mtltransfer results'
    ``intercept``, or an ``Intercept``/``const`` row of its coefficient frame."""
    b = getattr(source, "intercept", None)
    if isinstance(b, pd.Series) and getattr(source, "params", None) is not None:
        try:
            return b.reindex([str(y) for y in ynames]).to_numpy(dtype=float)
        except (TypeError, ValueError):
            return None
    frame = source_alignment.source_frame(source)
    if isinstance(frame, pd.DataFrame):
        for name in design.INTERCEPT_NAMES:
            if name in frame.index:
                row = frame.loc[name]
                row.index = [str(c) for c in row.index]
                if all(str(y) in row.index for y in ynames):
                    return row[[str(y) for y in ynames]].to_numpy(dtype=float)
    return None


class Transfer(SourceModel):
    """The transfer that suits the data, chosen by K-fold cross-validation.

    Parameters
    ----------
    endog, exog
        Target responses and predictors (see
        :class:`~mtltransfer.models.base.MultiResponseModel`).
    source : results, DataFrame, array_like, or a list of them
        The source's coefficients as for :class:`~mtltransfer.SMART`; a list gives
        several sources (aligned by name each).
    source_intercept : array_like (q,), list of them, or None
        The source's intercept, for the "source as is" candidate. None takes it from
        the source where it carries one (fitted results, an ``Intercept`` row).
    intercept, missing
        As every model.

    Notes
    -----
    See :mod:`mtltransfer.models.transfer_family` for the candidates and the rule. The
    results are those of the chosen fit (``params``, ``predict``, ``bootstrap``,
    ``save``), its own results object as ``res.chosen`` (None for the two fixed
    candidates), and the cross-validation table as ``res.tuning["transfer_cv"]`` and in
    the summary.

    See Also
    --------
    TransferResults : what :meth:`fit` returns.
    SMART

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> mod = mt.Transfer.from_formula(formula, target, source=source)
    >>> res = mod.fit(candidates=["source", "SourceMixture", "ReducedRank"])
    >>> res.method           # the mixture, its intercept pulled towards the source's
    'SourceMixture (EB intercept)'
    >>> list(res.tuning["transfer_cv"].index)[:3]
    ['source', 'SourceMixture (EB intercept)', 'SourceMixture']
    """

    _method = "Transfer chosen by cross-validation"
    #: the chosen candidate and its options are what the cross-validation tunes (a
    #: bootstrap replicate refits that candidate); both are checked by ``fit``
    _param_table = {"method": Param("other", tuned=True),
                    "method_options": Param("other", tuned=True)}
    _needs_rows = ("nested cross-validation refits every candidate on each fold's rows "
                   "and scores it on the held-out rows")
    #: ``fit(tuning="holdout")`` (:mod:`mtltransfer.holdout`): every candidate fitted on
    #: the training rows (with its own tuning there), the one best on the validation rows
    _holdout_grid = {"method": lambda m, call: [c[0] for c in m._candidates(
        call.get("candidates") or TRANSFER_CANDIDATES, bool(call.get("eb_intercept", True)))]}

    def __init__(self, endog, exog=None, *, source=None, source_intercept=None,
                 intercept=None, missing="raise"):
        if source is None:
            raise TypeError("Transfer() needs source=: the source study's fitted results, "
                            "a DataFrame of its coefficients or a p x q array (or a list "
                            "of them)")
        sources = list(source) if is_source_list(source) else [source]
        super().__init__(endog, exog, source=sources[0], intercept=intercept,
                         missing=missing)
        xn, yn = self.data.xnames, self.data.ynames
        self.sources = [self.source] + [
            source_alignment.align_source(s, xn, yn, name=f"source[{i + 1}]")
            for i, s in enumerate(sources[1:], start=1)]
        if source_intercept is None:
            ints = [_source_intercept(s, yn) for s in sources]
        else:
            ints = list(source_intercept) if len(sources) > 1 else [source_intercept]
            if len(ints) != len(sources):
                raise ValueError(f"source_intercept must give one intercept per source "
                                 f"({len(sources)}); got {len(ints)}")
        self.source_intercepts = []
        for b in ints:
            if b is not None:
                b = np.asarray(b, dtype=float).reshape(-1)
                if b.shape != (self.k_endog,) or not np.all(np.isfinite(b)):
                    raise ValueError(f"source_intercept must be {self.k_endog} finite "
                                     f"values (one per response); got {b!r}")
            self.source_intercepts.append(b)
        self.source_names = (["source"] if len(sources) == 1 else
                             [f"source{i + 1}" for i in range(len(sources))])

    def init_options(self):
        if len(self.sources) == 1:
            return {"source": self.source, "source_intercept": self.source_intercepts[0]}
        return {"source": list(self.sources), "source_intercept": self.source_intercepts}

    # -- the candidates -----------------------------------------------------------------
    def _candidates(self, names, eb=True):
        """(label, method, source index or None) for every candidate to try; with
        ``eb``, each source-aware candidate but the source as is is preceded by its
        variant with the intercept pulled towards the source's (a source that carries
        an intercept, a model with one)."""
        out = []
        for name in names:
            if name in TARGET_ONLY:
                out.append((name, name, None))
                continue
            for j, sname in enumerate(self.source_names):
                if name == "source" and self.source_intercepts[j] is None:
                    continue
                tag = "" if len(self.sources) == 1 else f" [{sname}]"
                if eb and name != "source" and self.center and \
                        self.source_intercepts[j] is not None:
                    out.append((name + EB_SUFFIX + tag, name + EB_SUFFIX, j))
                out.append((name + tag, name, j))
        return out

    def _fit_candidate(self, data, method, C0, b0, options, cache=None):
        """(coef, intercept, results or None) of one candidate on ``data``; a
        ``"... (EB intercept)"`` method is its base method's fit with the intercept
        pulled towards ``b0`` (:func:`eb_intercept`). ``cache`` (a dict) keeps the base
        fits, so that both variants of a candidate on the same rows cost one fit."""
        if method.endswith(EB_SUFFIX):
            base = method[:-len(EB_SUFFIX)]
            if cache is not None and base in cache:
                C, _, res = cache[base]
            else:
                C, b, res = self._fit_candidate(data, base, C0, b0, options)
                if cache is not None:
                    cache[base] = (C, b, res)
            b, _ = eb_intercept(data.endog, data.exog, C, np.asarray(b0, dtype=float))
            return C, b, res
        if cache is not None and method in cache:
            return cache[method]
        out = self._fit_candidate_base(data, method, C0, b0, options)
        if cache is not None:
            cache[method] = out
        return out

    def _fit_candidate_base(self, data, method, C0, b0, options):
        from .linear import OLS, ReducedRank, Ridge
        from ..smart.block_model import BISMART
        from ..smart.model import SMART
        from ..smart.sparse_model import SparseSMART
        from .transfer import RidgeToSource, SourceMixture, SourceSubspaceRRR

        if method in ("source", "source slopes"):
            C = np.array(C0, dtype=float)
            if method == "source":
                return C, np.array(b0, dtype=float), None
            Y, X = data.endog, data.exog
            b = Y.mean(0) - C.T @ X.mean(0) if self.center else np.zeros(Y.shape[1])
            return C, b, None
        classes = {"SMART": SMART, "BISMART": BISMART, "SparseSMART": SparseSMART,
                   "RidgeToSource": RidgeToSource,
                   "SourceSubspaceRRR": SourceSubspaceRRR, "SourceMixture": SourceMixture,
                   "OLS": OLS, "Ridge": Ridge, "ReducedRank": ReducedRank}
        cls = classes[method]
        kw = {} if method in TARGET_ONLY else {"source": C0}
        opts = dict(options or {})
        if method == "SMART":
            opts.setdefault("gamma", "cv")
        if method in INNER_CV:
            # a candidate's own K-fold tuning on few rows (a fold's training part of a
            # small target): as many folds as 2 rows each allow, at most its default 5
            opts.setdefault("n_folds", int(min(5, max(2, data.nobs // 2))))
        res = cls(data, **kw).fit(**opts)
        return res.coef, res.intercept.to_numpy(), res

    def _folds(self, n_folds, blocked=False):
        """Row indices of the held-out part of each fold: the model's fold rule, or
        ``blocked``: K contiguous blocks of rows in their order."""
        n = self.nobs
        if blocked:
            return list(np.array_split(np.arange(n), n_folds))
        row_hash = self.data.extra.get("row_hash")
        if row_hash is not None:
            fold = design.hash_folds(row_hash, n_folds)
            return [np.flatnonzero(fold == k) for k in range(n_folds)]
        perm = np.random.default_rng(0).permutation(n)
        return [np.sort(idx) for idx in np.array_split(perm, n_folds)]

    # -- fit ----------------------------------------------------------------------------
    def fit(self, method=None, method_options=None, source_weights=None, *,
            candidates=None, n_folds=5, folds="random", rule="1se", eb_intercept=True,
            smart_tuning="shared", backend="fast", tol=None, max_iter=None,
            verbose=False):
        """Choose the transfer by K-fold cross-validation and fit it on all rows.

        Parameters
        ----------
        method : str or None
            A candidate label (``res.tuning["transfer_cv"].index``) to fit without the
            cross-validation; None chooses.
        method_options : dict or None
            ``fit`` keywords of the chosen method (with ``method``; the bootstrap's
            replicates use it to keep the full-data choice and its hyperparameters).
        source_weights : array_like or None
            With a ``"... [pooled]"`` method: the sources' weights in the pooled source.
        candidates : sequence of str or None
            Methods to try (default :data:`TRANSFER_CANDIDATES`; the opt-in
            ``OPTIONAL_CANDIDATES``, ``"SparseSMART"``, only when named here).
        n_folds : int
            Folds of the cross-validation (the same folds for every candidate).
        folds : {"random", "blocked"}
            The model's folds (a seeded random partition, or hashed rows for a model
            built with ``folds="hash"``), or K contiguous blocks of rows in their order:
            for time-ordered rows, where a random partition lets each held-out row's
            neighbours in time into the training part, so a regime that is local in
            time looks predictable.
        eb_intercept : bool, default True
            Also try each source-aware candidate with its intercept pulled towards the
            source's by empirical Bayes (``"<name> (EB intercept)"``; only where the
            source carries an intercept). False: the target's intercept only.
        smart_tuning : {"shared", "nested"}
            How the ``SMART`` candidate is tuned inside the cross-validation.
            ``"shared"`` (with ``folds="random"``): SMART is tuned once on all rows
            with the same K folds (its structural-rank and gamma cross-validation), and
            in fold k it is refitted with the rank and gamma that are best on the other
            K - 1 folds' held-out losses of that shared gamma cross-validation (the
            structural ranks and lambda as tuned on all rows); about K times cheaper.
            ``"nested"``: SMART's whole tuning is redone inside each fold.
        rule : {"1se", "min"}
            ``"1se"``: the first candidate, in the order of
            :data:`TRANSFER_CANDIDATES` (from the least estimated on the target to the
            most, SMART before its restricted cases), whose CV error is at most the
            smallest plus one standard error of the best candidate's fold errors (the
            one-standard-error rule of Breiman et al., 1984); ``"min"``: the smallest
            CV error.
        backend : {"fast"}
        tol, max_iter, verbose
            Accepted for a common interface; each candidate uses its own defaults.

        Returns
        -------
        TransferResults
        """
        from ..selection import check_folds

        if backend != "fast":
            raise ValueError("Transfer runs each candidate's fast path; backend must be "
                             "'fast'")
        names = TRANSFER_CANDIDATES if candidates is None else tuple(candidates)
        unknown = [c for c in names if c not in TRANSFER_CANDIDATES + OPTIONAL_CANDIDATES]
        if unknown or not names:
            raise ValueError(f"candidates must be a non-empty subset of "
                             f"{list(TRANSFER_CANDIDATES + OPTIONAL_CANDIDATES)}; got "
                             f"{list(names)!r}")
        if not isinstance(eb_intercept, (bool, np.bool_)):
            raise TypeError(f"eb_intercept must be True or False; got {eb_intercept!r}")
        cands = self._candidates(names, bool(eb_intercept))
        self._shared_fits = {}          # all-rows SMART fits of the shared tuning
        if method is not None:          # a named method may be an opt-in candidate
            cands = self._candidates(tuple(dict.fromkeys(names + OPTIONAL_CANDIDATES)),
                                     bool(eb_intercept))
            weights = None
            if source_weights is not None:
                w = np.asarray(source_weights, dtype=float).reshape(-1)
                if w.shape != (len(self.sources),) or not np.all(np.isfinite(w) & (w >= 0)):
                    raise ValueError(f"source_weights must be {len(self.sources)} finite "
                                     f"weights >= 0; got {source_weights!r}")
                weights = pd.DataFrame({"pooled_weight": w}, index=self.source_names)
            known = cands + self._pooled_candidates(cands, weights)
            match = [c for c in known if c[0] == method]
            if not match:
                raise ValueError(f"method must be one of {[c[0] for c in known]} (a "
                                 f"pooled method needs source_weights); got {method!r}")
            return self._final(match[0], method_options, None, {"method": "given"},
                               weights=weights)
        n_folds = check_int("n_folds", n_folds, 2, 10 ** 6)
        n_folds = check_folds(n_folds, self.nobs, "Transfer")
        if rule not in ("1se", "min"):
            raise ValueError(f"rule must be '1se' or 'min'; got {rule!r}")
        if folds not in ("random", "blocked"):
            raise ValueError(f"folds must be 'random' or 'blocked'; got {folds!r}")
        if smart_tuning not in ("shared", "nested"):
            raise ValueError(f"smart_tuning must be 'shared' or 'nested'; got "
                             f"{smart_tuning!r}")
        table, weights = self._cross_validate(
            cands, n_folds, verbose, blocked=folds == "blocked",
            shared=smart_tuning == "shared" and folds != "blocked")
        label = table.index[choose(table, rule)]
        chosen = [c for c in cands + self._pooled_candidates(cands, weights)
                  if c[0] == label][0]
        how = f"{n_folds}-fold CV" + (", blocked" if folds == "blocked" else "") + \
            (", 1-se rule" if rule == "1se" else "")
        res = self._final(chosen, None, table, {"method": how}, weights=weights)
        self._shared_fits = {}          # the model keeps no fits of its own
        return res

    def _pooled_candidates(self, cands, weights):
        if weights is None:
            return []
        # an EB-intercept candidate needs the pooled intercept: every source's
        every = all(b is not None for b in self.source_intercepts)
        return [(f"{name} [pooled]", name, "pooled") for name in
                dict.fromkeys(c[1] for c in cands if c[2] is not None)
                if every or not name.endswith(EB_SUFFIX)]

    def _source_for(self, j, weights):
        if j == "pooled":
            w = weights.to_numpy()
            C0 = sum(wi * S for wi, S in zip(w, self.sources))
            ints = self.source_intercepts
            b0 = None if any(b is None for b in ints) else sum(
                wi * b for wi, b in zip(w, ints))
            return C0, b0
        return self.sources[j], self.source_intercepts[j]

    def _cv_losses(self, cands, folds, weights, verbose, shared=False):
        rows = np.arange(self.nobs)
        out = {}
        # the training part of each fold, built once for all candidates; the base fits
        # of each (source, fold), shared by a candidate and its EB-intercept variant
        parts = [self.data.take(np.setdiff1d(rows, held)) for held in folds]
        caches = {}
        if shared:
            for j in dict.fromkeys(c[2] for c in cands if c[1].startswith("SMART")):
                C0, _ = self._source_for(j, weights)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fits = self._smart_shared(C0, parts, folds, j)
                except (ValueError, np.linalg.LinAlgError):
                    fits = None               # the nested tuning below says why
                for k, fit in enumerate(fits or ()):
                    caches.setdefault((j, k), {})["SMART"] = fit
        for label, method, j in cands:
            losses, note = [], ""
            for k, held in enumerate(folds):
                C0, b0 = self._source_for(j, weights) if j is not None else (None, None)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        C, b, _ = self._fit_candidate(parts[k], method, C0, b0, None,
                                                      cache=caches.setdefault((j, k), {}))
                except (ValueError, np.linalg.LinAlgError) as err:
                    note = f"failed: {str(err).splitlines()[0][:60]}"
                    losses = [np.nan] * len(folds)
                    break
                X, Y = self.exog[held], self.endog[held]
                R = Y - (X @ C + b)
                losses.append(float(np.mean(R * R)))
            out[label] = (losses, note)
            if verbose:
                import sys
                print(f"Transfer: {label}: cv mse {np.mean(losses):.6g}", file=sys.stderr)
        return out

    def _smart_shared(self, C0, parts, folds, j):
        """The SMART candidate's fit on each fold's training part, tuned once: SMART
        (``gamma="cv"``) on all rows with the same folds; in fold k, the (rank, gamma)
        row of its gamma cross-validation with the smallest held-out loss over the
        other folds (weighted by their rows; rows dropped by its 5% rule are not
        eligible), refitted on the fold's training part with the structural ranks and
        lambda of the all-rows tuning. Returns the list of (coef, intercept, results),
        or None where the all-rows fit has no gamma cross-validation."""
        from ..smart.model import SMART

        full = SMART(self.data, source=C0).fit(gamma="cv", n_folds=len(folds))
        table = full.tuning.get("gamma_cv")
        if table is None:
            return None
        self._shared_fits[j] = full
        K = len(folds)
        L = table[[f"fold{k + 1}" for k in range(K)]].to_numpy(dtype=float)
        w = np.array([len(f) for f in folds], dtype=float)
        out = []
        for k in range(K):
            keep = np.arange(K) != k
            i = argmin_simplest(L[:, keep] @ w[keep] / w[keep].sum())
            row = table.iloc[i]
            res = SMART(parts[k], source=C0).fit(
                rank=int(row["rank"]), structural_rank=(int(row["r_u"]), int(row["r_v"])),
                lam=full.lam, gamma=float(row["gamma"]))
            out.append((res.coef, res.intercept.to_numpy(), res))
        return out

    def _cross_validate(self, cands, n_folds, verbose, blocked=False, shared=False):
        folds = self._folds(n_folds, blocked)
        sizes = np.array([len(f) for f in folds], dtype=float)
        res = self._cv_losses(cands, folds, None, verbose, shared)
        weights = None
        if len(self.sources) > 1:
            weights = self._source_weights(cands, res, sizes)
            if weights.sum() > 0:
                res.update(self._cv_losses(self._pooled_candidates(cands, weights), folds,
                                           weights, verbose, shared))
            else:
                weights = None
        labels = list(res)
        L = np.array([res[k][0] for k in labels], dtype=float)
        mean = L @ sizes / sizes.sum()
        se = L.std(axis=1, ddof=1) / np.sqrt(n_folds)
        kinds = {c[0]: ("target only" if c[2] is None else "transfer") for c in cands}
        table = pd.DataFrame({"kind": [kinds.get(k, "transfer") for k in labels],
                              "cv_mse": mean, "cv_se": se,
                              "note": [res[k][1] for k in labels]},
                             index=pd.Index(labels, name="candidate"))
        table = table.join(pd.DataFrame(L, index=table.index,
                                        columns=[f"fold{k + 1}" for k in range(n_folds)]))
        return table, self._weights_frame(cands, res, sizes, weights)

    def _best_by_source(self, cands, res, sizes):
        """The smallest pooled CV mse of each source's candidates, and of the
        target-only candidates."""
        best = {}
        for label, _, j in cands:
            m = float(np.asarray(res[label][0]) @ sizes / sizes.sum())
            key = "target" if j is None else j
            if np.isfinite(m):
                best[key] = min(best.get(key, np.inf), m)
        return best

    def _source_weights(self, cands, res, sizes):
        """Each source's weight in the pooled source: proportional to its CV gain over
        the best target-only candidate, zero for a source that does not beat it."""
        best = self._best_by_source(cands, res, sizes)
        ref = best.get("target", np.inf)
        gains = np.array([max(ref - best.get(j, np.inf), 0.0) if np.isfinite(ref) else
                          (1.0 if np.isfinite(best.get(j, np.inf)) else 0.0)
                          for j in range(len(self.sources))])
        total = gains.sum()
        w = gains / total if total > 0 else gains
        return pd.Series(w, index=self.source_names, name="weight")

    def _weights_frame(self, cands, res, sizes, weights):
        if len(self.sources) == 1:
            return None
        best = self._best_by_source(cands, res, sizes)
        return pd.DataFrame({
            "best_cv_mse": [best.get(j, np.nan) for j in range(len(self.sources))],
            "pooled_weight": (weights.to_numpy() if weights is not None
                              else np.zeros(len(self.sources)))},
            index=pd.Index(self.source_names, name="source"))

    def _final(self, cand, options, table, how, weights=None):
        label, method, j = cand
        pooled = None
        if j == "pooled":
            pooled = weights["pooled_weight"]
        C0, b0 = (self._source_for(j, pooled) if j is not None else (None, None))
        cache = None
        full = self._shared_fits.get(j)
        if full is not None and options is None and method.startswith("SMART") and \
                len(full.tuning["gamma_cv"].filter(like="fold").columns) == 5:
            # the all-rows SMART fit of the shared tuning is SMART's own (5 folds)
            cache = {"SMART": (full.coef, full.intercept.to_numpy(), full)}
        C, b, res = self._fit_candidate(self.data, method, C0, b0, options, cache=cache)
        w = None
        if method.endswith(EB_SUFFIX):
            _, w = eb_intercept(self.endog, self.exog, C, np.asarray(b0, dtype=float))
            w = pd.Series(w, index=self.endog_names, name="target share")
        opts = {} if res is None else {
            k: v for k, v in getattr(res, "hyperparameters", {}).items()
            if k in _fit_keywords(type(res.model))}
        tuning = {} if table is None else {"transfer_cv": table}
        if weights is not None:
            tuning["source_weights"] = weights
        return TransferResults(self, C, b, res, label, opts, how, tuning,
                               source_index=j, pooled=pooled, intercept_weights=w)


def choose(table, rule="1se"):
    """Row of the chosen candidate of a CV table (``cv_mse``, ``cv_se``; rows in
    :data:`TRANSFER_CANDIDATES` order): the smallest error (ties: the earlier row), or
    with ``"1se"`` the first row within one standard error of the best row's."""
    mean = table["cv_mse"].to_numpy(dtype=float)
    best = argmin_simplest(mean)
    if rule == "min":
        return best
    bound = mean[best] + np.nan_to_num(table["cv_se"].to_numpy(dtype=float)[best])
    return int(np.flatnonzero(np.isfinite(mean) & (mean <= bound))[0])


def _fit_keywords(cls):
    import inspect
    return set(inspect.signature(cls.fit).parameters) - {"self"}


class TransferResults(PenalizedResults):
    """Results of :class:`Transfer`: the chosen fit, and the cross-validation behind it.

    Attributes
    ----------
    method : str
        The chosen candidate.
    chosen : results or None
        The chosen candidate's own results (its summary, factors, tuning), None for the
        fixed candidates (the source as is, the source's slopes).
    source_weights : Series or None
        With several sources: each source's weight in the chosen fit (1 for the source a
        single-source candidate used, the pooled weights for a pooled candidate).
    intercept_weights : Series or None
        For an ``"... (EB intercept)"`` choice: each response's share ``w_j`` of the
        target's intercept in ``b0 + w (b_t - b0)`` (:func:`eb_intercept`); the
        coefficients are the candidate's (``chosen``), the intercept is not.
    tuning : dict of DataFrame
        ``"transfer_cv"``: per candidate its kind, pooled held-out mse, its standard
        error over folds and the fold values; ``"source_weights"`` with several sources.

    See Also
    --------
    Transfer : the model whose :meth:`Transfer.fit` returns these results.

    Examples
    --------
    >>> import mtltransfer as mt
    >>> demo = mt.datasets.load_demo()
    >>> formula, target = demo["formula"], demo["target"]
    >>> source = mt.ReducedRank.from_formula(formula, demo["source"]).fit()
    >>> mod = mt.Transfer.from_formula(formula, target, source=source)
    >>> res = mod.fit(candidates=["source", "ReducedRank"])
    >>> res.method in ("source", "ReducedRank")
    True
    >>> res.predict(demo["test"]).shape
    (400, 12)
    """

    def __init__(self, model, coef, intercept, chosen, label, options, how, tuning, *,
                 source_index=None, pooled=None, intercept_weights=None):
        df = (float(chosen._df_coef) if chosen is not None else 0.0)
        hyper = {"method": label, "method_options": dict(options)}
        if pooled is not None:
            hyper["source_weights"] = [float(v) for v in np.asarray(pooled)]
        super().__init__(model, coef, hyperparameters=hyper,
                         chosen_by={"method": how["method"]}, df_model=df, tuning=tuning,
                         config={"method": f"{label} ({how['method']})"})
        self._intercept = np.asarray(intercept, dtype=float)
        self.chosen = chosen
        self.method = label
        self.intercept_weights = intercept_weights
        if len(model.sources) == 1:
            self.source_weights = None
        else:
            w = np.zeros(len(model.sources))
            if pooled is not None:
                w = np.asarray(pooled, dtype=float)
            elif isinstance(source_index, (int, np.integer)):
                w[source_index] = 1.0
            self.source_weights = pd.Series(w, index=model.source_names, name="weight")

    def summary(self, alpha=0.05):
        """The chosen fit's summary, then the cross-validation table (and the sources'
        weights with several sources).

        Parameters
        ----------
        alpha : float
            Level of the intervals shown (as the chosen model's summary).

        Returns
        -------
        statsmodels.iolib.summary.Summary
        """
        from ..summary import add_frame

        smry = super().summary(alpha) if self.chosen is None else self.chosen.summary(alpha)
        if "transfer_cv" in self.tuning:
            t = self.tuning["transfer_cv"][["kind", "cv_mse", "cv_se"]].copy()
            t["chosen"] = ["<--" if i == self.method else "" for i in t.index]
            add_frame(smry, t, f"Transfer chosen by cross-validation: {self.method}")
        if self.source_weights is not None:
            add_frame(smry, self.source_weights.to_frame(), "Weight of each source")
        note = f"Transfer: '{self.method}' chosen ({self.chosen_by['method']})."
        if self.method.split(" [")[0] == "source":
            note += " The source's slopes and intercept are used as they are."
        if self.intercept_weights is not None:
            note += (" Intercept pulled towards the source's by empirical Bayes: the "
                     f"target's share w is {self.intercept_weights.mean():.3g} on average "
                     f"(min {self.intercept_weights.min():.3g}, max "
                     f"{self.intercept_weights.max():.3g}).")
        smry.add_extra_txt([t for t in (smry.extra_txt, note) if t])
        return smry
