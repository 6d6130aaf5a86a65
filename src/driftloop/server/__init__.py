"""The prediction server: FastAPI app (`server.app.create_app`), live models with hot swap
(`server.live_models`), the batched prediction log (`server.predictions`), tokens (`server.auth`)
and Prometheus metrics (`server.prometheus_metrics`). `driftloop serve` runs it under uvicorn."""
