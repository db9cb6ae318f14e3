"""One training recipe for any registered model trained by backpropagation.

:func:`train` turns a :class:`TrainConfig` into a run folder (layout in :mod:`darklens.runs`):
``best`` is the checkpoint with the best validation ``monitor`` so far (for two-class tasks its
JSON also holds the ``decision_threshold`` chosen on the validation split for ``target_fpr``, see
:func:`decision_threshold`), ``last`` the latest epoch's, ``last_state`` the resume state.
What happens around the epochs (history.csv, TensorBoard, progress bars) is done by callbacks
(:mod:`darklens.train.callbacks`). Stacked models are fitted one level up, by
:mod:`darklens.recipes`.

A killed run continues with ``resume=True`` to the same result as an uninterrupted one: every
random choice of an epoch (shuffle, augmentation, dropout) is seeded from ``(seed, epoch, rank)``
rather than carried over from earlier epochs, and the learning rate is a function of the step.
Under ``torchrun`` the same function trains with DistributedDataParallel (see ``distributed``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from darklens import runs as ckpt
from darklens.config import ConfigError
from darklens.data.description import describe_dataset
from darklens.data.h5 import LensDataset
from darklens.data.preprocessing import Preprocessing
from darklens.device import resolve_device, wants_cuda
from darklens.models import create_model, model_entry, model_fit, model_inputs
from darklens.models.pretrained import load_pretrained
from darklens.runs import BEST, CONFIG_FILE, HISTORY_FILE, LAST, STATE, TENSORBOARD_DIR
from darklens.train.adaptation import Adapter, build_adapter
from darklens.train.callbacks import Callback, CallbackList, HistoryCSV, TensorBoardLog
from darklens.train.config import AUTO, TrainConfig, monitor_is_higher_better
from darklens.train.data import (
    CleanImages,
    SplitData,
    TableTargets,
    TargetReader,
    batch_plan,
    curriculum_fraction,
    curriculum_order,
    curriculum_quantiles,
    epoch_order,
    on_device_if_it_fits,
    open_split,
    shard,
    split_channel_stats,
    split_noise_sigma,
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
    denoise_epoch_metrics,
    evaluate_epoch,
    train_one_epoch,
)
from darklens.train.onthefly import SimulatedSplit, eval_set_path, prepare_eval_set
from darklens.train.schedule import PlateauState, warmup_cosine_factor
from darklens.train.targets import (
    RegressionLoss,
    TargetScaling,
    fit_scaling,
    regression_epoch_metrics,
    target_table,
)

_AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`; epochs are counted from 1. ``best_value`` is the best epoch's
    ``monitor`` (a validation metric, see :class:`TrainConfig`)."""

    run_dir: Path
    best_epoch: int
    best_val_auc: float
    epochs_completed: int
    stopped_early: bool
    history: list[dict[str, float]]
    monitor: str = "val_auc"
    best_value: float = math.nan

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / f"{BEST}.json"

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / f"{LAST}.json"


@dataclasses.dataclass
class RunProgress:
    """The mutable part of a run, stored as JSON in the resume state.

    ``best_score`` is the best monitored value signed so that higher is better (a loss enters
    negated); states written before ``monitor`` existed stored the val AUC as ``best_auc``.
    """

    epoch: int = 0
    step: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    epochs_since_best: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    plateau: PlateauState = dataclasses.field(default_factory=PlateauState)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["best_score"] = self.best_score if math.isfinite(self.best_score) else None
        out["plateau"] = self.plateau.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunProgress:
        data = dict(data)
        if "best_auc" in data:  # a state from before monitor existed: the val AUC was monitored
            data["best_score"] = data.pop("best_auc")
        fields = {f.name for f in dataclasses.fields(cls)} - {"plateau"}
        values = {k: v for k, v in data.items() if k in fields}
        values["history"] = [_nan_for_none(row) for row in values.get("history", [])]
        if values.get("best_score") is None:
            values["best_score"] = -math.inf
        return cls(**values, plateau=PlateauState.from_json(data["plateau"]))

    def record(self, score: float, patience: int) -> bool:
        """Note an epoch's monitored score (higher is better); True if it is the best so far."""
        improved = self.best_epoch == 0 or (math.isfinite(score) and score > self.best_score)
        if improved:
            self.best_score = score if math.isfinite(score) else -math.inf
            self.best_epoch = self.epoch
            self.epochs_since_best = 0
        else:
            self.epochs_since_best += 1
        self.stopped_early = patience > 0 and self.epochs_since_best >= patience
        return improved


