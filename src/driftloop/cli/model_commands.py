"""`driftloop models`: the registry — list versions, show one with its lineage, promote, roll back.

Every alias move goes through the store, which writes the audit row with the actor.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from driftloop.cli import console, json_output, model_formats, options

if TYPE_CHECKING:
    from driftloop.controller import project as projects
    from driftloop.store import entities, lineage

app = typer.Typer(
    help="The model registry: versions, lineage, promotion and rollback.", no_args_is_help=True
)


def _open(spec: Path) -> projects.Project:
    from driftloop.controller import project as projects

    return console.guard(lambda: projects.open_project(spec))


@app.command("list")
def list_versions(
    spec: Path = options.SPEC,
    last: int = typer.Option(20, "--last", "-n", min=0, help="The newest N versions (0: all)."),
    as_json: options.Json = False,
) -> None:
    """The newest versions with their metrics, gate result and aliases."""
    project = _open(spec)
    store, name = project.store, project.name
    aliases: dict[int, list[str]] = {}
    for alias, number in store.aliases.all(name).items():
        aliases.setdefault(number, []).append(alias)
    if as_json:
        listed = store.versions.list(name, last=last or None)
        json_output.emit({
            "pipeline": name,
            "metric": project.spec.gate.metric,
            "versions": [json_output.version(v, aliases.get(v.version, ())) for v in listed],
        })
        project.close()
        return
    table = console.table(
        "version", "created", "aliases", project.spec.gate.metric, "gate", "train rows", "run"
    )
    listed = store.versions.list(name, last=last or None)
    for version in listed:
        gate = version.gate_report or {}
        score = version.metrics.get(project.spec.gate.metric)
        table.add_row(
            str(version.version),
            f"{version.created_at:%Y-%m-%d %H:%M}",
            ", ".join(aliases.get(version.version, [])),
            "" if score is None else f"{score:.4f}",
            _gate_cell(gate),
            str(version.metrics.get("train_rows", "")),
            str(version.run_id or ""),
        )
    console.print(table)
    older = listed[0].version - 1 if listed else 0  # versions are numbered 1, 2, 3, ...
    if older > 0:
        console.info(f"{older} older version(s) not shown (--last 0 shows all)")
    project.close()


@app.command()
def show(
    version: int = typer.Argument(..., help="Version number."),
    spec: Path = options.SPEC,
    as_json: options.Json = False,
) -> None:
    """One version and its lineage: batches → run → gate report → alias history → decision."""
    from driftloop.store import lineage, transfers

    project = _open(spec)
    name = project.name
    traced = console.guard(lambda: lineage.of_version(project.store, name, version))
    if as_json:
        json_output.emit(_lineage_json(name, traced, project.store.runs.trials(traced.run.id)
                                       if traced.run is not None else []))
        project.close()
        return
    found = traced.version
    console.print(
        f"[bold]{name} v{found.version}[/bold]  sha256 {found.sha256[:16]}…  {found.artifact_uri}"
    )
    if traced.run is not None:
        run = traced.run
        console.print(
            f"run {run.id}: {run.trainer} {run.params}  {run.status}, "
            f"{run.compute_seconds or 0:.2f} CPU s"
        )
        _show_trials(project.store.runs.trials(run.id))
    if traced.decision is not None:
        console.print(
            f"caused by decision {traced.decision.id} at {traced.decision.at:%Y-%m-%d %H:%M}: "
            f"{traced.reason}"
        )
    console.print(f"trained on batches: {', '.join(map(str, found.batch_ids)) or '-'}")
    if "federated_rounds" in found.metrics:
        rows = {k.partition(".")[2]: int(v) for k, v in found.metrics.items()
                if k.startswith("federated_rows.")}
        console.print(f"federated: {int(found.metrics['federated_rounds'])} rounds over "
                      + ", ".join(f"{name} ({n} rows)" for name, n in rows.items()))
    gate = traced.gate
    console.print(
        f"gate: {'passed' if gate.get('passed') else 'failed'} — {gate.get('reason', '')}"
    )
    _show_notes(project, found.version, traced.decision)
    _show_fairness(gate.get("fairness"))
    _show_explanation(project.store.findings.for_version(name, "explanation", version),
                      project.store.findings.for_version(name, "explanation_drift", version),
                      project.store.findings.for_version(name, "explanation_live", version))
    history = console.table("at", "alias", "from", "to", "actor", "reason")
    for move in traced.moves:
        # most moves are promotions; the others name their action (no extra column: the
        # table already fills an 80-column terminal)
        action = "" if move.action == "promote" else f"{move.action}: "
        history.add_row(
            f"{move.at:%Y-%m-%d %H:%M}",
            move.alias,
            str(move.previous or "-"),
            str(move.version or "-"),
            move.actor,
            action + move.reason,
        )
    console.print(history)
    _show_transfers(transfers.TransferStore(project.store).list(name, version))
    project.close()


def _lineage_json(
    pipeline: str, traced: lineage.Lineage, trials: list[entities.Trial]
) -> dict[str, object]:
    """`models show --json`: the version, the run, the decision that caused it, the alias
    moves and the search trials."""
    run, decision = traced.run, traced.decision
    return {
        "pipeline": pipeline,
        "version": json_output.version(traced.version, traced.aliases),
        "run": None if run is None else {
            "id": run.id, "trainer": run.trainer, "params": run.params, "status": run.status,
            "compute_seconds": run.compute_seconds, "error": run.error,
            "started_at": json_output.when(run.started_at),
            "finished_at": json_output.when(run.finished_at),
        },
        "decision": None if decision is None else {
            "id": decision.id, "at": json_output.when(decision.at), "reason": traced.reason,
        },
        "gate": traced.gate,
        "moves": [
            {"at": json_output.when(m.at), "alias": m.alias, "from": m.previous,
             "to": m.version, "action": m.action, "actor": m.actor, "reason": m.reason}
            for m in traced.moves
        ],
        "trials": [
            {"number": t.number, "family": t.family, "score": t.score,
             "cpu_seconds": t.cpu_seconds, "params": t.params, "error": t.error}
            for t in trials
        ],
    }


def _show_transfers(found: list[entities.Transfer]) -> None:
    """Where the version came from (an import) and each export, with its parity figures."""
    for transfer in found:
        report = transfer.report
        if transfer.direction == "import":
            said = f"imported from {transfer.format} {transfer.location} " + (
                f"({report.get('serialization_format')})")
        elif transfer.passed:
            said = f"exported as {transfer.format} to {transfer.location}"
            if "same_class" in report:
                said += (f": same class {report['same_class']:.4%}, max Δp "
                         f"{report['max_probability_delta']:.2g} on {report['rows']} rows")
        else:
            said = f"{transfer.format} export refused: {report.get('reason', '')}"
        console.print(f"{transfer.at:%Y-%m-%d %H:%M} {said} (by {transfer.actor})")


def _show_fairness(evidence: Any) -> None:
    """The gate's fairness verdict and each disparity of the challenger and the champion."""
    if not evidence:
        return
    console.print(f"fairness gate: {'passed' if evidence['passed'] else 'refused'} — "
                  f"{evidence['reason']}")
    table = console.table("column", "disparity", "challenger [CI]", "champion", "threshold")
    for column, found in evidence.get("columns", {}).items():
        for name, entry in found.get("disparities", {}).items():
            new, old = entry.get("challenger", {}), entry.get("champion", {})
            table.add_row(column, name, f"{_num(new.get('value'))} [{_num(new.get('ci_low'))}, "
                          f"{_num(new.get('ci_high'))}]", _num(old.get("value")),
                          f"{entry['threshold']:g}")
    console.print(table)


