"""`check_batch`: what is wrong with a batch, and what is merely new, column by column.

The controller calls it (also reachable as `validation.schema.check_batch`) on every new batch
after the first, which defines the schema. The answer, `Findings`, has two parts:

- `reasons`, hard failures that quarantine the batch: values of the wrong type (text in a
  number column, unparseable timestamps or booleans), a missing required column, values
  outside explicit `validation.bounds`, infinite values, an empty batch or fewer than
  `validation.min_rows` rows;
- `quality`, data-quality signals: values beyond the range the first data showed (widened by
  `range_tolerance`), categories it never had, more missing values than it had (plus
  `missing_rate_slack`). The batch is accepted and the signals are stored with it, counted
  per column; a signal named in `validation.strict` (or a column's `per_column` entry) is a
  hard failure instead. A stream whose values drift slowly away from the first data is real
  data, not a broken batch: quarantining it would lose exactly the rows a model needs most.

Each message says what and where: ``"nswprice: 3 values above the allowed maximum 1.23 (max
seen 0.98, tolerance 50%): lines 6, 11, 14"``. Offending rows are found by position in the
batch and named by the `data.row_names.RowNames` the source gave the batch: the line of a CSV
file (the header is line 1), the row counted from 1 (Parquet, SQL; the default), the message id
of a stream event.

Every check is vectorised over the column; only columns are looped over. A first pass screens
all numeric and datetime columns at once (one numpy block); only the columns it flags, and the
other kinds, go through the per-column checks that write the messages, so a clean batch costs a
few numpy calls.

The allowed range of a numeric column is the range seen, widened by `range_tolerance` times its
width on each side. A column that was constant in the first data has no width to widen and is
not range-checked: in Elec2, for instance, `vicprice`, `vicdemand` and `transfer` hold one
imputed value for the first ~17 000 rows and only then start to vary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.core import config
from driftloop.data import frames, row_names

if TYPE_CHECKING:  # `schema` re-exports `check_batch`, so it imports this module
    from driftloop.validation import schema as schema_

SHOWN = 5
"""How many rows or values a message lists before saying how many more there are."""

_BOOLEAN_TEXT = {"true", "false", "1", "0", "1.0", "0.0"}


@dataclass(frozen=True)
class Findings:
    """What `check_batch` found: `reasons` to quarantine the batch and data-quality signals
    (`quality`), each per column ("*" for the whole batch); `quality_rows` counts the rows
    that carry at least one signal.

    >>> Findings().valid, Findings(reasons={"x": ["x: 1 infinite value: row 2"]}).valid
    (True, False)
    """

    reasons: dict[str, list[str]] = field(default_factory=dict)
    quality: dict[str, list[str]] = field(default_factory=dict)
    quality_rows: int = 0

    @property
    def valid(self) -> bool:
        """No hard failure: the batch is accepted (with its signals, if any)."""
        return not self.reasons


@dataclass(frozen=True)
class _Finding:
    """One message about a column: a hard failure (`signal` None) or a signal of that name,
    with the rows it is about (`rows`, for counting signalled rows)."""

    message: str
    signal: str | None = None
    rows: pd.Series | None = None


def check_batch(
    frame: pd.DataFrame,
    schema: schema_.Schema,
    spec: config.ValidationSpec,
    names: row_names.RowNames | None = None,
) -> Findings:
    """Why `frame` breaks `schema` (`Findings.reasons`), and what it shows beyond the first
    data (`Findings.quality`).

    Extra columns, not in the schema, are allowed and not checked. `names` names the rows in
    the messages (default: counted from 1, whatever the frame's index).

    >>> from driftloop.validation import schema as schema_
    >>> schema = schema_.infer_schema(pd.DataFrame({"x": [0.0, 1.0], "y": [0, 1]}), target="y")
    >>> found = check_batch(pd.DataFrame({"x": [0.5, 9.0], "y": [1, 0]}), schema,
    ...                     config.ValidationSpec())
    >>> found.valid, found.quality_rows, found.quality["x"]
    (True, 1, ['x: 1 value above the allowed maximum 1.5 (max seen 1, tolerance 50%): row 2'])
    >>> check_batch(pd.DataFrame({"x": [0.5, 9.0], "y": [1, 0]}), schema,
    ...             config.ValidationSpec(strict=["range"])).reasons
    {'x': ['x: 1 value above the allowed maximum 1.5 (max seen 1, tolerance 50%): row 2']}
    """
    names = names or row_names.RowNames()
    reasons: dict[str, list[str]] = {}
    quality: dict[str, list[str]] = {}

    rows = len(frame)
    if rows == 0:
        reasons["*"] = ["empty batch: it has no rows"]
    elif rows < spec.min_rows:
        reasons["*"] = [f"only {rows} rows; validation.min_rows asks for at least {spec.min_rows}"]
    clean = _screen(frame, schema, spec) if rows else set()
    signalled = np.zeros(rows, dtype=bool)
    for column in schema.columns:
        if column.name not in frame.columns:
            if column.required:
                reasons.setdefault(column.name, []).append(
                    f"{column.name}: required column is missing "
                    f"(expected {column.kind}, dtype {column.dtype})"
                )
            continue
        if rows == 0 or column.name in clean:
            continue
        strict = spec.strict_for(column.name)
        for found in _check_column(frame[column.name], column, spec, names):
            message = f"{column.name}: {found.message}"
            if found.signal is None or found.signal in strict:
                reasons.setdefault(column.name, []).append(message)
            else:
                quality.setdefault(column.name, []).append(message)
                if found.rows is not None:
                    signalled |= found.rows.to_numpy(dtype=bool, na_value=False)
    return Findings(reasons, quality, int(signalled.sum()) if quality else 0)


def _screen(
    frame: pd.DataFrame, schema: schema_.Schema, spec: config.ValidationSpec
) -> set[str]:
    """Columns that `_check_column` would find nothing in, screened all at once: numeric
    columns of a numeric dtype with no infinite value, nothing out of range and not too many
    missing values; datetime columns of a datetime dtype with not too many missing. A column
    not screened clean is checked one by one (which has the last word)."""
    rows = len(frame)
    numeric: list[schema_.ColumnSchema] = []
    arrays: list[np.ndarray[Any, Any]] = []
    clean: set[str] = set()
    for column in schema.columns:
        if column.name not in frame.columns:
            continue
        values = frame[column.name]
        if column.kind == "numeric" and pd.api.types.is_numeric_dtype(values.dtype):
            numeric.append(column)
            arrays.append(values.to_numpy(dtype=np.float64, na_value=np.nan))
        elif (
            column.kind == "datetime"
            and pd.api.types.is_datetime64_any_dtype(values.dtype)
            and (rows - values.count()) / rows <= column.missing_rate + spec.missing_rate_slack
        ):
            clean.add(column.name)
    if numeric:
        block = np.stack(arrays)  # one row per column
        infinite = np.isinf(block)
        finite = np.where(infinite, np.nan, block)
        limits = np.array([_limits(c, spec)[:2] for c in numeric], dtype=np.float64)
        outside = (finite < limits[:, :1]) | (finite > limits[:, 1:])
        flagged = infinite.any(axis=1) | outside.any(axis=1)
        missing = np.isnan(block).sum(axis=1) / rows
        for j, column in enumerate(numeric):
            if not flagged[j] and missing[j] <= column.missing_rate + spec.missing_rate_slack:
                clean.add(column.name)
    return clean


def _limits(
    column: schema_.ColumnSchema, spec: config.ValidationSpec
) -> tuple[float, float, str | None]:
    """The allowed range of a numeric column and where it comes from (None: not checked)."""
    if column.name in spec.bounds:
        low, high = spec.bounds[column.name]
        return low, high, "validation.bounds"
    if column.minimum is None or column.maximum is None or column.minimum == column.maximum:
        return -np.inf, np.inf, None  # a column constant in the first data has no range to extend
    slack = spec.range_tolerance * (column.maximum - column.minimum)
    return column.minimum - slack, column.maximum + slack, f"tolerance {spec.range_tolerance:.0%}"


def _check_column(
    values: pd.Series,
    column: schema_.ColumnSchema,
    spec: config.ValidationSpec,
    names: row_names.RowNames,
) -> list[_Finding]:
    found: list[_Finding] = []
    missing = values.isna()
    if column.kind == "numeric":
        found += _check_numeric(values, column, spec, names)
    elif column.kind == "categorical":
        found += _check_categorical(values, column, spec, names)
    elif column.kind == "boolean":
        found += _check_boolean(values, names)
    else:
        parsed = frames.parse_times(values)
        found += _bad_values(values, ~missing & parsed.isna(), names, "unparseable timestamp")
    allowed = column.missing_rate + spec.missing_rate_slack
    rate = float(missing.mean())
    if rate > allowed + 1e-12:
        found.append(_Finding(
            f"{_count(int(missing.sum()), 'missing value')} ({rate:.1%}), more than the allowed "
            f"{allowed:.1%} ({column.missing_rate:.1%} seen + {spec.missing_rate_slack:.1%} "
            f"slack): {_rows(missing, names)}",
            "missing",
            missing,
        ))
    return found


def _check_numeric(
    values: pd.Series,
    column: schema_.ColumnSchema,
    spec: config.ValidationSpec,
    names: row_names.RowNames,
) -> list[_Finding]:
    found: list[_Finding] = []
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index)
    else:
        numbers = pd.to_numeric(values.astype("object"), errors="coerce")
        not_numbers = values.notna() & numbers.isna()
        found += _bad_values(
            values,
            not_numbers,
            names,
            "non-numeric value",
            f" (expected numbers; read as {values.dtype})",
        )
        numbers = numbers.astype("float64")
    infinite = pd.Series(np.isinf(numbers.to_numpy()), index=values.index)
    if infinite.any():
        found.append(
            _Finding(f"{_count(int(infinite.sum()), 'infinite value')}: {_rows(infinite, names)}")
        )
    finite = numbers.where(~infinite)
    low, high, tolerance = _limits(column, spec)
    if tolerance is None:
        return found
    signal = None if column.name in spec.bounds else "range"  # explicit bounds are hard
    below, above = finite < low, finite > high
    if below.any():
        found.append(_Finding(
            f"{_count(int(below.sum()), 'value')} below the allowed minimum {low:.6g} "
            f"(min seen {_number(column.minimum)}, {tolerance}): {_rows(below, names)}",
            signal,
            below,
        ))
    if above.any():
        found.append(_Finding(
            f"{_count(int(above.sum()), 'value')} above the allowed maximum {high:.6g} "
            f"(max seen {_number(column.maximum)}, {tolerance}): {_rows(above, names)}",
            signal,
            above,
        ))
    return found


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def _check_categorical(
    values: pd.Series,
    column: schema_.ColumnSchema,
    spec: config.ValidationSpec,
    names: row_names.RowNames,
) -> list[_Finding]:
    if column.categories is None or spec.allow_new_categories:
        return []
    text = values.astype("str").where(values.notna())
    new = text.notna() & ~text.isin(column.categories)
    if not new.any():
        return []
    counts = text[new].value_counts()
    shown = ", ".join(f"{value!r} ({count}x)" for value, count in counts.head(SHOWN).items())
    more = f" and {len(counts) - SHOWN} more" if len(counts) > SHOWN else ""
    seen = ", ".join(column.categories[:SHOWN]) + (
        ", ..." if len(column.categories) > SHOWN else ""
    )
    return [_Finding(
        f"{_count(int(new.sum()), 'value')} in categories never seen: {shown}{more} "
        f"(seen: {seen}); set validation.allow_new_categories to expect them: "
        f"{_rows(new, names)}",
        "categories",
        new,
    )]


def _check_boolean(values: pd.Series, names: row_names.RowNames) -> list[_Finding]:
    if pd.api.types.is_bool_dtype(values.dtype):
        return []
    text = values.astype("str").str.strip().str.lower()
    bad = values.notna() & ~text.isin(_BOOLEAN_TEXT)
    return _bad_values(values, bad, names, "non-boolean value")


def _bad_values(
    values: pd.Series, mask: pd.Series, names: row_names.RowNames, noun: str, detail: str = ""
) -> list[_Finding]:
    """``"2 <noun>s<detail>: line 18: 'abc', line 21: 'x'"`` for the rows in `mask`, or nothing."""
    positions = _positions(mask)
    if not len(positions):
        return []
    shown = positions[:SHOWN].tolist()
    examples = ", ".join(
        f"{names.one(p)}: {value!r}" for p, value in zip(shown, values.iloc[shown], strict=True)
    )
    more = f" and {len(positions) - SHOWN} more" if len(positions) > SHOWN else ""
    return [_Finding(f"{_count(len(positions), noun)}{detail}: {examples}{more}")]


def _rows(mask: pd.Series, names: row_names.RowNames) -> str:
    """``"lines 6, 11, 14"`` (at most `SHOWN`, then how many more)."""
    positions = _positions(mask)
    return names.name(positions[:SHOWN].tolist(), more=max(0, len(positions) - SHOWN))


def _positions(mask: pd.Series) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Where `mask` is true, as positions in the batch (0 = its first row)."""
    return np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
