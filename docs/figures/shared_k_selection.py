"""SharedRepresentation's default k (marginal-likelihood BIC) on simulated data: the
chosen k against the true k, and the fitted subspace's error with the chosen k against
the fit given the true k. Drawn by the docs build, one seed per setting (a few seconds
of CPU); benchmarks/shared_k_selection.py measures the full grid."""

import matplotlib.pyplot as plt
import numpy as np

import mtltransfer as mt

# (T tasks, N rows per task, d predictors, true k, noise sigma, cond(Sigma_w)): the
# smaller settings of benchmarks/shared_k_selection.py
GRID = [(100, 50, 20, 2, 1.0, 1), (100, 100, 50, 3, 0.5, 3), (200, 20, 50, 5, 1.0, 1),
        (300, 30, 10, 1, 2.0, 1), (300, 40, 30, 3, 1.0, 10), (400, 8, 40, 4, 1.0, 1),
        (500, 40, 30, 3, 1.0, 1), (1000, 10, 50, 5, 1.0, 1), (1000, 50, 20, 6, 2.0, 10),
        (2000, 5, 10, 2, 0.5, 1), (2000, 10, 30, 4, 2.0, 3), (3000, 6, 20, 2, 1.0, 1)]


def sin2(B, B_true):
    """||B_perp' B*||_F^2 = k* - ||B' B*||_F^2 for orthonormal bases."""
    Q = np.linalg.qr(B)[0]
    return B_true.shape[1] - np.linalg.norm(Q.T @ B_true) ** 2


rows = []
for i, (T, N, d, k, sigma, cond) in enumerate(GRID):
    X, y, task, B_true, W = mt.datasets.simulate_shared(T, N, d, k, sigma=sigma,
                                                        condition_number=cond,
                                                        random_state=i)
    model = mt.SharedRepresentation(y, X, task)
    chosen, given = model.fit(), model.fit(k=k)
    rows.append((k, chosen.k, sin2(chosen.representation.to_numpy(), B_true),
                 sin2(given.representation.to_numpy(), B_true)))
true_k, chosen_k, err_chosen, err_given = np.array(rows).T

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4), layout="constrained")
jitter = np.linspace(-0.15, 0.15, len(GRID))
left.plot([0.5, 6.5], [0.5, 6.5], color="0.7", lw=1)
left.scatter(true_k + jitter, chosen_k, color="C0")
left.set(xlabel="true k", ylabel="chosen k", title=f"{len(GRID)} settings, one draw each")
lim = [min(err_given.min(), err_chosen.min()) / 2, max(err_given.max(), err_chosen.max()) * 2]
right.plot(lim, lim, color="0.7", lw=1)
right.scatter(err_given, err_chosen, color="C0")
right.set(xscale="log", yscale="log", xlim=lim, ylim=lim, title="subspace error sin²",
          xlabel="fit given the true k", ylabel="fit with k chosen")
for ax in (left, right):
    ax.title.set_fontsize("medium")