def _nan_for_none(row: dict[str, Any]) -> dict[str, float]:
    return {k: math.nan if v is None else v for k, v in row.items()}


# -- resolution of settings ----------------------------------------------------------------------
def model_image_size(config: TrainConfig, image_shape: Sequence[int], where: str) -> int:
    """The side of the square images the model takes: ``img_size``, else the crop, else the
    images' own (square) size; a crop larger than the images is refused."""
    height, width = image_shape[-2:]
    if config.crop is not None and config.crop > min(height, width):
        raise ConfigError(f"crop={config.crop} is larger than {where}'s {height}x{width} images")
    img_size = config.img_size or config.crop
    if img_size is None:
        if height != width:
            raise ConfigError(
                f"{where} has non-square {height}x{width} images; set img_size to train on "
                "square resized images (or crop to train on their centre)"
            )
        img_size = height
    return img_size


def resolve_config(config: TrainConfig, dataset: LensDataset, device: torch.device) -> TrainConfig:
    """Fill in what ``auto``/unset settings mean for this dataset and device."""
    img_size = model_image_size(config, dataset.image_shape, str(dataset.path))
    on_cuda = device.type == "cuda"
    return dataclasses.replace(
        config,
        data="" if config.simulate.preset else str(Path(dataset.path).resolve()),
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


def build_loss(config: TrainConfig, weights: torch.Tensor | None, n_targets: int = 0) -> nn.Module:
    """Cross-entropy (with label smoothing) or focal loss, weighted by ``weights`` when given;
    for regression and denoising the config's loss over ``n_targets`` targets."""
    if config.task != "classify":
        return RegressionLoss(config.loss, n_targets)
    if config.loss == "focal":
        return FocalLoss(config.focal_gamma, weights)
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)


def decision_threshold(
    evaluation: EvalResult, config: TrainConfig, class_names: list[str]
) -> dict[str, Any] | None:
    """For two classes, the lens-score threshold meeting ``config.target_fpr`` on the validation
    predictions (see :func:`darklens.evaluate.metrics.threshold_for_fpr`); None otherwise."""
    if len(class_names) != 2 or config.task != "classify":
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


@dataclasses.dataclass(frozen=True)
class TaskData:
    """What a task other than classification trains on: the batches' targets, the dataset rows
    kept (those with every regression target), the regression scaling, the outputs per image
    and notes for the log (rows left out)."""

    targets: TargetReader | None = None
    keep: np.ndarray | None = None
    scaling: TargetScaling | None = None
    n_outputs: int = 0
    notes: tuple[str, ...] = ()


