"""Learning-rate schedules as pure functions of the step, plus the small state a plateau needs.

The learning rate is recomputed every optimiser step from ``(step, total_steps)``, so resuming a
run only needs the step counter and the :class:`PlateauState` numbers (stored as JSON).
"""

from __future__ import annotations

import dataclasses
import math


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int, cosine: bool) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up from ``1/warmup_steps`` to 1 over ``warmup_steps`` steps, then either a cosine
    decay to 0 at ``total_steps`` (``cosine=True``) or a constant 1.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if not cosine:
        return 1.0
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclasses.dataclass
class PlateauState:
    """Reduce-on-plateau bookkeeping for a metric that should increase (val macro AUC)."""

    scale: float = 1.0
    best: float = -math.inf
    bad_epochs: int = 0

    def update(self, metric: float, patience: int, factor: float) -> None:
        """Record one epoch's metric; multiply ``scale`` by ``factor`` after ``patience`` + 1
        epochs in a row without improvement. Non-finite metrics count as no improvement."""
        if math.isfinite(metric) and metric > self.best:
            self.best = metric
            self.bad_epochs = 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > patience:
            self.scale *= factor
            self.bad_epochs = 0

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "scale": self.scale,
            "best": self.best if math.isfinite(self.best) else None,
            "bad_epochs": self.bad_epochs,
        }

    @classmethod
    def from_json(cls, data: dict[str, float | int | None]) -> PlateauState:
        best = data.get("best")
        return cls(
            scale=float(data["scale"]),  # type: ignore[arg-type]
            best=-math.inf if best is None else float(best),
            bad_epochs=int(data["bad_epochs"]),  # type: ignore[arg-type]
        )
