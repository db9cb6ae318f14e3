"""Unsupervised domain adaptation: train on labelled source images so that the model also works on
unlabelled target images (``TrainConfig.adapt_to`` + ``adaptation``).

- ``adabn`` (Li et al. 2016, "Revisiting Batch Normalization for Practical Domain Adaptation"):
  training is unchanged; every checkpoint written is a copy whose BatchNorm running statistics
  are re-estimated on the target images (:func:`adapt_batch_norm`). Only BatchNorm buffers change.
- ``dann`` (Ganin et al. 2016, "Domain-Adversarial Training of Neural Networks", JMLR 17): a
  domain classifier on the features that enter the model's classifier head learns to tell source
  from target, through a gradient reversal layer (:func:`grad_reverse`), so the features are
  pushed to make the domains indistinguishable. The reversal weight follows their schedule,
  λ_p = w (2 / (1 + exp(−10 p)) − 1) with p the fraction of training done; the domain loss is
  binary cross-entropy on source (0) and target (1) batches of the same size.

Target images pass through the same resizing, augmentation and normalisation as the source's.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darklens.train.config import ADAPTATIONS

__all__ = ["ADAPTATIONS", "Adapter", "DomainAdversarial", "adapt_batch_norm", "build_adapter",
           "grad_reverse"]  # fmt: skip

Images = torch.Tensor


class _GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the gradient by −λ backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def grad_reverse(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """The gradient reversal layer: ``x`` unchanged forward, gradient × (−``weight``) backward."""
    return _GradientReversal.apply(x, weight)


def dann_weight(progress: float, max_weight: float) -> float:
    """Ganin et al.'s schedule of the reversal weight: max_weight (2 / (1 + e^(−10 p)) − 1)."""
    p = min(max(progress, 0.0), 1.0)
    return max_weight * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def adapt_batch_norm(model: nn.Module, batches: Iterator[Images]) -> nn.Module:
    """AdaBN: a copy of ``model`` whose BatchNorm running statistics are those of ``batches``
    (already preprocessed target images), as cumulative averages over all of them. Parameters
    and every other buffer stay as they were; ``model`` itself is not changed."""
    adapted = copy.deepcopy(model)
    layers = batch_norm_layers(adapted)
    if not layers:
        raise ValueError("adaptation=adabn needs a model with BatchNorm layers")
    adapted.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average: every target image counts the same
        layer.train()
    seen = 0
    with torch.no_grad():
        for x in batches:
            adapted(x)
            seen += len(x)
    if seen < 2:
        raise ValueError("adaptation=adabn needs at least 2 target images")
    for layer, original in zip(layers, batch_norm_layers(model), strict=True):
        layer.momentum = original.momentum
    return adapted.eval()


