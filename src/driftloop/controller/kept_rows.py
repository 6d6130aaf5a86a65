"""A quarantined batch's rows kept as the source read them, with how its rows are named, so
that `requeue` can validate them again once the spec is fixed."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from driftloop.controller import project as projects
from driftloop.data import row_names
from driftloop.data.sources import base as sources
from driftloop.store import entities

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.store import artifacts


def keep_as_read(project: projects.Project, raw: sources.RawBatch) -> artifacts.Artifact | None:
    """Store a quarantined batch's rows as the source read them, with how its rows are named,
    so `requeue` can validate them again; None if there are none (unreadable data). Columns
    of mixed Python types (from JSON events) are kept as text, which validation reads the
    same way."""
    import pyarrow as pa

    if raw.frame is None:
        return None
    frame = raw.frame.copy(deep=False)
    frame.columns = [str(column) for column in frame.columns]
    frame.attrs = {ROW_NAMES: dataclasses.asdict(raw.row_names)}
    try:
        return project.artifacts.put_frame(frame)
    except (ValueError, TypeError, pa.ArrowException):
        mixed = frame.select_dtypes(include="object").columns
        text = frame.astype({c: "str" for c in mixed}).where(frame.notna(), None)
        text.attrs = frame.attrs
        return project.artifacts.put_frame(text)


def read_as_read(
    project: projects.Project, batch: entities.Batch
) -> tuple[pd.DataFrame, row_names.RowNames] | None:
    """The rows of a quarantined batch as they were read, with their names (None: not kept)."""
    if batch.data_uri is None or batch.data_sha256 is None:
        return None
    read = project.artifacts.get_frame(batch.data_uri, batch.data_sha256)
    stored = read.attrs.get(ROW_NAMES) or {}
    frame = read.copy(deep=False)  # an in-memory artifact store hands out what it keeps
    frame.attrs = {}
    names = row_names.RowNames(
        str(stored.get("noun", "row")), int(stored.get("first", 1)),
        tuple(str(i) for i in stored.get("ids", ())),
    )
    return frame, names


ROW_NAMES = "driftloop.row_names"
"""Where a quarantined batch's stored frame keeps its `RowNames` (Parquet metadata)."""
