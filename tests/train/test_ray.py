"""The Ray executor on a local 2-CPU cluster (fixture `ray_cluster`): everything on loopback,
trainings and search trials as Ray tasks, and a backtest of 4 policies that gives the same table
as the local executor."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from driftloop.cli import project_commands as scaffold
from driftloop.controller import backtest
from driftloop.core import config, errors
from driftloop.data import elec2
from driftloop.gate import metrics
from driftloop.train import executor, ray_executor

pytestmark = pytest.mark.ray

LOOPBACK = {"127.0.0.1", "::1"}


def test_the_cluster_is_on_loopback(ray_cluster: object) -> None:
    assert ray_executor.node_addresses() == ["127.0.0.1"]
    listening = _listening_sockets(_descendants(os.getpid()))
    assert listening, "no Ray process listens on TCP: the check would prove nothing"
    exposed = [(pid, address, port) for pid, address, port in listening if address not in LOOPBACK]
    assert exposed == []


TRAIN_PY = """
import time
from sklearn.ensemble import HistGradientBoostingClassifier


def make_model(max_iter=30):
    return HistGradientBoostingClassifier(max_iter=max_iter, random_state=0)


def sleepy():
    time.sleep(60)


def broken(X, y):
    raise ValueError("the target column is constant")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train_ray.py").write_text(TRAIN_PY)
    return tmp_path


def test_a_training_on_ray_equals_the_inline_one(ray_cluster: object, project: Path) -> None:
    X, y = make_classification(n_samples=2000, n_features=8, random_state=0)
    spec = config.TrainerSpec(function="train_ray:make_model", executor="ray")
    on_ray = executor.build_executor("ray").train(spec, X, y, project)
    inline = executor.InlineExecutor().train(spec, X, y, project)
    assert np.array_equal(on_ray.estimator.predict_proba(X), inline.estimator.predict_proba(X))
    assert on_ray.cpu_seconds > 0 and on_ray.trials == ()


def test_ray_failures_and_timeouts_are_training_errors(ray_cluster: object, project: Path) -> None:
    X, y = make_classification(n_samples=200, random_state=0)
    ray = executor.build_executor("ray")
    with pytest.raises(errors.TrainingError, match="the target column is constant"):
        ray.train(config.TrainerSpec(function="train_ray:broken"), X, y, project)
    with pytest.raises(errors.ConfigError, match="no module 'nowhere'"):
        ray.train(config.TrainerSpec(function="nowhere:make_model"), X, y, project)
    started = time.monotonic()
    with pytest.raises(errors.TrainingError, match=r"timeout of 2s.*Ray task was cancelled"):
        ray_executor.RayExecutor(timeout=2).train(
            config.TrainerSpec(function="train_ray:sleepy"), X, y, project)
    assert time.monotonic() - started < 20


def test_search_trials_run_as_ray_tasks(ray_cluster: object) -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(1000, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # xor: a tree separates it, a line cannot
    spec = config.TrainerSpec.model_validate({
        "function": "sklearn.linear_model:LogisticRegression",
        "executor": "ray",
        "search": {"trials": 2, "candidates": {"tree": {
            "function": "sklearn.tree:DecisionTreeClassifier", "params": {"random_state": 0}}}},
    })
    scorer = metrics.Scorer("accuracy", "classification")
    result = executor.build_executor("ray").train(spec, X, y, Path("."), scorer)
    inline = executor.InlineExecutor().train(spec, X, y, Path("."), scorer)
    assert [(t.family, t.score) for t in result.trials] == [
        (t.family, t.score) for t in inline.trials]
    assert type(result.estimator).__name__ == "DecisionTreeClassifier"
    assert len({t.number for t in result.trials}) == 2


def test_segment_models_train_as_parallel_ray_tasks(ray_cluster: object) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"region": rng.choice([1, 2, 3], size=900), "x": rng.normal(size=900)})
    y = pd.Series(np.where(X["region"] == 2, X["x"] < 0, X["x"] > 0).astype(int))
    spec = config.TrainerSpec(function="sklearn.linear_model:LogisticRegression",
                              executor="ray", segment_by="region")
    on_ray = executor.build_executor("ray").train(spec, X, y, Path("."))
    inline = executor.InlineExecutor().train(spec, X, y, Path("."))
    assert sorted(on_ray.estimator.models) == ["1", "2", "3"]
    assert np.array_equal(on_ray.estimator.predict_proba(X), inline.estimator.predict_proba(X))
    assert (on_ray.estimator.predict(X) == y).mean() > 0.95


@pytest.mark.slow
def test_a_backtest_of_four_policies_on_ray_equals_the_local_one(ray_cluster: object) -> None:
    frame = elec2.load_elec2().iloc[: 48 * 60]
    text = (Path(scaffold.__file__).parent / "scaffold" / "driftloop.yaml").read_text()
    trainer = {
        "function": "driftloop.train.models:hist_gradient_boosting",
        "params": {"max_iter": 20},
        "window": {"kind": "last_duration", "duration": "14d"},
    }
    base = config.parse_spec(text)
    local = backtest.policy_spec(base, {"trainer": {**trainer, "executor": "local"}})
    on_ray = backtest.policy_spec(base, {"trainer": {**trainer, "executor": "ray"}})
    policies = {"floor": {"triggers": [{"kind": "performance", "floor": 0.8, "window": 48}]}}
    seen: dict[str, int] = {}

    def table(spec: config.PipelineSpec) -> tuple[list[tuple[object, ...]], float]:
        started = time.perf_counter()
        results = backtest.backtest(
            frame, spec, policies, base_dir=Path.cwd(), workers=2,
            progress=lambda name, done: seen.__setitem__(name, done))
        rows = [(r.policy, r.score, r.trainings, r.promotions,
                 [(s.end, s.metric, s.retrained, s.promoted) for s in r.steps]) for r in results]
        return rows, time.perf_counter() - started

    ray_rows, ray_seconds = table(on_ray)
    assert set(seen) == {"never", "every-batch", "floor"}  # progress came back
    local_rows, local_seconds = table(local)
    assert [row[0] for row in ray_rows] == ["never", "every-batch", "floor"]
    assert ray_rows == local_rows
    print(f"\nbacktest of 4 policies, 31 batches: ray {ray_seconds:.1f} s, "
          f"local (2 processes) {local_seconds:.1f} s")


def _descendants(root: int) -> set[int]:
    """`root` and every process started under it (Ray's GCS, raylet and workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, grown = {root}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grown = bool(more)
    return found


def _listening_sockets(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket the processes `pids` hold."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc to list listening sockets")
    listening: dict[str, tuple[str, int]] = {}
    for table, size in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A":  # LISTEN
                address, port = parts[1].split(":")
                listening[parts[9]] = (_address(address, size), int(port, 16))
    found = []
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for link in links:
            inode = link.removeprefix("socket:[").removesuffix("]")
            if link.startswith("socket:[") and inode in listening:
                found.append((pid, *listening[inode]))
    return found


def _address(hexed: str, size: int) -> str:
    """An address of /proc/net/tcp{,6} (little-endian 32-bit words) as text.

    >>> _address("0100007F", 4), _address("0000000000000000FFFF00000100007F", 16)
    ('127.0.0.1', '127.0.0.1')
    """
    import ipaddress

    raw = bytes.fromhex(hexed)
    address = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, size, 4)))
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return str(mapped or address)
