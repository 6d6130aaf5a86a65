"""Data profiles: what is kept about a model's training data so later batches can be tested
against it without keeping the training set.

`build_profile` is called when a model's training data is fixed (by the trainer step, and by
tests and benchmarks); `drift.report.detect_drift` reads the profile back through the readers
below (`numeric_sample`, `bin_edges`, `bin_counts`, `category_counts`, ...). A profile is a
JSON-safe dict so the metadata store can keep it as evidence next to the model version.

Per numeric column it keeps: ``n`` (non-missing rows), ``missing``, ``mean``, ``std``
(population, ddof=0), ``min``, ``max``, the quantile bin ``edges`` of ``bins`` equal-mass bins
(repeated edges of tied data are merged, so a column may have fewer bins) with the reference
``counts`` in them, and a deterministic ``sample`` of at most ``sample_size`` values (all values
when ``n <= sample_size``, so KS and Wasserstein are then exact). Bin ``i`` is
``[edges[i], edges[i+1])``; the first and last bins are open to ``-inf`` / ``+inf`` so a later
value outside the reference range still falls in a bin. The sample is stored sorted, as the
base64 text of its little-endian float64 bytes: 8 bytes a value (plus a third for base64)
instead of ~20 characters in a JSON list, and it decodes without a Python loop.
Per categorical column it keeps ``n``, ``missing`` and the count of each category, the
categories written as strings (JSON object keys); current batches are matched on ``str(value)``.

>>> import pandas as pd
>>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, None], "c": ["a", "b", "a", "a"]})
>>> profile = build_profile(frame, columns={"x": "numeric", "c": "categorical"}, bins=2)
>>> profile["columns"]["x"]["n"], profile["columns"]["x"]["missing"]
(3, 1)
>>> numeric_sample(profile, "x").tolist()
[1.0, 2.0, 3.0]
>>> category_counts(profile, "c")
{'a': 3, 'b': 1}
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from driftloop.core import errors, types

FORMAT_VERSION = 1
ColumnKind = Literal["numeric", "categorical"]
_KINDS = ("numeric", "categorical")


def build_profile(
    frame: pd.DataFrame,
    *,
    columns: Mapping[str, str],
    sample_size: int = 5000,
    bins: int = 20,
    seed: int = 0,
) -> types.JSON:
    """Profile `columns` (name -> "numeric" / "categorical") of `frame` as a JSON-safe dict.

    The sample of a numeric column with more than `sample_size` values is drawn without
    replacement by ``numpy.random.default_rng(seed)``, so the same data and seed give the same
    profile.
    """
    if sample_size < 1:
        raise errors.ConfigError(f"`sample_size` of build_profile must be >= 1; got {sample_size}.")
    if bins < 1:
        raise errors.ConfigError(f"`bins` of build_profile must be >= 1; got {bins}.")
    absent = [name for name in columns if name not in frame.columns]
    if absent:
        raise errors.ValidationError(
            f"cannot profile: column(s) {absent} are not in the frame; "
            "pass only columns the frame has.",
            reasons={name: ["not in the frame"] for name in absent},
        )
    profiled: dict[str, types.JSON] = {}
    for index, (name, kind) in enumerate(columns.items()):
        if kind == "numeric":
            values = _as_float(frame[name], name)
            profiled[name] = _numeric_entry(values, sample_size, bins, seed + index)
        elif kind == "categorical":
            profiled[name] = _categorical_entry(frame[name])
        else:
            raise errors.ConfigError(
                f"kind of column {name!r} must be one of {_KINDS}; got {kind!r}."
            )
    return {
        "version": FORMAT_VERSION,
        "rows": len(frame),
        "sample_size": sample_size,
        "bins": bins,
        "seed": seed,
        "columns": profiled,
    }


def _as_float(series: pd.Series[Any], name: str) -> npt.NDArray[np.float64]:
    try:
        values: npt.NDArray[np.float64] = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values
    except (TypeError, ValueError) as exc:
        raise errors.ValidationError(
            f"column {name!r} is declared numeric but holds non-numbers ({exc}); "
            "declare it categorical or clean it.",
            reasons={name: ["not numeric"]},
        ) from exc


def _numeric_entry(
    values: npt.NDArray[np.float64], sample_size: int, bins: int, seed: int
) -> types.JSON:
    valid = np.sort(values[~np.isnan(values)])
    n = int(valid.size)
    entry: types.JSON = {"kind": "numeric", "n": n, "missing": int(values.size - n)}
    if n == 0:
        entry.update(mean=None, std=None, min=None, max=None, edges=[], counts=[],
                     sample=encode_array(valid))
        return entry
    edges = np.unique(np.quantile(valid, np.linspace(0.0, 1.0, bins + 1)))
    if n > sample_size:
        chosen = np.random.default_rng(seed).choice(n, size=sample_size, replace=False)
        sample = valid[np.sort(chosen)]  # `valid` is sorted, so sorted indices keep order
    else:
        sample = valid
    entry.update(
        mean=float(valid.mean()),
        std=float(valid.std()),
        min=float(valid[0]),
        max=float(valid[-1]),
        edges=edges.tolist(),
        counts=binned_counts_sorted(valid, edges).tolist(),
        sample=encode_array(sample),
    )
    return entry


def _categorical_entry(series: pd.Series[Any]) -> types.JSON:
    counts = series.value_counts(dropna=True, sort=False)
    merged: dict[str, int] = {}
    for value, count in counts.items():
        key = str(value)
        merged[key] = merged.get(key, 0) + int(count)
    n = sum(merged.values())
    return {"kind": "categorical", "n": n, "missing": int(len(series) - n), "counts": merged}


def binned_counts_sorted(
    sorted_values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Counts of sorted, non-missing values in the bins of `edges` (outer bins open-ended).

    >>> binned_counts_sorted(np.array([0.0, 1.0, 1.0, 5.0]), np.array([0.0, 1.0, 2.0])).tolist()
    [1, 3]
    """
    if edges.size <= 2:
        return np.array([sorted_values.size], dtype=np.int64)
    cuts = np.searchsorted(sorted_values, edges[1:-1], side="left")
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size]))).astype(np.int64)


