"""Declared hyperparameters and their checks; values shown in messages.

The bottom of the package: it imports nothing from it. Each estimator declares its
``fit`` options once, as a class attribute ``_param_table`` mapping a name to a
:class:`Param` (type, range, whether ``None`` is allowed, and why a bound is what it is).
The ``fit`` wrapper of every model (:mod:`mtltransfer.models.base`) reads the tables of
the class and its bases and checks the arguments of each call with :func:`check_params`
before the fit runs, so every estimator that takes an option refuses the same bad value
with the same message, naming the argument:

    "max_iter must be an integer >= 1; got 0"
    "k must be in [1, 1] (k <= min(d, T): 5 predictors, 1 task); got 2"
"""

from __future__ import annotations

import importlib
import numbers

import numpy as np


def show(values, k=10):
    """A list of values as the user wrote them: ``[0, 1]``, not
    ``[np.int64(0), np.int64(1)]`` (NumPy scalars become Python ones), at most ``k``
    shown."""
    values = list(values)
    shown = [v.item() if isinstance(v, np.generic) else v for v in values[:k]]
    text = repr(shown)
    return text[:-1] + ", ...]" if len(values) > k else text


class Param:
    """One declared hyperparameter.

    Parameters
    ----------
    kind : {"int", "real", "bool", "option", "other"}
        ``"other"``: a value whose range depends on the call (``Transfer``'s method, one
        of the candidates), checked by the fit; declared for what else the table says.
    low, high : number, callable or None
        Inclusive bounds (None: unbounded). A callable receives the model and returns
        the bound (a rank's ``min(p, q)``).
    low_open : bool
        The lower bound itself is excluded (``tol > 0``).
    none : bool
        ``None`` is allowed (tuned, or a default chosen by the fit).
    options : tuple
        The allowed values of ``kind="option"``; for a number, named choices allowed
        beside it (``("cv",)``: tuned by cross-validation).
    why : str or callable, optional
        Why the bounds are what they are, added to the message (a callable receives the
        model).
    nan : bool
        NaN is allowed (RSSVD: an empty layer).
    tuned : bool
        The fit chooses it when it is left as ``None`` and reports its choice in
        ``results.hyperparameters``; a bootstrap replicate then refits with that choice
        fixed (unless ``refit_tuning=True``). Read by :func:`tuned_params` and by the
        summary (:func:`mtltransfer.summary.hyperparameter_rows`).
    label : str, optional
        The name of its row in the summary (default: the name it is declared under).
    """

    def __init__(self, kind, low=None, high=None, *, low_open=False, none=False,
                 options=(), why=None, nan=False, tuned=False, label=None):
        if kind not in ("int", "real", "bool", "option", "other"):
            raise ValueError(f"kind must be 'int', 'real', 'bool', 'option' or 'other'; "
                             f"got {kind!r}")
        self.kind, self.low, self.high = kind, low, high
        self.low_open, self.none, self.options, self.why = low_open, none, options, why
        self.nan, self.tuned, self.label = nan, tuned, label

    def summary_label(self, name):
        """The name of the option's row in a summary."""
        return self.label or name

    def is_given(self, value):
        """Whether ``value``, passed to ``fit``, fixes the option (not None, and not a
        named request to tune it such as ``"cv"``)."""
        return value is not None and not (self.kind != "option" and isinstance(value, str)
                                          and value in self.options)

    def check(self, name, value, model=None):
        """The value, checked (a TypeError or ValueError naming ``name``) and normalised
        (Python int/float/bool)."""
        if self.kind == "other":      # declared (e.g. as tuned), checked by the fit
            return value
        if value is None:
            if self.none:
                return None
            raise TypeError(f"{name} must be {self._describe(model)}; got None")
        if self.kind != "option" and self.options and isinstance(value, str):
            if value in self.options:    # a named choice beside the numbers ("cv")
                return value
            raise ValueError(f"{name} must be {self._describe(model)}; got {value!r}")
        if self.kind == "option":
            if not isinstance(value, str) or value not in self.options:
                raise ValueError(f"{name} must be one of {show(self.options)}; "
                                 f"got {value!r}")
            return value
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False; got {value!r}")
            return bool(value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Number) \
                or isinstance(value, numbers.Complex) and not isinstance(value,
                                                                         numbers.Real):
            raise TypeError(f"{name} must be {self._describe(model)}; got {value!r}")
        given = value.item() if isinstance(value, np.generic) else value
        if self.kind == "int":
            if not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be {self._describe(model)}; got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if self.nan and np.isnan(value):
                return value
            if not np.isfinite(value):
                raise ValueError(f"{name} must be {self._describe(model)}; got {given!r}")
        low, high = self._bound(self.low, model), self._bound(self.high, model)
        if (low is not None and (value < low or (self.low_open and value == low))) or \
                (high is not None and value > high):
            raise ValueError(f"{name} must be {self._describe(model)}; got {given!r}")
        return value

    @staticmethod
    def _bound(bound, model):
        return bound(model) if callable(bound) else bound

    def _describe(self, model):
        what = {"int": "an integer", "real": "a finite number", "bool": "True or False",
                "option": "one of " + show(self.options)}[self.kind]
        low, high = self._bound(self.low, model), self._bound(self.high, model)
        if self.kind == "int" and low is not None and high is not None:
            what = f"an integer in [{low}, {high}]"
        elif low is not None:
            what += f" {'>' if self.low_open else '>='} {low}"
            if high is not None:
                what += f" and <= {high}"
        elif high is not None:
            what += f" <= {high}"
        if self.kind != "option" and self.options:
            what += "".join(f" or {o!r}" for o in self.options)
        if self.nan:
            what += " or NaN"
        if self.none:
            what += " or None"
        why = self.why(model) if callable(self.why) else self.why
        return f"{what} ({why})" if why else what


