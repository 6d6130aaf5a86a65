"""The `retention:` section of a pipeline spec: how long what driftloop stores is kept.

`core.config.PipelineSpec` holds it as `retention`; the controller applies it at the end of
every tick in bounded slices (`controller.retention_tick`), `driftloop gc` deletes archives whose
time has passed. The defaults keep a laptop's store small without ever being touched:

    retention:
      label_horizon: 7d        # raw predictions: kept while a label may still come, then archived
      predictions: archive     # or delete
      minute_stats: 30d        # per-minute serving stats, then one row per hour
      hourly_stats: 400d       # hourly serving stats, then deleted
      batches: 30 batches      # accepted batch files no version needs: kept this much longer
      quarantine: 30d          # quarantined batch files, for inspection and requeue
      then: archive            # batch files, records leaving: archive (Parquet by day) or delete
      history: 30d             # evaluations, decisions, old profiles and snapshots: then archived
      archives: 400d           # archived files, then `driftloop gc --yes` deletes them
      merge_rows: 250000       # a day's small archived files are merged up to this many rows
      versions: 3              # the newest versions: their training batches (or snapshots) stay
      slice_rows: 5000         # rows one tick moves at most (a tick's cost is bounded)

Amounts are in the data's units (`core.amount`): a batch's files may be kept for ``30
batches``, ``100000 rows`` or ``90d``; the label horizon is a duration, because labels come
back in clock time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pydantic
from pydantic import Field

from driftloop.core.amount import Amount, AmountField
from driftloop.core.spec_base import Duration
from driftloop.core.spec_base import Spec as _Spec


class RetentionSpec(_Spec):
    """What is kept, for how long, and where it goes afterwards.

    A batch's file is kept while any of these needs it: the training lineage of an aliased
    version (champion, canary, shadow...), of a rollback target or of one of the newest
    `versions`; the next training's window (with window ``all``, ``auto`` or ``since_drift``
    every batch is needed, so none goes); the label horizon (late labels join their rows);
    and `batches` more (quarantined ones: `quarantine`). Predictions are kept for
    `label_horizon`, and a labelled one until the controller has scored its label.

    >>> spec = RetentionSpec(label_horizon="1d", batches="90d")
    >>> spec.label_horizon.duration, str(spec.batches)
    (datetime.timedelta(days=1), '90d')
    """

    label_horizon: AmountField = Field(
        default=Amount(7 * 86400, "seconds"),
        description="Predictions are kept this long (a label may still come), then leave",
    )
    predictions: Literal["archive", "delete"] = Field(
        default="archive", description="Where predictions past the label horizon go")
    minute_stats: Duration = Field(
        default=timedelta(days=30), gt=timedelta(0),
        description="Per-minute serving stats older than this are merged into hours")
    hourly_stats: Duration | None = Field(
        default=timedelta(days=400), description="Hourly serving stats older than this are "
        "deleted; null keeps them")
    batches: AmountField = Field(
        default=Amount(30, "batches"),
        description="Accepted batch files no version or window needs are kept this much longer",
    )
    quarantine: AmountField = Field(
        default=Amount(30 * 86400, "seconds"),
        description="Quarantined batch files are kept this long, for inspection and requeue")
    then: Literal["archive", "delete"] = Field(
        default="archive",
        description="Where batch files and records past their retention go")
    archives: Duration | None = Field(
        default=timedelta(days=400),
        description="Archived files older than this are deleted by `driftloop gc`; null: never")
    history: AmountField = Field(
        default=Amount(30 * 86400, "seconds"),
        description="Evaluations, decisions and profiles are kept while less than this came "
        "after them, then leave as `then` says, except what the loop still reads "
        "(`controller.records`)",
    )
    merge_rows: int = Field(
        default=250_000, ge=1,
        description="Archived files of one day and kind are merged into files of up to this "
        "many rows")
    versions: int = Field(
        default=3, ge=1, description="The newest versions whose training batches (an online "
        "pipeline: whose snapshots) are kept")
    slice_rows: int = Field(
        default=5000, ge=1, description="Rows (or batches) one tick moves at most")

    @pydantic.field_validator("label_horizon")
    @classmethod
    def _horizon_is_time(cls, value: Amount) -> Amount:
        if value.unit != "seconds":
            raise ValueError(
                f"`label_horizon` of retention must be a duration (labels come back in clock "
                f"time); got {value}. Write e.g. 1d or 36h")
        return value

    @pydantic.field_validator("batches", "history")
    @classmethod
    def _no_share(cls, value: Amount, info: pydantic.ValidationInfo) -> Amount:
        if value.unit == "share":
            raise ValueError(
                f"`{info.field_name}` of retention is batches, rows or a duration; got {value}")
        return value

    @pydantic.field_validator("quarantine")
    @classmethod
    def _period(cls, value: Amount) -> Amount:
        if value.unit not in ("seconds", "batches"):
            raise ValueError(
                f"`quarantine` of retention is a duration or batches; got {value}")
        return value
