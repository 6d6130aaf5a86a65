"""Benchmark: the `trainer.federated` mode through the loop on Elec2 split into regions, against
the same regions training alone and one pipeline pooling every region's rows.

Run by hand: ``python benchmarks/bench_federated_loop.py [--rounds 10] [--weeks 0]``.

Elec2 (bundled) is split into three "regions" by time of day (as `bench_federated.py`):
night (half hours 0-15), day (16-31), evening (32-47). Each region's rows are replayed
through its own controller in weekly batches after a 4-week warm-up, test-then-train: every
batch is scored by the region's live champion before anything learns from it. Every batch
retrains on the last 4 weeks; the gate (default holdout) decides whether the new model goes
live, in each region on its own holdout. The trainer is a standard-scaled
`SGDClassifier(loss="log_loss")` (`federated_trainer.py`). Modes: see
`controller.federated_backtest`. Prints accuracy per region and overall, trainings, wall time
and `uptime`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from driftloop.controller import backtest, federated_backtest
from driftloop.core import config
from driftloop.data import elec2

REGIONS = {"night": (0, 16), "day": (16, 32), "evening": (32, 48)}
HERE = Path(__file__).resolve().parent

SPEC = """\
name: elec2
source: {{kind: files, path: "unused/*.csv"}}
target: class
timestamp: time
features: [nswprice, nswdemand, vicprice, vicdemand, transfer, period]
trainer:
  function: federated_trainer:sgd
  executor: inline
  window: {{kind: last, size: 4 batches}}
  federated: {{rounds: {rounds}, epochs: 1, min_regions: 3}}
triggers: [{{kind: volume, every: 1 batch}}]
estimate: {{method: none}}
regions:
{regions}
"""


def region_lines() -> str:
    return "\n".join(
        f"  - {{name: {name}, store: 'sqlite:///{name}.db', artifacts: {name}/artifacts, "
        f"source: {{kind: files, path: '{name}/in/*.csv'}}}}" for name in REGIONS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=0, help="Only the first N weeks (0: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    started = time.perf_counter()
    spec = config.parse_spec(SPEC.format(rounds=args.rounds, regions=region_lines()))
    data = elec2.load_elec2()
    if args.weeks:
        data = data[data["time"] < data["time"].iloc[0] + pd.Timedelta(weeks=args.weeks)]
    slot = (data["period"] * 47).round().astype(int)  # `period` is the half hour, 0..1
    frames = {name: data[(slot >= lo) & (slot < hi)].reset_index(drop=True)
              for name, (lo, hi) in REGIONS.items()}
    ends = backtest.batch_ends(data, "time", pd.Timedelta(weeks=1), pd.Timedelta(weeks=4))
    with tempfile.TemporaryDirectory() as folder:
        results = federated_backtest.compare(frames, spec, ends, HERE)
    del folder
    print(f"Elec2 in 3 regions by time of day, {len(ends)} weekly batches (4-week warm-up), "
          f"test-then-train through the tick; FedAvg {args.rounds} rounds")
    print(f"{'mode':<11} " + " ".join(f"{n:>8}" for n in REGIONS)
          + f" {'overall':>8} {'trainings':>9} {'wall s':>7}")
    for mode, per in results.items():
        cells = [f"{per[n].score:>8.3f}" if n in per else f"{'':>8}" for n in REGIONS]
        trainings = sum(r.trainings for r in per.values())
        wall = sum(r.wall_seconds for r in per.values())
        print(f"{mode:<11} " + " ".join(cells)
              + f" {federated_backtest.overall(per):>8.3f} {trainings:>9} {wall:>7.1f}")
    print(f"wall {time.perf_counter() - started:.0f} s")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
