"""Which driftloop runs: the labels of the ``driftloop_build_info`` metric of the server and
the controller. The version is the installed distribution's (the root package's
``__version__`` cannot be imported from a layer without importing every layer's API).

>>> sorted(labels())
['python', 'version']
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform


@functools.cache
def labels() -> dict[str, str]:
    """``{"version": "0.1.0", "python": "3.11.7"}``; the version is "unknown" when driftloop
    runs from a source tree that was never installed."""
    try:
        version = importlib.metadata.version("driftloop")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"version": version, "python": platform.python_version()}
