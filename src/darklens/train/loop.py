"""The epoch functions: one pass of training, one pass of evaluation.

They know nothing about files, schedules or processes: the caller hands them batches, a function
giving the learning rate of each step, and (under DDP) a function gathering evaluation outputs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darklens.data.preprocessing import Preprocessing
from darklens.data.transforms import (
    fit_size,
    gaussian_noise,
    normalize,
    normalize_series,
    preprocess,
    random_affine,
    random_dihedral,
)
from darklens.train.config import AugmentConfig

Inputs = tuple[torch.Tensor, ...]  # images first, then the model's extra inputs
REPORT_EVERY_S = 0.5  # how often the loop reads loss/accuracy back for a progress display
PAUC_MAX_FPR = 0.1  # the val_pauc monitor: standardised partial AUC over FPR <= 0.1
Batch = tuple[Inputs, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class BatchSettings:
    """How raw batches become model inputs, and how steps run, on one device.

    ``series_normalization`` has one entry per extra input (after the images): how that input is
    scaled per example (see :func:`darklens.data.transforms.normalize_series`).
    """

    device: torch.device
    img_size: int
    normalization: str
    crop: int | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    grad_clip_norm: float = 0.0
    series_normalization: tuple[str, ...] = ()
    softening: Sequence[float] | None = None

    @classmethod
    def from_preprocessing(
        cls,
        preprocessing: Preprocessing,
        device: torch.device,
        augment: AugmentConfig,
        **runtime: object,
    ) -> BatchSettings:
        """The settings a checkpoint's :class:`Preprocessing` implies, plus how steps run
        (``amp_dtype``, ``channels_last``, ``grad_clip_norm``)."""
        p = preprocessing
        return cls(
            device=device,
            img_size=p.img_size,
            normalization=p.normalization,
            crop=p.crop,
            mean=p.mean,
            std=p.std,
            augment=augment,
            series_normalization=tuple(p.series_normalization_for(name) for name in p.extras),
            softening=p.softening,
            **runtime,  # type: ignore[arg-type]
        )

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """The deterministic preprocessing (crop, resize, normalise) of images on the device."""
        return preprocess(
            images, self.normalization, self.img_size, self.mean, self.std, self.softening,
            self.crop,
        )  # fmt: skip

    def autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


@dataclasses.dataclass(frozen=True)
class TrainTotals:
    """Sums over one process's training batches (summed again across processes under DDP)."""

    loss_sum: float
    correct: int
    count: int
    steps: int


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Validation metrics by name (``loss``, ``acc``, ``auc``, and ``tpr_at_fpr`` for two-class
    tasks evaluated at a target false-positive rate) with the probabilities behind them."""

    metrics: dict[str, float]
    proba: np.ndarray
    labels: np.ndarray


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Focal loss of Lin et al. (2017): mean of ``-w_y (1 - p_y)^gamma log p_y`` over the batch.

    ``p_y`` is the softmax probability of the true class and ``w_y`` its class weight (alpha);
    with weights the mean is weighted (divided by the sum of ``w_y``), as in
    :class:`torch.nn.CrossEntropyLoss`, so ``gamma=0`` gives exactly the cross-entropy. Computed
    in float32 whatever the autocast precision of ``logits``.
    """
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
    # 1 - p_y as -expm1(log p_y) stays accurate for confident predictions; the floor keeps the
    # gradient of (1 - p)^gamma finite at p = 1 for gamma < 1.
    modulation = (-torch.expm1(log_p)).clamp_min(torch.finfo(torch.float32).tiny).pow(gamma)
    losses = -modulation * log_p
    if weight is None:
        return losses.mean()
    sample_weight = weight.to(losses.dtype)[targets]
    return (sample_weight * losses).sum() / sample_weight.sum()


class FocalLoss(nn.Module):
    """:func:`focal_loss` as a module, with the exponent and class weights fixed."""

    def __init__(self, gamma: float, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, targets, self.gamma, self.weight)


def augmented_inputs(inputs: Inputs, settings: BatchSettings, generator: torch.Generator) -> Inputs:
    """Training inputs: images resized, randomly moved (geometry), normalised, then noised
    (normalised units); extra inputs (e.g. light curves, which do not change when the image is
    rotated) only scaled."""
    aug = settings.augment
    x = inputs[0].to(settings.device, non_blocking=True).float()
    x = fit_size(x, settings.img_size, settings.crop)
    if aug.dihedral:
        x = random_dihedral(x, generator)
    x = random_affine(x, generator, aug.shift_px, aug.scale, aug.shear_deg)
    x = normalize(x, settings.normalization, settings.mean, settings.std, settings.softening)
    x = settings.layout(gaussian_noise(x, aug.gaussian_noise_std, generator))
    return (x, *extra_inputs(inputs[1:], settings))


