"""`driftloop package` (one model version as a self-contained bundle folder with its
Dockerfile, `deploy.package`) and `driftloop deploy k8s` (Kubernetes manifests, `deploy.k8s`).
Registered by `cli.main`."""

from __future__ import annotations

from pathlib import Path

import typer

from driftloop.cli import console

SPEC = typer.Option(Path("driftloop.yaml"), "--spec", "-s", help="The pipeline spec.")



def package(
    ref: str = typer.Argument(..., help="A version number or an alias (champion, ...)."),
    out: Path = typer.Option(..., "--out", "-o", help="The bundle folder (new or empty)."),
    spec: Path = SPEC,
    wheels: bool = typer.Option(
        False, "--wheels", help="Add a wheel of every requirement, so the image builds with no "
        "package index (fetched with pip's own configuration)."),
) -> None:
    """Write a model version as a bundle: model (sha256-checked on load), input schema,
    metadata and lineage, requirements.lock and a Dockerfile. Serve it with
    `driftloop serve --bundle DIR`, or build the image: `docker build DIR`."""
    from driftloop.controller import project as projects
    from driftloop.deploy import package as packaging

    project = console.guard(lambda: projects.open_project(spec))
    try:
        made = console.guard(lambda: packaging.package(project, ref, out, wheels=wheels))
    finally:
        project.close()
    extra = f", {made.wheels} wheels" if wheels else ""
    console.ok(f"{project.name} v{made.version} packaged in {made.path} "
               f"({made.size / 1e6:.1f} MB, {len(made.pins)} pinned requirements{extra})")
    console.info(f"serve it: driftloop serve --bundle {made.path}; "
                 f"build its image: docker build -t {project.name}:v{made.version} {made.path}")
