"""The trainer of `bench_federated_loop.py`: a standard-scaled SGD logistic regression (the
federated mode replaces the scaler with the global one computed from the regions' sums)."""

from __future__ import annotations

from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def sgd() -> Pipeline:
    return make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", alpha=1e-4,
                                                         random_state=0))