def augmented_pair(
    inputs: Inputs, targets: torch.Tensor, settings: BatchSettings, generator: torch.Generator
) -> tuple[Inputs, torch.Tensor]:
    """Training inputs and image targets (denoising: noisy → clean) moved by the same random
    geometry and scaled by the same affine normalisation; the noise augmentation goes on the
    input only."""
    aug, channels = settings.augment, inputs[0].shape[1]
    x = inputs[0].to(settings.device, non_blocking=True).float()
    y = targets.to(settings.device, non_blocking=True).float()
    both = fit_size(torch.cat([x, y], dim=1), settings.img_size, settings.crop)
    if aug.dihedral:
        both = random_dihedral(both, generator)
    both = random_affine(both, generator, aug.shift_px, aug.scale, aug.shear_deg)
    x, y = both[:, :channels], both[:, channels:]
    x = normalize(x, settings.normalization, settings.mean, settings.std)
    y = normalize(y, settings.normalization, settings.mean, settings.std)
    x = settings.layout(gaussian_noise(x, aug.gaussian_noise_std, generator))
    return (x, *extra_inputs(inputs[1:], settings)), y


def eval_targets(targets: torch.Tensor, settings: BatchSettings) -> torch.Tensor:
    """Targets on the device; image targets (denoising) preprocessed like the images."""
    y = targets.to(settings.device, non_blocking=True)
    if y.dim() != 4:
        return y
    return settings.preprocess(y.float())


def eval_inputs(inputs: Inputs, settings: BatchSettings) -> Inputs:
    """Evaluation inputs: the deterministic preprocessing only."""
    x = inputs[0].to(settings.device, non_blocking=True).float()
    x = settings.preprocess(x)
    return (settings.layout(x), *extra_inputs(inputs[1:], settings))


def extra_inputs(extras: Sequence[torch.Tensor], settings: BatchSettings) -> list[torch.Tensor]:
    """The extra inputs on the device, each scaled as ``settings.series_normalization`` says."""
    if len(extras) != len(settings.series_normalization):
        raise ValueError(
            f"got {len(extras)} extra input(s) but preprocessing for "
            f"{len(settings.series_normalization)}"
        )
    return [
        normalize_series(x.to(settings.device, non_blocking=True).float(), method)
        for x, method in zip(extras, settings.series_normalization, strict=True)
    ]


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    settings: BatchSettings,
    generator: torch.Generator,
    lr_for_step: Callable[[int], float],
    first_step: int = 0,
    scaler: torch.amp.GradScaler | None = None,
    on_batch: Callable[[float, float, int], None] | None = None,
    report_every_s: float = REPORT_EVERY_S,
    extra_loss: Callable[[int], torch.Tensor] | None = None,
) -> TrainTotals:
    """One pass over ``batches``; the learning rate of every param group is set per step.

    Loss and accuracy are summed on the device and read once at the end (reading them per step
    would make the host wait for the GPU every step). ``on_batch(loss, running_accuracy, steps)``
    (e.g. a progress bar) is called at most every ``report_every_s`` seconds and after the last
    step, with the steps done since its previous call. ``extra_loss(step)``, called right after
    the model's forward pass, adds a term to what is minimised (e.g. domain adaptation's domain
    loss); the totals keep the class loss alone.
    """
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=settings.device)
    correct = torch.zeros((), dtype=torch.int64, device=settings.device)
    count = steps = reported = 0
    last_report = time.monotonic()
    for x, y in batches:
        lr = lr_for_step(first_step + steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if y.dim() == 4:
            inputs, targets = augmented_pair(x, y, settings, generator)
        else:
            inputs = augmented_inputs(x, settings, generator)
            targets = y.to(settings.device, non_blocking=True)
        with settings.autocast():
            logits = model(*inputs)
            loss = loss_fn(logits, targets)
            total = loss if extra_loss is None else loss + extra_loss(first_step + steps)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(total).backward()
            _clip(model, optimizer, settings.grad_clip_norm, scaler)
            scaler.step(optimizer)
            scaler.update()
        else:
            total.backward()
            _clip(model, optimizer, settings.grad_clip_norm, None)
            optimizer.step()
        steps += 1
        count += len(targets)
        loss_sum += loss.detach().double() * len(targets)
        if not targets.is_floating_point():  # classes: count the right answers
            correct += (logits.detach().argmax(dim=1) == targets).sum()
        if on_batch is not None and time.monotonic() - last_report >= report_every_s:
            on_batch(float(loss.detach()), int(correct) / count, steps - reported)
            reported, last_report = steps, time.monotonic()
    if on_batch is not None and steps > reported:
        on_batch(float(loss.detach()), int(correct) / count, steps - reported)
    return TrainTotals(float(loss_sum), int(correct), count, steps)


def _clip(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    max_norm: float,
    scaler: torch.amp.GradScaler | None,
) -> None:
    if max_norm <= 0:
        return
    if scaler is not None:
        scaler.unscale_(optimizer)
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)


