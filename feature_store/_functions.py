"""On-demand features: `FeatureFunction`, a registered Python function computed from a training set's columns
(label-side request columns and lookup outputs), the same way in a training set, in `score_batch` and online.

A function is registered once per lake (`create_feature_function`, Databricks' `CREATE FUNCTION ... LANGUAGE
PYTHON`): its source is kept in `_feature_store.functions`, and a model trained with it records the source in its
feature spec, so a process that never imported the user's module can score or serve it. The source must therefore
stand alone: it may use builtins and modules it imports inside its body, not names of its module.

Semantics, identical in the three places: the function is called once per row with Python values (None for
null; int, float, str, bool, Decimal, date; timestamps as aware UTC datetimes), by keyword as `input_bindings`
says (`{parameter: column}`), and its result is converted to `return_type` (None stays null). Offline it is a
Spark Python UDF (on the executors); online it runs on the pandas rows of the request.
"""

from __future__ import annotations

import builtins
import dis
import functools
import inspect
import re
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import errors
from ._metadata import FunctionRecord, MetadataStore

_RETURN_TYPES: dict[str, tuple[T.DataType, Callable[[Any], Any]]] = {
    "double": (T.DoubleType(), float),
    "float": (T.FloatType(), float),
    "bigint": (T.LongType(), int),
    "long": (T.LongType(), int),
    "int": (T.IntegerType(), int),
    "string": (T.StringType(), str),
    "boolean": (T.BooleanType(), bool),
}
_ARROW = {"double": pa.float64(), "float": pa.float32(), "bigint": pa.int64(), "long": pa.int64(), "int": pa.int32()}
_ARROW |= {"string": pa.string(), "boolean": pa.bool_()}


class FeatureFunction:
    """An on-demand feature: the registered function `udf_name` applied to columns of the training set.

    Args:
        udf_name: a function registered with `create_feature_function`.
        input_bindings: {function parameter: column}, columns of the labels DataFrame or outputs of the
            training set's FeatureLookups (after renames).
        output_name: the column it adds (default: `udf_name`).

    Example:
        >>> fs.create_feature_function(name="spend_ratio", function=spend_ratio, return_type="double")
        >>> FeatureFunction(udf_name="spend_ratio", input_bindings={"spend": "f1", "amount": "amount"},
        ...                 output_name="ratio")
    """

    def __init__(
        self, *, udf_name: str, input_bindings: Mapping[str, str] | None = None, output_name: str | None = None
    ) -> None:
        self.udf_name = _name(udf_name, "udf_name")
        bindings = input_bindings if input_bindings is not None else {}
        if not isinstance(bindings, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in bindings.items()
        ):
            raise errors.ArgumentTypeError("input_bindings", input_bindings, "a mapping {parameter: column} of str")
        self.input_bindings = dict(bindings)
        self.output_name = _name(output_name, "output_name") if output_name is not None else self.udf_name

    def __repr__(self) -> str:
        return (
            f"FeatureFunction(udf_name={self.udf_name!r}, input_bindings={self.input_bindings!r}, "
            f"output_name={self.output_name!r})"
        )


@dataclass(frozen=True)
class ResolvedFunction:
    """A FeatureFunction checked against its registered function and the columns it binds, with the source."""

    name: str
    source: str
    entry: str
    return_type: str
    input_bindings: dict[str, str] = field(hash=False)
    output_name: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "entry": self.entry,
            "return_type": self.return_type,
            "input_bindings": dict(self.input_bindings),
            "output_name": self.output_name,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResolvedFunction:
        return cls(**{k: d[k] for k in ("name", "source", "entry", "return_type", "input_bindings", "output_name")})

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.input_bindings.values())

    @functools.cached_property
    def _defined(self) -> Callable[..., Any]:
        """The function its recorded source defines (compiled once per ResolvedFunction, not per request)."""
        return _compile(self.name, self.source, self.entry)

    def callable(self) -> Callable[..., Any]:
        """The function as its recorded source defines it, wrapped to take and give the values described above."""
        fn = self._defined
        convert = _RETURN_TYPES[self.return_type][1]
        params = list(self.input_bindings)

        def row(*values: Any) -> Any:
            kwargs = {p: _utc(v) for p, v in zip(params, values, strict=True)}
            result = fn(**kwargs)
            return None if result is None else convert(result)

        return row

    def spark_column(self) -> Column:
        """The function as a Spark column over its bound columns (a Python UDF, run on the executors)."""
        udf = F.udf(self.callable(), _RETURN_TYPES[self.return_type][0])
        return udf(*[F.col(f"`{c}`") for c in self.inputs])

    def apply_pandas(self, frame: pd.DataFrame) -> pd.Series:
        """The function over the rows of a pandas DataFrame holding its bound columns (online)."""
        fn = self.callable()
        columns = [_python_values(frame[c]) for c in self.inputs]
        values = [fn(*row) for row in zip(*columns, strict=True)] if columns else [fn() for _ in range(len(frame))]
        array = pa.array(values, type=_ARROW[self.return_type])
        return pd.Series(array, dtype=pd.ArrowDtype(array.type), index=frame.index)


