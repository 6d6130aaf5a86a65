"""Deployment windows and freezes: when a promotion may happen, across daylight-saving changes,
the date line and half-hour offsets; a promotion decided outside a window waits, with a recorded
decision, and happens in the next tick inside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import specs

from driftloop.controller import project as projects
from driftloop.controller import readiness, retrain
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.core.deploy_window_spec import DeployWindowSpec, FreezeSpec
from driftloop.policy import deploy_windows
from driftloop.store import artifacts, metadata


def calendar(*windows: tuple[str, str, str], freeze: list[FreezeSpec] | None = None) -> Any:
    specs = [DeployWindowSpec(days=d, hours=h, timezone=z) for d, h, z in windows]
    return deploy_windows.DeployCalendar(specs, freeze or [])


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc]


def test_berlin_weekday_nights_wait_over_the_weekend() -> None:
    berlin = calendar(("Mon-Fri", "02:00-05:00", "Europe/Berlin"))
    assert berlin.opens_at(local("Europe/Berlin", 2026, 3, 28, 12)) == local(
        "Europe/Berlin", 2026, 3, 30, 2)
    tuesday = local("Europe/Berlin", 2026, 3, 31, 3, 15)
    assert berlin.opens_at(tuesday) == tuesday
    assert berlin.opens_at(local("Europe/Berlin", 2026, 3, 31, 5)) == local(
        "Europe/Berlin", 2026, 4, 1, 2)


def test_a_window_opening_in_the_spring_forward_gap_opens_at_the_jump() -> None:
    # 2026-03-29 02:00 -> 03:00 in Berlin: 02:30 does not exist that night
    late = calendar(("*", "02:30-04:00", "Europe/Berlin"))
    assert late.opens_at(local("Europe/Berlin", 2026, 3, 28, 23)) == utc(2026, 3, 29, 1)
    assert local("Europe/Berlin", 2026, 3, 29, 3) == utc(2026, 3, 29, 1)
    # a window wholly inside the gap does not happen that night
    gap = calendar(("*", "02:00-03:00", "Europe/Berlin"))
    assert gap.opens_at(local("Europe/Berlin", 2026, 3, 28, 23)) == local(
        "Europe/Berlin", 2026, 3, 30, 2)


def test_los_angeles_fall_back_keeps_the_window_open_in_both_repeated_hours() -> None:
    # 2026-11-01 02:00 PDT -> 01:00 PST: 01:00-02:00 happens twice
    night = calendar(("Sun", "01:00-02:00", "America/Los_Angeles"))
    first = local("America/Los_Angeles", 2026, 11, 1, 1, 30)
    second = local("America/Los_Angeles", 2026, 11, 1, 1, 30, fold=1)
    assert second - first == timedelta(hours=1)
    assert night.opens_at(first) == first and night.opens_at(second) == second
    after = local("America/Los_Angeles", 2026, 11, 1, 2, 0)
    assert night.opens_at(after) == local("America/Los_Angeles", 2026, 11, 8, 1)
    # spring forward 2026-03-08 02:00 PST -> 03:00 PDT: 1 h less between Saturday and Monday
    weekday = calendar(("Mon-Fri", "04:00-06:00", "America/Los_Angeles"))
    assert weekday.opens_at(utc(2026, 3, 7, 20)) == utc(2026, 3, 9, 11)  # 04:00 PDT = 11:00 UTC


def test_auckland_monday_morning_is_sunday_in_utc() -> None:
    auckland = calendar(("Mon", "09:00-10:00", "Pacific/Auckland"))
    opens = auckland.opens_at(utc(2026, 3, 1, 12))  # Monday 01:00 NZDT
    assert opens == utc(2026, 3, 1, 20) and opens.strftime("%a") == "Sun"
    # NZ summer time ends 2026-04-05 03:00 -> 02:00: the Monday after opens at 21:00 UTC
    assert auckland.opens_at(utc(2026, 4, 5, 12)) == utc(2026, 4, 5, 21)


def test_kolkata_half_hour_offset_and_a_window_past_midnight() -> None:
    kolkata = calendar(("Sat", "23:00-01:30", "Asia/Kolkata"))
    opens = kolkata.opens_at(utc(2026, 6, 6, 0))
    assert opens == utc(2026, 6, 6, 17, 30)  # Saturday 23:00 IST
    sunday_early = local("Asia/Kolkata", 2026, 6, 7, 1, 0)
    assert kolkata.opens_at(sunday_early) == sunday_early  # still Saturday's window
    assert kolkata.opens_at(local("Asia/Kolkata", 2026, 6, 7, 1, 30)) == utc(2026, 6, 13, 17, 30)
    assert deploy_windows.local_text(
        opens, kolkata.windows) == "2026-06-06 23:00 IST (Asia/Kolkata)"


def test_a_freeze_moves_the_opening_past_it() -> None:
    freeze = FreezeSpec.model_validate({"start": "2026-12-20", "end": "2027-01-04",
                                        "timezone": "Europe/Berlin", "reason": "year end"})
    berlin = calendar(("Mon-Fri", "02:00-05:00", "Europe/Berlin"), freeze=[freeze])
    inside = local("Europe/Berlin", 2026, 12, 22, 3)
    assert berlin.opens_at(inside) == local("Europe/Berlin", 2027, 1, 5, 2)
    assert "year end" in berlin.why_closed(inside)
    assert calendar(freeze=[freeze]).opens_at(inside) == local("Europe/Berlin", 2027, 1, 5, 0)


@pytest.mark.parametrize(("zone", "start"), [
    ("Europe/Berlin", datetime(2026, 3, 26)), ("Europe/Berlin", datetime(2026, 10, 22)),
    ("America/Los_Angeles", datetime(2026, 3, 5)), ("America/Los_Angeles", datetime(2026, 10, 29)),
    ("Pacific/Auckland", datetime(2026, 4, 2)), ("Pacific/Auckland", datetime(2026, 9, 24)),
    ("Asia/Kolkata", datetime(2026, 6, 1)),
])
@pytest.mark.parametrize(("days", "hours"), [
    ("Mon-Fri", "02:00-05:00"), ("*", "02:30-03:15"), ("Sat,Sun", "22:00-02:00"),
    ("Sun", "00:00-24:00"),
])
def test_the_opening_is_the_first_open_quarter_hour(
    zone: str, start: datetime, days: str, hours: str,
) -> None:
    """Against a brute-force scan every 15 minutes over two weeks around a DST change."""
    found = calendar((days, hours, zone))
    begin = start.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    grid = [begin + timedelta(minutes=15 * k) for k in range(4 * 24 * 15)]
    open_ = [found.in_window(t) for t in grid]
    for k in range(0, 4 * 24 * 7, 7):
        opens = found.opens_at(grid[k])
        assert found.in_window(opens)
        later = [t for t, is_open in zip(grid[k:], open_[k:], strict=True) if is_open]
        assert later and opens <= later[0]
        assert later[0] - opens < timedelta(minutes=15)  # nothing open between them


# -- a promotion decided outside the window --------------------------------------------------


SPEC = """\
name: windows
source: {kind: files, path: "data/*.csv"}
target: y
trainer: {function: "train:make_model"}
rollout:
  strategy: STRATEGY
  windows:
    - {days: Mon-Fri, hours: "02:00-05:00", timezone: Europe/Berlin}
