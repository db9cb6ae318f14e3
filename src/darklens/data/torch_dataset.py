"""A PyTorch ``Dataset`` over one split of a darklens dataset (a file or an in-memory dataset).

Items are tensors: the image ``[C, H, W]`` float32 and the label (int64). Asked for extra inputs
(e.g. the light curves ``[T, bands]`` of lensed-transient datasets) or truth columns, an item is
a dict instead, which torch's default collation batches key by key::

    {"image": [C, H, W], "label": (), "index": (), "light_curves": [T, bands],
     "truth": {"theta_e_arcsec": (), ...}}

``index`` is the image's position in the whole dataset. Images are read lazily from a file, one
item at a time (each DataLoader worker opens its own handle). ``transform`` is applied to each
image tensor, e.g. :class:`ImagePreprocess`, darklens' resize + normalisation for one image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from darklens.data.h5 import LensDataset
from darklens.data.memory import InMemoryDataset, open_dataset
from darklens.data.preprocessing import Preprocessing
from darklens.data.transforms import center_crop, normalize, resize

Source = str | Path | LensDataset | InMemoryDataset


class TorchLensDataset(Dataset):
    """One split of a darklens dataset as tensors (see the module docstring for the items).

    Args:
        source: a dataset file path, a ``LensDataset`` or an ``InMemoryDataset``.
        split: ``train``, ``val``, ``test`` or ``all``.
        transform: called on each image tensor ``[C, H, W]``.
        extras: names of extra inputs to include (``None``: every one the dataset holds).
        truth: names of truth columns to include.

    Examples:
        >>> import darklens
        >>> from darklens.data import TorchLensDataset
        >>> sim = darklens.simulate("transients_des_deep", n=8, seed=0)
        >>> ds = TorchLensDataset(sim, split="all", truth=["z_lens"])
        >>> item = ds[0]
        >>> item["image"].shape, item["image"].dtype, item["label"].dtype
        (torch.Size([4, 45, 45]), torch.float32, torch.int64)
        >>> item["light_curves"].shape, sorted(item["truth"])
        (torch.Size([15, 4]), ['z_lens'])
        >>> image, label = TorchLensDataset(sim, split="all", extras=[])[0]
    """

    def __init__(
        self,
        source: Source,
        split: str = "train",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        extras: Sequence[str] | None = None,
        truth: Sequence[str] = (),
    ) -> None:
        self.reader = open_dataset(source)
        self.split = split
        self.indices = self.reader.split_indices(split)
        if self.indices.size == 0:
            counts = {
                name: int(self.reader.split_indices(name).size) for name in ("train", "val", "test")
            }
            raise ValueError(
                f"split {split!r} of {_name(source)} is empty (images per split: {counts})"
            )
        self.transform = transform
        self.extras = tuple(self.reader.input_names if extras is None else extras)
        _require_known("extra input", self.extras, self.reader.input_names, source)
        self.truth_names = tuple(truth)
        _require_known("truth column", self.truth_names, self.reader.truth_columns, source)
        self._truth = {name: self.reader.truth(name)[self.indices] for name in self.truth_names}
        self.labels = self.reader.labels[self.indices]

    @property
    def class_names(self) -> list[str]:
        return list(self.reader.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.reader.image_shape)

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """One example's shape for each extra input this dataset yields."""
        return {name: tuple(self.reader.input_shape(name)) for name in self.extras}

    @property
    def as_dict(self) -> bool:
        """True when items are dicts (extra inputs or truth were asked for)."""
        return bool(self.extras or self.truth_names)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor] | dict[str, Any]:
        if not -len(self) <= item < len(self):
            raise IndexError(f"index {item} is outside this split of {len(self)} images")
        row = int(self.indices[item])
        image = torch.from_numpy(np.ascontiguousarray(self.reader.images(slice(row, row + 1))[0]))
        if self.transform is not None:
            image = self.transform(image)
        label = torch.tensor(int(self.labels[item]), dtype=torch.int64)
        if not self.as_dict:
            return image, label
        out: dict[str, Any] = {"image": image, "label": label, "index": torch.tensor(row)}
        for name in self.extras:
            values = self.reader.inputs(name, slice(row, row + 1))[0]
            out[name] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        if self.truth_names:
            out["truth"] = {name: torch.as_tensor(v[item]) for name, v in self._truth.items()}
        return out


class ImagePreprocess:
    """darklens' deterministic preprocessing of one image ``[C, H, W]``: its central ``crop``
    pixels (when given), resized to ``img_size`` (when given), then normalised (``minmax``,
    ``channel_minmax``, ``zscore``, ``dataset`` with per-channel ``mean``/``std``, ``asinh`` with
    per-channel ``softening``, or ``none``), exactly as training and prediction do on batches.

    Examples:
        >>> import torch
        >>> scale = ImagePreprocess("minmax", img_size=4)
        >>> out = scale(torch.arange(64.0).reshape(1, 8, 8))
        >>> tuple(out.shape), float(out.min()), float(out.max())
        ((1, 4, 4), 0.0, 1.0)
    """

    def __init__(
        self,
        normalization: str = "minmax",
        img_size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        softening: Sequence[float] | None = None,
        crop: int | None = None,
    ) -> None:
        self.normalization = normalization
        self.img_size = img_size
        self.crop = crop
        self.mean = mean
        self.std = std
        self.softening = softening

    @classmethod
    def from_preprocessing(cls, preprocessing: Preprocessing) -> ImagePreprocess:
        """The image preprocessing a checkpoint records (``Predictor.preprocessing_``)."""
        p = preprocessing
        return cls(p.normalization, p.img_size, p.mean, p.std, p.softening, p.crop)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 3:
            raise ValueError(f"expected one image [C, H, W], got shape {tuple(image.shape)}")
        batch = image[None].float()
        if self.crop is not None:
            batch = center_crop(batch, self.crop)
        if self.img_size is not None:
            batch = resize(batch, self.img_size)
        return normalize(batch, self.normalization, self.mean, self.std, self.softening)[0]


def _name(source: Source) -> str:
    return (
        str(source.path)
        if isinstance(source, LensDataset)
        else ("the in-memory dataset" if isinstance(source, InMemoryDataset) else str(source))
    )


def _require_known(
    what: str, asked: Sequence[str], available: Sequence[str], source: Source
) -> None:
    unknown = [name for name in asked if name not in available]
    if unknown:
        have = ", ".join(available) or "none"
        raise KeyError(
            f"{_name(source)} has no {what} {', '.join(map(repr, unknown))}; it has: {have}"
        )
