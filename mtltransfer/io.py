# Over 600 lines: one file format, its encoder and decoder side by side.
"""Saving and loading results in a data-only format (no pickle).

:func:`save` writes one file, a zip archive, and :func:`load` reads it back with
:mod:`json` and ``numpy.load(..., allow_pickle=False)`` only: opening a results file from
someone else never runs code from it.

Format (version 1)
------------------
The archive holds

``manifest.json``
    ``{"format": "mtltransfer-results", "format_version": 1, "mtltransfer_version": ...,
    "remove_data": bool, "root": <node>}``: ``root`` is the encoded results object.
``arrays/<i>.npy``
    One member per numeric, boolean or datetime ndarray, written by ``numpy.save`` with
    ``allow_pickle=False``.

A node is a JSON value. ``null``, ``true``/``false``, integers, finite floats and strings
stand for themselves; every other value is a JSON object whose ``"type"`` says what it is:

``float``
    ``{"value": "nan" | "inf" | "-inf"}`` (JSON has no such numbers).
``numpy_scalar``
    ``{"dtype": "<f8", "value": <node>}``: an ``np.float64``, ``np.int64``, ``np.bool_``...
``tuple``, ``list``
    ``{"items": [<node>, ...]}``.
``dict``
    ``{"items": [[<key node>, <value node>], ...]}``: keys are scalars or tuples of
    them, in their order.
``ndarray``
    ``{"member": "arrays/<i>.npy"}``, or for str/object arrays (their elements scalars)
    ``{"dtype": "|O", "shape": [...], "items": [<node>, ...]}``.
``categorical``, ``string_array``
    pandas arrays: ``{"categories": <index>, "codes": <ndarray>, "ordered": bool}``;
    ``{"storage": "python", "na_value": "nan" | "NA", "items": [str or null, ...]}``.
``index``, ``range_index``, ``multi_index``, ``series``, ``dataframe``
    pandas objects, by their values (one node per column), index and names, so that
    their dtypes round-trip.
``object``
    ``{"class": "module:qualname", "state": {attribute: <node>, ...}}``: an instance of a
    class defined in the ``mtltransfer`` package; its state is ``__getstate__()`` where
    the class defines one (otherwise ``__dict__``). It is restored by ``cls.__new__(cls)``
    and ``__dict__.update(state)``; no other code of the class is called.
``ref``
    ``{"id": k}``: an object written earlier in the file whose node carries ``"id": k``.
    Lists, dicts, arrays, pandas objects and package objects reached twice (the model
    of the results and of its tuning, an array held by two attributes) are written once
    and restored as one object.

Saved with ``remove_data=True``, the file holds no training row: the data's per-row
arrays are replaced by :class:`RemovedRows` (their shape only), a formula model's data
template is reduced to the categorical levels the formula needs, and cached values
computed from the rows are dropped except those the results class lists in
``_row_cached`` (computed before saving).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import itertools
import json
import math
import zipfile
from io import BytesIO

import numpy as np
import pandas as pd

from ._validation import RemovedRows
from .design import ModelData

FORMAT_NAME = "mtltransfer-results"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_PACKAGE = "mtltransfer"
_SCALARS = (type(None), bool, int, float, str)
_NUMPY_SCALARS = (np.bool_, np.integer, np.floating)
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_SKIP = object()   # a cached value that is not written


# ---- public functions ------------------------------------------------------------------
def save(results, path, *, remove_data=False):
    """Write results to ``path`` in the data-only format (see the module docstring).

    Parameters
    ----------
    results : MultiResponseResults, SharedRepresentationResults or AdaptedTask
        The fitted results; everything they reference (model, data, solver output,
        tuning traces, cached statistics) is written.
    path : str or path-like
        The file to write (a zip archive; any extension).
    remove_data : bool, default False
        Write no training row (statsmodels' name). The statistics computed from the rows
        that the results class lists in ``_row_cached`` are computed and kept; the data's
        per-row arrays are written as :class:`RemovedRows` (their shape only), so
        ``fittedvalues``, ``resid`` and refitting are unavailable after loading, while
        ``params``, ``predict`` and ``summary`` work.

    Raises
    ------
    TypeError
        When the results reference an object this format cannot hold (a function, a
        patsy object, an instance of a class from outside the package ...); the message
        names where it was found, e.g. ``results.model.data.extra['x']``.
    ValueError
        With ``remove_data=True``, when the formula's design cannot be rebuilt without
        the training rows (a stateful transform such as ``center(x)``, or a
        categorical factor computed from several columns).

    See Also
    --------
    load
    """
    from . import __version__

    if not _is_results(results):
        raise TypeError(f"save() writes mtltransfer results; got {type(results).__name__}")
    nobs = None
    if remove_data:
        for name in getattr(type(results), "_row_cached", ()):
            getattr(results, name)   # computed now, while the rows are at hand
        nobs = getattr(results, "_parent", results).nobs
    encoder = _Encoder(nobs)
    manifest = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                "mtltransfer_version": __version__, "remove_data": bool(remove_data),
                "root": encoder.encode(results, "results")}
    text = json.dumps(manifest, allow_nan=False)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_MANIFEST, text)
        for member, array in encoder.members.items():
            with archive.open(member, "w") as fh:
                np.save(fh, array, allow_pickle=False)


def load(path):
    """Read results written by :func:`save`; nothing in the file is executed.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    MultiResponseResults, SharedRepresentationResults or AdaptedTask
        The results, with their model and data. Results saved with
        ``remove_data=True`` hold :class:`RemovedRows` in place of the training rows.

    Raises
    ------
    ValueError
        When the file is not such an archive (a pickle, such as the files of earlier
        versions, a text file, a zip without the manifest or of another format, a
        manifest naming a class outside the package) or does not hold results; the
        message names the file.
    OSError
        When the file cannot be read (it does not exist, ...).

    Notes
    -----
    Only :mod:`json` and ``numpy.load(..., allow_pickle=False)`` read the file, and the
    only classes it may name are those defined in the ``mtltransfer`` package, which are
    instantiated without calling their ``__init__``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            results = _Decoder(archive).decode(_read_manifest(archive)["root"])
    except (zipfile.BadZipFile, EOFError):
        raise ValueError(f"{path} is not an mtltransfer results file: it is not a zip "
                         "archive (results pickled by earlier versions cannot be loaded, "
                         "as unpickling can run code: refit and save them again)") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ImportError,
            RecursionError) as err:
        raise ValueError(f"{path} is not a valid mtltransfer results file: "
                         f"{type(err).__name__}: {err}") from None
    if not _is_results(results):
        raise ValueError(f"{path} holds a {type(results).__name__}, not mtltransfer results")
    return results


