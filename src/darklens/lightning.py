"""PyTorch Lightning for darklens (optional: ``pip install 'darklens[lightning]'``).

- :class:`LensDataModule` — train/val/test/predict DataLoaders over
  :class:`~darklens.data.torch_dataset.TorchLensDataset` for a dataset file or an in-memory
  dataset: raw images (plus extra inputs such as light curves) and labels, shuffled by a seeded
  generator.
- :class:`LensClassifier` — a LightningModule around any darklens model that trains as
  ``darklens train`` does, from one :class:`~darklens.train.config.TrainConfig`: the same
  preprocessing (normalisation, resizing, series scaling), batch augmentation drawn per epoch from
  ``(seed, epoch)``, loss, optimiser, warm-up/cosine schedule and validation metrics
  (``val_loss``, ``val_acc``, ``val_auc``; ``val_tpr_at_fpr`` and ``val_pauc`` for two
  classes).
  :meth:`LensClassifier.save_darklens_checkpoint` writes a darklens checkpoint that
  :class:`~darklens.predict.Predictor`, ``darklens evaluate`` and ``darklens predict`` read.

Lightning's ``Trainer`` decides what ``darklens train`` takes from other ``TrainConfig`` fields:
the number of epochs, the device, the precision, gradient clipping and early stopping (its
callbacks); the data module decides batch sizes, workers and balanced sampling.
``TrainConfig.schedule="plateau"`` is refused (use ``cosine`` or ``none``).

Examples:
    >>> import darklens, lightning.pytorch as pl
    >>> from darklens.lightning import LensClassifier, LensDataModule
    >>> data = darklens.simulate("model_ii", n_per_class=6, split=(0.5, 0.5, 0.0),
    ...                          overrides={"instrument.num_pix": 32})
    >>> dm = LensDataModule(data, batch_size=4, seed=0)
    >>> module = LensClassifier.for_data(dm, model="deeplense_cnn", lr=1e-3)
    >>> trainer = pl.Trainer(fast_dev_run=1, accelerator="cpu", logger=False,
    ...                      enable_progress_bar=False, enable_model_summary=False)
    >>> trainer.fit(module, datamodule=dm)
    >>> sorted(k for k in trainer.callback_metrics if k.startswith("val_"))
    ['val_acc', 'val_auc', 'val_loss']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from darklens._compat import import_torchvision
from darklens.config import ConfigError
from darklens.data.memory import open_dataset
from darklens.data.preprocessing import Preprocessing
from darklens.data.torch_dataset import Source, TorchLensDataset
from darklens.models import create_model, load_pretrained, model_entry, model_inputs
from darklens.runs import save_checkpoint
from darklens.train.config import TrainConfig
from darklens.train.data import open_split
from darklens.train.loop import (
    BatchSettings,
    EvalResult,
    augmented_inputs,
    epoch_metrics,
    eval_inputs,
)
from darklens.train.schedule import warmup_cosine_factor
from darklens.train.trainer import (
    build_loss,
    build_optimizer,
    class_weights,
    decision_threshold,
    derived_seed,
    model_image_size,
    model_spec_for,
    preprocessing_for,
    pretrained_weights_path,
)

import_torchvision()  # Lightning imports torchmetrics, which imports torchvision
try:
    import lightning.pytorch as pl
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        "darklens.lightning needs PyTorch Lightning: pip install 'darklens[lightning]'"
    ) from err

__all__ = ["LensClassifier", "LensDataModule"]

Inputs = tuple[torch.Tensor, ...]


class LensDataModule(pl.LightningDataModule):
    """DataLoaders over the splits of a darklens dataset (a file path or an in-memory dataset).

    Batches are ``(images, labels)``, or dicts (``image``, ``label``, ``index`` and each extra
    input) when the dataset has extra inputs; ``extras`` picks which (default: all of them).
    The training order comes from a generator seeded with ``seed``: the same seed, the same
    batches. With ``balanced_sampling`` each epoch draws its images with replacement so that
    every class is equally likely (as ``TrainConfig.balanced_sampling``). A trailing training
    batch of one image is dropped (batch norm cannot train on it).
    """

    def __init__(
        self,
        data: Source,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        extras: Sequence[str] | None = None,
        seed: int = 0,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test",
        balanced_sampling: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {batch_size}")
        self.data = data
        self.reader = open_dataset(data)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.num_workers = num_workers
        self.extras = tuple(self.reader.input_names if extras is None else extras)
        self.seed = seed
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.balanced_sampling = balanced_sampling
        self._datasets: dict[str, TorchLensDataset] = {}

    @property
    def class_names(self) -> list[str]:
        return list(self.reader.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.reader.image_shape)

    def dataset(self, stage: str) -> TorchLensDataset:
        """The dataset of ``train``, ``val`` or ``test`` (made on first use)."""
        if stage not in self._datasets:
            split = self.splits[stage]
            self._datasets[stage] = TorchLensDataset(self.data, split, extras=self.extras)
        return self._datasets[stage]

    def train_dataloader(self) -> DataLoader:
        data = self.dataset("train")
        generator = torch.Generator().manual_seed(self.seed)
        sampler = None
        if self.balanced_sampling:
            weights = 1.0 / np.bincount(data.labels)[data.labels]
            sampler = WeightedRandomSampler(weights.tolist(), len(data), generator=generator)
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=generator,
            num_workers=self.num_workers,
            drop_last=len(data) % self.batch_size == 1,
        )

    def val_dataloader(self) -> DataLoader:
        return self._ordered("val")

    def test_dataloader(self) -> DataLoader:
        return self._ordered("test")

    def predict_dataloader(self) -> DataLoader:
        return self._ordered("test")

    def _ordered(self, stage: str) -> DataLoader:
        return DataLoader(
            self.dataset(stage), batch_size=self.eval_batch_size, num_workers=self.num_workers
        )


class LensClassifier(pl.LightningModule):
    """A darklens model trained the darklens way under Lightning (see the module docstring).

    Build it with :meth:`for_data`, which reads the classes, image size, channel statistics and
    extra inputs from a :class:`LensDataModule`; the constructor takes what a checkpoint
    records (``preprocessing``, ``class_names``, the ``config``) and optional class weights.
    """

    def __init__(
        self,
        preprocessing: Preprocessing | Mapping[str, Any],
        class_names: Sequence[str],
        config: TrainConfig | Mapping[str, Any] | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(preprocessing, Mapping):
            preprocessing = Preprocessing.from_dict(preprocessing)
        if config is None or isinstance(config, Mapping):
            config = TrainConfig.from_dict(config or {})
        if config.task != "classify":
            raise ConfigError(
                f"LensClassifier classifies; train task={config.task} with darklens train"
            )
        if config.schedule == "plateau":
            raise ConfigError(
                "LensClassifier supports schedule cosine or none; for plateau use darklens "
                "train, or configure Lightning's ReduceLROnPlateau yourself"
            )
        self.preprocessing = preprocessing
        self.class_names = list(class_names)
        self.config = config
        weights = None if class_weights is None else [float(w) for w in class_weights]
        self.save_hyperparameters(
            {
                "preprocessing": preprocessing.to_dict(),
                "class_names": self.class_names,
                "config": config.to_dict(),
                "class_weights": weights,
            }
        )
        self.model_spec = model_spec_for(config, preprocessing, len(self.class_names))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)  # the same initial weights for the same seed
            self.model = create_model(self.model_spec["name"], **self.model_spec["kwargs"])
        self.loss_fn = build_loss(config, None if weights is None else torch.tensor(weights))
        self.val_result: EvalResult | None = None
        self._outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._generator: torch.Generator | None = None

    @classmethod
    def for_data(cls, data: LensDataModule, model: str = "default", **settings: Any):
        """A classifier for ``data``'s classes and images; ``settings`` are
        :class:`~darklens.train.config.TrainConfig` fields (``lr``, ``normalization``,
        ``augment``, ``class_weighting``, ``seed``, ``pretrained`` (a darklens run or a local
        weights file, loaded as ``darklens train --pretrained`` does), ...)."""
        config = TrainConfig(model=model, **settings)
        reader = data.reader
        extras = model_inputs(model)[1:]
        missing = [name for name in extras if name not in data.extras]
        if missing:
            raise ValueError(
                f"{model} takes the extra input(s) {missing}, which the data module does not "
                f"yield (its extras: {list(data.extras) or 'none'})"
            )
        img_size = model_image_size(config, reader.image_shape, "the data module")
        if config.balanced_sampling and not data.balanced_sampling:
            raise ConfigError(
                "balanced sampling is the data module's: pass LensDataModule(..., "
                "balanced_sampling=True)"
            )
        config = dataclasses.replace(config, img_size=img_size)
        train = open_split(reader, config.train_split, in_memory=False, extras=extras)
        preprocessing = preprocessing_for(config, reader, train, extras)
        weights = None
        if config.class_weighting == "balanced":
            weights = class_weights(train.labels, reader.class_names).tolist()
        module = cls(preprocessing, reader.class_names, config, weights)
        if config.pretrained:
            entry = model_entry(model)
            path = pretrained_weights_path(config.pretrained)
            load_pretrained(
                module.model, path, first_conv=entry.first_conv, classifier=entry.classifier
            )
        return module

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Logits for preprocessed inputs (images first, then the model's extra inputs)."""
        return self.model(*inputs)

    # -- steps -----------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        seed, epoch = self.config.seed, self.current_epoch
        torch.manual_seed(derived_seed(seed, epoch, self.global_rank, 0))  # dropout
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(derived_seed(seed, epoch, self.global_rank, 1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        inputs, labels = self._unpack(batch)
        if self._generator is None:
            self.on_train_epoch_start()
        assert self._generator is not None
        logits = self.model(*augmented_inputs(inputs, self._settings(), self._generator))
        loss = self.loss_fn(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        self.log("train_loss", loss, prog_bar=True, batch_size=len(labels))
        self.log("train_acc", accuracy, batch_size=len(labels))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._outputs = []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._outputs.append(self._eval_logits(batch))

    def on_validation_epoch_end(self) -> None:
        self.val_result = self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._outputs = []

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._outputs.append(self._eval_logits(batch))

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities of each image."""
        logits, _ = self._eval_logits(batch)
        return torch.softmax(logits, dim=1)

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model, self.config)
        total = int(self.trainer.estimated_stepping_batches)
        epochs = max(1, self.trainer.max_epochs or 1)
        warmup = self.config.warmup_epochs * max(1, total // epochs)
        cosine = self.config.schedule == "cosine"
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine_factor(step, total, warmup, cosine)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # -- checkpoints -----------------------------------------------------------------------------
    def save_darklens_checkpoint(self, stem: str | Path) -> Path:
        """Write ``stem.safetensors`` + ``stem.json`` (a darklens checkpoint: safetensors weights,
        preprocessing, classes, the training config, the last validation metrics and, for two
        classes, the decision threshold chosen on them); returns the JSON path."""
        meta: dict[str, Any] = {
            "model": self.model_spec,
            "preprocessing": self.preprocessing.to_dict(),
            "class_names": self.class_names,
            "train_config": self.config.to_dict(),
            "trainer": "lightning",
        }
        if self.val_result is not None:
            meta["val_metrics"] = dict(self.val_result.metrics)
            has_both = len(np.unique(self.val_result.labels)) == 2
            threshold = decision_threshold(self.val_result, self.config, self.class_names)
            if threshold is not None and has_both:
                meta["decision_threshold"] = threshold
        Path(stem).parent.mkdir(parents=True, exist_ok=True)
        return save_checkpoint(stem, self.model, meta)

    # -- helpers ---------------------------------------------------------------------------------
    def _settings(self) -> BatchSettings:
        return BatchSettings.from_preprocessing(
            self.preprocessing, self.device, self.config.augment, grad_clip_norm=0.0
        )

    def _unpack(self, batch: Any) -> tuple[Inputs, torch.Tensor]:
        """(images, *the model's extra inputs) and labels from a tuple or dict batch."""
        if isinstance(batch, Mapping):
            inputs = (batch["image"], *(batch[name] for name in self.preprocessing.extras))
            return inputs, batch["label"]
        if self.preprocessing.extras:
            raise ValueError(
                f"the model takes {list(self.preprocessing.extras)} besides the images, but the "
                "batches hold images and labels only"
            )
        images, labels = batch
        return (images,), labels

    def _eval_logits(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, labels = self._unpack(batch)
        return self.model(*eval_inputs(inputs, self._settings())).float(), labels

    def _log_metrics(self, stage: str) -> EvalResult | None:
        if not self._outputs:
            return None
        logits = torch.cat([out[0] for out in self._outputs])
        labels = torch.cat([out[1] for out in self._outputs])
        two_class = len(self.class_names) == 2
        result = epoch_metrics(logits, labels, self.config.target_fpr if two_class else None)
        for name, value in result.metrics.items():
            self.log(f"{stage}_{name}", value, prog_bar=name in ("acc", "auc"))
        self._outputs = []
        return result
