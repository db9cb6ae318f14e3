"""Predictions of regression and denoising checkpoints (``TrainConfig.task`` regress/denoise).

:class:`Regressor` gives each image's targets in physical units (the checkpoint's target
scaling undone) and, for Gaussian-NLL heads, their predicted σ; :class:`Denoiser` gives each
image without its noise, in the input's units and size. Both check inputs as
:class:`~darklens.predict.Predictor` does (shape, channels, NaN) and refuse checkpoints of
another task.

>>> # Regressor.from_checkpoint("runs/axion").predict(images)   # (means [N, T], σ [N, T])
>>> # Denoiser.from_checkpoint("runs/unet").denoise(images)      # [N, C, H, W]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darklens.data.transforms import dihedral, dihedral_views, normalize, normalize_series
from darklens.predict.predictor import Predictor
from darklens.runs import BEST
from darklens.train.targets import TargetScaling


class Regressor(Predictor):
    """Physical targets (``target_names_``) of lensing images from a regression checkpoint."""

    task = "regress"

    @classmethod
    def from_checkpoint(
        cls,
        path_or_run_dir: str | Path,
        which: str = BEST,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        tta: bool = False,
        threshold: float | None = None,
    ) -> Regressor:
        regressor = super().from_checkpoint(path_or_run_dir, which, device, batch_size, tta)
        assert isinstance(regressor, Regressor)
        meta = regressor.checkpoint_ or {}
        if not isinstance(meta.get("targets"), Mapping):
            raise ValueError(f"{path_or_run_dir} is a regression checkpoint without its targets")
        regressor.scaling_ = TargetScaling.from_dict(meta["targets"])
        regressor.target_names_ = list(regressor.scaling_.names)
        return regressor

    def predict_outputs(
        self, images: Any, tta: bool | None = None, extras: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """The network's raw outputs [N, outputs] (averaged over the 8 dihedral views with
        TTA)."""
        batch = self.as_batch(images)
        others = self.as_extras(extras, batch.shape[0])
        use_tta = self.tta if tta is None else tta
        prep = self.preprocessing_
        out = []
        with torch.inference_mode():
            for start in range(0, batch.shape[0], self.batch_size):
                x = batch[start : start + self.batch_size].to(self.device)
                x = prep.apply(x)
                more = [
                    normalize_series(
                        e[start : start + self.batch_size].to(self.device),
                        prep.series_normalization_for(name),
                    )
                    for e, name in zip(others, prep.extras, strict=True)
                ]
                views = dihedral_views(x) if use_tta else [x]
                outputs = torch.stack([self.model_(v, *more).double() for v in views])
                out.append(outputs.mean(dim=0).cpu())
        return torch.cat(out).numpy()

    def predict(  # type: ignore[override]
        self, images: Any, tta: bool | None = None, extras: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Physical means [N, T] and σ [N, T] of the targets (σ None without a variance head)."""
        return self.scaling_.to_physical(self.predict_outputs(images, tta, extras))

    def predict_proba(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError("a regression model gives values, not class probabilities: use predict")


class Denoiser(Predictor):
    """Noiseless estimates of lensing images from a denoising checkpoint (e.g. a ``unet``)."""

    task = "denoise"

    def denoise(self, images: Any, tta: bool | None = None) -> np.ndarray:
        """The images without their noise, float32 [N, C, H, W] in the input's units and size
        (TTA averages the 8 dihedral views, each turned back)."""
        batch = self.as_batch(images)
        use_tta = self.tta if tta is None else tta
        prep = self.preprocessing_
        scale = _channel_affine(prep.std, batch.shape[1])
        shift = _channel_affine(prep.mean, batch.shape[1], default=0.0)
        out = []
        with torch.inference_mode():
            for start in range(0, batch.shape[0], self.batch_size):
                x = batch[start : start + self.batch_size].to(self.device)
                x = normalize(x, prep.normalization, prep.mean, prep.std)
                if use_tta:
                    views = [
                        _undo_dihedral(self.model_(v), k) for k, v in enumerate(dihedral_views(x))
                    ]
                    y = torch.stack(views).mean(dim=0)
                else:
                    y = self.model_(x)
                out.append((y.float().cpu() * scale + shift).numpy())
        return np.concatenate(out)

    def _warn_if_resized(self, size: tuple[int, int]) -> None:
        """Denoising keeps every image's size (the U-Net takes any): nothing to warn about."""

    def predict_proba(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError("a denoising model gives images, not class probabilities: use denoise")


def _channel_affine(values: Any, channels: int, default: float = 1.0) -> torch.Tensor:
    if values is None:
        return torch.full((1, channels, 1, 1), default)
    return torch.tensor([float(v) for v in values], dtype=torch.float32).reshape(1, -1, 1, 1)


def _undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of ``dihedral(x, k)``: the opposite rotation; mirrored views undo
    themselves."""
    return dihedral(x, (4 - k) % 4 if k < 4 else k)
