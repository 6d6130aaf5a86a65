"""Does a spec fit its data? The columns a spec names, checked against a frame of the data.

`driftloop check --data` reads the source's first batch and prints `problems(spec, frame)`:
every column the spec names (target, timestamp, row id, features, `validation.bounds` and
`validation.per_column`) must be in the data, with a guess when a column of nearly the same
name is (``target: 'Class' is not a column of the data; did you mean 'class'?``); the
timestamp must parse as times and the target must hold values. Ingest uses `columns_like` for
the same guess when a first batch lacks the target or timestamp column.
"""

from __future__ import annotations

import difflib

import pandas as pd

from driftloop.core import config
from driftloop.data import frames


def problems(spec: config.PipelineSpec, frame: pd.DataFrame) -> list[str]:
    """What in `spec` does not fit `frame`, one sentence each (empty: it fits).

    >>> spec = config.PipelineSpec.model_validate({"name": "p", "target": "Class",
    ...     "source": {"kind": "files", "path": "d/*.csv"}, "trainer": {"function": "t:f"}})
    >>> problems(spec, pd.DataFrame({"price": [1.0], "class": [0]}))
    ["target: 'Class' is not a column of the data; did you mean 'class'? (columns: price, class)"]
    """
    columns = [str(c) for c in frame.columns]
    found: list[str] = []

    def need(field: str, name: str) -> bool:
        if name in columns:
            return True
        guess = columns_like(name, columns)
        hint = f"; did you mean {guess!r}?" if guess else ""
        found.append(f"{field}: {name!r} is not a column of the data{hint} "
                     f"(columns: {', '.join(columns)})")
        return False

    if need("target", spec.target) and not frame[spec.target].notna().any():
        found.append(f"target: column {spec.target!r} holds no value in this data")
    if spec.timestamp is not None and need("timestamp", spec.timestamp):
        values = frame[spec.timestamp]
        unread = values.notna() & frames.parse_times(values).isna()
        if unread.any():
            examples = ", ".join(repr(v) for v in values[unread].head(3))
            found.append(f"timestamp: {int(unread.sum())} values of {spec.timestamp!r} are "
                         f"not times (e.g. {examples})")
    if spec.id is not None:
        need("id", spec.id)
    for name in spec.features or ():
        need("features", name)
    for name in spec.validation.bounds:
        need("validation.bounds", name)
    for name in spec.validation.per_column:
        need("validation.per_column", name)
    return found


def columns_like(name: str, columns: list[str]) -> str | None:
    """The column `name` was most likely meant to be (same letters but case, or close).

    >>> columns_like("Class", ["period", "class"]), columns_like("tme", ["time", "x"])
    ('class', 'time')
    >>> columns_like("label", ["period", "class"]) is None
    True
    """
    folded = {column.casefold(): column for column in columns}
    if name.casefold() in folded:
        return folded[name.casefold()]
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.75)
    return close[0] if close else None
