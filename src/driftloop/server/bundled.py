"""`driftloop serve --bundle`: serve a bundle (`store.bundles`) without the pipeline's store.

The model is the bundle's, read-only: it is verified and loaded once at start, never swapped,
and the admin and ingest routes are absent. Predictions and feedback labels are still logged:
to the store that the environment variable ``DRIFTLOOP_STORE_URL`` names (the pipeline's own,
where the controller then sees them, and where API tokens are read), else to a local SQLite
file (``DRIFTLOOP_PREDICTION_LOG``, default ``predictions.db`` in the working folder) that
this server creates with the bundle's pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path

from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.data.sources import base as sources
from driftloop.store import artifacts, bundles, metadata

STORE_ENV = projects.STORE_ENV
LOG_ENV = "DRIFTLOOP_PREDICTION_LOG"
DEFAULT_LOG = "predictions.db"


def log_url(environ: dict[str, str] | None = None) -> str:
    """Where predictions go: ``DRIFTLOOP_STORE_URL``, else the SQLite file of
    ``DRIFTLOOP_PREDICTION_LOG`` (default ``predictions.db``, relative to the working folder).

    >>> log_url({"DRIFTLOOP_PREDICTION_LOG": "/var/log/p.db"})
    'sqlite:////var/log/p.db'
    >>> log_url({"DRIFTLOOP_STORE_URL": "postgresql://db/p", "DRIFTLOOP_PREDICTION_LOG": "x"})
    'postgresql://db/p'
    """
    found = os.environ if environ is None else environ
    if found.get(STORE_ENV):
        return found[STORE_ENV]
    return "sqlite:///" + str(Path(found.get(LOG_ENV) or DEFAULT_LOG).resolve())


def open_bundle_project(
    bundle: bundles.Bundle, url: str, clock: clocks.Clock | None = None,
) -> projects.Project:
    """A project over `bundle` whose store is `url`. A store that is not the pipeline's own
    gets the pipeline (bundle spec) created on first use; the pipeline's own store must know
    the pipeline already, and its spec is left as it is."""
    spec = config.PipelineSpec.model_validate(bundle.spec)
    store = metadata.MetadataStore.open(url, clock=clock or clocks.SystemClock())
    known = {pipeline.name for pipeline in store.pipelines.list()}
    if bundle.pipeline not in known:
        store.pipelines.ensure(bundle.pipeline, bundle.spec, actor=projects.whoami())
    return projects.Project(
        spec=spec, base_dir=bundle.path, store=store,
        artifacts=artifacts.ArtifactStore(str(bundle.path), trusted_modules=bundle.trusted_modules),
        source=sources.build_source(spec.source, bundle.path), clock=store.clock)
