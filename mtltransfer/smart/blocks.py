"""Block-invariant SMART (BI-SMART): the source spectrum in certified blocks.

SMART indexes single source singular vectors: its penalty ``||U_perp^T U||_1`` is taken
along individual columns of U0, and where source singular values are tied (or closer than
the source's error) those columns are not determined by C0, so neither is SMART's fit.
BI-SMART uses only what C0 determines: the spans of *blocks* of singular vectors whose
values are separated from the rest of the spectrum by more than the source's error.

**Blocks.** With ``C0 = U0 diag(s) V0^T`` (full orthogonal U0, V0), the extended spectrum
``t_j = s_j`` for ``j <= min(p, q)`` and ``t_j = 0`` up to ``max(p, q)`` is cut between
``j`` and ``j + 1`` wherever

    t_j - t_{j+1} > c_gap * eps0,     eps0 = tau0 (sqrt p + sqrt q + sqrt(2 x0)),

eps0 being the bound on the operator norm of a p x q Gaussian noise matrix with entrywise
sd tau0 that holds with probability at least ``1 - exp(-x0)`` (Davidson and Szarek), and
never less than ``sqrt(machine eps) * s_1`` (rounding). A block's left (right) span is
that of the columns of U0 (V0) with its indices ``<= p`` (``<= q``): a function of C0
alone, however the SVD picks vectors within a block (:func:`spectral_blocks`).

**Estimator.** For a selection of whole blocks, left set ``I_u`` and right set ``I_v``,
with ``U = U0[:, I_u]``, ``V = V0[:, I_v]`` (orthonormal, d_u and d_v columns):

    C = U M V^T,   M = argmin_{rank(M) <= r} (1/2n)||Y V - X U M||_F^2,

the restricted reduced-rank regression, exact in closed form on the moments
``G = U^T Sxx U``, ``H = U^T Sxy V`` (:func:`restricted_rrr`; minimum-norm least squares
where G is singular). It depends on U and V only through their spans, so on C0 only
through its blocks: rotating C0's singular vectors within a block leaves it unchanged.
The blocks are selected by a *pilot*: the target's rank-r reduced-rank fit ``C_p``; the
pilot energy of a left block b is ``||U0[:, b]^T C_p||_F^2`` (of a right block
``||C_p V0[:, b]||_F^2``), also invariant within blocks. For a budget d, the
"energy" rule picks the blocks of largest total energy with total size ``<= d``, an exact
0/1 knapsack (:func:`knapsack`); the "leading" rule the longest run of leading blocks of
total size ``<= d`` (at least the first block): SMART's nested leading subspaces, cut
only at certified gaps.

**Subspace error.** By Wedin's theorem, if the source's error has operator norm at most
eps0, the span of a selection is within ``sin theta <= eps0 / gap`` of the noiseless
source's, gap the smallest distance between a selected and an unselected t_j
(:func:`wedin_bound`); the cut rule makes this at most ``1 / c_gap``.

Every function takes and returns plain arrays.
"""

from __future__ import annotations

import numpy as np

from ..solvers import linear as lin
from ..solvers.rrridge import subspace_moments

#: default of c_gap: a cut needs a gap of three certified source errors
C_GAP = 3.0
#: the finer partition BISMART also cross-validates: cuts at gaps above the certificate
C_GAP_FINE = 1.0
#: default of x0: the certificate fails with probability at most exp(-3) < 0.05
X0 = 3.0
#: the certificate is never below this multiple of s_1 (singular values to rounding)
EPS_FLOOR = float(np.sqrt(np.finfo(float).eps))


def source_certificate(tau0, p, q, s_max, x0=X0):
    """The source error certificate ``eps0 = tau0 (sqrt p + sqrt q + sqrt(2 x0))``, at
    least ``EPS_FLOOR * s_max``.

    For E a p x q matrix of iid N(0, tau0^2) entries,
    ``P(||E||_op > tau0 (sqrt p + sqrt q + t)) <= exp(-t^2 / 2)`` (Davidson and Szarek),
    so with ``t = sqrt(2 x0)`` the bound fails with probability at most ``exp(-x0)``.
    """
    if not np.isfinite(tau0) or tau0 < 0:
        raise ValueError(f"source_sd must be finite and >= 0; got {tau0!r}")
    if not np.isfinite(x0) or x0 <= 0:
        raise ValueError(f"x0 must be finite and > 0; got {x0!r}")
    eps0 = float(tau0) * (np.sqrt(p) + np.sqrt(q) + np.sqrt(2.0 * x0))
    return max(eps0, EPS_FLOOR * float(s_max))


def extended_spectrum(s, p, q):
    """``t``: the singular values s, padded with zeros to length max(p, q)."""
    t = np.zeros(max(p, q))
    t[:len(s)] = s
    return t


def spectral_blocks(s, p, q, eps0, c_gap=C_GAP):
    """Cut the extended spectrum at gaps larger than ``c_gap * eps0``.

    Parameters
    ----------
    s : ndarray
        Singular values of C0, descending (length min(p, q)).
    p, q : int
    eps0 : float
        The source error certificate (:func:`source_certificate`).
    c_gap : float

    Returns
    -------
    list of (int, int)
        Blocks as half-open index ranges ``[start, stop)`` of the extended spectrum, in
        order; they partition ``range(max(p, q))``.
    """
    if not np.isfinite(c_gap) or c_gap <= 0:
        raise ValueError(f"c_gap must be finite and > 0; got {c_gap!r}")
    t = extended_spectrum(s, p, q)
    cuts = np.flatnonzero(t[:-1] - t[1:] > c_gap * eps0) + 1
    edges = [0, *cuts.tolist(), len(t)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:])]


