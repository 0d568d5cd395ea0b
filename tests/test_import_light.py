"""``import mtltransfer`` stays light: heavy and optional modules load on first use."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy.stats", "cvxpy", "dask", "matplotlib", "sklearn", "statsmodels.formula",
         "statsmodels.regression")


def _modules_after(code):
    """Names in sys.modules, among HEAVY and their submodules, after running ``code`` fresh."""
    prog = (f"import sys, json\n{code}\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{{h.split('.')[0] for h in {HEAVY!r}}})))")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", prog], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _loaded(heavy, modules):
    return any(m == heavy or m.startswith(heavy + ".") for m in modules)


def test_import_loads_no_heavy_module():
    modules = _modules_after("import mtltransfer")
    assert [h for h in HEAVY if _loaded(h, modules)] == []


def test_public_names_resolve_without_heavy_modules():
    modules = _modules_after(
        "import mtltransfer as mt\n"
        "names = [mt.SMART, mt.SharedRepresentation, mt.OLS, mt.Ridge, mt.ReducedRank,\n"
        "         mt.NuclearNorm, mt.RidgeToSource, mt.SOFAR, mt.load, mt.datasets,\n"
        "         mt.MarginalScreening, mt.SufficientStats, mt.ConvergenceWarning]\n"
        "assert all(n is not None for n in names)")
    assert [h for h in HEAVY if _loaded(h, modules)] == []


def test_scipy_stats_loads_on_first_use():
    modules = _modules_after(
        "import numpy as np\nfrom mtltransfer.bootstrap import interval\n"
        "lo, hi = interval(np.arange(10.0)[:, None], np.array([4.5]), kind='normal')")
    assert _loaded("scipy.stats", modules)
    assert not _loaded("cvxpy", modules)


def test_lazy_submodule_attributes():
    import mtltransfer as mt
    import mtltransfer.plotting
    assert mt.plotting is mtltransfer.plotting
    assert mt.io.load is mt.load
    assert "sklearn" in dir(mt)
    assert mt.sklearn.SMARTRegressor.__module__ == "mtltransfer.sklearn"
    with pytest.raises(AttributeError, match="no_such_name"):
        mt.no_such_name
