"""Small helpers on pandas frames: a content fingerprint, timestamp parsing, a frame's time range.

Sources call `fingerprint` to name a batch by its content (the metadata store dedupes on it);
the controller calls `time_range` to record when a batch starts and ends; validation and
`validation.schema.coerce` call `parse_times` to read a timestamp column the same way everywhere.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import UTC, datetime

import pandas as pd


def fingerprint(frame: pd.DataFrame) -> str:
    """The sha256 of a frame's content: column names, dtypes and values in row order.

    Equal frames give equal fingerprints whatever their index; a renamed column, a changed
    dtype or a changed value gives a different one. Values are hashed column-wise by
    `pandas.util.hash_pandas_object` (vectorised, about 1 GB/s), so the fingerprint is stable
    for one pandas version; it names batches, it is not a cryptographic signature of a file.

    >>> a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    >>> fingerprint(a) == fingerprint(a.copy())
    True
    >>> fingerprint(a) == fingerprint(a.astype({"x": "float64"}))
    False
    >>> len(fingerprint(a))
    64
    """
    digest = hashlib.sha256()
    header = [[str(name), str(dtype)] for name, dtype in frame.dtypes.items()]
    digest.update(json.dumps({"columns": header, "rows": len(frame)}).encode())
    if frame.shape[1] and len(frame):
        try:
            hashes = pd.util.hash_pandas_object(frame, index=False)
            digest.update(hashes.to_numpy().tobytes())
        except TypeError:
            # Unhashable cells (lists, dicts): fall back to their JSON text, still vectorised
            # per column by pandas.
            digest.update(frame.to_json(orient="split", index=False, date_format="iso").encode())
    return digest.hexdigest()


def parse_times(values: pd.Series) -> pd.Series:
    """A column as aware UTC timestamps; what cannot be read becomes NaT.

    Datetime columns are taken as they are (naive ones as UTC); numbers are seconds since
    1970-01-01 UTC; strings are read as ISO 8601 first and, if that leaves some unread, in any
    format dateutil understands.

    >>> parse_times(pd.Series(["2024-01-01T10:00", "not a date"])).tolist()
    [Timestamp('2024-01-01 10:00:00+0000', tz='UTC'), NaT]
    >>> parse_times(pd.Series([0, 86400])).dt.day.tolist()
    [1, 2]
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values if values.dtype.tz is UTC else values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if pd.api.types.is_numeric_dtype(values.dtype):
        return pd.to_datetime(values, unit="s", utc=True, errors="coerce")
    text = values.astype("str").where(values.notna())
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    unread = parsed.isna() & text.notna()
    if unread.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = pd.to_datetime(text[unread], utc=True, errors="coerce", format="mixed")
        parsed = parsed.where(~unread, again)
    return parsed


def time_range(frame: pd.DataFrame, column: str | None) -> tuple[datetime | None, datetime | None]:
    """The first and last time in `column` (aware UTC), or (None, None) if there is none.

    >>> frame = pd.DataFrame({"t": ["2024-01-02", "2024-01-01", None]})
    >>> [t.isoformat() for t in time_range(frame, "t")]
    ['2024-01-01T00:00:00+00:00', '2024-01-02T00:00:00+00:00']
    >>> time_range(frame, None)
    (None, None)
    """
    if column is None or column not in frame.columns or frame.empty:
        return None, None
    times = parse_times(frame[column])
    first, last = times.min(), times.max()  # NaT skipped: NaT only if there is no time at all
    if pd.isna(first):
        return None, None
    return first.to_pydatetime(), last.to_pydatetime()
