"""Train: the user's trainer, run and made into a model.

`trainer` is the contract (``make_model(**params)`` or ``fit(X, y, **params)``), `conformance`
checks a trainer against it, `executor` runs it inline, in a child process with a timeout or on
Ray (`ray_executor`), `search` chooses among model families (Optuna), `window` picks the
training rows, `calibration` turns confidences into estimated accuracy, `models` holds the
built-in scikit-learn trainers and `boosting` the LightGBM family, `online` and `segments` wrap
river learners and per-segment models, `fingerprint` names the trainer a run ran."""
