"""`driftloop init` (scaffold a working project) and `driftloop check` (validate a spec).

Called by `cli.main`; the scaffold's files live in `cli/scaffold/`, its sample data is cut from
the bundled Elec2 stream at init time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from driftloop.cli import console

WEEK = 7 * 48


def init(
    folder: Path = typer.Argument(..., help="Folder to create (must not exist or be empty)."),
    weeks: int = typer.Option(6, min=2, help="Weeks of sample data, one CSV file each."),
) -> None:
    """Scaffold a project: driftloop.yaml, train.py and sample data (one file deliberately bad)."""
    from driftloop.data import elec2

    if folder.exists() and any(folder.iterdir()):
        console.fail(f"{folder} exists and is not empty; choose a new folder.")
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


def _write_faulty_file(week: object, data: Path) -> None:
    """A week as a faulty meter would send it: text in a number column, a lost column, a gap."""
    import pandas as pd

    bad = pd.DataFrame(week).copy()
    bad["nswprice"] = bad["nswprice"].astype(object)
    bad.iloc[5:9, bad.columns.get_loc("nswprice")] = "ERR"
    bad = bad.drop(columns=["vicdemand"])
    bad.to_csv(data / f"{bad['time'].iloc[0]:%Y-%m-%d}-meter-fault.csv", index=False)


def check(
    spec: Path = typer.Option(Path("driftloop.yaml"), "--spec", "-s", help="The pipeline spec."),
) -> None:
    """Validate a spec (and find its trainer); errors name the file, the line and the field."""
    from driftloop.core import config
    from driftloop.train import trainer

    loaded = console.guard(lambda: config.load_spec(spec))
    console.guard(lambda: trainer.load_trainer(loaded.trainer.function, spec.resolve().parent))
    console.ok(f"{spec}: pipeline '{loaded.name}' is valid; its trainer was found")
    table = console.table("field", "value")
    table.add_row(
        "source",
        f"{loaded.source.kind}: {loaded.source.model_dump(exclude={'kind'}, exclude_none=True)}",
    )
    table.add_row("target", loaded.target)
    table.add_row("trainer", loaded.trainer.function)
    table.add_row("triggers", ", ".join(trigger.kind for trigger in loaded.triggers))
    table.add_row("store", loaded.store)
    table.add_row("artifacts", loaded.artifacts.url)
    if loaded.calendar is not None:
        from driftloop.data import calendar

        derived = ", ".join(calendar.derived_columns(loaded)) or "none"
        table.add_row("calendar", f"{derived} (time zone {loaded.timezone})")
    console.print(table)
    if loaded.calendar is not None and (note := calendar.holiday_note(loaded)) is not None:
        console.info(note)
