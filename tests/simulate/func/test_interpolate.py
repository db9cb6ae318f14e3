"""Pixelated light against lenstronomy's INTERPOL profile (the independent reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lenstronomy.LightModel.Profiles.interpolation import Interpol

from darklens.simulate.func.interpolate import interpolate_images


def _items(shapes, centres, angles, scales, flips):
    """Flat pixels and per-item tensors for images of the given shapes (random pixels)."""
    rng = np.random.default_rng(1)
    images = [rng.random(shape) for shape in shapes]
    sizes = [im.size for im in images]
    column = lambda values: torch.tensor(np.asarray(values, dtype=np.float64)[:, None])  # noqa: E731
    item = {
        "offset": torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]))[:, None],
        "height": torch.tensor([s[0] for s in shapes])[:, None],
        "width": torch.tensor([s[1] for s in shapes])[:, None],
        "x": column([c[0] for c in centres]),
        "y": column([c[1] for c in centres]),
        "cos": column(np.cos(angles)),
        "sin": column(np.sin(angles)),
        "scale": column(scales),
        "flip": column(flips),
    }
    return images, torch.tensor(np.concatenate([im.ravel() for im in images])), item


def test_batch_of_mixed_images_equals_lenstronomy_interpol():
    shapes = [(20, 30), (17, 17), (9, 40)]
    centres, angles = [(0.1, -0.2), (-0.3, 0.05), (0.0, 0.0)], [0.7, -2.9, 0.0]
    scales = [0.1, 0.05, 0.2]
    images, flat, item = _items(shapes, centres, angles, scales, [1.0, -1.0, 1.0])
    rng = np.random.default_rng(2)
    half_extent = np.array([[max(s) * c / 2] for s, c in zip(shapes, scales, strict=True)])
    x, y = (rng.uniform(-1.3, 1.3, (2, 3, 2000)) * half_extent).tolist()
    x, y = np.array(x), np.array(y)
    ours = interpolate_images(flat, item, torch.tensor(x), torch.tensor(y)).numpy()
    for i, image in enumerate(images):
        # mirroring negates the image's u axis: lenstronomy sees the left-right mirrored image
        reference_image = image[:, ::-1] if i == 1 else image
        reference = Interpol().function(
            x[i], y[i], image=reference_image, amp=1.0, center_x=centres[i][0],
            center_y=centres[i][1], phi_G=angles[i], scale=scales[i],
        )  # fmt: skip
        np.testing.assert_allclose(ours[i], reference, rtol=0, atol=1e-12)
        assert 0.1 < np.mean(reference != 0) < 0.9  # inside and outside the image both tested


def test_unrotated_image_is_reproduced_at_its_pixel_centres_and_zero_beyond():
    images, flat, item = _items([(8, 12)], [(0.0, 0.0)], [0.0], [1.0], [1.0])
    rows, cols = np.mgrid[:8, :12]
    x = torch.tensor((cols - 5.5).ravel()[None], dtype=torch.float64)
    y = torch.tensor((rows - 3.5).ravel()[None], dtype=torch.float64)
    np.testing.assert_allclose(interpolate_images(flat, item, x, y)[0].numpy(), images[0].ravel())
    beyond = torch.tensor([[7.0, -7.0, 0.0, 0.0]], dtype=torch.float64)
    others = torch.tensor([[0.0, 0.0, 4.6, -4.6]], dtype=torch.float64)
    assert torch.all(interpolate_images(flat, item, beyond, others) == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_an_items_values_do_not_depend_on_its_batch(dtype):
    shapes = [(20, 30), (17, 17)]
    _, flat, item = _items(shapes, [(0.1, 0.0), (0.0, 0.2)], [0.3, 1.0], [0.05, 0.07], [1.0, 1.0])
    item = {k: v.to(dtype) if v.is_floating_point() else v for k, v in item.items()}
    flat = flat.to(dtype)
    grid = torch.linspace(-1, 1, 64, dtype=dtype)[None].expand(2, -1)
    both = interpolate_images(flat, item, grid, grid.flip(-1))
    alone = interpolate_images(
        flat, {k: v[1:] for k, v in item.items()}, grid[1:], grid[1:].flip(-1)
    )
    assert torch.equal(both[1:], alone)
