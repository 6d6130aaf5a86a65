"""Child processes that end with the process that started them.

`die_with_parent` runs first thing in a child (a process pool's initializer, a training child):
on Linux the kernel sends it SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), however the
parent died (SIGTERM, SIGKILL, the OOM killer); a child whose parent died before it got there
ends at once. Elsewhere it does nothing: a parent there must stop its children itself.

Under the "forkserver" start method the parent is the fork server, which exits once no process
holds its "alive" pipe; every child inherits that pipe, so the child lets go of it here (else
the server, and so the child, would outlive the process that asked for it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from multiprocessing import forkserver

PR_SET_PDEATHSIG = 1
"""From <sys/prctl.h>."""


def die_with_parent(parent: int | None = None) -> None:
    """Have this process killed when its parent dies; `parent`: the parent's pid, to end now
    if it is gone already (then this process has another parent)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        os.close(alive)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]
    if parent is not None and os.getppid() != parent:
        os._exit(1)
