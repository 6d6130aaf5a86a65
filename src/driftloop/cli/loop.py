"""`driftloop tick` (one reconcile step), `driftloop run` (tick forever), `driftloop retrain`
(ask for a retraining; the next tick acts on it). Called by `cli.main`."""

from __future__ import annotations

import getpass
import math
import signal
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from driftloop.cli import console, durations, options


def tick(
    spec: Path = options.SPEC,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object and exit with the status's code: 0 acted, "
        "1 failed, 75 lease held elsewhere, 99 nothing to do (`cli.tick_json`).")] = False,
    exit_zero: Annotated[bool, typer.Option(
        "--exit-zero", help="With --json: exit 0 unless the tick failed.")] = False,
) -> None:
    """Run one step of the loop: ingest → validate → evaluate → decide → train → gate → promote."""
    from driftloop.controller import project as projects
    from driftloop.controller import tick as ticking

    if as_json:
        tick_as_json(spec, exit_zero)
        return
    project = console.guard(lambda: projects.open_project(spec))
    controller = ticking.build_controller(project)
    try:
        with console.busy("ticking ..."):
            result = console.guard(controller.tick)
        notify(project, result)
    finally:
        controller.release()
    show_tick(result)
    if result.outcome is None:
        show_give_up(project)
    project.close()
    if result.outcome is not None and result.outcome.version is None:
        raise typer.Exit(1)  # a failed training must fail a cron job or a CI step


def tick_as_json(spec: Path, exit_zero: bool) -> None:
    """`tick --json`: one tick, one JSON line on stdout, the status's exit code."""
    from driftloop.cli import tick_json
    from driftloop.controller import attempts
    from driftloop.controller import project as projects
    from driftloop.controller import tick as ticking
    from driftloop.core import errors
    from driftloop.train import fingerprint

    name = None
    try:
        project = projects.open_project(spec)
        name = project.name
        try:
            controller = ticking.build_controller(project)
            try:
                result = controller.tick()
            finally:
                controller.release()
            gave_up = None
            if result.outcome is None:
                trainer = fingerprint.trainer_sha256(project.spec.trainer, project.base_dir)
                gave_up = attempts.latest_give_up(project.store, name, trainer)
            found = tick_json.document(name, result, gave_up)
        finally:
            project.close()
    except errors.DriftloopError as exc:
        found = tick_json.failure(name, str(exc))
    except Exception as exc:  # the scheduler still gets its one line; the trace goes to stderr
        console.stderr.print_exception()
        found = tick_json.failure(name, f"{type(exc).__name__}: {exc}")
    console.stdout.out(tick_json.dumps(found), highlight=False)
    code = found["exit_code"]
    if exit_zero and found["status"] != "failed":
        code = 0
    raise typer.Exit(code)


def run(
    spec: Path = options.SPEC,
    every: str = typer.Option("1m", "--every", help=f"Time between ticks: {durations.HELP}."),
    ticks: int = typer.Option(0, "--ticks", help="Stop after this many ticks (0: never)."),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=0, max=65535,
        help="Expose the controller's Prometheus metrics on this port (/metrics)."),
    metrics_host: str = typer.Option(
        "127.0.0.1", "--metrics-host", help="Address the metrics bind to."),
) -> None:
    """Tick every `--every` seconds until stopped (Ctrl-C) or `--ticks` are done.

    Any number of controllers may run on one shared store (PostgreSQL): each tick takes the
    pipeline's lease and gives it back when done, so whichever controller comes next does the
    next step, and one that dies mid-tick is replaced once `lease_timeout` has passed.

    Ctrl-C (or SIGTERM) lets the current tick finish, then stops: interrupted half-way, a tick
    could leave a transaction open on the lease row that the release then waits for. A second
    Ctrl-C stops at once."""
    from driftloop.controller import project as projects
    from driftloop.controller import telemetry
    from driftloop.controller import tick as ticking
    from driftloop.core import errors

    pause = durations.parse(every, "--every").total_seconds()
    project = console.guard(lambda: projects.open_project(spec))
    controller = ticking.build_controller(project)
    metrics = telemetry.ControllerMetrics(project.name)
    exposed = None
    if metrics_port is not None:
        exposed = metrics.serve(metrics_port, metrics_host)
        console.info(f"metrics on http://{metrics_host}:{exposed.server_port}/metrics")
    stopping = threading.Event()

    def stop(_signum: int, _frame: Any) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt
        stopping.set()
        console.info("stopping after this tick (Ctrl-C again: at once)")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    done, gave_up = 0, None
    try:
        while not stopping.is_set() and (ticks == 0 or done < ticks):
            started = time.perf_counter()
            try:
                try:
                    metrics.holding(True)  # a tick that finds the lease taken returns at once
                    result = controller.tick()
                    notify(project, result)
                finally:
                    controller.release()  # the next tick is whoever's comes first
                    metrics.holding(False)
                metrics.observe(result, time.perf_counter() - started, project.clock.now())
                show_tick(result)
                if result.outcome is None:
                    gave_up = show_give_up(project, unless=gave_up)
            except errors.TemporaryError as exc:
                metrics.failed(time.perf_counter() - started)
                console.info(f"temporary problem, retrying in {exc.delay:.0f}s: {exc}")
                stopping.wait(exc.delay)
                continue
            except (errors.PermanentError, errors.ConflictError) as exc:
                metrics.failed(time.perf_counter() - started)
                console.stderr.print(f"[red]tick failed[/red]: {exc}; carrying on", markup=True)
            except errors.DriftloopError as exc:
                console.fail(str(exc))
            done += 1
            if ticks == 0 or done < ticks:
                wait_for_next_tick(stopping, pause)
    except KeyboardInterrupt:
        stopping.set()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        controller.release()
        project.close()
        if exposed is not None:
            exposed.shutdown()
            exposed.server_close()
    if stopping.is_set():
        console.info("stopped")