class LengthError(ValueError, TypeError):
    """A sequence of the wrong length for a declared option: both a ValueError (a value
    of the right kind and the wrong shape) and a TypeError (not the declared form), as
    NumPy's AxisError is both a ValueError and an IndexError; ``except`` of either
    catches it."""


class Parts:
    """A declared option given as one value per part, or one value for all parts.

    SMART's ``structural_rank`` (r_u, r_v) and ``lam`` (lam_u, lam_v), SOFAR's ``lam``
    (a scale, or the triplet (lam_a, lam_b, lam_d)) and RSSVD's per-layer ``lam`` are
    declared this way: each part is checked by its own :class:`Param` (its own bounds,
    e.g. r_u <= p and r_v <= q), and the message names the argument and the part:

        "structural_rank (r_v) must be an integer in [0, 3] (r_v <= q = 3
        response(s)); got 4"

    Parameters
    ----------
    parts : dict of str to Param, or Param
        The parts in order, each with its declaration; a single Param with
        ``names=None`` declares a sequence of any length whose entries share it (one per
        layer, the length checked by the fit, which knows the number of layers).
    none : bool
        ``None`` is allowed (tuned).
    scalar : bool
        A single value stands for every part (checked against each part's declaration).
    what : str, optional
        How the sequence form is described in a message ("a pair (lam_u, lam_v)").
    tuned : bool
        As for :class:`Param`.
    label : str, optional
        The name of its row in the summary (default: the name it is declared under,
        followed by the parts, ``"lam (lam_u, lam_v)"``).
    """

    kind = "parts"

    def __init__(self, parts, *, none=False, scalar=True, what=None, tuned=False,
                 label=None):
        self.parts = parts
        self.none, self.scalar, self.tuned, self.label = none, scalar, tuned, label
        if what is None:
            what = (f"a sequence of {len(parts)} values ({', '.join(parts)})"
                    if isinstance(parts, dict) else "a sequence of values")
        self.what = what

    def summary_label(self, name):
        """The name of the option's row in a summary."""
        if self.label:
            return self.label
        return f"{name} ({', '.join(self.parts)})" if isinstance(self.parts, dict) else name

    def is_given(self, value):
        """Whether ``value``, passed to ``fit``, fixes the option (not None)."""
        return value is not None

    def _specs(self, n):
        if isinstance(self.parts, dict):
            return list(self.parts.items())
        return [(f"[{i}]", self.parts) for i in range(n)]

    def check(self, name, value, model=None):
        """The value, checked part by part (a TypeError or ValueError naming ``name``
        and the part); a scalar is returned as given, a sequence as a tuple."""
        if value is None:
            if self.none:
                return None
            raise TypeError(f"{name} must be {self.what}; got None")
        if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
            if not self.scalar:
                raise TypeError(f"{name} must be {self.what}; got {value!r}")
            specs = self._specs(1)               # tied: every part's bounds hold
            alike = len({spec._describe(model) for _, spec in specs}) == 1
            for part, spec in specs:
                spec.check(name if alike else f"{name} ({part})", value, model)
            return value
        if np.ndim(value) != 1:
            raise TypeError(f"{name} must be {self.scalar and 'a number or ' or ''}"
                            f"{self.what}; got {value!r}")
        values = list(value)
        specs = self._specs(len(values))
        if len(values) != len(specs):
            raise LengthError(f"{name} must be {self.scalar and 'a number or ' or ''}"
                              f"{self.what}; got {len(values)} values")
        return tuple(spec.check(f"{name} ({part})" if isinstance(self.parts, dict)
                                else f"{name}{part}", v, model)
                     for (part, spec), v in zip(specs, values))


