"""The body limit of a real `driftloop serve` (uvicorn on 127.0.0.1): a chunked body has no
Content-Length, so the limit must count the bytes as they arrive, stop reading once they pass
it, and answer 413, while /healthz keeps answering and the server's memory stays flat."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server import Server, bearer, trained_folder

from driftloop.controller import project as projects
from driftloop.server import auth, state
from driftloop.store import serving

MiB = 1024 * 1024
LIMIT = state.Settings().max_body_bytes
SENT_AT_MOST = 300 * MiB
"""What the client would send if the server read on: the 300 MB body of the issue."""


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    folder = trained_folder(tmp_path_factory, "limits")
    project = projects.open_project(folder / "driftloop.yaml")
    secret = auth.create_token(serving.ServingStore(project.store), "p", ["predict"],
                               actor="test")[1]
    project.close()
    running = Server(folder / "driftloop.yaml")
    yield running, secret
    running.stop()


def test_a_chunked_body_past_the_limit_is_cut_off_with_413(served: tuple[Server, str]) -> None:
    server, secret = served
    sent = [0]

    def chunks() -> Iterator[bytes]:  # httpx sends a generator chunked, without Content-Length
        piece = b'{"records": [' + b'{"period": 0.5, "nswprice": 0.06}, ' * (MiB // 34)
        while sent[0] < SENT_AT_MOST:
            sent[0] += len(piece)
            yield piece

    slowest = [0.0]
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not done.is_set():
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                slowest[0] = max(slowest[0], time.perf_counter() - started)
                time.sleep(0.01)

    before = rss_bytes(server.process.pid)
    prober = threading.Thread(target=probe)
    prober.start()
    try:
        started = time.perf_counter()
        answer = httpx.post(server.url + "/v1/predict", content=chunks(), timeout=60, headers={
            **bearer(secret), "content-type": "application/json"})
        took = time.perf_counter() - started
    finally:
        done.set()
        prober.join()
    after = rss_bytes(server.process.pid)
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413, answer.text
    body = answer.json()
    assert body["error"] == "ContentTooLarge" and str(LIMIT) in body["detail"], body
    assert sent[0] < LIMIT + 64 * MiB, f"the client sent {sent[0] / MiB:.0f} MiB: read on"
    assert after - before < 64 * MiB, f"RSS {before / MiB:.0f} -> {after / MiB:.0f} MiB"
    assert slowest[0] < 1.0, f"/healthz took {slowest[0]:.2f} s meanwhile"
    print(f"413 after {sent[0] / MiB:.0f} MiB sent in {took:.2f} s; RSS {before / MiB:.0f} -> "
          f"{after / MiB:.0f} MiB; slowest /healthz {slowest[0] * 1000:.0f} ms")
    # a declared length past the limit is refused before a byte of the body is read
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        raw.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {LIMIT + 1}\r\n\r\n{{"
                    .encode())
        answer = b"".join(iter(lambda: raw.recv(65536), b"")).decode()  # until it closes
    assert answer.startswith("HTTP/1.1 413") and '"error":"ContentTooLarge"' in answer, answer
    assert server.process.poll() is None
