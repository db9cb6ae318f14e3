"""Inference with trained darklens checkpoints."""

from darklens.predict.predictor import Predictor
from darklens.predict.tasks import Denoiser, Regressor

__all__ = ["Denoiser", "Predictor", "Regressor"]
