"""`driftloop demo`: the whole loop on the bundled Elec2 stream, in about a minute and a half.

Backtests the pipeline `driftloop init --data` derives for Elec2 in daily files (its default
retraining policy) against the
baselines — never retrain, retrain on every batch (with the spec's window rule and with a fixed
window as long as the warm-up), a fixed schedule with the default's number of trainings — and an
online learner (river's Hoeffding Adaptive Tree, learning every row) on daily batches after a
30-day warm-up, prints the comparison and writes a self-contained HTML report.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from driftloop.cli import console

DEFAULT_POLICY = "driftloop default"
SPEC_POLICY = "spec policy"
ONLINE_POLICY = "online (river HAT)"
DEMO_POLICIES: dict[str, dict[str, Any]] = {
    DEFAULT_POLICY: {},
    # Online: a Hoeffding Adaptive Tree (river) learns every labelled row; snapshots every
    # 1000 rows, rolled back when worse than the last good one. Measured under this daily
    # protocol: HAT alone 0.777, with the rollbacks 0.793; river ARF with 10 trees 0.797 at
    # about ten times HAT's CPU (100 s), too slow for this demo.
    ONLINE_POLICY: {
        "online": {
            "learner": "river.tree:HoeffdingAdaptiveTreeClassifier",
            "params": {"seed": 42},
            "checkpoint": {"every_events": 1000},
        }
    },
}
TRAINER = {
    "function": "driftloop.train.models:hist_gradient_boosting",
    "params": {"max_iter": 50, "learning_rate": 0.2},
    "executor": "inline",
    # A fixed two-week window instead of `auto`: auto's candidate fits on every one of 915
    # daily batches (the every-batch baseline) take several minutes on 2 cores, past what a
    # demo may take. `benchmarks/bench_policy.py` judges `auto` on the stream suite.
    "window": {"kind": "last", "size": "14 batches"},
}


def demo(
    report: Path = typer.Option(
        Path("driftloop-demo.html"), "--out", "-o",
        help="Where to write the HTML report."
    ),
    workers: int = typer.Option(
        min(2, os.cpu_count() or 1), min=1, help="Policies replayed in parallel."
    ),
    ray: bool = typer.Option(
        False, "--ray", help="Replay the policies as Ray tasks on a local Ray (127.0.0.1)."
    ),
) -> None:
    """Backtest driftloop's default retraining policy on real drifting data (Elec2)."""
    from driftloop.cli import calibrate
    from driftloop.controller import backtest
    from driftloop.core import config
    from driftloop.data import elec2

    frame = elec2.load_elec2()
    # What `driftloop init --data` writes for Elec2 in daily files.
    text = calibrate.spec_text(frame, name="electricity", target="class", timestamp="time",
                               every=timedelta(days=1))
    spec = config.parse_spec(text, "driftloop.yaml (demo)")
    trainer = {**spec.trainer.model_dump(mode="json"), **TRAINER}
    if ray:  # the policies run as Ray tasks; each trains in its own task
        trainer["executor"] = "ray"
    spec = backtest.policy_spec(spec, {"trainer": trainer})
    console.print(
        f"[bold]Elec2[/bold]: {len(frame):,} half-hourly rows from 1996-05-07 (NSW electricity "
        "market), a new batch every day, 30-day warm-up; each day is scored by the live model "
        "before anything learns from it."
    )
    replay_and_report(
        frame,
        spec,
        base_dir=Path.cwd(),
        every=timedelta(days=1),
        warmup=timedelta(days=30),
        report=report,
        workers=workers,
        title="driftloop demo: retraining policies on Elec2",
        policies=DEMO_POLICIES,
    )


