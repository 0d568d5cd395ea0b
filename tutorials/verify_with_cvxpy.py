# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Cross-checking the solvers against CVXPY
#
# Every convex model and every convex subproblem in mtltransfer has two
# implementations: the production path (closed forms, proximal gradient, NumPy/SciPy)
# and a CVXPY formulation, chosen with `fit(..., backend="fast" | "cvxpy")`. SMART itself
# is not convex, so its check is different: `res.verify()` re-solves the convex
# subproblems *at the returned solution* with CVXPY and measures the optimality
# conditions.
#
# This tutorial is written the way you would check the solvers in your own test suite:
# small problems, explicit tolerances, `assert` statements. Every check below passes
# when the script runs to the end.

# %%
import numpy as np
import pandas as pd

import mtltransfer as mt

pd.set_option("display.width", 88)

rng = np.random.default_rng(0)
n, p, q = 60, 12, 8
X = rng.standard_normal((n, p))
C_true = rng.standard_normal((p, 2)) @ rng.standard_normal((2, q))
Y = 1.0 + X @ C_true + 0.5 * rng.standard_normal((n, q))

# %% [markdown]
# ## Convex baselines: the two backends must agree
#
# Fit each baseline with a fixed hyperparameter on both backends and compare the
# coefficients and intercepts. The closed forms (OLS, ridge, reduced rank) agree to
# rounding error; the nuclear-norm fit is iterative on both sides (proximal gradient vs
# an interior-point conic solver), so agreement is to the solvers' tolerances, and the
# better check is that the fast solution's objective is not worse than CVXPY's.

# %%
configs = {"OLS": (mt.OLS, {}), "Ridge": (mt.Ridge, {"alpha": 1.0}),
           "ReducedRank": (mt.ReducedRank, {"rank": 2}),
           "NuclearNorm": (mt.NuclearNorm, {"lam": 0.1})}
tolerance = {"OLS": 1e-8, "Ridge": 1e-8, "ReducedRank": 1e-8, "NuclearNorm": 1e-4}

rows = []
fitted = {}
for name, (model_class, kwargs) in configs.items():
    fast = model_class(Y, X).fit(backend="fast", **kwargs)
    ref = model_class(Y, X).fit(backend="cvxpy", **kwargs)
    fitted[name] = (fast, ref)
    coef_diff = float(np.abs(fast.params - ref.params).to_numpy().max())
    icpt_diff = float(np.abs(fast.intercept - ref.intercept).max())
    rows.append({"model": name, "max |coef diff|": coef_diff,
                 "max |intercept diff|": icpt_diff, "tolerance": tolerance[name]})
    assert coef_diff < tolerance[name], (name, coef_diff)
    assert icpt_diff < tolerance[name], (name, icpt_diff)
backend_table = pd.DataFrame(rows).set_index("model")
print(backend_table.to_string(float_format="{:.2e}".format))

# %% [markdown]
# For the nuclear-norm model, compare objective values
# `(1/2n)||Y - 1b' - XC||_F^2 + lam ||C||_*`: the fast solver must reach CVXPY's optimum
# to within its tolerance.


# %%
def nuclear_objective(res, lam):
    """The nuclear-norm model's objective at a fitted results object."""
    nuclear = np.linalg.svd(res.coef, compute_uv=False).sum()
    return res.ssr / (2 * res.nobs) + lam * nuclear


fast, ref = fitted["NuclearNorm"]
obj_fast, obj_cvx = nuclear_objective(fast, 0.1), nuclear_objective(ref, 0.1)
print(f"objective fast {obj_fast:.10f}  cvxpy {obj_cvx:.10f}  "
      f"difference {obj_fast - obj_cvx:.2e}")
assert obj_fast <= obj_cvx + 1e-7

# %% [markdown]
# ## SMART: optimality at the returned solution
#
# SMART's problem is not convex (orthonormality constraints), so no solver certifies a
# global optimum. What can be checked is that the ADMM solution satisfies the
# optimality conditions of the problem:
#
# * `d_step`, `omega_u_step`, `omega_v_step`: the returned singular values d and split
#   variables Omega differ from CVXPY's solutions of the same convex subproblems
#   (a least-squares problem in d, an l1-proximal problem in Omega) by this much;
# * `primal_residual_u/_v`: how far Omega is from `U_perp' U` (the split constraint);
# * `rgrad_u/_v`, `kkt_u/_v`: Riemannian gradient norms of the U- and V-subproblems and
#   of the Lagrangian on the Stiefel manifold (stationarity);
# * `orth_u/_v`: `||U'U - I||`, `||V'V - I||`.

# %%
sim = mt.datasets.simulate_smart(80, 15, 10, rank=2, source_rank=4, random_state=2)
smart_model = mt.SMART(sim.Y, sim.X, source=sim.C0)
res = smart_model.fit(rank=2, structural_rank=4, lam=0.05)
checks = res.verify()["value"]
print(checks.to_string(float_format="{:.2e}".format))

