"""Online learning inside the server: feedback labels update the learner that answers.

`server.state.ServerState` builds an `OnlineServing` when the spec has an `online:` section.
When the champion is loaded (or moved by someone else), a copy of that snapshot becomes the
live learner of an `controller.online_session.OnlineSession`, and the `ModelHolder` serves
exactly that object (`adopt`), so predictions come from the model that learns.
`POST /v1/feedback` calls `learn_feedback` after the labels are stored.

One writer at a time, chosen by the pipeline's lease (`controller.lease`): the learner learns
and checkpoints (versions, the champion alias, decisions) only while this process holds it. A
feedback call takes the lease (holder ``server:online@host:pid:…``), makes sure the session
continues from the current champion, learns the new labels of champion predictions
(`controller.online_feedback`: joined to the features logged with their prediction, in label
order) with its writes fenced, and gives the lease back, so an online controller
(`driftloop run` / `tick`) is never kept from its tick. While another holder has the lease (a
controller mid-tick), the call learns nothing and leaves the labels where they are: the holder
learns them (the online controller learns feedback labels too), and this server serves its
snapshots through the hot swap (`swapped`). Each snapshot records the newest label its lineage
learned, so a label is learned once, whichever process learns it, also across restarts: what a
learner learned after its last snapshot is learned again from that snapshot by the next writer.
`ServerState.stop` releases the lease; a process that dies holding it loses it after the
pipeline's `lease_timeout`.

Predictions stay consistent while it learns: the model's lock makes every update atomic to a
reader (`train.online.OnlineModel`).
"""

from __future__ import annotations

import logging
import threading

from driftloop.controller import lease as leases
from driftloop.controller import online_feedback, online_session
from driftloop.controller import project as projects
from driftloop.core import errors
from driftloop.server import live_models, scoring
from driftloop.store import entities, serving
from driftloop.train import online as learners

log = logging.getLogger("driftloop.server")

ACTOR = "server:online"


class OnlineServing:
    """The server's online learner session, fed by feedback labels."""

    def __init__(
        self, project: projects.Project, store: serving.ServingStore,
        holder: live_models.ModelHolder,
    ) -> None:
        self.project = project
        self.store = store
        self.holder = holder
        self.lease_holder = leases.holder_name(ACTOR)
        self._session: online_session.OnlineSession | None = None
        self._lock = threading.Lock()

    @property
    def session(self) -> online_session.OnlineSession | None:
        return self._session

    def swapped(self, alias: str, new: live_models.LiveModel | None) -> None:
        """The holder moved `alias`: follow the champion unless it is already our learner."""
        if alias != "champion" or new is None:
            return
        session = self._session
        if session is not None and new.model is session.model:
            return
        if session is not None and session.version is not None and (
            new.number == session.version.version
        ):  # our own checkpoint, loaded back by the poller: keep serving the learning object
            self.holder.adopt("champion", session.version, session.model)
            return
        if not isinstance(new.model, learners.OnlineModel):
            log.error("%s: champion v%d is not an online learner; feedback will not train it",
                      self.project.name, new.number)
            return
        model = new.model.snapshot()  # the cached snapshot stays as stored
        if session is None:
            self._session = online_session.OnlineSession(
                self.project, model.features, ACTOR, model=model, version=new.version,
                on_model=self._serve,
            )
        else:
            session.attach(new.version, model)
        self.holder.adopt("champion", new.version, model)

    def _serve(self, version: entities.ModelVersion | None, model: learners.OnlineModel) -> None:
        if version is not None:
            self.holder.adopt("champion", version, model)

    def learn_feedback(self, inputs: scoring.InputSchema | None) -> int:
        """Learn the champion's predictions labelled since the session's position, under the
        lease; how many were learned (0 while another process holds the lease)."""
        if self._session is None or inputs is None:
            return 0
        store, name = self.project.store, self.project.name
        with self._lock:  # one learner of the labels at a time in this process
            taken = False
            try:
                with leases.hold(store, name, self.lease_holder,
                                 self.project.spec.lease_timeout) as lease:
                    if lease is None:
                        return 0  # the holder (an online controller) learns these labels
                    taken = True
                    session = self._current()
                    if session is None:
                        return 0
                    items = online_feedback.pending(self.project, self.store, session)
                    if not items:
                        return 0
                    online_feedback.learn(
                        self.project, session, items, inputs.schema, frame=inputs.frame)
                    return len(items)
            except errors.ConflictError as exc:  # the lease lapsed mid-call; another has it
                log.warning("%s: feedback not learned here: %s", name, exc)
                return 0
            finally:
                if taken:  # after the heartbeat stopped: nothing renews it behind our back
                    store.release_lease(name, self.lease_holder)

    def release(self) -> None:
        """Give the lease up if a feedback call left it with this process."""
        self.project.store.release_lease(self.project.name, self.lease_holder)

    def _current(self) -> online_session.OnlineSession | None:
        """The session, continuing from the champion as stored now (another writer may have
        moved it since the poller last looked); None if it cannot (the champion is not an
        online learner, or failed to load)."""
        number = self.project.store.get_alias(self.project.name, "champion")
        session = self._session
        if session is not None and session.version is not None and (
            session.version.version == number
        ):
            return session
        self.holder.refresh()  # the swap attaches the session to the new champion
        session = self._session
        if session is None or session.version is None or session.version.version != number:
            return None
        return session
