"""The `trainer.federated` section: train across the regions by averaging parameters (FedAvg).

Each region's controller trains on its own rows only; a coordinator (`driftloop regions
federate`) combines the regions' parameters, weighted by their row counts, into one global
model, which then goes through every region's own gate and is versioned there like any other
version.

    trainer:
      function: sklearn.linear_model:SGDClassifier   # a linear model with `partial_fit`
      params: {loss: log_loss, alpha: 0.0001}
      federated: {rounds: 20, epochs: 1, min_regions: 2}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from driftloop.core.spec_base import Spec as _Spec


class FederatedSpec(_Spec):
    """How a federated training runs: its rounds, the local passes per round, and how many
    regions must take part."""

    rounds: int = Field(default=10, ge=1, description="Rounds of FedAvg per training")
    epochs: int = Field(default=1, ge=1, description="Passes over a region's rows per round")
    min_regions: int = Field(
        default=2, ge=1,
        description="A round runs only when at least this many regions train in it; the others "
        "wait for the next round (their decisions stay pending)",
    )
    seed: int = 0


def located(model: str, loc: Sequence[str | int], message: str, value: Any) -> ValidationError:
    """A validation error at field `loc` (relative to the model validated), so the spec's error
    names the field and its line, not the section around it."""
    return ValidationError.from_exception_data(model, [InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=tuple(loc), input=value)])


def trainer_problem(trainer: Any) -> str | None:
    """Why the rest of `trainer` cannot train federated (None: it can)."""
    if trainer.search is not None:
        return "`search` does not combine with `federated` (every trial would be a round)"
    if trainer.segment_by is not None:
        return "`segment_by` does not combine with `federated` (one global model per round)"
    if trainer.window.kind == "auto":
        return "window `auto` does not combine with `federated`; choose a window kind"
    if trainer.fairness_mitigation is not None:
        return "`fairness_mitigation` does not combine with `federated` yet"
    return None


def regions_problem(federated: FederatedSpec, regions: Sequence[Any]) -> str | None:
    """Why the spec's `regions:` cannot run `federated` (None: they can)."""
    if len(regions) < 2:
        return (f"federated training needs `regions:` (at least 2, each with its own data); "
                f"the spec declares {len(regions)}")
    if federated.min_regions > len(regions):
        return (f"min_regions {federated.min_regions} is more than the {len(regions)} regions "
                "the spec declares")
    return None
