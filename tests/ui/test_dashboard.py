"""The dashboard's pages over a real project history (weeks of Elec2 ticked one at a time: a
quarantined batch, evaluations, drift decisions, retrains, a manual rollback), served by
`driftloop ui` (the dashboard alone) on 127.0.0.1: login, roles, 404s and bad input, page
contents, the lineage the CLI shares. tests/integration/test_browser.py drives the same history
in a real browser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server import Server, trained_folder

from driftloop.cli import project_commands as scaffold
from driftloop.controller import project as projects
from driftloop.controller import tick as ticking
from driftloop.data import elec2
from driftloop.server import auth
from driftloop.store import lineage, serving

EXTRA_WEEKS = 4


def lived_folder(factory: pytest.TempPathFactory, name: str) -> Path:
    """`trained_folder`, then `EXTRA_WEEKS` more weekly files, each ingested by its own tick,
    a manual retrain request, then the champion rolled back by hand and forward again: every
    kind of timeline event."""
    folder = trained_folder(factory, name)
    frame = elec2.load_elec2()
    opened = projects.open_project(folder / "driftloop.yaml")
    controller = ticking.Controller(opened)
    try:
        for week in range(3, 3 + EXTRA_WEEKS):
            part = frame.iloc[week * scaffold.WEEK : (week + 1) * scaffold.WEEK]
            part.to_csv(folder / "data" / f"{part['time'].iloc[0]:%Y-%m-%d}.csv", index=False)
            if week == 3 + EXTRA_WEEKS - 1:  # the cooldown (3 days of real time) blocks the rest
                opened.store.decisions.add(opened.name, kind="request", fired=True, evidence={
                    "reason": "retrain on the newest weeks", "actor": "alice"})
            controller.tick()
        store, pipeline = opened.store, opened.name
        newest = store.aliases.get(pipeline, "champion")
        assert newest is not None and newest > 1, "the extra weeks should have retrained"
        store.aliases.rollback(pipeline, "champion", actor="alice", reason="rollback drill")
        store.aliases.set(pipeline, "champion", newest, actor="alice", reason="drill over",
                        action="promote")
    finally:
        opened.store.leases.release(opened.name, controller.holder)
        opened.close()
    return folder


def view_token(folder: Path, roles: tuple[str, ...] = ("view",), name: str = "viewer") -> str:
    opened = projects.open_project(folder / "driftloop.yaml")
    try:
        return auth.create_token(serving.ServingStore(opened.store), name, roles,
                                 actor="test")[1]
    finally:
        opened.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lived_folder(tmp_path_factory, "dashboard")


@pytest.fixture(scope="module")
def project(folder: Path) -> Iterator[projects.Project]:
    opened = projects.open_project(folder / "driftloop.yaml")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def client(folder: Path) -> Iterator[httpx.Client]:
    server = Server(folder / "driftloop.yaml", dashboard_only=True)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as made:
            yield made
    finally:
        assert server.stop()


@pytest.fixture(scope="module")
def secret(folder: Path) -> str:
    return view_token(folder)


def test_pages_need_a_view_token_and_login_sets_a_cookie(
    client: httpx.Client, folder: Path, secret: str,
) -> None:
    client.cookies.clear()
    first = client.get("/ui/pipelines/electricity", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/login?next=/ui/pipelines/electricity"
    wrong = client.post("/ui/login", content="token=dl_nope&next=/ui/", follow_redirects=False,
                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert wrong.status_code == 401 and "unknown or revoked token" in wrong.text
    predictor = view_token(folder, ("predict",), "predictor")
    refused = client.get("/ui/", headers={"Authorization": f"Bearer {predictor}"})
    assert refused.status_code == 403 and "lacks the role &#39;view&#39;" in refused.text
    elsewhere = client.post("/ui/login", data={"token": secret, "next": "https://evil.test/"},
                            follow_redirects=False)
    assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/ui/"
    cookie = elsewhere.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert client.get("/ui/").status_code == 200  # the cookie now opens every page
    out = client.post("/ui/logout", follow_redirects=False)
    assert out.status_code == 303
    client.cookies.clear()
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_revoked_token_is_refused_at_once(client: httpx.Client, folder: Path) -> None:
    revoked = view_token(folder, name="short-lived")
    header = {"Authorization": f"Bearer {revoked}"}
    assert client.get("/ui/", headers=header).status_code == 200
    opened = projects.open_project(folder / "driftloop.yaml")
    serving.ServingStore(opened.store).revoke_token("short-lived", actor="test")
    opened.close()
    assert client.get("/ui/", headers=header, follow_redirects=False).status_code == 303


def test_unknown_things_and_bad_input_get_4xx(client: httpx.Client, secret: str) -> None:
    header = {"Authorization": f"Bearer {secret}"}
    missing = client.get("/ui/pipelines/nope", headers=header)
    assert missing.status_code == 404 and "&#39;nope&#39; does not exist" in missing.text
    assert client.get("/ui/pipelines/electricity/versions/99", headers=header).status_code == 404
    assert client.get("/ui/pipelines/electricity/versions/x", headers=header).status_code == 422
    assert client.get("/ui/pipelines/electricity?limit=0", headers=header).status_code == 422
    assert client.get("/ui/pipelines/electricity/serving?hours=-1",
                      headers=header).status_code == 422
    assert client.get("/ui/static/../dashboard_app.py").status_code == 404
    assert client.post("/ui/login", content=b"token=" + b"x" * 5000).status_code == 413


def test_pages_show_the_history(
    client: httpx.Client, project: projects.Project, secret: str,
) -> None:
    header = {"Authorization": f"Bearer {secret}"}
    champion = project.store.aliases.get("electricity", "champion")
    timings = {}
    for path in ("/ui/", "/ui/pipelines/electricity", f"/ui/pipelines/electricity/versions/"
                 f"{champion}", "/ui/pipelines/electricity/serving"):
        started = time.perf_counter()
        page = client.get(path, headers=header)
        timings[path] = time.perf_counter() - started
        assert page.status_code == 200, page.text
        assert "https://" not in page.text  # nothing fetched from elsewhere
    print("page render seconds:", {k: round(v, 3) for k, v in timings.items()})
    overview = client.get("/ui/", headers=header).text
    assert f"v{champion}</a>" in overview and "electricity" in overview
    timeline = client.get("/ui/pipelines/electricity", headers=header).text
    for kind in ("quarantine", "decision", "training", "gate", "promotion", "rollback"):
        assert f'<span class="kind">{kind}</span>' in timeline, kind
    assert "-meter-fault.csv): " in timeline and "line 7" in timeline  # the file its lines are in
    assert '"label": "accuracy"' in timeline  # the live metric's chart data
    page = client.get(f"/ui/pipelines/electricity/versions/{champion}", headers=header).text
    traced = lineage.of_version(project.store, "electricity", champion)
    assert traced.decision is not None and traced.run is not None
    assert f"Decision {traced.decision.id}" in page and f"Run {traced.run.id}" in page
    assert "rollback drill" in page and "champion" in page
    assert "<td>rollback</td>" in page and "<td>promote</td>" in page  # each move's action
    assert f"{len(traced.version.batch_ids)} batch(es)" in page


def test_static_files_are_served_and_cached(client: httpx.Client) -> None:
    script = client.get("/ui/static/uPlot.iife.min.js")
    assert script.status_code == 200 and "uPlot" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert "max-age" in script.headers["cache-control"]
