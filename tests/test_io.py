"""Data-only persistence (mtltransfer.io): round trips, hostile files, remove_data."""

import json
import math
import pathlib
import pickle
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

import mtltransfer as mt
from mtltransfer import io as mtio
from mtltransfer.models.base import MultiResponseResults

FORMULA = "Y1 + Y2 + Y3 ~ x1 + np.log(x2) + C(site)"
N = 80


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.standard_normal(n), "x2": rng.uniform(0.5, 3, n),
                       "site": rng.choice(["a", "b", "c"], n),
                       "kind": rng.choice(["u", "v"], n)})
    eff = df["site"].map({"a": 0.0, "b": 1.0, "c": -1.0}).to_numpy()
    for j, w in enumerate((1.0, -0.5, 2.0)):
        df[f"Y{j + 1}"] = j + w * df.x1 - np.log(df.x2) + w * eff + \
            0.1 * rng.standard_normal(n)
    return df


@pytest.fixture(scope="module")
def frame():
    return _frame(N, 1)


@pytest.fixture(scope="module")
def shared_data():
    rng = np.random.default_rng(2)
    sim = mt.datasets.simulate_shared(12, rng.integers(8, 16, size=12), 5, 2, sigma=0.5,
                                      random_state=3)
    df = pd.DataFrame(sim.X, columns=[f"x{j + 1}" for j in range(5)])
    df["y"] = sim.y
    df["task"] = [f"t{t:02d}" for t in sim.task]
    return df, "y ~ " + " + ".join(df.columns[:5])


def _fit(name, frame, shared_data):
    """(results, new data to predict) of each kind of model."""
    new = _frame(9, 5)
    if name == "OLS arrays":
        Y, X = frame[["Y1", "Y2", "Y3"]].to_numpy(), frame[["x1", "x2"]].to_numpy()
        return mt.OLS(Y, X).fit(), new[["x1", "x2"]].to_numpy()
    if name == "SMART":
        source = mt.OLS.from_formula(FORMULA, _frame(200, 7)).fit()
        return mt.SMART.from_formula(FORMULA, frame, source=source).fit(
            rank=2, structural_rank=(3, 3), lam=0.01), new
    if name == "SharedRepresentation":
        df, formula = shared_data
        return mt.SharedRepresentation.from_formula(formula, df, groups="task").fit(k=2), \
            df.sample(10, random_state=0)
    model = getattr(mt, name).from_formula(FORMULA, frame)
    return model.fit(lam=0.01) if name == "NuclearNorm" else model.fit(), new


MODELS = ["OLS arrays", "Ridge", "ReducedRank", "NuclearNorm", "SMART",
          "SharedRepresentation"]


@pytest.fixture(scope="module")
def fitted(frame, shared_data):
    return {name: _fit(name, frame, shared_data) for name in MODELS}


def _round_trip(results, tmp_path, **kwargs):
    path = tmp_path / "results.mtl"
    mtio.save(results, path, **kwargs)
    return mtio.load(path), path


def _assert_same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True,
                                      check_column_type=True)
    else:
        pd.testing.assert_series_equal(a, b, check_exact=True, check_index_type=True)


def _npy_shapes(path):
    with zipfile.ZipFile(path) as archive:
        return [np.load(archive.open(name), allow_pickle=False).shape
                for name in archive.namelist() if name.endswith(".npy")]


# ---- round trips -----------------------------------------------------------------------
@pytest.mark.parametrize("remove_data", [False, True], ids=["all", "remove_data"])
@pytest.mark.parametrize("name", MODELS)
def test_round_trip_reproduces_results(name, remove_data, fitted, tmp_path):
    res, new = fitted[name]
    back, path = _round_trip(res, tmp_path, remove_data=remove_data)
    assert type(back) is type(res) and back is not res
    _assert_same(res.params, back.params)
    _assert_same(res.intercept, back.intercept)
    _assert_same(res.predict(new), back.predict(new))
    assert back.summary().as_text() == res.summary().as_text()
    _assert_same(res.history, back.history)
    tuning = getattr(res, "tuning", {})
    assert list(getattr(back, "tuning", {})) == list(tuning)
    for key, trace in tuning.items():
        _assert_same(trace, back.tuning[key])
    assert back.nobs == res.nobs and back.model.k_exog == res.model.k_exog
    rows_written = any(shape[:1] == (res.nobs,) for shape in _npy_shapes(path))
    assert rows_written != remove_data
    if remove_data:
        assert isinstance(back.model.data.endog, mtio.RemovedRows)
        with pytest.raises(ValueError, match="removed by save"):
            back.fittedvalues


