"""Predictions from a trained checkpoint, with exactly the preprocessing it was trained with.

>>> # predictor = Predictor.from_checkpoint("runs/cnn")            # best checkpoint of a run
>>> # predictor.classes_                                           # array(['no_sub', 'cdm', ...])
>>> # predictor.predict_proba(images)                              # [N, n_classes], rows sum to 1

Follows scikit-learn manners: constructor arguments are stored as given, state that comes from the
checkpoint ends in ``_``.

Two-class (lens-finding) checkpoints carry a ``decision_threshold`` chosen on the validation
split for a target false-positive rate (``TrainConfig.target_fpr``). :attr:`Predictor.threshold_`
holds it, and :meth:`Predictor.predict` calls an image class 1 (lens) when its probability
``predict_proba(images)[:, 1]`` is strictly greater than it, instead of taking the argmax;
``predict_proba`` is unchanged. A ``threshold`` given to the constructor or
:meth:`Predictor.from_checkpoint` replaces the stored one.

Multi-input models (e.g. lensed transients: images + light curves) take their extra inputs as a
mapping: ``predictor.predict_proba(images, extras={"light_curves": curves})``;
:attr:`Predictor.inputs_` names what the model takes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from darklens.data.description import InputDescription
from darklens.data.preprocessing import Preprocessing
from darklens.data.transforms import check_crop_fits, dihedral_views, normalize_series
from darklens.runs import BEST, load_checkpoint


class Predictor:
    """Class probabilities for lensing images from a model and its training preprocessing.

    ``preprocessing`` is a :class:`~darklens.data.preprocessing.Preprocessing` (or a checkpoint's
    ``preprocessing`` entry, read by ``Preprocessing.from_dict``). ``tta`` averages the
    probabilities over the 8 dihedral views. ``threshold`` (two classes only) is the decision
    threshold on the class-1 probability used by :meth:`predict`; None means argmax (unless the
    checkpoint stores one).
    """

    task = "classify"  # the checkpoints' task (TrainConfig.task) this class predicts for

    def __init__(
        self,
        model: nn.Module,
        preprocessing: Preprocessing | Mapping[str, Any],
        class_names: Sequence[str],
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        tta: bool = False,
        threshold: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = device
        self.batch_size = batch_size
        self.tta = tta
        self.threshold = threshold
        self.model_ = model.to(device).eval()
        if not isinstance(preprocessing, Preprocessing):
            preprocessing = Preprocessing.from_dict(preprocessing)
        self.preprocessing_ = preprocessing
        self.classes_ = np.asarray(list(class_names))
        self.in_chans_ = preprocessing.in_chans
        self.img_size_ = preprocessing.img_size
        self.inputs_ = preprocessing.inputs
        self.input_shapes_ = dict(preprocessing.input_shapes)
        self.checkpoint_: dict[str, Any] | None = None
        # What the training images were (bands, pixel scale, ...); None: unknown (old checkpoint).
        self.input_description_: InputDescription | None = None
        self.threshold_ = check_threshold(threshold, len(self.classes_), "threshold")

    @classmethod
    def from_checkpoint(
        cls,
        path_or_run_dir: str | Path,
        which: str = BEST,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        tta: bool = False,
        threshold: float | None = None,
    ) -> Predictor:
        """Load a run folder's ``best``/``last`` checkpoint (or a checkpoint file) for inference.

        ``threshold_`` is ``threshold`` when given, else the checkpoint's stored decision
        threshold (two-class checkpoints), else None.
        """
        model, meta = load_checkpoint(path_or_run_dir, which, device=device)
        check_task(meta, cls.task, path_or_run_dir)
        predictor = cls(
            model, meta["preprocessing"], meta["class_names"], device, batch_size, tta, threshold
        )
        predictor.checkpoint_ = meta
        if "input_description" in meta:
            predictor.input_description_ = InputDescription.from_dict(meta["input_description"])
        if threshold is None:
            predictor.threshold_ = stored_threshold(meta, path_or_run_dir)
        return predictor

    # -- inputs ----------------------------------------------------------------------------------
    def as_batch(self, images: Any) -> torch.Tensor:
        """Validate images and return them as float32 [N, C, H, W] on the CPU.

        Accepts [N, C, H, W], [N, H, W], [H, W] or [C, H, W]; a 3-D array is one multi-channel
        image when the model takes more than one channel and its first axis matches that count.
        """
        array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
        array = np.asarray(array)
        if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"images must be numeric (int or float), got dtype {array.dtype}")
        if np.iscomplexobj(array):
            raise ValueError("images must be real numbers, got a complex array")
        if array.ndim == 2:
            array = array[None, None]
        elif array.ndim == 3:
            one_image = self.in_chans_ > 1 and array.shape[0] == self.in_chans_
            array = array[None] if one_image else array[:, None]
        elif array.ndim != 4:
            raise ValueError(
                f"expected images shaped [N, C, H, W], [N, H, W], [C, H, W] or [H, W]; "
                f"got shape {array.shape}"
            )
        if array.shape[0] == 0:
            raise ValueError("no images given")
        if array.shape[1] != self.in_chans_:
            raise ValueError(
                f"the images have {array.shape[1]} channel(s) but the model was trained on "
                f"{self.in_chans_}; pass [N, {self.in_chans_}, H, W] arrays"
            )
        batch = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        finite = torch.isfinite(batch.flatten(1)).all(dim=1)
        if not bool(finite.all()):
            bad = int(torch.nonzero(~finite)[0])
            raise ValueError(f"image {bad} contains NaN or infinite values")
        self._warn_if_resized(tuple(batch.shape[-2:]))
        return batch

    def as_extras(self, extras: Mapping[str, Any] | None, n_images: int) -> list[torch.Tensor]:
        """Validate the extra inputs the model takes (``inputs_`` after the images) and return
        them as float32 CPU tensors [N, ...], in the model's order.

        Each must hold one example per image, shaped like the training data's (one example
        without the leading axis is accepted for a single image).
        """
        needed = self.inputs_[1:]
        given = dict(extras or {})
        if not needed:
            if given:
                raise ValueError(f"this model takes images only; got extra inputs {sorted(given)}")
            return []
        missing = [name for name in needed if name not in given]
        if missing:
            raise ValueError(
                f"this model takes {', '.join(self.inputs_)}; missing {', '.join(missing)}"
            )
        unknown = sorted(set(given) - set(needed))
        if unknown:
            raise ValueError(f"unexpected extra inputs {unknown}; the model takes {needed}")
        out = []
        for name in needed:
            array = given[name]
            if isinstance(array, torch.Tensor):
                array = array.detach().cpu().numpy()
            array = np.asarray(array)
            if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
                raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
            shape = self.input_shapes_.get(name)
            if shape is not None and array.shape == shape and n_images == 1:
                array = array[None]
            if array.shape[0] != n_images or (shape is not None and array.shape[1:] != shape):
                expected = (n_images, *shape) if shape is not None else f"({n_images}, ...)"
                raise ValueError(
                    f"{name} must be shaped {tuple(expected)} (one per image, as in training); "
                    f"got {array.shape}"
                )
            tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
            finite = torch.isfinite(tensor.flatten(1)).all(dim=1)
            if not bool(finite.all()):
                bad = int(torch.nonzero(~finite)[0])
                raise ValueError(f"{name} of example {bad} contains NaN or infinite values")
            out.append(tensor)
        return out

    def _warn_if_resized(self, size: tuple[int, int]) -> None:
        prep = self.preprocessing_
        if prep.accepts_shape(size):
            return
        if prep.crop is not None:
            check_crop_fits(*size, prep.crop)
        what = f"{size[0]}x{size[1]} images"
        if prep.crop is not None:
            what = f"the central {prep.crop}x{prep.crop} pixels of {what}"
        warnings.warn(
            f"resizing {what} to the model's {self.img_size_}x{self.img_size_}; predictions "
            "are most reliable on images like the training data",
            UserWarning,
            stacklevel=3,
        )

    # -- predictions -----------------------------------------------------------------------------
    def predict_proba(
        self, images: Any, tta: bool | None = None, extras: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Class probabilities [N, n_classes] (float64), columns in the order of ``classes_``.

        ``extras`` holds the extra inputs of multi-input models (see :meth:`as_extras`); TTA
        turns the images only.
        """
        batch = self.as_batch(images)
        others = self.as_extras(extras, batch.shape[0])
        use_tta = self.tta if tta is None else tta
        prep = self.preprocessing_
        out = []
        with torch.inference_mode():
            for start in range(0, batch.shape[0], self.batch_size):
                stop = start + self.batch_size
                x = batch[start:stop].to(self.device)
                x = prep.apply(x)
                more = [
                    normalize_series(
                        e[start:stop].to(self.device), prep.series_normalization_for(name)
                    )
                    for e, name in zip(others, prep.extras, strict=True)
                ]
                views = dihedral_views(x) if use_tta else [x]
                proba = torch.stack(
                    [torch.softmax(self.model_(v, *more).double(), dim=1) for v in views]
                )
                out.append(proba.mean(dim=0).cpu())
        return torch.cat(out).numpy()

    def predict(
        self, images: Any, tta: bool | None = None, extras: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Predicted class index of each image: the most probable class, or with a decision
        threshold (two classes) 1 where the class-1 probability exceeds ``threshold_``."""
        proba = self.predict_proba(images, tta, extras)
        if self.threshold_ is None:
            return proba.argmax(axis=1)
        return (proba[:, 1] > self.threshold_).astype(np.int64)

    def predict_labels(
        self, images: Any, tta: bool | None = None, extras: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Name of the predicted class of each image (see :meth:`predict`)."""
        return self.classes_[self.predict(images, tta, extras)]


TASK_PREDICTORS = {
    "classify": "darklens.predict.Predictor",
    "regress": "darklens.predict.Regressor",
    "denoise": "darklens.predict.Denoiser",
}


def check_task(meta: Mapping[str, Any], task: str, source: str | Path) -> None:
    """ValueError unless the checkpoint ``meta`` was trained for ``task`` (naming the class that
    reads it)."""
    trained = meta.get("task", "classify")
    if trained != task:
        reader = TASK_PREDICTORS.get(str(trained), "a newer darklens")
        raise ValueError(
            f"{source} holds a {trained!r} model, not a {task!r} one; load it with {reader}"
        )


def check_threshold(threshold: Any, n_classes: int, what: str) -> float | None:
    """``threshold`` as a float in [0, 1] for a two-class model, or None; ValueError otherwise."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)):
        raise ValueError(f"{what} must be a number in [0, 1], got {threshold!r}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"{what} must be a probability in [0, 1], got {threshold}")
    if n_classes != 2:
        raise ValueError(
            f"{what} applies to two-class (lens-finding) models only; this one has "
            f"{n_classes} classes"
        )
    return float(threshold)


def stored_threshold(meta: Mapping[str, Any], source: str | Path) -> float | None:
    """The ``decision_threshold`` value a checkpoint stores, checked; None when it has none."""
    entry = meta.get("decision_threshold")
    if entry is None:
        return None
    what = f"the decision_threshold stored in {source}"
    if not isinstance(entry, Mapping) or entry.get("value") is None:
        raise ValueError(f"{what} has no value; retrain, or pass a threshold explicitly")
    return check_threshold(entry["value"], len(meta["class_names"]), what)
