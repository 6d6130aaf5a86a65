"""`driftloop backtest`: replay history through the pipeline's own tick on a simulated clock,
comparing its retraining policy with the baselines (never, every batch) and a fixed schedule
of the same training budget.

History is the spec's source read from the start (or `--data FILE`, or with `--archive` the
labelled predictions the server logged, read back from the pipeline's archive), ordered by
the spec's timestamp. Called by `cli.main`; `driftloop demo` is the same on bundled data.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from driftloop.cli import console, durations, json_output, options

if TYPE_CHECKING:
    from driftloop.core import config



def backtest(
    spec: Path = options.SPEC,
    data: Path | None = typer.Option(
        None, help="CSV or Parquet file to replay; default: the spec's source from the start."
    ),
    every: str = typer.Option("1d", help=f"Batch length: {durations.HELP}."),
    warmup: str = typer.Option(
        "30d", help=f"History used to train the first model: {durations.HELP}."),
    report: Path | None = typer.Option(
        None, "--out", "-o", help="Also write an HTML report here."),
    workers: int = typer.Option(
        min(2, os.cpu_count() or 1), min=1, help="Policies replayed in parallel."
    ),
    archive: bool = typer.Option(
        False, "--archive", help="Replay the labelled predictions the server logged, from the "
        "pipeline's archive (retention moves them there after the label horizon)."),
    as_json: options.Json = False,
) -> None:
    """Backtest the spec's retraining policy against the baselines on history."""
    from driftloop.cli import demo
    from driftloop.core import config

    loaded = console.guard(lambda: config.load_spec(spec))
    if loaded.timestamp is None:
        console.fail(f"{spec}: a backtest needs `timestamp:` (the column that orders rows in time)")
    if archive:
        frame = console.guard(lambda: _archived(spec))
    else:
        frame = console.guard(lambda: _history(loaded, spec.resolve().parent, data))
    step, warm = durations.parse(every, "--every"), durations.parse(warmup, "--warmup")
    if as_json:
        _replay_json(frame, loaded, spec.resolve().parent, step, warm, report, workers)
        return
    demo.replay_and_report(
        frame,
        loaded,
        base_dir=spec.resolve().parent,
        every=step,
        warmup=warm,
        report=report,
        workers=workers,
        title=f"driftloop backtest: {loaded.name}",
        policies={demo.SPEC_POLICY: {}},
    )


def _replay_json(
    frame: object, spec: config.PipelineSpec, base_dir: Path, every: timedelta,
    warmup: timedelta, report: Path | None, workers: int,
) -> None:
    """`backtest --json`: the policies' headline numbers as one document, no progress bar."""
    from driftloop.cli import demo
    from driftloop.controller import backtest as backtests
    from driftloop.ui import backtest_report as reports

    policies: dict[str, dict[str, object]] = {demo.SPEC_POLICY: {}}
    results = console.guard(lambda: backtests.backtest(
        frame, spec, policies, base_dir=base_dir,
        every=every, warmup=warmup, workers=workers, budget=demo.SPEC_POLICY))
    if report is not None:
        steps = len(results[0].steps)
        report.write_text(reports.render_backtest(
            results, title=f"driftloop backtest: {spec.name}", focus=demo.SPEC_POLICY,
            description=demo.describe(steps, every, warmup, spec)), encoding="utf-8")
    json_output.emit({
        "pipeline": spec.name,
        "metric": spec.gate.metric,
        "every_seconds": every.total_seconds(),
        "warmup_seconds": warmup.total_seconds(),
        "report": None if report is None else str(report),
        "policies": [
            {"policy": r.policy, "score": r.score, "trainings": r.trainings,
             "promotions": r.promotions, "cpu_seconds": r.cpu_seconds,
             "wall_seconds": r.wall_seconds, "batches": len(r.steps),
             "estimate_mae": r.estimate_mae}
            for r in results
        ],
    })


def _archived(path: Path) -> object:
    """The labelled predictions in the archive of the pipeline at `path`, as data rows."""
    from driftloop.controller import project as projects
    from driftloop.store import archive

    project = projects.open_project(path)
    try:
        spec = project.spec
        assert spec.timestamp is not None
        frame = archive.Archive(project.store, project.artifacts).labelled_rows(
            project.name, spec.target, spec.timestamp)
    finally:
        project.close()
    if frame.empty:
        console.fail("the archive holds no labelled predictions yet (retention moves them there "
                     "after `retention.label_horizon`)")
    return frame


def _history(spec: object, base_dir: Path, data: Path | None) -> object:
    """Every readable row of `data` or of the spec's source, in time order."""
    import pandas as pd

    from driftloop.core import config
    from driftloop.data import frames
    from driftloop.data.sources import base, files

    assert isinstance(spec, config.PipelineSpec) and spec.timestamp is not None
    if data is not None:
        frame, error = files.read_frame(data.read_bytes(), str(data), "auto")
        if frame is None:
            console.fail(f"{data}: {error}")
        parts = [frame]
    else:
        source = base.build_source(spec.source, base_dir)
        parts = [raw.frame for raw in source.poll(None) if raw.frame is not None]
    if not parts:
        console.fail("no readable data to replay")
    # Files whose columns or types differ from the first would be quarantined; leave them out.
    parts = [part for part in parts if part.dtypes.to_dict() == parts[0].dtypes.to_dict()]
    frame = pd.concat(parts, ignore_index=True)
    if spec.timestamp not in frame.columns:
        console.fail(f"the data has no {spec.timestamp!r} column (the spec's `timestamp`)")
    frame[spec.timestamp] = frames.parse_times(frame[spec.timestamp])
    return frame.sort_values(spec.timestamp, kind="stable").reset_index(drop=True)
