"""A backtest's worker processes end with it: SIGTERM or SIGKILL to `driftloop backtest` while
its workers replay policies leaves no process behind (Linux: /proc and the parent-death
signal)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import specs
from test_train_child import alive, gone_within, linux_only

from driftloop.cli import project_commands as scaffold

SLEEPER = '''
import os
import time
from pathlib import Path


def make_model(max_iter=1, learning_rate=0.1):
    Path(f"training-{os.getpid()}").write_text("")
    time.sleep(300)
'''


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return [p for p in found if alive(p)]


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize(("how", "status"), [(signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_a_stopped_backtest_leaves_no_worker_behind(
    tmp_path: Path, how: signal.Signals, status: int,
) -> None:
    """SIGTERM: the backtest stops its workers and exits as terminated; SIGKILL (nothing runs
    in the parent): the kernel ends them (the parent-death signal)."""
    folder = tmp_path / "pipeline"
    scaffold.init(folder, weeks=3)
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"}})
    (folder / "train.py").write_text(SLEEPER)  # each worker trains for 5 minutes
    parent = subprocess.Popen(
        [sys.executable, "-c", "from driftloop.cli.main import app; app()", "backtest",
         "--workers", "2", "--every", "1d", "--warmup", "3d"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    started: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while len(list(folder.glob("training-*"))) < 2:  # both workers are training
            assert parent.poll() is None, "the backtest ended before its workers trained"
            assert time.monotonic() < deadline, "the workers never started training"
            time.sleep(0.1)
        started = descendants(parent.pid)
        workers = [int(p.name.split("-")[1]) for p in folder.glob("training-*")]
        assert set(workers) <= set(started)
        parent.send_signal(how)
        assert parent.wait(60) == status
        assert gone_within(started, 10), "processes outlived the backtest: " + str(
            [p for p in started if alive(p)])
    finally:
        parent.kill()
        parent.wait()
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
