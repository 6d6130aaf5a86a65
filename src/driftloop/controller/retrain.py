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
from driftloop.core import config, errors
from driftloop.store import entities
from driftloop.train import fingerprint

if TYPE_CHECKING:  # pandas, scikit-learn, scipy: imported when a retraining happens
    import pandas as pd

    from driftloop.store import metadata
    from driftloop.train import calibration
    from driftloop.train import executor as executors


@dataclass(frozen=True)
class Outcome:
    """What one retraining produced."""

    run: entities.TrainingRun
    version: entities.ModelVersion | None
    promoted: bool
    reason: str
    model: Any = None


ROUTINE = frozenset({"volume", "schedule"})
"""Triggers that refresh a model without saying that anything changed."""

CHANGE = frozenset({"performance", "drift"})
"""Triggers that say the data or the concept changed, in the newest labelled batches."""


def request(
    store: metadata.MetadataStore, pipeline: str, reason: str, actor: str
) -> entities.Decision:
    """Ask for a retraining now (`driftloop retrain`, ``POST /v1/admin/retrain``): a fired
    ``request`` decision that the next tick acts on, audited as ``retrain.request``."""
    asked = store.decisions.add(
        pipeline, kind="request", fired=True, evidence={"reason": reason, "actor": actor})
    store.audit.add(actor, "retrain.request", pipeline, {"decision": asked.id, "reason": reason})
    return asked


def _fired(decision: entities.Decision) -> set[str]:
    results = decision.evidence.get("policy", {}).get("results", [])
    return {r.get("kind") for r in results if r.get("fired")}


def anchor(
    spec: config.PipelineSpec, decision: entities.Decision, champion: entities.ModelVersion | None
) -> int | None:
    """The first batch of the champion's chosen window when this retraining is a routine
    refresh (only `ROUTINE` triggers fired) of an `auto` window chosen `on_change`; else None
    (choose again)."""
    window = spec.trainer.window
    if window.kind != "auto" or window.rechoose != "on_change" or champion is None:
        return None
    fired = _fired(decision)
    start = champion.metrics.get("window_from_batch")
    return int(start) if fired and fired <= ROUTINE and start is not None else None


