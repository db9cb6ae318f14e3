"""Training callbacks: what happens around the epochs, without editing the trainer.

The trainer calls hooks by name on a :class:`CallbackList` (as Lightning Fabric's
``fabric.call("on_train_epoch_end", ...)``); a callback overrides the hooks it needs:

- ``on_train_start(epochs, resumed_after)`` — before the first epoch (``resumed_after`` > 0 when
  the run continues a saved one);
- ``on_epoch_start(epoch, steps)`` — before each training epoch (epochs counted from 0);
- ``on_batch_end(loss, accuracy, steps)`` — during an epoch, at most every
  ``train.loop.REPORT_EVERY_S`` seconds and after its last step, with the steps done since the
  previous call (only when some callback ``wants_batches``: reading the loss makes the host wait
  for the GPU, so the loop does it rarely);
- ``on_epoch_end(row, is_best)`` — after validation, with the epoch's history row;
- ``on_note(message)`` — a line for the user (resume, early stop, pretrained weights);
- ``on_train_end()`` — after the last epoch, also when training fails.

Built in: :class:`HistoryCSV` (``history.csv``, every column any row has) and
:class:`TensorBoardLog` (scalars under ``tb/`` when tensorboard imports). Progress bars are the
CLI's (``darklens.cli.progress``); library code only calls hooks.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from darklens.runs import atomic_write_text

# Columns every history has, in this order; other metrics follow in the order they appear.
BASE_COLUMNS = (
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


class Callback:
    """No-op hooks; subclasses override what they need."""

    wants_batches = False

    def on_train_start(self, epochs: int, resumed_after: int) -> None: ...

    def on_epoch_start(self, epoch: int, steps: int) -> None: ...

    def on_batch_end(self, loss: float, accuracy: float, steps: int) -> None: ...

    def on_epoch_end(self, row: Mapping[str, float], is_best: bool) -> None: ...

    def on_note(self, message: str) -> None: ...

    def on_train_end(self) -> None: ...


class CallbackList:
    """Calls a hook on every callback, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    @property
    def wants_batches(self) -> bool:
        return any(c.wants_batches for c in self.callbacks)

    def call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


def history_columns(rows: Sequence[Mapping[str, float]]) -> list[str]:
    """:data:`BASE_COLUMNS`, then any other key of the rows in first-seen order."""
    columns = list(BASE_COLUMNS)
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def history_csv(rows: Sequence[Mapping[str, float]]) -> str:
    """The per-epoch history as CSV text (columns from :func:`history_columns`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=history_columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(dict(row))
    return buffer.getvalue()


class HistoryCSV(Callback):
    """Rewrites ``path`` atomically after every epoch with the whole history so far."""

    def __init__(self, path: Path, history: Sequence[Mapping[str, float]]) -> None:
        self.path = Path(path)
        self.history = history  # the run's own list: rows are appended before on_epoch_end

    def on_epoch_end(self, row: Mapping[str, float], is_best: bool) -> None:
        atomic_write_text(self.path, history_csv(self.history))


class TensorBoardLog(Callback):
    """Per-epoch scalars for TensorBoard, when ``torch.utils.tensorboard`` imports; else nothing."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._writer = None

    def on_train_start(self, epochs: int, resumed_after: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self._writer = SummaryWriter(log_dir=str(self._log_dir))

    def on_epoch_end(self, row: Mapping[str, float], is_best: bool) -> None:
        if self._writer is None:
            return
        step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and value is not None and math.isfinite(value):
                self._writer.add_scalar(key.replace("_", "/", 1), value, step)

    def on_train_end(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
