"""Training a stacked model (DeepGraviLens): members by the usual recipe, then an SVM on top.

Pinciroli Vago & Fraternali (2023) train LoNet, MuNet and GloNet separately and fit a support
vector classifier on their concatenated softmax outputs, choosing the kernel and C by validation
accuracy. :func:`train_stack` does exactly that inside one run folder::

    members/<name>/       a complete darklens run per member (same settings as the stack's
                          config, model = member); killed runs resume like any other
    best.*/last.*         the fitted stack (members' best checkpoints + SVM head), loadable by
                          ``Predictor.from_checkpoint`` / ``darklens evaluate`` like any model
    stack.json            the SVM model selection: every (kernel, C) candidate's val accuracy
    config.yaml           the stack's settings

The SVM is fitted on the members' probabilities for the training split (at most
``MAX_SVM_FIT`` examples, a seeded class-stratified subset, because kernel SVM fitting grows
quadratically) and selected on the validation split. The members never see the validation
split during fitting; the SVM's selection does, so the validation metrics of the stack are
slightly optimistic: judge it on the test split.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darklens import runs as ckpt
from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.runs import BEST, CONFIG_FILE, LAST, MEMBERS_DIR, STATE
from darklens.train.callbacks import Callback, CallbackList
from darklens.train.config import TrainConfig
from darklens.train.trainer import TrainResult, train

STACK_REPORT = "stack.json"
MAX_SVM_FIT = 6000


def stratified_subset(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted positions of at most ``limit`` examples keeping the class proportions (every class
    keeps at least one); all positions when there are no more than ``limit``."""
    n = len(labels)
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng([seed, 0x57AC])
    chosen = []
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        keep = max(1, int(round(limit * where.size / n)))
        chosen.append(rng.choice(where, size=min(keep, where.size), replace=False))
    return np.sort(np.concatenate(chosen))


def _member_config(config: TrainConfig, name: str) -> TrainConfig:
    member_kwargs = dict(config.model_kwargs.get("member_kwargs") or {})
    return dataclasses.replace(config, model=name, model_kwargs=dict(member_kwargs.get(name, {})))


def _members(config: TrainConfig) -> tuple[str, ...]:
    from darklens.models.stacking import DEFAULT_MEMBERS

    unknown = set(config.model_kwargs) - {"members", "member_kwargs"}
    if unknown:
        raise ConfigError(
            f"model_kwargs of a stack take members and member_kwargs only; got {sorted(unknown)}"
        )
    return tuple(config.model_kwargs.get("members") or DEFAULT_MEMBERS)


