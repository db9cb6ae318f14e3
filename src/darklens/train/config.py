"""Training settings: one frozen, validated :class:`TrainConfig` for any model on any dataset."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from darklens.config import Config, ConfigError, deep_merge, dotted_updates, load_yaml, require
from darklens.data.transforms import NORMALIZATIONS, SERIES_NORMALIZATIONS

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "plateau", "none")
CLASS_WEIGHTINGS = ("none", "balanced")
LOSSES = ("ce", "focal")
TASKS = ("classify", "regress", "denoise")
REGRESSION_LOSSES = ("gaussian_nll", "mse", "huber")
DENOISE_LOSSES = ("mse",)
AMP_DTYPES = ("auto", "fp16", "bf16")
AUTO = "auto"
MONITORS = ("val_auc", "val_loss", "val_acc", "val_tpr_at_fpr", "val_pauc", "val_rmse")
REGRESSION_MONITORS = ("val_loss", "val_rmse")
MONITOR_MODES = ("auto", "max", "min")
ADAPTATIONS = ("none", "adabn", "dann")  # see darklens.train.adaptation

# Settings that may change when a run is resumed: they do not alter what one epoch computes.
RESUMABLE_CHANGES = frozenset(
    {
        "epochs",
        "early_stopping_patience",
        "num_workers",
        "device",
        "in_memory",
        "data",
        "eval_batch_size",
    }
)


def _auto_or_bool(value: Any) -> bool:
    return isinstance(value, bool) or value == AUTO


@dataclasses.dataclass(frozen=True)
class AugmentConfig(Config):
    """Training-time augmentations, applied to each batch on the training device.

    ``scale`` is the zoom range of the image content (0.8 shrinks it to 80 %), ``shift_px`` the
    amplitude of the random sub-pixel shift in pixels, ``shear_deg`` the x-shear amplitude in
    degrees, and ``gaussian_noise_std`` the noise added after normalisation (normalised units).
    """

    dihedral: bool = True
    shift_px: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    shear_deg: float = 0.0
    gaussian_noise_std: float = 0.0

    def __post_init__(self) -> None:
        require(
            isinstance(self.scale, (tuple, list)) and len(self.scale) == 2,
            f"augment.scale must be a range (low, high), got {self.scale!r}",
        )
        object.__setattr__(self, "scale", (float(self.scale[0]), float(self.scale[1])))
        require(self.shift_px >= 0, f"augment.shift_px must be >= 0, got {self.shift_px}")
        low, high = self.scale
        require(
            0 < low <= high,
            f"augment.scale must be a range (low, high) with 0 < low <= high, got {self.scale}",
        )
        require(
            0 <= self.shear_deg < 90, f"augment.shear_deg must be in [0, 90), got {self.shear_deg}"
        )
        require(
            self.gaussian_noise_std >= 0,
            f"augment.gaussian_noise_std must be >= 0, got {self.gaussian_noise_std}",
        )


@dataclasses.dataclass(frozen=True)
class SimulateConfig(Config):
    """Training on images simulated on the fly (``darklens train --simulate PRESET``).

    ``preset`` names a simulator preset ("" trains from ``data``), ``overrides`` its dotted
    settings. Every epoch renders ``steps_per_epoch`` fresh batches on the training device
    (classes balanced); validation and test sets of ``eval_images`` images each are simulated
    once, from a seed apart from the training images', into the run folder.
    """

    preset: str = ""
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    steps_per_epoch: int = 100
    eval_images: int = 1000

    def __post_init__(self) -> None:
        require(
            isinstance(self.overrides, dict),
            f"simulate.overrides must be a mapping, got {self.overrides!r}",
        )
        object.__setattr__(self, "overrides", dict(self.overrides))
        require(self.steps_per_epoch >= 1, "simulate.steps_per_epoch must be >= 1")
        require(self.eval_images >= 4, "simulate.eval_images must be >= 4")


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """Everything that defines a training run (see ``darklens train --help`` for the CLI).

    ``amp``/``channels_last``/``in_memory`` take true, false or ``auto`` (auto: mixed precision and
    channels-last on CUDA only; in-memory data when the split fits in a quarter of free RAM).
    ``early_stopping_patience`` and ``grad_clip_norm`` are off at 0. ``crop`` cuts every image to
    its central crop × crop pixels before anything else (training, evaluation and prediction
    alike: it is stored with the checkpoint), e.g. the 101-px challenge cutouts to the 64 px
    around the lens, keeping full resolution where a resize would shrink the arcs; ``img_size``
    then defaults to the crop, or to the dataset's image size. ``batch_size`` is per process
    under DDP; ``eval_batch_size`` (default twice ``batch_size``) is the validation batch,
    smaller saves memory traffic on large images.

    ``normalization`` scales the images (``channel_minmax``: each band on its own; ``asinh``:
    asinh(x / σ_band) with σ_band the training images' sky noise, a fixed scale per band);
    ``series_normalization`` the extra inputs shaped [T, C] that multi-input models take (e.g.
    light curves: ``series_minmax`` scales each band's curve to [0, 1], as DeepGraviLens did).

    Class imbalance (e.g. lens finding, where lenses are rare): ``class_weighting="balanced"``
    weights the loss by ``w_c = N / (n_classes * N_c)`` from the training labels;
    ``balanced_sampling`` draws each epoch's images with replacement so that every class is
    equally likely (use one of the two, not both, or the minority is corrected twice);
    ``loss="focal"`` is the focal loss of Lin et al. (2017) with exponent ``focal_gamma``
    (``focal_gamma=0`` is cross-entropy; the class weights act as its alpha). For two-class tasks
    each checkpoint also stores the decision threshold on the lens score (class 1) that gives
    at most ``target_fpr`` false-positive rate on the validation split.

    ``curriculum`` trains from easy to hard examples: a truth column of the dataset (e.g.
    ``arc_snr`` for lens finding: larger is easier; ``-source_magnitude``: a leading minus makes
    smaller values easier). In epoch e < ``curriculum_epochs`` each class contributes only its
    easiest ``curriculum_start + (1 - curriculum_start) e / curriculum_epochs`` share (classes
    whose column is constant, e.g. the non-lenses, and NaN values always count), repeated to the
    epoch's usual length; from then on every example.

    ``monitor`` picks the validation metric that selects the ``best`` checkpoint and drives early
    stopping and the plateau schedule: ``val_auc`` (macro one-vs-rest AUC), ``val_loss``,
    ``val_acc`` or, for two classes, ``val_tpr_at_fpr`` (the true-positive rate at
    ``target_fpr``, for finders judged at low false-positive rates) or ``val_pauc`` (the
    standardised partial AUC over FPR ≤ 0.1: also the low-FPR end, but from every non-lens
    there, so steadier on a validation split of a few hundred non-lenses); ``monitor_mode`` ``max``,
    ``min`` or ``auto`` (min for losses, max otherwise).

    ``task``: ``classify`` (the labels), ``regress`` (the truth columns named in ``targets``) or
    ``denoise`` (noisy image → the noiseless one stored as ``/targets/clean``, an image model
    such as ``unet``). A regression target is a truth column (its unit suffix may be left out when
    unambiguous: ``axion_mass`` is ``axion_mass_ev``), ``total_<column>`` (the sum over a
    per-subhalo column, e.g. ``total_subhalo_mass_msun``) or ``log10_<target>``; images whose
    target is NaN (e.g. axion mass on non-axion images) are left out of training and validation.
    ``standardize_targets`` scales each target by the training split's mean and standard
    deviation (stored in the checkpoint). Regression losses: ``gaussian_nll`` (the head predicts a
    mean and a log-variance per target), ``mse`` or ``huber``; denoising: ``mse``. For tasks other
    than classify the classification defaults mean: ``loss=ce`` → ``gaussian_nll`` (regress) or
    ``mse`` (denoise), ``monitor=val_auc`` → ``val_loss``, and (denoise) ``normalization=minmax``
    → ``dataset``, whose affine scaling maps the clean target like the noisy input.

    Unsupervised domain adaptation (:mod:`darklens.train.adaptation`) to the images of the
    dataset file ``adapt_to`` (their labels, if any, are never read): ``adaptation="adabn"``
    stores checkpoints with BatchNorm statistics re-estimated on them; ``"dann"`` trains
    adversarially against a domain classifier (``dann_hidden`` units) through gradient reversal
    of weight up to ``dann_weight``.
    """

    data: str = ""
    train_split: str = "train"
    val_split: str = "val"
    model: str = "default"
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    img_size: int | None = None
    crop: int | None = None
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int | None = None
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 0
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    label_smoothing: float = 0.0
    grad_clip_norm: float = 0.0
    normalization: str = "minmax"
    series_normalization: str = "series_minmax"
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    class_weighting: str = "none"
    balanced_sampling: bool = False
    curriculum: str | None = None
    curriculum_epochs: int = 0
    curriculum_start: float = 0.3
    loss: str = "ce"
    focal_gamma: float = 2.0
    target_fpr: float = 0.01
    early_stopping_patience: int = 0
    monitor: str = "val_auc"
    monitor_mode: str = AUTO
    amp: bool | str = AUTO
    amp_dtype: str = AUTO
    channels_last: bool | str = AUTO
    in_memory: bool | str = AUTO
    seed: int = 0
    num_workers: int = 0
    device: str = AUTO
    pretrained: str | None = None
    simulate: SimulateConfig = dataclasses.field(default_factory=SimulateConfig)
    task: str = "classify"
    targets: tuple[str, ...] = ()
    standardize_targets: bool = True
    adapt_to: str | None = None
    adaptation: str = "none"
    dann_weight: float = 1.0
    dann_hidden: int = 256

    def __post_init__(self) -> None:
        self._check_task()
        if isinstance(self.simulate, Mapping):
            object.__setattr__(
                self, "simulate", SimulateConfig.from_dict(self.simulate, _where="simulate")
            )
        require(
            isinstance(self.simulate, SimulateConfig),
            f"simulate must be a mapping of on-the-fly simulation settings, got {self.simulate!r}",
        )
        require(
            not (self.simulate.preset and self.data),
            "give a dataset (data) or a preset to simulate on the fly (simulate.preset), not both",
        )
        if isinstance(self.augment, Mapping):
            object.__setattr__(
                self, "augment", AugmentConfig.from_dict(self.augment, _where="augment")
            )
        require(
            isinstance(self.augment, AugmentConfig),
            f"augment must be a mapping of augmentation settings, got {self.augment!r}",
        )
        require(
            isinstance(self.model_kwargs, dict),
            f"model_kwargs must be a mapping, got {self.model_kwargs!r}",
        )
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        reserved = {"in_chans", "num_classes", "img_size"} & set(self.model_kwargs)
        require(
            not reserved,
            f"model_kwargs may not set {', '.join(sorted(reserved))}: they come from the data "
            "(use img_size to resize)",
        )
        require(bool(self.model), "model must name a registered model (see list_models())")
        require(self.train_split != self.val_split, "train_split and val_split must differ")
        require(
            self.img_size is None or self.img_size >= 8,
            f"img_size must be >= 8, got {self.img_size}",
        )
        require(self.crop is None or self.crop >= 8, f"crop must be >= 8, got {self.crop}")
        require(
            self.crop is None or self.task != "denoise",
            "crop is for classification and regression: a denoiser keeps its images' size",
        )
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        require(
            self.eval_batch_size is None or self.eval_batch_size >= 1,
            f"eval_batch_size must be >= 1 (or null: twice batch_size), got {self.eval_batch_size}",
        )
        _require_choice("optimizer", self.optimizer, OPTIMIZERS)
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _require_choice("schedule", self.schedule, SCHEDULES)
        require(
            0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
            f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs} for "
            f"{self.epochs} epochs",
        )
        require(self.plateau_patience >= 0, "plateau_patience must be >= 0")
        require(0 < self.plateau_factor < 1, "plateau_factor must be in (0, 1)")
        require(
            0 <= self.label_smoothing < 1,
            f"label_smoothing must be in [0, 1), got {self.label_smoothing}",
        )
        require(self.grad_clip_norm >= 0, "grad_clip_norm must be >= 0 (0 disables clipping)")
        _require_choice("normalization", self.normalization, NORMALIZATIONS)
        _require_choice("series_normalization", self.series_normalization, SERIES_NORMALIZATIONS)
        _require_choice("class_weighting", self.class_weighting, CLASS_WEIGHTINGS)
        _require_choice("loss", self.loss, self._task_choices()[0])
        require(self.focal_gamma >= 0, f"focal_gamma must be >= 0, got {self.focal_gamma}")
        require(
            self.loss == "ce" or self.label_smoothing == 0,
            "label_smoothing applies to loss=ce only; set it to 0 for loss=focal",
        )
        require(
            0 < self.target_fpr < 1,
            f"target_fpr (validation false-positive rate of the decision threshold) must be in "
            f"(0, 1), got {self.target_fpr}",
        )
        require(
            self.early_stopping_patience >= 0,
            "early_stopping_patience must be >= 0 (0 disables early stopping)",
        )
        _require_choice("monitor", self.monitor, self._task_choices()[1])
        _require_choice("monitor_mode", self.monitor_mode, MONITOR_MODES)
        self._check_curriculum()
        for name in ("amp", "channels_last", "in_memory"):
            value = getattr(self, name)
            require(_auto_or_bool(value), f"{name} must be true, false or auto, got {value!r}")
        _require_choice("amp_dtype", self.amp_dtype, AMP_DTYPES)
        require(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        require(
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
            f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}",
        )
        _require_choice("adaptation", self.adaptation, ADAPTATIONS)
        require(
            (self.adaptation == "none") == (not self.adapt_to),
            "domain adaptation needs both adapt_to (the unlabelled target dataset) and "
            f"adaptation=adabn or dann; got adapt_to={self.adapt_to!r}, "
            f"adaptation={self.adaptation!r}",
        )
        require(self.dann_weight > 0, f"dann_weight must be > 0, got {self.dann_weight}")
        require(self.dann_hidden >= 1, f"dann_hidden must be >= 1, got {self.dann_hidden}")

    def _check_curriculum(self) -> None:
        require(
            self.curriculum_epochs >= 0,
            f"curriculum_epochs must be >= 0, got {self.curriculum_epochs}",
        )
        require(
            0 < self.curriculum_start <= 1,
            f"curriculum_start must be in (0, 1], got {self.curriculum_start}",
        )
        if self.curriculum is None:
            return
        require(
            bool(self.curriculum.lstrip("-")),
            "curriculum must name a truth column (a leading '-': smaller values are easier)",
        )
        require(
            self.curriculum_epochs > 0,
            "curriculum needs curriculum_epochs > 0 (the epochs it takes to reach every example)",
        )
        require(
            not self.simulate.preset,
            "curriculum orders a dataset's examples; training on the fly (simulate.preset) "
            "has none",
        )

    def _check_task(self) -> None:
        """Validate ``task`` and ``targets``; give the task-specific meaning of the defaults."""
        _require_choice("task", self.task, TASKS)
        require(
            isinstance(self.targets, (tuple, list)) and not isinstance(self.targets, str),
            f"targets must be a list of truth-column names, got {self.targets!r}",
        )
        targets = tuple(str(t) for t in self.targets)
        object.__setattr__(self, "targets", targets)
        require(len(set(targets)) == len(targets), f"targets repeat a name: {list(targets)}")
        if self.task != "regress":
            require(not targets, f"targets apply to task=regress only (task is {self.task})")
            if self.task == "classify":
                return
        else:
            require(bool(targets), "task=regress needs targets (e.g. targets=[log10_axion_mass])")
        if self.loss == "ce":
            object.__setattr__(self, "loss", "gaussian_nll" if self.task == "regress" else "mse")
        if self.monitor == "val_auc":
            object.__setattr__(self, "monitor", "val_loss")
        if self.task == "denoise":
            if self.normalization == "minmax":
                object.__setattr__(self, "normalization", "dataset")
            require(
                self.normalization in ("dataset", "none"),
                "task=denoise needs normalization dataset or none (an affine scaling that maps "
                f"the clean target like the noisy input), got {self.normalization!r}",
            )
        require(not self.balanced_sampling, "balanced_sampling applies to task=classify")
        require(self.class_weighting == "none", "class_weighting applies to task=classify")
        require(self.curriculum is None, "curriculum applies to task=classify")
        require(self.adaptation == "none", "domain adaptation applies to task=classify")

    def _task_choices(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The losses and monitors that ``task`` allows."""
        if self.task == "regress":
            return REGRESSION_LOSSES, REGRESSION_MONITORS
        if self.task == "denoise":
            return DENOISE_LOSSES, REGRESSION_MONITORS
        return LOSSES, tuple(m for m in MONITORS if m not in ("val_rmse",))

    def resume_conflicts(self, saved: TrainConfig) -> list[str]:
        """Settings that differ from a saved run's and would change its results, as messages."""
        mine, theirs = self.to_dict(), saved.to_dict()
        return [
            f"{name} (run has {theirs[name]!r}, given {mine[name]!r})"
            for name in mine
            if name not in RESUMABLE_CHANGES and mine[name] != theirs[name]
        ]


def monitor_is_higher_better(config: TrainConfig) -> bool:
    """Whether a larger value of ``config.monitor`` is better."""
    if config.monitor_mode == AUTO:
        return not config.monitor.endswith("loss")
    return config.monitor_mode == "max"


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    require(value in choices, f"{name} must be one of {', '.join(choices)}; got {value!r}")


def build_train_config(
    config_file: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    assignments: Mapping[str, Any] | None = None,
    base: TrainConfig | None = None,
) -> TrainConfig:
    """Layer settings: ``base`` (default: defaults) < YAML ``config_file`` < ``options`` (the
    CLI's named options; None values are skipped) < dotted ``assignments`` (``--set k=v``)."""
    config = base or TrainConfig()
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        data = load_yaml(path.read_text(), path)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path} must hold a YAML mapping of training settings")
        config = config.merged(data)
    chosen = {k: v for k, v in (options or {}).items() if v is not None}
    # options and assignments in one step: settings that must go together (adapt_to with
    # --set adaptation=...) may come from either
    updates = deep_merge(chosen, dotted_updates(assignments or {}))
    return config.merged(updates) if updates else config
