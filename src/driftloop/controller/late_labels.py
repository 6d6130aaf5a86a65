"""Late labels: a batch of only the row key and the target, joined to the rows ingested before
(`controller.history`). The joined rows become a batch of their own; stored batches never change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop.controller import history
from driftloop.core import config

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.validation import schema as schemas


def is_label_batch(
    spec: config.PipelineSpec, frame: pd.DataFrame, schema: schemas.Schema | None
) -> bool:
    """A batch of late labels: only the row key and the target, for a pipeline with features."""
    key = history.label_key(spec)
    columns = set(map(str, frame.columns))
    return (
        schema is not None
        and key is not None
        and columns == {key, spec.target}
        and len(schema.features) > 0
    )


def join_labels(
    spec: config.PipelineSpec, labels: pd.DataFrame, rows: pd.DataFrame
) -> tuple[pd.DataFrame | None, dict[str, list[str]]]:
    """The rows the labels belong to, now with their target — or why they cannot be joined.

    The joined rows become a batch of their own (the earlier, unlabelled rows stay as they
    were), so stored batches never change and training simply sees the labelled copies.
    """
    from driftloop.data import frames


    key, target = history.label_key(spec), spec.target
    assert key is not None
    if rows.empty or key not in rows.columns:
        return None, {key: [f"{key}: labels arrived before any row they could belong to"]}
    wanted = labels[key]
    if key == spec.timestamp:
        wanted = frames.parse_times(wanted)
    elif wanted.dtype != rows[key].dtype:
        wanted = wanted.astype(rows[key].dtype, errors="ignore")
    problems: dict[str, list[str]] = {}
    if labels[target].isna().any():
        problems[target] = [f"{target}: {int(labels[target].isna().sum())} labels are empty"]
    if wanted.duplicated().any():
        problems.setdefault(key, []).append(
            f"{key}: {int(wanted.duplicated().sum())} rows labelled twice in this batch"
        )
    known = rows.drop_duplicates(subset=[key]).set_index(key)
    unknown = ~wanted.isin(known.index)
    if unknown.any():
        examples = ", ".join(map(str, wanted[unknown].head(3)))
        problems.setdefault(key, []).append(
            f"{key}: {int(unknown.sum())} labels for rows never ingested (e.g. {examples})"
        )
    if problems:
        return None, problems
    already = wanted.isin(rows.loc[rows[target].notna(), key])
    if already.any():
        examples = ", ".join(map(str, wanted[already].head(3)))
        return None, {
            target: [
                f"{target}: {int(already.sum())} rows already have a label "
                f"(e.g. {examples}); a label is final"
            ]
        }
    joined = known.loc[wanted.to_numpy()].reset_index()
    joined[target] = labels[target].to_numpy()
    return joined.drop(columns=[history.BATCH_COLUMN], errors="ignore"), {}
