"""Serving benchmark: the same scikit-learn model behind `driftloop serve` (scoring with
scikit-learn, then with onnxruntime from its parity-checked ONNX export), a bare ASGI app that
scores the same ONNX file with onnxruntime and nothing else (`bare_onnx.py`, the reference),
and `mlflow models serve`, one worker each, on 127.0.0.1, driven by a load generator in a
separate process.

    python benchmarks/bench_serve.py [--seconds 10] [--threads 8] [--rate 200] [--repeats 3]
                                     [--workers 1 2] [--no-mlflow]

The model is the champion a scaffolded Elec2 project trains in one tick (HistGradientBoosting).
Each driftloop server is driven twice: at ``/v1/predict`` (the fast path,
`server.fast_predict`) and at ``/v1/predict?explain=false``, which the fast path hands to the
FastAPI route (the path every request took before the fast path). The servers are started in
turn, `--repeats` times; the figures printed are medians over the repeats, and each row's
ratio to the reference is the median of the ratios within a repeat (the machine's load at that
moment weighs on both). The load (`uptime`) is printed before and after each repeat.

MLflow runs in its own venv (`peers.peer_python("mlflow")`): the model is written with joblib,
saved there with the sklearn flavour and served with ``--env-manager local``. All servers get
the same single-record requests (driftloop and the reference: ``{"record": ...}``, driftloop
with a token; MLflow: ``{"dataframe_records": [...]}`` on /invocations).

The server's own CPU time per request (all its processes, from /proc) is printed beside the
figures: on a machine shared with other work, 1000 / (CPU ms per request) is what one idle
core would serve, while req/s and latencies measure what the machine gave us at the time. The
C modules each server process loaded (httptools, uvloop) are read from /proc too, to show it
runs with the settings that matter.

Two runs per server and path: closed loop (`--threads` connections sending back to back:
req/s, p50, p99) and open loop at `--rate` req/s (latency measured from each request's
scheduled time, so a stall counts against every request it delays). The load generator is this
file run with ``--load``: one keep-alive connection per thread, the request bytes built once
(`Connection`), so its own cost stays small next to the servers'.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RECORD = {"period": 0.5, "nswprice": 0.06, "nswdemand": 0.4, "vicprice": 0.003,
          "vicdemand": 0.42, "transfer": 0.41}

MLFLOW_SAVE = """
import sys, joblib, mlflow.sklearn
mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], skops_trusted_types=[
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"])
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited during startup")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


class Connection:
    """A minimal HTTP/1.1 keep-alive client for one fixed POST: the request bytes are built once,
    so the generator spends microseconds per request, not the few hundred an HTTP library
    spends, and its own CPU time stays out of the servers' latencies."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes) -> None:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.sock = socket.create_connection((parts.hostname, parts.port or 80))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def post(self) -> int:
        """Send the request, read the whole answer; its status code."""
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:])
        fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
        if b"content-length" not in fields:
            raise RuntimeError(f"the answer has no Content-Length: {head!r}")
        length = int(fields[b"content-length"])
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return int(head.split(b" ", 2)[1])

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def load(args: argparse.Namespace) -> None:
    """The load generator (run in its own process): prints one JSON line of results. At a
    fixed rate its threads hand the GIL over after 0.2 ms instead of CPython's 5 ms, so that
    one thread reading an answer does not hold back another's clock reading by milliseconds
    (a closed loop keeps the default: there the generator's CPU would be taken from the server)."""
    if args.rate:
        sys.setswitchinterval(0.0002)
    headers = json.loads(args.headers)
    body = args.body.encode()
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    end = start + args.seconds
    interval = args.threads / args.rate if args.rate else 0.0

    def work(index: int) -> None:
        mine: list[float] = []
        client = Connection(args.url, headers, body)
        client.post()  # connect and warm up
        scheduled = start + (index * interval / args.threads if interval else 0.0)
        while True:
            if interval:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            began = scheduled if interval else time.perf_counter()
            if began >= end:
                break
            if client.post() != 200:
                failures[0] += 1
            mine.append(time.perf_counter() - began)
            scheduled += interval
        client.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = max(time.perf_counter(), end) - start
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(json.dumps({"requests": len(latencies), "failures": failures[0],
                      "rps": len(latencies) / took, "p50_ms": q(0.5), "p99_ms": q(0.99)}))


def drive(url: str, headers: dict[str, str], body: dict[str, Any], seconds: float,
          threads: int, rate: float = 0.0) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--load", "--url", url, "--headers", json.dumps(headers),
         "--body", json.dumps(body), "--seconds", str(seconds), "--threads", str(threads),
         "--rate", str(rate)], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its descendants (the workers) so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        pending.extend(int(child) for child in children)
    return total


def loaded_modules(pid: int) -> list[str]:
    """Which of httptools and uvloop process `pid` (or a worker of it) has loaded."""
    found = set()
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            maps = Path(f"/proc/{current}/maps").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        found.update(name for name in ("httptools", "uvloop") if f"/{name}/" in maps)
        pending.extend(int(child) for child in children)
    return sorted(found)


def drive_server(
    command: list[str], ready: str, base: str, paths: dict[str, str], headers: dict[str, str],
    body: dict[str, Any], args: argparse.Namespace, cwd: Path,
) -> dict[str, dict[str, Any]]:
    """Start `command`, then for each name -> path of `paths`: closed loop (with the server's
    CPU per request), then fixed rate; stop it."""
    server = subprocess.Popen(command, cwd=cwd)
    results: dict[str, dict[str, Any]] = {}
    try:
        wait_ready(base + ready, server)
        modules = loaded_modules(server.pid)
        for name, path in paths.items():
            used = cpu_seconds(server.pid)
            closed = drive(base + path, headers, body, args.seconds, args.threads)
            used = cpu_seconds(server.pid) - used
            fixed = {"rate": args.rate, **drive(base + path, headers, body, args.seconds, 4,
                                                args.rate)}
            # CPU per request (with the warm-up requests the load generator sends): what one
            # core could serve on an idle machine, whatever the load of the shared one was
            cpu_ms = 1000 * used / max(1, closed["requests"] + args.threads)
            results[name] = {"closed": closed, "fixed_rate": fixed, "modules": modules,
                             "server_cpu_ms_per_request": cpu_ms}
    finally:
        stop(server)
    return results


def serve_and_drive(spec: Path, secret: str, args: argparse.Namespace, name: str,
                    extra: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """`driftloop serve` on `spec` (plus `extra` options): the fast path and the route."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).with_name("driftloop")), "serve", "--spec", str(spec),
               "--port", str(port), "--log-level", "warning", *extra]
    paths = {name: "/v1/predict", f"{name}_route": "/v1/predict?explain=false"}
    return drive_server(command, "/readyz", base, paths,
                        {"Authorization": f"Bearer {secret}"}, {"record": RECORD}, args,
                        spec.parent)


def reference_and_drive(model: Path, columns: list[str], classes: list[Any],
                        args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The bare ASGI app with onnxruntime (`bare_onnx.py`) on the same ONNX file."""
    port = free_port()
    command = [sys.executable, str(HERE / "bare_onnx.py"), str(model), json.dumps(columns),
               json.dumps(classes), str(port)]
    return drive_server(command, "/healthz", f"http://127.0.0.1:{port}",
                        {"reference": "/v1/predict"}, {}, {"record": RECORD}, args, HERE)


def median_rows(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per row: the median of each figure over the repeats, and of its ratio to the reference
    within each repeat."""
    rows: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(name for run in runs for name in run):
        found = [run[name] for run in runs if name in run]
        row = {"modules": found[0].get("modules", []), "repeats": len(found)}
        for part, key in (("closed", "rps"), ("closed", "p50_ms"), ("closed", "p99_ms"),
                          ("fixed_rate", "p50_ms"), ("fixed_rate", "p99_ms")):
            row[f"{part}_{key}"] = statistics.median(run[part][key] for run in found)
        row["failures"] = sum(run["closed"]["failures"] + run["fixed_rate"]["failures"]
                              for run in found)
        row["server_cpu_ms_per_request"] = statistics.median(
            run.get("server_cpu_ms_per_request", float("nan")) for run in found)
        ratios = [run[name]["closed"]["rps"] / run["reference"]["closed"]["rps"]
                  for run in runs if name in run and "reference" in run]
        row["rps_vs_reference"] = statistics.median(ratios) if ratios else float("nan")
        rows[name] = row
    return rows


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(args: argparse.Namespace) -> None:
    import joblib
    from peers import peer_python

    from driftloop.cli import project_commands as scaffold
    from driftloop.controller import exports
    from driftloop.controller import project as projects
    from driftloop.controller import tick as ticking
    from driftloop.server import auth
    from driftloop.store import serving

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    folder = work / "elec"
    scaffold.init(folder, weeks=3)
    spec = folder / "driftloop.yaml"
    spec.write_text(spec.read_text().replace("executor: local", "executor: inline"))
    project = projects.open_project(spec)
    controller = ticking.Controller(project)
    controller.tick()
    project.store.leases.release(project.name, controller.holder)
    version = project.store.versions.get(project.name, 1)
    model = project.artifacts.get_model(version.artifact_uri, version.sha256)
    secret = auth.create_token(serving.ServingStore(project.store), "bench", ["predict"],
                               actor="bench")[1]
    exported = exports.export_onnx(project, 1, work / "model.onnx", actor="bench").transfer
    parity = exported.report
    project.close()
    onnx_spec = folder / "driftloop-onnx.yaml"
    onnx_spec.write_text(spec.read_text() + "\nserving:\n  runtime: onnx\n")
    classes = [c.item() for c in model.classes_]

    results: dict[str, Any] = {"model": type(model).__name__, "threads": args.threads,
                               "seconds": args.seconds, "cpus": os.cpu_count(),
                               "onnx_parity": parity, "repeats": []}
    for repeat in range(args.repeats):
        run: dict[str, dict[str, Any]] = {}
        before = uptime()
        run.update(reference_and_drive(work / "model.onnx", list(parity["columns"]), classes,
                                       args))
        run.update(serve_and_drive(onnx_spec, secret, args, "driftloop_onnx"))
        run.update(serve_and_drive(spec, secret, args, "driftloop_sklearn"))
        for workers in args.workers:
            run.update(serve_and_drive(onnx_spec, secret, args,
                                       f"driftloop_onnx_workers_{workers}",
                                       ("--workers", str(workers))))
        results["repeats"].append({"uptime_before": before, "uptime_after": uptime(),
                                   "rows": run})
        print(f"repeat {repeat + 1}/{args.repeats} done; load {before} -> {uptime()}",
              file=sys.stderr)

    if args.mlflow:
        joblib.dump(model, work / "model.joblib")
        mlflow_python = peer_python("mlflow")
        subprocess.run([str(mlflow_python), "-c", MLFLOW_SAVE, str(work / "model.joblib"),
                        str(work / "mlflow-model")], check=True)
        port = free_port()
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
               "PATH": f"{mlflow_python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        mlflow = subprocess.Popen(
            [str(mlflow_python.with_name("mlflow")), "models", "serve", "-m",
             str(work / "mlflow-model"), "--env-manager", "local", "-h", "127.0.0.1", "-p",
             str(port), "-w", "1"], env=env, cwd=work)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base + "/ping", mlflow)
            body = {"dataframe_records": [RECORD]}
            results["repeats"][-1]["rows"]["mlflow"] = {
                "closed": drive(base + "/invocations", {}, body, args.seconds, args.threads),
                "fixed_rate": {"rate": args.rate, **drive(
                    base + "/invocations", {}, body, args.seconds, 4, args.rate)}}
        finally:
            stop(mlflow)

    rows = median_rows([r["rows"] for r in results["repeats"]])
    results["medians"] = rows
    results["uptime"] = uptime()
    print(json.dumps(results, indent=2))
    print(f"medians of {args.repeats} repeat(s): closed loop ({args.threads} connections) / "
          f"fixed rate {args.rate:.0f} req/s (4 connections)")
    for repeat in results["repeats"]:
        print(f"  load: {repeat['uptime_before']}  ->  {repeat['uptime_after']}")
    for name, row in rows.items():
        print(f"  {name:30s} {row['closed_rps']:6.0f} req/s ({row['rps_vs_reference']:.2f}x "
              f"ref)  p50 {row['closed_p50_ms']:.2f} ms  p99 {row['closed_p99_ms']:.2f} ms | "
              f"at rate: p50 {row['fixed_rate_p50_ms']:.2f} ms  p99 "
              f"{row['fixed_rate_p99_ms']:.2f} ms | server CPU "
              f"{row['server_cpu_ms_per_request']:.3f} ms/req | {','.join(row['modules'])}"
              f"{' | FAILURES ' + str(row['failures']) if row['failures'] else ''}")
    print(f"ONNX parity on {parity['rows']} stored rows: same class {parity['same_class']:.4%}, "
          f"max probability delta {parity['max_probability_delta']:.2g}")
    print("goals: onnxruntime >= 5000 req/s on one worker; p99 <= 2 ms at 200 req/s; "
          "driftloop >= 2x mlflow")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3,
                        help="Start every server this many times, in turn; medians are shown.")
    parser.add_argument("--workers", type=int, nargs="*", default=[],
                        help="Also serve ONNX with `--workers N` for each N given.")
    parser.add_argument("--no-mlflow", dest="mlflow", action="store_false",
                        help="Skip the MLflow peer.")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--headers", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--body", default="{}", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.load:
        load(parsed)
    else:
        main(parsed)
