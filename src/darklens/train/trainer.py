"""One training recipe for any registered model on any darklens dataset.

:func:`train` turns a :class:`TrainConfig` into a run folder::

    config.yaml           every setting, resolved (image size, device, precision)
    best.safetensors/json checkpoint with the best validation macro AUC so far; for two-class
                          tasks its JSON holds the ``decision_threshold`` chosen on the
                          validation split for ``target_fpr`` (see :func:`decision_threshold`)
    last.safetensors/json checkpoint of the latest epoch
    last_state.*          resume state (model, optimiser, schedule, history)
    history.csv           per-epoch metrics (and TensorBoard scalars under tb/ when available)

A killed run continues with ``resume=True`` to the same result as an uninterrupted one: every
random choice of an epoch (shuffle, augmentation, dropout) is seeded from ``(seed, epoch, rank)``
rather than carried over from earlier epochs, and the learning rate is a function of the step.
Under ``torchrun`` the same function trains with DistributedDataParallel (see ``distributed``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from darklens.config import ConfigError
from darklens.data.description import describe_dataset
from darklens.data.h5 import LensDataset
from darklens.models import create_model, model_inputs
from darklens.models.pretrained import load_pretrained
from darklens.train import checkpoint as ckpt
from darklens.train.config import AUTO, TrainConfig, build_train_config
from darklens.train.data import (
    SplitData,
    batch_plan,
    epoch_order,
    open_split,
    shard,
    split_channel_stats,
)
from darklens.train.distributed import (
    DistContext,
    all_gather_rows,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
    init_distributed,
    shutdown,
)
from darklens.train.loop import (
    BatchSettings,
    EvalResult,
    FocalLoss,
    evaluate_epoch,
    train_one_epoch,
)
from darklens.train.reporting import EpochProgress, TensorBoardLog, write_history
from darklens.train.schedule import PlateauState, warmup_cosine_factor
from darklens.train.stacking import is_stack, train_stack

CONFIG_FILE = "config.yaml"
BEST, LAST, STATE = "best", "last", "last_state"
HISTORY_FILE = "history.csv"
_AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`; epochs are counted from 1."""

    run_dir: Path
    best_epoch: int
    best_val_auc: float
    epochs_completed: int
    stopped_early: bool
    history: list[dict[str, float]]

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / f"{BEST}.json"

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / f"{LAST}.json"


@dataclasses.dataclass
class RunProgress:
    """The mutable part of a run, stored as JSON in the resume state."""

    epoch: int = 0
    step: int = 0
    best_auc: float = -math.inf
    best_epoch: int = 0
    epochs_since_best: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    plateau: PlateauState = dataclasses.field(default_factory=PlateauState)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["best_auc"] = self.best_auc if math.isfinite(self.best_auc) else None
        out["plateau"] = self.plateau.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunProgress:
        fields = {f.name for f in dataclasses.fields(cls)} - {"plateau"}
        values = {k: v for k, v in data.items() if k in fields}
        values["history"] = [_nan_for_none(row) for row in values.get("history", [])]
        if values.get("best_auc") is None:
            values["best_auc"] = -math.inf
        return cls(**values, plateau=PlateauState.from_json(data["plateau"]))

    def record(self, val_auc: float, patience: int) -> bool:
        """Note an epoch's validation AUC; True if it is the best so far."""
        improved = self.best_epoch == 0 or (math.isfinite(val_auc) and val_auc > self.best_auc)
        if improved:
            self.best_auc = val_auc if math.isfinite(val_auc) else -math.inf
            self.best_epoch = self.epoch
            self.epochs_since_best = 0
        else:
            self.epochs_since_best += 1
        self.stopped_early = patience > 0 and self.epochs_since_best >= patience
        return improved


def _nan_for_none(row: dict[str, Any]) -> dict[str, float]:
    return {k: math.nan if v is None else v for k, v in row.items()}


# -- resolution of settings ----------------------------------------------------------------------
def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """The torch device for ``auto``/``cpu``/``cuda``/``cuda:N`` (``cuda`` → this rank's GPU)."""
    if requested == AUTO:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but no CUDA GPU is visible; use cpu")
        return torch.device("cuda", local_rank) if requested == "cuda" else torch.device(requested)
    return torch.device("cpu")


