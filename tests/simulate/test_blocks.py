"""The block runner's accelerator paths (render threads; parameter-drawing worker processes)
store the same blocks, in order, as the plain loop; run here with a CPU renderer."""

import numpy as np
import pytest

from darklens.simulate.api import resolve_config
from darklens.simulate.blocks import (
    _render_overlapped,
    _render_with_draw_workers,
    plan_blocks,
    render_blocks,
)
from darklens.simulate.kinds import kind_of


def collect(run) -> list:
    stored = []
    run(lambda start, block: stored.append((start, block)))
    return stored


@pytest.mark.parametrize("name", ["model_ii", "lensfind_space"])
def test_accelerator_paths_store_what_the_plain_loop_does(name):
    config = resolve_config(name, overrides={"instrument.num_pix": 24})
    kind = kind_of(config)
    renderer = kind.renderer(config, "cpu")
    labels = np.arange(11) % len(config.class_names)
    blocks = plan_blocks(11, 3, 1, "cpu")

    def own(start: int, stop: int) -> np.ndarray:
        return labels[start:stop]

    plain = collect(lambda store: render_blocks(kind, renderer, 5, blocks, labels, 1, store))
    runs = [lambda store: _render_overlapped(kind, renderer, 5, blocks, own, store)]
    if kind.draw_block is not None:
        runs.append(
            lambda store: _render_with_draw_workers(kind, renderer, 5, blocks, own, store, 2)
        )
    for run in runs:
        got = collect(run)
        assert [s for s, _ in got] == [0, 3, 6, 9]
        for (_, a), (_, b) in zip(got, plain, strict=True):
            assert np.array_equal(a.images, b.images)


def test_gpu_workers_need_a_kind_that_draws_in_workers(monkeypatch):
    from darklens.simulate import blocks

    monkeypatch.setattr(blocks, "resolve_device", lambda device: None)  # as if a GPU were there
    with pytest.raises(ValueError, match="--workers 1 with a GPU"):
        plan_blocks(10, 2, 2, "cuda")
    assert plan_blocks(10, 4, 2, "cuda", draws_in_workers=True) == [(0, 4), (4, 8), (8, 10)]