def _read_manifest(archive):
    if _MANIFEST not in archive.namelist():
        raise ValueError(f"the archive has no {_MANIFEST}")
    manifest = json.loads(archive.read(_MANIFEST))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{_MANIFEST} is not of the format {FORMAT_NAME!r}")
    version = manifest.get("format_version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"format version {version!r} is not one this mtltransfer reads "
                         f"(1 to {FORMAT_VERSION}); a newer mtltransfer may read it")
    return manifest


def _is_results(obj):
    """Results of the package's models: their classes declare ``_saveable = True``."""
    return getattr(type(obj), "_saveable", False) is True


# ---- the classes a file may name ------------------------------------------------------
#: A file names each class where it was defined when the file was written. When a class
#: moves (another module, another name), its old ``"module:qualname"`` is entered here
#: with the new one, so that files written before the move keep loading.
MOVED_CLASSES: dict[str, str] = {
    "mtltransfer.io:RemovedRows": "mtltransfer._validation:RemovedRows",
    "mtltransfer.design:SourceLayout": "mtltransfer.source_alignment:SourceLayout",
    # the results family left models/base.py for models/results.py
    "mtltransfer.models.base:Results": "mtltransfer.models.results:Results",
    "mtltransfer.models.base:MultiResponseResults":
        "mtltransfer.models.results:MultiResponseResults",
    "mtltransfer.models.base:PenalizedResults": "mtltransfer.models.results:PenalizedResults",
    # the Dask twins of the models: the models themselves read statistics through a
    # StatsAccess (a model saved by a twin keeps its statistics and hashed folds)
    "mtltransfer.dask:DaskOLS": "mtltransfer.models.linear:OLS",
    "mtltransfer.dask:DaskRidge": "mtltransfer.models.linear:Ridge",
    "mtltransfer.dask:DaskReducedRank": "mtltransfer.models.linear:ReducedRank",
    "mtltransfer.dask:DaskNuclearNorm": "mtltransfer.models.linear:NuclearNorm",
    "mtltransfer.dask:DaskSMART": "mtltransfer.smart.model:SMART",
    "mtltransfer.dask:DaskReducedRankRidge": "mtltransfer.models.revision:ReducedRankRidge",
    "mtltransfer.dask:DaskSharedRepresentation":
        "mtltransfer.models.shared:SharedRepresentation",
    "mtltransfer.dask:DaskSharedRepresentationResults":
        "mtltransfer.models.shared_results:SharedRepresentationResults",
    # the shared representation's results and adapted task left models/shared.py
    "mtltransfer.models.shared:SharedRepresentationResults":
        "mtltransfer.models.shared_results:SharedRepresentationResults",
    "mtltransfer.models.shared:AdaptedTask": "mtltransfer.models.shared_adapt:AdaptedTask",
}