def resolve_config(config: TrainConfig, dataset: LensDataset, device: torch.device) -> TrainConfig:
    """Fill in what ``auto``/unset settings mean for this dataset and device."""
    _, height, width = dataset.image_shape
    img_size = config.img_size
    if img_size is None:
        if height != width:
            raise ConfigError(
                f"{dataset.path} has non-square {height}x{width} images; set img_size to train on "
                "square resized images"
            )
        img_size = height
    on_cuda = device.type == "cuda"
    return dataclasses.replace(
        config,
        data=str(Path(dataset.path).resolve()),
        img_size=img_size,
        device=device.type,
        amp=on_cuda if config.amp == AUTO else config.amp,
        amp_dtype=("fp16" if on_cuda else "bf16") if config.amp_dtype == AUTO else config.amp_dtype,
        channels_last=on_cuda if config.channels_last == AUTO else config.channels_last,
    )


def derived_seed(*keys: int) -> int:
    """A 63-bit seed that depends only on ``keys`` (e.g. seed, epoch, rank, purpose)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(2, dtype=np.uint64)[0] >> 1)


def class_weights(labels: np.ndarray, class_names: list[str]) -> torch.Tensor:
    """Balanced weights ``w_c = N / (n_classes * N_c)`` from the training labels."""
    counts = np.bincount(labels, minlength=len(class_names))
    missing = [name for name, n in zip(class_names, counts, strict=True) if n == 0]
    if missing:
        raise ValueError(
            f"class(es) {', '.join(missing)} have no training images; balanced class weighting "
            "needs every class (set class_weighting=none)"
        )
    return torch.tensor(len(labels) / (len(class_names) * counts), dtype=torch.float32)


def build_loss(config: TrainConfig, weights: torch.Tensor | None) -> nn.Module:
    """Cross-entropy (with label smoothing) or focal loss, weighted by ``weights`` when given."""
    if config.loss == "focal":
        return FocalLoss(config.focal_gamma, weights)
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)


def decision_threshold(
    evaluation: EvalResult, config: TrainConfig, class_names: list[str]
) -> dict[str, Any] | None:
    """For two classes, the lens-score threshold meeting ``config.target_fpr`` on the validation
    predictions (see :func:`darklens.evaluate.metrics.threshold_for_fpr`); None otherwise."""
    if len(class_names) != 2:
        return None
    from darklens.evaluate.metrics import threshold_for_fpr

    choice = threshold_for_fpr(evaluation.labels, evaluation.proba[:, 1], config.target_fpr)
    return {
        **choice.to_dict(),
        "positive_class": class_names[1],
        "split": config.val_split,
        "rule": f"predict {class_names[1]} when p_{class_names[1]} > value",
    }


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or Adam; weight decay only on weight matrices and kernels (not biases or norms)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer_cls([g for g in groups if g["params"]], lr=config.lr)


def lr_schedule(
    config: TrainConfig, steps_per_epoch: int, plateau: PlateauState
) -> Callable[[int], float]:
    """Learning rate of each optimiser step: warm-up, then cosine / plateau scaling / constant."""
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch
    cosine = config.schedule == "cosine"

    def lr_at(step: int) -> float:
        return config.lr * warmup_cosine_factor(step, total, warmup, cosine) * plateau.scale

    return lr_at


# -- the run -------------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    data_path: str | Path | None = None,
    out_dir: str | Path = "runs/run",
    *,
    resume: bool = False,
    quiet: bool = False,
    should_stop: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Train ``config.model`` on the dataset (``data_path`` or ``config.data``) into ``out_dir``.

    ``should_stop`` is called with each finished epoch's history row; returning True ends training
    there (the run stays resumable, and the schedule keeps its full length), e.g. for time budgets.

    With ``resume=True`` continue the run in ``out_dir`` from its last completed epoch; settings
    that would change the results must then match the run's (``epochs`` may grow).
    """
    if data_path is not None:
        config = dataclasses.replace(config, data=str(data_path))
    if not config.data:
        raise ConfigError("no dataset given: pass --data FILE.h5 or set data in the config")
    run_dir = Path(out_dir)
    if is_stack(config.model):  # members trained by this recipe, then an SVM on top
        return train_stack(config, run_dir, resume=resume, quiet=quiet, should_stop=should_stop)
    _check_run_dir(run_dir, resume)
    ctx = init_distributed(use_cuda=_wants_cuda(config.device))
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _run(config, run_dir, resume, quiet, ctx, should_stop)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        shutdown(ctx)


