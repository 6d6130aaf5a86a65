"""Schema inference, batch checks and coercion, on Elec2 and on small hand-made frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.core import config, errors
from driftloop.data import row_names
from driftloop.validation import checks, schema

ELEC2 = Path("/work/shared/data/elec2.csv")
SPEC = config.ValidationSpec()


@pytest.fixture(scope="module")
def elec2() -> pd.DataFrame:
    if not ELEC2.exists():
        pytest.skip(f"{ELEC2} is not here")
    return pd.read_csv(ELEC2)


@pytest.fixture
def first(elec2: pd.DataFrame) -> pd.DataFrame:
    return elec2.iloc[:2000].reset_index(drop=True)


@pytest.fixture
def elec_schema(first: pd.DataFrame) -> schema.Schema:
    return schema.infer_schema(first, target="class")


@pytest.fixture
def batch(elec2: pd.DataFrame) -> pd.DataFrame:
    return elec2.iloc[2000:2100].reset_index(drop=True)


@pytest.fixture
def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "at": pd.date_range("2024-01-01", periods=6, freq="h").astype("str"),
            "size": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "color": ["red", "blue", "red", "blue", "red", None],
            "flag": [True, False, True, True, False, False],
            "y": [0, 1, 0, 1, 0, 1],
        }
    )


def test_infer_on_clean_elec2(first: pd.DataFrame, elec_schema: schema.Schema) -> None:
    assert elec_schema.names == tuple(first.columns)
    assert elec_schema.target == "class" and elec_schema.timestamp is None
    assert elec_schema.features == (
        "period",
        "nswprice",
        "nswdemand",
        "vicprice",
        "vicdemand",
        "transfer",
    )
    for column in elec_schema.columns:
        assert column.kind == "numeric"
        assert column.dtype == str(first[column.name].dtype)
        assert column.minimum == first[column.name].min()
        assert column.maximum == first[column.name].max()
        if column.name != "class":
            assert column.missing_rate == 0.0 and column.required
    target = elec_schema.column("class")
    assert target.dtype == "int64"
    assert not target.required and target.missing_rate == 1.0  # labels may come later


def test_infer_kinds_categories_and_missing(mixed: pd.DataFrame) -> None:
    inferred = schema.infer_schema(mixed, target="y", timestamp="at")
    kinds = {c.name: c.kind for c in inferred.columns}
    assert kinds == {
        "at": "datetime",
        "size": "numeric",
        "color": "categorical",
        "flag": "boolean",
        "y": "numeric",
    }
    assert inferred.column("color").categories == ("blue", "red")
    assert inferred.column("color").missing_rate == pytest.approx(1 / 6)
    assert inferred.column("size").missing_rate == pytest.approx(1 / 6)
    assert inferred.features == ("size", "color", "flag")


def test_high_cardinality_text_has_no_categories() -> None:
    frame = pd.DataFrame({"id": [f"u{i}" for i in range(100)], "y": [0, 1] * 50})
    inferred = schema.infer_schema(frame, target="y")
    assert inferred.column("id").categories is None
    new_ids = pd.DataFrame({"id": ["u999"], "y": [1]})
    assert checks.check_batch(new_ids, inferred, SPEC) == checks.Findings()


def test_infer_names_a_missing_target(first: pd.DataFrame) -> None:
    with pytest.raises(errors.ValidationError, match="'label' is not in the data"):
        schema.infer_schema(first, target="label")


def test_clean_batch_passes(elec_schema: schema.Schema, batch: pd.DataFrame) -> None:
    assert checks.check_batch(batch, elec_schema, SPEC) == checks.Findings()
    assert checks.check_batch(batch.assign(extra="ignored"), elec_schema, SPEC).valid


def test_non_numeric_values(elec_schema: schema.Schema, batch: pd.DataFrame) -> None:
    bad = batch.astype({"nswprice": "object"})
    bad.loc[17, "nswprice"] = "abc"
    bad.loc[40, "nswprice"] = "n/a?"
    reasons = checks.check_batch(bad, elec_schema, SPEC).reasons
    assert list(reasons) == ["nswprice"]
    (message,) = reasons["nswprice"]
    assert message.startswith("nswprice: 2 non-numeric values")
    assert "row 18: 'abc'" in message and "row 41: 'n/a?'" in message  # rows counted from 1


def test_whole_column_read_as_text_of_numbers_is_fine(
    elec_schema: schema.Schema, batch: pd.DataFrame
) -> None:
    as_text = batch.astype({"nswdemand": "str"})
    assert checks.check_batch(as_text, elec_schema, SPEC) == checks.Findings()


def test_missing_values_beyond_the_allowed_rate(
    elec_schema: schema.Schema, batch: pd.DataFrame
) -> None:
    few = batch.copy()
    few.loc[[3], "nswdemand"] = np.nan  # 1% <= 0% seen + 5% slack
    assert checks.check_batch(few, elec_schema, SPEC) == checks.Findings()
    many = batch.copy()
    many.loc[list(range(0, 100, 10)), "nswdemand"] = np.nan  # 10%
    found = checks.check_batch(many, elec_schema, SPEC)
    message = (
        "nswdemand: 10 missing values (10.0%), more than the allowed 5.0% (0.0% seen + 5.0% "
        "slack): rows 1, 11, 21, 31, 41 and 5 more"
    )
    # more missing values than the first data had is a signal: the batch is accepted
    assert found == checks.Findings(quality={"nswdemand": [message]}, quality_rows=10)
    strict = config.ValidationSpec(per_column={"nswdemand": {"strict": ["missing"]}})
    assert checks.check_batch(many, elec_schema, strict).reasons == {"nswdemand": [message]}


def test_infinite_values_are_always_reported(
    elec_schema: schema.Schema, batch: pd.DataFrame
) -> None:
    bad = batch.copy()
    bad.loc[5, "transfer"] = np.inf
    bad.loc[6, "transfer"] = -np.inf
    found = checks.check_batch(bad, elec_schema, SPEC)
    assert found == checks.Findings({"transfer": ["transfer: 2 infinite values: rows 6, 7"]})


def test_missing_columns(elec_schema: schema.Schema, batch: pd.DataFrame) -> None:
    found = checks.check_batch(batch.drop(columns=["vicprice", "class"]), elec_schema, SPEC)
    reasons = found.reasons
    assert not found.quality and set(reasons) == {"vicprice"}  # the target may arrive later
    assert reasons["vicprice"] == [
        "vicprice: required column is missing (expected numeric, dtype float64)"
    ]


def test_out_of_range(elec_schema: schema.Schema, batch: pd.DataFrame) -> None:
    column = elec_schema.column("nswprice")
    assert column.minimum is not None and column.maximum is not None
    span = column.maximum - column.minimum
    bad = batch.copy()
    bad.loc[[4, 9, 12], "nswprice"] = column.maximum + 0.6 * span
    bad.loc[2, "nswprice"] = column.minimum - 0.4 * span  # inside the 50% tolerance
    lines = row_names.RowNames("line", first=2)  # as a CSV file's rows are named
    found = checks.check_batch(bad, elec_schema, SPEC, lines)
    high = column.maximum + 0.5 * span
    signals = {
        "nswprice": [
            f"nswprice: 3 values above the allowed maximum {high:.6g} (max seen "
            f"{column.maximum:.6g}, tolerance 50%): lines 6, 11, 14"
        ]
    }
    # beyond the first data's range is a signal, not a reason to quarantine
    assert found == checks.Findings(quality=signals, quality_rows=3)
    narrow = config.ValidationSpec(range_tolerance=0.0)
    found = checks.check_batch(bad, elec_schema, narrow)
    assert found.valid and "below the allowed minimum" in found.quality["nswprice"][0]
    assert found.quality_rows == 4
    strict = config.ValidationSpec(strict=["range"])
    assert checks.check_batch(bad, elec_schema, strict, lines) == checks.Findings(signals)


def test_explicit_bounds_always_quarantine(
    elec_schema: schema.Schema, batch: pd.DataFrame
) -> None:
    bad = batch.copy()
    bad.loc[[4, 9], "nswprice"] = 7.0
    bounded = config.ValidationSpec(bounds={"nswprice": (0.0, 1.0)})
    assert checks.check_batch(bad, elec_schema, bounded).reasons == {
        "nswprice": [
            "nswprice: 2 values above the allowed maximum 1 (max seen "
            f"{elec_schema.column('nswprice').maximum:.6g}, validation.bounds): rows 5, 10"
        ]
    }
    assert checks.check_batch(batch, elec_schema, bounded) == checks.Findings()


def test_constant_column_is_not_range_checked(
    elec2: pd.DataFrame, elec_schema: schema.Schema
) -> None:
    assert elec_schema.column("vicprice").minimum == elec_schema.column("vicprice").maximum
    later = elec2.iloc[30000:30100].reset_index(drop=True)
    found = checks.check_batch(later, elec_schema, SPEC)
    assert "vicprice" not in found.reasons and "vicprice" not in found.quality


def test_new_categories(mixed: pd.DataFrame) -> None:
    inferred = schema.infer_schema(mixed, target="y", timestamp="at")
    new = mixed.assign(color=["red", "green", "green", "blue", "mauve", "red"])
    found = checks.check_batch(new, inferred, SPEC)
    assert found.valid and list(found.quality) == ["color"] and found.quality_rows == 3
    (message,) = found.quality["color"]
    assert message.startswith("color: 3 values in categories never seen: 'green' (2x), 'mauve'")
    assert message.endswith("rows 2, 3, 5")
    allowing = config.ValidationSpec(allow_new_categories=True)
    assert checks.check_batch(new, inferred, allowing) == checks.Findings()
    strict = config.ValidationSpec(strict=["categories"])
    assert checks.check_batch(new, inferred, strict).reasons == {"color": [message]}


def test_unparseable_timestamps_and_booleans(mixed: pd.DataFrame) -> None:
    inferred = schema.infer_schema(mixed, target="y", timestamp="at")
    assert checks.check_batch(mixed, inferred, SPEC) == checks.Findings()
    bad = mixed.copy()
    bad["at"] = bad["at"].where(bad.index != 3, "soon")
    bad["flag"] = ["yes", "true", "0", "1", "False", "false"]
    reasons = checks.check_batch(bad, inferred, SPEC).reasons
    assert reasons == {
        "at": ["at: 1 unparseable timestamp: row 4: 'soon'"],
        "flag": ["flag: 1 non-boolean value: row 1: 'yes'"],
    }


def test_rows_are_named_by_position_not_index_label(mixed: pd.DataFrame) -> None:
    inferred = schema.infer_schema(mixed, target="y", timestamp="at")
    bad = mixed.assign(flag=["yes", "true", "0", "1", "False", "no"]).set_index(
        pd.Index([100, 7, 3, 50, 60, 2])
    )
    assert checks.check_batch(bad, inferred, SPEC).reasons["flag"] == [
        "flag: 2 non-boolean values: row 1: 'yes', row 6: 'no'"
    ]
    events = row_names.RowNames("event", ids=tuple(f"{n}-0" for n in range(6)))
    assert checks.check_batch(bad, inferred, SPEC, events).reasons["flag"] == [
        "flag: 2 non-boolean values: event 0-0: 'yes', event 5-0: 'no'"
    ]


def test_empty_and_small_batches(elec_schema: schema.Schema, batch: pd.DataFrame) -> None:
    assert checks.check_batch(batch.iloc[:0], elec_schema, SPEC).reasons == {
        "*": ["empty batch: it has no rows"]
    }
    assert checks.check_batch(pd.DataFrame(), elec_schema, SPEC).reasons["*"] == [
        "empty batch: it has no rows"
    ]
    spec = config.ValidationSpec(min_rows=10)
    assert checks.check_batch(batch.iloc[:3], elec_schema, spec).reasons == {
        "*": ["only 3 rows; validation.min_rows asks for at least 10"]
    }


def test_json_round_trip(mixed: pd.DataFrame, elec_schema: schema.Schema) -> None:
    for original in (elec_schema, schema.infer_schema(mixed, target="y", timestamp="at")):
        text = json.dumps(original.to_json(), allow_nan=False)
        assert schema.Schema.from_json(json.loads(text)) == original
    with pytest.raises(errors.ConfigError, match="malformed"):
        schema.Schema.from_json(
            {"columns": [{"name": "x", "kind": "vector", "dtype": "f"}], "target": "x"}
        )


def test_coerce_to_schema_dtypes(mixed: pd.DataFrame) -> None:
    inferred = schema.infer_schema(mixed.astype({"color": "category"}), target="y", timestamp="at")
    incoming = pd.DataFrame(
        {
            "extra": [1, 2],
            "y": ["1", "0"],
            "flag": ["True", "False"],
            "color": ["green", "red"],
            "size": ["3.5", "4"],
            "at": ["2024-02-01T00:00", "2024-02-01T01:00"],
        }
    )
    assert (
        checks.check_batch(incoming, inferred, config.ValidationSpec(allow_new_categories=True))
        == checks.Findings()
    )
    out = schema.coerce(incoming, inferred)
    assert list(out.columns) == ["at", "size", "color", "flag", "y"]
    assert str(out["at"].dtype).startswith("datetime64") and str(out["at"].dt.tz) == "UTC"
    assert out["size"].tolist() == [3.5, 4.0] and out["size"].dtype == "float64"
    assert out["y"].dtype == "int64"
    assert out["flag"].dtype == "bool"
    assert list(out["color"].cat.categories) == ["blue", "red", "green"]


def test_coerce_int_with_missing_becomes_float(
    elec_schema: schema.Schema, batch: pd.DataFrame
) -> None:
    holed = batch.astype({"class": "float64"})
    holed.loc[0, "class"] = np.nan
    out = schema.coerce(holed, elec_schema)
    assert out["class"].dtype == "float64"
    assert out.drop(columns="class").dtypes.equals(batch.drop(columns="class").dtypes)


def test_check_is_vectorised(elec2: pd.DataFrame, elec_schema: schema.Schema) -> None:
    import time

    big = pd.concat([elec2] * 5, ignore_index=True)
    start = time.perf_counter()
    checks.check_batch(big, elec_schema, SPEC)
    assert time.perf_counter() - start < 2.0  # a Python loop over 226 560 rows takes far longer
