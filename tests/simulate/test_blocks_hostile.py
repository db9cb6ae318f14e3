"""Simulation settings checked before any work starts (issue 12, item 7)."""

from __future__ import annotations

import pytest
import torch

from darklens.simulate import blocks
from darklens.simulate.blocks import check_device, render_blocks, worker_count


def test_worker_count_is_capped_by_blocks_and_cores(monkeypatch):
    monkeypatch.setattr(blocks.os, "cpu_count", lambda: 2)
    assert worker_count(40, 1) == 1
    assert worker_count(40, 10) == 2
    assert worker_count(1, 10) == 1


def test_one_block_never_starts_a_process_pool(monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started for one block")

    monkeypatch.setattr(blocks, "ProcessPoolExecutor", no_pool)
    stored = []
    render_blocks(
        object(), lambda r, seed, a, b: (a, b), 0, [(0, 5)], 40, lambda s, v: stored.append(v)
    )
    assert stored == [(0, 5)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU is visible"):
        check_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        check_device("gpu0")
