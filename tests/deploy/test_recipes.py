"""The orchestrator recipes under deploy/recipes/ as far as this machine can check them: the
Python files compile and run `driftloop tick`; the YAML files parse and run `driftloop tick`;
the Kubernetes CronJob validates against the Kubernetes schemas. (Airflow, KFP and the cloud
SDKs are not installed here; the recipes import them, so they are parsed, not run.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[2] / "deploy" / "recipes"
EXPECTED = {"airflow_dag.py", "kubeflow_component.py", "sagemaker_job.py", "azureml_job.yaml",
            "vertex_job.yaml", "argo_cronworkflow.yaml", "cronjob.yaml"}


def test_every_recipe_is_there() -> None:
    assert {path.name for path in RECIPES.iterdir()} >= EXPECTED


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.endswith(".py")))
def test_python_recipes_compile_and_tick(name: str) -> None:
    text = (RECIPES / name).read_text()
    tree = ast.parse(text, filename=name)
    compile(tree, name, "exec")
    strings = [node.value for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert any("driftloop tick" in s for s in strings) or _runs_tick(text)
    assert ast.get_docstring(tree)


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.endswith(".yaml")))
def test_yaml_recipes_parse_and_tick(name: str) -> None:
    document = yaml.safe_load((RECIPES / name).read_text())
    assert isinstance(document, dict)
    assert _runs_tick(yaml.safe_dump(document, default_flow_style=True, width=1000))


def test_the_cronjob_recipe_validates() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    document = yaml.safe_load((RECIPES / "cronjob.yaml").read_text())
    for version in ("1.29.0", "1.33.0"):
        kubernetes_validate.validate(document, version, strict=True)


def _runs_tick(text: str) -> bool:
    """True if `text` runs `driftloop tick`, as one command line or as a list of arguments."""
    flat = " ".join(text.replace('"', " ").replace("'", " ").replace(",", " ").split())
    return "driftloop tick" in flat
