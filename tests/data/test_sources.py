"""Sources: files (CSV, Parquet, bad files, fsspec) and SQL (SQLite and live PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import fsspec
import fsspec.implementations.local
import pandas as pd
import pytest
import sqlalchemy as sa

from driftloop.core import config, errors, source_specs
from driftloop.core.types import JSON
from driftloop.data import frames, sources
from driftloop.data.sources import base, files, sql

ELEC2 = Path("/work/shared/data/elec2.csv")


def _elec2(rows: int) -> pd.DataFrame:
    if ELEC2.exists():
        return pd.read_csv(ELEC2, nrows=rows)
    return pd.DataFrame(
        {"period": [i / 48 for i in range(rows)], "class": [i % 2 for i in range(rows)]}
    )


def _poll(source: base.Source, cursor: JSON | None) -> tuple[list[base.RawBatch], JSON | None]:
    """All batches of one poll, and the cursor after the last, through a JSON round trip."""
    batches = list(source.poll(cursor))
    if batches:
        cursor = json.loads(json.dumps(batches[-1].cursor))
    return batches, cursor


# -- files ---------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = _elec2(300)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    data.iloc[:100].to_csv(incoming / "a.csv", index=False)
    data.iloc[100:200].to_parquet(incoming / "b.parquet", index=False)
    data.iloc[200:].to_csv(incoming / "c.csv.gz", index=False)
    (incoming / ".d.csv.tmp").write_text("half written")
    return tmp_path


def test_file_source_reads_csv_and_parquet_in_order(folder: Path) -> None:
    source = files.FileSource("incoming/*", base_dir=folder)
    batches, _ = _poll(source, None)
    assert [Path(b.source_uri).name for b in batches] == ["a.csv", "b.parquet", "c.csv.gz"]
    assert all(b.error is None and b.frame is not None for b in batches)
    whole = pd.concat([b.frame for b in batches if b.frame is not None], ignore_index=True)
    pd.testing.assert_frame_equal(whole, _elec2(300))
    for batch in batches:
        content = Path(batch.source_uri.removeprefix("file://")).read_bytes()
        assert batch.fingerprint == hashlib.sha256(content).hexdigest()


def test_rows_of_a_csv_file_are_named_by_line_and_others_counted_from_one(
    folder: Path, tmp_path: Path
) -> None:
    batches, _ = _poll(files.FileSource("incoming/*", base_dir=folder), None)
    named = {Path(b.source_uri).name: b.row_names.name([0, 4]) for b in batches}
    assert named == {
        "a.csv": "lines 2, 6",  # the header is line 1
        "b.parquet": "rows 1, 5",  # no lines
        "c.csv.gz": "rows 1, 5",  # compressed: lines not checked
    }
    quoted = tmp_path / "quoted.csv"  # a field holding a line break: lines are not rows
    quoted.write_text('a,b\n"two\nlines",1\nx,2\n')
    (batch,) = _poll(files.FileSource(str(quoted)), None)[0]
    assert batch.frame is not None and len(batch.frame) == 2
    assert batch.row_names.one(1) == "row 2"


def test_cursor_makes_second_poll_empty_and_change_yields_new_batch(folder: Path) -> None:
    source = files.FileSource("incoming/*.csv", base_dir=folder)
    first, cursor = _poll(source, None)
    assert len(first) == 1
    assert _poll(source, cursor)[0] == []

    (folder / "incoming" / "e.csv").write_text("period,nswprice\n0.5,0.1\n")
    new, cursor = _poll(source, cursor)
    assert [Path(b.source_uri).name for b in new] == ["e.csv"]

    (folder / "incoming" / "a.csv").write_text("period,nswprice\n0.7,0.2\n")
    changed, cursor = _poll(source, cursor)
    assert [Path(b.source_uri).name for b in changed] == ["a.csv"]
    assert changed[0].frame is not None and changed[0].frame["nswprice"].tolist() == [0.2]
    assert _poll(source, cursor)[0] == []


def test_a_poll_reads_only_files_listed_differently(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    original = fsspec.implementations.local.LocalFileSystem.cat_file

    def counting(self: object, path: str, *args: object, **kwargs: object) -> bytes:
        read.append(Path(path).name)
        return original(self, path, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(fsspec.implementations.local.LocalFileSystem, "cat_file", counting)
    source = files.FileSource("incoming/*", base_dir=folder)
    _, cursor = _poll(source, None)
    assert read == ["a.csv", "b.parquet", "c.csv.gz"]
    read.clear()
    assert _poll(source, cursor)[0] == [] and read == []  # nothing listed differently: no reads

    (folder / "incoming" / "b.parquet").touch()  # a newer time, the same bytes: read, no batch
    again, _ = _poll(source, cursor)
    assert again == [] and read == ["b.parquet"]
    read.clear()
    (folder / "incoming" / "a.csv").write_text("period,nswprice\n0.7,0.2\n")
    changed, cursor = _poll(source, cursor)
    assert [Path(b.source_uri).name for b in changed] == ["a.csv"] and "a.csv" in read

    old = {"seen": cursor["seen"]}  # a cursor stored before listings were kept: read once more
    read.clear()
    assert _poll(source, old)[0] == [] and sorted(read) == ["a.csv", "b.parquet", "c.csv.gz"]


def test_a_crash_before_the_cursor_is_stored_rereads_the_same_batch(folder: Path) -> None:
    source = files.FileSource(str(folder / "incoming"), format="auto")
    first = next(iter(source.poll(None)))
    again = next(iter(source.poll(None)))
    assert again.fingerprint == first.fingerprint
    rest, _ = _poll(source, first.cursor)
    assert first.source_uri not in {b.source_uri for b in rest}


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("empty.csv", b"", "empty file"),
        ("blank.csv", b"\n  \n", "empty file"),
        ("garbage.csv", bytes(range(256)) * 4, "not valid CSV: binary data"),
        ("latin.csv", "a,b\nz\xe9ro,1\n".encode("latin-1"), "not valid CSV: not UTF-8"),
        ("broken.csv", b"a,b\n1,2\n3,4,5\n6,7\n", "not valid CSV: Error tokenizing"),
        ("long.csv", b"a,b\n1,2,3\n", "not valid CSV: a row has more fields"),
        ("quote.csv", b'a,b\n"1,2\n', "not valid CSV"),
        ("bad.parquet", b"PAR1 not really parquet", "not valid Parquet"),
        ("notes.xlsx", b"whatever", "unknown file type"),
    ],
)
def test_bad_files_become_batches_with_an_error(
    tmp_path: Path, name: str, content: bytes, error: str
) -> None:
    (tmp_path / name).write_bytes(content)
    (tmp_path / "z_good.csv").write_text("a,b\n1,2\n")
    batches, _ = _poll(files.FileSource(str(tmp_path / "*")), None)
    assert len(batches) == 2
    bad, good = batches
    assert bad.frame is None and bad.error is not None and bad.error.startswith(error), bad.error
    assert good.error is None and good.frame is not None and len(good.frame) == 1


def test_explicit_format_overrides_the_suffix(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("x\n1\n2\n")
    (tmp_path / "data.bin").write_bytes(b"junk")
    (tmp_path / "table").write_bytes(pd.DataFrame({"x": [1]}).to_parquet())
    csv_batches, _ = _poll(files.FileSource(str(tmp_path / "data.txt"), format="csv"), None)
    assert csv_batches[0].frame is not None and csv_batches[0].frame["x"].tolist() == [1, 2]
    pq_batches, _ = _poll(files.FileSource(str(tmp_path / "table"), format="parquet"), None)
    assert pq_batches[0].frame is not None and pq_batches[0].frame["x"].tolist() == [1]
    with pytest.raises(errors.ConfigError, match="format"):
        files.FileSource("x", format="xlsx")  # type: ignore[arg-type]


def test_file_source_on_an_fsspec_url() -> None:
    root = f"memory://sources-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{root}/in/1.csv", b"x,y\n1,a\n")
    fs.pipe(f"{root}/in/2.parquet", pd.DataFrame({"x": [2], "y": ["b"]}).to_parquet())
    source = files.FileSource(f"{root}/in/*", base_dir="/ignored")
    batches, cursor = _poll(source, None)
    assert [b.frame["x"].tolist() for b in batches if b.frame is not None] == [[1], [2]]
    assert all(b.source_uri.startswith("memory://") for b in batches)
    assert _poll(source, cursor)[0] == []


def test_build_source_from_specs(tmp_path: Path) -> None:
    spec = config.FileSourceSpec(path="in/*.csv", format="csv")
    source = sources.build_source(spec, tmp_path)
    assert isinstance(source, files.FileSource)
    assert source.location == str(tmp_path / "in" / "*.csv")
    assert source.key == f"files:{tmp_path / 'in' / '*.csv'}"
    assert repr(source) == f"FileSource(path='in/*.csv', format='csv', base_dir='{tmp_path}')"
    sql_spec = config.SqlSourceSpec(url="sqlite:///x.db", table="t", timestamp="ts", batch_rows=7)
    built = sources.build_source(sql_spec, tmp_path)
    assert isinstance(built, sql.SqlSource) and built.batch_rows == 7
    assert set(base.registered()) == {"files", "sql", "redis", "nats", "http"}


def test_every_source_kind_of_the_spec_has_its_module_named() -> None:
    assert set(base.BUILT_IN) == set(source_specs.SOURCE_KINDS)
    for kind, module in base.BUILT_IN.items():
        assert base.registered()[kind].__module__ == f"driftloop.data.sources.{module}"


# -- SQL -----------------------------------------------------------------------------------

T0 = datetime(2024, 1, 1)
TIES = [0, 1, 2, 2, 2, 3, 4, 4, 5]
"""Hour offsets of the rows: ties at 2 and at 4 fall on the page boundary with batch_rows=3."""


def _create(url: str, hours: list[int], start_id: int = 0, table: str = "events") -> None:
    engine = sa.create_engine(sql._url(url))
    meta = sa.MetaData()
    events = sa.Table(
        table,
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.DateTime),
        sa.Column("value", sa.Float),
        sa.Column("kind", sa.String(10)),
    )
    meta.create_all(engine)
    rows = [
        {"id": start_id + i, "ts": T0 + timedelta(hours=h), "value": h / 10, "kind": "ab"[i % 2]}
        for i, h in enumerate(hours)
    ]
    with engine.begin() as conn:
        conn.execute(events.insert(), rows)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'source.db'}"
    else:
        yield request.getfixturevalue("pg_url")


def _ids(batches: list[base.RawBatch]) -> list[list[int]]:
    return [b.frame["id"].tolist() for b in batches if b.frame is not None]


def test_sql_incremental_polls_and_ties(db_url: str) -> None:
    _create(db_url, TIES)
    source = sql.SqlSource(db_url, table="events", timestamp="ts", batch_rows=3)
    batches, cursor = _poll(source, None)
    assert _ids(batches) == [[0, 1, 2, 3, 4], [5, 6, 7], [8]]
    for batch in batches:
        assert batch.error is None and batch.frame is not None
        assert batch.fingerprint == frames.fingerprint(batch.frame)
        assert batch.source_uri.startswith("sql:")
    assert _poll(source, cursor)[0] == []

    _create(db_url, [5, 6, 7], start_id=100)  # a late tie at 5 is not seen; 6 and 7 are
    more, cursor = _poll(source, cursor)
    assert _ids(more) == [[101, 102]]
    assert _poll(source, cursor)[0] == []


def test_sql_batch_of_only_ties_is_extended(db_url: str) -> None:
    _create(db_url, [1, 1, 1, 1, 1, 2])
    source = sql.SqlSource(db_url, table="events", timestamp="ts", batch_rows=2)
    batches, _ = _poll(source, None)
    assert _ids(batches) == [[0, 1, 2, 3, 4], [5]]


def test_sql_restart_from_each_cursor_loses_and_repeats_nothing(db_url: str) -> None:
    _create(db_url, TIES)
    source = sql.SqlSource(db_url, table="events", timestamp="ts", batch_rows=3)
    seen: list[int] = []
    cursor: JSON | None = None
    while True:  # take one batch per poll, as if the process died after each
        batch = next(iter(source.poll(cursor)), None)
        if batch is None:
            break
        assert batch.frame is not None
        seen += batch.frame["id"].tolist()
        cursor = json.loads(json.dumps(batch.cursor))
    assert seen == list(range(len(TIES)))


def test_sql_query_instead_of_a_table(db_url: str) -> None:
    _create(db_url, TIES)
    query = "SELECT id, ts, value FROM events WHERE kind = 'a';"
    source = sql.SqlSource(db_url, query=query, timestamp="ts", batch_rows=2)
    batches, cursor = _poll(source, None)
    ids = [i for chunk in _ids(batches) for i in chunk]
    assert ids == [0, 2, 4, 6, 8]
    assert all(
        b.frame is not None and list(b.frame.columns) == ["id", "ts", "value"] for b in batches
    )
    assert _poll(source, cursor)[0] == []


def test_sql_values_are_bound_not_formatted(db_url: str) -> None:
    _create(db_url, [0, 1])
    _create(db_url, [0], table="other")
    source = sql.SqlSource(db_url, table="events; DROP TABLE other", timestamp="ts")
    with pytest.raises(errors.ControllerError):
        list(source.poll(None))
    engine = sa.create_engine(sql._url(db_url))
    assert sa.inspect(engine).has_table("other")
    engine.dispose()


def test_sql_errors_say_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(errors.TemporaryError, match="no such table"):
        list(sql.SqlSource(url, table="missing", timestamp="ts").poll(None))


def test_sql_source_parameters() -> None:
    with pytest.raises(errors.ConfigError, match="exactly one"):
        sql.SqlSource("sqlite://", timestamp="ts")
    with pytest.raises(errors.ConfigError, match="exactly one"):
        sql.SqlSource("sqlite://", table="t", query="select 1", timestamp="ts")
    with pytest.raises(errors.ConfigError, match="batch_rows"):
        sql.SqlSource("sqlite://", table="t", timestamp="ts", batch_rows=0)
    source = sql.SqlSource("postgresql://u:pw@host/db", table="t", timestamp="ts")
    assert "pw" not in source.key
    assert "pw" not in repr(source)
    assert repr(source).startswith("SqlSource(url='postgresql://u:***@host/db', table='t'")


@pytest.mark.postgres
def test_bare_postgresql_url_reads_through_psycopg(pg_url: str) -> None:
    _create(pg_url, [0, 1, 1])
    bare = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    source = sources.build_source(
        config.SqlSourceSpec(url=bare, table="events", timestamp="ts", batch_rows=2), Path(".")
    )
    batches, cursor = _poll(source, None)
    assert _ids(batches) == [[0, 1, 2]]
    assert cursor == {"after": (T0 + timedelta(hours=1)).isoformat(), "type": "datetime"}


def test_a_header_naming_a_column_twice_is_said_so(folder: Path) -> None:
    (folder / "twice.csv").write_text("time,price,price\n2024-01-01,1,2\n")
    (raw,) = files.FileSource(str(folder / "*.csv")).poll(None)
    assert raw.frame is None
    assert raw.error == "not valid CSV: the header names 'price' in columns 2 and 3"
