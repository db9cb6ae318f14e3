"""Inference with trained darklens checkpoints."""

from darklens.predict.predictor import Predictor

__all__ = ["Predictor"]
