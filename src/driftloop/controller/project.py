"""A pipeline ready to act on: its spec, its folder, its stores and its source.

`open_project(path)` is what the CLI calls; backtests build a `Project` directly with an
in-memory store, a frame source and a fake clock. Relative store and artifact locations in the
spec resolve against the spec's folder, so a project folder can be moved or run from anywhere.

The spec's ``${NAME}`` references in `store`, `artifacts` and `source` are replaced by
environment variables here, where they are used (`core.secrecy`); ``DRIFTLOOP_STORE_URL`` and
``DRIFTLOOP_ARTIFACTS_URL`` replace the two locations outright (a Kubernetes Secret holds the
URL with its password; the spec in a ConfigMap holds none).

From Python (a notebook, a script), `Project.open` takes a spec file or the same spec as a
dict, and the project then works the loop itself: `ingest(frame)` records a DataFrame as a
batch (validated like a file), `tick()` runs one step, `models`, `batches` and `champion` read
what happened. It takes the pipeline's lease for that, and gives it up on `close()` (or at the
end of a ``with`` block).
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from driftloop.core import clock as clocks
from driftloop.core import config, errors, region_spec, secrecy, spec_base
from driftloop.store import entities, metadata, skops_trust

if TYPE_CHECKING:  # imported by open_project: they pull in pandas, which status does not need
    import pandas as pd

    from driftloop.controller import online_tick, policy_replay
    from driftloop.controller import tick as ticks
    from driftloop.data.sources import base as sources
    from driftloop.store import artifacts as artifact_store

STORE_ENV = secrecy.STORE_URL
"""The environment variable that, when set, names the metadata store instead of the spec."""


@dataclass
class Project:
    spec: config.PipelineSpec
    base_dir: Path
    store: metadata.MetadataStore
    artifacts: artifact_store.ArtifactStore
    source: sources.Source
    clock: clocks.Clock

    _holder: str | None = dataclasses.field(default=None, init=False, repr=False)
    _controller: ticks.Controller | online_tick.OnlineController | None = dataclasses.field(
        default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def open(
        cls,
        spec: str | Path | Mapping[str, Any] = "driftloop.yaml",
        *,
        base_dir: str | Path | None = None,
        clock: clocks.Clock | None = None,
    ) -> Project:
        """Open a pipeline from its spec file or from the same spec as a dict.

        Parameters
        ----------
        spec
            The path of a ``driftloop.yaml``, or its content as a mapping.
        base_dir
            Where relative locations in a dict spec (store, artifacts, source, trainer
            module) are; default: the current folder. A file's own folder is used for a file.
        clock
            The clock (a `FakeClock` in tests); default: the system's.

        Returns
        -------
        Project
            The open project; close it, or use it as a context manager.

        Examples
        --------
        >>> import tempfile, driftloop
        >>> spec = {"name": "prices", "source": {"path": "incoming/*.csv"}, "target": "y",
        ...         "trainer": {"function": "sklearn.linear_model:LogisticRegression"}}
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with driftloop.Project.open(spec, base_dir=folder) as project:
        ...         project.name, project.models, project.champion
        ('prices', [], None)
        """
        if not isinstance(spec, Mapping):
            return open_project(spec, clock=clock)
        parsed, region = for_region(config.spec_from_mapping(spec), None)
        return _open(parsed, Path(base_dir or ".").resolve(), clock, None, region)

    def __enter__(self) -> Project:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Give up the lease if this project took it, and close the store."""
        if self._holder is not None:
            self.store.leases.release(self.name, self._holder)
        self.store.close()

    @property
    def models(self) -> list[entities.ModelVersion]:
        """The pipeline's model versions, oldest first."""
        return self.store.versions.list(self.name)

    @property
    def batches(self) -> list[entities.Batch]:
        """The pipeline's batches (accepted and quarantined), in arrival order."""
        return self.store.batches.list(self.name)

    @property
    def champion(self) -> entities.ModelVersion | None:
        """The live model's version record, or None before the first model."""
        number = self.store.aliases.get(self.name, "champion")
        return None if number is None else self.store.versions.get(self.name, number)

    def load_model(self, version: int | None = None) -> Any:
        """The fitted estimator of `version` (default: the champion), checked against its
        sha256."""
        record = self.champion if version is None else self.store.versions.get(
            self.name, version)
        if record is None:
            raise errors.NotFoundError(f"pipeline {self.name!r} has no champion yet: tick first",
                                       pipeline=self.name)
        return self.artifacts.get_model(record.artifact_uri, record.sha256)

    def tick(self) -> ticks.TickResult:
        """One step of the loop: poll the source, evaluate, decide, train, gate, promote."""
        from driftloop.controller import tick as ticks

        if self._controller is None:
            self._controller = ticks.build_controller(self, holder=self._holder_name())
        return self._controller.tick()

    def ingest(self, frame: pd.DataFrame, name: str | None = None) -> entities.Batch:
        """Record `frame` as a batch, validated like a file: accepted, or quarantined with
        its reasons (``batch.reasons``). The same rows twice are one batch.

        Parameters
        ----------
        frame
            The rows, with the spec's target (and timestamp) columns.
        name
            What the batch's ``source_uri`` calls it (``frame:NAME``); default: its
            fingerprint.
        """
        from driftloop.controller import ingest as ingesting
        from driftloop.controller import lease as leases
        from driftloop.data import row_names
        from driftloop.data.sources import base as sources

        fingerprint = frame_fingerprint(frame)
        found = self.store.batches.find(self.name, fingerprint)
        if found is not None:
            return found
        raw = sources.RawBatch(f"frame:{name or fingerprint[:12]}", fingerprint, frame, None, {},
                               row_names=row_names.RowNames())
        holder = self._holder_name()
        with leases.hold(self.store, self.name, holder, self.spec.lease_timeout) as held:
            if held is None:
                raise errors.ConflictError(
                    f"another controller holds the lease on {self.name!r}; stop it, or let it "
                    "ingest the data", pipeline=self.name)
            return ingesting.record_batch(self, raw)

    def backtest(
        self,
        frame: pd.DataFrame,
        policies: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        every: timedelta | str = timedelta(days=1),
        warmup: timedelta | str = timedelta(days=30),
        workers: int = 1,
    ) -> list[policy_replay.PolicyResult]:
        """Replay `frame` through the tick on a simulated clock, for the baselines and each
        named policy (spec overrides, e.g. ``{"weekly": {"triggers": [...]}}``).

        `every` and `warmup` are durations (``"1d"``, ``"12h"``). Nothing is written to
        this project's store: each policy replays into a store of its own, in memory."""
        from driftloop.controller import backtest as backtests

        return backtests.backtest(
            frame, self.spec, {key: dict(value) for key, value in (policies or {}).items()},
            base_dir=self.base_dir, every=_duration(every), warmup=_duration(warmup),
            workers=workers)

    def _holder_name(self) -> str:
        from driftloop.controller import lease as leases

        if self._holder is None:
            self._holder = leases.holder_name("python")
        return self._holder


