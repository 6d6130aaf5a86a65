"""Policy: when to retrain.

`signals` is what a tick observed (drift, live and estimated performance, new rows, requests);
`triggers` turn signals into fired or quiet results (schedule, drift, performance, volume,
quality, manual); `policy` combines them with the cooldown into one decision with its
evidence; `schedule` reads cron expressions in the pipeline's time zone."""