def compute_pandas(functions: Sequence[ResolvedFunction], frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each function's output added, in order (online: on the request's pandas rows)."""
    if not functions:
        return frame
    frame = frame.copy()
    for fn in functions:
        frame[fn.output_name] = fn.apply_pandas(frame)
    return frame


def _name(value: Any, argument: str) -> str:
    if not isinstance(value, str) or not value:
        raise errors.ArgumentTypeError(argument, value, "a non-empty str")
    return value


def _python_values(series: pd.Series) -> list[Any]:
    """A column's values as the Python values a Spark UDF receives (null -> None, timestamps aware UTC)."""
    try:
        array = pa.Array.from_pandas(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return [None if v is None or (isinstance(v, float) and v != v) else v for v in series.tolist()]
    return array.to_pylist()


def _utc(value: Any) -> Any:
    """Timestamps as aware UTC datetimes: Spark hands a UDF naive local times, pyarrow aware ones."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def _compile(name: str, source: str, entry: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": f"feature_function_{name}"}
    try:
        exec(compile(source, f"<feature function {name}>", "exec"), namespace)
    except Exception as exc:  # noqa: BLE001 - any error of the user's source is reported as such
        raise errors.InvalidFeatureFunctionError(
            name, f"its source does not run: {type(exc).__name__}: {exc}"
        ) from None
    fn = namespace.get(entry)
    if not callable(fn):
        raise errors.InvalidFeatureFunctionError(name, f"its source defines no function {entry!r}")
    return fn


def source_of(name: str, function: Any) -> tuple[str, str]:
    """(source, entry name) of a plain function whose source stands alone; refused otherwise, saying why."""
    if not isinstance(function, types.FunctionType):
        raise errors.ArgumentTypeError("function", function, "a Python function defined with def")
    if function.__name__ == "<lambda>":
        raise errors.InvalidFeatureFunctionError(name, "a lambda has no source of its own; define it with def")
    if function.__code__.co_freevars:
        raise errors.InvalidFeatureFunctionError(
            name, f"it closes over {list(function.__code__.co_freevars)}; define it at module level with def"
        )
    outside = sorted(_globals(function.__code__) - set(dir(builtins)))
    if outside:
        raise errors.InvalidFeatureFunctionError(
            name,
            f"it uses names of its module {outside}, which a process scoring the model would not have; import "
            "modules inside the function body and pass values as input_bindings",
        )
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as exc:
        raise errors.InvalidFeatureFunctionError(name, f"its source cannot be read ({exc})") from None
    if source.lstrip().startswith("@"):
        raise errors.InvalidFeatureFunctionError(name, "it is decorated; register the undecorated function")
    _compile(name, source, function.__name__)
    return source, function.__name__


def _globals(code: types.CodeType) -> set[str]:
    """Names `code` (and the code nested in it) loads as globals."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _globals(const)
    return names


def register(
    meta: MetadataStore, name: Any, function: Any, return_type: Any, description: Any, replace: bool
) -> FunctionRecord:
    """Record `function` under `name` (refused when taken, unless `replace`)."""
    name = _name(name, "name")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", name):
        raise errors.InvalidArgumentError(
            "name",
            name,
            f"feature function name {name!r} must be dot-separated identifiers (letters, digits, underscores), "
            "such as 'double_it' or 'ml.features.double_it'",
        )
    if not isinstance(replace, bool):
        raise errors.ArgumentTypeError("replace", replace, "True or False")
    if not isinstance(return_type, str) or return_type not in _RETURN_TYPES:
        raise errors.InvalidArgumentError(
            "return_type", return_type, f"return_type must be one of {sorted(_RETURN_TYPES)}, got {return_type!r}"
        )
    if description is not None and not isinstance(description, str):
        raise errors.ArgumentTypeError("description", description, "a str or None")
    source, entry = source_of(name, function)
    if not replace and name in meta.functions():
        raise errors.InvalidArgumentError(
            "name", name, f"a feature function {name!r} is registered already; pass replace=True to replace it"
        )
    record = FunctionRecord(name, source, entry, return_type, description, datetime.now(UTC))
    meta.save_function(record)
    return record


def resolve(registered: Mapping[str, FunctionRecord], ff: FeatureFunction, available: list[str]) -> ResolvedFunction:
    """`ff` checked: its function registered, its bindings naming the function's parameters and columns there."""
    rec = registered.get(ff.udf_name)
    if rec is None:
        raise errors.FeatureFunctionNotFoundError(ff.udf_name, sorted(registered))
    fn = _compile(rec.name, rec.source, rec.entry)
    params = [
        p.name for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    required = [p.name for p in inspect.signature(fn).parameters.values() if p.default is p.empty and p.name in params]
    unknown = [p for p in ff.input_bindings if p not in params]
    unbound = [p for p in required if p not in ff.input_bindings]
    if unknown or unbound:
        raise errors.InvalidArgumentError(
            "input_bindings",
            ff.input_bindings,
            f"feature function {ff.udf_name!r} takes {params}; "
            + (f"no parameter {unknown}" if unknown else f"bind {unbound} too"),
        )
    missing = [c for c in ff.input_bindings.values() if c not in available]
    if missing:
        raise errors.ColumnNotFoundError("input_bindings", missing, available, "the training set")
    return ResolvedFunction(rec.name, rec.source, rec.entry, rec.return_type, dict(ff.input_bindings), ff.output_name)
