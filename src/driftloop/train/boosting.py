"""LightGBM as a model family (the `lightgbm` extra), for `trainer.function` or a search
candidate:

.. code-block:: yaml

    trainer:
      function: train:make_model
      search:
        trials: 20
        candidates:
          lightgbm:
            function: driftloop.train.boosting:lightgbm_classifier
            space:
              num_leaves: {low: 8, high: 64}
              learning_rate: {low: 0.02, high: 0.3, log: true}

`lightgbm_classifier` and `lightgbm_regressor` make unfitted scikit-learn estimators with
`DEFAULTS` (a few hundred small trees, quiet), overridden by the spec's params. Their model
files hold LightGBM's types, which the model-file allow-list (`store.skops_trust`) refuses
unless trusted: a project that names a function of this module trusts `TRUSTED_MODULES`
(`trusted_for`). Training threads follow ``trainer.threads`` like any
trainer (LightGBM runs on OpenMP, which `train.trainer.thread_limits` limits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from driftloop.core import errors

DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "verbose": -1,
}
"""Parameters of the estimators unless the spec gives them."""

TRUSTED_MODULES = ("lightgbm", "collections.OrderedDict")
"""What a stored LightGBM model holds besides numpy: its own types and an ordered dict."""


def trusted_for(modules: Sequence[str]) -> list[str]:
    """`TRUSTED_MODULES` if `modules` (of trainer functions) name this one, else nothing.

    >>> trusted_for(["train", "driftloop.train.boosting"]), trusted_for(["train"])
    (['lightgbm', 'collections.OrderedDict'], [])
    """
    return list(TRUSTED_MODULES) if __name__ in modules else []


def lightgbm_classifier(**params: Any) -> Any:
    """An unfitted ``lightgbm.LGBMClassifier`` with `DEFAULTS` and `params`.

    >>> lightgbm_classifier(num_leaves=8).get_params()["num_leaves"]
    8
    """
    return _lightgbm().LGBMClassifier(**{**DEFAULTS, **params})


def lightgbm_regressor(**params: Any) -> Any:
    """An unfitted ``lightgbm.LGBMRegressor`` with `DEFAULTS` and `params`."""
    return _lightgbm().LGBMRegressor(**{**DEFAULTS, **params})


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise errors.ConfigError(
            "the LightGBM trainers need the lightgbm package: pip install 'driftloop[lightgbm]'"
        ) from exc
    return lightgbm
