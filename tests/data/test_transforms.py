"""Batch augmentations and normalisations of darklens.data.transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darklens.data import transforms as T


def _unique_batch(batch: int = 3, channels: int = 2, size: int = 7) -> torch.Tensor:
    """Images whose pixels are all distinct, so any permutation of them is visible."""
    values = torch.randperm(
        batch * channels * size * size, generator=torch.Generator().manual_seed(0)
    )
    return values.float().view(batch, channels, size, size)


def _numpy_view(image: np.ndarray, k: int) -> np.ndarray:
    """Reference dihedral view with numpy: k % 4 counter-clockwise quarter turns, then a mirror."""
    out = np.rot90(image, k % 4, axes=(-2, -1))
    return np.flip(out, axis=-1) if k >= 4 else out


def test_dihedral_views_match_numpy_and_are_pixel_permutations():
    x = _unique_batch()
    views = T.dihedral_views(x)
    assert len(views) == 8
    for k, view in enumerate(views):
        np.testing.assert_array_equal(view.numpy(), _numpy_view(x.numpy(), k))
        # same multiset of pixel values per image and channel: a pure permutation
        np.testing.assert_array_equal(
            np.sort(view.flatten(2).numpy(), axis=-1), np.sort(x.flatten(2).numpy(), axis=-1)
        )
    flat = {tuple(v[0, 0].flatten().tolist()) for v in views}
    assert len(flat) == 8, "the 8 views must all differ on an asymmetric image"
    torch.testing.assert_close(views[0], x, rtol=0, atol=0)


def test_dihedral_rejects_bad_index():
    with pytest.raises(ValueError, match="0..7"):
        T.dihedral(_unique_batch(), 8)


def test_random_dihedral_picks_one_view_per_image_reproducibly():
    x = _unique_batch(batch=64, channels=1, size=5)
    out = T.random_dihedral(x, torch.Generator().manual_seed(3))
    chosen = []
    for i in range(len(x)):
        matches = [k for k in range(8) if torch.equal(out[i], T.dihedral(x[i : i + 1], k)[0])]
        assert len(matches) == 1
        chosen.append(matches[0])
    assert set(chosen) == set(range(8)), "64 draws should visit every view"
    again = T.random_dihedral(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, again, rtol=0, atol=0)
    other = T.random_dihedral(x, torch.Generator().manual_seed(4))
    assert not torch.equal(out, other)


def test_random_dihedral_needs_square_images():
    with pytest.raises(ValueError, match="square"):
        T.random_dihedral(torch.zeros(2, 1, 4, 6), torch.Generator())


def test_identity_affine_returns_the_input():
    x = torch.rand(4, 2, 9, 9, generator=torch.Generator().manual_seed(1))
    theta = T.affine_matrices(torch.ones(4), torch.zeros(4), torch.zeros(4, 2), (9, 9))
    torch.testing.assert_close(theta, torch.eye(2, 3).expand(4, 2, 3))
    torch.testing.assert_close(T.apply_affine(x, theta), x, rtol=0, atol=1e-6)


def test_integer_and_half_pixel_shifts_move_content_in_pixels():
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    ones, zeros = torch.ones(2), torch.zeros(2)
    right_one = T.apply_affine(
        x, T.affine_matrices(ones, zeros, torch.tensor([[1.0, 0]] * 2), (12, 12))
    )
    # interior columns: output column j holds input column j-1
    torch.testing.assert_close(right_one[..., 2:-2], x[..., 1:-3], rtol=0, atol=1e-5)
    down_half = T.apply_affine(
        x, T.affine_matrices(ones, zeros, torch.tensor([[0, 0.5]] * 2), (12, 12))
    )
    expected = 0.5 * (x[..., 1:-2, :] + x[..., 2:-1, :])
    torch.testing.assert_close(down_half[..., 2:-1, :], expected, rtol=0, atol=1e-5)


def test_shear_shifts_rows_in_proportion_to_their_height():
    size = 15
    x = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(5))
    theta = T.affine_matrices(torch.ones(1), torch.tensor([45.0]), torch.zeros(1, 2), (size, size))
    out = T.apply_affine(x, theta)
    centre = size // 2
    for row in (centre - 2, centre, centre + 3):
        offset = row - centre  # tan(45 deg) = 1: this row moves by `offset` pixels along x
        cols = np.arange(4, size - 4)
        torch.testing.assert_close(
            out[0, 0, row, cols], x[0, 0, row, cols - offset], rtol=0, atol=1e-5
        )


def test_zoom_scales_the_width_of_a_blob():
    size = 41
    yy, xx = torch.meshgrid(torch.arange(size) - 20.0, torch.arange(size) - 20.0, indexing="ij")
    blob = torch.exp(-(xx**2 + yy**2) / (2 * 4.0**2)).view(1, 1, size, size)

    def width(image: torch.Tensor) -> float:
        weights = image[0, 0] / image.sum()
        return float(torch.sqrt((weights * xx**2).sum()))

    zoomed = T.apply_affine(
        blob,
        T.affine_matrices(torch.tensor([0.6]), torch.zeros(1), torch.zeros(1, 2), (size, size)),
    )
    assert width(zoomed) == pytest.approx(0.6 * width(blob), rel=0.03)


def test_random_affine_is_seeded_and_skips_work_when_off():
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert T.random_affine(x, torch.Generator()) is x
    settings = dict(shift_px=0.7, scale_range=(0.8, 1.0), shear_deg=5.0)
    a = T.random_affine(x, torch.Generator().manual_seed(9), **settings)
    b = T.random_affine(x, torch.Generator().manual_seed(9), **settings)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, x)


def test_gaussian_noise_has_the_requested_std():
    x = torch.zeros(8, 1, 64, 64)
    noisy = T.gaussian_noise(x, 0.3, torch.Generator().manual_seed(0))
    assert float(noisy.std()) == pytest.approx(0.3, rel=0.02)
    assert T.gaussian_noise(x, 0.0, torch.Generator()) is x


def test_minmax_maps_each_image_to_unit_range():
    x = torch.randn(5, 2, 8, 8, generator=torch.Generator().manual_seed(0)) * 7 + 3
    out = T.minmax_normalize(x)
    flat = out.flatten(1)
    torch.testing.assert_close(flat.min(1).values, torch.zeros(5))
    torch.testing.assert_close(flat.max(1).values, torch.ones(5))
    ref = x.numpy().reshape(5, -1)
    ref = (ref - ref.min(1, keepdims=True)) / np.ptp(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(flat.numpy(), ref, atol=1e-6)


def test_zscore_gives_zero_mean_unit_std_per_image():
    x = torch.rand(4, 3, 10, 10, generator=torch.Generator().manual_seed(1)) * 5 - 2
    flat = T.zscore_normalize(x).flatten(1).double()
    torch.testing.assert_close(flat.mean(1), torch.zeros(4, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        flat.std(1, correction=0), torch.ones(4, dtype=torch.float64), atol=1e-5, rtol=0
    )


def test_constant_images_normalise_to_zero_not_nan():
    x = torch.full((2, 1, 4, 4), 3.0)
    for method in ("minmax", "zscore"):
        out = T.normalize(x, method)
        assert torch.isfinite(out).all()
        assert torch.count_nonzero(out) == 0


def test_dataset_stats_streamed_in_blocks_match_numpy_and_standardise():
    rng = np.random.default_rng(0)
    data = rng.normal([[1.0], [-4.0]], [[2.0], [0.5]], size=(50, 2, 36)).reshape(50, 2, 6, 6)
    mean, std = T.channel_stats([data[:17], data[17:30], data[30:]])
    np.testing.assert_allclose(mean, data.transpose(1, 0, 2, 3).reshape(2, -1).mean(1))
    np.testing.assert_allclose(std, data.transpose(1, 0, 2, 3).reshape(2, -1).std(1))
    out = T.normalize(torch.from_numpy(data).float(), "dataset", mean, std)
    per_channel = out.transpose(0, 1).flatten(1).double()
    torch.testing.assert_close(
        per_channel.mean(1), torch.zeros(2, dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        per_channel.std(1, correction=0), torch.ones(2, dtype=torch.float64), atol=1e-5, rtol=0
    )


def test_normalize_rejects_bad_requests():
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="unknown normalization"):
        T.normalize(x, "l2")
    with pytest.raises(ValueError, match="mean and std"):
        T.normalize(x, "dataset")
    with pytest.raises(ValueError, match="channel"):
        T.standardize(x, [0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        T.minmax_normalize(torch.rand(4, 4))
    with pytest.raises(ValueError, match="no images"):
        T.channel_stats([])


def test_resize_keeps_same_size_and_preserves_constants():
    x = torch.rand(2, 1, 8, 8)
    assert T.resize(x, 8) is x
    flat = T.resize(torch.full((1, 1, 32, 32), 2.5), 12)
    assert flat.shape == (1, 1, 12, 12)
    torch.testing.assert_close(flat, torch.full((1, 1, 12, 12), 2.5))


def test_preprocess_is_resize_then_normalise():
    x = torch.rand(3, 1, 20, 20, generator=torch.Generator().manual_seed(4)) * 9
    out = T.preprocess(x, "minmax", 10)
    assert out.shape == (3, 1, 10, 10)
    # normalising last makes every resized image span exactly [0, 1]
    torch.testing.assert_close(out.flatten(1).min(1).values, torch.zeros(3))
    torch.testing.assert_close(out.flatten(1).max(1).values, torch.ones(3))


def test_center_crop_keeps_the_central_pixels_as_numpy_slicing_does():
    x = torch.arange(2 * 3 * 11 * 10, dtype=torch.float32).reshape(2, 3, 11, 10)
    out = T.center_crop(x, 6)
    # (11 - 6) // 2 = 2 rows above, (10 - 6) // 2 = 2 columns left: numpy's slice, written out
    expected = x.numpy()[:, :, 2:8, 2:8]
    np.testing.assert_array_equal(out.numpy(), expected)
    assert T.center_crop(x, 10)[0, 0, 0, 0] == x[0, 0, 0, 0]  # odd margin: the extra row after
    # a centred point source stays at the centre of an odd crop of an odd image
    odd = torch.zeros(1, 1, 101, 101)
    odd[0, 0, 50, 50] = 1.0
    assert torch.nonzero(T.center_crop(odd, 65)[0, 0]).tolist() == [[32, 32]]
    with pytest.raises(ValueError, match="smaller than the crop"):
        T.center_crop(x, 12)


def test_preprocess_crops_before_resizing():
    x = torch.rand(2, 1, 40, 40, generator=torch.Generator().manual_seed(5))
    out = T.preprocess(x, "none", 10, crop=20)
    manual = T.resize(x[:, :, 10:30, 10:30], 10)
    torch.testing.assert_close(out, manual, rtol=0, atol=0)
    assert T.preprocess(x, "none", 20, crop=20).shape == (2, 1, 20, 20)


def test_asinh_is_linear_below_the_softening_and_logarithmic_above():
    softening = [2.0, 0.5]
    x = torch.tensor([0.02, 1e3]).view(1, 1, 1, 2).repeat(1, 2, 1, 1)
    out = T.normalize(x, "asinh", softening=softening)
    beta = np.array(softening)
    np.testing.assert_allclose(out[0, :, 0, 0].numpy(), np.arcsinh(0.02 / beta), rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 0, 0].numpy(), 0.02 / beta, rtol=1e-3)  # linear
    np.testing.assert_allclose(out[0, :, 0, 1].numpy(), np.log(2e3 / beta), rtol=1e-5)  # log
    assert torch.equal(T.normalize(-x, "asinh", softening=softening), -out)  # odd: noise stays
    with pytest.raises(ValueError, match="softening"):
        T.normalize(x, "asinh")
    with pytest.raises(ValueError, match="channel"):
        T.asinh_normalize(x, [1.0])
    torch.testing.assert_close(T.preprocess(x, "asinh", 1, softening=softening).shape, (1, 2, 1, 1))


def test_border_noise_sigma_finds_the_sky_noise_under_a_bright_centre():
    rng = np.random.default_rng(0)
    sigma = np.array([0.3, 2.0])
    images = rng.normal(0, 1, size=(40, 2, 32, 32)) * sigma[None, :, None, None]
    images[:, :, 8:24, 8:24] += 500.0  # a galaxy: outside the border frame
    blocks = [torch.from_numpy(images[:25]), torch.from_numpy(images[25:])]
    np.testing.assert_allclose(T.border_noise_sigma(blocks), sigma, rtol=0.03)
    # only the first max_images count, whatever the blocks
    assert T.border_noise_sigma(blocks, max_images=10) == T.border_noise_sigma([images[:10]])
    with pytest.raises(ValueError, match="no noise"):
        T.border_noise_sigma([np.zeros((2, 1, 16, 16))])
    with pytest.raises(ValueError, match="no images"):
        T.border_noise_sigma([])
