"""Bodies of HTTP messages as frames: CSV, Parquet or JSON records, read or told why not.

A body posted to `POST /v1/batches` and a page read by the `http` source arrive as bytes in a
declared format; `read_body` turns them into a frame the way a file is read (CSV and Parquet by
`sources.files.read_frame`, with its messages), and JSON as records: an array of flat objects,
or an object holding that array under `records` (a dotted path, ``data.items``). Never raises
on bad content: `(None, why)` instead, the why naming the record or line.

    >>> read_body(b'[{"x": 1, "y": "a"}, {"x": 2}]', "json")[0].to_dict("list")
    {'x': [1, 2], 'y': ['a', nan]}
    >>> read_body(b'{"data": {"items": [{"x": 1}]}}', "json", records="data.items")[0].x.tolist()
    [1]
    >>> read_body(b'[{"x": 1}, [2]]', "json")[1]
    'record 2 is not a JSON object but an array'
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pandas as pd

from driftloop.data import row_names
from driftloop.data.sources import events, files

Format = Literal["csv", "parquet", "json"]
FORMATS: tuple[Format, ...] = ("csv", "parquet", "json")


def read_body(
    data: bytes, format: Format, records: str | None = None
) -> tuple[pd.DataFrame | None, str | None]:
    """The frame `data` holds in `format`, or `(None, why not)`; `records` is the dotted path
    of the record array inside a JSON object (None: the body is the array)."""
    if format == "json":
        value, error = parse_json(data)
        if error is not None:
            return None, error
        found, error = records_at(value, records)
        if error is not None or found is None:
            return None, error
        return records_frame(found)
    return files.read_frame(data, f"body.{format}", format)


def names(data: bytes, format: Format, frame: pd.DataFrame | None) -> row_names.RowNames:
    """How quarantine reasons name the rows: CSV lines (header = line 1), else records from 1."""
    if format == "csv":
        return files.row_names(data, "body.csv", frame, "csv")
    return row_names.RowNames("record" if format == "json" else "row")


def parse_json(data: bytes) -> tuple[Any, str | None]:
    """The JSON value of `data`, or `(None, why not)`."""
    if not data.strip():
        return None, "empty body"
    try:
        return json.loads(data.decode()), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"


def records_at(value: Any, path: str | None) -> tuple[list[Any] | None, str | None]:
    """The list at dotted `path` inside `value` (`value` itself when None), or why not.

    >>> records_at({"a": {"b": [1]}}, "a.b")
    ([1], None)
    >>> records_at({"a": []}, "rows")[1]
    "no field 'rows' in the JSON object (it has 'a')"
    """
    where = "the body"
    for part in path.split(".") if path else []:
        if not isinstance(value, dict):
            return None, f"{where} is not a JSON object, so it has no field {part!r}"
        if part not in value:
            keys = ", ".join(repr(k) for k in list(value)[:10]) or "no fields"
            return None, f"no field {part!r} in the JSON object (it has {keys})"
        value, where = value[part], f"field {part!r}"
    if not isinstance(value, list):
        hint = "" if path else "; if the records are a field of an object, name it"
        return None, f"{where} is not a JSON array of records{hint}"
    return value, None


def records_frame(items: list[Any]) -> tuple[pd.DataFrame | None, str | None]:
    """A frame of flat JSON objects (fields missing from a record are empty), or why not."""
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            return None, f"record {position} is not a JSON object but {events.kind_of(item)}"
        record, error = events.check_record(item)
        if record is None:
            return None, f"record {position}: {error}"
    return pd.DataFrame.from_records(items), None
