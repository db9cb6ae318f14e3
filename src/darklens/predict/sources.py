"""What a prediction reads: files and folders, a Bologna challenge folder, a dataset's extra
inputs; each checked against what the checkpoints were trained on.

A Bologna Lens Finding Challenge folder (holding ``Public/Band1``...) given as the only input is
read as the challenge's images, bands stacked in folder order (then put in the model's band order
when both are named) and masked pixels filled as in :func:`darklens.data.bologna.import_bologna`
(``mask_value`` 100 and ``mask_fill`` zero unless given), with the challenge ID as the row id: the
way to score the unlabelled challenge test set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from darklens.data.bologna import (
    MASK_VALUE,
    MaskFill,
    is_bologna_folder,
    iter_bologna_images,
    scan_band_files,
)
from darklens.data.deeplense import SkippedFile
from darklens.data.description import InputDescription, band_order, check_input
from darklens.data.h5 import LensDataset
from darklens.predict.ensemble import PathLike, as_path_list
from darklens.predict.inputs import (
    BadInputError,
    PredictionInputs,
    SkipHandler,
    SkippedInput,
    iter_blocks,
)
from darklens.predict.predictor import Predictor


class BolognaInputs:
    """The images of a Bologna challenge folder, with the interface of ``PredictionInputs``."""

    def __init__(
        self,
        root: Path,
        in_chans: int,
        skip_bad: bool,
        on_skip: SkipHandler | None,
        mask_value: float = MASK_VALUE,
        mask_fill: MaskFill = "zero",
    ) -> None:
        self.inputs = [root]
        self.in_chans = in_chans
        self.mask_value = mask_value
        self.mask_fill = mask_fill
        self.skip_bad = skip_bad
        self.on_skip = on_skip
        self.skipped: list[SkippedInput] = []
        self.band_names: tuple[str, ...] = scan_band_files(root).survey.bands
        self.order: list[int] | None = None  # channel permutation into the model's band order
        self.coordinates: dict[str, tuple[float, float]] = {}

    def _skip(self, problem: SkippedFile) -> None:
        skipped = SkippedInput(problem.path, problem.reason)
        self.skipped.append(skipped)
        if self.on_skip is not None:
            self.on_skip(skipped)

    def _images(self) -> Iterator[tuple[str, np.ndarray]]:
        for image_id, image in iter_bologna_images(
            self.inputs[0],
            mask_value=self.mask_value,
            mask_fill=self.mask_fill,
            skip_bad=self.skip_bad,
            on_skip=self._skip,
        ):
            if self.order is not None:
                image = image[self.order]
            if image.shape[0] != self.in_chans:
                raise BadInputError(
                    f"ID {image_id}",
                    f"has {image.shape[0]} band(s) but the model takes {self.in_chans} "
                    "channel(s): use a model trained on this challenge set",
                )
            yield image_id, image

    def blocks(self, size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        return iter_blocks(self._images(), size)


def prediction_inputs(
    inputs: PathLike | Sequence[PathLike],
    *,
    in_chans: int,
    skip_bad: bool,
    on_skip: SkipHandler | None,
    split: str | None = None,
    npz_key: str | None = None,
    recursive: bool = False,
    mask_value: float | None = None,
    mask_fill: MaskFill | None = None,
) -> PredictionInputs | BolognaInputs:
    """The image stream of ``inputs``: a lone Bologna challenge folder, or files and folders.

    ``mask_value`` / ``mask_fill`` (default 100 / zero) apply to Bologna folders only.
    """
    paths = as_path_list(inputs)
    if len(paths) == 1 and is_bologna_folder(paths[0]):
        value = MASK_VALUE if mask_value is None else mask_value
        fill = "zero" if mask_fill is None else mask_fill
        return BolognaInputs(paths[0], in_chans, skip_bad, on_skip, value, fill)
    if mask_value is not None or mask_fill is not None:
        raise ValueError(
            "mask_value / mask_fill (--mask-value / --mask-fill) apply only to a Bologna "
            f"challenge folder given alone (holding Public/Band1...), not to {paths[0]}"
            + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        )
    return PredictionInputs(
        paths,
        split=split,
        npz_key=npz_key,
        recursive=recursive,
        in_chans=in_chans,
        skip_bad=skip_bad,
        on_skip=on_skip,
    )


def dataset_blocks(
    path: PathLike, split: str | None, extras: Sequence[str], size: int
) -> Iterator[tuple[list[str], np.ndarray, dict[str, np.ndarray]]]:
    """Blocks of (ids, images, extra inputs) from a darklens dataset file, for models that take
    more than images; ids as :mod:`darklens.predict.inputs` names them (``file[index]``)."""
    with LensDataset(path) as dataset:
        missing = [name for name in extras if name not in dataset.input_names]
        if missing:
            raise ValueError(
                f"{path} lacks the extra input(s) {', '.join(missing)} that the model takes "
                f"(it holds: {', '.join(dataset.input_names) or 'none'})"
            )
        indices = dataset.split_indices(split or "all")
        if indices.size == 0:
            raise ValueError(f"{path} has no images in split {split!r}")
        for start in range(0, indices.size, size):
            block = indices[start : start + size]
            ids = [f"{path}[{i}]" for i in block]
            yield ids, dataset.images(block), {n: dataset.inputs(n, block) for n in extras}


def coordinate_values(
    source: PredictionInputs | BolognaInputs, ids: Sequence[str], columns: Sequence[str]
) -> dict[str, list[str]] | None:
    """RA/Dec text per row (empty where the file has no celestial WCS), or None."""
    if not columns:
        return None
    centres = [source.coordinates.get(i) for i in ids]
    return {
        name: ["" if c is None else format(c[k], ".10g") for c in centres]
        for k, name in enumerate(columns)
    }


def input_checker(
    predictors: Sequence[Predictor], sources: Sequence[Path], allow_mismatch: bool
) -> Callable[[str, InputDescription], None]:
    """A callback ``(input, description)`` that checks the input against every member."""

    def check(source: str, description: InputDescription) -> None:
        for predictor, checkpoint in zip(predictors, sources, strict=True):
            check_input(
                predictor.input_description_,
                description,
                source,
                str(checkpoint),
                allow_mismatch,
            )

    return check


def bologna_order(predictor: Predictor, source: BolognaInputs) -> list[int] | None:
    """The permutation putting a Bologna folder's bands in the model's order (None: keep)."""
    trained = predictor.input_description_
    if trained is None or not trained.band_names:
        return None
    order = band_order(trained.band_names, source.band_names)
    return None if order == list(range(len(source.band_names))) else order
