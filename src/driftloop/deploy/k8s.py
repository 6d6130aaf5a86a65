"""Kubernetes manifests for one pipeline (`driftloop deploy k8s`).

`render` returns file name -> list of manifests:

    configmap.yaml   the spec (without its ``store``) and the project's trainer modules, mounted
                     at /etc/driftloop in every pod
    serve.yaml       a Deployment of ``driftloop serve`` (readiness /readyz, liveness /healthz,
                     resource requests and limits, non-root, read-only root file system) and its
                     Service
    hpa.yaml         a HorizontalPodAutoscaler on CPU and on requests per second per pod, the
                     latter through the Prometheus adapter rule in `ADAPTER_RULE`
    controller.yaml  ``driftloop run`` as a Deployment (its replicas take turns through the
                     pipeline's lease, so more than one is safe), or with ``cronjob``
                     ``driftloop tick --json --exit-zero`` as a CronJob

Nothing secret is written: the store URL reaches every pod from the Secret `STORE_SECRET` (key
``url``) as ``DRIFTLOOP_STORE_URL``, and the optional Secret `CREDENTIALS_SECRET` is passed whole
as environment (artifact store keys, e.g. AWS_ACCESS_KEY_ID). Create them with kubectl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from driftloop.controller import project as projects
from driftloop.core import config
from driftloop.deploy import dockerfile

STORE_SECRET = "driftloop-store"
CREDENTIALS_SECRET = "driftloop-credentials"
SPEC_DIR = "/etc/driftloop"
PORT = dockerfile.PORT
HEALTH, READY, METRICS = "/healthz", "/readyz", "/metrics"
REQUESTS_METRIC = "driftloop_requests_per_second"
ADAPTER_RULE = """\
- seriesQuery: 'driftloop_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "driftloop_requests_total", as: "driftloop_requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
"""
"""The prometheus-adapter rule (an item of its ``rules:``) that gives the HPA `REQUESTS_METRIC`."""


def render(
    spec: config.PipelineSpec, base_dir: Path, *, image: str, cronjob: bool = False,
    schedule: str = "*/10 * * * *", namespace: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The manifests of `spec`'s pipeline, by file name; `base_dir` holds its trainer modules."""
    name = f"driftloop-{spec.name.lower().replace('_', '-').replace('.', '-')}"
    meta = {"namespace": namespace} if namespace else {}
    labels = {"app.kubernetes.io/name": "driftloop", "app.kubernetes.io/instance": name}
    files = {"driftloop.yaml": yaml.safe_dump(_spec_without_store(spec), sort_keys=False)}
    for module in projects.trusted_modules(spec):
        path = base_dir / f"{module.replace('.', '/')}.py"
        if "." not in module and path.is_file():
            files[path.name] = path.read_text()
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"{name}-spec", **meta, "labels": labels}, "data": files}
    serve_labels = {**labels, "app.kubernetes.io/component": "serve"}
    serve_pod = _pod(name, image, [
        "driftloop", "serve", "--spec", f"{SPEC_DIR}/driftloop.yaml", "--host", "0.0.0.0",
        "--port", str(PORT)], serve=True)
    serve = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{name}-serve", **meta, "labels": serve_labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": serve_labels},
                 "template": {"metadata": {"labels": serve_labels, "annotations": {
                     "prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
                     "prometheus.io/path": METRICS}}, "spec": serve_pod}}}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"{name}-serve", **meta, "labels": serve_labels},
        "spec": {"selector": serve_labels, "ports": [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{name}-serve", **meta, "labels": serve_labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": f"{name}-serve"},
            "minReplicas": 2, "maxReplicas": 8,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": 70}}},
                {"type": "Pods", "pods": {"metric": {"name": REQUESTS_METRIC}, "target": {
                    "type": "AverageValue", "averageValue": "100"}}}]}}
    control_labels = {**labels, "app.kubernetes.io/component": "controller"}
    spec_path = f"{SPEC_DIR}/driftloop.yaml"
    if cronjob:
        job_pod = _pod(name, image, ["driftloop", "tick", "--json", "--exit-zero", "--spec",
                                     spec_path], serve=False)
        controller = {
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": f"{name}-tick", **meta, "labels": control_labels},
            "spec": {"schedule": schedule, "concurrencyPolicy": "Forbid",
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"spec": {"backoffLimit": 2, "template": {
                         "metadata": {"labels": control_labels},
                         "spec": {**job_pod, "restartPolicy": "Never"}}}}}}
    else:
        controller = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{name}-controller", **meta, "labels": control_labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": control_labels},
                     "template": {"metadata": {"labels": control_labels}, "spec": _pod(
                         name, image, ["driftloop", "run", "--spec", spec_path, "--every", "60"],
                         serve=False)}}}
    return {"configmap.yaml": [configmap], "serve.yaml": [serve, service], "hpa.yaml": [hpa],
            "controller.yaml": [controller]}


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types
    """Multi-line text (the spec, a trainer module) as a literal block, readable in the file."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def write(manifests: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    """Write `manifests` as YAML files in `out`; the HPA file starts with `ADAPTER_RULE`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, documents in manifests.items():
        text = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False)
        if file_name == "hpa.yaml":
            rule = "".join(f"#   {line}\n" for line in ADAPTER_RULE.splitlines())
            text = ("# The requests-per-second metric comes from this prometheus-adapter rule "
                    "(in its `rules:`):\n" + rule + text)
        (out / file_name).write_text(text)
        written.append(out / file_name)
    return written


def _pod(name: str, image: str, command: list[str], *, serve: bool) -> dict[str, Any]:
    """A pod spec running `command` as uid 10001 with the spec mounted and the Secrets' env."""
    container: dict[str, Any] = {
        "name": "serve" if serve else "controller",
        "image": image,
        "command": command,
        "workingDir": SPEC_DIR,
        "env": [{"name": projects.STORE_ENV, "valueFrom": {
            "secretKeyRef": {"name": STORE_SECRET, "key": "url"}}}],
        "envFrom": [{"secretRef": {"name": CREDENTIALS_SECRET, "optional": True}}],
        "volumeMounts": [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "resources": ({"requests": {"cpu": "250m", "memory": "512Mi"},
                       "limits": {"cpu": "1", "memory": "1Gi"}} if serve else
                      {"requests": {"cpu": "500m", "memory": "1Gi"},
                       "limits": {"cpu": "2", "memory": "4Gi"}}),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    if serve:
        container["ports"] = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
        container["readinessProbe"] = {"httpGet": {"path": READY, "port": "http"},
                                       "periodSeconds": 5, "failureThreshold": 3}
        container["livenessProbe"] = {"httpGet": {"path": HEALTH, "port": "http"},
                                      "initialDelaySeconds": 10, "periodSeconds": 10}
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": dockerfile.UID,
                            "runAsGroup": dockerfile.UID},
        "containers": [container],
        "volumes": [{"name": "spec", "configMap": {"name": f"{name}-spec"}},
                    {"name": "tmp", "emptyDir": {}}],
    }


def _spec_without_store(spec: config.PipelineSpec) -> dict[str, Any]:
    found = spec.model_dump(mode="json", exclude_unset=True)
    found.pop("store", None)
    return found

