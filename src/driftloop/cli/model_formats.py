"""`driftloop models export` (ONNX after a parity check, or an MLflow model directory) and
`driftloop models import` (an MLflow model directory as a new version).

Both are recorded on the version (`store.transfers`) and shown by `driftloop models show`.
"""

from __future__ import annotations

import getpass
from enum import StrEnum
from pathlib import Path

import typer

from driftloop.cli import console, options


class Format(StrEnum):
    onnx = "onnx"
    mlflow = "mlflow"


def export(
    version: int = typer.Argument(..., help="Version number."),
    format: Format = typer.Option(..., "--format", "-f", help="onnx (a file) or mlflow (a "
                                  "folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="The file (onnx) or folder (mlflow)."),
    rows: int = typer.Option(2000, min=1, help="ONNX: how many of the newest stored rows the "
                             "parity check scores."),
    actor: str | None = options.ACTOR,
    spec: Path = options.SPEC,
) -> None:
    """Export a version: ONNX only if it answers like the model on the newest stored rows
    (the same class on >= 99.9% of them, probabilities within 1e-5)."""
    from driftloop.controller import exports, mlflow_format
    from driftloop.controller import project as projects

    project = console.guard(lambda: projects.open_project(spec))
    who = actor or getpass.getuser()
    try:
        if format is Format.onnx:
            done = console.guard(
                lambda: exports.export_onnx(project, version, out, actor=who, rows=rows))
            report = done.transfer.report
            console.ok(f"v{version} → {out} (ONNX): {_parity(report)}")
        else:
            written = console.guard(
                lambda: mlflow_format.export_mlflow(project, version, out, actor=who))
            console.ok(f"v{version} → {out} (MLflow model: "
                       f"{', '.join(written.transfer.report['files'])})")
    finally:
        project.close()


def import_model(
    folder: Path = typer.Argument(..., help="An MLflow model directory (with MLmodel)."),
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle",
        help="Load a pickled model (runs any code it names): only for a folder whose origin you "
             "know."),
    actor: str | None = options.ACTOR,
    spec: Path = options.SPEC,
) -> None:
    """Register an MLflow model directory's scikit-learn model as the next version."""
    from driftloop.controller import mlflow_format
    from driftloop.controller import project as projects

    project = console.guard(lambda: projects.open_project(spec))
    try:
        done = console.guard(lambda: mlflow_format.import_mlflow(
            project, folder, actor=actor or getpass.getuser(), trust_pickle=trust_pickle))
        console.ok(f"imported {folder} as v{done.version} "
                   f"({done.transfer.report['serialization_format']}); promote it with "
                   f"`driftloop models promote {done.version}`")
    finally:
        project.close()


def _parity(report: dict[str, object]) -> str:
    if "same_class" in report:
        return (f"same class on {float(str(report['same_class'])):.4%} of {report['rows']} "
                f"stored rows, max probability delta "
                f"{float(str(report['max_probability_delta'])):.2g}")
    return (f"max relative delta {float(str(report['max_relative_delta'])):.2g} on "
            f"{report['rows']} stored rows")