#: Modules that moved, old path -> present path: a class saved as ``old:Name`` is read
#: as ``present:Name`` (after :data:`MOVED_CLASSES`, which names single classes).
MOVED_MODULES: dict[str, str] = {
    "mtltransfer.models.smart": "mtltransfer.smart.model",
    "mtltransfer.models.smart_magnitude": "mtltransfer.smart.magnitude",
    "mtltransfer.solvers.admm": "mtltransfer.smart.admm",
    "mtltransfer.solvers.smart_problem": "mtltransfer.smart.problem",
    "mtltransfer.solvers.smart_gamma": "mtltransfer.smart.gamma",
}


def _class_name(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def _find_class(name):
    """The class ``"module:qualname"``, which must be defined in the package (a name in
    :data:`MOVED_CLASSES`, or of a module in :data:`MOVED_MODULES`, is read as the
    class's present home)."""
    name, seen = str(name), set()
    while name in MOVED_CLASSES and name not in seen:    # a class may move twice
        seen.add(name)
        name = MOVED_CLASSES[name]
    module_name, _, qualname = str(name).partition(":")
    module_name = MOVED_MODULES.get(module_name, module_name)
    name = f"{module_name}:{qualname}"
    modules, attrs = module_name.split("."), qualname.split(".")
    # dunder names excluded: importing mtltransfer.__main__ would run the command line
    if modules[0] != _PACKAGE or len(modules) < 2 or not all(
            part.isidentifier() and not part.startswith("__") for part in modules + attrs):
        raise ValueError(f"the class {name!r} is not one of {_PACKAGE}'s")
    found = importlib.import_module(module_name)
    for attr in attrs:
        found = getattr(found, attr, None)
    if not (isinstance(found, type) and found.__module__ == module_name and
            found.__qualname__ == qualname):
        raise ValueError(f"{name!r} is not a class defined in {_PACKAGE}")
    return found


def _is_package_class(cls):
    try:
        return _find_class(_class_name(cls)) is cls
    except (ValueError, ImportError):
        return False


def _state_of(obj, path):
    getstate = getattr(obj, "__getstate__", None)
    state = getstate() if getstate is not None else obj.__dict__
    state = {} if state is None else state
    if type(state) is not dict or not all(type(key) is str for key in state):
        raise TypeError(f"cannot save {path}: the state of {type(obj).__qualname__} is not "
                        "a dict of attributes")
    return state


def _is_cache(cls, name):
    """Whether ``name`` in an instance's ``__dict__`` is a ``cached_property`` value."""
    return isinstance(inspect.getattr_static(cls, name, None), functools.cached_property)


# ---- encoding --------------------------------------------------------------------------
class _Encoder:
    """Turns an object graph into JSON nodes and the arrays of the ``.npy`` members.

    ``nobs`` (the number of training rows) is given for ``remove_data=True``.
    """

    def __init__(self, nobs=None):
        self.nobs = nobs
        self.members = {}        # member name -> ndarray written as .npy
        self.shapes = []         # the shape of every array encoded (row check of caches)
        self._memo = {}          # id(obj) -> (node id, obj); obj kept alive: ids stay unique

    def encode(self, value, path):
        """The node of ``value``, found at ``path`` (named in error messages)."""
        if type(value) in _SCALARS:
            return _float_node(value) if type(value) is float else value
        if isinstance(value, _NUMPY_SCALARS):
            return {"type": "numpy_scalar", "dtype": value.dtype.str,
                    "value": self.encode(value.item(), path)}
        if type(value) is tuple:
            return {"type": "tuple", "items": self._items(value, path)}
        if id(value) in self._memo:
            return {"type": "ref", "id": self._memo[id(value)][0]}
        encoder = self._encoder_for(value)
        if encoder is None:
            kind = type(value)
            raise TypeError(f"cannot save {path}: {kind.__module__}.{kind.__qualname__} "
                            "is not a type the data-only results format can hold")
        node_id = len(self._memo)
        self._memo[id(value)] = (node_id, value)   # before the children: cycles end here
        return {"id": node_id, **encoder(value, path)}

    def _encoder_for(self, value):
        kind = type(value)
        if kind is list:
            return self._list
        if kind is dict:
            return self._dict
        if kind is np.ndarray:
            return self._ndarray
        if kind is pd.DataFrame:
            return self._dataframe
        if kind is pd.Series:
            return self._series
        if isinstance(value, pd.Index):
            return self._index
        if isinstance(value, pd.api.extensions.ExtensionArray):
            return self._values
        if _is_package_class(kind):
            return self._object
        return None

    def _items(self, values, path):
        return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(values)]

    def _label(self, value, path):
        """A dict key, index name or str/object-array element: a scalar or a tuple."""
        if type(value) is tuple:
            return {"type": "tuple", "items": [self._label(v, path) for v in value]}
        if type(value) in _SCALARS or isinstance(value, _NUMPY_SCALARS):
            return self.encode(value, path)
        raise TypeError(f"cannot save {path}: {value!r} ({type(value).__name__}) is not a "
                        "scalar or a tuple of scalars")

    def _list(self, value, path):
        return {"type": "list", "items": self._items(value, path)}

    def _dict(self, value, path):
        return {"type": "dict", "items": [[self._label(key, f"{path} key"),
                                           self.encode(item, f"{path}[{key!r}]")]
                                          for key, item in value.items()]}

    def _ndarray(self, array, path):
        self.shapes.append(array.shape)
        if array.dtype.kind in "biufcmM":   # numbers, booleans, datetimes
            member = f"arrays/{len(self.members)}.npy"
            self.members[member] = array
            return {"type": "ndarray", "member": member}
        if array.dtype.kind in "OU":
            return {"type": "ndarray", "dtype": array.dtype.str, "shape": list(array.shape),
                    "items": [self._label(v, path) for v in array.ravel().tolist()]}
        raise TypeError(f"cannot save {path}: arrays of dtype {array.dtype} are not supported")

    def _object(self, obj, path):
        state = _state_of(obj, path)
        if self.nobs is not None:
            state = _without_rows(obj, state, self.nobs)
        nodes = {}
        for name, value in state.items():
            if _is_cache(type(obj), name):
                node = self._cache(value, f"{path}.{name}")
                if node is not _SKIP:
                    nodes[name] = node
            else:
                nodes[name] = self.encode(value, f"{path}.{name}")
        return {"type": "object", "class": _class_name(type(obj)), "state": nodes}

    def _cache(self, value, path):
        """A ``cached_property`` value: written when the format can hold it and, with
        ``remove_data``, when it holds no per-row array; else ``_SKIP``."""
        mark = len(self.members), len(self.shapes), dict(self._memo)
        try:
            node = self.encode(value, path)
        except TypeError:
            node = _SKIP
        has_rows = self.nobs is not None and any(
            shape[:1] == (self.nobs,) for shape in self.shapes[mark[1]:])
        if node is not _SKIP and not has_rows:
            return node
        self.members = dict(itertools.islice(self.members.items(), mark[0]))
        del self.shapes[mark[1]:]
        self._memo = mark[2]
        return _SKIP

    # -- pandas -----------------------------------------------------------------------
    def _values(self, values, path):
        """The values of a pandas column or index (a Series, an Index or a pandas array)."""
        dtype = values.dtype
        if isinstance(dtype, np.dtype):
            return self._ndarray(values.to_numpy(), path)
        if isinstance(dtype, pd.CategoricalDtype):
            values = pd.Categorical(values)
            return {"type": "categorical", "categories": self._index(values.categories, path),
                    "codes": self._ndarray(values.codes, path),
                    "ordered": bool(values.ordered)}
        if isinstance(dtype, pd.StringDtype):
            self.shapes.append(values.shape)
            return {"type": "string_array", "storage": dtype.storage,
                    "na_value": "NA" if dtype.na_value is pd.NA else "nan",
                    "items": [None if pd.isna(v) else str(v) for v in values]}
        raise TypeError(f"cannot save {path}: pandas values of dtype {dtype} are not "
                        "supported")

    def _index(self, index, path):
        if type(index) is pd.RangeIndex:
            return {"type": "range_index", "start": index.start, "stop": index.stop,
                    "step": index.step, "name": self._label(index.name, path)}
        if type(index) is pd.MultiIndex:
            return {"type": "multi_index",
                    "levels": [self._index(level, path) for level in index.levels],
                    "codes": [self._ndarray(codes, path) for codes in index.codes],
                    "names": [self._label(name, path) for name in index.names]}
        return {"type": "index", "values": self._values(index, path),
                "name": self._label(index.name, path)}

    def _series(self, series, path):
        return {"type": "series", "values": self._values(series, path),
                "index": self._index(series.index, f"{path}.index"),
                "name": self._label(series.name, path)}

    def _dataframe(self, frame, path):
        return {"type": "dataframe",
                "values": [self._values(frame.iloc[:, j], f"{path}.iloc[:, {j}]")
                           for j in range(frame.shape[1])],
                "columns": self._index(frame.columns, f"{path}.columns"),
                "index": self._index(frame.index, f"{path}.index")}


