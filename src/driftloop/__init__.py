"""driftloop: continuous training of machine-learning models.

The public API, in one place. Names load lazily on first use, so `import driftloop` stays fast
(the CLI and the server import what they need themselves).

>>> import driftloop
>>> driftloop.FakeClock.__name__
'FakeClock'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ArtifactStore": "driftloop.store.artifacts",
    "Controller": "driftloop.controller.tick",
    "DriftReport": "driftloop.drift.report",
    "DriftloopError": "driftloop.core.errors",
    "ErrorStreamDetector": "driftloop.drift.detectors",
    "FakeClock": "driftloop.core.clock",
    "MetadataStore": "driftloop.store.metadata",
    "PipelineSpec": "driftloop.core.config",
    "Policy": "driftloop.policy.policy",
    "Project": "driftloop.controller.project",
    "SystemClock": "driftloop.core.clock",
    "backtest": "driftloop.controller.backtest",
    "build_profile": "driftloop.data.profile",
    "detect_drift": "driftloop.drift.report",
    "evaluate_gate": "driftloop.gate.gate",
    "load_elec2": "driftloop.data.elec2",
    "load_spec": "driftloop.core.config",
    "open_project": "driftloop.controller.project",
    "parse_spec": "driftloop.core.config",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'driftloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