def prepare_task(config: TrainConfig, dataset: LensDataset) -> TaskData:
    """Check that the model and dataset suit ``config.task`` and gather its targets."""
    entry = model_entry(config.model)
    wanted = "image" if config.task == "denoise" else "logits"
    if entry.output != wanted:
        raise ConfigError(
            f"model {config.model} gives {entry.output} outputs; task={config.task} needs a "
            f"model with {wanted} outputs" + (" (e.g. unet)" if wanted == "image" else "")
        )
    if config.task == "classify":
        return TaskData(n_outputs=len(dataset.class_names))
    if config.task == "denoise":
        if "clean" not in dataset.target_names:
            raise ConfigError(
                f"{dataset.path} holds no noiseless images (/targets/clean) to denoise towards; "
                "simulate it with --set store_clean=true"
            )
        return TaskData(targets=CleanImages(), n_outputs=dataset.image_shape[0])
    try:
        table = target_table(dataset, config.targets)
    except KeyError as err:
        raise ConfigError(f"{dataset.path}: {err.args[0]}") from None
    keep = np.isfinite(table).all(axis=1)
    notes = []
    for split in (config.train_split, config.val_split):
        rows = dataset.split_indices(split)
        kept = int(keep[rows].sum())
        if kept < 2:
            raise ConfigError(
                f"{dataset.path}: {kept} of the {len(rows)} {split!r} images have a value of "
                f"every target ({', '.join(config.targets)}); a regression needs at least 2 "
                "(the others are NaN: e.g. axion mass on non-axion images)"
            )
        if kept < len(rows):
            notes.append(
                f"{len(rows) - kept} of {len(rows)} {split} images have a NaN target "
                f"({', '.join(config.targets)}): left out"
            )
    train_rows = dataset.split_indices(config.train_split)
    scaling = fit_scaling(
        table[train_rows[keep[train_rows]]], config.targets, config.standardize_targets,
        config.loss,
    )  # fmt: skip
    scaled = np.where(keep[:, None], scaling.scale(np.where(keep[:, None], table, 0.0)), 0.0)
    return TaskData(
        TableTargets(scaled.astype(np.float32)), keep, scaling, scaling.n_outputs, tuple(notes)
    )