def change_batch(
    decision: entities.Decision, champion: entities.ModelVersion | None, holdout: pd.DataFrame
) -> int | None:
    """The first batch of the newest concept, as far as the loop knows: the holdout's first
    batch when a `CHANGE` trigger fired (the change is in the newest labelled batch), else the
    champion's own (`change_from_batch` carries through routine refreshes); None before any."""
    if _fired(decision) & CHANGE and not holdout.empty:
        return int(holdout[BATCH_COLUMN].min())
    found = champion.metrics.get("change_from_batch") if champion is not None else None
    return None if found is None else int(found)


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
    from driftloop.data import calendar
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
    # The model's inputs: the feature columns, then the calendar ones (`data.calendar`)
    window = calendar.with_calendar(spec, window)
    features = calendar.model_columns(spec, rows.columns)
    window, trained = _with_sensitive(spec, window, features)
    part = challengers.split(project, window)
    run = store.runs.start(
        project.name,
        trainer=spec.trainer.function,
        params=dict(spec.trainer.params),
        batch_ids=challengers.batch_ids(part.window),  # trained on, or held out and refitted
        decision_id=decision.id,
        trainer_sha256=fingerprint.trainer_sha256(spec.trainer, project.base_dir),
    )
    if part.train.empty:
        failed = store.runs.finish(
            run.id,
            status="failed",
            compute_seconds=None,
            error="no labelled rows in the training window",
        )
        return Outcome(failed, None, False, failed.error or "")
    try:
        fitted = challengers.fit(project, part, trained, executor,
                                 anchor(spec, decision, champion[0] if champion else None))
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
        fairness_evidence = None
        if spec.fairness is not None and spec.fairness.gate.enabled and not fair.empty:
            from driftloop.controller import responsible

            report, fairness_evidence = responsible.gate_fairness(
                project, report, fitted.estimator, champion[1] if champion else None, fair,
                features)
        explained = None
        if spec.explain is not None:
            from driftloop.controller import responsible

            explained = responsible.explain_challenger(
                project, fitted.estimator, part.holdout, part.train, features,
                champion[0].version if champion else None)
            report = responsible.gate_explanation(project, report, explained)
        model, refit_seconds, trained_on = fitted.estimator, 0.0, part.train
        if report.passed:
            model, refit_seconds, trained_on = challengers.refit(
                project, part, fitted, trained, executor
            )
    except errors.Postponed as exc:  # nothing failed: the decision is retried next tick
        waits = store.runs.finish(run.id, status="postponed", compute_seconds=None, error=str(exc))
        return Outcome(waits, None, False, f"training postponed: {exc}")
    except errors.DriftloopError as exc:
        failed = store.runs.finish(run.id, status="failed", compute_seconds=None, error=str(exc))
        return Outcome(failed, None, False, f"training failed: {exc}")
    if fitted.trials:
        store.runs.add_trials(run.id, list(fitted.trials))
    # calibrated on the holdout, by the model the gate judged there (not the refitted one)
    calibrator, calibration_cpu = _calibrate(
        project, executor, fitted.estimator, part.train, part.holdout, trained
    )
    cpu_seconds = fitted.cpu_seconds + refit_seconds + calibration_cpu
    artifact = project.artifacts.put_model(model)
    profile = store.profiles.add(project.name, _profile(project, trained_on, features))
    metrics: dict[str, Any] = {
        spec.gate.metric: report.challenger_score,
        "train_rows": len(trained_on),
        "data_upto_batch": int(window[BATCH_COLUMN].max()),
        "holdout_rows": len(part.holdout),
        "cpu_seconds": cpu_seconds,
    }
    metrics.update(fitted.lineage)
    change = change_batch(decision, champion[0] if champion else None, part.holdout)
    if change is not None:  # a share-of-window volume trigger counts from the change
        metrics["change_from_batch"] = change
        metrics["rows_since_change"] = int((trained_on[BATCH_COLUMN] >= change).sum())
    if fitted.size is not None:
        metrics["window"] = str(fitted.size)
        metrics["window_from_batch"] = int(trained_on[BATCH_COLUMN].min())
    calibration_artifact = None
    if calibrator is not None:
        metrics["calibration_rows"] = calibrator.rows
        stored = project.artifacts.put_json(calibrator.to_json())
        calibration_artifact = (stored.uri, stored.sha256)
    keep_lease()
    version = store.versions.add(
        project.name,
        run_id=run.id,
        artifact_uri=artifact.uri,
        sha256=artifact.sha256,
        metrics=metrics,
        profile_id=profile.id,
        gate_report={**report.to_json(), **({"fairness": fairness_evidence}
                                             if fairness_evidence is not None else {})},
        calibration=calibration_artifact,
    )
    run = store.runs.finish(run.id, status="succeeded", compute_seconds=cpu_seconds)
    if explained is not None:
        from driftloop.controller import responsible

        responsible.record_explanation(project, version.version, explained)
    keep_lease()
    promoted = report.passed and promote(project, version, actor)
    return Outcome(run, version, promoted, report.reason, model)


def _calibrate(
    project: projects.Project,
    executor: executors.Executor,
    model: Any,
    train_part: pd.DataFrame,
    holdout: pd.DataFrame,
    features: list[str],
) -> tuple[calibration.Calibrator | None, float]:
    """The new model's confidence calibrator (`spec.estimate`) and the CPU seconds it cost.

    Held-out rows: the gate's holdout, which the model never saw (free). Without one, and with
    `estimate.rows` set, the same trainer fits once more on the training rows but `rows` of
    them spread evenly over the window, and that fit is calibrated on those: the window's own
    distribution, which is what CBPE assumes the coming rows follow. (Measured on Elec2's
    first 150 daily batches: holding out the newest rows instead, the calibration also learns
    the last days' concept change, and the estimate's error was 0.16-0.17 against 0.13.)"""
    import numpy as np

    from driftloop.gate import metrics as gate_metrics
    from driftloop.train import calibration

    spec = project.spec
    method = spec.estimate.method
    if spec.task != "classification" or method == "none":
        return None, 0.0
    if len(holdout) >= calibration.MIN_ROWS:
        fitted = calibration.fit_calibrator(
            model, holdout[features], holdout[spec.target], method
        )
        return fitted, 0.0
    rows = spec.estimate.rows
    if rows < calibration.MIN_ROWS or len(train_part) < 2 * rows or spec.trainer.federated:
        return None, 0.0  # (a federated model cannot be fitted again alone)
    held_out = np.zeros(len(train_part), dtype=bool)
    held_out[np.linspace(0, len(train_part) - 1, rows).astype(int)] = True
    fit_part, held = train_part[~held_out], train_part[held_out]
    try:
        extra = executor.train(
            spec.trainer,
            fit_part[features],
            fit_part[spec.target],
            project.base_dir,
            gate_metrics.Scorer(spec.gate.metric, spec.task),
        )
    except errors.DriftloopError:
        return None, 0.0  # the model itself trained; it goes without an estimate
    fitted = calibration.fit_calibrator(extra.estimator, held[features], held[spec.target], method)
    return fitted, extra.cpu_seconds


