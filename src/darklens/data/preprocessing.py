"""What a model expects of its inputs, as one typed object stored with every checkpoint.

:class:`Preprocessing` travels with a model the way timm's ``PretrainedCfg`` does: the trainer
writes it, and the predictor, the evaluation and the ONNX exporter read it, so inference transforms
inputs exactly as training did. :meth:`Preprocessing.from_dict` reads every checkpoint darklens has
written (older ones lack the multi-input entries); :meth:`to_dict` writes the same JSON keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from darklens.data.transforms import NORMALIZATIONS, SERIES_NORMALIZATIONS, preprocess

IMAGES = "images"


class PreprocessingError(ValueError):
    """A checkpoint's preprocessing entry is incomplete or holds values darklens cannot apply."""


@dataclass(frozen=True)
class Preprocessing:
    """Image normalisation and size, channel count, and the model's extra inputs.

    - ``normalization``: per image ``minmax`` / ``zscore``, per band ``channel_minmax``,
      ``dataset`` (the training split's per-channel ``mean``/``std``), ``asinh`` (asinh of
      x / ``softening`` per channel, the softening being the training images' sky noise) or
      ``none``;
    - ``crop``: images are first cut to their central crop × crop pixels (None: whole images);
    - ``img_size``: images are resized (bilinear) to img_size × img_size when they differ;
    - ``in_chans``: bands per image; ``data_image_shape``: (H, W) of the training images;
    - ``inputs``: what ``forward`` takes, images first; ``input_shapes``: one example's shape per
      extra input; ``series_normalization``: per extra input, ``series_minmax`` (each example and
      band scaled to [0, 1]) or ``none``.
    """

    normalization: str
    img_size: int
    in_chans: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    data_image_shape: tuple[int, ...] | None = None
    inputs: tuple[str, ...] = (IMAGES,)
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    series_normalization: tuple[str, ...] = ()
    softening: tuple[float, ...] | None = None
    crop: int | None = None

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise PreprocessingError(
                f"normalization {self.normalization!r} is not one of {NORMALIZATIONS}"
            )
        if self.img_size < 1 or self.in_chans < 1:
            raise PreprocessingError(
                f"need img_size, in_chans >= 1, got {self.img_size}, {self.in_chans}"
            )
        if self.crop is not None and self.crop < 1:
            raise PreprocessingError(f"crop must be >= 1 pixel, got {self.crop}")
        if self.normalization == "dataset" and (self.mean is None or self.std is None):
            raise PreprocessingError("normalization 'dataset' needs the training mean and std")
        if self.normalization == "asinh" and (
            self.softening is None
            or len(self.softening) != self.in_chans
            or not all(v > 0 for v in self.softening)
        ):
            raise PreprocessingError(
                f"normalization 'asinh' needs one positive softening per channel ({self.in_chans})"
            )
        if not self.inputs or self.inputs[0] != IMAGES:
            raise PreprocessingError(f"inputs must start with {IMAGES!r}, got {self.inputs}")
        missing = [name for name in self.extras if name not in self.input_shapes]
        if missing:
            raise PreprocessingError(f"no input_shapes for extra input(s) {missing}")
        if len(self.series_normalization) not in (0, len(self.extras)):
            raise PreprocessingError("series_normalization needs one entry per extra input")
        unknown = set(self.series_normalization) - set(SERIES_NORMALIZATIONS)
        if unknown:
            raise PreprocessingError(
                f"series_normalization {sorted(unknown)} not in {SERIES_NORMALIZATIONS}"
            )

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] as the model takes them: cropped, resized, normalised."""
        return preprocess(
            images, self.normalization, self.img_size, self.mean, self.std, self.softening,
            self.crop,
        )  # fmt: skip

    def accepts_shape(self, shape: tuple[int, int]) -> bool:
        """Whether images of ``shape`` (H, W) reach the model without a resize."""
        direct = (self.crop, self.crop) if self.crop is not None else (self.img_size,) * 2
        trained_from = tuple(self.data_image_shape or ())
        return tuple(shape) == direct or tuple(shape) == trained_from

    @property
    def extras(self) -> tuple[str, ...]:
        """The inputs after ``images`` (e.g. ``("light_curves",)``)."""
        return self.inputs[1:]

    def series_normalization_for(self, name: str) -> str:
        """How extra input ``name`` is scaled (``none`` when the checkpoint says nothing)."""
        if not self.series_normalization:
            return "none"
        return self.series_normalization[self.extras.index(name)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        """Read a checkpoint's ``preprocessing`` entry (any darklens version's)."""
        if not isinstance(data, Mapping):
            raise PreprocessingError(f"preprocessing must be a mapping, got {type(data).__name__}")
        known = {
            "normalization", "img_size", "in_chans", "mean", "std", "data_image_shape",
            "inputs", "input_shapes", "series_normalization", "softening", "crop",
        }  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise PreprocessingError(
                f"preprocessing has entries unknown to this darklens: {unknown} (upgrade it)"
            )
        for key in ("normalization", "img_size", "in_chans"):
            if data.get(key) is None:
                raise PreprocessingError(f"preprocessing lacks {key!r}")
        try:
            return cls(
                normalization=str(data["normalization"]),
                img_size=int(data["img_size"]),
                in_chans=int(data["in_chans"]),
                mean=_floats(data.get("mean")),
                std=_floats(data.get("std")),
                data_image_shape=_ints(data.get("data_image_shape")),
                inputs=tuple(data.get("inputs") or (IMAGES,)),
                input_shapes={
                    str(k): tuple(int(d) for d in v)
                    for k, v in (data.get("input_shapes") or {}).items()
                },
                series_normalization=tuple(data.get("series_normalization") or ()),
                softening=_floats(data.get("softening")),
                crop=None if data.get("crop") is None else int(data["crop"]),
            )
        except (TypeError, ValueError) as err:
            if isinstance(err, PreprocessingError):
                raise
            raise PreprocessingError(f"preprocessing holds a malformed value: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry written in checkpoints (multi-input keys only when there are extras)."""
        out: dict[str, Any] = {
            "normalization": self.normalization,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "img_size": self.img_size,
            "in_chans": self.in_chans,
            "data_image_shape": None
            if self.data_image_shape is None
            else list(self.data_image_shape),
        }
        if self.softening is not None:
            out["softening"] = list(self.softening)
        if self.crop is not None:
            out["crop"] = self.crop
        if self.extras:
            out["inputs"] = list(self.inputs)
            out["input_shapes"] = {k: list(v) for k, v in self.input_shapes.items()}
            out["series_normalization"] = list(self.series_normalization)
        return out


def _floats(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def _ints(values: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(int(v) for v in values)
