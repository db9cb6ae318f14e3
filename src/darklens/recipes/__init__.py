"""Recipes that drive training from above: choose how a model is fitted, and fit it.

:func:`fit` is what ``darklens train`` runs: models fitted by backpropagation go to
:func:`darklens.train.train`; stacked models (``fit="stack"`` in their registry entry, e.g.
``deepgravilens``) to :func:`darklens.recipes.stack.train_stack`, which trains each member with
the same trainer and then fits the stack's head. Recipes sit above ``train``, ``predict`` and
``evaluate``: they may use all three.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from darklens.config import ConfigError
from darklens.models import model_fit
from darklens.runs import CONFIG_FILE
from darklens.train.callbacks import Callback
from darklens.train.config import TrainConfig, build_train_config
from darklens.train.trainer import TrainResult, train

__all__ = ["fit", "fit_from_cli"]


def fit(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    should_stop: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Fit ``config.model`` on ``config.data`` into the run folder ``out_dir``, as its registry
    entry says (backpropagation or a stack of separately trained members)."""
    if model_fit(config.model) == "stack":
        from darklens.recipes.stack import train_stack

        if config.task != "classify":
            raise ConfigError(f"{config.model} is a stack of classifiers; task must be classify")

        return train_stack(
            config, Path(out_dir), resume=resume, callbacks=callbacks, should_stop=should_stop
        )
    return train(config, None, out_dir, resume=resume, callbacks=callbacks, should_stop=should_stop)


def fit_from_cli(
    out_dir: str | Path,
    config_file: str | Path | None,
    options: Mapping[str, Any],
    assignments: Mapping[str, Any],
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Layer the CLI's settings (over the run's own ``config.yaml`` when resuming) and fit."""
    saved = Path(out_dir) / CONFIG_FILE
    base = TrainConfig.from_yaml(saved) if resume and saved.is_file() else None
    config = build_train_config(config_file, options, assignments, base)
    if not config.data and not config.simulate.preset:
        from darklens.config import ConfigError

        raise ConfigError(
            "no dataset given: pass --data FILE.h5 or --simulate PRESET, or set data in the config"
        )
    return fit(config, out_dir, resume=resume, callbacks=callbacks)
