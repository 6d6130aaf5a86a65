"""`--json`: a command prints one JSON document on stdout instead of tables, for scripts.

The keys of each document are listed here, one function per record kind, so they stay the same
from release to release (a new key may appear; none is renamed or dropped). Times are ISO 8601
with their offset; a number that is not finite (NaN) is null. Errors still go to stderr as
text with exit code 1, and nothing else is written to stdout, so
``driftloop models list --json | python -c 'import json, sys; json.load(sys.stdin)'`` works.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from driftloop.core import finite
from driftloop.store import entities


def emit(document: Mapping[str, Any]) -> None:
    """Write `document` to stdout, NaN and infinities as null."""
    sys.stdout.write(json.dumps(finite.or_none(document), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def when(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def version(found: entities.ModelVersion, aliases: Sequence[str] = ()) -> dict[str, Any]:
    """A model version: its number, aliases, metrics, gate verdict and where its file is."""
    gate = found.gate_report or {}
    return {
        "version": found.version,
        "created_at": when(found.created_at),
        "aliases": sorted(aliases),
        "metrics": dict(found.metrics),
        "gate": {"passed": gate.get("passed"), "reason": gate.get("reason")},
        "run_id": found.run_id,
        "batch_ids": list(found.batch_ids),
        "artifact_uri": found.artifact_uri,
        "sha256": found.sha256,
    }


def batch(found: entities.Batch) -> dict[str, Any]:
    """A batch: where it came from, its rows and period, its status and reasons."""
    return {
        "id": found.id,
        "source_uri": found.source_uri,
        "rows": found.rows,
        "start": when(found.start),
        "end": when(found.end),
        "status": found.status,
        "reasons": found.reasons,
        "quality": found.quality,
        "quality_rows": found.quality_rows,
        "requeued_from": found.requeued_from,
        "created_at": when(found.created_at),
    }
