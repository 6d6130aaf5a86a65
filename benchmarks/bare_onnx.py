"""The reference of `bench_serve.py`: a bare ASGI app that scores the same ONNX file with
onnxruntime, with nothing else (no token, no schema check, no prediction log, no metrics).
What `driftloop serve` adds to a single-record prediction is measured against it.

    python benchmarks/bare_onnx.py MODEL.onnx COLUMNS_JSON CLASSES_JSON PORT

It answers ``POST /v1/predict`` with ``{"record": {...}}`` as driftloop does (the class of the
largest probability and the probabilities by class) and anything else with 200 ``{}``, under
uvicorn with the settings of `driftloop serve` (httptools, uvloop, no access log).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import onnxruntime
import uvicorn


def make_app(model: bytes, columns: list[str], classes: list[Any]) -> Any:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, sess_options=options,
                                           providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    output = [session.get_outputs()[-1].name]
    keys = [str(c) for c in classes]
    headers = [(b"content-type", b"application/json")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/v1/predict":
            record = json.loads(body)["record"]
            matrix = np.array([[record[c] for c in columns]], dtype=np.float32)
            proba = session.run(output, {name: matrix})[0][0].tolist()
            best = max(range(len(proba)), key=proba.__getitem__)
            payload = json.dumps({"prediction": classes[best],
                                  "probabilities": dict(zip(keys, proba, strict=True))}).encode()
        else:
            payload = b"{}"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(payload)).encode()), *headers]})
        await send({"type": "http.response.body", "body": payload})

    return app


if __name__ == "__main__":
    path, columns, classes, port = sys.argv[1:5]
    with open(path, "rb") as handle:
        app = make_app(handle.read(), json.loads(columns), json.loads(classes))
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False,
                http="httptools", loop="uvloop")
