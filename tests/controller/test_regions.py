"""Regions and data residency: a spec in which one region touches another's data is refused with
the reason, each region's process works on its own store, artifacts and source and records its
region, and the global view reads counts and metrics from the metadata tables only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import specs
import sqlalchemy as sa
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.controller import project as projects
from driftloop.controller import regions, retrain, tick
from driftloop.core import config, errors
from driftloop.store import artifacts

runner = CliRunner()

SPEC = """\
name: churn
source: {{kind: files, path: "unused/*.csv"}}
target: y
trainer: {{function: "sklearn.linear_model:LogisticRegression", executor: inline}}
triggers: [{{kind: volume, rows: 1}}]
serving: {{public_dashboard: true}}
regions:
  - {{name: eu, timezone: Europe/Berlin, store: "sqlite:///eu/meta.db", artifacts: eu/artifacts,
     source: {{kind: files, path: "{eu_source}"}}}}
  - {{name: us, timezone: America/Los_Angeles, store: "sqlite:///us/meta.db",
     artifacts: us/artifacts, source: {{kind: files, path: "us/in/*.csv"}}}}
"""


def write_spec(folder: Path, eu_source: str = "eu/in/*.csv") -> Path:
    path = folder / "driftloop.yaml"
    path.write_text(SPEC.format(eu_source=eu_source))
    return path


def regional(tmp_path: Path, ticked: bool = False) -> Path:
    """A project folder with regions eu and us, a day of data in each (one tick each if
    `ticked`)."""
    rng = np.random.default_rng(0)
    for region, shift in (("eu", 0.0), ("us", 1.5)):
        (tmp_path / region / "in").mkdir(parents=True)
        x = rng.normal(shift, 1, size=(200, 2))
        frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x.sum(axis=1) > 2 * shift)})
        frame["y"] = frame["y"].astype(int)
        frame.to_csv(tmp_path / region / "in" / "day1.csv", index=False)
    spec = write_spec(tmp_path)
    for region in ("eu", "us") if ticked else ():
        project = projects.open_project(spec, region=region)
        tick.Controller(project).tick()
        project.close()
    return tmp_path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return regional(tmp_path)


@pytest.mark.parametrize(("eu_source", "reason"), [
    ("us/in/*.csv", "region 'eu' reads its source at us/in, which is region 'us''s source "
                    "(us/in)"),
    ("us/artifacts/batches/*.parquet", "region 'eu' reads its source at us/artifacts/batches, "
                                       "which is region 'us''s artifacts (us/artifacts)"),
])
def test_check_refuses_a_region_that_reads_another_regions_data(
    folder: Path, eu_source: str, reason: str,
) -> None:
    spec = write_spec(folder, eu_source)
    with pytest.raises(errors.ConfigError) as caught:
        config.load_spec(spec)
    assert reason in str(caught.value)
    assert "data must stay in its region" in str(caught.value)
    result = runner.invoke(app, ["check", "--spec", str(spec)])
    assert result.exit_code != 0 and reason in " ".join(result.output.split())  # unwrapped


def test_a_shared_store_is_refused_too(folder: Path) -> None:
    text = specs.edited(SPEC.format(eu_source="eu/in/*.csv"),
                        {"sqlite:///us/meta.db": "sqlite:///eu/meta.db"})
    with pytest.raises(errors.ConfigError, match=r"keeps its metadata at sqlite:///eu/meta\.db"):
        config.parse_spec(text)


def test_a_process_works_for_one_region_and_records_it(
    folder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = folder / "driftloop.yaml"
    monkeypatch.delenv("DRIFTLOOP_REGION", raising=False)
    with pytest.raises(errors.ConfigError, match="say which one this process works for"):
        projects.open_project(spec)
    with pytest.raises(errors.ConfigError, match="unknown region 'apac'; the spec declares eu, us"):
        projects.open_project(spec, region="apac")
    for region in ("eu", "us"):
        monkeypatch.setenv("DRIFTLOOP_REGION", region)
        project = projects.open_project(spec)
        assert project.spec.store == f"sqlite:///{region}/meta.db"
        assert project.spec.timezone == {"eu": "Europe/Berlin", "us": "America/Los_Angeles"}[region]
        result = tick.Controller(project).tick()
        assert result.outcome is not None and result.outcome.version is not None
        (batch,) = project.store.batches.list("churn")
        assert batch.region == region and f"/{region}/in/" in batch.source_uri
        assert result.outcome.run.region == region and result.outcome.version.region == region
        assert result.outcome.version.artifact_uri.startswith(f"file://{folder}/{region}/artifacts/")
        project.close()
    assert not (folder / "meta.db").exists() and not (folder / "artifacts").exists()


@pytest.fixture
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def test_the_global_view_reads_metadata_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statements: list[str],
) -> None:
    folder = regional(tmp_path, ticked=True)
    spec = folder / "driftloop.yaml"
    statements.clear()

    def no_artifacts(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the global view opened an artifact store")

    monkeypatch.setattr(artifacts.ArtifactStore, "__init__", no_artifacts)
    found = regions.global_status(config.load_spec(spec), folder)
    assert [(r.region, r.accepted, r.versions, r.champion, r.drift) for r in found] == [
        ("eu", 1, 1, 1, False), ("us", 1, 1, 1, False)]
    assert all(r.champion_score is not None and r.error is None for r in found)
    assert found[0].local_time.tzname() in {"CET", "CEST"}
    read = " ".join(statements).lower()  # no table that holds rows or per-row values
    held = ("predictions", "feedback", "uploads", "batch_messages", "evaluations.errors")
    rows = {t for t in held if t in read}
    assert rows == set()
    result = runner.invoke(app, ["regions", "status", "--spec", str(spec)])
    assert result.exit_code == 0, result.output
    assert "churn in 2 regions" in result.output and "us" in result.output


def test_the_readme_example_spec_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("## Running in several regions")[1].split("```yaml\n")[1]
    spec = config.parse_spec(example.split("```")[0], "README.md")
    assert [r.name for r in spec.regions] == ["eu", "us", "apac"]
    assert spec.text is not None and spec.notify and spec.rollout.freeze


def test_a_later_stage_promotes_only_after_the_earlier_regions_live_test_passed(
    tmp_path: Path,
) -> None:
    spec = regional(tmp_path, ticked=True) / "driftloop.yaml"  # v1 is champion in both
    spec.write_text(specs.edited(spec.read_text(), {"artifacts: us/artifacts,":
                                                    "artifacts: us/artifacts, after: eu,"}))
    eu = projects.open_project(spec, region="eu")
    us = projects.open_project(spec, region="us")
    eu.store.aliases.set("churn", "canary", 1, actor="t", reason="canary", action="rollout")
    passed = {"passed": True, "reason": "better"}
    version = us.store.versions.add("churn", run_id=None, artifact_uri="m", sha256="0" * 64,
                                         metrics={}, gate_report=passed)
    assert not retrain.promote(us, version, "ctl")
    (waiting,) = us.store.decisions.list("churn", kind="rollout")
    assert waiting.evidence["reason"] == (
        "waiting for region 'eu' is still testing v1 (canary): v2 (champion) is a later stage")
    eu.store.aliases.set("churn", "canary", None, actor="t", reason="worse live", action="rollback")
    assert retrain.promote_pending(us, "ctl") is None
    newest = us.store.decisions.list("churn", kind="rollout", limit=1)[0]
    assert "region 'eu' rolled back v1" in newest.evidence["reason"]
    assert retrain.promote_pending(us, "ctl") is None  # the same wait is recorded once
    assert len(us.store.decisions.list("churn", kind="rollout")) == 2
    eu_v2 = eu.store.versions.add("churn", run_id=None, artifact_uri="m", sha256="0" * 64,
                                       metrics={}, gate_report=passed)
    eu.store.aliases.set("churn", "champion", eu_v2.version, actor="t", reason="promoted")
    assert retrain.promote_pending(us, "ctl") == version
    assert us.store.aliases.get("churn", "champion") == 2
    eu.close()
    us.close()


def test_a_stage_after_an_unknown_region_is_refused() -> None:
    text = specs.edited(SPEC.format(eu_source="eu/in/*.csv"),
                        {"artifacts: us/artifacts,": "artifacts: us/artifacts, after: apac,"})
    with pytest.raises(errors.ConfigError, match="`after: apac` names no region"):
        config.parse_spec(text)


def test_a_regions_process_refuses_another_regions_store_given_by_the_environment(
    folder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIFTLOOP_STORE_URL", "sqlite:///us/meta.db")
    with pytest.raises(errors.ConfigError, match=r"region 'eu' was given sqlite:///us/meta\.db by "
                       r"\$DRIFTLOOP_STORE_URL, which is region 'us''s store"):
        projects.open_project(folder / "driftloop.yaml", region="eu")
    assert not (folder / "us" / "meta.db").exists()
