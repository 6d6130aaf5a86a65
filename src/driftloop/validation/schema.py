"""The schema of a pipeline's data: inferred from the first accepted batch, stored as JSON.

The controller calls `infer_schema` on the first accepted batch and stores `Schema.to_json()`
with the pipeline; every later batch goes through `check_batch` (defined in `checks`) against
it (a batch with hard reasons is quarantined; one that only goes beyond the first data is
accepted with data-quality signals), and training and scoring call `coerce` to give a valid
batch the schema's dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftloop.core import errors
from driftloop.core.types import JSON
from driftloop.data import frames
from driftloop.validation import checks

Kind = Literal["numeric", "categorical", "boolean", "datetime"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical", "boolean", "datetime")

MAX_CATEGORIES = 1000
"""A text column with more distinct values than this (or more than half its rows, from 20 rows
on) is taken as free text or an id: `categories` is None and new values are not checked."""


@dataclass(frozen=True)
class ColumnSchema:
    """What one column looked like in the first accepted data.

    `minimum` / `maximum` are the finite range of a numeric column; `categories` the values of a
    categorical one (None: too many to check); `missing_rate` the share of missing values.
    """

    name: str
    kind: Kind
    dtype: str
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] | None = None
    missing_rate: float = 0.0
    required: bool = True


@dataclass(frozen=True)
class Schema:
    """The columns of a pipeline's data, with its target and (optional) timestamp column.

    >>> frame = pd.DataFrame({"x": [0.5, 1.5], "color": ["red", "blue"], "y": [0, 1]})
    >>> schema = infer_schema(frame, target="y")
    >>> [(c.name, c.kind) for c in schema.columns]
    [('x', 'numeric'), ('color', 'categorical'), ('y', 'numeric')]
    >>> Schema.from_json(schema.to_json()) == schema
    True
    """

    columns: tuple[ColumnSchema, ...]
    target: str
    timestamp: str | None = None

    def column(self, name: str) -> ColumnSchema:
        """The column called `name`; `errors.NotFoundError` if the schema has none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise errors.NotFoundError(
            f"column {name!r} is not in the schema; it has {', '.join(self.names)}"
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def features(self) -> tuple[str, ...]:
        """Columns a model reads: all but the target and the timestamp."""
        return tuple(n for n in self.names if n not in (self.target, self.timestamp))

    def to_json(self) -> JSON:
        """A JSON-safe dict (no NaN, no tuples) that `from_json` reads back."""
        return {
            "target": self.target,
            "timestamp": self.timestamp,
            "columns": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "dtype": c.dtype,
                    "minimum": c.minimum,
                    "maximum": c.maximum,
                    "categories": None if c.categories is None else list(c.categories),
                    "missing_rate": c.missing_rate,
                    "required": c.required,
                }
                for c in self.columns
            ],
        }

    @classmethod
    def from_json(cls, data: JSON) -> Schema:
        """Read a dict written by `to_json`; anything malformed is an `errors.ConfigError`."""
        try:
            columns = tuple(_column_from_json(item) for item in data["columns"])
            return cls(columns=columns, target=str(data["target"]), timestamp=data.get("timestamp"))
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.ConfigError(
                f"stored schema is malformed ({type(exc).__name__}: {exc}); "
                "re-infer it from accepted data"
            ) from exc


check_batch = checks.check_batch
"""`checks.check_batch`: why a batch breaks a schema, and its data-quality signals."""


