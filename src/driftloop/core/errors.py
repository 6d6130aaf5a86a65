"""Every error driftloop raises, under one root.

Callers catch `DriftloopError` (or a branch of it); the CLI prints the message, the server maps
the kind to an HTTP status through `HTTP_STATUS`. Errors carry the context they were raised in
(pipeline, batch, model version) as keyword attributes.

    DriftloopError
    ├── ConfigError              a spec file or value is wrong (file:line:field in the message)
    ├── ValidationError          a batch breaks the pipeline's schema (carries per-column reasons)
    ├── NotFoundError            a pipeline, batch, model version or alias does not exist
    ├── ConflictError            the action clashes with stored state (lease held, alias moved)
    ├── IntegrityError           an artifact's bytes do not match their sha256
    ├── AuthError                missing or wrong credentials, or a role that may not do this
    ├── TrainingError            a trainer failed or ran out of time
    ├── FormatError              a model cannot be exported to or imported from another format
    └── ControllerError          raised inside a tick; tells the controller whether to retry
        ├── TemporaryError       retry after `delay` seconds
        │   └── Postponed        the work did not happen this time, by nobody's fault
        └── PermanentError       do not retry; record and move on
"""

from __future__ import annotations

from typing import Any


class DriftloopError(Exception):
    """Root of every driftloop error. `context` holds where it happened (pipeline, batch, ...)."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        if not self.context:
            return self.message
        where = ", ".join(f"{key}={value}" for key, value in self.context.items())
        return f"{self.message} [{where}]"


class ConfigError(DriftloopError):
    """A spec is malformed or invalid; the message names file, line and field."""


class ValidationError(DriftloopError):
    """A batch breaks the schema. `reasons` maps a column (or "*") to what is wrong with it."""

    def __init__(self, message: str, reasons: dict[str, list[str]], **context: Any) -> None:
        super().__init__(message, **context)
        self.reasons = reasons


class NotFoundError(DriftloopError):
    """The named pipeline, batch, model version or alias does not exist."""


class ConflictError(DriftloopError):
    """The action clashes with stored state, e.g. another controller holds the lease."""


class IntegrityError(DriftloopError):
    """Stored bytes do not match the sha256 they were recorded with."""


class AuthError(DriftloopError):
    """Credentials are missing or wrong, or the role may not do this."""


class TrainingError(DriftloopError):
    """A trainer raised, returned something that is not an estimator, or timed out."""


class FormatError(DriftloopError):
    """A model cannot be converted to another format (or fails its parity check), or a model
    directory to import is malformed."""


class ControllerError(DriftloopError):
    """Raised inside a tick; its subclass tells the controller whether to retry."""


class TemporaryError(ControllerError):
    """Worth retrying after `delay` seconds (a lock, a network blip)."""

    def __init__(self, message: str, delay: float = 1.0, **context: Any) -> None:
        super().__init__(message, **context)
        self.delay = delay


class Postponed(TemporaryError):
    """The work did not happen this time, and nothing failed: a federated round that too few
    regions joined. The next tick tries again; a training postponed is no failed attempt
    (`controller.attempts`)."""


class PermanentError(ControllerError):
    """Not worth retrying; the controller records it and moves on."""


HTTP_STATUS: dict[type[DriftloopError], int] = {
    ConfigError: 400,
    ValidationError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    IntegrityError: 500,
    AuthError: 401,
    TrainingError: 500,
    FormatError: 422,
    ControllerError: 500,
}


def http_status(error: DriftloopError) -> int:
    """The HTTP status for an error: the entry of its nearest class in `HTTP_STATUS`."""
    for kind in type(error).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 500
