"""driftloop: continuous training of machine-learning models.

The public API, in one place. Names load lazily on first use, so `import driftloop` stays fast
(the CLI and the server import what they need themselves); type checkers and IDEs read the
imports under `TYPE_CHECKING` below, so they see the real types.

>>> import driftloop
>>> driftloop.FakeClock.__name__
'FakeClock'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftloop.controller.backtest import backtest
    from driftloop.controller.project import Project, open_project
    from driftloop.controller.tick import Controller
    from driftloop.core.clock import FakeClock, SystemClock
    from driftloop.core.config import PipelineSpec, load_spec, parse_spec
    from driftloop.core.drift_spec import DriftSpec
    from driftloop.core.errors import DriftloopError
    from driftloop.data.elec2 import load_elec2
    from driftloop.data.profile import build_profile
    from driftloop.drift.detectors import ErrorStreamDetector
    from driftloop.drift.report import DriftReport, detect_drift
    from driftloop.gate.gate import evaluate_gate
    from driftloop.policy.policy import Policy
    from driftloop.store.artifacts import ArtifactStore
    from driftloop.store.metadata import MetadataStore
    from driftloop.train.conformance import check_trainer
    from driftloop.ui.comparison import Comparison, compare

__version__ = "0.1.0"

_EXPORTS = {
    "ArtifactStore": "driftloop.store.artifacts",
    "Comparison": "driftloop.ui.comparison",
    "Controller": "driftloop.controller.tick",
    "DriftReport": "driftloop.drift.report",
    "DriftSpec": "driftloop.core.drift_spec",
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
    "check_trainer": "driftloop.train.conformance",
    "compare": "driftloop.ui.comparison",
    "detect_drift": "driftloop.drift.report",
    "evaluate_gate": "driftloop.gate.gate",
    "load_elec2": "driftloop.data.elec2",
    "load_spec": "driftloop.core.config",
    "open_project": "driftloop.controller.project",
    "parse_spec": "driftloop.core.config",
}

__all__ = [
    "ArtifactStore",
    "Comparison",
    "Controller",
    "DriftReport",
    "DriftSpec",
    "DriftloopError",
    "ErrorStreamDetector",
    "FakeClock",
    "MetadataStore",
    "PipelineSpec",
    "Policy",
    "Project",
    "SystemClock",
    "__version__",
    "backtest",
    "build_profile",
    "check_trainer",
    "compare",
    "detect_drift",
    "evaluate_gate",
    "load_elec2",
    "load_spec",
    "open_project",
    "parse_spec",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'driftloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
