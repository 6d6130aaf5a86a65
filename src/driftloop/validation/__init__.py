"""Validation: does a batch fit the pipeline's schema?

`schema` infers the schema from the first good batch and coerces later ones to it; `checks`
finds what breaks it (quarantine reasons per column, naming rows) and what is only beyond the
first data (data-quality signals that keep the batch); `spec_data` checks a spec's columns
against a sample (`driftloop check --data`)."""
