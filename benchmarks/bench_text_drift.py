"""Benchmark: text drift detection delay and false alarms on multilingual text.

Run by hand: ``python benchmarks/bench_text_drift.py [--seeds 3] [--batch 200]``.

The text comes from Faker's lorem providers (word lists of each locale shipped in the package;
the `dev` extra), sentences of 4-14 words. A reference of 1000 texts in mix A (en 50 %, de 30 %,
fr 20 %) is tested (`drift.text.detect_text_drift`, default `TextSpec`) against a stream of
batches: 10 in mix A (every detection is a false alarm), then 10 in a changed mix:

* ``new-languages``: en 35 %, de 25 %, fr 20 %, ru 10 %, ja 10 % (new scripts too);
* ``subtle``: en 40 %, de 30 %, fr 20 %, it 10 % (a new Latin-script language).

Prints per scenario and test: the false-alarm rate over the stable batches, the share of
changed batches detected, and the detection delay in batches (0 = the first changed batch),
over `--seeds` runs; then `uptime`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import time

from faker import Faker

from driftloop.core.text_spec import TextSpec
from driftloop.drift import text

STABLE = {"en_US": 0.5, "de_DE": 0.3, "fr_FR": 0.2}
CHANGES = {
    "new-languages": {"en_US": 0.35, "de_DE": 0.25, "fr_FR": 0.2, "ru_RU": 0.1, "ja_JP": 0.1},
    "subtle": {"en_US": 0.4, "de_DE": 0.3, "fr_FR": 0.2, "it_IT": 0.1},
}
TESTS = ("languages", "vocabulary", "classifier", "any")


def texts(mix: dict[str, float], n: int, seed: int) -> list[str]:
    """`n` sentences drawn from the locales of `mix` in its shares."""
    rng = random.Random(seed)
    fakers = {}
    for i, locale in enumerate(mix):
        fakers[locale] = Faker(locale)
        fakers[locale].seed_instance(seed * 100 + i)
    locales, weights = list(mix), list(mix.values())
    return [fakers[rng.choices(locales, weights)[0]].sentence(nb_words=rng.randint(4, 14))
            for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--stable", type=int, default=10)
    parser.add_argument("--changed", type=int, default=10)
    args = parser.parse_args()
    spec = TextSpec(columns=["t"])
    started = time.perf_counter()
    for name, mix in CHANGES.items():
        alarms = {t: 0 for t in TESTS}
        hits = {t: 0 for t in TESTS}
        delays: dict[str, list[int]] = {t: [] for t in TESTS}
        for seed in range(args.seeds):
            reference = texts(STABLE, 1000, 1000 + seed)
            first: dict[str, int | None] = {t: None for t in TESTS}
            for k in range(args.stable + args.changed):
                changed = k >= args.stable
                batch = texts(mix if changed else STABLE, args.batch, seed * 1000 + k)
                found = text.detect_text_drift("t", reference, batch, spec)
                fired = {t.name: t.drifted for t in found.tests} | {"any": found.drifted}
                for test in TESTS:
                    if fired[test] and not changed:
                        alarms[test] += 1
                    if fired[test] and changed:
                        hits[test] += 1
                        if first[test] is None:
                            first[test] = k - args.stable
            for test in TESTS:
                if first[test] is not None:
                    delays[test].append(first[test])  # type: ignore[arg-type]
        print(f"\n{name}: {args.seeds} seeds x ({args.stable} stable + {args.changed} changed) "
              f"batches of {args.batch} texts, reference 1000")
        print(f"{'test':<11} {'false alarms':>13} {'detected':>9} {'delay (batches)':>16}")
        for test in TESTS:
            stable = args.seeds * args.stable
            changed = args.seeds * args.changed
            delay = (f"{statistics.mean(delays[test]):.1f} ({len(delays[test])}/{args.seeds})"
                     if delays[test] else "never")
            print(f"{test:<11} {alarms[test] / stable:>12.1%} {hits[test] / changed:>9.1%} "
                  f"{delay:>16}")
    print(f"\nwall {time.perf_counter() - started:.0f} s")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
