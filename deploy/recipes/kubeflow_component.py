"""Kubeflow Pipelines (KFP v2): `driftloop tick` as a container component, in a pipeline that a
recurring run schedules. Compile with `python kubeflow_component.py` (writes
driftloop_tick.yaml) and upload it to Kubeflow.

The image holds driftloop and the project folder at /opt/project; the store URL comes from the
Kubernetes Secret `driftloop-store` (key `url`), mounted as DRIFTLOOP_STORE_URL.
"""

from __future__ import annotations

from kfp import compiler, dsl, kubernetes

IMAGE = "driftloop-controller:latest"  # build from your project folder; see the README


@dsl.container_component
def driftloop_tick() -> dsl.ContainerSpec:
    """One reconcile step; exits 0 unless it failed (the JSON line in the log says what it did)."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["driftloop", "tick", "--json", "--exit-zero"],
        args=["--spec", "/opt/project/driftloop.yaml"],
    )


@dsl.pipeline(name="driftloop-tick", description="One driftloop reconcile step")
def pipeline() -> None:
    step = driftloop_tick()
    kubernetes.use_secret_as_env(
        step, secret_name="driftloop-store", secret_key_to_env={"url": "DRIFTLOOP_STORE_URL"})


if __name__ == "__main__":
    compiler.Compiler().compile(pipeline, "driftloop_tick.yaml")
