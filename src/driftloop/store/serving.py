"""The serving side of the store: the prediction log, feedback labels and API tokens.

`ServingStore` shares the engine and the clock of a `MetadataStore` (same database, same
transactions semantics; its tables are in `store.serving_tables`). The server's prediction log
writer (`server.predictions`) calls `add_predictions` with a batch of rows in one transaction;
`POST /v1/feedback` calls `add_feedback`; the controller reads `labelled` (feedback joined to
its prediction) to compute live performance; `driftloop tokens` and `server.auth` manage tokens.

Feedback: the first label of a prediction wins. A label is ground truth about something that
happened; the live metric, the concept-drift detector and any evaluation computed from it must
not change after the fact, so a second label for the same prediction is ignored and reported as
a duplicate. Unknown prediction ids make the whole call fail (`NotFoundError` listing them)
with nothing stored, so a client can drop them and resend.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.metadata import MetadataStore
    >>> meta = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> _ = meta.pipelines.ensure("p", {})
    >>> serving = ServingStore(meta)
    >>> row = Prediction("7d1c4a7e-0000-4000-8000-000000000001", "p", "champion", 1, None,
    ...                  {"x": 1.0}, 1, {"0": 0.2, "1": 0.8}, meta.clock.now())
    >>> serving.add_predictions([row])
    1
    >>> serving.add_feedback("p", [(row.id, 1), (row.id, 0)], actor="labeller").stored
    ('7d1c4a7e-0000-4000-8000-000000000001',)
    >>> [(item.prediction.prediction, item.label) for item in serving.labelled("p")]
    [(1, 1)]
    >>> meta.close()
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors, types
from driftloop.store import _engine, _rows, metadata, serving_tables, tables

S = serving_tables
_PREDICTION_COLUMNS = ("id", "pipeline_id", "alias", "version", "key", "features", "prediction",
                       "probabilities", "at")
ROLES = ("predict", "feedback", "admin", "view", "ingest")
"""Token roles; ``view`` opens the dashboard (`driftloop.ui`), ``ingest`` posts batches."""
LABEL_PAGE = 5000
"""Feedback labels `ServingStore.labelled` reads at a time."""
CHUNK = 500
"""Keys in one ``IN`` list (SQLite allows a few thousand bound parameters at most)."""


def hash_secret(secret: str) -> str:
    """The sha256 (hex) a token secret is stored and looked up by (`find_token`)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Prediction:
    """One logged prediction: which alias and model version answered what, for which inputs."""

    id: str
    pipeline: str
    alias: str
    version: int
    key: str | None
    features: types.JSON
    prediction: Any
    probabilities: dict[str, float] | None
    at: datetime


@dataclass(frozen=True)
class Labelled:
    """A prediction joined to its feedback label; `feedback_id` orders labels by arrival."""

    feedback_id: int
    prediction: Prediction
    label: Any
    actor: str
    labelled_at: datetime


@dataclass(frozen=True)
class FeedbackResult:
    """What `add_feedback` did: ids now labelled, and ids ignored because already labelled."""

    stored: tuple[str, ...]
    duplicates: tuple[str, ...]


@dataclass(frozen=True)
class Token:
    """An API token's stored facts; the secret itself is never stored, only its sha256."""

    name: str
    roles: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def has(self, role: str) -> bool:
        return self.active and role in self.roles


