"""Concept-drift detectors over a stream of per-row errors (0/1 misclassification or a loss).

The performance signal of the loop: the controller feeds each labelled row's error of the live
model to an `ErrorStreamDetector` and the policy's performance trigger reads `drift_points_`.
The statistics are river's (`river.drift.ADWIN`, `river.drift.PageHinkley`); this class only
gives them one interface, parameter round-trip and a batch `scan`.

>>> detector = ErrorStreamDetector("page_hinkley", threshold=10.0)
>>> detector.scan([0.0] * 200 + [1.0] * 50)
[210]
>>> ErrorStreamDetector(**detector.get_params())
ErrorStreamDetector(kind='page_hinkley', threshold=10.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from driftloop.core import errors

DetectorKind = Literal["adwin", "page_hinkley"]

_RIVER_NAMES = {"adwin": "ADWIN", "page_hinkley": "PageHinkley"}


def _river(kind: str) -> Callable[..., Any]:
    """river's detector class (river is imported on first use, not with driftloop)."""
    from river import drift as river_drift

    factory: Callable[..., Any] = getattr(river_drift, _RIVER_NAMES[kind])
    return factory


class ErrorStreamDetector:
    """One river drift detector behind `update(error) -> bool`.

    `kind` picks the detector; `params` go to river unchanged (river's defaults apply to the
    rest). `drift_points_` holds the 0-based positions, counted since construction or `reset`,
    of the elements at which drift was detected. After a detection river restarts its own
    statistics at the next element, exactly as when river is used bare.
    """

    def __init__(self, kind: DetectorKind, **params: Any) -> None:
        if kind not in _RIVER_NAMES:
            raise errors.ConfigError(
                f"`kind` of ErrorStreamDetector must be one of {sorted(_RIVER_NAMES)}; "
                f"got {kind!r}."
            )
        self.kind = kind
        self.params = dict(params)
        try:
            self._detector = _river(kind)(**self.params)
        except (TypeError, ValueError) as exc:
            raise errors.ConfigError(f"bad parameters for the {kind} detector: {exc}") from exc
        self.drift_points_: list[int] = []
        self.n_seen_ = 0

    def update(self, error: float) -> bool:
        """Feed one error; True when drift is detected at this element."""
        self._detector.update(error)
        detected = bool(self._detector.drift_detected)
        if detected:
            self.drift_points_.append(self.n_seen_)
        self.n_seen_ += 1
        return detected

    def scan(self, errors_: Sequence[float]) -> list[int]:
        """Feed a whole sequence; the positions (within it) where drift was detected."""
        start = self.n_seen_
        return [
            i - start for i in range(start, start + len(errors_)) if self.update(errors_[i - start])
        ]

    def reset(self) -> None:
        """Forget everything seen; parameters stay."""
        self._detector = _river(self.kind)(**self.params)
        self.drift_points_ = []
        self.n_seen_ = 0

    def get_params(self) -> dict[str, Any]:
        """`kind` and the given parameters: ``ErrorStreamDetector(**get_params())`` is a twin."""
        return {"kind": self.kind, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({args})"


def scan(errors_: Sequence[float], kind: DetectorKind = "adwin", **params: Any) -> list[int]:
    """Drift positions of a fresh detector over a whole error stream.

    >>> scan([0.0] * 200 + [1.0] * 50, kind="page_hinkley", threshold=10.0)
    [210]
    """
    return ErrorStreamDetector(kind, **params).scan(errors_)