def test_results_methods_write_the_same_format(fitted, tmp_path):
    res, new = fitted["Ridge"]
    res.save(tmp_path / "r.mtl")
    with zipfile.ZipFile(tmp_path / "r.mtl") as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format"] == "mtltransfer-results" and manifest["format_version"] == 1
    assert manifest["mtltransfer_version"] == mt.__version__
    _assert_same(res.predict(new), mt.load(tmp_path / "r.mtl").predict(new))


def test_shared_objects_stay_shared(fitted, shared_data, tmp_path):
    res, _ = fitted["SharedRepresentation"]
    df, _ = shared_data
    task = res.adapt(df[df.task == "t03"].drop(columns="task"))
    assert res._B is res._solver.extra["B"]
    back, _ = _round_trip(task, tmp_path)
    assert isinstance(back, mt.AdaptedTask)
    assert back._parent._B is back._parent._solver.extra["B"]
    _assert_same(task.predict(df.iloc[:6]), back.predict(df.iloc[:6]))
    _assert_same(task.params, back.params)


def test_new_attributes_of_any_supported_kind_round_trip(frame, tmp_path):
    res = mt.OLS.from_formula(FORMULA, frame).fit()
    twice = [1, 2]
    columns = pd.Index(["f", 1, ("t", 2), "s", "cat", "when", "obj", "flag", "n"],
                       dtype=object)
    table = pd.DataFrame(
        {0: [0.5, math.nan, -math.inf], 1: np.array([1, 2, 3], dtype=np.int32),
         2: ["a", None, "c"], 3: pd.array(["x", None, "z"], dtype="string"),
         4: pd.Categorical(["lo", None, "hi"], categories=["lo", "hi"], ordered=True),
         5: pd.to_datetime(["2020-01-01", "2021-06-30", None]),
         6: pd.Series(["p", None, "q"], dtype=object), 7: [True, False, True],
         8: pd.Series(["u", "v", "u"], dtype="category")},
        index=pd.Index(["r1", "r2", "r3"], name="row"))
    table.columns = columns
    res.notes = {
        "scalars": [None, True, 3, -0.0, 2.5, math.nan, math.inf, "text", np.float64(1.5),
                    np.int64(-7), np.bool_(False), np.float32(0.25)],
        ("a", 1): (1, "b", (2.0, None)), 7: np.arange(6, dtype=np.int16).reshape(2, 3),
        "objects": np.array([["a", None], ["b", 3]], dtype=object),
        "unicode": np.array(["x", "yz"]), "twice": [twice, twice], "table": table,
        "series": pd.Series([1.0, 2.0], index=pd.RangeIndex(2, 6, 2, name="r"),
                            name=("s", 1)),
        "multi": pd.DataFrame({"v": [1, 2, 3, 4]}, index=pd.MultiIndex.from_product(
            [["a", "b"], [1, 2]], names=["g", "i"])),
        "categorical": pd.Categorical(["q", "p"], categories=["p", "q"])}
    back = _round_trip(res, tmp_path)[0].notes
    notes = res.notes
    assert list(back) == list(notes)
    assert [type(v) for v in back["scalars"]] == [type(v) for v in notes["scalars"]]
    np.testing.assert_equal(back["scalars"], notes["scalars"])
    assert math.copysign(1, back["scalars"][3]) == -1
    assert back[("a", 1)] == (1, "b", (2.0, None)) and type(back[("a", 1)][2]) is tuple
    for key in (7, "objects", "unicode"):
        assert back[key].dtype == notes[key].dtype
        np.testing.assert_array_equal(back[key], notes[key])
    assert back["twice"][0] is back["twice"][1]
    _assert_same(notes["table"], back["table"])
    _assert_same(notes["series"], back["series"])
    _assert_same(notes["multi"], back["multi"])
    pd.testing.assert_extension_array_equal(back["categorical"], notes["categorical"])