def train_stack(
    config: TrainConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    should_stop: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Train every member of the stack ``config.model``, fit its SVM, save it as a checkpoint.

    ``resume`` continues unfinished member runs (finished ones are reused). ``callbacks`` see
    every member's training and the stack's notes. ``should_stop`` applies to each member's
    epochs; a member stopped early by it leaves the stack unfitted (resume later).
    """
    hooks = CallbackList(callbacks)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            f"{config.model} is fitted on one process: train its members under torchrun as "
            "separate runs, or run the stack without torchrun"
        )
    members = _members(config)
    members_dir = run_dir / MEMBERS_DIR
    if not resume and (members_dir.exists() or (run_dir / f"{BEST}.json").exists()):
        raise FileExistsError(
            f"{run_dir} already holds a training run; continue it with --resume or choose "
            "another --out"
        )
    member_runs = []
    for index, name in enumerate(members, start=1):
        hooks.call("on_note", f"[{config.model}] member {index}/{len(members)}: {name}")
        member_dir = members_dir / name
        member_resume = (member_dir / f"{STATE}{ckpt.WEIGHTS_SUFFIX}").is_file()
        result = train(
            _member_config(config, name),
            None,
            member_dir,
            resume=member_resume,
            callbacks=callbacks,
            should_stop=should_stop,
        )
        if result.epochs_completed < config.epochs and not result.stopped_early:
            raise RuntimeError(
                f"member {name} stopped after epoch {result.epochs_completed} of "
                f"{config.epochs}; resume the run to finish it before the SVM is fitted"
            )
        member_runs.append(result)
    stack, meta, report = fit_stack(config, members, [r.run_dir for r in member_runs])
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write_text(run_dir / CONFIG_FILE, config.to_yaml())
    ckpt.atomic_write_text(run_dir / STACK_REPORT, json.dumps(report, indent=2) + "\n")
    ckpt.save_checkpoint(run_dir / BEST, stack, meta)
    ckpt.save_checkpoint(run_dir / LAST, stack, meta)
    hooks.call(
        "on_note",
        f"[{config.model}] SVM kernel={report['svm']['kernel']} C={report['svm']['C']}: "
        f"val accuracy {meta['val_metrics']['acc']:.4f}, val macro AUC "
        f"{meta['val_metrics']['auc']:.4f}",
    )
    return TrainResult(
        run_dir=run_dir,
        best_epoch=config.epochs,
        best_val_auc=meta["val_metrics"]["auc"],
        epochs_completed=config.epochs,
        stopped_early=False,
        history=[],
    )


def fit_stack(
    config: TrainConfig, members: tuple[str, ...], member_dirs: list[Path]
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The fitted stack module, its checkpoint metadata and the selection report, from trained
    member runs (their best checkpoints)."""
    import torch

    from darklens.evaluate.metrics import macro_auc_ovr
    from darklens.evaluate.run import predict_split
    from darklens.models.stacking import build_stack, fit_svm_head, stack_kwargs
    from darklens.predict.predictor import Predictor

    predictors = [Predictor.from_checkpoint(d, BEST) for d in member_dirs]
    first = predictors[0].checkpoint_
    with LensDataset(config.data) as dataset:
        features, labels = {}, {}
        for split in (config.train_split, config.val_split):
            indices = dataset.split_indices(split)
            if split == config.train_split:
                indices = indices[stratified_subset(dataset.labels[indices], MAX_SVM_FIT, 0)]
            labels[split] = dataset.labels[indices]
            features[split] = np.concatenate(
                [predict_split([p], dataset, indices) for p in predictors], axis=1
            )
        class_names = list(dataset.class_names)
    head, svm_report = fit_svm_head(
        features[config.train_split],
        labels[config.train_split],
        features[config.val_split],
        labels[config.val_split],
        seed=config.seed,
        num_classes=len(class_names),
    )
    spec = first["model"]["kwargs"]
    member_kwargs = {
        name: dict(p.checkpoint_["model"]["kwargs"])
        for name, p in zip(members, predictors, strict=True)
    }
    for kwargs in member_kwargs.values():
        for key in ("in_chans", "num_classes", "img_size", "input_shapes"):
            kwargs.pop(key, None)
    stack = build_stack(
        [p.model_ for p in predictors],
        list(members),
        head,
        in_chans=spec["in_chans"],
        num_classes=spec["num_classes"],
        img_size=spec["img_size"],
        input_shapes=spec["input_shapes"],
        member_kwargs={k: v for k, v in member_kwargs.items() if v},
    )
    with torch.inference_mode():
        decision = head(torch.from_numpy(features[config.val_split])).double()
    val_proba = torch.softmax(decision, dim=1).numpy()
    val_labels = labels[config.val_split]
    val_acc = float(np.mean(val_proba.argmax(axis=1) == val_labels))
    val_auc = float(macro_auc_ovr(val_labels, val_proba))
    member_summary = {
        name: {
            "run": str(d),
            "epoch": p.checkpoint_.get("epoch"),
            "val_metrics": p.checkpoint_.get("val_metrics"),
        }
        for name, d, p in zip(members, member_dirs, predictors, strict=True)
    }
    model_spec = {
        "name": config.model,
        "kwargs": {
            "in_chans": spec["in_chans"],
            "num_classes": spec["num_classes"],
            "img_size": spec["img_size"],
            "input_shapes": spec["input_shapes"],
            **stack_kwargs(stack),
        },
    }
    meta = {
        "model": model_spec,
        "preprocessing": first["preprocessing"],
        "class_names": class_names,
        "train_config": config.to_dict(),
        "epoch": config.epochs,
        "val_metrics": {"loss": math.nan, "acc": val_acc, "auc": val_auc},
        "stack": {"members": member_summary, "svm": svm_report},
    }
    if "input_description" in first:  # the members' training data is the stack's
        meta["input_description"] = first["input_description"]
    report = {
        "members": member_summary,
        "svm": svm_report,
        "svm_fit_examples": int(len(labels[config.train_split])),
    }
    return stack, meta, report
