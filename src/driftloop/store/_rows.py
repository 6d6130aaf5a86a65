"""Row -> entity conversion for `store.metadata.MetadataStore`; rows never leave the store.

Each function takes a row that carries its table's columns plus the pipeline's name under the
label ``pipeline`` (see `MetadataStore._select`) and returns the frozen dataclass of
`store.entities`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from driftloop.core import types
from driftloop.store import entities


def plain(value: Any) -> Any:
    """`value` as it comes back from a JSON column (tuples become lists, keys strings).

    >>> plain({"a": (1, 2), 3: None})
    {'a': [1, 2], '3': None}
    """
    return json.loads(json.dumps(value))


def diff_keys(old: types.JSON, new: types.JSON) -> list[str]:
    """Top-level keys added, removed or changed between two JSON objects, sorted.

    >>> diff_keys({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0})
    ['b', 'c']
    """
    return sorted(key for key in old.keys() | new.keys() if old.get(key, ...) != new.get(key, ...))


def pipeline(row: Any) -> entities.Pipeline:
    return entities.Pipeline(
        id=row.id, name=row.name, spec=row.spec, schema=row.schema, created_at=row.created_at,
    )


def batch(row: Any) -> entities.Batch:
    quality = row.quality or {}
    return entities.Batch(
        id=row.id, pipeline=row.pipeline, source_uri=row.source_uri, fingerprint=row.fingerprint,
        rows=row.rows, start=row.start, end=row.end, status=row.status, reasons=row.reasons,
        data_uri=row.data_uri, data_sha256=row.data_sha256, created_at=row.created_at,
        quality=quality.get("columns", {}), quality_rows=int(quality.get("rows", 0)),
        spec_sha256=row.spec_sha256, requeued_from=row.requeued_from,
        archived_at=row.archived_at, region=row.region,
    )


def quality_json(columns: dict[str, list[str]], rows: int) -> types.JSON | None:
    """What the `quality` column holds for these signals (None: no signal).

    >>> quality_json({"x": ["x: 1 value above ..."]}, 1)
    {'columns': {'x': ['x: 1 value above ...']}, 'rows': 1}
    """
    return {"columns": plain(columns), "rows": int(rows)} if columns else None


def profile(row: Any) -> entities.Profile:
    return entities.Profile(
        id=row.id, pipeline=row.pipeline, batch_id=row.batch_id, profile=row.profile,
        created_at=row.created_at,
    )


def run(row: Any, batch_ids: Sequence[int]) -> entities.TrainingRun:
    return entities.TrainingRun(
        id=row.id, pipeline=row.pipeline, trainer=row.trainer, params=row.params,
        batch_ids=tuple(batch_ids), decision_id=row.decision_id, status=row.status,
        compute_seconds=row.compute_seconds, error=row.error, started_at=row.started_at,
        finished_at=row.finished_at, trainer_sha256=row.trainer_sha256, region=row.region,
    )


def metric(row: Any) -> entities.MetricPoint:
    value = math.nan if row.value is None else row.value
    return entities.MetricPoint(
        run_id=row.run_id, key=row.key, value=value, step=row.step, at=row.at,
    )


def model_version(row: Any, batch_ids: Sequence[int]) -> entities.ModelVersion:
    return entities.ModelVersion(
        id=row.id, pipeline=row.pipeline, version=row.version, run_id=row.run_id,
        artifact_uri=row.artifact_uri, sha256=row.sha256, metrics=row.metrics,
        profile_id=row.profile_id, gate_report=row.gate_report, created_at=row.created_at,
        batch_ids=tuple(batch_ids), calibration_uri=row.calibration_uri,
        calibration_sha256=row.calibration_sha256, region=row.region,
    )


def alias_move(row: Any) -> entities.AliasMove:
    return entities.AliasMove(
        id=row.id, pipeline=row.pipeline, alias=row.alias, version=row.version,
        previous=row.previous, actor=row.actor, reason=row.reason, at=row.at,
        action=row.action or "promote",
    )


def decision(row: Any) -> entities.Decision:
    return entities.Decision(
        id=row.id, pipeline=row.pipeline, kind=row.kind, fired=bool(row.fired),
        evidence=row.evidence, caused_by=row.caused_by or {}, at=row.at,
    )


def evaluation(row: Any) -> entities.Evaluation:
    return entities.Evaluation(
        id=row.id, pipeline=row.pipeline, batch_id=row.batch_id, version=row.version,
        metric=row.metric, value=row.value, rows=row.rows, errors=tuple(row.errors), at=row.at,
        estimated_value=row.estimated_value, estimated_rows=row.estimated_rows or 0,
    )


def audit(row: Any) -> entities.AuditEntry:
    return entities.AuditEntry(
        id=row.id, actor=row.actor, action=row.action, target=row.target,
        details=row.details or {}, at=row.at,
    )


def lease(row: Any) -> entities.Lease:
    return entities.Lease(
        pipeline=row.pipeline, holder=row.holder, token=row.token, expires_at=row.expires_at,
    )


def group(pairs: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """``(key, value)`` pairs -> ``{key: [values in order]}``.

    >>> group([(1, 10), (2, 20), (1, 11)])
    {1: [10, 11], 2: [20]}
    """
    out: dict[int, list[int]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out
