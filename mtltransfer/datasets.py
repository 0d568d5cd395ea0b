"""Simulators of the papers' designs and small data sets that need no download."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _rng(random_state):
    return random_state if isinstance(random_state, np.random.Generator) else \
        np.random.default_rng(random_state)


def _ar1_cov(p, rho=0.5):
    """Sigma_ij = rho ** |i - j|."""
    idx = np.arange(p)
    return rho ** np.abs(idx[:, None] - idx[None, :])


@dataclass
class SmartSimulation:
    """Output of :func:`simulate_smart`.

    Attributes
    ----------
    X : ndarray, shape (n, p)
    Y : ndarray, shape (n, q)
    C : ndarray, shape (p, q)
        The target coefficient matrix C*.
    C0 : ndarray, shape (p, q)
        The observed (noisy) source coefficient matrix C0 = C0* + sigma0 * noise.
    C0_star : ndarray, shape (p, q)
        The noiseless source matrix U0 D0 V0^T.
    U0, V0 : ndarray
        Source singular vectors, shapes (p, source_rank) and (q, source_rank).
    D0 : ndarray, shape (source_rank,)
    S_u, S_v : ndarray of int
        Indices (into the source's columns) of the target's singular vectors.
    """

    X: np.ndarray
    Y: np.ndarray
    C: np.ndarray
    C0: np.ndarray
    C0_star: np.ndarray
    U0: np.ndarray
    V0: np.ndarray
    D0: np.ndarray
    S_u: np.ndarray
    S_v: np.ndarray

    def __iter__(self):
        # ``X, Y, C, C0 = simulate_smart(...)`` unpacks the four main arrays.
        return iter((self.X, self.Y, self.C, self.C0))


def simulate_smart(n, p, q, rank=5, source_rank=10, sigma0=0.01, sigma=0.5,
                   random_state=None):
    """Simulate the SMART paper's design (Zhao, Kolar and Lv, 2026, Section 5).

    Source: ``C0* = U0 D0 V0^T`` with U0, V0 the Q factors of Gaussian p x s and q x s
    matrices (s = ``source_rank``) and ``D0 = diag(linspace(1, 10, s))``; the observed source
    is ``C0 = C0* + sigma0 * N(0, 1)`` entrywise. Target:
    ``C* = U0[:, S_u] diag(linspace(3, 5, rank)) V0[:, S_v]^T`` with S_u, S_v independent
    random subsets of size ``rank`` of the s source columns. Rows of X are N(0, Sigma) with
    ``Sigma_ij = 0.5^|i-j|`` and ``Y = X C* + sigma * N(0, 1)``.

    Parameters
    ----------
    n, p, q : int
        Rows, predictors and responses of the target study.
    rank : int
        Rank r of the target matrix, at most ``source_rank``.
    source_rank : int
        Rank of the noiseless source matrix.
    sigma0 : float
        Entrywise noise of the source coefficient matrix.
    sigma : float
        Noise standard deviation of the target responses.
    random_state : int, Generator or None

    Returns
    -------
    SmartSimulation
        Unpacks as ``X, Y, C, C0``; the other parts are attributes.
    """
    if not 1 <= rank <= source_rank <= min(p, q):
        raise ValueError(f"need 1 <= rank <= source_rank <= min(p, q); got rank={rank}, "
                         f"source_rank={source_rank}, p={p}, q={q}")
    rng = _rng(random_state)
    s = source_rank
    U0 = np.linalg.qr(rng.standard_normal((p, s)))[0]
    V0 = np.linalg.qr(rng.standard_normal((q, s)))[0]
    D0 = np.linspace(1.0, 10.0, s)
    C0_star = (U0 * D0) @ V0.T
    C0 = C0_star + sigma0 * rng.standard_normal((p, q))
    S_u = np.sort(rng.choice(s, size=rank, replace=False))
    S_v = np.sort(rng.choice(s, size=rank, replace=False))
    C = (U0[:, S_u] * np.linspace(3.0, 5.0, rank)) @ V0[:, S_v].T
    L = np.linalg.cholesky(_ar1_cov(p))
    X = rng.standard_normal((n, p)) @ L.T
    Y = X @ C + sigma * rng.standard_normal((n, q))
    return SmartSimulation(X, Y, C, C0, C0_star, U0, V0, D0, S_u, S_v)


def load_demo(random_state=20260424):
    """The embedded demo: a source study and a small target study (no download).

    A fixed-seed draw of the SMART design with named columns: 30 predictors ``x1..x30``,
    12 responses ``Y1..Y12``. The source study has 2,000 rows (its coefficients are fitted
    by reduced-rank regression and only those are passed on); the target study has 120 rows
    for fitting and 400 held-out rows for assessing predictions. The target's coefficient
    matrix (rank 3) lies mostly in the source's leading singular subspaces.

    Returns
    -------
    dict
        ``source``, ``target``, ``test`` (DataFrames), ``formula`` (str), ``C`` (the true
        target coefficients, DataFrame) and ``C0`` (the true source coefficients).
    """
    import pandas as pd

    rng = _rng(random_state)
    p, q, s, r = 30, 12, 6, 3
    U0 = np.linalg.qr(rng.standard_normal((p, s)))[0]
    V0 = np.linalg.qr(rng.standard_normal((q, s)))[0]
    C0 = (U0 * np.linspace(2.0, 6.0, s)) @ V0.T
    # target: three of the source's directions, one of them slightly rotated out of it
    S = rng.choice(s, size=r, replace=False)
    leak = np.linalg.qr(rng.standard_normal((p, 1)))[0][:, 0]
    Ut = U0[:, S].copy()
    Ut[:, 0] = 0.97 * Ut[:, 0] + 0.243 * (leak - U0 @ (U0.T @ leak)) / \
        np.linalg.norm(leak - U0 @ (U0.T @ leak))
    Ut = np.linalg.qr(Ut)[0]
    C = (Ut * np.array([3.0, 2.0, 1.5])) @ V0[:, S].T
    L = np.linalg.cholesky(_ar1_cov(p))
    xnames = [f"x{j + 1}" for j in range(p)]
    ynames = [f"Y{j + 1}" for j in range(q)]

    def draw(n, coef, sigma, intercept):
        X = rng.standard_normal((n, p)) @ L.T
        Y = intercept + X @ coef + sigma * rng.standard_normal((n, q))
        return pd.concat([pd.DataFrame(Y, columns=ynames), pd.DataFrame(X, columns=xnames)],
                         axis=1)

    b = np.linspace(-1, 1, q)
    source = draw(2000, C0, 1.0, b)
    target = draw(120, C, 1.0, b + 0.5)
    test = draw(400, C, 1.0, b + 0.5)
    formula = " + ".join(ynames) + " ~ " + " + ".join(xnames)
    return {"source": source, "target": target, "test": test, "formula": formula,
            "C": pd.DataFrame(C, index=xnames, columns=ynames),
            "C0": pd.DataFrame(C0, index=xnames, columns=ynames)}


@dataclass
class SharedSimulation:
    """Output of :func:`simulate_shared`.

    Attributes
    ----------
    X : ndarray, shape (sum N_t, d)
        Rows of all tasks stacked, task 0 first.
    y : ndarray, shape (sum N_t,)
    task : ndarray of int, shape (sum N_t,)
        Task label 0..T-1 of each row.
    B : ndarray, shape (d, k)
        The true representation B* (orthonormal columns).
    W : ndarray, shape (k, T)
        The true task parameters; the coefficients are ``B @ W`` (d x T).
    N : ndarray of int, shape (T,)
        Rows per task.
    sigma : float
        Noise standard deviation.
    """

    X: np.ndarray
    y: np.ndarray
    task: np.ndarray
    B: np.ndarray
    W: np.ndarray
    N: np.ndarray
    sigma: float

    def __iter__(self):
        # ``X, y, task, B, W = simulate_shared(...)``
        return iter((self.X, self.y, self.task, self.B, self.W))


def simulate_shared(T, N, d, k, sigma=1.0, condition_number=1.0, random_state=None):
    """Simulate multi-task regression with a shared linear representation.

    ``B* = Q`` factor of a d x k standard Gaussian matrix; ``w_t ~ N(0, Sigma_w)`` i.i.d.
    with ``Sigma_w = diag(lambda)``, ``lambda`` geometric from 1 to 1/condition_number and
    rescaled to mean 1 (so E||w_t||^2 = k; ``condition_number=1`` gives I_k); rows
    ``x ~ N(0, I_d)``; ``y_t = X_t B* w_t + sigma * N(0, 1)``.

    Parameters
    ----------
    T : int
        Number of tasks.
    N : int or array_like of int, shape (T,)
        Rows per task (one size for all, or one per task; each >= 1).
    d, k : int
        Dimension of x and of the representation, 1 <= k <= d.
    sigma : float
        Noise standard deviation (>= 0).
    condition_number : float
        Condition number (>= 1) of the covariance of w_t.
    random_state : int, Generator or None

    Returns
    -------
    SharedSimulation
        Unpacks as ``X, y, task, B, W``; ``N`` and ``sigma`` are attributes.
    """
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer; got {T!r}")
    if int(d) != d or int(k) != k or not 1 <= k <= d:
        raise ValueError(f"need integers 1 <= k <= d; got k={k!r}, d={d!r}")
    T, d, k = int(T), int(d), int(k)
    N = np.broadcast_to(np.asarray(N), (T,)).astype(np.int64)
    if np.any(N < 1):
        raise ValueError("N must be >= 1 for every task")
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0; got {sigma!r}")
    if not condition_number >= 1:
        raise ValueError(f"condition_number must be >= 1; got {condition_number!r}")
    rng = _rng(random_state)
    B = np.linalg.qr(rng.standard_normal((d, k)))[0]
    lam = np.geomspace(1.0, 1.0 / condition_number, k)
    lam *= k / lam.sum()
    W = np.sqrt(lam)[:, None] * rng.standard_normal((k, T))
    task = np.repeat(np.arange(T), N)
    X = rng.standard_normal((task.size, d))
    y = np.einsum("id,di->i", X, (B @ W)[:, task]) + sigma * rng.standard_normal(task.size)
    return SharedSimulation(X, y, task, B, W, N.copy(), float(sigma))
