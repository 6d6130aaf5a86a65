"""Artifacts and file sources on S3 (`s3://` through s3fs), against moto's S3 server that the
test session starts on 127.0.0.1; and one whole tick with both on S3 and the store on SQLite.

The endpoint reaches the clients in the two ways a user can choose: `AWS_ENDPOINT_URL` in the
environment (botocore reads it; the spec stays the same as for AWS itself), or fsspec storage
options in the spec (`artifacts: {url, options}`, `source: {path, options}`).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from driftloop.cli import project_commands as scaffold
from driftloop.controller import project as projects
from driftloop.controller import tick
from driftloop.core import errors
from driftloop.data import elec2
from driftloop.data.sources import files
from driftloop.store import artifacts

pytestmark = pytest.mark.s3

DAY = elec2.ROWS_PER_DAY


def test_the_server_listens_on_loopback_only(s3_server: str) -> None:
    address = urlparse(s3_server)
    assert address.hostname == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", address.port or 0), timeout=5):
        pass
    table = Path("/proc/net/tcp")
    if not table.exists():
        return
    # Every listening socket on that port (IPv4 and IPv6) is bound to 127.0.0.1, none to a
    # wildcard or an outside address: columns are "sl local_address rem_address st ...".
    port = f"{address.port:04X}"
    bound = [
        fields[1].split(":")[0]
        for name in ("/proc/net/tcp", "/proc/net/tcp6")
        if Path(name).exists()
        for fields in (line.split() for line in Path(name).read_text().splitlines()[1:])
        if fields[1].endswith(f":{port}") and fields[3] == "0A"
    ]
    assert bound == ["0100007F"]


def test_artifacts_round_trip_on_s3_and_refuse_tampered_bytes(s3_bucket: str) -> None:
    store = artifacts.ArtifactStore(f"s3://{s3_bucket}/models")
    rows = elec2.load_elec2().iloc[: 2 * DAY]
    model = LogisticRegression(max_iter=200).fit(rows[list(elec2.FEATURES)], rows["class"])
    stored = store.put_model(model)
    assert stored.uri.startswith(f"s3://{s3_bucket}/models/{stored.sha256[:2]}/")
    key = urlparse(stored.uri).path.lstrip("/")
    raw = boto3.client("s3").get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert hashlib.sha256(raw).hexdigest() == stored.sha256 and len(raw) == stored.size
    loaded = store.get_model(stored.uri, stored.sha256)
    features = rows[list(elec2.FEATURES)]
    assert (loaded.predict(features) == model.predict(features)).all()
    assert store.put_bytes(raw, suffix=".skops") == stored  # content-addressed: stored once
    listed = boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [item["Key"] for item in listed] == [key]  # and no partial upload left behind

    tampered = raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:]
    boto3.client("s3").put_object(Bucket=s3_bucket, Key=key, Body=tampered)
    with pytest.raises(errors.IntegrityError, match="does not match its recorded hash"):
        store.get_model(stored.uri, stored.sha256)
    with pytest.raises(errors.NotFoundError, match="does not exist"):
        store.get_bytes(f"s3://{s3_bucket}/models/00/{'0' * 64}.skops", "0" * 64)


def test_file_source_polls_new_objects_on_s3(s3_bucket: str) -> None:
    s3 = boto3.client("s3")
    days = elec2.load_elec2().iloc[: 3 * DAY]
    for day in range(2):
        part = days.iloc[day * DAY : (day + 1) * DAY]
        s3.put_object(
            Bucket=s3_bucket, Key=f"data/day-{day}.csv", Body=part.to_csv(index=False).encode()
        )
    s3.put_object(Bucket=s3_bucket, Key="data/notes.txt", Body=b"not matched by the glob")
    source = files.FileSource(f"s3://{s3_bucket}/data/*.csv")
    first = list(source.poll(None))
    assert [b.source_uri for b in first] == [
        f"s3://{s3_bucket}/data/day-0.csv",
        f"s3://{s3_bucket}/data/day-1.csv",
    ]
    assert [len(b.frame) for b in first if b.frame is not None] == [DAY, DAY]
    cursor = first[-1].cursor
    assert list(source.poll(cursor)) == []
    # A file that arrives later is seen by the same (long-lived) source: listings are not cached.
    body = days.iloc[2 * DAY :].to_csv(index=False).encode()
    s3.put_object(Bucket=s3_bucket, Key="data/day-2.csv", Body=body)
    later = list(source.poll(cursor))
    assert [b.source_uri.rsplit("/", 1)[1] for b in later] == ["day-2.csv"]


def _s3_project(root: Path, bucket: str, options: dict[str, str] | None = None) -> Path:
    """The scaffold with its data uploaded to the bucket, sources and artifacts there, the
    store in a local SQLite file."""
    scaffold.init(root, weeks=3)
    s3 = boto3.client("s3")
    for path in sorted((root / "data").glob("*.csv")):
        s3.upload_file(str(path), bucket, f"data/{path.name}")
        path.unlink()
    spec_path = root / "driftloop.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["source"]["path"] = f"s3://{bucket}/data/*.csv"
    spec["artifacts"] = f"s3://{bucket}/artifacts"
    if options is not None:
        spec["source"]["options"] = options
        spec["artifacts"] = {"url": spec["artifacts"], "options": options}
    spec["trainer"]["executor"] = "inline"
    spec["trainer"]["params"] = {"max_iter": 10}
    spec_path.write_text(yaml.safe_dump(spec))
    return spec_path


def test_a_tick_with_data_and_artifacts_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    spec = _s3_project(tmp_path / "pipeline", s3_bucket)
    project = projects.open_project(spec)
    try:
        result = tick.Controller(project).tick()
        assert len(result.batches) == 4  # three weeks and the faulty file
        assert sum(b.status == "accepted" for b in result.batches) == 3
        assert all(b.source_uri.startswith(f"s3://{s3_bucket}/data/") for b in result.batches)
        accepted = [b for b in result.batches if b.status == "accepted"]
        assert all(str(b.data_uri).startswith(f"s3://{s3_bucket}/artifacts/") for b in accepted)
        assert result.outcome is not None and result.outcome.promoted
        version = result.outcome.version
        assert version is not None and version.artifact_uri.startswith(f"s3://{s3_bucket}/")
        assert project.store.aliases.get(project.name, "champion") == version.version
    finally:
        project.close()

    fresh = projects.open_project(spec)  # a new process reads everything back from S3
    try:
        controller = tick.Controller(fresh)
        assert controller.models.champion() is not None
        assert not controller.tick().acted
    finally:
        fresh.close()
    assert not (tmp_path / "pipeline" / "artifacts").exists()


def test_the_endpoint_can_come_from_the_spec_instead(
    s3_bucket: str, s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _s3_project(tmp_path / "pipeline", s3_bucket, options={"endpoint_url": s3_server})
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the spec knows where the server is
    project = projects.open_project(spec)
    try:
        result = tick.Controller(project).tick()
        assert sum(b.status == "accepted" for b in result.batches) == 3
        assert result.outcome is not None and result.outcome.version is not None
        stored = result.outcome.version
        assert project.artifacts.get_bytes(stored.artifact_uri, stored.sha256)
    finally:
        project.close()