def _show_explanation(found: entities.Finding | None, drift: entities.Finding | None,
                      live: entities.Finding | None) -> None:
    """What the version relies on: permutation importance and mean |SHAP| per feature."""
    if found is None:
        return
    report = found.report
    table = console.table("feature", "permutation importance", "mean |SHAP|")
    where = "held-out" if report.get("held_out", True) else "training (no holdout)"
    table.title = f"explanation on {report['rows']} {where} rows"
    shap = report.get("shap") or {}
    ranked = sorted(report["permutation"].items(), key=lambda item: -item[1]["mean"])
    for feature, value in ranked:
        table.add_row(feature, f"{value['mean']:.4f} ± {value['std']:.4f}",
                      _num(shap.get(feature)))
    console.print(table)
    if report.get("shap_note"):
        console.print(f"no SHAP values: {report['shap_note']}")
    if drift is not None:
        shifted = "shifted" if drift.report["shifted"] else "steady"
        console.print(f"explanation drift from v{drift.report['from_version']}: "
                      f"{drift.report['distance']:.3f} ({shifted}; threshold "
                      f"{drift.report['threshold']:g})")
    if live is not None and "distance" in live.report:
        shifted = "shifted" if live.report["shifted"] else "steady"
        console.print(f"re-explained on batch {live.batch_id}: drift from training "
                      f"{live.report['distance']:.3f} ({shifted})")


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _show_trials(trials: list[entities.Trial]) -> None:
    """The run's search trials (`trainer.search`) in trial order; nothing if it did not search."""
    if not trials:
        return
    table = console.table("trial", "family", "score", "CPU s", "params")
    table.title = f"search: {len(trials)} trials on the validation rows"
    for trial in trials:
        table.add_row(
            str(trial.number),
            trial.family,
            "failed" if trial.score is None else f"{trial.score:.4f}",
            f"{trial.cpu_seconds:.2f}",
            ", ".join(f"{k}={v}" for k, v in trial.params.items()) or (trial.error or "-"),
        )
    console.print(table)