assert res.converged
assert checks["d_step"] < 1e-8
assert max(checks["omega_u_step"], checks["omega_v_step"]) < 1e-6
assert max(checks["primal_residual_u"], checks["primal_residual_v"]) < 1e-4
assert max(checks["kkt_u"], checks["kkt_v"]) < 1e-3
assert max(checks["orth_u"], checks["orth_v"]) < 1e-10

# %% [markdown]
# The stationarity measures are controlled by the solver's `tol`: tightening it shrinks
# them, which is how you can tell the check measures the solver and not noise.

# %%
tight = smart_model.fit(rank=2, structural_rank=4, lam=0.05, tol=1e-9, max_iter=20000)
checks_tight = tight.verify()["value"]
kkt_default = max(checks["kkt_u"], checks["kkt_v"])
kkt_tight = max(checks_tight["kkt_u"], checks_tight["kkt_v"])
print(f"KKT residual: tol=1e-6 -> {kkt_default:.2e}, tol=1e-9 -> {kkt_tight:.2e} "
      f"({tight.n_iter} iterations)")
assert kkt_tight < kkt_default

# %% [markdown]
# `backend="cvxpy"` runs the same ADMM with the d- and Omega-subproblems solved by CVXPY
# at every iteration (slow; for small problems). Both backends follow the same path, so
# they end at the same solution:

# %%
res_cvx = smart_model.fit(rank=2, structural_rank=4, lam=0.05, backend="cvxpy")
smart_backend_diff = float(np.abs(res.coef - res_cvx.coef).max())
print(f"max |coef diff| fast vs cvxpy backend: {smart_backend_diff:.2e} "
      f"({res.n_iter} and {res_cvx.n_iter} iterations)")
assert smart_backend_diff < 1e-6

# %% [markdown]
# ## A special case with a known answer
#
# With structural ranks `(p, q)` nothing is penalised and SMART is reduced-rank
# regression, whose optimum has a closed form: the two must agree.

# %%
rrr = mt.ReducedRank(sim.Y, sim.X).fit(rank=2)
unpenalised = smart_model.fit(rank=2, structural_rank=(15, 10), lam=0.0, tol=1e-9,
                              max_iter=20000)
rrr_diff = float(np.abs(unpenalised.coef - rrr.coef).max())
print(f"max |coef diff| SMART(r_u=p, r_v=q) vs ReducedRank: {rrr_diff:.2e}")
assert rrr_diff < 1e-5

# %% [markdown]
# ## SharedRepresentation
#
# The W-step of the joint shared-representation fit (`method="gd"`: T independent
# least-squares problems) and the nuclear-norm relaxation over all tasks have CVXPY
# versions too. (The default random-effects fit is checked against a dense computation of
# its marginal likelihood in the test suite.)

# %%
shared = mt.datasets.simulate_shared(30, 20, 8, 2, random_state=1)
shared_model = mt.SharedRepresentation(shared.y, shared.X, shared.task)
a = shared_model.fit(k=2, method="gd")
b = shared_model.fit(k=2, method="gd", backend="cvxpy")
shared_diff = float(np.abs(a.params - b.params).to_numpy().max())
a_nuc = shared_model.fit(method="nuclear", lam=0.05)
b_nuc = shared_model.fit(method="nuclear", lam=0.05, backend="cvxpy")
nuclear_diff = float(np.abs(a_nuc.params - b_nuc.params).to_numpy().max())
print(f"max |coef diff|: W-step {shared_diff:.2e}, nuclear-norm relaxation "
      f"{nuclear_diff:.2e}")
assert shared_diff < 1e-6
assert nuclear_diff < 1e-4

# %% [markdown]
# ## In your own test suite
#
# The same checks fit in a pytest file; keep the problems small (CVXPY's interior-point
# solvers are much slower than the fast paths) and the random numbers seeded:
#
# ```python
# import numpy as np
# import pytest
# import mtltransfer as mt
#
# @pytest.mark.parametrize("cls, kw, tol", [(mt.Ridge, {"alpha": 1.0}, 1e-8),
#                                           (mt.NuclearNorm, {"lam": 0.1}, 1e-4)])
# def test_backends_agree(cls, kw, tol):
#     rng = np.random.default_rng(0)
#     X = rng.standard_normal((50, 10))
#     Y = X @ rng.standard_normal((10, 6)) + rng.standard_normal((50, 6))
#     fast = cls(Y, X).fit(**kw)
#     ref = cls(Y, X).fit(backend="cvxpy", **kw)
#     np.testing.assert_allclose(fast.coef, ref.coef, atol=tol)
#
# def test_smart_is_stationary():
#     sim = mt.datasets.simulate_smart(80, 15, 10, rank=2, source_rank=4, random_state=2)
#     res = mt.SMART(sim.Y, sim.X, source=sim.C0).fit(rank=2, structural_rank=4, lam=0.05)
#     checks = res.verify()["value"]
#     assert res.converged and checks[["kkt_u", "kkt_v"]].max() < 1e-3
# ```
