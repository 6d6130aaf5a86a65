"""The backtest report: self-contained (no network), small, with the data its charts draw."""

from __future__ import annotations

import json
import re
from pathlib import Path

from driftloop.cli import project as scaffold
from driftloop.controller import backtest
from driftloop.core import config
from driftloop.data import elec2
from driftloop.ui import report


def test_report_is_offline_small_and_carries_every_policy() -> None:
    frame = elec2.load_elec2().iloc[: 48 * 45]
    text = (Path(scaffold.__file__).parent / "scaffold" / "driftloop.yaml").read_text()
    spec = backtest.policy_spec(config.parse_spec(text), {"trainer": {
        "function": "driftloop.train.models:hist_gradient_boosting", "params": {"max_iter": 10},
        "window": {"kind": "last_duration", "duration": "14d"}, "executor": "inline"}})
    results = backtest.backtest(frame, spec, {"mine": {}}, base_dir=Path.cwd())
    html = report.render_backtest(results, title="t", description="d", focus="mine")
    assert len(html) < 150_000  # aggregates, not rows
    assert not re.search(r"""(src|href)=["']https?://""", html)  # nothing fetched
    data = json.loads(re.search(r"const data = (\{.*?\});\n", html).group(1))  # type: ignore[union-attr]
    assert set(data["accuracy"]) == {"never", "every-batch", "mine"}
    assert len(data["days"]) == len(results[0].steps) == 16  # warm-up + 15 days
    assert data["focus"] == "mine" and set(data["drift"]) >= set(elec2.FEATURES) - {"period"}
    for row in report.summary_rows(results):
        assert row["policy"] in html
