"""Staged rollouts across regions: a region with `after: <earlier>` promotes only when the
earlier region's newest rollout passed.

The earlier region's metadata store is read (aliases and their history: metadata, never data):
while it has a version under live test (canary, shadow, A-B), or its newest champion move is a
rollback, or it has no champion at all, this region's promotion waits (`rollout.wait_for_window`
records the wait). Each region trains its own versions, so what is staged is the decision to
deploy, not one artifact: a change in the data or the trainer that made the earlier region
roll back holds the later regions until the earlier one promotes again.
"""

from __future__ import annotations

from driftloop.controller import project as projects
from driftloop.store import metadata

_TEST_ALIASES = ("canary", "shadow", "challenger")


def blocked(project: projects.Project) -> str | None:
    """Why this region must not promote yet (None: it may, or it is no later stage)."""
    regions = {r.name: r for r in project.spec.regions}
    here = regions.get(project.store.region or "")
    earlier = here.after if here is not None else None
    if earlier is None:
        return None
    url = projects.resolve_store_url(regions[earlier].store, project.base_dir)
    store = metadata.MetadataStore.open(url)
    try:
        return _blocking(store, project.name, earlier)
    finally:
        store.close()


def _blocking(store: metadata.MetadataStore, name: str, earlier: str) -> str | None:
    if name not in {p.name for p in store.list_pipelines()}:
        return f"region {earlier!r} has not run yet"
    aliases = store.aliases(name)
    testing = [f"v{aliases[a]} ({a})" for a in _TEST_ALIASES if aliases.get(a) is not None]
    if testing:
        return f"region {earlier!r} is still testing {', '.join(testing)}"
    if aliases.get("champion") is None:
        return f"region {earlier!r} has no champion yet"
    moves = [m for m in store.alias_history(name) if m.alias in ("champion", *_TEST_ALIASES)]
    newest = moves[-1] if moves else None
    if newest is not None and newest.action == "rollback":
        return (f"region {earlier!r} rolled back v{newest.previous} at "
                f"{newest.at:%Y-%m-%d %H:%M} UTC: {newest.reason}")
    return None
