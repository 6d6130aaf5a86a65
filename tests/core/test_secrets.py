"""Secrets planted in a spec and its environment never reach the database, the audit log, the
output or the logs; ``${NAME}`` references and DRIFTLOOP_* variables are read where used."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import driftloop
from driftloop.cli.main import app
from driftloop.core import errors, secrecy

runner = CliRunner()
PLANTED = ("PLANTED-query-7f3a", "PLANTED-header-91c2", "PLANTED-env-5d0e", "PLANTED-opt-44b1")

SPEC = """\
name: guarded
store: sqlite:///unused.db
artifacts:
  url: ${ARTIFACTS_DIR}
  options: {auto_mkdir: true}
source:
  kind: http
  url: http://127.0.0.1:9/rows?api_key=PLANTED-query-7f3a&page=1
  headers:
    X-Literal-Token: PLANTED-header-91c2
    Authorization: Bearer ${API_TOKEN}
  retries: 0
  timeout: 1s
target: y
trainer: {function: "sklearn.linear_model:LogisticRegression", executor: inline}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "driftloop.yaml").write_text(SPEC)
    monkeypatch.setenv("API_TOKEN", "PLANTED-env-5d0e")
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "kept"))
    monkeypatch.setenv(secrecy.STORE_URL, f"sqlite:///{tmp_path / 'state.db'}")
    old = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def test_planted_secrets_stay_out_of_the_database_output_and_logs(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logged = ["--log-format", "json", "--log-level", "debug"]
    outputs = [runner.invoke(app, args) for args in (["check"], [*logged, "tick"], ["tick"])]
    assert outputs[0].exit_code == 0, outputs[0].output
    assert outputs[1].exit_code == 1  # the endpoint is down: the tick says so and fails
    assert "127.0.0.1:9" in outputs[1].output and "api_key=***" in outputs[1].output

    database = project / "state.db"  # DRIFTLOOP_STORE_URL, not the spec's unused.db
    assert database.exists() and not (project / "unused.db").exists()
    stored = b"".join(path.read_bytes() for path in project.glob("state.db*"))
    shown = "".join(result.output for result in outputs) + caplog.text
    assert '"logger": "driftloop.store._engine"' in outputs[1].stderr
    for secret in PLANTED:
        assert secret.encode() not in stored, secret
        assert secret not in shown, secret
    with driftloop.Project.open(project / "driftloop.yaml") as opened:
        assert opened.artifacts.url == str(project / "kept")  # ${ARTIFACTS_DIR}
        spec = opened.store.pipelines.get("guarded").spec
    assert spec["source"]["headers"] == {"X-Literal-Token": "***",
                                         "Authorization": "Bearer ${API_TOKEN}"}
    assert spec["artifacts"]["url"] == "${ARTIFACTS_DIR}"


def test_status_reads_the_store_the_other_commands_use(project: Path) -> None:
    runner.invoke(app, ["tick"])  # the endpoint is down, but the pipeline is recorded
    shown = runner.invoke(app, ["status", "--json"])
    assert shown.exit_code == 0, shown.output
    assert [p["name"] for p in json.loads(shown.stdout)["pipelines"]] == ["guarded"]
    assert not (project / "unused.db").exists()  # DRIFTLOOP_STORE_URL, not the spec's store


def test_a_missing_variable_is_named_without_a_value(project: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_TOKEN")
    result = runner.invoke(app, ["tick"])
    assert result.exit_code == 1
    assert "source.headers.Authorization: environment variable API_TOKEN is not set" in (
        " ".join(result.output.split()))


@pytest.mark.parametrize("url", ["pg-sql://user:PLANTED-pw-1@host/db",
                                 "postgresql://user:PLANTED-pw-1@host:port/db"])
def test_a_store_url_with_a_password_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        driftloop.MetadataStore.open(url)
    assert "PLANTED-pw-1" not in str(caught.value) and "***" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(("written", "stored"), [
    ("postgresql://ml:hunter2@db/ml", "postgresql://ml:***@db/ml"),
    ("postgresql://ml:${PG_PASSWORD}@db/ml", "postgresql://ml:${PG_PASSWORD}@db/ml"),
    ("postgresql://ml@db/ml", "postgresql://ml@db/ml"),
    ("https://h/x?sig=abc&keep=1", "https://h/x?sig=***&keep=1"),
])
def test_store_urls_are_stored_redacted(written: str, stored: str) -> None:
    store = driftloop.MetadataStore.open("sqlite://")
    store.pipelines.ensure("p", {"store": written, "source": {"password": "pw"}})
    assert store.pipelines.get("p").spec == {"store": stored, "source": {"password": "***"}}


def test_a_token_secret_from_the_environment_is_stored_as_its_hash_only(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftloop.server import auth
    from driftloop.store import serving

    secret = "PLANTED-token-" + "x" * 32
    monkeypatch.setenv("DRIFTLOOP_TOKEN", secret)
    made = runner.invoke(app, ["tokens", "create", "ci", "--role", "predict",
                               "--secret-env", "DRIFTLOOP_TOKEN"])
    assert made.exit_code == 0, made.output
    assert "registered" in made.output and secret not in made.output
    stored = b"".join(path.read_bytes() for path in project.glob("state.db*"))
    assert secret.encode() not in stored
    with driftloop.Project.open(project / "driftloop.yaml") as opened:
        cache = auth.TokenCache(serving.ServingStore(opened.store))
        cache.refresh()
        assert cache.authenticate(secret).name == "ci"
    monkeypatch.setenv("DRIFTLOOP_TOKEN", "too-short")
    short = runner.invoke(app, ["tokens", "create", "ci2", "--role", "predict",
                                "--secret-env", "DRIFTLOOP_TOKEN"])
    assert short.exit_code == 1 and "at least 32" in short.output
    assert "too-short" not in short.output
