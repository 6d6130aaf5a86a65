"""Online learning inside the server: feedback labels update the learner that answers.

`server.state.ServerState` builds an `OnlineServing` when the spec has an `online:` section.
When the champion is loaded (or moved by someone else), a copy of that snapshot becomes the
live learner of an `controller.online.OnlineSession`, and the `ModelHolder` serves exactly that
object (`adopt`), so predictions come from the model that learns. `POST /v1/feedback` calls
`learn_feedback` after the labels are stored: the new labels of champion predictions are
joined to the features logged with their prediction, rebuilt into the frame a prediction sees,
and learned in label order, with the prediction that was served as the event's test. A cursor
in the store (``online-feedback``) marks what has been learned, so each label is learned once,
also across restarts (what a learner learned after its last snapshot is lost with the process;
the snapshot cadence bounds that).

Predictions stay consistent while it learns: the model's lock makes every update atomic to a
reader (`train.online.OnlineModel`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from driftloop.controller import online
from driftloop.controller import project as projects
from driftloop.server import models, scoring
from driftloop.store import entities, serving
from driftloop.train import online as learners

log = logging.getLogger("driftloop.server")

CURSOR = "online-feedback"
ACTOR = "server:online"


class OnlineServing:
    """The server's online learner session, fed by feedback labels."""

    def __init__(
        self, project: projects.Project, store: serving.ServingStore, holder: models.ModelHolder,
    ) -> None:
        self.project = project
        self.store = store
        self.holder = holder
        self.session_: online.OnlineSession | None = None
        self.lock_ = threading.Lock()

    @property
    def session(self) -> online.OnlineSession | None:
        return self.session_

    def swapped(self, alias: str, new: models.LiveModel | None) -> None:
        """The holder moved `alias`: follow the champion unless it is already our learner."""
        if alias != "champion" or new is None:
            return
        session = self.session_
        if session is not None and new.model is session.model_:
            return
        if session is not None and session.version is not None and (
            new.number == session.version.version
        ):  # our own checkpoint, loaded back by the poller: keep serving the learning object
            self.holder.adopt("champion", session.version, session.model_)
            return
        if not isinstance(new.model, learners.OnlineModel):
            log.error("%s: champion v%d is not an online learner; feedback will not train it",
                      self.project.name, new.number)
            return
        model = new.model.snapshot()  # the cached snapshot stays as stored
        if session is None:
            self.session_ = online.OnlineSession(
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
        """Learn the champion's predictions labelled since the cursor; how many were learned."""
        session = self.session_
        if session is None or inputs is None:
            return 0
        name = self.project.name
        with self.lock_:  # one learner of the cursor's labels at a time: each learned once
            after = int((self.project.store.get_cursor(name, CURSOR) or {}).get("after", 0))
            items = self.store.labelled(name, after_id=after, alias="champion")
            if not items:
                return 0
            frame = inputs.frame([item.prediction.features for item in items])
            records = learners.records_of(frame, session.features)
            target = inputs.schema.column(inputs.schema.target)
            events = [
                online.Event(record, _label(item.label, target.dtype), item.prediction.prediction)
                for record, item in zip(records, items, strict=True)
            ]
            session.learn(events)
            self.project.store.set_cursor(name, CURSOR, {"after": items[-1].feedback_id})
            return len(events)


def _label(value: Any, dtype: str) -> Any:
    """A label as JSON sent it, in the target column's type (as the learner learned it).

    >>> _label(1.0, "int64"), _label(1, "float64"), _label(2, "object")
    (1, 1.0, '2')
    """
    if dtype.startswith(("int", "uint")):
        return int(value)
    if dtype.startswith("float"):
        return float(value)
    if dtype == "bool":
        return bool(value)
    return str(value)
