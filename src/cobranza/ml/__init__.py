"""Training, evaluation, calibration, MLflow tracking and the model registry.

`train` is imported on first use: `cobranza.ml.registry` (scoring, the API) must not pull in the
training stack (Optuna, matplotlib, SHAP) with this package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from cobranza.ml.training import train  # the training stack, on first use only

        return train
    raise AttributeError(name)
