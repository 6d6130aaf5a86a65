"""The Python API as a notebook uses it: no YAML file, no CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import driftloop
from driftloop.core import errors

SPEC = {
    "name": "prices",
    "source": {"path": "incoming/*.csv"},
    "target": "class",
    "timestamp": "time",
    "trainer": {"function": "sklearn.linear_model:LogisticRegression", "executor": "inline"},
    "triggers": [{"kind": "volume", "every": "1 batch"}],
}


@pytest.fixture(scope="module")
def elec() -> pd.DataFrame:
    return driftloop.load_elec2().iloc[: 48 * 6].reset_index(drop=True)


def test_compare_two_frames_in_three_lines(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    before = pd.DataFrame({"price": rng.normal(0, 1, 2000), "zone": rng.choice(["n", "s"], 2000)})
    after = before.assign(price=before["price"] + 0.5)

    report = driftloop.compare(before, after)
    table = report.to_frame()
    page = report.to_html(tmp_path / "drift.html")

    assert report.drifted and report.drifted_columns == ["price"]
    assert table.loc["price", "drifted"] and not table.loc["zone", "drifted"]
    assert (tmp_path / "drift.html").read_text(encoding="utf-8") == page
    assert "price" in page and "Dataset drift" in page
    assert "<table" in report._repr_html_() and "Dataset drift" in report._repr_html_()
    assert isinstance(report, driftloop.DriftReport)


def test_compare_takes_a_drift_spec_as_a_dict() -> None:
    rng = np.random.default_rng(2)
    before = pd.DataFrame({"x": rng.normal(0, 1, 500)})
    after = pd.DataFrame({"x": rng.normal(0.3, 1, 500)})
    report = driftloop.compare(before, after, {"numeric": {"test": "psi", "threshold": 5.0}})
    assert report.to_frame().loc["x", "test"] == "psi"
    assert not report.drifted  # a threshold no shift of 0.3 std reaches
    with pytest.raises(errors.ConfigError, match="not valid"):
        driftloop.compare(before, after, {"numeric": {"test": "nope"}})


def test_project_from_a_dict_ingests_a_frame_ticks_and_has_a_champion(
    tmp_path: Path, elec: pd.DataFrame
) -> None:
    with driftloop.Project.open(SPEC, base_dir=tmp_path) as project:
        batch = project.ingest(elec.iloc[:144], name="first-three-days")
        result = project.tick()
        champion = project.champion

        assert batch.status == "accepted" and batch.source_uri == "frame:first-three-days"
        assert result.acted and champion is not None and champion.version == 1
        assert [v.version for v in project.models] == [1]
        model = project.load_model()
        assert model.predict(elec.iloc[144:148][["period", "nswprice", "nswdemand", "vicprice",
                                                 "vicdemand", "transfer"]]).shape == (4,)
    assert (tmp_path / "driftloop.db").exists()  # relative store: under base_dir


def test_ingest_validates_like_a_file_and_records_the_same_rows_once(
    tmp_path: Path, elec: pd.DataFrame
) -> None:
    with driftloop.Project.open(SPEC, base_dir=tmp_path) as project:
        first = project.ingest(elec.iloc[:48])
        again = project.ingest(elec.iloc[:48].copy())
        broken = project.ingest(elec.iloc[48:96].drop(columns=["nswprice"]))
        assert again.id == first.id
        assert broken.status == "quarantined" and "nswprice" in broken.reasons
        assert [b.id for b in project.batches] == [first.id, broken.id]


def test_close_gives_the_lease_back(tmp_path: Path, elec: pd.DataFrame) -> None:
    with driftloop.Project.open(SPEC, base_dir=tmp_path) as project:
        project.ingest(elec.iloc[:48])
        assert project.store.leases.get("prices").holder.startswith("python@")
    with driftloop.Project.open(SPEC, base_dir=tmp_path) as again:
        assert again.store.leases.get("prices").holder == ""
        again.ingest(elec.iloc[48:96])  # another holder may ingest at once
        assert len(again.batches) == 2


def test_a_bad_dict_spec_names_the_field() -> None:
    with pytest.raises(errors.ConfigError, match=r"<dict>:1: target: Field required"):
        driftloop.Project.open({k: v for k, v in SPEC.items() if k != "target"})


def test_backtest_from_the_project(tmp_path: Path, elec: pd.DataFrame) -> None:
    with driftloop.Project.open(SPEC, base_dir=tmp_path) as project:
        results = project.backtest(elec, every="1d", warmup="2d")
    assert {r.policy for r in results} >= {"never", "every-batch"}
    assert all(r.steps for r in results)
    with pytest.raises(errors.ConfigError, match="not a duration"):
        project.backtest(elec, every="one day")


def _fits_itself(X: pd.DataFrame, y: pd.Series, C: float = 1.0) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C).fit(X, y)


def test_check_trainer_accepts_both_forms_and_names_problems() -> None:
    assert driftloop.check_trainer(_fits_itself, {"C": 0.1}) == []
    assert driftloop.check_trainer("sklearn.ensemble:RandomForestClassifier",
                                   {"n_estimators": 5}) == []
    problems = driftloop.check_trainer(_fits_itself, {"alpha": 1})
    assert problems and "cannot be called" in problems[0]
    assert "no `fit`" in driftloop.check_trainer(lambda: object())[0]


def test_exported_members() -> None:
    """Every public name of the package is in `__all__`, sorted, loadable, and imported for
    type checkers under TYPE_CHECKING (httpx's test_exported_members)."""
    source = Path(driftloop.__file__).read_text()
    tree = ast.parse(source)
    checked = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for statement in node.body if isinstance(statement, ast.ImportFrom)
        for alias in statement.names
    }
    exported = set(driftloop.__all__) - {"__version__"}
    assert driftloop.__all__ == sorted(driftloop.__all__)
    assert checked == exported
    assert set(driftloop._EXPORTS) == exported
    for name in exported:
        assert getattr(driftloop, name).__module__ == driftloop._EXPORTS[name]