def test_unsupported_value_is_named_by_its_path(frame, tmp_path):
    res = mt.OLS.from_formula(FORMULA, frame).fit()
    res.model.data.extra["x"] = lambda: 0
    path = tmp_path / "r.mtl"
    with pytest.raises(TypeError, match=re.escape("results.model.data.extra['x']")):
        mtio.save(res, path)
    assert not path.exists()
    with pytest.raises(TypeError, match="mtltransfer results"):
        mtio.save(res.model, path)


def test_cached_values_kept_when_supported_skipped_otherwise(frame, tmp_path):
    res = mt.Ridge.from_formula(FORMULA, frame).fit(alpha=0.1)
    stats = res.model.stats                            # a cached SufficientStats
    res.model.__dict__["design_svd"] = lambda: None    # a cache the format cannot hold
    back = _round_trip(res, tmp_path)[0]
    assert "design_svd" not in back.model.__dict__
    assert isinstance(back.model.__dict__["stats"], mt.SufficientStats)
    np.testing.assert_array_equal(back.model.stats.Cxy, stats.Cxy)


# ---- hostile and foreign files ---------------------------------------------------------
class _TouchOnLoad:
    """Unpickling this creates ``path``: the attack a data-only loader must not allow."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.path),)


def _archive(path, root=None, members=None, manifest=True, **fields):
    with zipfile.ZipFile(path, "w") as archive:
        if manifest:
            archive.writestr("manifest.json", json.dumps(
                {"format": "mtltransfer-results", "format_version": 1, "root": root,
                 **fields}))
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return path


def test_pickle_is_refused_without_running_it(tmp_path):
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_TouchOnLoad(live)))   # the payload does run when unpickled
    assert live.exists()
    sentinel, path = tmp_path / "sentinel", tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_TouchOnLoad(sentinel)))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        mt.load(path)
    npy = {"type": "ndarray", "member": "arrays/0.npy"}
    inside = _archive(tmp_path / "evil.mtl", npy,
                      {"arrays/0.npy": pickle.dumps(_TouchOnLoad(sentinel))})
    with pytest.raises(ValueError, match=re.escape(str(inside))):
        mt.load(inside)
    assert not sentinel.exists()


def _object(cls, **state):
    return {"type": "object", "class": cls, "state": state}


@pytest.mark.parametrize("content", [
    b"hello, this is text\n",
    {"manifest": False, "members": {"notes.txt": b"no manifest here"}},
    {"format": "something-else"},
    {"format_version": 99},
    {"root": _object("os:system")},
    {"root": _object("mtltransfer.__main__:main")},
    {"root": _object("mtltransfer.design:pd.DataFrame")},
    {"root": _object("mtltransfer.models.base:MultiResponseResults",
                     model={"type": "ref", "id": 41})},
    {"root": {"type": "eval", "code": "1"}},
    {"root": _object("mtltransfer.gram:SufficientStats")},
    {"root": [1, 2]},
], ids=["text", "no manifest", "other format", "newer version", "os.system",
        "package __main__", "class imported by the package", "dangling ref",
        "unknown node", "not results", "not an object"])
def test_foreign_files_raise_value_error_naming_the_file(content, tmp_path):
    path = tmp_path / "foreign.mtl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        fields = {key: value for key, value in content.items()
                  if key not in ("members", "manifest")}
        _archive(path, **{"root": None, **fields}, members=content.get("members"),
                 manifest=content.get("manifest", True))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        mt.load(path)


# ---- remove_data=True ------------------------------------------------------------------
def test_remove_data_keeps_no_training_value(fitted, frame, tmp_path):
    res, new = fitted["ReducedRank"]
    back, path = _round_trip(res, tmp_path, remove_data=True)
    _assert_same(res.predict(new), back.predict(new))
    _assert_same(res.rsquared, back.rsquared)
    with zipfile.ZipFile(path) as archive:
        manifest = archive.read("manifest.json").decode()
    values = frame[["x1", "x2", "Y1", "Y2", "Y3"]].to_numpy().ravel()
    assert not [v for v in values if repr(float(v)) in manifest]
    with zipfile.ZipFile(path) as archive:
        written = [np.load(archive.open(name)) for name in archive.namelist()
                   if name.endswith(".npy")]
    assert all(N not in array.shape for array in written)
    assert not np.isin(values, np.concatenate([a.ravel() for a in written])).any()
    template = back.model.data.data_template
    assert len(template) == 3 and sorted(template["site"]) == ["a", "b", "c"]
    assert len(res.model.data.data_template) == N     # the results saved are unchanged
    again, _ = _round_trip(back, tmp_path, remove_data=True)   # loaded results save again
    _assert_same(res.predict(new), again.predict(new))


def test_remove_data_drops_per_row_extras_and_task_codes(fitted, frame, tmp_path):
    X = frame[["x1", "x2"]].to_numpy().copy()
    X[3, 0] = np.nan
    res = mt.OLS(frame[["Y1", "Y2"]].to_numpy(), X, missing="drop").fit()
    assert "kept" in res.model.data.extra
    back = _round_trip(res, tmp_path, remove_data=True)[0]
    assert back.model.data.extra == {} and back.nobs == N - 1
    shared, _ = fitted["SharedRepresentation"]
    back = _round_trip(shared, tmp_path, remove_data=True)[0]
    assert isinstance(back.model.task_codes, mtio.RemovedRows)
    np.testing.assert_array_equal(back.model.N, shared.model.N)


def test_remove_data_stores_the_row_cached_statistics(frame, tmp_path, monkeypatch):
    row_cached = MultiResponseResults._row_cached

    def fitted_without_caches():
        res = mt.OLS.from_formula(FORMULA, frame).fit()
        for name in row_cached:
            res.__dict__.pop(name, None)
        return res

    res = fitted_without_caches()
    back = _round_trip(res, tmp_path, remove_data=True)[0]
    assert set(row_cached) <= set(back.__dict__)
    _assert_same(res.rsquared, back.rsquared)
    monkeypatch.setattr(MultiResponseResults, "_row_cached", ("ssr_per_response",))
    back = _round_trip(fitted_without_caches(), tmp_path, remove_data=True)[0]
    _assert_same(res.ssr_per_response, back.ssr_per_response)
    with pytest.raises(ValueError, match="removed by save"):
        back.centered_tss


def test_removed_rows_refuse_their_values():
    rows = mtio.RemovedRows((5, 2))
    assert rows.shape == (5, 2) and rows.ndim == 2 and len(rows) == 5
    for use in (lambda: np.asarray(rows), lambda: rows[:, 0], lambda: np.ones((3, 5)) @ rows,
                lambda: rows - 1.0, lambda: np.ones(2) * rows, lambda: rows.mean(0)):
        with pytest.raises(ValueError, match="removed by save"):
            use()


@pytest.mark.parametrize("formula, reason", [
    ("Y1 + Y2 ~ center(x1) + C(site)", "stateful transform"),
    ("Y1 + Y2 ~ standardize(x2) + x1", "stateful transform"),
    ("Y1 + Y2 ~ x1 + C(site + kind)", "reads 2 columns"),
])
def test_remove_data_refused_when_the_design_needs_the_rows(formula, reason, frame,
                                                            tmp_path):
    res = mt.OLS.from_formula(formula, frame).fit()
    path = tmp_path / "r.mtl"
    with pytest.raises(ValueError, match=f"remove_data=True is not possible.*{reason}"):
        mtio.save(res, path, remove_data=True)
    assert not path.exists()
    mtio.save(res, path)                               # with the rows, it saves
    _assert_same(res.predict(frame.iloc[:5]), mtio.load(path).predict(frame.iloc[:5]))
