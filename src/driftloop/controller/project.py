"""A pipeline ready to act on: its spec, its folder, its stores and its source.

`open_project(path)` is what the CLI calls; backtests build a `Project` directly with an
in-memory store, a frame source and a fake clock. Relative store and artifact locations in the
spec resolve against the spec's folder, so a project folder can be moved or run from anywhere.
The environment variable ``DRIFTLOOP_STORE_URL``, when set, replaces the spec's ``store`` (a
Kubernetes Secret holds the URL with its password; the spec in a ConfigMap holds none).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.core import clock as clocks
from driftloop.core import config, region_spec
from driftloop.store import metadata, skops_trust

if TYPE_CHECKING:  # imported by open_project: they pull in pandas, which status does not need
    from driftloop.data.sources import base as sources
    from driftloop.store import artifacts as artifact_store

STORE_ENV = "DRIFTLOOP_STORE_URL"
"""The environment variable that, when set, names the metadata store instead of the spec."""


@dataclass
class Project:
    spec: config.PipelineSpec
    base_dir: Path
    store: metadata.MetadataStore
    artifacts: artifact_store.ArtifactStore
    source: sources.Source
    clock: clocks.Clock

    @property
    def name(self) -> str:
        return self.spec.name

    def close(self) -> None:
        self.store.close()


def open_project(
    path: str | Path = "driftloop.yaml", clock: clocks.Clock | None = None,
    actor: str | None = None, region: str | None = None,
) -> Project:
    """Load the spec at `path` and open its store, artifacts and source. A spec that changed
    since it was last stored is recorded with an audit row naming `actor` (default: the OS
    user running the command). A spec with `regions:` is opened for one region (`region`, or
    $DRIFTLOOP_REGION): its store, artifacts, source and time zone replace the top-level ones,
    and what the store writes records the region (`for_region`)."""
    from driftloop.data.sources import base as sources
    from driftloop.store import artifacts as artifact_store

    path = Path(path)
    spec, chosen = for_region(config.load_spec(path), region)
    base_dir = path.resolve().parent
    clock = clock or clocks.SystemClock()
    url = os.environ.get(STORE_ENV) or spec.store
    if chosen is not None and url != spec.store:  # an override must not cross regions
        region_spec.check_own(spec.regions, chosen, url, f"${STORE_ENV}")
    store = metadata.MetadataStore.open(resolve_store_url(url, base_dir), clock=clock)
    store.region = chosen
    project = Project(
        spec=spec,
        base_dir=base_dir,
        store=store,
        artifacts=artifact_store.ArtifactStore(
            resolve_path_url(spec.artifacts.url, base_dir),
            trusted_modules=trusted_modules(spec), **spec.artifacts.options
        ),
        source=sources.build_source(spec.source, base_dir),
        clock=clock,
    )
    store.ensure_pipeline(spec.name, spec.model_dump(mode="json"), actor=actor or whoami())
    return project


def for_region(
    spec: config.PipelineSpec, name: str | None,
) -> tuple[config.PipelineSpec, str | None]:
    """The spec one region's processes run, and the region's name (None without `regions:`):
    only that region's store, artifacts, source and time zone are in it."""
    region = region_spec.chosen(spec.regions, name)
    if region is None:
        return spec, None
    local = spec.model_copy(update={
        "store": region.store, "source": region.source, "timezone": region.timezone,
        "artifacts": config.StorageSpec(url=region.artifacts, options=spec.artifacts.options),
    })
    return local, region.name


def trusted_modules(spec: config.PipelineSpec) -> list[str]:
    """The modules a stored model of this pipeline may contain besides scikit-learn, numpy and
    scipy (`store.skops_trust`): its trainer functions' modules and `trainer.trusted_modules`."""
    trainer = spec.trainer
    functions = [trainer.function]
    if trainer.search is not None:
        functions += [candidate.function for candidate in trainer.search.candidates.values()]
    return skops_trust.modules_of(functions) + list(trainer.trusted_modules)


def resolve_store_url(url: str, base_dir: Path) -> str:
    """`sqlite:///relative.db` is relative to the project folder; other URLs are kept.

    >>> resolve_store_url("sqlite:///state.db", Path("/srv/p"))
    'sqlite:////srv/p/state.db'
    >>> resolve_store_url("sqlite:////abs/state.db", Path("/srv/p"))
    'sqlite:////abs/state.db'
    """
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(base_dir / url[len(prefix) :])
    return url


def resolve_path_url(url: str, base_dir: Path) -> str:
    """A relative local path is relative to the project folder; URLs (`s3://…`) are kept.

    >>> resolve_path_url("./artifacts", Path("/srv/p"))
    '/srv/p/artifacts'
    >>> resolve_path_url("s3://bucket/a", Path("/srv/p"))
    's3://bucket/a'
    """
    if "://" in url or Path(url).is_absolute():
        return url
    return str((base_dir / url).resolve())


def whoami() -> str:
    """The OS user, for the audit log ("unknown" where the system cannot tell)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
