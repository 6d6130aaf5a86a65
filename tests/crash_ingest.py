"""`driftloop ingest --spec SPEC`, killed with SIGKILL at a chosen point of the N-th batch.

Run by `data/test_streams_exactly_once.py` as a real process (``python tests/crash_ingest.py``). The
point comes from DRIFTLOOP_CRASH_AT as ``point:n``:

- ``record:n``   before the n-th batch row is written (its artifact is already stored);
- ``recorded:n`` right after the n-th batch row and its message ids are committed;
- ``ack:n``      just before the n-th acknowledgement (the cursor is stored by then).

Without the variable it is plain `driftloop ingest`. The hooks wrap the real methods, so
everything else runs as in production.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def _die_on(owner: Any, name: str, n: int, before: bool) -> None:
    """Make `owner.name` kill the process on its n-th call, before or after doing its work."""
    real = getattr(owner, name)
    calls = [0]

    def hooked(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if before and calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if not before and calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, hooked)


def main() -> None:
    crash = os.environ.get("DRIFTLOOP_CRASH_AT")
    if crash:
        from driftloop.data.sources import nats_stream, redis_stream
        from driftloop.store import _batches

        point, _, count = crash.partition(":")
        n = int(count)
        if point in ("record", "recorded"):
            _die_on(_batches.Batches, "add", n, before=point == "record")
        elif point == "ack":
            for cls in (redis_stream.RedisSource, nats_stream.NatsSource):
                _die_on(cls, "acknowledge", n, before=True)
        else:
            raise SystemExit(f"DRIFTLOOP_CRASH_AT: unknown point {point!r}")
    from driftloop.cli.main import app

    sys.argv = ["driftloop", "ingest", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