class ServingStore:
    """Prediction log, feedback and tokens on the database of `store` (its engine and clock)."""

    def __init__(self, store: metadata.MetadataStore) -> None:
        self.store = store
        self.engine: sa.Engine = store.engine
        self.clock: clocks.Clock = store.clock
        self._pipeline_ids: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"ServingStore({self.store!r})"

    # -- plumbing: the metadata store's own transactions and inserts --------------------------

    def _read(self) -> Any:
        return self.store.db.read()

    def _write(self) -> Any:
        return self.store.db.write()

    def _insert(self, table: sa.Table) -> Any:
        return self.store.db.insert(table)

    def _pid(self, conn: sa.Connection, pipeline: str) -> int:
        pid = self._pipeline_ids.get(pipeline)
        if pid is None:
            p = tables.pipelines
            pid = conn.scalar(sa.select(p.c.id).where(p.c.name == pipeline))
            if pid is None:
                raise errors.NotFoundError(
                    f"pipeline {pipeline!r} does not exist; create it first "
                    "(driftloop run does, from driftloop.yaml)", pipeline=pipeline)
            self._pipeline_ids[pipeline] = int(pid)
        return int(pid)

    def _audit(
        self, conn: sa.Connection, actor: str, action: str, target: str, details: types.JSON,
    ) -> None:
        conn.execute(sa.insert(tables.audit_log).values(
            actor=actor, action=action, target=target, details=_rows.plain(details),
            at=self.clock.now()))

    def ping(self) -> bool:
        """True if the database answers a trivial query."""
        try:
            with self._read() as conn:
                return bool(conn.scalar(sa.text("SELECT 1")) == 1)
        except sa.exc.SQLAlchemyError:
            return False

    # -- predictions ---------------------------------------------------------------------------

    def add_predictions(self, rows: Sequence[Prediction]) -> int:
        """Write predictions in one transaction; rows whose id is already stored are skipped
        (so a retried batch is harmless). Returns how many rows were given."""
        if not rows:
            return 0
        names = {row.pipeline for row in rows} - self._pipeline_ids.keys()
        if names:
            with self._read() as conn:
                for name in names:
                    self._pid(conn, name)
        # built before the transaction: it holds the write lock for the insert alone
        values = [(row.id, self._pipeline_ids[row.pipeline], row.alias, int(row.version), row.key,
                   row.features, row.prediction, row.probabilities, row.at) for row in rows]
        with self._write() as conn:
            _engine.bulk_insert(conn, S.predictions, _PREDICTION_COLUMNS, values, {},
                                skip_conflicts_on="id")
        return len(rows)

    def get_prediction(self, prediction_id: str) -> Prediction:
        with self._read() as conn:
            row = conn.execute(_with_pipeline().where(S.predictions.c.id == prediction_id)).first()
        if row is None:
            raise errors.NotFoundError(
                f"prediction {prediction_id!r} does not exist", prediction=prediction_id)
        return _prediction(row)

    def list_predictions(
        self, pipeline: str, *, version: int | None = None, alias: str | None = None,
        since: datetime | None = None, limit: int | None = None,
    ) -> list[Prediction]:
        """Predictions of `pipeline`, oldest first; with `limit`, only the newest `limit`."""
        p = S.predictions
        with self._read() as conn:
            query = _with_pipeline().where(p.c.pipeline_id == self._pid(conn, pipeline))
            if version is not None:
                query = query.where(p.c.version == version)
            if alias is not None:
                query = query.where(p.c.alias == alias)
            if since is not None:
                query = query.where(p.c.at >= since)
            query = query.order_by(p.c.at.desc(), p.c.id)
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).all()
        return [_prediction(row) for row in reversed(rows)]

    def count_predictions(self, pipeline: str) -> int:
        p = S.predictions
        with self._read() as conn:
            pid = self._pid(conn, pipeline)
            return int(conn.scalar(sa.select(sa.func.count()).where(p.c.pipeline_id == pid)) or 0)

    # -- feedback ------------------------------------------------------------------------------

    def add_feedback(
        self, pipeline: str, labels: Sequence[tuple[str, Any]], *, actor: str,
    ) -> FeedbackResult:
        """Store ground-truth `labels` as `(prediction id, label)` pairs, in one transaction.

        The first label of a prediction wins (later ones, also within `labels`, are returned
        as duplicates). If any id is not a prediction of `pipeline`, nothing is stored and
        `NotFoundError` lists the unknown ids (context ``missing``).
        """
        first: dict[str, Any] = {}
        repeated: list[str] = []
        for prediction_id, label in labels:
            if prediction_id in first:
                repeated.append(prediction_id)
            else:
                first[prediction_id] = _rows.plain(label)
        if not first:
            return FeedbackResult((), ())
        p, f = S.predictions, S.feedback
        ids = list(first)
        with self._write() as conn:
            pid = self._pid(conn, pipeline)
            known = {row.id for row in conn.execute(  # by key: not the pipeline's every row
                sa.select(p.c.id, p.c.pipeline_id).where(p.c.id.in_(ids)))
                if row.pipeline_id == pid}
            missing = [i for i in ids if i not in known]
            if missing:
                shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
                raise errors.NotFoundError(
                    f"{len(missing)} prediction id(s) are not predictions of pipeline "
                    f"{pipeline!r}: {shown}; nothing was stored. Drop them and send again "
                    "(a prediction is logged within a fraction of a second of its answer)",
                    pipeline=pipeline, missing=missing)
            labelled = set(conn.scalars(sa.select(f.c.prediction_id).where(
                f.c.prediction_id.in_(ids))))
            fresh = [i for i in ids if i not in labelled]
            if fresh:
                at = self.clock.now()
                conn.execute(self._insert(f).on_conflict_do_nothing(
                    index_elements=["prediction_id"]), [
                    {"prediction_id": i, "label": first[i], "actor": actor, "at": at}
                    for i in fresh])
        duplicates = [i for i in ids if i in labelled] + repeated
        return FeedbackResult(tuple(fresh), tuple(duplicates))

    def labelled(
        self, pipeline: str, *, after_id: int = 0, version: int | None = None,
        alias: str | None = None, limit: int | None = None,
    ) -> list[Labelled]:
        """Labelled predictions of `pipeline` in label arrival order, those after feedback
        `after_id` only (read incrementally); optionally of one model `version` / `alias`."""
        p, f = S.predictions, S.feedback
        if version is not None:  # one version's labels: found from its predictions (an index)
            query = (
                sa.select(p, tables.pipelines.c.name.label("pipeline"),
                          f.c.id.label("feedback_id"), f.c.label, f.c.actor,
                          f.c.at.label("labelled_at"))
                .select_from(p.join(f, f.c.prediction_id == p.c.id)
                             .join(tables.pipelines, tables.pipelines.c.id == p.c.pipeline_id))
                .where(f.c.id > after_id, p.c.version == version).order_by(f.c.id)
            )
            if alias is not None:
                query = query.where(p.c.alias == alias)
            with self._read() as conn:
                rows = conn.execute(query.where(p.c.pipeline_id == self._pid(conn, pipeline))
                                    .limit(limit)).all()
            return [Labelled(int(row.feedback_id), _prediction(row), row.label, row.actor,
                             clocks.as_utc(row.labelled_at)) for row in rows]
        # The labels after `after_id`, read forward from the feedback key a page at a time,
        # their predictions by key: the work is the new labels', however many predictions
        # the store holds (a join would start from the pipeline's predictions on SQLite).
        found: list[Labelled] = []
        with self._read() as conn:
            pid = self._pid(conn, pipeline)
            while limit is None or len(found) < limit:
                page = conn.execute(
                    sa.select(f.c.id, f.c.prediction_id, f.c.label, f.c.actor, f.c.at)
                    .where(f.c.id > after_id).order_by(f.c.id).limit(LABEL_PAGE)).all()
                if not page:
                    break
                asked = [row.prediction_id for row in page]
                served: dict[str, Any] = {}
                for start in range(0, len(asked), CHUNK):
                    served.update((row.id, row) for row in conn.execute(sa.select(p).where(
                        p.c.id.in_(asked[start:start + CHUNK]))))
                for label in page:
                    row = served.get(label.prediction_id)
                    if row is None or row.pipeline_id != pid or (
                            alias is not None and row.alias != alias):
                        continue
                    found.append(Labelled(
                        int(label.id), _prediction(row, pipeline), label.label, label.actor,
                        clocks.as_utc(label.at)))
                after_id = page[-1].id
        return found[:limit]

    # -- tokens --------------------------------------------------------------------------------

    def add_token(self, name: str, sha256: str, roles: Sequence[str], *, actor: str) -> Token:
        """Store a token by the sha256 of its secret (audited as ``token.create``)."""
        roles = tuple(dict.fromkeys(roles))
        unknown = sorted(set(roles) - set(ROLES))
        if not name or len(name) > 200:
            raise errors.ConfigError(f"a token name must have 1 to 200 characters; got {name!r}")
        if unknown or not roles:
            raise errors.ConfigError(
                f"token roles must be some of {', '.join(ROLES)}; got {', '.join(roles) or 'none'}",
                token=name)
        at = self.clock.now()
        try:
            with self._write() as conn:
                conn.execute(sa.insert(S.tokens).values(
                    name=name, sha256=sha256, roles=list(roles), created_at=at, revoked_at=None))
                self._audit(conn, actor, "token.create", f"token/{name}", {"roles": list(roles)})
        except sa.exc.IntegrityError as exc:
            raise errors.ConflictError(
                f"a token named {name!r} already exists (names stay taken after revocation); "
                "choose another name", token=name) from exc
        return Token(name, roles, clocks.as_utc(at), None)

    def find_token(self, sha256: str) -> Token | None:
        """The token whose secret hashes to `sha256` (revoked ones too), or None."""
        with self._read() as conn:
            row = conn.execute(sa.select(S.tokens).where(S.tokens.c.sha256 == sha256)).first()
        return None if row is None else _token(row)

    def token_hashes(self) -> dict[str, Token]:
        """Every active token by the sha256 of its secret (the server caches this)."""
        t = S.tokens
        with self._read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.revoked_at.is_(None))).all()
        return {row.sha256: _token(row) for row in rows}

    def list_tokens(self) -> list[Token]:
        with self._read() as conn:
            rows = conn.execute(sa.select(S.tokens).order_by(S.tokens.c.created_at)).all()
        return [_token(row) for row in rows]

    def revoke_token(self, name: str, *, actor: str) -> Token:
        """Revoke a token for good (audited as ``token.revoke``); revoking twice is a no-op."""
        t = S.tokens
        with self._write() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == name)).first()
            if row is None:
                raise errors.NotFoundError(f"no token is named {name!r}", token=name)
            if row.revoked_at is None:
                conn.execute(sa.update(t).where(t.c.name == name)
                             .values(revoked_at=self.clock.now()))
                self._audit(conn, actor, "token.revoke", f"token/{name}", {})
            row = conn.execute(sa.select(t).where(t.c.name == name)).one()
        return _token(row)


def _with_pipeline() -> sa.Select[Any]:
    p = S.predictions
    return sa.select(p, tables.pipelines.c.name.label("pipeline")).join(
        tables.pipelines, tables.pipelines.c.id == p.c.pipeline_id)



def _prediction(row: Any, pipeline: str | None = None) -> Prediction:
    return Prediction(
        id=row.id, pipeline=pipeline or row.pipeline, alias=row.alias, version=int(row.version),
        key=row.key, features=row.features, prediction=row.prediction,
        probabilities=row.probabilities,
        at=clocks.as_utc(row.at),
    )


def _token(row: Any) -> Token:
    revoked = None if row.revoked_at is None else clocks.as_utc(row.revoked_at)
    return Token(row.name, tuple(row.roles), clocks.as_utc(row.created_at), revoked)
