"""Training: one recipe (:func:`train`) for any registered model on any darklens dataset."""

from darklens.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from darklens.train.config import AugmentConfig, TrainConfig
from darklens.train.trainer import TrainResult, train

__all__ = [
    "AugmentConfig",
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "load_checkpoint",
    "save_checkpoint",
    "train",
]
