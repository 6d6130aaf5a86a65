"""Controller: the loop itself, one idempotent `tick` at a time.

`tick` orchestrates one step under the pipeline's `lease`: `ingest`, `evaluate`, `signals`,
the policy's decision, `retrain` (with `challenger` and the gate), `rollout`; `backtest`
replays history through the same tick on a fake clock; `project` opens a pipeline (from a file
or a dict) for the CLI, the server and Python; `online*` run an online learner; `telemetry` is
the controller's Prometheus metrics. See docs/architecture.md."""
