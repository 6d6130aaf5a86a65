"""The `regions:` section of a pipeline spec: one pipeline run apart in each region, its data
kept there.

Each region names its time zone, its own metadata store, artifact location and source. A
process works for one region (`DRIFTLOOP_REGION=eu driftloop run`): `for_region` gives the
spec it runs, with the region's store, artifacts, source and time zone in place of the
top-level ones. `residency_problems` refuses a spec in which one region would read another's
source or data, or write where another keeps its artifacts or metadata (the same location, or
one inside the other); `driftloop check` reports each with the reason. A region with
`after: <region>` is a later stage of a follow-the-sun rollout: it promotes a new version only
while the earlier region has no live test under way and did not roll its newest one back
(`controller.readiness`).

    regions:
      - {name: eu, timezone: Europe/Berlin, store: "postgresql://eu-db/driftloop",
         artifacts: "s3://acme-eu/models", source: {kind: files, path: "s3://acme-eu/in/*.csv"}}
      - {name: us, timezone: America/Los_Angeles, store: "postgresql://us-db/driftloop",
         artifacts: "s3://acme-us/models", source: {kind: files, path: "s3://acme-us/in/*.csv"}}
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from driftloop.core import errors, source_specs
from driftloop.core.deploy_window_spec import Zone
from driftloop.core.spec_base import Spec as _Spec

ENVIRONMENT = "DRIFTLOOP_REGION"
"""The environment variable naming the region a process works for."""


class RegionSpec(_Spec):
    """One region: where its metadata, artifacts and data live, and its local time."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="e.g. eu, us-west, apac")
    timezone: Zone = "UTC"
    store: str = Field(description="The region's metadata store URL")
    artifacts: str = Field(description="The region's artifact location (folder or fsspec URL)")
    source: source_specs.SourceSpec
    after: str | None = Field(
        default=None, description="Stage: promote only once this region's live test has passed"
    )

    def locations(self) -> dict[str, str]:
        """What the region touches: its store, artifacts and source, each as a location."""
        return {"store": self.store, "artifacts": self.artifacts,
                "source": source_location(self.source)}


def source_location(source: Any) -> str:
    """Where a source reads: a file glob's fixed folder, a database, stream or endpoint.

    >>> source_location(source_specs.FileSourceSpec(kind="files", path="s3://eu/in/*.csv"))
    's3://eu/in'
    """
    path = getattr(source, "path", None)
    if path is not None:
        fixed = re.split(r"[*?\[]", path, maxsplit=1)[0]
        return fixed.rstrip("/") if fixed != path else path
    where = str(getattr(source, "url", ""))
    named = getattr(source, "stream", None) or getattr(source, "table", None)
    return f"{where}#{named}" if named else where


def _norm(location: str) -> str:
    if "://" in location:
        return location.rstrip("/")
    return os.path.normpath(os.path.expanduser(location))


def _within(inner: str, outer: str) -> bool:
    """Whether location `inner` is `outer` or lies inside it.

    >>> _within("s3://eu/models/v1", "s3://eu/models"), _within("s3://eu/models2", "s3://eu/models")
    (True, False)
    """
    inner, outer = _norm(inner), _norm(outer)
    return inner == outer or inner.startswith(outer + "/") or inner.startswith(outer + "#")


_VERBS = {"source": "reads its source", "artifacts": "writes its artifacts",
          "store": "keeps its metadata"}


def residency_problems(regions: Sequence[RegionSpec]) -> list[str]:
    """Every place where one region would touch another's data, as a sentence; [] if none."""
    problems = []
    for mine in regions:
        for other in regions:
            if other.name == mine.name:
                continue
            for kind, location in mine.locations().items():
                for their_kind, theirs in other.locations().items():
                    if _within(location, theirs) or _within(theirs, location):
                        problems.append(
                            f"region {mine.name!r} {_VERBS[kind]} at {location}, which is "
                            f"region {other.name!r}'s {their_kind} ({theirs}): each region's "
                            "data must stay in its region; give it a location of its own")
    return problems


def check_regions(regions: list[RegionSpec]) -> list[RegionSpec]:
    """The validator of `regions:`: unique names, no location shared across regions."""
    names = [r.name for r in regions]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"region names must be unique; {', '.join(twice)} appear twice")
    problems = residency_problems(regions)
    if problems:
        raise ValueError("; ".join(problems))
    stages = {r.name: r.after for r in regions}
    for region in regions:
        seen, at = {region.name}, region.after
        while at is not None:
            if at not in stages:
                raise ValueError(f"region {region.name!r}: `after: {at}` names no region")
            if at in seen:
                raise ValueError(f"regions: the stages loop through {', '.join(sorted(seen))}")
            seen.add(at)
            at = stages[at]
    return regions


def check_own(regions: Sequence[RegionSpec], name: str, location: str, given: str) -> None:
    """`ConfigError` if `location` (given by `given`, e.g. an environment variable) is, or lies
    in or around, a location of a region other than `name`: a region's process refuses
    another region's URLs.

    >>> eu = RegionSpec(name="eu", store="sqlite:///eu.db", artifacts="eu/a",
    ...                 source={"kind": "files", "path": "eu/*.csv"})
    >>> us = RegionSpec(name="us", store="sqlite:///us.db", artifacts="us/a",
    ...                 source={"kind": "files", "path": "us/*.csv"})
    >>> check_own([eu, us], "eu", "sqlite:///us.db", "$DRIFTLOOP_STORE_URL")
    Traceback (most recent call last):
    ...
    driftloop.core.errors.ConfigError: region 'eu' was given sqlite:///us.db ...
    """
    for other in regions:
        if other.name == name:
            continue
        for kind, theirs in other.locations().items():
            if _within(location, theirs) or _within(theirs, location):
                raise errors.ConfigError(
                    f"region {name!r} was given {location} by {given}, which is region "
                    f"{other.name!r}'s {kind} ({theirs}): a region's process reads and writes "
                    "only its own region's data; unset it or give this region's own location")


def chosen(regions: Sequence[RegionSpec], name: str | None) -> RegionSpec | None:
    """The region a process works for: `name`, else $DRIFTLOOP_REGION; None without regions.

    `ConfigError` if the spec has regions and none (or an unknown one) is chosen."""
    if not regions:
        if name:
            raise errors.ConfigError(f"region {name!r}: the spec declares no `regions:`")
        return None
    name = name or os.environ.get(ENVIRONMENT) or None
    known = ", ".join(r.name for r in regions)
    if name is None:
        raise errors.ConfigError(
            f"the spec declares regions ({known}): say which one this process works for, "
            f"e.g. {ENVIRONMENT}={regions[0].name} driftloop run")
    for region in regions:
        if region.name == name:
            return region
    raise errors.ConfigError(f"unknown region {name!r}; the spec declares {known}")