def declared_params(cls):
    """The merged ``_param_table`` of a class and its bases (a subclass's entry wins)."""
    table = {}
    for klass in reversed(cls.__mro__):
        table.update(klass.__dict__.get("_param_table", {}))
    return table


def tuned_params(cls):
    """The names of the hyperparameters a class declares as chosen by its fit
    (``tuned=True``): what a bootstrap replicate fixes at the full-data choice."""
    return frozenset(name for name, p in declared_params(cls).items()
                     if getattr(p, "tuned", False))


def check_params(table, arguments, model=None):
    """Check the arguments (name to value) that ``table`` declares; the others are left
    to the estimator. Returns the arguments with the declared ones normalised."""
    out = dict(arguments)
    for name, value in arguments.items():
        spec = table.get(name)
        if spec is not None:
            out[name] = spec.check(name, value, model)
    return out


# ---- small shared values and types (used by io, inference, bootstrap, screening) -------
#: column scales (standard deviations) further apart than this make a penalty's meaning
#: depend on the predictors' units: a warning says so
SCALE_RATIO_WARN = 1e6

_ROWS_REMOVED = "the training rows were removed by save(remove_data=True)"


def check_alpha(alpha):
    """``alpha`` as a float in (0, 1), or a ValueError naming it."""
    value = None
    if not isinstance(alpha, (bool, np.bool_, str, bytes)) and np.ndim(alpha) == 0:
        try:
            value = float(alpha)
        except (TypeError, ValueError):
            value = None
    if value is None or not 0 < value < 1:
        raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}")
    return value


def new_data_argument(exog, newdata):
    """statsmodels names new data ``exog``; ``newdata`` is accepted as another name."""
    if newdata is not None:
        if exog is not None:
            raise TypeError("give new data as exog or as newdata, not both")
        return newdata
    return exog


class RemovedRows:
    """Stands in for per-row training data in results saved with ``remove_data=True``.

    Only the shape of the removed array is known, so ``shape``, ``ndim`` and ``len()``
    work (and with them ``model.nobs`` and ``model.k_exog``); anything that needs the
    values (conversion to an array, indexing, arithmetic, array methods) raises
    ``ValueError``.

    Parameters
    ----------
    shape : tuple of int
        The shape of the array that was removed.
    """

    #: why the values are not there (subclasses say it their way)
    _MESSAGE = _ROWS_REMOVED

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"<{type(self).__name__}: shape {self.shape}; {self._MESSAGE}>"

    def __getattr__(self, name):   # array methods (.mean, .T ...) need the values
        if name.startswith("_"):      # probes by other libraries (pandas' _typ ...)
            raise AttributeError(name)
        raise ValueError(f"{self._MESSAGE} (.{name} needs them)")

    def _refuse(self, *args, **kwargs):
        raise ValueError(self._MESSAGE)

    __array__ = __getitem__ = __iter__ = __neg__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = _refuse


# ---- front ends register themselves ----------------------------------------------------
#: the package's own front ends, by kind: the module that registers the kind's handlers
#: when it is imported (it imports the models; the models never import it)
_FRONT_END_MODULES = {"dask": "mtltransfer.dask"}
_FRONT_ENDS: dict[str, dict] = {}


def register_front_end(kind, **handlers):
    """Called by a front end module when it is imported: its handlers by name."""
    _FRONT_ENDS.setdefault(kind, {}).update(handlers)


def front_end(kind, name):
    """The handler ``name`` of the front end ``kind``; the front end's module is loaded on
    first use (the core never loads it for data it does not handle)."""
    if kind not in _FRONT_ENDS:
        importlib.import_module(_FRONT_END_MODULES[kind])
    return _FRONT_ENDS[kind][name]
