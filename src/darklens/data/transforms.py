"""Batch transforms for lensing images: augmentations and normalisations on [B, C, H, W] tensors.

Everything here is a pure function of its inputs. Augmentations run on whole batches after
loading (on the training device), and draw their randomness from an explicit
:class:`torch.Generator`, so a seeded generator reproduces a batch exactly.

Geometric augmentations respect the symmetries of lensing data: the dihedral group (the 8
flips/rotations by multiples of 90 degrees) is exact, and small sub-pixel shifts, zooms and shears
are applied together by one ``affine_grid`` + ``grid_sample`` resampling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

NORMALIZATIONS = ("minmax", "channel_minmax", "zscore", "dataset", "asinh", "none")
# Per-example scaling of extra inputs shaped [T, C] (e.g. light curves: epochs x bands).
SERIES_NORMALIZATIONS = ("series_minmax", "none")
N_DIHEDRAL = 8
_EPS = 1e-12


# -- dihedral group ------------------------------------------------------------------------------
def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """View ``k`` (0..7) of the dihedral group: rotate by ``k % 4`` quarter turns, then mirror
    left-right when ``k >= 4``. View 0 is the identity. Odd rotations need square images."""
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"dihedral view index must be in 0..7, got {k}")
    out = torch.rot90(x, k % 4, dims=(-2, -1))
    return out.flip(-1) if k >= 4 else out


def dihedral_views(x: torch.Tensor) -> list[torch.Tensor]:
    """All 8 dihedral views of a batch (identity first), e.g. for test-time augmentation."""
    return [dihedral(x, k) for k in range(N_DIHEDRAL)]


def random_dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply an independently drawn dihedral view to every image of the batch."""
    _require_batch(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"dihedral augmentation needs square images, got {tuple(x.shape[-2:])}")
    views = _randint(N_DIHEDRAL, (x.shape[0],), generator).to(x.device, non_blocking=True)
    # All eight views, then each image's own: no data-dependent shapes, so no host sync on a GPU.
    candidates = torch.stack(dihedral_views(x))
    return candidates[views, torch.arange(x.shape[0], device=x.device)]


# -- affine: sub-pixel shift, zoom, shear --------------------------------------------------------
def affine_matrices(
    scale: torch.Tensor, shear_deg: torch.Tensor, shift_px: torch.Tensor, size: Sequence[int]
) -> torch.Tensor:
    """Sampling matrices ``theta`` [B, 2, 3] for :func:`apply_affine`.

    The image content is zoomed by ``scale`` [B] (0.8 shrinks it to 80 %), sheared along x by
    ``shear_deg`` [B] (degrees) and moved by ``shift_px`` [B, 2] (x, y in pixels, may be
    fractional). ``size`` is the image (H, W). ``affine_grid`` maps output to input positions, so
    theta is the inverse of that forward transform, in normalised coordinates (2/W per pixel).
    """
    height, width = size
    batch = scale.shape[0]
    forward = torch.zeros(batch, 2, 2, dtype=torch.float64, device=scale.device)
    forward[:, 0, 0] = scale.double()
    forward[:, 0, 1] = scale.double() * torch.tan(torch.deg2rad(shear_deg.double()))
    forward[:, 1, 1] = scale.double()
    to_unit = torch.tensor([2.0 / width, 2.0 / height], dtype=torch.float64, device=scale.device)
    shift = shift_px.double() * to_unit
    inverse = torch.linalg.inv_ex(forward).inverse  # inv() would check errors: a GPU sync
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(-1))], dim=2)
    return theta.float()


def apply_affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample a batch with sampling matrices ``theta`` (bilinear).

    Pixels that come from outside the image repeat the nearest edge pixel: mirroring would bring
    ghost copies of a central lens into a zoomed-out image, zeros a dark frame around sky noise.
    """
    _require_batch(x)
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    shift_px: float = 0.0,
    scale_range: tuple[float, float] = (1.0, 1.0),
    shear_deg: float = 0.0,
) -> torch.Tensor:
    """Random shift (uniform in ±``shift_px`` pixels per axis), zoom (uniform in ``scale_range``)
    and x-shear (uniform in ±``shear_deg`` degrees), drawn per image and applied in one pass.
    Returns ``x`` unchanged (no resampling blur) when every amplitude is zero."""
    _require_batch(x)
    low, high = scale_range
    if shift_px == 0 and shear_deg == 0 and low == high == 1.0:
        return x
    batch = x.shape[0]
    scale = low + (high - low) * _rand((batch,), generator)
    shear = shear_deg * (2 * _rand((batch,), generator) - 1)
    shift = shift_px * (2 * _rand((batch, 2), generator) - 1)
    return apply_affine(x, affine_matrices(scale, shear, shift, x.shape[-2:]))


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``std`` (in the units of ``x``)."""
    if std == 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    return x + std * noise.to(x.device)


