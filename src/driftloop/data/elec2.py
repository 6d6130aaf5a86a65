"""The bundled Elec2 stream (see ELEC2.md): used by `driftloop demo`, `driftloop init` and tests.

>>> frame = load_elec2()
>>> len(frame), list(frame.columns)[-2:]
(45312, ['class', 'time'])
"""

from __future__ import annotations

import gzip
from importlib import resources

import pandas as pd

START = pd.Timestamp("1996-05-07", tz="UTC")
ROWS_PER_DAY = 48
FEATURES = ("period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")
TARGET = "class"


def load_elec2() -> pd.DataFrame:
    """Elec2 in time order, with a `time` column (half-hourly from 1996-05-07, UTC)."""
    with (
        resources.files("driftloop.data").joinpath("elec2.csv.gz").open("rb") as raw,
        gzip.open(raw) as text,
    ):
        frame = pd.read_csv(text)
    frame[TARGET] = frame[TARGET].astype("int64")
    frame["time"] = START + pd.to_timedelta(frame.index * 30, unit="min")
    return frame
