"""`driftloop demo`: the whole loop on the bundled Elec2 stream, in about a minute and a half.

Backtests the pipeline of `driftloop init` (its spec, its default retraining policy) against the
baselines — never retrain, retrain on every batch, retrain weekly — and an online learner
(river's Hoeffding Adaptive Tree, learning every row) on daily batches after a 30-day warm-up,
prints the comparison and writes a self-contained HTML report.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import typer

from driftloop.cli import console

DEFAULT_POLICY = "driftloop default"
SPEC_POLICY = "spec policy"
ONLINE_POLICY = "online (river HAT)"
DEMO_POLICIES: dict[str, dict[str, Any]] = {
    # A fixed schedule with about the default's training budget: every 8 days of new data.
    "every 8 days": {"triggers": [{"kind": "volume", "rows": 8 * 48}], "cooldown": 0},
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
}


def demo(
    report: Path = typer.Option(
        Path("driftloop-demo.html"), help="Where to write the HTML report."
    ),
    workers: int = typer.Option(
        min(2, os.cpu_count() or 1), min=1, help="Policies replayed in parallel."
    ),
    ray: bool = typer.Option(
        False, "--ray", help="Replay the policies as Ray tasks on a local Ray (127.0.0.1)."
    ),
) -> None:
    """Backtest driftloop's default retraining policy on real drifting data (Elec2)."""
    from driftloop.controller import backtest
    from driftloop.core import config
    from driftloop.data import elec2

    scaffold = resources.files("driftloop.cli").joinpath("scaffold", "driftloop.yaml").read_text()
    spec = config.parse_spec(scaffold, "driftloop.yaml (demo)")
    trainer = {**spec.trainer.model_dump(mode="json"), **TRAINER}
    if ray:  # the policies run as Ray tasks; each trains in its own task
        trainer["executor"] = "ray"
    spec = backtest.policy_spec(spec, {"trainer": trainer})
    frame = elec2.load_elec2()
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
    from driftloop.ui import report as reports

    started = time.perf_counter()
    ends = backtest.batch_ends(frame, spec.timestamp, every, warmup)
    names = [*backtest.BASELINES, *policies]
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console.stdout,
    ) as bar:
        tasks = {name: bar.add_task(name, total=len(ends)) for name in names}
        results = console.guard(
            lambda: backtest.backtest(
                frame,
                spec,
                policies,
                base_dir=base_dir,
                every=every,
                warmup=warmup,
                workers=workers,
                progress=lambda name, done: bar.update(tasks[name], completed=done),
            )
        )
        for name in names:
            bar.update(tasks[name], completed=len(ends))
    show_results(reports.summary_rows(results), spec.gate.metric)
    if report is not None:
        window = spec.trainer.window
        html = reports.render_backtest(
            results,
            title=title,
            focus=next(name for name in policies if not policies[name]),
            description=f"{len(ends) - 1} batches of {_human(every)} after a "
            f"{_human(warmup)} warm-up, "
            f"test-then-train; trainer {spec.trainer.function}, window {window.kind}"
            + (f" {_human(window.duration)}" if window.duration else ""),
        )
        report.write_text(html)
        console.ok(f"report: {report} ({len(html) // 1024} KB)")
    console.info(f"{time.perf_counter() - started:.0f} s in all")


def show_results(rows: list[dict[str, Any]], metric: str) -> None:
    """The comparison; percentages are relative to retraining on every batch (e.b.)."""
    estimated = any(row.get("estimate_mae") is not None for row in rows)
    headers = ["policy", metric, "% e.b.", "trained", "promoted", "CPU s", "%CPU"]
    table = console.table(*headers, *(["est. MAE"] if estimated else []))
    table.columns[0].no_wrap = True
    table.caption = (
        "% e.b.: of every-batch; CPU s: training CPU seconds (online: learning CPU seconds; "
        "trained: snapshots)"
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


def _human(delta: timedelta) -> str:
    """`timedelta(days=1)` as "1 day", `timedelta(hours=12)` as "12 hours".

    >>> _human(timedelta(days=30)), _human(timedelta(hours=12))
    ('30 days', '12 hours')
    """
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
