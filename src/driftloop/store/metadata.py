"""The metadata store: one facade over parts that share one database.

`MetadataStore` holds the parts, each a small class over the shared `db`
(`_database.Database`: engine, clock, transactions, fencing):

=============== ===================================================================
``pipelines``   pipelines, their specs and schemas (`_pipelines`)
``batches``     batches, their stream messages, source cursors (`_batches`)
``profiles``    data profiles of batches and training data (`_batches`)
``runs``        training runs, their lineage, metrics and search trials (`_runs`)
``versions``    model versions (`_model_versions`)
``aliases``     aliases and their moves, rollbacks (`_aliases`)
``decisions``   the policy's decisions and their evidence (`_decisions`)
``evaluations`` how versions scored on labelled batches (`_evaluations`)
``findings``    fairness and explanation reports (`_findings`)
``audit``       the audit log (`_audit_log`)
``leases``      the controller lease and fenced writes (`_leases`)
=============== ===================================================================

Every method is one transaction and returns the frozen dataclasses of `store.entities` (rows
never leave). Every timestamp written comes from the injected clock, so a backtest runs in
simulated time. The other modules of this package that keep their own tables (`retention`,
`outbox`, `serving`, ...) read and write through `db` too.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> store = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> store.pipelines.ensure("churn", {"trainer": "sklearn"}).name
    'churn'
    >>> store.close()
"""

from __future__ import annotations

from typing import Self

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.store import (
    _aliases,
    _audit_log,
    _batches,
    _database,
    _decisions,
    _evaluations,
    _findings,
    _leases,
    _model_versions,
    _pipelines,
    _runs,
    migrations,
)


class MetadataStore:
    """Stored state of every pipeline, on SQLite (default) or PostgreSQL, chosen by `url`."""

    def __init__(self, url: str, clock: clocks.Clock | None = None) -> None:
        self.db = _database.Database(url, clock if clock is not None else clocks.SystemClock())
        self.pipelines = _pipelines.Pipelines(self.db)
        self.batches = _batches.Batches(self.db)
        self.profiles = _batches.Profiles(self.db)
        self.runs = _runs.Runs(self.db)
        self.versions = _model_versions.ModelVersions(self.db)
        self.aliases = _aliases.Aliases(self.db)
        self.decisions = _decisions.Decisions(self.db)
        self.evaluations = _evaluations.Evaluations(self.db)
        self.findings = _findings.Findings(self.db)
        self.audit = _audit_log.AuditLog(self.db)
        self.leases = _leases.Leases(self.db)

    @classmethod
    def open(cls, url: str, clock: clocks.Clock | None = None) -> Self:
        """A store on `url` with its schema migrated to the newest revision (Alembic)."""
        store = cls(url, clock)
        migrations.upgrade(store.engine)
        return store

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        return migrations.current_revision(self.engine)

    @property
    def url(self) -> str:
        return self.db.url

    @property
    def clock(self) -> clocks.Clock:
        return self.db.clock

    @property
    def engine(self) -> sa.Engine:
        return self.db.engine

    @property
    def region(self) -> str | None:
        """The region (`regions:`) recorded with every batch, run and version written."""
        return self.db.region

    @region.setter
    def region(self, region: str | None) -> None:
        self.db.region = region

    @property
    def shared(self) -> bool:
        """Whether other processes can open this store (False for in-memory SQLite, where no
        second controller can exist and the lease is a formality)."""
        url = self.engine.url
        return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))

    def __repr__(self) -> str:
        shown = sa.engine.make_url(self.url).render_as_string(hide_password=True)
        return f"{type(self).__name__}({shown!r})"
