"""The serving schema: the prediction log, feedback labels, API tokens and per-alias stats.

Defined on the same `MetaData` as `store.tables` (importing this module registers them there),
so one comparison of that `MetaData` against the database covers every table; the Alembic
revisions `0002_serving` and `0003_serving_stats` create them. `store.serving.ServingStore`
queries them; the server (`driftloop.server`) writes predictions and feedback through it,
`driftloop tokens` the tokens; `store.serving_stats` reads and writes the stats.

Prediction ids are UUID text chosen by the server (they are handed to the client before the
row is written); the server's are time-ordered (version 7), so the primary key's index grows
at its end. A prediction keeps which alias and which model version answered, so shadow,
canary and A/B traffic can later be told apart and compared on the same labels.
"""

from __future__ import annotations

import sqlalchemy as sa

from driftloop.store import column_types, tables

T = tables
C = column_types

predictions = sa.Table(
    "predictions", T.metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "pipeline_id", C.Id, sa.ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False,
    ),
    sa.Column("alias", sa.String(50), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("features", C.Json, nullable=False),
    sa.Column("prediction", C.Json, nullable=True),
    sa.Column("probabilities", C.Json, nullable=True),
    sa.Column("at", C.UTCDateTime, nullable=False),
    sa.Index(None, "pipeline_id", "at"),
    sa.Index(None, "pipeline_id", "version", "at"),
)

feedback = sa.Table(
    "feedback", T.metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    sa.Column(
        "prediction_id", sa.String(36), sa.ForeignKey("predictions.id", ondelete="CASCADE"),
        nullable=False, unique=True,
    ),
    sa.Column("label", C.Json, nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", C.UTCDateTime, nullable=False),
)

tokens = sa.Table(
    "tokens", T.metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("roles", C.Json, nullable=False),
    sa.Column("created_at", C.UTCDateTime, nullable=False),
    sa.Column("revoked_at", C.UTCDateTime, nullable=True),
)

serving_stats = sa.Table(
    "serving_stats", T.metadata,
    sa.Column(
        "pipeline_id", C.Id, sa.ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False,
    ),
    sa.Column("minute", C.UTCDateTime, nullable=False),
    sa.Column("process", sa.String(100), nullable=False),
    sa.Column("alias", sa.String(50), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("latency", C.Json, nullable=False),
    sa.PrimaryKeyConstraint("pipeline_id", "minute", "process", "alias", "version"),
)
"""Per minute, server process, alias and version: requests, model errors and a latency histogram
(bucket index -> count, `store.serving_stats.BOUNDS_MS`); revision `0003_serving_stats`."""
