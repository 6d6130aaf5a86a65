"""The OpenAPI document matches what the server answers: schemathesis generates requests from
it (valid ones, then invalid ones) against the app on a real uvicorn (127.0.0.1, in a thread),
with a token that has every role, and checks each answer: never a 5xx, a documented status, the
declared media type and headers, and a body that fits the declared schema (errors included:
one `ErrorBody` everywhere)."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import checks
from schemathesis.core.failures import FailureGroup
from test_server import trained_folder
from uvicorn_thread import serving as serve_in_thread

from driftloop.controller import project as projects
from driftloop.server import app as server_app
from driftloop.server import auth
from driftloop.store import serving

EXAMPLES = 40
"""Generated requests per operation and mode."""
EXCLUDED = {label: [checks.positive_data_acceptance] for label in (
    "POST /v1/predict", "POST /v1/feedback", "POST /v1/batches")}
"""A record's fields and a label's values are checked against the pipeline's own schema (its
feature columns and target, learnt from the data), which the document cannot state: a
schema-valid `{"record": {}}` is rightly a 422 that names the missing columns, and an empty
CSV body a 400."""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    project = projects.open_project(trained_folder(tmp_path_factory, "contract") / "driftloop.yaml")
    secret = auth.create_token(serving.ServingStore(project.store), "all",
                               ["predict", "feedback", "admin", "ingest"], actor="test")[1]
    with serve_in_thread(server_app.create_app(project, poll_interval=0.25)) as url:
        yield url, secret
    project.close()


@pytest.mark.slow
def test_every_answer_matches_the_openapi_document(live: tuple[str, str]) -> None:
    url, secret = live
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /v1/predict", "POST /v1/feedback", "POST /v1/admin/promote",
        "POST /v1/admin/rollback", "POST /v1/admin/retrain", "GET /metrics", "GET /readyz"}
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            fuzz(operation, mode, secret, statuses, failures)
    print(f"{sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures[:5])
    assert not [status for status in statuses if status >= 500]


def fuzz(
    operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode, secret: str,
    statuses: collections.Counter[int], failures: list[str],
) -> None:
    """`EXAMPLES` generated requests to `operation`; counts their statuses, keeps failures."""
    label = f"{operation.label} ({mode.value})"

    @hypothesis.settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        try:
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {secret}"},
                excluded_checks=EXCLUDED.get(operation.label, []))
            statuses[response.status_code] += 1
        except (AssertionError, FailureGroup) as failure:  # go on: report every operation's
            failures.append(f"{label}: {failure}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (GET /healthz)
        assert mode is schemathesis.GenerationMode.NEGATIVE, label
