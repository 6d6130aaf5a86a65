"""The rounds of a federated training: what crosses between regions, and the coordinator.

Regions and the coordinator talk over channels (a `multiprocessing` `Connection`, one per
region: a pipe to a region's process, or between threads in a backtest). Only these messages
cross, and the coordinator accepts nothing else (`ProtocolError` otherwise):

* region → coordinator: `Join` (its row count, per-feature sum and sum of squares, its class
  labels) or `Decline` (it does not train this round, and why); then one `federated.Update`
  (row count and parameter arrays) per round; `Abort` if its training failed;
* coordinator → region: `Scaler` (the global standardisation), then the global parameters at
  the start of every round (`Start`), and `Final` (the global model's parameters and the
  lineage: rounds, regions and their row counts); or `Abort` (the training failed), or
  `Postpone` (it did not run: fewer than `min_regions` joined; no region's trainer failed).

`coordinate` runs one training over the regions that joined (at least `min_regions`). The
arithmetic is `train.federated`'s: FedAvg weighted by rows, after a standardisation computed
exactly from the regions' sums.

Flower (`flwr`) is not the transport: every release pins the packages driftloop's server and
CLI run on below the versions they run on (flwr 1.42: fastapi < 0.139, starlette < 1.4,
uvicorn < 0.50, typer < 0.21, rich < 15, packaging < 26; older releases older ones, and
protobuf < 5 or cryptography < 47 besides). The messages here are what its FedAvg strategy
exchanges, so a region's side could move to a Flower client once its pins allow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from driftloop.core import errors
from driftloop.train import federated

Array = federated.Array


@dataclass(frozen=True)
class Join:
    """A region trains this round: its standardisation statistics and its class labels."""

    stats: federated.Update
    classes: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Decline:
    """A region does not train this round."""

    reason: str


@dataclass(frozen=True)
class Abort:
    """The training stops (a region failed, too few joined, a region did not answer)."""

    reason: str


@dataclass(frozen=True)
class Postpone:
    """The training does not run this round (too few regions joined): nothing failed, a region
    that joined takes part again in a later round."""

    reason: str


@dataclass(frozen=True)
class Scaler:
    """The global standardisation and the labels every region's model knows."""

    mean: Array
    var: Array
    rows: int
    classes: tuple[Any, ...]


@dataclass(frozen=True)
class Start:
    """A round begins from these global parameters (None: the first round)."""

    round: int
    params: dict[str, Array] | None


@dataclass(frozen=True)
class Final:
    """The global model's parameters and its lineage (never rows)."""

    params: dict[str, Array]
    rounds: int
    regions: dict[str, int]


@dataclass(frozen=True)
class Summary:
    """What a coordinated training did: who joined (and their rows), who declined and why."""

    joined: dict[str, int]
    declined: dict[str, str]
    rounds: int = 0
    aborted: str | None = None
    updates: tuple[federated.Update, ...] = field(default=(), repr=False)


class ProtocolError(errors.TrainingError):
    """A region sent something other than the protocol's messages, or nothing in time."""


def receive(conn: Connection, timeout: float, kinds: tuple[type, ...], who: str) -> Any:
    """The next message on `conn`, which must be one of `kinds` (or `Abort`)."""
    if not conn.poll(timeout):
        raise ProtocolError(f"{who} sent nothing for {timeout:.0f} s")
    try:
        message = conn.recv()
    except EOFError as exc:
        raise ProtocolError(f"{who} closed the channel") from exc
    if not isinstance(message, (*kinds, Abort)):
        raise ProtocolError(f"{who} sent a {type(message).__name__}; expected "
                            f"{' or '.join(k.__name__ for k in kinds)}")
    return message


def _parameters_only(update: Any, who: str) -> federated.Update:
    """`update`, checked to be a row count and arrays of numbers (never a frame of rows)."""
    if not isinstance(update, federated.Update) or not all(
            isinstance(v, np.ndarray) and v.dtype.kind in "fiu" for v in update.params.values()):
        raise ProtocolError(f"{who} sent something other than parameter arrays")
    return update


def coordinate(
    channels: Mapping[str, Connection],
    rounds: int,
    min_regions: int,
    timeout: float,
    aggregator: Callable[[Sequence[federated.Update]], dict[str, Array]] = federated.aggregate,
) -> Summary:
    """Run one federated training over `channels` (region name → its end of the channel);
    `aggregator` combines each round's updates (a test passes a spy)."""
    joined: dict[str, Join] = {}
    declined: dict[str, str] = {}
    for name, conn in channels.items():
        try:
            first = receive(conn, timeout, (Join, Decline), f"region {name!r}")
            if isinstance(first, Join):
                _parameters_only(first.stats, f"region {name!r}")
                joined[name] = first
            else:
                declined[name] = first.reason
        except ProtocolError as exc:  # that region is out of this round; the others go on
            declined[name] = str(exc)
    if len(joined) < min_regions:
        why = (f"{len(joined)} region(s) trained this round ({', '.join(joined) or 'none'}); "
               f"min_regions is {min_regions}")
        _tell(channels, joined, Postpone(why))
        return Summary({n: j.stats.rows for n, j in joined.items()}, declined, aborted=why)
    rows = {n: j.stats.rows for n, j in joined.items()}
    seen: list[federated.Update] = []
    try:
        scaler = federated.global_scaler([j.stats for j in joined.values()])
        labels = sorted({c for j in joined.values() for c in j.classes}, key=repr)
        _tell(channels, joined, Scaler(scaler.mean_, scaler.var_, sum(rows.values()),
                                       tuple(labels)))
        params: dict[str, Array] | None = None
        for number in range(rounds):
            _tell(channels, joined, Start(number, params))
            updates = []
            for name in joined:
                message = receive(channels[name], timeout, (federated.Update,), f"region {name!r}")
                if isinstance(message, Abort):
                    raise ProtocolError(f"region {name!r} stopped: {message.reason}")
                updates.append(_parameters_only(message, f"region {name!r}"))
            seen.extend(updates)
            params = aggregator(updates)
        assert params is not None  # rounds >= 1 (the spec says so)
        _tell(channels, joined, Final(params, rounds, rows))
    except ProtocolError as exc:
        _tell(channels, joined, Abort(str(exc)))
        return Summary(rows, declined, aborted=str(exc), updates=tuple(seen))
    return Summary(rows, declined, rounds, updates=tuple(seen))


def _tell(channels: Mapping[str, Connection], joined: Mapping[str, Any], message: Any) -> None:
    for name in joined:
        try:
            channels[name].send(message)
        except (BrokenPipeError, OSError):  # that region is gone; the others still hear
            continue
