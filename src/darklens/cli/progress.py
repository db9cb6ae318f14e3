"""Progress display for the CLI (rich): library code reports through callbacks and callables.

:class:`TrainProgress` is a training callback (:mod:`darklens.train.callbacks`): a live bar per
epoch and one summary line per epoch; :func:`counting_bar` a bar that a library function's
``progress(n)`` callable advances (simulation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from darklens.train.callbacks import Callback

_VAL_EXTRAS = {"val_tpr_at_fpr": "TPR@FPR", "val_pauc": "pAUC"}


class TrainProgress(Callback):
    """A rich bar per epoch with live loss/accuracy, then a line with the epoch's metrics."""

    wants_batches = True

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.epochs = 0
        self._progress: Progress | None = None
        self._task: Any = None

    def on_train_start(self, epochs: int, resumed_after: int) -> None:
        self.epochs = epochs
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()

    def on_epoch_start(self, epoch: int, steps: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(
            f"epoch {epoch + 1}/{self.epochs}", total=steps, loss=math.nan, acc=math.nan
        )

    def on_batch_end(self, loss: float, accuracy: float, steps: int = 1) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=steps, loss=loss, acc=accuracy)

    def on_epoch_end(self, row: Mapping[str, float], is_best: bool) -> None:
        if "val_acc" not in row:  # regression or denoising: their validation metrics
            self._task_epoch_end(row, is_best)
            return
        extras = "".join(
            f" {label} {row[key]:.4f}" for key, label in _VAL_EXTRAS.items() if key in row
        )
        marker = " [green]best[/]" if is_best else ""
        self.console.print(
            f"epoch {int(row['epoch'])}/{self.epochs}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.3f} | val loss {row['val_loss']:.4f} acc {row['val_acc']:.3f}"
            f" AUC {row['val_auc']:.4f}{extras} | lr {row['lr']:.2e} | {row['seconds']:.1f}s "
            f"{row['images_per_s']:.0f} img/s{marker}",
            highlight=False,
            soft_wrap=True,
        )

    def _task_epoch_end(self, row: Mapping[str, float], is_best: bool) -> None:
        shown = ("val_loss", "val_rmse", "val_mae", "val_r2")
        metrics = " ".join(f"{k[4:]} {row[k]:.4f}" for k in shown if k in row)
        marker = " [green]best[/]" if is_best else ""
        self.console.print(
            f"epoch {int(row['epoch'])}/{self.epochs}  train loss {row['train_loss']:.4f} | val "
            f"{metrics} | lr {row['lr']:.2e} | {row['seconds']:.1f}s "
            f"{row['images_per_s']:.0f} img/s{marker}",
            highlight=False,
            soft_wrap=True,
        )

    def on_note(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)

    def on_train_end(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None


@contextmanager
def counting_bar(
    description: str, total: int, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """A bar with a rate column; yields ``advance(n)`` for a library function's ``progress``."""
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )
    with bar:
        task = bar.add_task(escape(description), total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            elapsed = bar.tasks[task].elapsed or 0.0
            done = bar.tasks[task].completed
            bar.update(task, rate=f"{done / elapsed:,.0f} img/s" if elapsed else "")

        yield advance


@contextmanager
def staged_bars(enabled: bool = True) -> Iterator[Callable[[str, int, int | None], None]]:
    """Yields a :data:`darklens.progress.Progress` callable: a transient bar per stage (a
    spinner with a count when the stage's total is unknown)."""
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )
    tasks: dict[str, Any] = {}
    with bar:

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(escape(stage), total=total)
            if done:
                bar.advance(tasks[stage], done)

        yield report
