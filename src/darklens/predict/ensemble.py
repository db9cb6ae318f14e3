"""Ensembles of checkpoints: load several, check they agree, average their probabilities.

An ensemble averages the class probabilities of its members; they must agree on class names and
inputs (channels, image size, extra inputs). A single member keeps its checkpoint's decision
threshold; an ensemble's averaged score was never validated, so it predicts by argmax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from darklens.device import resolve_device
from darklens.predict.predictor import Predictor
from darklens.runs import BEST

PathLike = str | Path


def as_path_list(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    """One path or several as a list of paths (a bare string is one path)."""
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def check_ensemble(predictors: Sequence[Predictor], sources: Sequence[PathLike]) -> None:
    """Raise ValueError unless every member has the first one's classes, channels and size."""
    if not predictors:
        raise ValueError("no checkpoints given: pass at least one run folder or checkpoint")
    first, first_source = predictors[0], sources[0]
    for member, source in zip(predictors[1:], sources[1:], strict=True):
        if list(member.classes_) != list(first.classes_):
            raise ValueError(
                f"checkpoints disagree on classes: {source} has {member.classes_.tolist()}, "
                f"{first_source} has {first.classes_.tolist()}; ensemble only models of one task"
            )
        if member.inputs_ != first.inputs_ or member.input_shapes_ != first.input_shapes_:
            raise ValueError(
                f"checkpoints disagree on inputs: {source} takes {member.inputs_} "
                f"{member.input_shapes_}, {first_source} {first.inputs_} {first.input_shapes_}"
            )
        theirs = (member.in_chans_, member.img_size_)
        mine = (first.in_chans_, first.img_size_)
        if theirs != mine:
            raise ValueError(
                f"checkpoints disagree on input: {source} takes {theirs[0]} channel(s) at "
                f"{theirs[1]} px, {first_source} {mine[0]} at {mine[1]} px"
            )


def resolve_inference_device(device: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; other names are checked."""
    return str(resolve_device(device))


def load_predictors(
    checkpoints: PathLike | Sequence[PathLike],
    *,
    which: str = BEST,
    device: str = "cpu",
    batch_size: int = 256,
) -> list[Predictor]:
    """A :class:`Predictor` per checkpoint (run folder or checkpoint file), checked to ensemble."""
    sources = as_path_list(checkpoints)
    torch_device = resolve_inference_device(device)
    predictors = [
        Predictor.from_checkpoint(s, which, device=torch_device, batch_size=batch_size)
        for s in sources
    ]
    check_ensemble(predictors, sources)
    return predictors


def ensemble_threshold(predictors: Sequence[Predictor]) -> tuple[float | None, str]:
    """The decision threshold for the ensemble's averaged score, and where it comes from.

    A single member's own threshold applies; the averaged score of several members was never
    validated, so an ensemble (like a checkpoint without one) predicts by argmax.
    """
    if len(predictors) == 1 and predictors[0].threshold_ is not None:
        return predictors[0].threshold_, "checkpoint"
    if len(predictors) > 1:
        return None, "argmax (an ensemble's averaged score has no validated threshold)"
    return None, "argmax (the checkpoint stores no decision threshold)"


def ensemble_proba(
    predictors: Sequence[Predictor],
    images: np.ndarray,
    *,
    tta: bool = False,
    extras: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Mean class probabilities [N, n_classes] (float64) of the members on ``images`` (and the
    extra inputs of multi-input models)."""
    total = predictors[0].predict_proba(images, tta=tta, extras=extras)
    for member in predictors[1:]:
        total = total + member.predict_proba(images, tta=tta, extras=extras)
    return total / len(predictors)
