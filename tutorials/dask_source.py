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
# # A source study on Dask, a small target in memory
#
# The source study of a transfer is often large (a registry, a biobank), the target
# small. Here the source's rows are a parquet data set read lazily with Dask; its
# reduced-rank fit is computed on a Dask cluster from sufficient statistics (the rows never
# reach this process), and its coefficients are transferred with SMART to a target of 80
# rows held in memory. Needs `pip install "mtltransfer[dask]"`.
#
# We simulate the SMART paper's design with `mtltransfer.datasets.simulate_smart`: its
# source coefficient matrix `C0` (rank 6, plus a little entrywise noise) generates 100,000
# source rows; the target's rank-3 matrix uses three of the source's singular directions.

# %%
import shutil
import tempfile
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

import mtltransfer as mt

n_train, n_test, p, q = 80, 500, 40, 20
sim = mt.datasets.simulate_smart(n_train + n_test, p, q, rank=3, source_rank=6,
                                 sigma0=0.05, sigma=1.0, random_state=7)
xnames = [f"x{j + 1}" for j in range(p)]
ynames = [f"Y{j + 1}" for j in range(q)]
formula = " + ".join(ynames) + " ~ " + " + ".join(xnames)

# the source study's rows: Y = X C0 + noise, written as a parquet data set of 8 files
rng = np.random.default_rng(0)
X_s = rng.standard_normal((100_000, p))
Y_s = X_s @ sim.C0 + rng.standard_normal((100_000, q))
source_rows = pd.DataFrame(np.hstack([Y_s, X_s]), columns=ynames + xnames)
folder = Path(tempfile.mkdtemp()) / "source"
dd.from_pandas(source_rows, npartitions=8).to_parquet(folder)
del source_rows, X_s, Y_s

target_rows = pd.DataFrame(np.hstack([sim.Y, sim.X]), columns=ynames + xnames)
target, test = target_rows.iloc[:n_train], target_rows.iloc[n_train:]
n_files = len(list(folder.glob("*.parquet")))
print(f"source: {n_files} parquet files; target {target.shape}")

# %% [markdown]
# ## The cluster
#
# A local cluster stands in for a real one: on any Dask cluster the code is the same,
# with `Client("tcp://scheduler-address:8786")` in place of the local one, and a parquet
# path the workers can read (a shared file system or object storage).

# %%
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                       dashboard_address=":0")
client = Client(cluster)

# %% [markdown]
# ## The source fit on Dask
#
# `from_formula` takes the Dask DataFrame as it would take a pandas one. The design is
# built partition by partition, each partition gives its sufficient statistics, and
# these are merged exactly in a tree; the rank is chosen by the rank selection criterion
# on the statistics (with 100,000 rows it sees the small noise of `C0` too, and keeps
# more than 6 directions).

# %%
source_ddf = dd.read_parquet(folder)
n_partitions = source_ddf.npartitions
source = mt.ReducedRank.from_formula(formula, source_ddf).fit()
source_rank = source.rank
print(type(source.model).__name__, "nobs", source.nobs, "rank", source_rank,
      "partitions", n_partitions)
print("mean R-squared of the source fit:", round(float(source.rsquared.mean()), 3))

# %% [markdown]
# The same fit in memory gives the same coefficients (the statistics merge exactly):

# %%
in_memory = mt.ReducedRank.from_formula(formula, source_ddf.compute()).fit()
dask_vs_memory = float(np.max(np.abs(source.params - in_memory.params)).max() /
                       np.max(np.abs(in_memory.params.to_numpy())))
print(f"largest relative difference: {dask_vs_memory:.1e}")

# %% [markdown]
# ## Transfer to the small target
#
# SMART takes the Dask fit as its source, like any results object: only its coefficient
# matrix is used.

# %%
res = mt.SMART.from_formula(formula, target, source=source).fit()
fits = {"SMART (source on Dask)": res,
        "OLS": mt.OLS.from_formula(formula, target).fit(),
        "ReducedRank": mt.ReducedRank.from_formula(formula, target).fit()}
truth = sim.C
relative = pd.DataFrame({
    name: {"test MSE": float(((test[ynames] - r.predict(test)) ** 2).to_numpy().mean()),
           "relative coef error": float(np.linalg.norm(r.params.to_numpy() - truth) /
                                        np.linalg.norm(truth))}
    for name, r in fits.items()}).T
print(relative.round(3))

# %% [markdown]
# Predictions of new data held by Dask are lazy and computed partition by partition:

# %%
lazy = source.predict(source_ddf)
print(type(lazy).__name__, lazy.npartitions, "partitions")
print(lazy.head(3).round(2))

# %%
client.close()
cluster.close()
shutil.rmtree(folder.parent)          # the generated parquet data