@app.command()
def promote(
    version: int = typer.Argument(..., help="Version to make champion."),
    alias: str = typer.Option("champion", help="Alias to move."),
    reason: str = typer.Option("manual promotion", help="Why (kept in the audit log)."),
    actor: str | None = options.ACTOR,
    spec: Path = options.SPEC,
) -> None:
    """Move an alias to a version (recorded in the audit log)."""
    project = _open(spec)
    console.guard(lambda: project.store.versions.get(project.name, version))
    if project.store.aliases.get(project.name, alias) == version:
        console.ok(f"{alias} is already v{version}; nothing to do")
        project.close()
        return
    move = console.guard(
        lambda: project.store.aliases.set(
            project.name,
            alias,
            version,
            actor=actor or getpass.getuser(),
            reason=reason,
            action="promote",
        )
    )
    console.ok(f"{alias}: v{move.previous or '-'} → v{move.version} by {move.actor}")
    project.close()


@app.command()
def rollback(
    alias: str = typer.Option("champion", help="Alias to move back."),
    reason: str = typer.Option("manual rollback", help="Why (kept in the audit log)."),
    actor: str | None = options.ACTOR,
    spec: Path = options.SPEC,
) -> None:
    """Move an alias back to the version it held before (recorded in the audit log)."""
    project = _open(spec)
    move = console.guard(
        lambda: project.store.aliases.rollback(
            project.name, alias, actor=actor or getpass.getuser(), reason=reason
        )
    )
    console.ok(f"{alias}: v{move.previous or '-'} → v{move.version} by {move.actor}")
    project.close()


def _gate_cell(report: dict[str, object]) -> str:
    if str(report.get("reason", "")).startswith("gate disabled"):
        return "off"
    return "[green]passed[/green]" if report.get("passed") else "[red]failed[/red]"


def _show_notes(project: Any, version: int, decision: Any) -> None:
    """The notes on the version and on the decision that caused it, in local time."""
    from driftloop.store import notes

    book = notes.Notes(project.store)
    found = book.of(project.name, "version", version)
    if decision is not None:
        found += book.of(project.name, "decision", decision.id)
    for note in sorted(found, key=lambda n: n.at):
        local = note.at.astimezone()
        console.print(f"note on {note.target} {note.target_id} by {note.author}, "
                      f"{local:%Y-%m-%d %H:%M %Z}: {note.text}", highlight=False)


app.command("export")(model_formats.export)
app.command("import")(model_formats.import_model)
