"""Which torch device to run on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

from __future__ import annotations

import torch

AUTO = "auto"


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """The torch device for ``auto``/``cpu``/``cuda``/``cuda:N`` (``cuda`` → this rank's GPU).

    A CUDA request without a visible GPU is a ValueError naming the fix, never a silent CPU run.
    """
    if requested == AUTO:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but no CUDA GPU is visible; use cpu")
        return torch.device("cuda", local_rank) if requested == "cuda" else torch.device(requested)
    if requested != "cpu":
        raise ValueError(f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def wants_cuda(requested: str) -> bool:
    """Whether ``requested`` will run on a GPU (``auto`` only when one is visible)."""
    return requested.startswith("cuda") or (requested == AUTO and torch.cuda.is_available())
