"""Training by backpropagation: one recipe (:func:`train`) for any registered model.

Stacked models are fitted by :func:`darklens.recipes.fit`; checkpoints live in
:mod:`darklens.runs`. ``train`` and ``TrainResult`` load on first use (they import the models).
"""

from darklens.train.config import AugmentConfig, TrainConfig

__all__ = ["AugmentConfig", "TrainConfig", "TrainResult", "train"]


def __getattr__(name: str):
    if name in ("train", "TrainResult"):
        from darklens.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
