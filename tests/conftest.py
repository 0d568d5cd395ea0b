import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _guard_global_rng():
    """Fail any test that changes NumPy's global random state (tests use Generators)."""
    state = np.random.get_state()
    yield
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and \
        state[2:] == after[2:], "test changed the global NumPy random state"


def make_problem(n, p, q, rank=2, noise=0.3, seed=0):
    """A small low-rank multi-response problem with known coefficients."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    C = rng.standard_normal((p, rank)) @ rng.standard_normal((rank, q)) / np.sqrt(rank)
    Y = 1.5 + X @ C + noise * rng.standard_normal((n, q))
    return X, Y, C


def gradient_scale(Sxy):
    """The scale of SMART's optimality measures: 1 + ||Sxy||_F, the norm of the data term's
    gradient at C = 0 (it is -Sxy), the quantity the solver's stopping rule scales its dual
    and stationarity residuals by (``s_dual``, :mod:`mtltransfer.smart.admm`). A fit
    stopped at ``tol`` has KKT and Riemannian-gradient norms below ``10 tol`` times it."""
    return 1.0 + float(np.linalg.norm(Sxy))


def pytest_report_header(config):
    """Say which copy of the package is under test (CI tests the installed wheel)."""
    import mtltransfer
    return f"mtltransfer {mtltransfer.__version__} from {mtltransfer.__file__}"
