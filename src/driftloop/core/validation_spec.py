"""The `validation:` section of a pipeline spec: how batches are checked against the schema
inferred from the first accepted data, and which data-quality signals quarantine a batch."""

from __future__ import annotations

from typing import Literal

import pydantic
from pydantic import Field

from driftloop.core.spec_base import Spec

QualitySignal = Literal["range", "categories", "missing"]
"""What a batch may show beyond the first data without being wrong: values outside the
inferred range, categories never seen, more missing values than the first data had."""


class ColumnValidation(Spec):
    """Validation settings of one column (`validation.per_column`)."""

    strict: list[QualitySignal] = Field(
        description="Signals that quarantine a batch in this column (replaces `strict`)"
    )


class ValidationSpec(Spec):
    """How batches are checked against the schema inferred from the first accepted data.

    Hard failures always quarantine a batch: unreadable data, values of the wrong type,
    missing required columns, values outside explicit `bounds`, infinite values, fewer than
    `min_rows` rows. What only goes beyond the first data (see `QualitySignal`) is a
    data-quality signal: the batch is accepted and the signal recorded with it, unless the
    signal is `strict` (for every column, or per column in `per_column`).

    >>> spec = ValidationSpec(strict=["range"], per_column={"x": {"strict": []}})
    >>> sorted(spec.strict_for("y")), sorted(spec.strict_for("x"))
    (['range'], [])
    """

    range_tolerance: float = Field(
        default=0.5,
        ge=0,
        description="Share of the seen range a value may lie beyond min/max before it is a "
        "range signal",
    )
    missing_rate_slack: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Extra missing share per column before it is a missing signal",
    )
    bounds: dict[str, tuple[float, float]] = Field(
        default={},
        description="Known [low, high] per column; replaces the inferred range and quarantines",
    )
    allow_new_categories: bool = Field(
        default=False, description="New categories are expected: not even a signal"
    )
    strict: list[QualitySignal] = Field(
        default=[], description="Signals that quarantine a batch, in every column"
    )
    per_column: dict[str, ColumnValidation] = {}
    min_rows: int = Field(default=1, ge=1)

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> ValidationSpec:
        lists = {"": self.strict} | {n: c.strict for n, c in self.per_column.items()}
        for name, strict in lists.items():
            if self.allow_new_categories and "categories" in strict:
                where = f"per_column.{name}.strict" if name else "strict"
                raise ValueError(
                    f"{where} makes new categories quarantine a batch, but "
                    "allow_new_categories accepts them; choose one"
                )
        return self

    def strict_for(self, column: str) -> frozenset[str]:
        """The signals that quarantine a batch in `column`."""
        own = self.per_column.get(column)
        return frozenset(self.strict if own is None else own.strict)
