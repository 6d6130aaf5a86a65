"""The local executor's training child dies with its controller: at the timeout with what its
trainer started, and when the controller itself is SIGKILLed mid-training."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from driftloop.cli import project_commands as scaffold
from driftloop.core import config, errors
from driftloop.train import executor

SLEEPER = '''
import os
import subprocess
import time
from pathlib import Path


def make_model(max_iter=1, learning_rate=0.1):
    helper = subprocess.Popen(["sleep", "300"])
    Path("pids.partial").write_text(f"{os.getpid()} {helper.pid}")
    os.replace("pids.partial", "pids")
    time.sleep(300)
'''

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the parent-death signal and /proc are Linux's")


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_for(path: Path, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@linux_only
def test_the_timeout_kills_what_the_trainer_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "train.py").write_text(SLEEPER)
    monkeypatch.chdir(tmp_path)
    X, y = np.zeros((20, 2)), np.arange(20) % 2
    spec = config.TrainerSpec(function="train:make_model")
    with pytest.raises(errors.TrainingError, match="timeout"):
        executor.LocalExecutor(timeout=3).train(spec, X, y, tmp_path)
    child, helper = (int(pid) for pid in (tmp_path / "pids").read_text().split())
    assert gone_within([child, helper], 2)


@linux_only
@pytest.mark.slow
def test_a_sigkilled_controller_leaves_no_training_behind(tmp_path: Path) -> None:
    folder = tmp_path / "pipeline"
    scaffold.init(folder, weeks=3)
    (folder / "train.py").write_text(SLEEPER)  # the default executor: local, timeout 30 min
    controller = subprocess.Popen(
        [sys.executable, "-c", "from driftloop.cli.main import app; app()", "tick"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    helper = None
    try:
        child, helper = (int(pid) for pid in wait_for(folder / "pids", 120).split())
        assert alive(child)
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
        assert gone_within([child], 2), "the training child outlived its controller"
    finally:
        controller.kill()
        controller.wait()
        if helper is not None and alive(helper):  # the trainer's own process is its business
            os.kill(helper, signal.SIGKILL)
