"""Act on a fired decision: select the training window, train, gate against the champion on a
recent holdout, store the version with its evidence, and promote it if it passed.

Called by the tick. The order of writes makes every crash repairable by the next tick: the run
is opened first, the version is stored with its gate report in one step, and only then does the
champion alias move (`promote_pending` finishes a promotion a crash interrupted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftloop.controller import project as projects
from driftloop.controller import rollout
from driftloop.controller.history import BATCH_COLUMN
from driftloop.core import errors
from driftloop.store import entities
from driftloop.train import executor as executors
from driftloop.train import fingerprint

if TYPE_CHECKING:  # pandas, scikit-learn, scipy: imported when a retraining happens
    import pandas as pd


@dataclass(frozen=True)
class Outcome:
    """What one retraining produced."""

    run: entities.TrainingRun
    version: entities.ModelVersion | None
    promoted: bool
    reason: str
    model: Any = None


def retrain(
    project: projects.Project,
    decision: entities.Decision,
    rows: pd.DataFrame,
    champion: tuple[entities.ModelVersion, Any] | None,
    executor: executors.Executor,
    actor: str,
    keep_lease: Callable[[], None] = lambda: None,
) -> Outcome:
    """Train a challenger for `decision`, gate it, store it, promote it if it passed."""
    from driftloop.controller import challenger as challengers
    from driftloop.gate import gate
    from driftloop.train import window as windows

    spec, store = project.spec, project.store
    labelled = rows[rows[spec.target].notna()]
    if spec.timestamp is not None:  # late labels arrive after newer rows: put them in place
        labelled = labelled.sort_values(spec.timestamp, kind="stable")
    window = windows.select_window(
        labelled,
        spec.trainer.window,
        timestamp=spec.timestamp,
        now=challengers.newest_time(labelled, spec.timestamp, project.clock.now()),
        last_drift_at=_last_drift_at(project)
        if spec.trainer.window.kind == "since_drift"
        else None,
    )
    part = challengers.split(project, window)
    features = spec.feature_columns([c for c in rows.columns if not c.startswith("__")])
    run = store.start_run(
        project.name,
        trainer=spec.trainer.function,
        params=dict(spec.trainer.params),
        batch_ids=challengers.batch_ids(part.window),  # trained on, or held out and refitted
        decision_id=decision.id,
        trainer_sha256=fingerprint.trainer_sha256(spec.trainer, project.base_dir),
    )
    if part.train.empty:
        failed = store.finish_run(
            run.id,
            status="failed",
            compute_seconds=None,
            error="no labelled rows in the training window",
        )
        return Outcome(failed, None, False, failed.error or "")
    try:
        fitted = challengers.fit(project, part, features, executor)
        fair = challengers.unseen(part.holdout, champion[0] if champion else None)
        if champion is not None and fair.empty and not part.holdout.empty:
            report = gate.unjudged(spec.gate, "the champion was trained on every holdout row (no "
                                   "newer labelled data): nothing fair to compare on")
        else:
            report = gate.evaluate_gate(
                fitted.estimator,
                champion[1] if champion else None,
                fair[features],
                fair[spec.target],
                spec.gate,
                spec.task,
            )
        model, refit_seconds, trained_on = fitted.estimator, 0.0, part.train
        if report.passed:
            model, refit_seconds, trained_on = challengers.refit(
                project, part, fitted, features, executor
            )
    except errors.DriftloopError as exc:
        failed = store.finish_run(run.id, status="failed", compute_seconds=None, error=str(exc))
        return Outcome(failed, None, False, f"training failed: {exc}")
    if fitted.trials:
        store.add_trials(run.id, list(fitted.trials))
    cpu_seconds = fitted.cpu_seconds + refit_seconds
    artifact = project.artifacts.put_model(model)
    profile = store.add_profile(project.name, _profile(project, trained_on, features))
    metrics: dict[str, Any] = {
        spec.gate.metric: report.challenger_score,
        "train_rows": len(trained_on),
        "data_upto_batch": int(window[BATCH_COLUMN].max()),
        "holdout_rows": len(part.holdout),
        "cpu_seconds": cpu_seconds,
    }
    if fitted.size is not None:
        metrics["window"] = str(fitted.size)
    keep_lease()
    version = store.add_model_version(
        project.name,
        run_id=run.id,
        artifact_uri=artifact.uri,
        sha256=artifact.sha256,
        metrics=metrics,
        profile_id=profile.id,
        gate_report=report.to_json(),
    )
    run = store.finish_run(run.id, status="succeeded", compute_seconds=cpu_seconds)
    keep_lease()
    promoted = report.passed and promote(project, version, actor)
    return Outcome(run, version, promoted, report.reason, model)


def promote(project: projects.Project, version: entities.ModelVersion, actor: str) -> bool:
    """Put `version` live (the gate passed) as `rollout.strategy` says: replace the champion,
    or start a shadow / canary / A-B test of it. Audited by the store."""
    report = version.gate_report or {}
    reason = f"gate passed: {report.get('reason', '')}"
    return rollout.start_rollout(project, version.version, actor, reason=reason) is not None


def promote_pending(project: projects.Project, actor: str) -> entities.ModelVersion | None:
    """Repair: a version newer than the champion that passed its gate but was never promoted."""
    store = project.store
    versions = store.list_model_versions(project.name, last=1)
    if not versions or not (versions[0].gate_report or {}).get("passed"):
        return None
    newest = versions[0]
    champion = store.get_alias(project.name, "champion")
    if champion is None or (
        champion < newest.version and not _was_champion(project, newest.version)
    ):
        return newest if promote(project, newest, actor) else None
    return None


def _was_champion(project: projects.Project, version: int) -> bool:
    """Whether the champion alias ever pointed at `version` (then a rollback moved it away)."""
    return any(
        move.version == version for move in project.store.alias_history(project.name, "champion")
    )


def _profile(project: projects.Project, frame: pd.DataFrame, features: list[str]) -> dict[str, Any]:
    """The training data's profile, stored with the version: later batches are tested against it."""
    from driftloop.data import profile as profiles
    from driftloop.validation import schema as schemas

    schema = schemas.Schema.from_json(project.store.get_pipeline(project.name).schema or {})
    kinds = {
        c.name: ("numeric" if c.kind == "numeric" else "categorical")
        for c in schema.columns
        if c.name in features and c.kind in {"numeric", "categorical", "boolean"}
    }
    return profiles.build_profile(frame[list(kinds)], columns=kinds)


def _last_drift_at(project: projects.Project) -> Any:
    """When the policy last saw drift (data or concept), for the `since_drift` window."""
    for decision in reversed(
        project.store.list_decisions(project.name, kind="retrain", fired=True, limit=50)
    ):
        fired = {
            r["kind"] for r in decision.evidence.get("policy", {}).get("results", []) if r["fired"]
        }
        if "drift" in fired:
            return decision.at
    return None