def pretrained_weights_path(path: str | Path) -> Path:
    """The weights file for ``--pretrained``: a file, a darklens run folder or checkpoint JSON."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{BEST}{ckpt.WEIGHTS_SUFFIX}"
    elif path.suffix == ".json":
        path = path.with_suffix(ckpt.WEIGHTS_SUFFIX)
    if not path.is_file():
        raise FileNotFoundError(f"no pretrained weights at {path}")
    return path


def _wants_cuda(device: str) -> bool:
    return device.startswith("cuda") or (device == AUTO and torch.cuda.is_available())


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    has_state = (run_dir / f"{STATE}{ckpt.WEIGHTS_SUFFIX}").is_file()
    if resume and not has_state:
        raise FileNotFoundError(
            f"nothing to resume in {run_dir} (no {STATE}{ckpt.WEIGHTS_SUFFIX}); "
            "start it without --resume"
        )
    if not resume and (has_state or (run_dir / f"{BEST}.json").is_file()):
        raise FileExistsError(
            f"{run_dir} already holds a training run; continue it with --resume or choose "
            "another --out"
        )


def _run(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    quiet: bool,
    ctx: DistContext,
    should_stop: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    device = resolve_device(config.device, ctx.local_rank)
    with LensDataset(config.data) as dataset:
        config = resolve_config(config, dataset, device)
        saved = ckpt.load_train_state(run_dir / STATE) if resume else None
        if saved is not None:
            _check_resumable(config, dataset, saved[2], run_dir)
        extras = model_inputs(config.model)[1:]
        train_data, val_data = _open_splits(config, dataset, device, extras)
        if saved is not None:
            preprocessing = saved[2]["preprocessing"]
        else:
            preprocessing = _preprocessing(config, dataset, train_data, extras)
        settings = _batch_settings(config, preprocessing, device)
        model_spec = model_spec_for(config, dataset, extras)
        torch.manual_seed(config.seed)
        model = create_model(model_spec["name"], **model_spec["kwargs"])
        if saved is not None:
            model.load_state_dict(saved[0])
        elif config.pretrained:
            loaded = load_pretrained(model, pretrained_weights_path(config.pretrained))
            if ctx.is_main and not quiet:
                print(loaded.summary())
        memory_format = torch.channels_last if settings.channels_last else torch.preserve_format
        model = model.to(device=device, memory_format=memory_format)
        optimizer = build_optimizer(model, config)
        scaler = torch.amp.GradScaler(device.type) if settings.amp_dtype == torch.float16 else None
        progress = RunProgress()
        if saved is not None:
            optimizer.load_state_dict(saved[1])
            progress = RunProgress.from_json(saved[2]["progress"])
            if scaler is not None and saved[2].get("scaler"):
                scaler.load_state_dict(saved[2]["scaler"])
        weights = None
        if config.class_weighting == "balanced":
            weights = class_weights(train_data.labels, dataset.class_names).to(device)
        loss_fn = build_loss(config, weights)
        runner = _EpochRunner(
            config,
            ctx,
            train_data,
            val_data,
            settings,
            _wrap_ddp(model, device, ctx),
            model,
            optimizer,
            loss_fn,
            scaler,
        )
        base_meta = {
            "model": model_spec,
            "preprocessing": preprocessing,
            "class_names": list(dataset.class_names),
            "train_config": config.to_dict(),
            "input_description": describe_dataset(dataset.manifest, dataset.image_shape).to_dict(),
        }
        if ctx.is_main:  # files appear only once every setting has proven usable
            run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale_temporaries(run_dir)
            ckpt.atomic_write_text(run_dir / CONFIG_FILE, config.to_yaml())
        barrier(ctx)
        with EpochProgress(config.epochs, enabled=ctx.is_main and not quiet) as bar:
            if saved is not None:
                bar.note(f"resuming {run_dir} after epoch {progress.epoch}")
            _train_epochs(runner, progress, run_dir, base_meta, bar, should_stop)
    barrier(ctx)
    return TrainResult(
        run_dir=run_dir,
        best_epoch=progress.best_epoch,
        best_val_auc=progress.best_auc if math.isfinite(progress.best_auc) else math.nan,
        epochs_completed=progress.epoch,
        stopped_early=progress.stopped_early,
        history=progress.history,
    )


def _train_epochs(
    runner: _EpochRunner,
    progress: RunProgress,
    run_dir: Path,
    base_meta: dict[str, Any],
    bar: EpochProgress,
    should_stop: Callable[[dict[str, float]], bool] | None = None,
) -> None:
    """Epochs until ``config.epochs``, early stopping or ``should_stop``; rank 0 saves each one."""
    config, is_main = runner.config, runner.ctx.is_main
    tensorboard = TensorBoardLog(run_dir / "tb" if is_main else None)
    try:
        while progress.epoch < config.epochs and not progress.stopped_early:
            row, evaluation = runner.run(progress, bar)
            is_best = progress.record(evaluation.macro_auc, config.early_stopping_patience)
            progress.history.append(row)
            if is_main:
                _save_epoch(run_dir, runner, progress, base_meta, row, is_best, evaluation)
                tensorboard.epoch(row)
            bar.end_epoch(row, is_best)
            if progress.stopped_early:
                bar.note(f"early stop: no val AUC gain for {progress.epochs_since_best} epochs")
            elif should_stop is not None and should_stop(row):
                bar.note(f"stopped after epoch {progress.epoch} on request")
                break
    finally:
        tensorboard.close()


def model_spec_for(
    config: TrainConfig, dataset: LensDataset, extras: tuple[str, ...]
) -> dict[str, Any]:
    """What a checkpoint stores to rebuild the model: its name and constructor arguments."""
    kwargs = {
        **config.model_kwargs,
        "in_chans": dataset.image_shape[0],
        "num_classes": len(dataset.class_names),
        "img_size": config.img_size,
    }
    if extras:
        kwargs["input_shapes"] = {name: list(dataset.input_shape(name)) for name in extras}
    return {"name": config.model, "kwargs": kwargs}


def _open_splits(
    config: TrainConfig, dataset: LensDataset, device: torch.device, extras: tuple[str, ...] = ()
) -> tuple[SplitData, SplitData]:
    pin = device.type == "cuda"
    train_data, val_data = (
        open_split(dataset, split, config.in_memory, config.num_workers, pin, extras)
        for split in (config.train_split, config.val_split)
    )
    if len(np.unique(val_data.labels)) < 2:
        raise ValueError(
            f"split {config.val_split!r} of {dataset.path} holds only one class; the validation "
            "macro AUC that selects checkpoints needs at least two"
        )
    return train_data, val_data


def _batch_settings(
    config: TrainConfig, preprocessing: dict[str, Any], device: torch.device
) -> BatchSettings:
    return BatchSettings(
        device=device,
        img_size=preprocessing["img_size"],
        normalization=preprocessing["normalization"],
        mean=preprocessing["mean"],
        std=preprocessing["std"],
        augment=config.augment,
        amp_dtype=_AMP_DTYPES[config.amp_dtype] if config.amp else None,
        channels_last=bool(config.channels_last),
        grad_clip_norm=config.grad_clip_norm,
        series_normalization=tuple(preprocessing.get("series_normalization", ())),
    )


def _check_resumable(
    config: TrainConfig, dataset: LensDataset, state: dict[str, Any], run_dir: Path
) -> None:
    saved_config = TrainConfig.from_dict(state["train_config"])
    conflicts = config.resume_conflicts(saved_config)
    if conflicts:
        raise ConfigError(
            f"cannot resume {run_dir} with different settings: {'; '.join(conflicts)}. "
            "Resume with the run's settings (its config.yaml) or start a new run folder"
        )
    if list(state["class_names"]) != list(dataset.class_names):
        raise ConfigError(
            f"{dataset.path} has classes {dataset.class_names}, but the run in {run_dir} was "
            f"trained on {state['class_names']}"
        )


def _preprocessing(
    config: TrainConfig, dataset: LensDataset, train_data: SplitData, extras: tuple[str, ...] = ()
) -> dict[str, Any]:
    mean = std = None
    if config.normalization == "dataset":
        mean, std = split_channel_stats(train_data)
    out: dict[str, Any] = {
        "normalization": config.normalization,
        "mean": mean,
        "std": std,
        "img_size": config.img_size,
        "in_chans": dataset.image_shape[0],
        "data_image_shape": list(dataset.image_shape[1:]),
    }
    if extras:  # series [T, C] are scaled per example; other extra inputs pass unchanged
        shapes = {name: list(dataset.input_shape(name)) for name in extras}
        out["inputs"] = ["images", *extras]
        out["input_shapes"] = shapes
        out["series_normalization"] = [
            config.series_normalization if len(shapes[name]) == 2 else "none" for name in extras
        ]
    return out


def _wrap_ddp(model: nn.Module, device: torch.device, ctx: DistContext) -> nn.Module:
    if not ctx.active:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


@dataclasses.dataclass
class _EpochRunner:
    """Runs one epoch (train + validate) from a :class:`RunProgress`; same on every rank."""

    config: TrainConfig
    ctx: DistContext
    train_data: SplitData
    val_data: SplitData
    settings: BatchSettings
    train_model: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    scaler: torch.amp.GradScaler | None

    def run(self, progress: RunProgress, bar: EpochProgress) -> tuple[dict[str, float], EvalResult]:
        config, ctx, epoch = self.config, self.ctx, progress.epoch
        started = time.perf_counter()
        order = epoch_order(self.train_data.labels, config.seed, epoch, config.balanced_sampling)
        plan = batch_plan(shard(order, ctx.rank, ctx.world_size), config.batch_size, True)
        lr_at = lr_schedule(config, len(plan), progress.plateau)
        torch.manual_seed(derived_seed(config.seed, epoch, ctx.rank, 0))
        generator = torch.Generator(device=self.settings.device)
        generator.manual_seed(derived_seed(config.seed, epoch, ctx.rank, 1))
        bar.start_epoch(epoch, len(plan))
        totals = train_one_epoch(
            self.train_model,
            self.train_data.batches(plan),
            self.optimizer,
            self.loss_fn,
            self.settings,
            generator,
            lr_at,
            first_step=progress.step,
            scaler=self.scaler,
            on_batch=bar.batch if bar.wants_batches else None,
        )
        train_seconds = time.perf_counter() - started
        sums = torch.tensor(
            [totals.loss_sum, totals.correct, totals.count],
            dtype=torch.float64,
            device=self.settings.device,
        )
        loss_sum, correct, count = all_reduce_sum(sums, ctx).tolist()
        evaluation = self._evaluate()
        first_lr = lr_at(progress.step)
        progress.step += totals.steps
        progress.epoch += 1
        if config.schedule == "plateau" and progress.epoch > config.warmup_epochs:
            progress.plateau.update(
                evaluation.macro_auc, config.plateau_patience, config.plateau_factor
            )
        row = {
            "epoch": progress.epoch,
            "train_loss": loss_sum / count,
            "train_acc": correct / count,
            "val_loss": evaluation.loss,
            "val_acc": evaluation.accuracy,
            "val_auc": evaluation.macro_auc,
            "lr": first_lr,
            "seconds": time.perf_counter() - started,
            "images_per_s": count / max(train_seconds, 1e-9),
        }
        return row, evaluation

    def _evaluate(self) -> EvalResult:
        ctx, n_val = self.ctx, len(self.val_data)
        positions = shard(np.arange(n_val), ctx.rank, ctx.world_size)
        plan = batch_plan(positions, self.config.eval_batch_size or 2 * self.config.batch_size)
        device = self.settings.device

        def gather(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            where = all_gather_rows(torch.from_numpy(positions).to(device), ctx)
            all_logits, all_labels = all_gather_rows(logits, ctx), all_gather_rows(labels, ctx)
            ordered = torch.empty((n_val, logits.shape[1]), dtype=logits.dtype, device=device)
            ordered_labels = torch.empty(n_val, dtype=labels.dtype, device=device)
            ordered[where], ordered_labels[where] = all_logits, all_labels
            return ordered, ordered_labels

        broadcast_buffers(self.model, ctx)
        return evaluate_epoch(
            self.model,
            self.val_data.batches(plan),
            self.settings,
            gather if ctx.active else None,
        )


def _save_epoch(
    run_dir: Path,
    runner: _EpochRunner,
    progress: RunProgress,
    base_meta: dict[str, Any],
    row: dict[str, float],
    is_best: bool,
    evaluation: EvalResult,
) -> None:
    """Write the epoch's files; the resume state goes last, so it never runs ahead of the rest."""
    meta = {
        **base_meta,
        "epoch": progress.epoch,
        "val_metrics": {"loss": row["val_loss"], "acc": row["val_acc"], "auc": row["val_auc"]},
    }
    threshold = decision_threshold(evaluation, runner.config, base_meta["class_names"])
    if threshold is not None:
        meta["decision_threshold"] = threshold
    if is_best:
        ckpt.save_checkpoint(run_dir / BEST, runner.model, meta)
    ckpt.save_checkpoint(run_dir / LAST, runner.model, meta)
    write_history(run_dir / HISTORY_FILE, progress.history)
    state = {
        "train_config": base_meta["train_config"],
        "class_names": base_meta["class_names"],
        "preprocessing": base_meta["preprocessing"],
        "progress": progress.to_json(),
        "scaler": runner.scaler.state_dict() if runner.scaler is not None else None,
    }
    ckpt.save_train_state(run_dir / STATE, runner.model, runner.optimizer, state)


def train_from_cli(
    out_dir: str | Path,
    config_file: str | Path | None,
    options: dict[str, Any],
    assignments: dict[str, Any],
    *,
    resume: bool = False,
    quiet: bool = False,
) -> TrainResult:
    """Layer the CLI's settings (over the run's own ``config.yaml`` when resuming) and train."""
    saved = Path(out_dir) / CONFIG_FILE
    base = TrainConfig.from_yaml(saved) if resume and saved.is_file() else None
    config = build_train_config(config_file, options, assignments, base)
    return train(config, None, out_dir, resume=resume, quiet=quiet)