def predict_logits(
    model: nn.Module, batches: Iterable[Batch], settings: BatchSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32) and labels for every batch, in order, on the training device."""
    model.eval()
    logits, labels = [], []
    with torch.inference_mode():
        for x, y in batches:
            with settings.autocast():
                out = model(*eval_inputs(x, settings))
            logits.append(out.float())
            labels.append(eval_targets(y, settings))
    return torch.cat(logits), torch.cat(labels)


def evaluate_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    settings: BatchSettings,
    gather: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    target_fpr: float | None = None,
    metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None = None,
) -> EvalResult:
    """Loss (plain cross-entropy), accuracy and macro one-vs-rest AUC over ``batches``; with
    ``target_fpr`` (two classes) also the TPR of class 1 at that false-positive rate.

    Under DDP each process passes its shard and a ``gather`` that returns the whole set's logits
    and labels, so every process computes the same metrics. Other tasks (regression, denoising)
    pass their own ``metrics`` of all outputs and targets; the result then holds the outputs and
    targets as ``proba`` and ``labels``.
    """
    logits, labels = predict_logits(model, batches, settings)
    if gather is not None:
        logits, labels = gather(logits, labels)
    if metrics is not None:
        return EvalResult(metrics(logits, labels), logits.cpu().numpy(), labels.cpu().numpy())
    return epoch_metrics(logits, labels, target_fpr)


def denoise_epoch_metrics(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Validation metrics of a denoising epoch: ``loss`` (mean squared error) and ``rmse``, in
    the normalised units the network sees."""
    if not bool(torch.isfinite(outputs).all()):
        raise ValueError(
            "training diverged: the model gives non-finite outputs on the validation split; "
            "lower lr or set grad_clip_norm"
        )
    mse = float(F.mse_loss(outputs.double(), targets.double()))
    return {"loss": mse, "rmse": math.sqrt(mse)}


def epoch_metrics(
    logits: torch.Tensor, labels: torch.Tensor, target_fpr: float | None = None
) -> EvalResult:
    """The validation metrics of one epoch from all its logits and labels (see
    :func:`evaluate_epoch`); shared with :class:`darklens.lightning.LensClassifier`."""
    from darklens.evaluate.metrics import macro_auc_ovr, partial_auc, threshold_for_fpr

    if not bool(torch.isfinite(logits).all()):
        raise ValueError(
            "training diverged: the model gives non-finite outputs on the validation split; "
            "lower lr or set grad_clip_norm"
        )
    proba = torch.softmax(logits.double(), dim=1).cpu().numpy()
    y_true = labels.cpu().numpy()
    metrics = {
        "loss": float(F.cross_entropy(logits, labels)),
        "acc": float((logits.argmax(dim=1) == labels).double().mean()),
        # nan when only one class is present (a Lightning sanity check's first batches)
        "auc": float(macro_auc_ovr(y_true, proba)) if np.unique(y_true).size > 1 else math.nan,
    }
    if target_fpr is not None:
        has_both = 0 < int(y_true.sum()) < len(y_true)
        choice = threshold_for_fpr(y_true, proba[:, 1], target_fpr) if has_both else None
        metrics["tpr_at_fpr"] = choice.tpr if choice is not None else float("nan")
        metrics["pauc"] = partial_auc(y_true, proba[:, 1], PAUC_MAX_FPR) if has_both else math.nan
    return EvalResult(metrics, proba, y_true)