def _column_from_json(item: dict[str, Any]) -> ColumnSchema:
    kind = item["kind"]
    if kind not in KINDS:
        raise ValueError(f"column {item.get('name')!r}: unknown kind {kind!r}")
    categories = item.get("categories")
    return ColumnSchema(
        name=str(item["name"]),
        kind=kind,
        dtype=str(item["dtype"]),
        minimum=_float_or_none(item.get("minimum")),
        maximum=_float_or_none(item.get("maximum")),
        categories=None if categories is None else tuple(str(c) for c in categories),
        missing_rate=float(item.get("missing_rate", 0.0)),
        required=bool(item.get("required", True)),
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def kind_of(values: pd.Series, *, is_timestamp: bool = False) -> Kind:
    """The schema kind of a column from its pandas dtype.

    >>> kind_of(pd.Series([True, False])), kind_of(pd.Series([1.0])), kind_of(pd.Series(["a"]))
    ('boolean', 'numeric', 'categorical')
    """
    dtype = values.dtype
    if is_timestamp or pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    return "categorical"


def infer_schema(frame: pd.DataFrame, *, target: str, timestamp: str | None = None) -> Schema:
    """The schema of the first accepted data: kinds, dtypes, ranges, categories, missing rates.

    Every column seen is required but the target, whose labels may arrive later (a batch may
    lack it or miss values in it). `errors.ValidationError` if `target` or `timestamp` is not
    a column of `frame`.
    """
    for role, name in (("target", target), ("timestamp", timestamp)):
        if name is not None and name not in frame.columns:
            raise errors.ValidationError(
                f"the {role} column {name!r} is not in the data; columns are "
                f"{', '.join(map(str, frame.columns))}. Fix `{role}` in the spec",
                reasons={name: [f"{name}: {role} column missing"]},
            )
    columns = tuple(
        _infer_column(str(name), frame[name], is_timestamp=name == timestamp)
        for name in frame.columns
    )
    # Labels may arrive later than their rows: the target may be absent or missing in a batch.
    columns = tuple(
        replace(c, required=False, missing_rate=1.0) if c.name == target else c for c in columns
    )
    return Schema(columns=columns, target=target, timestamp=timestamp)


def _infer_column(name: str, values: pd.Series, *, is_timestamp: bool) -> ColumnSchema:
    kind = kind_of(values, is_timestamp=is_timestamp)
    missing = float(values.isna().mean()) if len(values) else 0.0
    minimum = maximum = None
    categories: tuple[str, ...] | None = None
    if kind == "numeric":
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        finite = numbers[np.isfinite(numbers)]
        if finite.size:
            minimum, maximum = float(finite.min()), float(finite.max())
    elif kind == "categorical":
        distinct = pd.unique(values.dropna().astype("str"))
        many = len(distinct) > MAX_CATEGORIES or (
            len(values) >= 20 and len(distinct) > len(values) / 2
        )
        categories = None if many else tuple(sorted(str(v) for v in distinct))
    return ColumnSchema(
        name=name,
        kind=kind,
        dtype=str(values.dtype),
        minimum=minimum,
        maximum=maximum,
        categories=categories,
        missing_rate=missing,
        required=True,
    )


def coerce(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """A valid batch with the schema's columns (in schema order) and dtypes.

    Extra columns are dropped; a missing optional column is added empty. An integer column with
    missing values becomes float64; a categorical column becomes pandas ``category`` with the
    schema's categories first (so category codes stay the same from batch to batch) when the
    schema recorded it as ``category``, else text.

    >>> schema = infer_schema(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), target="y")
    >>> coerce(pd.DataFrame({"y": ["b"], "x": ["3"], "z": [0]}), schema).dtypes.to_dict()
    {'x': dtype('int64'), 'y': <StringDtype(na_value=nan)>}
    """
    out: dict[str, pd.Series] = {}
    for column in schema.columns:
        if column.name in frame.columns:
            values = frame[column.name]
        else:
            values = pd.Series(np.nan, index=frame.index, dtype="float64")
        out[column.name] = _coerce_column(values, column)
    return pd.DataFrame(out, index=frame.index)


def _coerce_column(values: pd.Series, column: ColumnSchema) -> pd.Series:
    if column.kind == "datetime":
        return frames.parse_times(values)
    if column.kind == "numeric" and str(values.dtype) == column.dtype:
        return values  # what to_numeric and astype would give back
    if column.kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce")
        return _astype(numbers, column.dtype, fallback="float64")
    if column.kind == "boolean":
        if values.isna().any():
            return values.astype("boolean")
        return _astype(values, "bool", fallback="boolean")
    if column.dtype == "category":
        text = values.astype("str").where(values.notna())
        known = list(column.categories or ())
        extra = sorted(set(text.dropna().unique()) - set(known))
        return text.astype(pd.CategoricalDtype(known + extra))
    return _astype(values.astype("str").where(values.notna()), column.dtype, fallback="str")


def _astype(values: pd.Series, dtype: str, *, fallback: str) -> pd.Series:
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        return values.astype(fallback)
