"""Notes on versions, decisions and batches: the author is the token's name on the API (the OS
user or --author on the CLI), `driftloop models show` and the lineage page show them, the page
in the reader's time zone (the browser converts the UTC time it is given)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server import bearer, trained_folder
from typer.testing import CliRunner
from uvicorn_thread import serving as serving_app

from driftloop.cli.main import app
from driftloop.controller import project as projects
from driftloop.server import app as server_app
from driftloop.server import auth
from driftloop.store import notes, serving
from driftloop.ui import dashboard

runner = CliRunner()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_folder(tmp_path_factory, "notes")


@pytest.fixture(scope="module")
def served(folder: Path) -> Iterator[tuple[str, dict[str, str], projects.Project]]:
    project = projects.open_project(folder / "driftloop.yaml")
    store = serving.ServingStore(project.store)
    secrets = {name: auth.create_token(store, name, roles, actor="test")[1]
               for name, roles in {"mei@apac": ["view"], "bot": ["predict"]}.items()}
    pages = dashboard.router(project.store)  # as `driftloop serve` mounts it
    with serving_app(server_app.create_app(project, routers=[pages], poll_interval=0.2)) as url:
        yield url, secrets, project
    project.close()


def test_a_note_through_the_api_is_signed_by_the_token(
    served: tuple[str, dict[str, str], projects.Project],
) -> None:
    url, secrets, project = served
    answer = httpx.post(url + "/v1/notes", headers=bearer(secrets["mei@apac"]),
                        json={"target": "version", "id": 1, "text": "fine on JP reviews"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["author"] == "mei@apac" and body["target_id"] == 1
    assert body["at"].endswith(("Z", "+00:00"))
    listed = httpx.get(url + "/v1/notes", params={"target": "version", "id": 1},
                       headers=bearer(secrets["mei@apac"]))
    assert [n["text"] for n in listed.json()] == ["fine on JP reviews"]
    missing = httpx.post(url + "/v1/notes", headers=bearer(secrets["mei@apac"]),
                         json={"target": "batch", "id": 999, "text": "?"})
    assert missing.status_code == 404 and "batch 999 does not exist" in missing.json()["detail"]
    refused = httpx.post(url + "/v1/notes", headers=bearer(secrets["bot"]),
                         json={"target": "version", "id": 1, "text": "spam"})
    assert refused.status_code == 403
    blank = httpx.post(url + "/v1/notes", headers=bearer(secrets["mei@apac"]),
                       json={"target": "version", "id": 1, "text": "   "})
    assert blank.status_code == 400
    assert [e.actor for e in project.store.audit.list(action="note.add")] == ["mei@apac"]


def test_the_cli_adds_notes_and_models_show_prints_them(folder: Path) -> None:
    spec = str(folder / "driftloop.yaml")
    opened = projects.open_project(spec)
    decision = opened.store.runs.get(
        opened.store.versions.get(opened.name, 1).run_id or 0).decision_id
    opened.close()
    added = runner.invoke(app, ["notes", "add", "decision", str(decision),
                                "why retrain on a Sunday?", "--author", "ana@eu", "--spec", spec])
    assert added.exit_code == 0, added.output
    wrong = runner.invoke(app, ["notes", "add", "model", "1", "x", "--spec", spec])
    assert wrong.exit_code == 1 and "version, decision, batch" in wrong.output
    shown = runner.invoke(app, ["models", "show", "1", "--spec", spec])
    assert shown.exit_code == 0, shown.output
    assert f"note on decision {decision} by ana@eu" in shown.output
    assert "why retrain on a Sunday?" in shown.output
    listed = runner.invoke(app, ["notes", "list", "--spec", spec])
    assert "ana@eu" in listed.output


def test_the_lineage_page_lists_the_notes_with_utc_times_for_the_browser(
    served: tuple[str, dict[str, str], projects.Project],
) -> None:
    url, secrets, project = served
    notes.Notes(project.store).add(project.name, "version", 1, author="sam@us", text="ok")
    page = httpx.get(url + "/ui/pipelines/" + project.name + "/versions/1",
                     headers=bearer(secrets["mei@apac"]))
    assert page.status_code == 200
    assert "<strong>sam@us</strong> on version 1: ok" in page.text
    assert '<time data-local datetime="' in page.text and "+00:00" in page.text