def promote(project: projects.Project, version: entities.ModelVersion, actor: str) -> bool:
    """Put `version` live (the gate passed) as `rollout.strategy` says: replace the champion,
    or start a shadow / canary / A-B test of it. Audited by the store."""
    report = version.gate_report or {}
    reason = f"gate passed: {report.get('reason', '')}"
    return rollout.start_rollout(project, version.version, actor, reason=reason) is not None


def promote_pending(project: projects.Project, actor: str) -> entities.ModelVersion | None:
    """Repair: a version newer than the champion that passed its gate but was never promoted."""
    store = project.store
    versions = store.versions.list(project.name, last=1)
    if not versions or not (versions[0].gate_report or {}).get("passed"):
        return None
    newest = versions[0]
    champion = store.aliases.get(project.name, "champion")
    if champion is None or (
        champion < newest.version and not _was_champion(project, newest.version)
    ):
        return newest if promote(project, newest, actor) else None
    return None


def _was_champion(project: projects.Project, version: int) -> bool:
    """Whether the champion alias ever pointed at `version` (then a rollback moved it away)."""
    return any(
        move.version == version for move in project.store.aliases.history(project.name, "champion")
    )


def _with_sensitive(spec: Any, window: pd.DataFrame,
                    features: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The window and the trainer's columns: with a fairness mitigation on a sensitive column
    the model does not use, that column rides along under its carrier name (the mitigation
    reads the groups from it and drops it before the estimator sees the rows)."""
    mitigate = spec.trainer.fairness_mitigation
    if mitigate is None or mitigate.feature in features:
        return window, features
    from driftloop.train import mitigation

    carrier = mitigation.sensitive_column(mitigate.feature)
    return window.assign(**{carrier: window[mitigate.feature]}), [*features, carrier]


def _profile(project: projects.Project, frame: pd.DataFrame, features: list[str]) -> dict[str, Any]:
    """The training data's profile, stored with the version: later batches are tested against it."""
    from driftloop.data import profile as profiles
    from driftloop.validation import schema as schemas

    schema = schemas.Schema.from_json(project.store.pipelines.get(project.name).schema or {})
    text = set(project.spec.text.columns) if project.spec.text is not None else set()
    kinds = {  # text columns have tests of their own (`drift.text`)
        c.name: ("numeric" if c.kind == "numeric" else "categorical")
        for c in schema.columns
        if c.name in features and c.kind in {"numeric", "categorical", "boolean"}
        and c.name not in text
    }
    return profiles.build_profile(frame[list(kinds)], columns=kinds)


def _last_drift_at(project: projects.Project) -> Any:
    """When the policy last saw drift (data or concept), for the `since_drift` window."""
    for decision in reversed(
        project.store.decisions.list(project.name, kind="retrain", fired=True, limit=50)
    ):
        fired = {
            r["kind"] for r in decision.evidence.get("policy", {}).get("results", []) if r["fired"]
        }
        if "drift" in fired:
            return decision.at
    return None


def repair(project: projects.Project, holder: str) -> list[str]:
    """Finish what a crashed tick left: close orphaned runs, promote a passed version.
    A run left open by a stopped controller is "interrupted", which is no failed attempt."""
    store, name = project.store, project.name
    repaired = []
    for run in store.runs.list(name, status="running"):
        if store.versions.for_run(run.id) is not None:  # stopped right after storing it
            store.runs.finish(run.id, status="succeeded", compute_seconds=None)
            repaired.append(f"run {run.id} marked succeeded (its version was stored)")
            continue
        store.runs.finish(
            run.id,
            status="interrupted",
            compute_seconds=None,
            error="interrupted: the controller stopped during training",
        )
        repaired.append(f"run {run.id} marked interrupted (the controller stopped)")
    promoted = promote_pending(project, holder)
    if promoted is not None:
        repaired.append(f"version {promoted.version} promoted (interrupted before promotion)")
    return repaired
