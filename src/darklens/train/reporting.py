"""What a run tells the user while it trains: a progress bar, ``history.csv``, TensorBoard."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from darklens.train.checkpoint import atomic_write_text

HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_auc",
    "lr",
    "seconds",
    "images_per_s",
)


def history_csv(rows: Sequence[Mapping[str, float]]) -> str:
    """The per-epoch history as CSV text with :data:`HISTORY_COLUMNS`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row.get(key) for key in HISTORY_COLUMNS})
    return buffer.getvalue()


def write_history(path: Path, rows: Sequence[Mapping[str, float]]) -> None:
    atomic_write_text(path, history_csv(rows))


class TensorBoardLog:
    """Per-epoch scalars for TensorBoard, when ``torch.utils.tensorboard`` imports; else nothing."""

    def __init__(self, log_dir: Path | None) -> None:
        self._writer = None
        if log_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self._writer = SummaryWriter(log_dir=str(log_dir))

    def epoch(self, row: Mapping[str, float]) -> None:
        if self._writer is None:
            return
        step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and value is not None and math.isfinite(value):
                self._writer.add_scalar(key.replace("_", "/", 1), value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class EpochProgress:
    """A rich progress bar per epoch with live loss/accuracy, and one summary line per epoch.

    Disabled (prints nothing) when ``enabled`` is false: quiet runs and DDP ranks other than 0.
    """

    def __init__(self, epochs: int, enabled: bool, console: Console | None = None) -> None:
        self.epochs = epochs
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
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
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start_epoch(self, epoch: int, steps: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(
            f"epoch {epoch + 1}/{self.epochs}", total=steps, loss=math.nan, acc=math.nan
        )

    def batch(self, loss: float, accuracy: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, loss=loss, acc=accuracy)

    @property
    def wants_batches(self) -> bool:
        return self._progress is not None

    def end_epoch(self, row: Mapping[str, float], is_best: bool) -> None:
        if not self.enabled:
            return
        marker = " [green]best[/]" if is_best else ""
        self.console.print(
            f"epoch {int(row['epoch'])}/{self.epochs}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.3f} | val loss {row['val_loss']:.4f} acc {row['val_acc']:.3f}"
            f" AUC {row['val_auc']:.4f} | lr {row['lr']:.2e} | {row['seconds']:.1f}s "
            f"{row['images_per_s']:.0f} img/s{marker}",
            highlight=False,
            soft_wrap=True,
        )

    def note(self, message: str) -> None:
        if self.enabled:
            self.console.print(message, highlight=False)