# -- normalisation -------------------------------------------------------------------------------
def minmax_normalize(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max scaling to [0, 1] over all channels and pixels; constant images give 0."""
    _require_batch(x)
    flat = x.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1, 1) - low).clamp_min(_EPS)
    return (x - low) / span


def channel_minmax_normalize(x: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel min-max scaling to [0, 1] (each band on its own, as DeepGraviLens
    scaled its coadded images); constant channels give 0."""
    _require_batch(x)
    flat = x.flatten(2)
    low = flat.min(dim=2).values[..., None, None]
    span = (flat.max(dim=2).values[..., None, None] - low).clamp_min(_EPS)
    return (x - low) / span


def series_minmax_normalize(x: torch.Tensor) -> torch.Tensor:
    """Min-max scaling of series [B, T, C] to [0, 1] along T, per example and channel (light
    curves per band, as DeepGraviLens scaled them); constant series give 0."""
    if x.ndim != 3:
        raise ValueError(f"expected a batch of series [B, T, C], got shape {tuple(x.shape)}")
    low = x.amin(dim=1, keepdim=True)
    span = (x.amax(dim=1, keepdim=True) - low).clamp_min(_EPS)
    return (x - low) / span


def normalize_series(x: torch.Tensor, method: str) -> torch.Tensor:
    """Apply one of :data:`SERIES_NORMALIZATIONS` to a batch of series [B, T, C]."""
    if method == "series_minmax":
        return series_minmax_normalize(x)
    if method == "none":
        return x
    raise ValueError(
        f"unknown series normalization {method!r}; choose one of {', '.join(SERIES_NORMALIZATIONS)}"
    )


def zscore_normalize(x: torch.Tensor) -> torch.Tensor:
    """Per-image standardisation to mean 0 and standard deviation 1; constant images give 0."""
    _require_batch(x)
    flat = x.flatten(1)
    mean = flat.mean(dim=1).view(-1, 1, 1, 1)
    std = flat.std(dim=1, correction=0).view(-1, 1, 1, 1).clamp_min(_EPS)
    return (x - mean) / std


def standardize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Per-channel standardisation with fixed (dataset) statistics."""
    _require_batch(x)
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise ValueError(
            f"dataset statistics are for {len(mean)} channel(s) but the images have {x.shape[1]}"
        )
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean_t) / std_t.clamp_min(_EPS)


def asinh_normalize(x: torch.Tensor, softening: Sequence[float]) -> torch.Tensor:
    """asinh(x / softening[c]) per channel (Lupton, Gunn & Szalay 1999, AJ 118, 1406): linear
    within a few softenings (the noise, when the softening is the sky noise), logarithmic above,
    so faint arcs and a bright lens galaxy fit one dynamic range with a fixed scale per band."""
    _require_batch(x)
    if len(softening) != x.shape[1]:
        raise ValueError(
            f"asinh softening is for {len(softening)} channel(s) but the images have {x.shape[1]}"
        )
    beta = torch.as_tensor(softening, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return torch.asinh(x / beta.clamp_min(_EPS))


def border_noise_sigma(
    blocks: Iterable[torch.Tensor | np.ndarray], border: int = 4, max_images: int = 4096
) -> list[float]:
    """Per-channel noise σ of raw images: 1.4826 × the median absolute deviation of the pixels in
    each image's outer ``border`` frame (sky, mostly), pooled over up to ``max_images`` images
    (the first ones, so the estimate is reproducible)."""
    frames: list[np.ndarray] = []
    seen = 0
    for block in blocks:
        if block.ndim != 4:
            raise ValueError(f"expected a batch of images [B, C, H, W], got shape {block.shape}")
        data = np.asarray(block[: max_images - seen], dtype=np.float64)
        edge = min(border, data.shape[-1] // 4, data.shape[-2] // 4) or 1
        mask = np.zeros(data.shape[-2:], dtype=bool)
        mask[:edge], mask[-edge:], mask[:, :edge], mask[:, -edge:] = True, True, True, True
        frames.append(data[:, :, mask].transpose(1, 0, 2).reshape(data.shape[1], -1))
        seen += data.shape[0]
        if seen >= max_images:
            break
    if not frames:
        raise ValueError("cannot estimate the noise from no images")
    pixels = np.concatenate(frames, axis=1)
    centred = np.abs(pixels - np.median(pixels, axis=1, keepdims=True))
    sigma = 1.4826 * np.median(centred, axis=1)
    if not np.all(sigma > 0):
        raise ValueError(
            "the image borders have no noise in some band (noiseless data?): asinh needs a "
            "softening; use another normalization"
        )
    return sigma.tolist()


def normalize(
    x: torch.Tensor,
    method: str,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    softening: Sequence[float] | None = None,
) -> torch.Tensor:
    """Apply one of :data:`NORMALIZATIONS`; ``dataset`` needs per-channel ``mean`` and ``std``,
    ``asinh`` the per-channel ``softening``."""
    if method == "minmax":
        return minmax_normalize(x)
    if method == "channel_minmax":
        return channel_minmax_normalize(x)
    if method == "zscore":
        return zscore_normalize(x)
    if method == "dataset":
        if mean is None or std is None:
            raise ValueError("normalization 'dataset' needs the dataset mean and std")
        return standardize(x, mean, std)
    if method == "asinh":
        if softening is None:
            raise ValueError("normalization 'asinh' needs the per-channel softening")
        return asinh_normalize(x, softening)
    if method == "none":
        return x
    raise ValueError(f"unknown normalization {method!r}; choose one of {', '.join(NORMALIZATIONS)}")


def channel_stats(
    blocks: Iterable[torch.Tensor | np.ndarray],
) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over an iterable of [B, C, H, W] blocks.

    Accumulated in float64 so that a large dataset can be streamed block by block.
    """
    count = 0
    total: torch.Tensor | None = None
    total_sq: torch.Tensor | None = None
    for block in blocks:
        block = torch.as_tensor(block, dtype=torch.float64)
        _require_batch(block)
        per_channel = block.transpose(0, 1).flatten(1)
        sums, sums_sq = per_channel.sum(dim=1), (per_channel**2).sum(dim=1)
        total = sums if total is None else total + sums
        total_sq = sums_sq if total_sq is None else total_sq + sums_sq
        count += per_channel.shape[1]
    if total is None or total_sq is None or count == 0:
        raise ValueError("cannot compute dataset statistics from no images")
    mean = total / count
    var = (total_sq / count - mean**2).clamp_min(0.0)
    return mean.tolist(), var.sqrt().tolist()


def check_crop_fits(height: int, width: int, size: int) -> None:
    """ValueError unless ``height`` x ``width`` images hold a ``size`` x ``size`` crop."""
    if height < size or width < size:
        raise ValueError(
            f"cannot crop {height}x{width} images to {size}x{size}: they are smaller than the "
            "crop the model was trained with"
        )


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` pixels of a batch [B, C, H, W] (an odd margin puts the
    extra pixel after the crop, so a crop keeps the pixel the image is centred on)."""
    _require_batch(x)
    height, width = x.shape[-2:]
    check_crop_fits(height, width, size)
    top, left = (height - size) // 2, (width - size) // 2
    return x[..., top : top + size, left : left + size]


def fit_size(x: torch.Tensor, img_size: int, crop: int | None = None) -> torch.Tensor:
    """A batch cropped to its central ``crop`` pixels (when given), then resized to
    ``img_size``: the geometric part of the preprocessing."""
    return resize(x if crop is None else center_crop(x, crop), img_size)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a batch to ``size`` x ``size`` pixels (bilinear, antialiased when shrinking)."""
    _require_batch(x)
    if tuple(x.shape[-2:]) == (size, size):
        return x
    shrinking = x.shape[-1] > size or x.shape[-2] > size
    return F.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking
    )


def preprocess(
    x: torch.Tensor,
    normalization: str,
    img_size: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    softening: Sequence[float] | None = None,
    crop: int | None = None,
) -> torch.Tensor:
    """The deterministic preprocessing shared by training, evaluation and prediction: crop to
    the central ``crop`` pixels (when given), resize to ``img_size``, then normalise."""
    return normalize(fit_size(x, img_size, crop), normalization, mean, std, softening)


# -- helpers -------------------------------------------------------------------------------------
def _require_batch(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images [B, C, H, W], got shape {tuple(x.shape)}")


def _rand(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Uniforms on the generator's device (a copy to the host would wait for the GPU)."""
    return torch.rand(shape, generator=generator, device=generator.device)


def _randint(high: int, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randint(high, shape, generator=generator, device=generator.device)
