"""Simulation settings checked before any work starts (issue 12, item 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darklens.device import resolve_device
from darklens.simulate import blocks
from darklens.simulate.blocks import plan_blocks, render_blocks, worker_count
from darklens.simulate.kinds import Block


def test_worker_count_is_capped_by_blocks_and_cores(monkeypatch):
    monkeypatch.setattr(blocks.os, "cpu_count", lambda: 2)
    assert worker_count(40, 1) == 1
    assert worker_count(40, 10) == 2
    assert worker_count(1, 10) == 1


def test_one_block_never_starts_a_process_pool(monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started for one block")

    monkeypatch.setattr(blocks, "ProcessPoolExecutor", no_pool)
    class OneKind:
        name = "test"

        @staticmethod
        def render_block(renderer, seed, start, stop, labels):
            return Block(np.zeros((stop - start, 1, 2, 2), np.float32), {"start": labels})

    stored = []
    render_blocks(OneKind(), None, 0, [(0, 5)], np.arange(5), 40, lambda s, b: stored.append(b))
    assert len(stored) == 1 and stored[0].truth["start"].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU is visible"):
        plan_blocks(10, 4, 1, "cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
