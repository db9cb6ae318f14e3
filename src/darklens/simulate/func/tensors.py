"""The tensor side of every batched renderer: one device, one dtype, float64 → tensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


class TensorRenderer:
    """Base of the simulators' batched renderers: holds the config, device and dtype.

    Parameters are computed in float64 NumPy and converted once per batch, so an image's values
    never depend on the device's own float64 arithmetic.
    """

    def __init__(
        self, config: Any, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.dtype = dtype

    def _tensor(self, value: Any) -> torch.Tensor:
        return torch.as_tensor(
            np.asarray(value, dtype=np.float64), dtype=self.dtype, device=self.device
        )

    def _column(self, values: Sequence[float] | np.ndarray) -> torch.Tensor:
        """[B] values as a [B, 1] tensor that broadcasts against pixel vectors [1, P]."""
        return self._tensor(np.asarray(values, dtype=np.float64)[:, None])