def notify(project: Any, result: Any) -> None:
    """Tell the spec's webhooks what happened (`controller.notify`), while the tick's lease is
    still held; a receiver that is down only delays its notifications (they are retried)."""
    if not project.spec.notify or result.skipped is not None:
        return
    from driftloop.controller import notify as notifying

    done = notifying.Notifier(project).run()
    if done.sent or done.failed or done.dead:
        console.info(f"notifications: {done.sent} sent, {done.failed} to retry, {done.dead} "
                     "given up (driftloop notifications)")


def wait_for_next_tick(stopping: threading.Event, seconds: float) -> None:
    """Wait `seconds` (or until `stopping`), saying so: a countdown on a terminal, one line
    with the time of the next tick otherwise (a log)."""
    if not console.stdout.is_terminal:
        at = datetime.now() + timedelta(seconds=seconds)
        console.info(f"next tick in {seconds:g} s, at {at:%H:%M:%S}")
        stopping.wait(seconds)
        return
    end = time.monotonic() + seconds
    with console.stdout.status("") as shown:
        while not stopping.is_set() and (left := end - time.monotonic()) > 0:
            shown.update(f"[dim]next tick in {math.ceil(left)} s (Ctrl-C stops)[/dim]")
            stopping.wait(min(1.0, left - math.floor(left) or 1.0))


def retrain(
    spec: Path = options.SPEC,
    reason: str = typer.Option("manual request", help="Why (kept with the decision)."),
    actor: str | None = options.ACTOR,
) -> None:
    """Ask for a retraining now; the next tick trains, gates and (if better) promotes.

    A training that fails is retried by the next ticks until it failed 3 times with the same
    trainer (`controller.attempts.MAX_ATTEMPTS`; changing train.py or the spec's `trainer:`
    starts the count again, and a run cut short by a stopped controller does not count).
    Then the loop gives up and says so in `driftloop status` and `tick`; this command is how
    to try again."""
    from driftloop.controller import project as projects
    from driftloop.controller import retrain as retraining

    project = console.guard(lambda: projects.open_project(spec))
    request = retraining.request(project.store, project.name, reason, actor or getpass.getuser())
    console.ok(f"retraining requested (decision {request.id}); the next tick acts on it")
    project.close()


def show_give_up(project: Any, unless: Any = None) -> Any:
    """Say so if the loop gave up retrying the newest retraining (`controller.attempts`),
    unless that is the give-up `unless` (already shown); returns the give-up or None."""
    from driftloop.controller import attempts
    from driftloop.train import fingerprint

    trainer = fingerprint.trainer_sha256(project.spec.trainer, project.base_dir)
    gave_up = attempts.latest_give_up(project.store, project.name, trainer)
    if gave_up is not None and gave_up != unless:
        console.print(gave_up.message(), style="yellow", markup=False, highlight=False)
    return gave_up


def show_tick(result: object) -> None:
    """One line per thing the tick did."""
    from driftloop.controller import tick as ticking

    assert isinstance(result, ticking.TickResult)
    if result.skipped:
        console.info(f"skipped: {result.skipped}")
        return
    accepted = sum(b.status == "accepted" for b in result.batches)
    if result.batches:
        console.ok(
            f"ingested {len(result.batches)} batch(es): {accepted} accepted, "
            f"{len(result.batches) - accepted} quarantined"
        )
    for line in result.repaired:
        console.ok(f"repaired: {line}")
    for evaluation in result.evaluations:
        estimated = evaluation.estimated_value
        guess = "" if estimated is None else f"estimated accuracy {estimated:.4f}"
        scored = (f"batch {evaluation.batch_id}" if evaluation.batch_id is not None
                  else "labels sent back to the server")
        if evaluation.value is not None:
            console.ok(
                f"champion v{evaluation.version} on {scored}: "
                f"{evaluation.metric} {evaluation.value:.4f} ({_rows(evaluation.rows)})"
                + (f"; {guess} before its labels" if guess else "")
            )
        elif guess:
            console.ok(
                f"champion v{evaluation.version} on {scored}: no labels yet; "
                f"{guess} ({_rows(evaluation.estimated_rows)})"
            )
    if result.decision is not None:
        verdict = result.decision.evidence.get("policy", {})
        mark = "[yellow]retrain[/yellow]" if result.decision.fired else "no retrain"
        console.print(f"decision {result.decision.id}: {mark} — {verdict.get('reason', '')}")
    if result.outcome is not None:
        outcome = result.outcome
        if outcome.version is None:
            console.print(f"[red]{outcome.reason}[/red]", markup=True, highlight=False)
        elif outcome.promoted:
            console.ok(f"v{outcome.version.version} promoted to champion ({outcome.reason})")
        else:
            console.print(f"v{outcome.version.version} kept as challenger: {outcome.reason}")
    if not result.acted:
        console.info("nothing new")


def _rows(count: int) -> str:
    """``"1 row"``, ``"48 rows"``."""
    return f"{count} row{'' if count == 1 else 's'}"