def replay_and_report(
    frame: Any,
    spec: Any,
    *,
    base_dir: Path,
    every: timedelta,
    warmup: timedelta,
    report: Path | None,
    workers: int,
    title: str,
    policies: dict[str, dict[str, Any]],
) -> None:
    """Backtest `policies` (spec overrides; `{}` is the spec's own) and the baselines, with a
    progress bar; print the table; write the HTML report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from driftloop.controller import backtest
    from driftloop.ui import backtest_report as reports

    started = time.perf_counter()
    ends = backtest.batch_ends(frame, spec.timestamp, every, warmup)
    names = [*backtest.baselines(spec, 1), *policies]
    focus = next(name for name in policies if not policies[name])
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console.stdout,
    ) as bar:
        tasks = {name: bar.add_task(name, total=len(ends)) for name in names}

        def step(name: str, done: int) -> None:
            if name not in tasks:  # the schedule of the same budget, replayed last
                tasks[name] = bar.add_task(name, total=len(ends))
            bar.update(tasks[name], completed=done)

        results = console.guard(
            lambda: backtest.backtest(
                frame,
                spec,
                policies,
                base_dir=base_dir,
                every=every,
                warmup=warmup,
                workers=workers,
                progress=step,
                budget=focus,
            )
        )
        for task in tasks.values():
            bar.update(task, completed=len(ends))
    reference = reports.reference(results)
    show_results(
        reports.summary_rows(results), spec.gate.metric, reference.policy if reference else None
    )
    if report is not None:
        html = reports.render_backtest(
            results,
            title=title,
            focus=focus,
            description=describe(len(ends), every, warmup, spec),
        )
        report.write_text(html)
        console.ok(f"report: {report} ({len(html) // 1024} KB)")
    console.info(f"{time.perf_counter() - started:.0f} s in all")


def describe(batches: int, every: timedelta, warmup: timedelta, spec: Any) -> str:
    """The replay in a line. The warm-up is a batch too (it trains the first model), so the
    count matches the steps replayed and every-batch's trainings.

    >>> from driftloop.core import config
    >>> spec = config.PipelineSpec.model_validate({"name": "p", "target": "y",
    ...     "source": {"kind": "files", "path": "d"}, "trainer": {"function": "m:f"}})
    >>> describe(915, timedelta(days=1), timedelta(days=30), spec)
    '915 batches (a 30-day warm-up, then 914 of 1 day), test-then-train; trainer m:f, window all'
    """
    window = spec.trainer.window
    return (
        f"{batches} batches (a {_human(warmup, single=True)} warm-up, then {batches - 1} of "
        f"{_human(every)}), test-then-train; trainer {spec.trainer.function}, window "
        f"{window.kind}"
        + (f" {_human(window.duration)}" if window.duration else "")
        + (f" {window.rows} rows" if window.rows else "")
        + (f" {window.size}" if window.size else "")
    )


def show_results(rows: list[dict[str, Any]], metric: str, reference: str | None) -> None:
    """The comparison; percentages are relative to `reference`, the (better) every-batch row."""
    estimated = any(row.get("estimate_mae") is not None for row in rows)
    headers = ["policy", metric, "% of e.b.", "trained", "promoted", "CPU s", "% CPU"]
    table = console.table(*headers, *(["est. MAE"] if estimated else []))
    table.columns[0].no_wrap = True
    table.caption = (
        f"% of e.b., % CPU: of {reference or 'every-batch'}'s {metric} and training CPU; "
        "CPU s: training CPU seconds (online: learning CPU seconds; trained: snapshots)"
        + ("; est. MAE: mean absolute error of the accuracy estimated before each batch's "
           "labels (calibrated confidences) against the accuracy realised" if estimated else "")
    )
    for row in rows:
        style = "bold" if row["policy"] in {DEFAULT_POLICY, SPEC_POLICY} else ""
        table.add_row(
            row["policy"],
            f"{row['score']:.4f}",
            f"{row['relative_score']:.1%}" if row["relative_score"] else "",
            str(row["trainings"]),
            str(row["promotions"]),
            f"{row['cpu_seconds']:.1f}",
            f"{row['relative_cpu']:.1%}" if row["relative_cpu"] is not None else "",
            *([_mae(row.get("estimate_mae"))] if estimated else []),
            style=style,
        )
    console.print(table)


def _mae(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _human(delta: timedelta, single: bool = False) -> str:
    """`timedelta(days=1)` as "1 day", `timedelta(hours=12)` as "12 hours"; `single` for use
    before a noun ("30-day").

    >>> _human(timedelta(days=30)), _human(timedelta(hours=12)), _human(timedelta(days=30), True)
    ('30 days', '12 hours', '30-day')
    """
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count}-{unit}" if single else f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds}-second" if single else f"{seconds} seconds"
