"""Whether a version may go live now: deployment windows and freezes, and rollout stages.

`must_wait` is asked before a promotion or the start of a live test (`controller.rollout`).
It answers yes, recording a ``rollout`` decision with outcome ``waiting`` once per version and
reason, while

* this region is a later stage (`regions: ... after: <earlier>`) and the earlier region has a
  version under live test (canary, shadow, A-B), rolled its newest one back, or has no champion
  (read from its metadata store: aliases and their history, never data). Each region trains its
  own versions, so what is staged is the decision to deploy, not one artifact: a change in the
  data or the trainer that made the earlier region roll back holds the later ones until it
  promotes again;
* or the time is outside every deployment window or inside a freeze (`policy.deploy_windows`):
  "waiting for window until 2026-03-30 02:00 CEST (Europe/Berlin)".
"""

from __future__ import annotations

from driftloop.controller import project as projects
from driftloop.store import metadata

_TEST_ALIASES = ("canary", "shadow", "challenger")


def must_wait(project: projects.Project, version: int, alias: str) -> bool:
    """True if `version` must wait before it may go live under `alias` (see the module
    docstring); the wait is recorded once per version and reason."""
    spec, store, name = project.spec.rollout, project.store, project.name
    now = project.clock.now()
    until, reason = None, blocked(project) if project.spec.regions else None
    if reason is not None:
        reason = f"waiting for {reason}: v{version} ({alias}) is a later stage"
    elif spec.windows or spec.freeze:
        from driftloop.policy import deploy_windows  # croniter: only for windows and freezes

        calendar = deploy_windows.DeployCalendar(spec.windows, spec.freeze)
        opens = calendar.opens_at(now)
        if opens > now:
            until = opens.isoformat()
            reason = (f"waiting for window until "
                      f"{deploy_windows.local_text(opens, spec.windows)}: v{version} ({alias}) "
                      f"decided {calendar.why_closed(now)}")
    if reason is None:
        return False
    last = store.decisions.list(name, kind="rollout", limit=1)
    seen = last[0].evidence if last else {}
    if seen.get("outcome") == "waiting" and (seen.get("version"), seen.get("reason")) == (
            version, reason):
        return True
    store.decisions.add(name, kind="rollout", fired=False, evidence={
        "outcome": "waiting", "version": version, "alias": alias, "until": until,
        "reason": reason})
    return True


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
    if name not in {p.name for p in store.pipelines.list()}:
        return f"region {earlier!r} has not run yet"
    aliases = store.aliases.all(name)
    testing = [f"v{aliases[a]} ({a})" for a in _TEST_ALIASES if aliases.get(a) is not None]
    if testing:
        return f"region {earlier!r} is still testing {', '.join(testing)}"
    if aliases.get("champion") is None:
        return f"region {earlier!r} has no champion yet"
    moves = [m for m in store.aliases.history(name) if m.alias in ("champion", *_TEST_ALIASES)]
    newest = moves[-1] if moves else None
    if newest is not None and newest.action == "rollback":
        return (f"region {earlier!r} rolled back v{newest.previous} at "
                f"{newest.at:%Y-%m-%d %H:%M} UTC: {newest.reason}")
    return None
