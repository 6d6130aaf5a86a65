"""`driftloop tick --json`: one tick's result as one JSON object, and its exit code, for a
scheduler (cron, Airflow, Argo, Kubeflow, a cloud's job service) to act on.

``status`` and the exit code say the same thing:

    ========== ==== ============================================================================
    status     code meaning
    ========== ==== ============================================================================
    acted       0   the tick did something: ingested, evaluated, decided, trained or rolled out
    failed      1   a training failed, or the tick could not run (the ``error`` says why)
    lease_held  75  another controller holds the pipeline's lease; this tick did nothing
                    (EX_TEMPFAIL: try again later)
    idle        99  nothing to do: no new data, no labels, no decision due (Airflow's
                    BashOperator shows exit code 99 as "skipped")
    ========== ==== ============================================================================

With ``--exit-zero`` every status but ``failed`` exits 0, for schedulers that count any other
code as a failure (a Kubernetes Job); the JSON still tells them apart.

    >>> EXIT_CODES["idle"], EXIT_CODES["lease_held"]
    (99, 75)
"""

from __future__ import annotations

import json
from typing import Any

EXIT_CODES = {"acted": 0, "failed": 1, "lease_held": 75, "idle": 99}


def status_of(result: Any) -> str:
    """The status of a `controller.tick.TickResult`."""
    if result.skipped is not None:
        return "lease_held"
    outcome = result.outcome
    if outcome is not None and outcome.version is None and outcome.run.status != "postponed":
        return "failed"  # (a postponed training failed nothing: it is tried again)
    return "acted" if result.acted else "idle"


def document(pipeline: str, result: Any, gave_up: Any = None) -> dict[str, Any]:
    """What a tick did as plain JSON values: batches, evaluations, decision, training outcome,
    repairs, rollout step, and the give-up message if the loop stopped retrying."""
    status = status_of(result)
    outcome = result.outcome
    accepted = [b.id for b in result.batches if b.status == "accepted"]
    return {
        "pipeline": pipeline,
        "status": status,
        "exit_code": EXIT_CODES[status],
        "skipped": result.skipped,
        "batches": {"accepted": accepted,
                    "quarantined": [b.id for b in result.batches if b.status != "accepted"]},
        "evaluations": [
            {"version": e.version, "batch": e.batch_id, "metric": e.metric, "value": e.value,
             "rows": e.rows, "estimated_value": e.estimated_value} for e in result.evaluations],
        "decision": None if result.decision is None else {
            "id": result.decision.id, "kind": result.decision.kind,
            "fired": result.decision.fired,
            "reason": (result.decision.evidence.get("policy") or {}).get("reason")},
        "training": None if outcome is None else {
            "run": outcome.run.id, "version": None if outcome.version is None
            else outcome.version.version, "promoted": outcome.promoted, "reason": outcome.reason},
        "repaired": list(result.repaired),
        "rollout": None if result.rollout is None else {
            "id": result.rollout.id, "kind": result.rollout.kind},
        "gave_up": None if gave_up is None else gave_up.message(),
    }


def failure(pipeline: str | None, message: str) -> dict[str, Any]:
    """The document of a tick that could not run (bad spec, store down, ...)."""
    return {"pipeline": pipeline, "status": "failed", "exit_code": EXIT_CODES["failed"],
            "error": message}


def dumps(found: dict[str, Any]) -> str:
    """One line of JSON (times and other values as text)."""
    return json.dumps(found, default=str, sort_keys=True)
