"""Training, evaluation, calibration, MLflow tracking and the model registry (issue 4).

`train` is imported lazily so that `cobranza.ml.registry` (used by scoring and the API) does not
pull in the training stack.
"""

from __future__ import annotations

from typing import Any

__all__ = ["train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from cobranza.ml.training import train

        return train
    raise AttributeError(name)