def open_project(
    path: str | Path = "driftloop.yaml", clock: clocks.Clock | None = None,
    actor: str | None = None, region: str | None = None,
) -> Project:
    """Load the spec at `path` and open its store, artifacts and source. A spec that changed
    since it was last stored is recorded with an audit row naming `actor` (default: the OS
    user running the command). A spec with `regions:` is opened for one region (`region`, or
    $DRIFTLOOP_REGION): its store, artifacts, source and time zone replace the top-level ones,
    and what the store writes records the region (`for_region`)."""
    path = Path(path)
    spec, chosen = for_region(config.load_spec(path), region)
    return _open(spec, path.resolve().parent, clock, actor, chosen)


def _open(
    spec: config.PipelineSpec, base_dir: Path, clock: clocks.Clock | None, actor: str | None,
    region: str | None = None,
) -> Project:
    from driftloop.data.sources import base as sources
    from driftloop.store import artifacts as artifact_store

    clock = clock or clocks.SystemClock()
    override = os.environ.get(STORE_ENV)
    if region is not None and override and override != spec.store:  # not another region's
        region_spec.check_own(spec.regions, region, override, f"${STORE_ENV}")
    artifacts_url = (os.environ.get(secrecy.ARTIFACTS_URL)
                     or secrecy.expand(spec.artifacts.url, "artifacts.url"))
    source = type(spec.source).model_validate(
        secrecy.expand_all(spec.source.model_dump(mode="json"), "source"))
    store = metadata.MetadataStore.open(store_url(spec, base_dir), clock=clock)
    store.region = region
    project = Project(
        spec=spec,
        base_dir=base_dir,
        store=store,
        artifacts=artifact_store.ArtifactStore(
            resolve_path_url(artifacts_url, base_dir), trusted_modules=trusted_modules(spec),
            **secrecy.expand_all(spec.artifacts.options, "artifacts.options"),
        ),
        source=sources.build_source(source, base_dir),
        clock=clock,
    )
    # the spec as written: ${NAME} references, never their values (the store redacts the rest)
    store.pipelines.ensure(spec.name, spec.model_dump(mode="json"), actor=actor or whoami())
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


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """The sha256 of a frame's column names, types, index and values: the same rows give the
    same fingerprint, so ingesting them twice records one batch.

    >>> import pandas as pd
    >>> a = frame_fingerprint(pd.DataFrame({"x": [1, 2]}))
    >>> a == frame_fingerprint(pd.DataFrame({"x": [1, 2]})), a == frame_fingerprint(
    ...     pd.DataFrame({"x": [2, 1]}))
    (True, False)
    """
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    for chunk in _hashes(pd, frame):
        digest.update(chunk)
    return digest.hexdigest()


def _hashes(pd: Any, frame: pd.DataFrame) -> Iterator[bytes]:
    yield pd.util.hash_pandas_object(frame.index).to_numpy().tobytes()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object:  # mixed types (JSON-ish rows) hash as their text
            values = values.astype(str)
        yield pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes()


def _duration(value: timedelta | str) -> timedelta:
    parsed = spec_base.parse_duration(value)
    if not isinstance(parsed, timedelta):
        raise errors.ConfigError(f"{value!r} is not a duration; write e.g. '1d', '12h', '30m'")
    return parsed


def trusted_modules(spec: config.PipelineSpec) -> list[str]:
    """The modules a stored model of this pipeline may contain besides scikit-learn, numpy and
    scipy (`store.skops_trust`): its trainer functions' modules, what driftloop's LightGBM
    family needs when it is named (`train.boosting`), and `trainer.trusted_modules`."""
    from driftloop.train import boosting

    trainer = spec.trainer
    functions = [trainer.function]
    if trainer.search is not None:
        functions += [candidate.function for candidate in trainer.search.candidates.values()]
    modules = skops_trust.modules_of(functions)
    return modules + boosting.trusted_for(modules) + list(trainer.trusted_modules)


def store_url(spec: config.PipelineSpec, base_dir: Path) -> str:
    """Where the metadata store is: $DRIFTLOOP_STORE_URL, else the spec's `store` with its
    ``${NAME}`` references replaced; a relative SQLite path is in `base_dir`."""
    url = os.environ.get(STORE_ENV) or secrecy.expand(spec.store, "store")
    return resolve_store_url(url, base_dir)


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
