"""The server's poller (`server.live_models.ModelHolder.refresh`) follows an alias moved by another
process on the same SQLite file at its next poll: while that process holds the write lock (a
busy server's prediction log, a controller), on a connection it opens now (a new process, a
grown pool), and while a read transaction of its own process keeps an older snapshot open."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.tree import DecisionTreeClassifier

from driftloop.server import live_models
from driftloop.store import artifacts, tables
from driftloop.store.metadata import MetadataStore

MOVE = """
import sqlite3, sys
from driftloop.store import metadata
url, path, version, hold = sys.argv[1:]
store = metadata.MetadataStore(url)
store.aliases.set("p", "champion", int(version), actor="b", reason="moved by another process")
store.close()
if hold == "hold":  # then keep the write lock, as a writer that is always busy does
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
print("moved", flush=True)
sys.stdin.read()
"""


class Mover:
    """Another process: moves the champion alias, then (with `hold`) keeps the write lock until
    it is closed."""

    def __init__(self, path: Path, version: int, *, hold: bool) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                MOVE,
                f"sqlite:///{path}",
                str(path),
                str(version),
                "hold" if hold else "move",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "moved\n"

    def close(self) -> None:
        self.process.communicate(timeout=30)  # closes its stdin: it ends
        assert self.process.returncode == 0


@pytest.fixture
def store_file(tmp_path: Path) -> Iterator[tuple[Path, artifacts.ArtifactStore]]:
    """A SQLite store with pipeline ``p``: v1 (champion) and v2, two different trees."""
    path = tmp_path / "store.db"
    store = MetadataStore.open(f"sqlite:///{path}")
    store.pipelines.ensure("p", {})
    files = artifacts.ArtifactStore(str(tmp_path / "artifacts"))
    x = np.arange(40, dtype=float).reshape(-1, 1)
    for depth in (1, 2):
        tree = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, x[:, 0] % 3 > 0)
        artifact = files.put_model(tree)
        store.versions.add(
            "p", run_id=None, artifact_uri=artifact.uri, sha256=artifact.sha256, metrics={}
        )
    store.aliases.set("p", "champion", 1, actor="a", reason="first")
    store.close()
    yield path, files


def test_a_new_connection_follows_a_move_while_another_process_holds_the_write_lock(
    store_file: tuple[Path, artifacts.ArtifactStore],
) -> None:
    path, files = store_file
    mover = Mover(path, 2, hold=True)
    store = MetadataStore(f"sqlite:///{path}")  # its first connection opens now
    try:
        holder = live_models.ModelHolder(store, files, "p")
        assert holder.refresh() == ["champion"]
        assert holder.versions() == {"champion": 2}
    finally:
        store.close()
        mover.close()


def test_a_read_transaction_held_open_in_the_process_does_not_hide_a_move(
    store_file: tuple[Path, artifacts.ArtifactStore],
) -> None:
    path, files = store_file
    store = MetadataStore(f"sqlite:///{path}")
    holder = live_models.ModelHolder(store, files, "p")
    holder.refresh()
    assert holder.versions() == {"champion": 1}
    a = tables.aliases
    champion = sa.select(a.c.version).where(a.c.alias == "champion")
    with store.engine.connect() as held, held.begin():  # e.g. a long dashboard query
        assert held.scalar(champion) == 1  # its snapshot starts here
        Mover(path, 2, hold=False).close()
        assert holder.refresh() == ["champion"]  # the next poll
        assert holder.versions() == {"champion": 2}
        assert held.scalar(champion) == 1  # the open transaction still reads its snapshot
    store.close()