"""


def project_at(tmp_path: Path, when: datetime, strategy: str = "replace") -> Any:
    clock = clocks.FakeClock(when)
    spec = config.parse_spec(specs.edited(SPEC, {"STRATEGY": strategy}))
    store = metadata.MetadataStore.open("sqlite://", clock=clock)
    store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
    return projects.Project(spec=spec, base_dir=tmp_path, store=store,
                            artifacts=artifacts.ArtifactStore(str(tmp_path / "artifacts")),
                            source=None, clock=clock)  # type: ignore[arg-type]


def add_version(project: Any) -> Any:
    return project.store.versions.add(
        project.name, run_id=None, artifact_uri="m", sha256="0" * 64, metrics={},
        gate_report={"passed": True, "reason": "better"})


@pytest.mark.parametrize(("strategy", "alias"), [("replace", "champion"), ("canary", "canary")])
def test_a_promotion_outside_the_window_waits_and_happens_inside(
    tmp_path: Path, strategy: str, alias: str,
) -> None:
    saturday = local("Europe/Berlin", 2026, 3, 28, 14)
    project = project_at(tmp_path, saturday, strategy)
    first = add_version(project)
    assert retrain.promote(project, first, "ctl")  # the first version goes live at once
    second = add_version(project)
    assert not retrain.promote(project, second, "ctl")
    (waiting,) = project.store.decisions.list("windows", kind="rollout")
    assert waiting.evidence["outcome"] == "waiting" and not waiting.fired
    assert waiting.evidence["reason"].startswith(
        "waiting for window until 2026-03-30 02:00 CEST (Europe/Berlin): v2")
    assert waiting.evidence["until"] == "2026-03-30T00:00:00+00:00"
    assert retrain.promote_pending(project, "ctl") is None  # another tick on Saturday
    project.clock.advance(timedelta(hours=20))  # Sunday 10:00: still closed
    assert retrain.promote_pending(project, "ctl") is None
    assert len(project.store.decisions.list("windows", kind="rollout")) == 1  # recorded once
    project.clock.set(local("Europe/Berlin", 2026, 3, 30, 2, 5))
    assert retrain.promote_pending(project, "ctl") == second
    assert project.store.aliases.get("windows", alias) == 2
    project.close()


def test_a_canary_verdict_outside_the_window_waits(tmp_path: Path) -> None:
    project = project_at(tmp_path, local("Europe/Berlin", 2026, 3, 31, 3), "canary")
    assert retrain.promote(project, add_version(project), "ctl")
    assert retrain.promote(project, add_version(project), "ctl")  # Tuesday 03:00: open
    assert project.store.aliases.get("windows", "canary") == 2
    project.clock.set(local("Europe/Berlin", 2026, 3, 31, 9))
    assert readiness.must_wait(project, 2, "canary")
    project.clock.set(local("Europe/Berlin", 2026, 4, 1, 2))
    assert not readiness.must_wait(project, 2, "canary")
    project.close()
