"""Export a model version as ONNX, after checking it answers like the model on stored rows.

`export_onnx` loads the version's model (sha256-checked), converts it (`train.onnx_format`),
scores the pipeline's newest stored rows with both, and writes the file only when they agree.
Every attempt is recorded on the version (`store.transfers`): a passing export with the ONNX
file kept as an artifact (the server loads it from there for ``serving.runtime: onnx``), a
refused one with its reason, so `driftloop models show` tells both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.core import errors
from driftloop.data import calendar
from driftloop.store import transfers
from driftloop.train import onnx_format

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.controller import project as projects
    from driftloop.store import entities

PARITY_ROWS = 2000
"""How many of the newest stored rows the parity check scores by default."""


@dataclass(frozen=True)
class Exported:
    """A written export: where, and the parity report it passed."""

    path: Path
    transfer: entities.Transfer


def newest_rows(project: projects.Project, rows: int) -> pd.DataFrame:
    """The model input (`data.calendar.model_input`) of the newest `rows` rows of the
    pipeline's accepted batches, newest batch last; `NotFoundError` when none are stored."""
    import pandas as pd

    frames: list[pd.DataFrame] = []
    found = 0
    batches = project.store.batches.list(project.name, status="accepted")
    for batch in reversed(batches):
        if batch.data_uri is None or batch.data_sha256 is None:
            continue
        frame = project.artifacts.get_frame(batch.data_uri, batch.data_sha256)
        frames.insert(0, frame)
        found += len(frame)
        if found >= rows:
            break
    if not found:
        raise errors.NotFoundError(
            f"pipeline {project.name!r} has no stored rows to check the export on; "
            "ingest a batch first (driftloop ingest or driftloop tick)", pipeline=project.name)
    return calendar.model_input(project.spec, pd.concat(frames, ignore_index=True).tail(rows))


def export_onnx(
    project: projects.Project, number: int, out: Path, *, actor: str, rows: int = PARITY_ROWS,
) -> Exported:
    """Convert version `number` to ONNX, check parity on the newest `rows` stored rows and
    write `out`; `FormatError` with the reason (recorded on the version) otherwise."""
    version = project.store.versions.get(project.name, number)
    model = project.artifacts.get_model(version.artifact_uri, version.sha256)
    frame = newest_rows(project, rows)
    columns = [str(c) for c in getattr(model, "feature_names_in_", frame.columns)]
    record = transfers.TransferStore(project.store)
    try:
        frame = frame[columns]
        data = onnx_format.convert(model, frame)
        onnx = onnx_format.OnnxModel(data, columns, getattr(model, "classes_", None))
        report: dict[str, Any] = onnx_format.check_parity(model, onnx, frame)
    except (errors.FormatError, KeyError) as exc:
        reason = exc.message if isinstance(exc, errors.FormatError) else (
            f"the model reads columns the stored rows do not have: {exc}")
        record.add(project.name, number, direction="export", format="onnx",
                   location=str(out), artifact=None, passed=False,
                   report={"passed": False, "reason": reason}, actor=actor)
        raise errors.FormatError(f"v{number} cannot be exported as ONNX: {reason}",
                                     pipeline=project.name, version=number) from exc
    report["columns"] = columns
    if not report["passed"]:
        record.add(project.name, number, direction="export", format="onnx",
                   location=str(out), artifact=None, passed=False, report=report, actor=actor)
        raise errors.FormatError(
            f"v{number} fails the ONNX parity check on {report['rows']} stored rows: "
            f"{report['reason']}; not exported", pipeline=project.name, version=number)
    artifact = project.artifacts.put_bytes(data, suffix=".onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    transfer = record.add(
        project.name, number, direction="export", format="onnx", location=str(out.resolve()),
        artifact=(artifact.uri, artifact.sha256), passed=True, report=report, actor=actor)
    return Exported(out, transfer)
