"""The cost of doing nothing: `driftloop tick` with nothing new, and the read-only commands, on a
project with a long history.

The project is the `driftloop init` scaffold (Elec2 weeks) after its first tick trained v1;
then, through the store API, 9 999 more model versions (failed challengers of v1's run, the
newest made champion: a long-lived pipeline), 100 000 logged predictions of the champion and
10 000 feedback labels, which one more tick turns into evaluations. Then, with nothing new:

* `driftloop tick` as a whole process (wall and CPU, median of `--repeats`), goal <= 0.5 s wall;
* the same tick in process: a new `Controller` on the open project (a cron-like first tick
  without the interpreter start) and the next ticks of one controller (`driftloop run`),
  goal <= 50 ms;
* `driftloop models list`, `driftloop batches` and `driftloop status` (when the command
  exists) as processes, goal <= 0.5 s wall each.

Runs against whichever driftloop is imported (set PYTHONPATH to compare two trees). Prints the
machine's load (`uptime`) before and after: the machine may be shared; and whether driftloop's
modules load from cached bytecode, as an installed package's do, or are compiled from source by
every process (PYTHONDONTWRITEBYTECODE with no cache yet), which costs them about a fifth more.

    python benchmarks/bench_tick.py [--repeats 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import driftloop
from driftloop.controller import project as projects
from driftloop.controller import tick
from driftloop.store import serving

VERSIONS = 10_000
PREDICTIONS = 100_000
LABELLED = 10_000
CHUNK = 5_000
GOAL_PROCESS, GOAL_IN_PROCESS = 0.5, 0.05


def driftloop_command(*args: str, cwd: Path, check: bool = True) -> tuple[float, float, str]:
    """Run `driftloop args` in a new interpreter: (wall s, CPU s of the child, output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from driftloop.cli.main import app; app()", *args],
        cwd=cwd, capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and done.returncode != 0:
        raise SystemExit(f"driftloop {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return wall, cpu, done.stdout + done.stderr


def build_project(folder: Path) -> None:
    """The scaffold after one tick, then the history added through the store API."""
    driftloop_command("init", str(folder), cwd=folder.parent)
    spec = folder / "driftloop.yaml"
    spec.write_text(spec.read_text().replace("executor: local", "executor: inline"))
    driftloop_command("tick", cwd=folder)
    project = projects.open_project(spec)
    store, name = project.store, project.name
    first = store.versions.get(name, 1)
    started = time.perf_counter()
    failed = {"passed": False, "reason": "challenger not better than the champion"}
    for _ in range(VERSIONS - 1):
        newest = store.versions.add(
            name, run_id=first.run_id, artifact_uri=first.artifact_uri, sha256=first.sha256,
            metrics=first.metrics, profile_id=first.profile_id, gate_report=failed)
    store.aliases.set(name, "champion", newest.version, actor="bench", reason="bench history")
    versions_s = time.perf_counter() - started

    started = time.perf_counter()
    log = serving.ServingStore(store)
    features = {"nswprice": 0.06, "nswdemand": 0.42, "vicprice": 0.003, "vicdemand": 0.42,
                "transfer": 0.41, "period": 0.5}
    ids = []
    for start in range(0, PREDICTIONS, CHUNK):
        rows = [
            serving.Prediction(str(uuid.uuid4()), name, "champion", newest.version, None,
                               features, i % 2, {"0": 0.4, "1": 0.6}, store.clock.now())
            for i in range(start, start + CHUNK)
        ]
        log.add_predictions(rows)
        ids += [row.id for row in rows]
    for start in range(0, LABELLED, CHUNK):
        log.add_feedback(name, [(i, 1) for i in ids[start:start + CHUNK]], actor="bench")
    predictions_s = time.perf_counter() - started
    project.close()
    driftloop_command("tick", cwd=folder)  # turns the labels into evaluations
    print(f"built: {VERSIONS} versions in {versions_s:.1f} s, {PREDICTIONS} predictions and "
          f"{LABELLED} labels in {predictions_s:.1f} s")


def in_process(folder: Path, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of a tick by a new controller on the open project, and of later ticks by one."""
    project = projects.open_project(folder / "driftloop.yaml")
    first, later = [], []
    try:
        for _ in range(repeats):
            controller = tick.build_controller(project)
            try:
                started = time.perf_counter()
                result = controller.tick()
                first.append(time.perf_counter() - started)
                assert not result.acted, result
                for _ in range(3):
                    started = time.perf_counter()
                    result = controller.tick()
                    later.append(time.perf_counter() - started)
                    assert not result.acted, result
            finally:
                controller.release()
    finally:
        project.close()
    return first, later


def process(args: tuple[str, ...], folder: Path, repeats: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu, output = driftloop_command(*args, cwd=folder)
        if args == ("tick",):
            assert "nothing new" in output, output
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus


def has_command(name: str, folder: Path) -> bool:
    _, _, output = driftloop_command(name, "--help", cwd=folder, check=False)
    return "No such command" not in output


def bytecode() -> str:
    """Whether driftloop's modules load from cached bytecode or are compiled by every process."""
    cached = Path(importlib.util.cache_from_source(tick.__file__))
    if cached.exists() or not sys.dont_write_bytecode:
        return "cached"
    return "compiled from source by every process (PYTHONDONTWRITEBYTECODE, no cache)"


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def row(label: str, values: list[float], goal: float, extra: str = "") -> None:
    median = statistics.median(values)
    mark = "ok" if median <= goal else "OVER"
    shown = " ".join(f"{v:.3f}" for v in values)
    print(f"  {label:<34} median {median * 1000:8.1f} ms  (goal {goal * 1000:.0f} ms: {mark})"
          f"{extra}   runs: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Build the project here (and keep it).")
    options = parser.parse_args()
    print(f"driftloop from {Path(driftloop.__file__).parent}; bytecode {bytecode()}")
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = (options.keep or Path(tmp)) / "bench-tick"
        if not (folder / "driftloop.db").exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            build_project(folder)
        measure(folder, options.repeats)
    print(f"load after:  {load()}")


def measure(folder: Path, repeats: int) -> None:
    commands: list[tuple[str, ...]] = [("tick",), ("models", "list"), ("batches",)]
    if has_command("status", folder):
        commands.append(("status",))
    print(f"as processes (median of {repeats}; CPU = user + system of the child):")
    for args in commands:
        walls, cpus = process(args, folder, repeats)
        row("driftloop " + " ".join(args), walls, GOAL_PROCESS,
            f", CPU {statistics.median(cpus) * 1000:.0f} ms")
    first, later = in_process(folder, repeats)
    print("in process:")
    row("tick, new controller", first, GOAL_IN_PROCESS)
    row("tick, same controller (run)", later, GOAL_IN_PROCESS)
    measure_imports(folder)


def measure_imports(folder: Path) -> None:
    """Which heavy packages a no-op tick imports."""
    heavy = ("pandas", "numpy", "sklearn", "scipy", "skops", "river", "pyarrow", "alembic")
    code = (
        "import sys; from driftloop.cli.main import app\n"
        "try:\n    app(['tick'])\nexcept SystemExit:\n    pass\n"
        f"print('heavy:', ' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True,
                          text=True, check=True)
    imported = done.stdout.strip().splitlines()[-1].removeprefix("heavy:").strip()
    print(f"  heavy packages a no-op tick imports: {imported or 'none'}")


if __name__ == "__main__":
    main()
