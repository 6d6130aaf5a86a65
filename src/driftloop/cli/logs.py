"""Where the ``driftloop.*`` loggers go: `--log-format text|json` and `--log-level` of every
command (`cli.main`).

Every module logs to its own named logger (``driftloop.controller.tick``,
``driftloop.store._engine``, ``driftloop.server``, ...); this module sends them to stderr, as
lines of text or as one JSON object per line (``time``, ``level``, ``logger``, ``message``, and
``exception`` with the traceback) for a log collector. Either way a record passes through
`Redact` first, so a URL with a password in a message is logged as ``user:***@host``.

    >>> record = logging.LogRecord("driftloop.x", logging.INFO, __file__, 1,
    ...                            "opened %s", ("postgresql://u:pw@db/x",), None)
    >>> _ = Redact().filter(record)
    >>> json.loads(JsonFormatter().format(record))["message"]
    'opened postgresql://u:***@db/x'
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

from driftloop.core import secrecy

Format = Literal["text", "json"]
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Redact(logging.Filter):
    """Masks secrets in URLs of a record's message (its arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = secrecy.redact_text(record.getMessage())
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = secrecy.redact_text(self.formatException(record.exc_info))
        return json.dumps(document, default=str)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (a test runner swaps it per command)."""

    def __init__(self, format: Format) -> None:
        super().__init__()
        self.driftloop_format = format

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure(format: Format = "text", level: str = "warning") -> logging.Handler:
    """Send the ``driftloop`` loggers (and, for JSON, every logger that propagates to the root:
    uvicorn's, alembic's) to stderr in `format` from `level` up; returns the handler."""
    handler = _Stderr(format)
    handler.addFilter(Redact())
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(TEXT))
    for logger in (logging.getLogger(), logging.getLogger("driftloop")):
        for old in [h for h in logger.handlers if isinstance(h, _Stderr)]:
            logger.removeHandler(old)
    (logging.getLogger() if format == "json" else logging.getLogger("driftloop")).addHandler(
        handler)
    logging.getLogger("driftloop").setLevel(level.upper())
    return handler


def active_format() -> Format | None:
    """The format `configure` set up, or None."""
    for logger in (logging.getLogger(), logging.getLogger("driftloop")):
        for handler in logger.handlers:
            if isinstance(handler, _Stderr):
                return handler.driftloop_format
    return None


def uvicorn_options() -> dict[str, object]:
    """What `uvicorn.run` needs so that its loggers follow `--log-format json` (its own
    configuration would print text)."""
    return {"log_config": None} if active_format() == "json" else {}