def side_blocks(blocks, dim):
    """The blocks restricted to one side (indices below ``dim``), empty ones dropped:
    list of (block number, start, stop)."""
    return [(k, a, min(b, dim)) for k, (a, b) in enumerate(blocks) if a < dim]


def block_energy(W, basis, blocks):
    """Energy ``||basis[:, a:b]^T W||_F^2`` of each block (a, b) (W is p x q for the left
    side, or its transpose for the right)."""
    proj = basis.T @ W
    rows = np.sum(proj * proj, axis=1)
    return np.array([rows[a:b].sum() for a, b in blocks])


def knapsack(sizes, values, budget):
    """Exact 0/1 knapsack: the items of largest total value with total size <= budget.

    Dynamic programming over the integer budget, O(len(sizes) * budget). Among selections
    of the same value the one found first (fewer, earlier items) is kept.

    Returns
    -------
    ndarray of int
        Indices of the chosen items, ascending.
    """
    sizes = np.asarray(sizes, dtype=int)
    values = np.asarray(values, dtype=float)
    budget = int(budget)
    K = len(sizes)
    best = np.zeros(budget + 1)
    take = np.zeros((K, budget + 1), dtype=bool)
    for k in range(K):
        w = sizes[k]
        if w > budget:
            continue
        cand = best[:budget + 1 - w] + values[k]
        better = cand > best[w:] * (1 + 1e-12) + 1e-300
        take[k, w:] = better
        best[w:] = np.where(better, cand, best[w:])
    chosen, room = [], budget
    for k in range(K - 1, -1, -1):
        if take[k, room]:
            chosen.append(k)
            room -= sizes[k]
    return np.array(sorted(chosen), dtype=int)


def select_blocks(rule, sides, energy, budget):
    """Blocks of one side chosen by a rule at a budget.

    Parameters
    ----------
    rule : {"leading", "energy", "all"}
    sides : list of (int, int, int)
        The side's blocks (:func:`side_blocks`).
    energy : ndarray
        Pilot energy per block of ``sides`` (used by "energy").
    budget : int

    Returns
    -------
    ndarray of int
        Column indices of the side's basis (ascending).
    """
    sizes = np.array([b - a for _, a, b in sides])
    if rule == "all":
        keep = np.arange(len(sides))
    elif rule == "leading":
        total = np.cumsum(sizes)
        keep = np.arange(max(int(np.sum(total <= budget)), 1))
    elif rule == "energy":
        keep = knapsack(sizes, energy, budget)
    else:
        raise ValueError(f"unknown block rule {rule!r}")
    if len(keep) == 0:
        return np.zeros(0, dtype=int)
    return np.concatenate([np.arange(sides[k][1], sides[k][2]) for k in keep])


def wedin_bound(t, index, eps0):
    """``eps0 / gap``: Wedin's bound on sin theta between the span of the selected
    singular vectors ``index`` and the noiseless source's, gap the smallest distance
    between a selected and an unselected value of the extended spectrum ``t`` (0 when
    all or none are selected)."""
    sel = np.zeros(len(t), dtype=bool)
    sel[index] = True
    if sel.all() or not sel.any():
        return 0.0
    gap = np.min(np.abs(t[sel][:, None] - t[~sel][None, :]))
    return float(np.inf) if gap == 0 else float(eps0 / gap)


def restricted_rrr(Sxx, Sxy, U, V, rank):
    """Reduced-rank regression restricted to ``C = U M V^T`` (U, V orthonormal columns).

    ``M = G^+ H V_r V_r^T`` with ``G = U^T Sxx U``, ``H = U^T Sxy V`` and V_r the top-r
    eigenvectors of ``H^T G^+ H`` (:func:`mtltransfer.solvers.linear.reduced_rank` on the
    restricted moments; ``r`` is capped by min(d_u, d_v)). Empty U or V gives C = 0.

    Returns
    -------
    C : ndarray, shape (p, q)
    M : ndarray, shape (d_u, d_v)
    """
    p, q = U.shape[0], V.shape[0]
    r = min(rank, U.shape[1], V.shape[1])
    if r == 0:
        return np.zeros((p, q)), np.zeros((U.shape[1], V.shape[1]))
    G, H = subspace_moments(Sxx, Sxy, U, V)
    M, _ = lin.reduced_rank(G, H, r)
    return U @ M @ V.T, M


def candidate_subspaces(rule, budget, blocks, U0, V0, pilot):
    """Column indices (I_u, I_v) of one candidate: a rule at a budget (d_u, d_v), blocks
    chosen on each side by the pilot's energy where the rule needs it. The rule "target"
    takes every column (the target-only fit), "zero" none."""
    p, q = U0.shape[0], V0.shape[0]
    if rule == "zero":
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    if rule == "target":
        return np.arange(p), np.arange(q)
    left, right = side_blocks(blocks, p), side_blocks(blocks, q)
    e_u = block_energy(pilot, U0, [(a, b) for _, a, b in left]) if rule == "energy" else None
    e_v = block_energy(pilot.T, V0, [(a, b) for _, a, b in right]) if rule == "energy" \
        else None
    return (select_blocks(rule, left, e_u, budget[0]),
            select_blocks(rule, right, e_v, budget[1]))