def encode_array(values: npt.NDArray[np.float64]) -> types.JSON:
    """A float64 array as JSON: base64 of its little-endian bytes."""
    raw = np.ascontiguousarray(values, dtype="<f8").tobytes()
    return {"dtype": "<f8", "size": int(values.size), "base64": base64.b64encode(raw).decode()}


def decode_array(stored: Mapping[str, Any]) -> npt.NDArray[np.float64]:
    """The array `encode_array` stored (read-only: a view of the decoded bytes, no copy).

    The newest decodings are kept: the drift test reads the champion's profile every tick,
    and finding its text again costs nothing (a str caches its hash and compares by identity).
    """
    return _decode(stored["base64"], stored["dtype"])


@functools.lru_cache(maxsize=64)
def _decode(text: str, dtype: str) -> npt.NDArray[np.float64]:
    raw = binascii.a2b_base64(text)  # takes the ASCII str as is: no copy
    return np.frombuffer(raw, dtype=dtype)


def column_entry(profile: Mapping[str, Any], name: str) -> types.JSON:
    """The stored entry of column `name`; `NotFoundError` naming the profiled columns if absent."""
    stored = profile.get("columns", {})
    if name not in stored:
        raise errors.NotFoundError(
            f"column {name!r} is not in the profile (it has {sorted(stored)}); "
            "rebuild the profile with that column."
        )
    entry: types.JSON = stored[name]
    return entry


def column_kinds(profile: Mapping[str, Any]) -> dict[str, ColumnKind]:
    """Column name -> "numeric" / "categorical", in profile order."""
    return {name: entry["kind"] for name, entry in profile.get("columns", {}).items()}


def numeric_sample(profile: Mapping[str, Any], name: str) -> npt.NDArray[np.float64]:
    """The sorted reference sample of a numeric column (all values if n <= sample_size)."""
    return decode_array(_numeric(profile, name)["sample"])


def sample_size(profile: Mapping[str, Any], name: str) -> int:
    """The size of `numeric_sample` of a column, without decoding it."""
    return int(_numeric(profile, name)["sample"]["size"])


def bin_edges(profile: Mapping[str, Any], name: str) -> npt.NDArray[np.float64]:
    """The quantile bin edges of a numeric column."""
    return np.asarray(_numeric(profile, name)["edges"], dtype=np.float64)


def bin_counts(profile: Mapping[str, Any], name: str) -> npt.NDArray[np.int64]:
    """The reference counts in the bins of `bin_edges`."""
    return np.asarray(_numeric(profile, name)["counts"], dtype=np.int64)


def reference_std(profile: Mapping[str, Any], name: str) -> float:
    """The reference standard deviation (ddof=0) of a numeric column; NaN if it had no values."""
    std = _numeric(profile, name)["std"]
    return float("nan") if std is None else float(std)


def category_counts(profile: Mapping[str, Any], name: str) -> dict[str, int]:
    """Category (as a string) -> reference count of a categorical column."""
    entry = column_entry(profile, name)
    if entry["kind"] != "categorical":
        raise errors.ConfigError(
            f"column {name!r} is profiled as {entry['kind']}, not categorical."
        )
    return dict(entry["counts"])


def _numeric(profile: Mapping[str, Any], name: str) -> types.JSON:
    entry = column_entry(profile, name)
    if entry["kind"] != "numeric":
        raise errors.ConfigError(f"column {name!r} is profiled as {entry['kind']}, not numeric.")
    return entry
