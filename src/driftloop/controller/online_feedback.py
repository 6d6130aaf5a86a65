"""Feedback labels for an online learner: the champion's predictions labelled through
`POST /v1/feedback`, joined to the features logged with their prediction, learned in label
order with the prediction that was served as each event's test.

Called by whichever process holds the pipeline's lease: the server (`server.online_serving`, on a
feedback call) and the online controller (`controller.online_tick`, every tick). The labels
learned are those after the session's `feedback_upto` (the champion snapshot's
``feedback_upto`` plus what the session learned since), so each label is learned once in a
lineage, whoever learns it; the ``online-feedback`` cursor records the progress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from driftloop.controller import online_session
from driftloop.controller import project as projects
from driftloop.core import types
from driftloop.store import serving
from driftloop.train import online as learners
from driftloop.validation import schema as schemas

FrameOf = Callable[[list[types.JSON]], pd.DataFrame]
"""Logged (checked) feature rows → the model's input frame, as a prediction saw it."""


def pending(
    project: projects.Project, store: serving.ServingStore, session: online_session.OnlineSession
) -> list[serving.Labelled]:
    """The champion's predictions labelled after the session's position, in label order."""
    return store.labelled(project.name, after_id=session.feedback_upto, alias="champion")


def learn(
    project: projects.Project,
    session: online_session.OnlineSession,
    items: list[serving.Labelled],
    schema: schemas.Schema,
    *,
    frame: FrameOf | None = None,
) -> online_session.LearnReport:
    """Learn `items` (from `pending`) and move the cursor. `frame` builds the input frame
    (default: `schema_frame`; the server passes its request path's,
    `server.scoring.InputSchema.frame`). The caller holds the lease and keeps other learners
    of this session out."""
    rows = [item.prediction.features for item in items]
    built = frame(rows) if frame is not None else schema_frame(rows, schema, session.features)
    records = learners.records_of(built, session.features)
    dtype = schema.column(schema.target).dtype
    events = [
        online_session.Event(record, label_of(item.label, dtype), item.prediction.prediction,
                     feedback_id=item.feedback_id)
        for record, item in zip(records, items, strict=True)
    ]
    report = session.learn(events)
    if items:
        project.store.set_cursor(project.name, online_session.FEEDBACK_CURSOR,
                                 {"after": items[-1].feedback_id})
    return report


def schema_frame(
    rows: list[types.JSON], schema: schemas.Schema, features: list[str]
) -> pd.DataFrame:
    """Logged feature rows as the model's input frame: schema dtypes, `features` in order."""
    return schemas.coerce(pd.DataFrame(rows, columns=features), schema)[features]


def label_of(value: Any, dtype: str) -> Any:
    """A label as JSON sent it, in the target column's type (as the learner learned it).

    >>> label_of(1.0, "int64"), label_of(1, "float64"), label_of(2, "object")
    (1, 1.0, '2')
    """
    if dtype.startswith(("int", "uint")):
        return int(value)
    if dtype.startswith("float"):
        return float(value)
    if dtype == "bool":
        return bool(value)
    return str(value)