# -- the run -------------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    data_path: str | Path | None = None,
    out_dir: str | Path = "runs/run",
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    should_stop: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Train ``config.model`` on the dataset (``data_path`` or ``config.data``) into ``out_dir``.

    ``callbacks`` see every hook of :mod:`darklens.train.callbacks` (history.csv and TensorBoard
    are always written; a progress bar is a callback the CLI adds). ``should_stop`` is called with
    each finished epoch's history row; returning True ends training there (the run stays
    resumable, and the schedule keeps its full length), e.g. for time budgets.

    With ``resume=True`` continue the run in ``out_dir`` from its last completed epoch; settings
    that would change the results must then match the run's (``epochs`` may grow).
    """
    if data_path is not None:
        config = dataclasses.replace(config, data=str(data_path))
    if not config.data and not config.simulate.preset:
        raise ConfigError(
            "no dataset given: pass --data FILE.h5 or --simulate PRESET, or set data in the config"
        )
    if model_fit(config.model) != "backprop":
        raise ConfigError(
            f"{config.model} is not trained by backpropagation; fit it with "
            "darklens.recipes.fit (the CLI's `darklens train` does)"
        )
    if config.simulate.preset and config.task != "classify":
        raise ConfigError(f"task={config.task} trains from a dataset file, not on the fly")
    run_dir = Path(out_dir)
    _check_run_dir(run_dir, resume)
    if config.simulate.preset:
        prepare_eval_set(config, run_dir, resume)
    ctx = init_distributed(use_cuda=wants_cuda(config.device))
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    hooks = CallbackList(callbacks if ctx.is_main else ())
    try:
        return _run(config, run_dir, resume, ctx, hooks, should_stop)
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
    ctx: DistContext,
    hooks: CallbackList,
    should_stop: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    device = resolve_device(config.device, ctx.local_rank)
    with LensDataset(config.data or eval_set_path(run_dir)) as dataset:
        config = resolve_config(config, dataset, device)
        _check_monitor(config, dataset)
        task = prepare_task(config, dataset)
        saved = ckpt.load_train_state(run_dir / STATE) if resume else None
        if saved is not None:
            _check_resumable(config, dataset, saved, run_dir)
        extras = model_inputs(config.model)[1:]
        train_data, val_data = _open_splits(config, dataset, device, extras, ctx.world_size, task)
        if saved is not None:
            preprocessing = Preprocessing.from_dict(saved.preprocessing)
        else:
            preprocessing = preprocessing_for(config, dataset, train_data, extras)
        settings = _batch_settings(config, preprocessing, device)
        model_spec = model_spec_for(config, preprocessing, task.n_outputs)
        torch.manual_seed(config.seed)
        model = create_model(model_spec["name"], **model_spec["kwargs"])
        if saved is not None and config.adaptation != "dann":
            model.load_state_dict(saved.model)
        elif config.pretrained:
            entry = model_entry(config.model)
            loaded = load_pretrained(
                model,
                pretrained_weights_path(config.pretrained),
                first_conv=entry.first_conv,
                classifier=entry.classifier,
            )
            hooks.call("on_note", loaded.summary())
        memory_format = torch.channels_last if settings.channels_last else torch.preserve_format
        model = model.to(device=device, memory_format=memory_format)
        adapter = _adapter(config, dataset, model, settings, ctx)
        stateful = model if adapter is None else adapter.state_module  # DANN: + domain head
        if saved is not None and config.adaptation == "dann":
            stateful.load_state_dict(saved.model)
        optimizer = build_optimizer(stateful, config)
        scaler = torch.amp.GradScaler(device.type) if settings.amp_dtype == torch.float16 else None
        progress = RunProgress()
        if saved is not None:
            optimizer.load_state_dict(saved.optimizer)
            progress = RunProgress.from_json(saved.progress)
            if scaler is not None and saved.scaler:
                scaler.load_state_dict(saved.scaler)
        weights = None
        if config.class_weighting == "balanced":
            weights = class_weights(train_data.labels, dataset.class_names).to(device)
        loss_fn = build_loss(config, weights, len(config.targets))
        runner = _EpochRunner(
            config,
            ctx,
            train_data,
            val_data,
            settings,
            _wrap_ddp(stateful, device, ctx),
            model,
            optimizer,
            loss_fn,
            scaler,
            list(dataset.class_names),
            task.scaling,
            adapter,
            _curriculum(config, dataset, train_data.labels),
        )
        base_meta = {
            "model": model_spec,
            "preprocessing": preprocessing.to_dict(),
            "class_names": list(dataset.class_names),
            "train_config": config.to_dict(),
            "input_description": describe_dataset(dataset.manifest, dataset.image_shape).to_dict(),
        }
        if config.task != "classify":
            base_meta["task"] = config.task
        if task.scaling is not None:
            base_meta["targets"] = task.scaling.to_dict()
        if ctx.is_main:  # files appear only once every setting has proven usable
            run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale_temporaries(run_dir)
            ckpt.atomic_write_text(run_dir / CONFIG_FILE, config.to_yaml())
            hooks = CallbackList(
                [
                    HistoryCSV(run_dir / HISTORY_FILE, progress.history),
                    TensorBoardLog(run_dir / TENSORBOARD_DIR),
                    *hooks.callbacks,
                ]
            )
        barrier(ctx)
        hooks.call("on_train_start", config.epochs, progress.epoch)
        if saved is not None:
            hooks.call("on_note", f"resuming {run_dir} after epoch {progress.epoch}")
        for note in task.notes:
            hooks.call("on_note", note)
        try:
            _train_epochs(runner, progress, run_dir, base_meta, hooks, should_stop)
        finally:
            hooks.call("on_train_end")
    barrier(ctx)
    best_row = _best_row(progress)
    return TrainResult(
        run_dir=run_dir,
        best_epoch=progress.best_epoch,
        best_val_auc=best_row.get("val_auc", math.nan),
        epochs_completed=progress.epoch,
        stopped_early=progress.stopped_early,
        history=progress.history,
        monitor=config.monitor,
        best_value=best_row.get(config.monitor, math.nan),
    )


def _best_row(progress: RunProgress) -> dict[str, float]:
    if not 1 <= progress.best_epoch <= len(progress.history):
        return {}
    return progress.history[progress.best_epoch - 1]


def _check_monitor(config: TrainConfig, dataset: LensDataset) -> None:
    if config.monitor in ("val_tpr_at_fpr", "val_pauc") and len(dataset.class_names) != 2:
        raise ConfigError(
            f"monitor={config.monitor} needs two classes; {dataset.path} has "
            f"{len(dataset.class_names)} (use val_auc, val_loss or val_acc)"
        )


def _train_epochs(
    runner: _EpochRunner,
    progress: RunProgress,
    run_dir: Path,
    base_meta: dict[str, Any],
    hooks: CallbackList,
    should_stop: Callable[[dict[str, float]], bool] | None = None,
) -> None:
    """Epochs until ``config.epochs``, early stopping or ``should_stop``; rank 0 saves each one."""
    config, is_main = runner.config, runner.ctx.is_main
    higher_better = monitor_is_higher_better(config)
    while progress.epoch < config.epochs and not progress.stopped_early:
        row, evaluation = runner.run(progress, hooks)
        value = row[config.monitor]
        is_best = progress.record(
            value if higher_better else -value, config.early_stopping_patience
        )
        progress.history.append(row)
        if is_main:
            _save_checkpoints(run_dir, runner, progress, base_meta, row, is_best, evaluation)
        hooks.call("on_epoch_end", row, is_best)
        if is_main:  # the resume state goes last, so it never runs ahead of the other files
            _save_state(run_dir, runner, progress, base_meta)
        if progress.stopped_early:
            hooks.call(
                "on_note",
                f"early stop: no {config.monitor} gain for {progress.epochs_since_best} epochs",
            )
        elif should_stop is not None and should_stop(row):
            hooks.call("on_note", f"stopped after epoch {progress.epoch} on request")
            break


def model_spec_for(
    config: TrainConfig, preprocessing: Preprocessing, n_classes: int
) -> dict[str, Any]:
    """What a checkpoint stores to rebuild the model: its name and constructor arguments
    (``n_classes``: the outputs per image, regression targets and variances included)."""
    kwargs: dict[str, Any] = {
        **config.model_kwargs,
        "in_chans": preprocessing.in_chans,
        "num_classes": n_classes,
        "img_size": preprocessing.img_size,
    }
    if preprocessing.extras:
        kwargs["input_shapes"] = {k: list(v) for k, v in preprocessing.input_shapes.items()}
    return {"name": config.model, "kwargs": kwargs}


def _open_splits(
    config: TrainConfig,
    dataset: LensDataset,
    device: torch.device,
    extras: tuple[str, ...] = (),
    world_size: int = 1,
    task: TaskData | None = None,
) -> tuple[SplitData | SimulatedSplit, SplitData]:
    """The training and validation splits; on-the-fly runs render their training batches."""
    pin = device.type == "cuda"
    task = task or TaskData()

    def read(split: str) -> SplitData:
        opened = open_split(
            dataset, split, config.in_memory, config.num_workers, pin, extras,
            task.targets, task.keep,
        )  # fmt: skip
        return on_device_if_it_fits(opened, device)

    if config.simulate.preset:
        train_data: SplitData | SimulatedSplit = SimulatedSplit(config, device, extras, world_size)
    else:
        train_data = read(config.train_split)
    val_data = read(config.val_split)
    if config.task == "classify" and len(np.unique(val_data.labels)) < 2:
        raise ValueError(
            f"split {config.val_split!r} of {dataset.path} holds only one class; the validation "
            "macro AUC that selects checkpoints needs at least two"
        )
    return train_data, val_data


def _batch_settings(
    config: TrainConfig, preprocessing: Preprocessing, device: torch.device
) -> BatchSettings:
    return BatchSettings.from_preprocessing(
        preprocessing,
        device,
        config.augment,
        amp_dtype=_AMP_DTYPES[config.amp_dtype] if config.amp else None,
        channels_last=bool(config.channels_last),
        grad_clip_norm=config.grad_clip_norm,
    )


def _check_resumable(
    config: TrainConfig, dataset: LensDataset, state: ckpt.TrainState, run_dir: Path
) -> None:
    saved_config = TrainConfig.from_dict(state.train_config)
    conflicts = config.resume_conflicts(saved_config)
    if conflicts:
        raise ConfigError(
            f"cannot resume {run_dir} with different settings: {'; '.join(conflicts)}. "
            "Resume with the run's settings (its config.yaml) or start a new run folder"
        )
    if list(state.class_names) != list(dataset.class_names):
        raise ConfigError(
            f"{dataset.path} has classes {dataset.class_names}, but the run in {run_dir} was "
            f"trained on {state.class_names}"
        )


def _curriculum(
    config: TrainConfig, dataset: LensDataset, labels: np.ndarray
) -> np.ndarray | None:
    """Difficulty quantiles of the training examples from the ``curriculum`` truth column."""
    if config.curriculum is None:
        return None
    name = config.curriculum.lstrip("-")
    if name not in dataset.truth_columns:
        available = ", ".join(dataset.truth_columns) or "none"
        raise ValueError(
            f"curriculum column {name!r} is not a truth column of {dataset.path}; "
            f"available: {available}"
        )
    values = dataset.truth(name)
    if values.ndim != 1:
        raise ValueError(f"curriculum column {name!r} has one value per band; pick a scalar one")
    easier = "smaller" if config.curriculum.startswith("-") else "larger"
    rows = dataset.split_indices(config.train_split)
    return curriculum_quantiles(values[rows], labels, easier)


def preprocessing_for(
    config: TrainConfig, dataset: LensDataset, train_data: SplitData, extras: tuple[str, ...] = ()
) -> Preprocessing:
    """What the model will expect of its inputs: the config's normalisation (with the training
    split's per-channel statistics for ``dataset``, or its sky-noise softening for ``asinh``),
    image size, channels and extra inputs."""
    mean = std = softening = None
    if config.normalization == "dataset":
        mean, std = split_channel_stats(train_data, config.crop)
    if config.normalization == "asinh":
        softening = tuple(split_noise_sigma(train_data))
    shapes = {name: tuple(dataset.input_shape(name)) for name in extras}
    return Preprocessing(
        normalization=config.normalization,
        img_size=config.img_size,
        in_chans=dataset.image_shape[0],
        mean=None if mean is None else tuple(mean),
        std=None if std is None else tuple(std),
        data_image_shape=tuple(dataset.image_shape[1:]),
        inputs=("images", *extras),
        input_shapes=shapes,
        # series [T, C] are scaled per example; other extra inputs pass unchanged
        series_normalization=tuple(
            config.series_normalization if len(shapes[name]) == 2 else "none" for name in extras
        ),
        softening=softening,
        crop=config.crop,
    )


def _adapter(
    config: TrainConfig,
    dataset: LensDataset,
    model: nn.Module,
    settings: BatchSettings,
    ctx: DistContext,
) -> Adapter | None:
    """Domain adaptation to ``config.adapt_to`` (see :mod:`darklens.train.adaptation`)."""
    if config.adaptation == "dann" and ctx.active:
        raise ConfigError("adaptation=dann runs in one process; train without torchrun")
    classifier = model_entry(config.model).classifier
    return build_adapter(config, dataset.image_shape[0], model, settings, classifier)


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
    class_names: list[str]
    scaling: TargetScaling | None = None
    adapter: Adapter | None = None
    curriculum: np.ndarray | None = None  # difficulty quantile per training example

    def run(
        self, progress: RunProgress, hooks: CallbackList
    ) -> tuple[dict[str, float], EvalResult]:
        config, ctx, epoch = self.config, self.ctx, progress.epoch
        started = time.perf_counter()
        order = epoch_order(self.train_data.labels, config.seed, epoch, config.balanced_sampling)
        if self.curriculum is not None:
            fraction = curriculum_fraction(epoch, config.curriculum_start, config.curriculum_epochs)
            order = curriculum_order(order, self.curriculum, fraction)
        plan = batch_plan(shard(order, ctx.rank, ctx.world_size), config.batch_size, True)
        lr_at = lr_schedule(config, len(plan), progress.plateau)
        torch.manual_seed(derived_seed(config.seed, epoch, ctx.rank, 0))
        generator = torch.Generator(device=self.settings.device)
        generator.manual_seed(derived_seed(config.seed, epoch, ctx.rank, 1))
        hooks.call("on_epoch_start", epoch, len(plan))
        domain_loss = None
        if self.adapter is not None:
            domain_loss = self.adapter.epoch_loss(epoch, config.epochs * len(plan))
        totals = train_one_epoch(
            self.train_model,
            self.train_data.batches(plan, epoch),
            self.optimizer,
            self.loss_fn,
            self.settings,
            generator,
            lr_at,
            first_step=progress.step,
            scaler=self.scaler,
            on_batch=(lambda *a: hooks.call("on_batch_end", *a)) if hooks.wants_batches else None,
            extra_loss=domain_loss,
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
        val = {f"val_{name}": value for name, value in evaluation.metrics.items()}
        if config.schedule == "plateau" and progress.epoch > config.warmup_epochs:
            value = val[config.monitor]
            signed = value if monitor_is_higher_better(config) else -value
            progress.plateau.update(signed, config.plateau_patience, config.plateau_factor)
        row = {
            "epoch": progress.epoch,
            "train_loss": loss_sum / count,
            "train_acc": correct / count if config.task == "classify" else math.nan,
            **val,
            "lr": first_lr,
            "seconds": time.perf_counter() - started,
            "images_per_s": count / max(train_seconds, 1e-9),
        }
        if domain_loss is not None:
            row.update(domain_loss.metrics())
        return row, evaluation

    def _evaluate(self) -> EvalResult:
        ctx, n_val = self.ctx, len(self.val_data)
        positions = shard(np.arange(n_val), ctx.rank, ctx.world_size)
        plan = batch_plan(positions, self.config.eval_batch_size or 2 * self.config.batch_size)
        device = self.settings.device

        def gather(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            where = all_gather_rows(torch.from_numpy(positions).to(device), ctx)
            all_logits, all_labels = all_gather_rows(logits, ctx), all_gather_rows(labels, ctx)
            ordered = torch.empty((n_val, *logits.shape[1:]), dtype=logits.dtype, device=device)
            ordered_labels = torch.empty(
                (n_val, *labels.shape[1:]), dtype=labels.dtype, device=device
            )
            ordered[where], ordered_labels[where] = all_logits, all_labels
            return ordered, ordered_labels

        broadcast_buffers(self.model, ctx)
        two_class = len(self.class_names) == 2 and self.config.task == "classify"
        return evaluate_epoch(
            self.model,
            self.val_data.batches(plan),
            self.settings,
            gather if ctx.active else None,
            target_fpr=self.config.target_fpr if two_class else None,
            metrics=self._task_metrics(),
        )

    def _task_metrics(self) -> Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None:
        """The validation metrics of a regression or denoising run (None: classification)."""
        if self.config.task == "denoise":
            return denoise_epoch_metrics
        scaling = self.scaling
        if scaling is None:
            return None
        return lambda outputs, targets: regression_epoch_metrics(outputs, targets, scaling)


def _save_checkpoints(
    run_dir: Path,
    runner: _EpochRunner,
    progress: RunProgress,
    base_meta: dict[str, Any],
    row: dict[str, float],
    is_best: bool,
    evaluation: EvalResult,
) -> None:
    """Write the epoch's ``last`` (and, when it is the best, ``best``) checkpoint."""
    meta = {
        **base_meta,
        "epoch": progress.epoch,
        "monitor": runner.config.monitor,
        "val_metrics": dict(evaluation.metrics),
    }
    threshold = decision_threshold(evaluation, runner.config, base_meta["class_names"])
    if threshold is not None:
        meta["decision_threshold"] = threshold
    model = runner.model
    if runner.adapter is not None:  # AdaBN: checkpoints hold the target's BatchNorm statistics
        meta["adaptation"] = runner.adapter.meta
        model = runner.adapter.for_checkpoint(model)
    if is_best:
        ckpt.save_checkpoint(run_dir / BEST, model, meta)
    ckpt.save_checkpoint(run_dir / LAST, model, meta)


def _save_state(
    run_dir: Path, runner: _EpochRunner, progress: RunProgress, base_meta: dict[str, Any]
) -> None:
    state = ckpt.TrainState(
        model={},
        optimizer={},
        train_config=base_meta["train_config"],
        class_names=base_meta["class_names"],
        preprocessing=base_meta["preprocessing"],
        progress=progress.to_json(),
        scaler=runner.scaler.state_dict() if runner.scaler is not None else None,
    )
    stateful = runner.model if runner.adapter is None else runner.adapter.state_module
    ckpt.save_train_state(run_dir / STATE, stateful, runner.optimizer, state.json_state())
