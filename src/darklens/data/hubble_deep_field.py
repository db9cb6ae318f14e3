"""darklens' built-in bank of real galaxy images, cut from the Hubble Deep Field image that
scikit-image ships (``skimage.data.hubble_deep_field()``).

That image is the public colour composite of the Hubble eXtreme Deep Field (NASA/ESA, 872 × 1000
pixels, three 8-bit channels, JPEG): a display picture, not calibrated data. What is done, step by
step, with fixed settings (so the bank is the same on every machine with the same image):

1. each channel is decoded from sRGB to linear intensity (the inverse sRGB transfer curve; the
   press image's own display stretch is unknown, so fluxes are approximate) and the three are
   averaged into one luminance image;
2. the sky level and noise are the median and the MAD-σ (1.4826 × median absolute deviation) of
   the whole image, most of which is empty sky;
3. galaxies are found as 8-connected regions of the image smoothed by a Gaussian of σ = 1 px
   that lie more than :data:`DETECTION_SIGMA` σ above the sky; regions of fewer than
   :data:`MIN_AREA_PX` pixels are dropped, and so are regions with :data:`SATURATED_PX` or more
   pixels saturated in all three channels: the field's two bright stars (with diffraction
   spikes) and one bright galaxy pair;
4. each galaxy is cut in a square box centred on its flux-weighted centre, of side
   :data:`BOX_PER_EXTENT` × the longer side of its region's bounding box (at least
   :data:`MIN_BOX_PX`); boxes that would leave the image are skipped;
5. in the box the sky level is subtracted, every pixel outside the galaxy's own region (grown by
   :data:`GROW_PX` pixels) is set to zero, which removes neighbours and sky noise, and negative
   values are set to zero;
6. the box is resampled (anti-aliased) to :data:`SIDE_PX` × :data:`SIDE_PX` pixels and scaled to
   unit total flux; the :data:`MAX_GALAXIES` brightest galaxies are kept, brightest first.

A galaxy's size in the sky is not known from the picture: the simulator sets it through the
box's angular side (``source.bank_box_arcsec``). :func:`half_light_fraction` gives each cutout's
half-light radius as a fraction of its box side, to choose that box.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DETECTION_SIGMA = 5.0
MIN_AREA_PX = 80
SATURATED_PX = 6
BOX_PER_EXTENT = 1.5
MIN_BOX_PX = 16
GROW_PX = 2
SIDE_PX = 64
MAX_GALAXIES = 128


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer curve for values in [0, 1]."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


@lru_cache(maxsize=1)
def hubble_deep_field_cutouts() -> tuple[np.ndarray, ...]:
    """The bank's galaxy images: float64 [SIDE_PX, SIDE_PX], each of unit total flux (cached)."""
    from skimage import data, filters, measure, morphology, transform

    rgb = data.hubble_deep_field().astype(np.float64) / 255.0
    luminance = srgb_to_linear(rgb).mean(axis=2)
    sky = float(np.median(luminance))
    sky_sigma = 1.4826 * float(np.median(np.abs(luminance - sky)))
    detected = filters.gaussian(luminance, sigma=1.0) > sky + DETECTION_SIGMA * sky_sigma
    labels = measure.label(detected, connectivity=2)
    saturated = rgb.min(axis=2) >= 250 / 255
    cutouts: list[tuple[float, np.ndarray]] = []
    for region in measure.regionprops(labels, intensity_image=luminance):
        if region.area < MIN_AREA_PX or saturated[labels == region.label].sum() >= SATURATED_PX:
            continue
        box = _box(region, luminance.shape)
        if box is None:
            continue
        rows, cols = box
        own = morphology.dilation(labels[rows, cols] == region.label, morphology.disk(GROW_PX))
        galaxy = np.where(own, np.clip(luminance[rows, cols] - sky, 0.0, None), 0.0)
        resampled = transform.resize(galaxy, (SIDE_PX, SIDE_PX), order=1, anti_aliasing=True)
        resampled = np.clip(resampled, 0.0, None)
        total = float(resampled.sum())
        if total > 0:
            cutouts.append((float(galaxy.sum()), resampled / total))
    cutouts.sort(key=lambda item: -item[0])
    return tuple(image for _, image in cutouts[:MAX_GALAXIES])


def _box(region, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """The square box around a region (see the module docstring), or None if it leaves the image."""
    top, left, bottom, right = region.bbox
    side = max(MIN_BOX_PX, int(np.ceil(BOX_PER_EXTENT * max(bottom - top, right - left))))
    centre_row, centre_col = region.centroid_weighted
    row0 = int(round(centre_row - side / 2))
    col0 = int(round(centre_col - side / 2))
    if row0 < 0 or col0 < 0 or row0 + side > shape[0] or col0 + side > shape[1]:
        return None
    return slice(row0, row0 + side), slice(col0, col0 + side)


def half_light_fraction(image: np.ndarray) -> float:
    """Radius holding half the flux about the flux-weighted centre, as a fraction of the side."""
    n_rows, n_cols = image.shape
    yy, xx = np.mgrid[:n_rows, :n_cols]
    total = image.sum()
    cy, cx = (image * yy).sum() / total, (image * xx).sum() / total
    radius = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(radius)
    cumulative = np.cumsum(image.ravel()[order])
    return float(radius[order][np.searchsorted(cumulative, 0.5 * total)] / max(n_rows, n_cols))
