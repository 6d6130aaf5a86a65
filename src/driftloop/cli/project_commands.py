"""`driftloop init` (scaffold a working project) and `driftloop check` (validate a spec).

Called by `cli.main`; the scaffold's files live in `cli/scaffold/`, its sample data is cut from
the bundled Elec2 stream at init time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from driftloop.cli import console, json_output, options

if TYPE_CHECKING:
    from driftloop.core import config

WEEK = 7 * 48


def init(
    folder: Path = typer.Argument(..., help="Folder to create (must not exist or be empty)."),
    weeks: int = typer.Option(6, min=2, help="Weeks of sample data, one CSV file each."),
    data_file: Path | None = typer.Option(
        None, "--data", help="Your own data (CSV or Parquet, one batch): the spec's defaults "
        "are derived from it, and it becomes the first file of data/."
    ),
    target: str | None = typer.Option(None, help="With --data: the column to predict."),
    timestamp: str | None = typer.Option(
        None, help="With --data: the column that orders rows in time (default: the first "
        "date-time column)."
    ),
) -> None:
    """Scaffold a project: driftloop.yaml, train.py and data — the bundled sample (one file
    deliberately bad), or your own file with `--data FILE --target COLUMN`."""
    if folder.exists() and any(folder.iterdir()):
        console.fail(f"{folder} exists and is not empty; choose a new folder.")
    if isinstance(data_file, Path):  # (called from Python, the options are typer's defaults)
        _init_from_data(folder, data_file, target if isinstance(target, str) else None,
                        timestamp if isinstance(timestamp, str) else None)
        return
    from driftloop.data import elec2

    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    scaffold = resources.files("driftloop.cli").joinpath("scaffold")
    for name in ("driftloop.yaml", "train.py"):
        (folder / name).write_text(scaffold.joinpath(name).read_text())

    frame = elec2.load_elec2().iloc[: weeks * WEEK]
    for week in range(weeks):
        part = frame.iloc[week * WEEK : (week + 1) * WEEK]
        part.to_csv(data / f"{part['time'].iloc[0]:%Y-%m-%d}.csv", index=False)
    _write_faulty_file(frame.iloc[2 * WEEK : 3 * WEEK], data)
    console.ok(
        f"created {folder}: driftloop.yaml, train.py, data/ ({weeks} weekly files + 1 faulty)"
    )
    console.info(f"next: cd {folder} && driftloop check && driftloop ingest && driftloop batches")


def _init_from_data(folder: Path, data_file: Path, target: str | None,
                    timestamp: str | None) -> None:
    """A project whose spec is derived from `data_file` (`calibrate.spec_text`)."""
    import shutil

    from driftloop.data.sources import files

    if target is None:
        console.fail("--data needs --target COLUMN: the column to predict")
    frame, error = files.read_frame(data_file.read_bytes(), str(data_file), "auto")
    if frame is None:
        console.fail(f"{data_file}: {error}")
    if timestamp is None:
        timestamp = next((str(c) for c in frame.columns if _is_time(frame[c])), None)
    elif timestamp not in frame.columns:
        console.fail(f"{data_file}: no column {timestamp!r}; columns: "
                     f"{', '.join(map(str, frame.columns))}")
    text = console.guard(lambda: _spec_text(frame, folder.name, target, timestamp,
                                            data_file.suffix))
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(data_file, folder / "data" / data_file.name)
    scaffold = resources.files("driftloop.cli").joinpath("scaffold")
    (folder / "train.py").write_text(scaffold.joinpath("train.py").read_text())
    (folder / "driftloop.yaml").write_text(text)
    console.ok(f"created {folder}: driftloop.yaml (derived from {data_file.name}), train.py, data/")
    console.info(f"next: cd {folder} && driftloop check && driftloop tick")


def _spec_text(frame: Any, name: str, target: str, timestamp: str | None, suffix: str) -> str:
    from driftloop.cli import calibrate
    from driftloop.core import errors

    try:
        return calibrate.spec_text(frame, name=name, target=target, timestamp=timestamp,
                                   path=f"data/*{suffix}")
    except ValueError as exc:
        raise errors.ConfigError(str(exc)) from exc


def _is_time(series: Any) -> bool:
    """Whether a column holds date-times (parsed already, or ISO 8601 text)."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return True
    if not (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object):
        return False
    try:
        pd.to_datetime(series.head(20), utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return False
    return True


def _write_faulty_file(week: object, data: Path) -> None:
    """A week as a faulty meter would send it: text in a number column, a lost column, a gap."""
    import pandas as pd

    bad = pd.DataFrame(week).copy()
    bad["nswprice"] = bad["nswprice"].astype(object)
    bad.iloc[5:9, bad.columns.get_loc("nswprice")] = "ERR"
    bad = bad.drop(columns=["vicdemand"])
    bad.to_csv(data / f"{bad['time'].iloc[0]:%Y-%m-%d}-meter-fault.csv", index=False)


def check(
    spec: Path = options.SPEC,
    data: bool = typer.Option(
        False, "--data", help="Also read the source's first batch and check the spec's columns "
        "against it (target, timestamp, id, features, validation settings).",
    ),
    as_json: options.Json = False,
) -> None:
    """Validate a spec, find its trainer and check that it takes `trainer.params`; errors
    name the file, the line and the field. With --data, also check that the columns it names
    are in the data and parse. With --json: ``{"spec", "valid", "problems", "pipeline"}`` on
    stdout, and exit code 1 when it is not valid."""
    loaded, problems = check_problems(spec, data)
    if as_json:
        json_output.emit({"spec": str(spec), "valid": not problems, "problems": problems,
                          "pipeline": None if loaded is None else loaded.name})
        if problems:
            raise typer.Exit(1)
        return
    if problems or loaded is None:
        console.fail("\n".join(problems))
    console.ok(f"{spec}: pipeline '{loaded.name}' is valid; its trainer was found and takes "
               "its params" + ("; it fits the data" if data else ""))
    from driftloop.core import secrecy

    table = console.table("field", "value")
    source = secrecy.redact(loaded.source.model_dump(mode="json", exclude={"kind"},
                                                     exclude_none=True))
    table.add_row("source", f"{loaded.source.kind}: {source}")
    table.add_row("target", loaded.target)
    rules = loaded.trainer.federated
    table.add_row("trainer", loaded.trainer.function + (
        f" (federated: {rules.rounds} rounds of {rules.epochs} epoch(s), at least "
        f"{rules.min_regions} regions; driftloop regions federate)" if rules else ""))
    table.add_row("triggers", ", ".join(trigger.kind for trigger in loaded.triggers))
    table.add_row("store", secrecy.redact_url(loaded.store))
    table.add_row("artifacts", secrecy.redact_url(loaded.artifacts.url))
    if loaded.calendar is not None:
        from driftloop.data import calendar

        derived = ", ".join(calendar.derived_columns(loaded)) or "none"
        table.add_row("calendar", f"{derived} (time zone {loaded.timezone})")
    _global_rows(table, loaded)
    console.print(table)
    if loaded.calendar is not None and (note := calendar.holiday_note(loaded)) is not None:
        console.info(note)


def check_problems(spec: Path, data: bool) -> tuple[config.PipelineSpec | None, list[str]]:
    """The spec (None if it is not valid) and what is wrong with it, each problem one message
    that names the file, line and field where it can."""
    from driftloop.core import config, errors
    from driftloop.train import trainer

    try:
        loaded = config.load_spec(spec)
    except errors.ConfigError as exc:
        return None, str(exc).splitlines()
    try:
        misfit = trainer.param_problem(loaded.trainer, spec.resolve().parent)
    except errors.DriftloopError as exc:
        return loaded, [str(exc)]
    if misfit is not None:
        where = ("trainer", "params", misfit.param) if misfit.param else ("trainer", "params")
        field = ".".join(where)
        accepted = ", ".join(misfit.accepted) or "none"
        return loaded, [f"{spec}:{config.line_of(spec, *where)}: {field}: {misfit.problem}; "
                        f"{loaded.trainer.function} accepts: {accepted}"]
    if data:
        found = _data_problem(loaded, spec.resolve().parent)
        if found is not None:
            return loaded, [found]
    return loaded, []


def _global_rows(table: Any, spec: Any) -> None:
    """Regions, deployment windows (with the next opening), text columns and webhooks."""
    from driftloop.core import secrecy

    if spec.regions:
        table.add_row("regions", "; ".join(
            f"{r.name} ({r.timezone}): store {secrecy.redact_url(r.store)}, artifacts "
            f"{secrecy.redact_url(r.artifacts)}"
            for r in spec.regions) + " (each process: DRIFTLOOP_REGION=name)")
    if spec.rollout.windows or spec.rollout.freeze:
        from datetime import UTC, datetime

        from driftloop.policy import deploy_windows

        calendar = deploy_windows.DeployCalendar(spec.rollout.windows, spec.rollout.freeze)
        opens = deploy_windows.local_text(calendar.opens_at(datetime.now(UTC)),
                                          spec.rollout.windows)
        table.add_row("deploy windows", "; ".join(w.describe() for w in spec.rollout.windows)
                      + f" (next promotion possible {opens})")
    if spec.text is not None:
        table.add_row("text columns", ", ".join(spec.text.columns))
    for hook in spec.notify:
        table.add_row("notify", f"{secrecy.redact_url(hook.url)}: {', '.join(hook.events)}"
                      + ("" if hook.secret else " (unsigned: no secret)"))


STREAM_KINDS = {"redis", "nats"}
"""Sources `check --data` does not read: polling a stream would take messages from it."""


def _data_problem(spec: Any, base_dir: Path) -> str | None:
    """Read the source's first batch: every column problem of the spec in one message, or
    None."""
    from driftloop.core import errors
    from driftloop.data.sources import base as sources
    from driftloop.validation import spec_data

    if spec.source.kind in STREAM_KINDS:
        return (f"check --data reads files or SQL sources; a {spec.source.kind} stream "
                "would lose the messages it reads. Check the columns of a sample by hand")
    try:
        source = sources.build_source(spec.source, base_dir)
        first = next(iter(source.poll(None)), None)
    except errors.DriftloopError as exc:
        return str(exc)
    if first is None:
        return f"check --data: the source {source.key} has no data yet"
    if first.frame is None:
        return f"check --data: {first.source_uri} cannot be read: {first.error}"
    found = spec_data.problems(spec, first.frame)
    if found:
        return (f"the spec does not fit {first.source_uri}:\n"
                + "\n".join(f"  • {problem}" for problem in found))
    return None