class DomainAdversarial(nn.Module):
    """A model with a domain classifier on the features entering its classifier head.

    ``forward`` is the model's own (the class logits); it also keeps the features that reached
    ``classifier`` (a module path, e.g. ``fc``) for :meth:`domain_logits`. Saved training states
    hold both parts (``model.*`` and ``domain_head.*``); checkpoints hold the model alone.
    """

    def __init__(self, model: nn.Module, classifier: str, n_features: int, hidden: int) -> None:
        super().__init__()
        self.model = model
        self.domain_head = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )
        self.features: torch.Tensor | None = None
        model.get_submodule(classifier).register_forward_pre_hook(self._keep_features)

    def _keep_features(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.features = inputs[0].flatten(1)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(*inputs)

    def domain_logits(self, features: torch.Tensor, weight: float) -> torch.Tensor:
        """Domain logits [N] of features, through the gradient reversal layer of ``weight``."""
        return self.domain_head(grad_reverse(features, weight)).squeeze(1)


def feature_count(model: nn.Module, classifier: str, example: torch.Tensor) -> int:
    """Width of the features entering ``classifier``, found by one forward pass in eval mode."""
    seen: list[int] = []
    handle = model.get_submodule(classifier).register_forward_pre_hook(
        lambda _m, inputs: seen.append(inputs[0].flatten(1).shape[1])
    )
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        handle.remove()
        model.train(was_training)
    return seen[0]


class DANNLoss:
    """The domain loss of one training epoch: called after each step's class loss with the
    step index, it runs the model on a target batch and returns BCE(source → 0, target → 1)
    of the reversed features (mean of the two domains). Keeps sums for the epoch's history."""

    def __init__(
        self,
        wrapper: DomainAdversarial,
        target_batches: Iterator[Images],
        total_steps: int,
        max_weight: float,
    ) -> None:
        self.wrapper = wrapper
        self.target_batches = target_batches
        self.total_steps = max(total_steps, 1)
        self.max_weight = max_weight
        self.loss_sum = 0.0
        self.correct = 0
        self.count = 0

    def __call__(self, step: int) -> torch.Tensor:
        source = self.wrapper.features
        if source is None:
            raise RuntimeError("the model's classifier head saw no features")
        self.wrapper(next(self.target_batches))
        target = self.wrapper.features
        features = torch.cat([source, target])
        labels = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(features.device)
        weight = dann_weight(step / self.total_steps, self.max_weight)
        logits = self.wrapper.domain_logits(features, weight).float()
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.loss_sum += float(loss.detach()) * len(labels)
        self.correct += int(((logits.detach() > 0).float() == labels).sum())
        self.count += len(labels)
        return loss

    def metrics(self) -> dict[str, float]:
        """The epoch's mean domain loss and domain accuracy (0.5 = domains indistinguishable)."""
        n = max(self.count, 1)
        return {"train_domain_loss": self.loss_sum / n, "train_domain_acc": self.correct / n}


def cycle_batches(
    make_epoch: Callable[[int], Iterator[Images]], first_round: int = 0
) -> Iterator[Images]:
    """Target batches without end: round r is ``make_epoch(r)``, rounds following each other."""
    round_index = first_round
    while True:
        empty = True
        for batch in make_epoch(round_index):
            empty = False
            yield batch
        if empty:
            raise ValueError("the target dataset gave no batches")
        round_index += 1


def target_order(n_images: int, seed: int, epoch: int, round_index: int) -> np.ndarray:
    """Order of the target images in one round of an epoch (depends on these keys only)."""
    return np.random.default_rng([seed, epoch, round_index, 0xADA]).permutation(n_images)


class Adapter:
    """What the trainer does to adapt a run to ``config.adapt_to`` (built by :func:`build_adapter`).

    The target images are held in memory. ``state_module`` is what the resume state saves (the
    model with its domain classifier for DANN); ``epoch_loss`` gives the DANN loss of an epoch;
    ``for_checkpoint`` the model a checkpoint stores (AdaBN: BatchNorm statistics re-estimated on
    the target); ``meta`` what checkpoints record about the adaptation.
    """

    def __init__(
        self,
        method: str,
        target_path: str,
        target_images: torch.Tensor,
        settings: Any,
        seed: int,
        batch_size: int,
        state_module: nn.Module,
        max_weight: float,
    ) -> None:
        self.method = method
        self.target_images = target_images
        self.settings = settings
        self.seed = seed
        self.batch_size = batch_size
        self.state_module = state_module
        self.max_weight = max_weight
        self.meta = {"method": method, "target": target_path, "n_target_images": len(target_images)}

    def _batches(self, epoch: int, round_index: int, preprocess: Callable) -> Iterator[Images]:
        order = target_order(len(self.target_images), self.seed, epoch, round_index)
        order = torch.from_numpy(order)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            if len(rows) > 1:  # BatchNorm cannot train on one image
                yield preprocess(self.target_images[rows])

    def epoch_loss(self, epoch: int, total_steps: int) -> DANNLoss | None:
        """The DANN loss of one epoch (None for AdaBN), with target batches augmented as the
        source's by a generator seeded from (seed, epoch)."""
        if self.method != "dann":
            return None
        from darklens.train.loop import augmented_inputs

        generator = torch.Generator(device=self.settings.device)
        key = np.random.SeedSequence([self.seed, epoch, 0xDA]).generate_state(1)[0]
        generator.manual_seed(int(key))

        def preprocess(x: torch.Tensor) -> torch.Tensor:
            return augmented_inputs((x,), self.settings, generator)[0]

        batches = cycle_batches(lambda r: self._batches(epoch, r, preprocess))
        return DANNLoss(self.state_module, batches, total_steps, self.max_weight)

    def for_checkpoint(self, model: nn.Module) -> nn.Module:
        """The model a checkpoint stores: AdaBN's adapted copy, else ``model`` itself."""
        if self.method != "adabn":
            return model
        from darklens.train.loop import eval_inputs

        def preprocess(x: torch.Tensor) -> torch.Tensor:
            return eval_inputs((x,), self.settings)[0]

        return adapt_batch_norm(model, self._batches(0, 0, preprocess))


def build_adapter(
    config: Any, source_channels: int, model: nn.Module, settings: Any, classifier: str | None
) -> Adapter | None:
    """The run's :class:`Adapter` (None without adaptation): reads the target images and, for
    DANN, puts a domain classifier on the features entering ``classifier``."""
    from darklens.data.h5 import LensDataset

    if config.adaptation == "none":
        return None
    with LensDataset(config.adapt_to) as target:
        if target.image_shape[0] != source_channels:
            raise ValueError(
                f"{config.adapt_to} has {target.image_shape[0]}-channel images but the training "
                f"data has {source_channels}: adaptation needs images like the source's"
            )
        if len(target) < 2:
            raise ValueError(f"{config.adapt_to} holds {len(target)} image(s); adaptation needs 2+")
        images = torch.from_numpy(target.images())
    state_module = model
    if config.adaptation == "dann":
        if classifier is None:
            raise ValueError(
                f"adaptation=dann needs to know {config.model}'s classifier head (its registry "
                "entry names none); use adaptation=adabn"
            )
        example = settings.preprocess(images[:2].float())
        n_features = feature_count(model, classifier, example.to(settings.device))
        state_module = DomainAdversarial(model, classifier, n_features, config.dann_hidden)
    return Adapter(
        config.adaptation, str(config.adapt_to), images, settings, config.seed,
        config.batch_size, state_module.to(settings.device), config.dann_weight,
    )  # fmt: skip
