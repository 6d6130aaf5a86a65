"""The request and response bodies of the prediction API (pydantic models), as the OpenAPI
document shows them.

A request model forbids unknown keys and bounds every number that reaches the database
(a model version is at most `types.MAX_VERSION`, the largest a PostgreSQL ``integer`` holds), so
a huge value is a 422 with a message, never an overflow deep in the store. Its ``examples``
appear in ``/docs`` and in the message of a 422 (`server.problems`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.json_schema import SkipJsonSchema

from driftloop.core import types

_RECORD: dict[str, JsonValue] = {"period": 0.5, "nswprice": 0.06, "nswdemand": 0.4}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Body):
    """Give `records` (a list) or one `record`; `key` identifies the caller (kept in the
    prediction log; canary and A/B rollouts assign by it, so a key always meets the same
    model while a rollout lasts)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["records"]}, {"required": ["record"]}],
        "examples": [{"record": _RECORD, "key": "customer-17"}, {"records": [_RECORD]}],
    })

    # min_length on the list itself: on the union it would fail (500) on an explicit null
    records: Annotated[list[dict[str, Any]], Field(min_length=1)] | SkipJsonSchema[None] = None
    record: dict[str, Any] | SkipJsonSchema[None] = None
    key: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        given = {"records", "record"} & self.model_fields_set  # an explicit null counts: the
        if len(given) != 1 or getattr(self, given.pop()) is None:  # document has no nulls here
            raise ValueError("give exactly one of `records` (a list) or `record` (an object)")
        return self


class PredictionOut(BaseModel):
    id: str
    prediction: Any
    probabilities: dict[str, float] | None
    version: int
    alias: str
    contributions: dict[str, float] | SkipJsonSchema[None] = Field(
        default=None, description="Each feature's SHAP contribution (with ?explain=true)")


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]
    version: int
    alias: str


class Label(_Body):
    prediction_id: str = Field(min_length=1, max_length=36,
                               description="The `id` /v1/predict gave the prediction")
    label: Any = Field(description="The true value of the target")


class FeedbackRequest(_Body):
    """Labels for earlier predictions, always as a list under `labels` (one label too)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"labels": [{"prediction_id": "0b5c3c1e-5d0f-4f4e-9a7c-2f1d1c7e9b10", "label": 1}]},
    ]})

    labels: list[Label] = Field(min_length=1, max_length=10_000)


class FeedbackResponse(BaseModel):
    stored: int
    duplicates: list[str] = Field(description="Already labelled: the first label wins")
    learned: int = Field(default=0, description=(
        "Labels this server's online learner learned now (0 while an online controller holds "
        "the pipeline's lease: its next tick learns them)"))


class PromoteRequest(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"version": 3, "alias": "champion", "reason": "better on last week"}]})

    version: int = Field(ge=1, le=types.MAX_VERSION)
    alias: types.AliasName = "champion"
    reason: str = Field(default="promoted through the API", max_length=500)


class RollbackRequest(_Body):
    alias: types.AliasName = "champion"
    reason: str = Field(default="rolled back through the API", max_length=500)


class RetrainRequest(_Body):
    reason: str = Field(default="requested through the API", max_length=500)


class AliasMoveOut(BaseModel):
    """An alias move (promote or rollback) and the versions this server now serves."""

    alias: str
    version: int | None
    previous: int | None
    actor: str
    action: str
    serving: dict[str, int]


class RetrainOut(BaseModel):
    decision: int
    kind: str
    actor: str


class Readiness(BaseModel):
    ready: bool
    pipeline: str
    serving: dict[str, int]
    runtimes: dict[str, str] = Field(
        default_factory=dict, description="What scores for each alias: sklearn or onnx")
    process: str = Field(default="", description="The server process (worker) that answered")
    problems: list[str]
    degraded: list[str] = []