def _float_node(value):
    if math.isfinite(value):
        return value
    return {"type": "float", "value": repr(value)}


# ---- decoding --------------------------------------------------------------------------
class _Decoder:
    """Rebuilds the object graph from the nodes of a manifest and the archive's arrays."""

    def __init__(self, archive):
        self._archive = archive
        self._names = set(archive.namelist())
        self._objects = {}    # node id -> the object it decoded to

    def decode(self, node):
        if type(node) in _SCALARS:
            return node
        if type(node) is not dict or node.get("type") not in _NODE_TYPES:
            raise ValueError(f"unknown node {str(node)[:80]}")
        return _NODE_TYPES[node["type"]](self, node)

    def _keep(self, node, obj):
        """Register ``obj`` under the node's id (before its children: cycles)."""
        if "id" in node:
            self._objects[node["id"]] = obj
        return obj

    def _items(self, node):
        return [self.decode(item) for item in node["items"]]

    def _ref(self, node):
        return self._objects[node["id"]]

    def _float(self, node):
        return _SPECIAL_FLOATS[node["value"]]

    def _numpy_scalar(self, node):
        dtype = np.dtype(node["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"numpy scalars of dtype {dtype} are not part of the format")
        return dtype.type(self.decode(node["value"]))

    def _tuple(self, node):
        return tuple(self._items(node))

    def _list(self, node):
        out = self._keep(node, [])
        out.extend(self._items(node))
        return out

    def _dict(self, node):
        out = self._keep(node, {})
        for key, value in node["items"]:
            out[self.decode(key)] = self.decode(value)
        return out

    def _ndarray(self, node):
        if "member" in node:
            if node["member"] not in self._names:
                raise ValueError(f"the archive has no member {node['member']!r}")
            array = np.load(BytesIO(self._archive.read(node["member"])), allow_pickle=False)
            if type(array) is not np.ndarray:
                raise ValueError(f"{node['member']} is not a .npy array")
        else:
            dtype = np.dtype(node["dtype"])
            if dtype.kind not in "OU":
                raise ValueError(f"arrays of dtype {dtype} are stored as .npy members")
            items = self._items(node)
            array = np.empty(len(items), dtype=dtype)
            for i, item in enumerate(items):
                array[i] = item
            array = array.reshape(node["shape"])
        return self._keep(node, array)

    def _object(self, node):
        cls = _find_class(node["class"])
        obj = self._keep(node, cls.__new__(cls))
        obj.__dict__.update({name: self.decode(value) for name, value in
                             node["state"].items()})
        return obj

    def _categorical(self, node):
        dtype = pd.CategoricalDtype(self.decode(node["categories"]), ordered=node["ordered"])
        return self._keep(node, pd.Categorical.from_codes(self.decode(node["codes"]),
                                                          dtype=dtype))

    def _string_array(self, node):
        # pandas < 2.3 knows only pd.NA as the missing value (and no na_value argument)
        nan = {} if node["na_value"] == "NA" else {"na_value": np.nan}
        dtype = pd.StringDtype(storage=node["storage"], **nan)
        return self._keep(node, pd.array(node["items"], dtype=dtype))

    def _index(self, node):
        values = self.decode(node["values"])
        return self._keep(node, pd.Index(values, dtype=values.dtype,
                                         name=self.decode(node["name"])))

    def _range_index(self, node):
        return self._keep(node, pd.RangeIndex(node["start"], node["stop"], node["step"],
                                              name=self.decode(node["name"])))

    def _multi_index(self, node):
        return self._keep(node, pd.MultiIndex(
            levels=[self.decode(level) for level in node["levels"]],
            codes=[self.decode(codes) for codes in node["codes"]],
            names=[self.decode(name) for name in node["names"]]))

    def _series(self, node):
        values = self.decode(node["values"])
        return self._keep(node, pd.Series(values, index=self.decode(node["index"]),
                                          dtype=values.dtype, name=self.decode(node["name"])))

    def _dataframe(self, node):
        index = self.decode(node["index"])
        columns = [self.decode(values) for values in node["values"]]
        frame = pd.DataFrame({j: pd.Series(values, dtype=values.dtype)
                              for j, values in enumerate(columns)},
                             index=pd.RangeIndex(len(index)))
        frame.index, frame.columns = index, self.decode(node["columns"])
        return self._keep(node, frame)


_NODE_TYPES = {name: getattr(_Decoder, f"_{name}") for name in (
    "ref", "float", "numpy_scalar", "tuple", "list", "dict", "ndarray", "object",
    "categorical", "string_array", "index", "range_index", "multi_index", "series",
    "dataframe")}


# ---- remove_data=True ------------------------------------------------------------------
def _per_row_attributes(obj):
    """Attributes of ``obj`` holding one entry per training row: ``ModelData``'s rows and
    whatever a model class declares in ``_row_attributes``."""
    if isinstance(obj, ModelData):
        return ("endog", "exog", "row_labels", "weights")
    return tuple(getattr(type(obj), "_row_attributes", ()))


def _without_rows(obj, state, nobs):
    """The state of ``obj`` to write with ``remove_data=True`` (a new dict)."""
    state = dict(state)
    for name in _per_row_attributes(obj):
        if state.get(name) is not None:
            state[name] = RemovedRows(np.shape(state[name]))
    if isinstance(obj, ModelData):   # arrays of one entry per row (or per row given)
        state["extra"] = {key: value for key, value in state.get("extra", {}).items()
                          if np.ndim(value) == 0 or len(value) < nobs}
        if obj.formula is not None and obj.data_template is not None:
            state["data_template"] = _template_without_rows(obj)
    return state


def _template_without_rows(data):
    """A data template without the training rows that rebuilds the fitted design.

    Each categorical factor's levels fill the one column it reads (in that column's
    dtype); every other column the formula reads is 1.0; there are as many rows as the
    most levels. Formulas whose design depends on the rows in another way are refused.
    """
    info = data.rhs_info()
    template = data.data_template
    levels, numeric = {}, set()
    for factor, factor_info in info.factor_infos.items():
        if factor_info.state.get("transforms"):
            raise _not_possible(data, f"{factor.name()} is a stateful transform, whose "
                                "state (a mean, a scale, knots) was learned from the rows")
        read = _columns_read(factor, factor_info.state, template)
        if factor_info.type == "numerical":
            numeric.update(read)
        elif len(read) == 1:
            levels[read[0]] = factor_info.categories
        else:
            raise _not_possible(data, f"the categorical factor {factor.name()} reads "
                                f"{len(read)} columns of the data, not one to hold its levels")
    n_rows = max(map(len, levels.values()), default=1)
    fill = {name: [1.0] * n_rows for name in numeric}
    fill.update({name: list(itertools.islice(itertools.cycle(values), n_rows))
                 for name, values in levels.items()})
    columns = {}
    for name in template.columns:
        if name in fill:
            try:
                columns[name] = pd.Series(fill[name], dtype=template[name].dtype)
            except (TypeError, ValueError) as err:
                raise _not_possible(data, f"the levels read from column {name!r} do not fit "
                                    f"its dtype {template[name].dtype} ({err})") from None
    shrunk = pd.DataFrame(columns, index=pd.RangeIndex(n_rows))
    _check_same_design(data, info, shrunk)
    return shrunk


class _ColumnRecorder:
    """The mapping a patsy factor reads its variables from: the template's columns,
    each recorded in ``read`` when used."""

    def __init__(self, frame):
        self.frame = frame
        self.read = []

    def __getitem__(self, name):
        if name not in self.frame.columns:
            raise KeyError(name)    # patsy then looks in the formula's environment
        if name not in self.read:
            self.read.append(name)
        return self.frame[name]


def _columns_read(factor, state, template):
    """The columns of ``template`` the patsy factor's code reads (by evaluating it)."""
    recorder = _ColumnRecorder(template)
    factor.eval(state, recorder)
    return recorder.read


def _check_same_design(data, info, shrunk):
    """Refuse unless the design rebuilt from ``shrunk`` (as ``load`` will) equals the
    fitted one on the training data."""
    import patsy

    probe = copy.copy(data)
    probe.design_info, probe.data_template = None, shrunk
    try:
        rebuilt = probe.rhs_info()
    except ValueError as err:
        raise _not_possible(data, str(err)) from None
    if list(rebuilt.column_names) != list(info.column_names):
        raise _not_possible(data, f"the design rebuilt without the rows has the columns "
                            f"{rebuilt.column_names}, not {info.column_names}")
    fitted, again = patsy.build_design_matrices([info, rebuilt], data.data_template,
                                                NA_action="drop")
    if not np.array_equal(np.asarray(fitted), np.asarray(again), equal_nan=True):
        raise _not_possible(data, "the design rebuilt without the rows differs from the "
                            "fitted one")


def _not_possible(data, reason):
    return ValueError(f"remove_data=True is not possible for the formula {data.formula!r}: "
                      f"{reason}. The design of new data could not be rebuilt after "
                      "loading; save with remove_data=False")
