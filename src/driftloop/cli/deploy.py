"""`driftloop package` (one model version as a self-contained bundle folder with its
Dockerfile, `deploy.package`) and `driftloop deploy k8s` (Kubernetes manifests, `deploy.k8s`).
Registered by `cli.main`."""

from __future__ import annotations

from pathlib import Path

import typer

from driftloop.cli import console, options

app = typer.Typer(help="Deployment files for a pipeline.", no_args_is_help=True)



def package(
    ref: str = typer.Argument(..., help="A version number or an alias (champion, ...)."),
    out: Path = typer.Option(..., "--out", "-o", help="The bundle folder (new or empty)."),
    spec: Path = options.SPEC,
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


@app.command()
def k8s(
    out: Path = typer.Option(..., "--out", "-o", help="The folder for the manifests."),
    spec: Path = options.SPEC,
    image: str = typer.Option(
        ..., "--image", help="An image with driftloop and the trainer's packages (e.g. one "
        "built from a bundle's Dockerfile)."),
    cronjob: bool = typer.Option(
        False, "--cronjob", help="The controller as a CronJob of `driftloop tick` instead of a "
        "Deployment of `driftloop run`."),
    schedule: str = typer.Option("*/10 * * * *", help="The CronJob's schedule."),
    namespace: str | None = typer.Option(None, help="Namespace of every manifest."),
) -> None:
    """Kubernetes manifests: the spec as a ConfigMap, a Deployment + Service + HPA of
    `driftloop serve`, and the controller. The store URL comes from the Secret
    `driftloop-store` (key `url`), which you create: never from the manifests."""
    from driftloop.core import config
    from driftloop.deploy import k8s as kube

    loaded = console.guard(lambda: config.load_spec(spec))
    manifests = kube.render(loaded, spec.resolve().parent, image=image, cronjob=cronjob,
                            schedule=schedule, namespace=namespace)
    for path in kube.write(manifests, out):
        console.ok(f"wrote {path}")
    if "://" not in loaded.artifacts.url:
        console.info(f"artifacts are in the local folder {loaded.artifacts.url!r}: in a cluster, "
                     "point `artifacts:` at shared storage (s3://...) so every pod sees them")
    console.info(f"then: kubectl create secret generic {kube.STORE_SECRET} "
                 "--from-literal=url=STORE_URL && kubectl apply -f " + str(out))
