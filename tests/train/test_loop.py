"""The epoch loop: device-side sums, progress reported rarely, batches cut from one upload."""

import numpy as np
import torch
from torch import nn

from darklens.train.data import MemorySplit, batch_plan
from darklens.train.loop import BatchSettings, train_one_epoch


def _epoch(report_every_s: float, calls: list) -> tuple:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    data = MemorySplit(torch.randn(40, 1, 8, 8), np.arange(40) % 3)
    plan = batch_plan(np.arange(40), 8)
    settings = BatchSettings(torch.device("cpu"), img_size=8, normalization="none")
    totals = train_one_epoch(
        model,
        data.batches(plan),
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        settings,
        torch.Generator().manual_seed(1),
        lambda step: 0.1,
        on_batch=lambda loss, acc, steps: calls.append((loss, acc, steps)),
        report_every_s=report_every_s,
    )
    return totals, [p.detach().clone() for p in model.parameters()]


def test_progress_is_reported_rarely_and_counts_every_step():
    every, rare = [], []
    totals, weights = _epoch(0.0, every)
    rare_totals, rare_weights = _epoch(3600.0, rare)
    assert [c[2] for c in every] == [1] * 5
    assert [c[2] for c in rare] == [5]  # once, after the last step
    assert rare[0][:2] == every[-1][:2]  # the same running loss and accuracy
    assert totals == rare_totals and totals.count == 40 and totals.steps == 5
    assert all(torch.equal(a, b) for a, b in zip(weights, rare_weights, strict=True))


def test_memory_split_batches_follow_the_plan():
    images = torch.arange(10, dtype=torch.float32).reshape(10, 1, 1, 1)
    data = MemorySplit(images, np.arange(10) * 2)
    plan = [np.array([3, 1]), np.array([9]), np.array([0, 4, 5])]
    got = list(data.batches(plan))
    assert [b[0][0].flatten().tolist() for b in got] == [[3, 1], [9], [0, 4, 5]]
    assert [b[1].tolist() for b in got] == [[6, 2], [18], [0, 8, 10]]
    assert list(data.batches([])) == []
