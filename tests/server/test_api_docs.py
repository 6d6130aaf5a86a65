"""``/docs`` works offline: the Swagger UI page loads its script and styles from the server
(vendored from swagger-ui-dist), and names no other site."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server_inputs import open_app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    for client, _ in open_app(tmp_path / "elec", f"sqlite:///{tmp_path / 'state.db'}"):
        yield client


def test_docs_reference_no_external_url(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    external = re.findall(r"(?:https?:)?//[\w-]+\.[\w.-]+", page.text)
    assert not external, external
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert len(assets) >= 2, page.text
    for asset in assets:
        if asset.startswith("data:"):
            continue
        assert asset.startswith("/docs/static/"), asset
        answer = client.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 100_000, asset
    assert '"validatorUrl": null' in page.text  # no badge fetched from the validator's site
    assert "/openapi.json" in page.text
    assert client.get("/docs/static/driftloop.yaml").status_code == 404
