"""The physical description of a model's input, so mismatched data is never scored silently.

A checkpoint records what its images were (band names and order, pixel scale, image size, flux
units, the simulation preset), taken from the training dataset's manifest. Before scoring,
``predict`` and ``evaluate`` compare it with what they know of the input: another dataset's
manifest, a FITS header's WCS (pixel scale) or a Bologna folder's band names. Only fields known
on both sides are compared; a difference raises :class:`InputMismatchError` unless the caller
allows it (CLI: ``--allow-mismatch``). Bands named on both sides but stored in another order are
not a mismatch: :func:`band_order` gives the permutation that puts them in the model's order.
Checkpoints written before this description existed load as "unknown" with one warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PIXEL_SCALE_RTOL = 1e-3
_warned_unknown: set[str] = set()


class InputMismatchError(ValueError):
    """The input's bands, pixel scale, size or units differ from the model's training data."""


@dataclass(frozen=True)
class InputDescription:
    """What one image of a dataset is physically; None where unknown."""

    band_names: tuple[str, ...] | None = None
    pixel_scale_arcsec: float | None = None
    image_size_px: tuple[int, int] | None = None
    flux_units: str | None = None
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "band_names": None if self.band_names is None else list(self.band_names),
            "pixel_scale_arcsec": self.pixel_scale_arcsec,
            "image_size_px": None if self.image_size_px is None else list(self.image_size_px),
            "flux_units": self.flux_units,
            "preset": self.preset,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> InputDescription:
        """From a checkpoint entry; anything malformed counts as unknown."""
        data = data if isinstance(data, Mapping) else {}
        bands = data.get("band_names")
        size = data.get("image_size_px")
        scale = data.get("pixel_scale_arcsec")
        return cls(
            band_names=tuple(str(b) for b in bands) if isinstance(bands, list) and bands else None,
            pixel_scale_arcsec=_positive(scale),
            image_size_px=(
                (int(size[0]), int(size[1]))
                if isinstance(size, list) and len(size) == 2 and all(type(s) is int for s in size)
                else None
            ),
            flux_units=data.get("flux_units") if isinstance(data.get("flux_units"), str) else None,
            preset=data.get("preset") if isinstance(data.get("preset"), str) else None,
        )


def _positive(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value > 0:
            return float(value)
    return None


def describe_dataset(manifest: Mapping[str, Any], image_shape: Sequence[int]) -> InputDescription:
    """The description of a darklens dataset from its manifest and image shape ``(C, H, W)``.

    Band names come from ``band_names`` (simulators, DeepGraviLens) or ``channels`` (Bologna
    imports); the pixel scale from ``pixel_scale_arcsec`` or the stored simulation config.
    """
    bands = manifest.get("band_names") or manifest.get("channels")
    if not (isinstance(bands, list) and len(bands) == image_shape[0]):
        bands = None
    scale = manifest.get("pixel_scale_arcsec")
    config = manifest.get("config")
    if scale is None and isinstance(config, Mapping):
        instrument = config.get("instrument")
        if isinstance(instrument, Mapping):
            scale = instrument.get("pixel_scale_arcsec")
    units = manifest.get("image_units")
    preset = manifest.get("preset")
    return InputDescription(
        band_names=None if bands is None else tuple(str(b) for b in bands),
        pixel_scale_arcsec=_positive(scale),
        image_size_px=(int(image_shape[1]), int(image_shape[2])),
        flux_units=units if isinstance(units, str) else None,
        preset=preset if isinstance(preset, str) else None,
    )


def band_order(trained: Sequence[str], given: Sequence[str]) -> list[int] | None:
    """Indices into ``given`` that put its bands in ``trained``'s order (names compared without
    case), or None when the two are not the same set of bands."""
    want = [b.lower() for b in trained]
    have = [b.lower() for b in given]
    if sorted(want) != sorted(have) or len(set(have)) != len(have):
        return None
    return [have.index(b) for b in want]


def mismatches(trained: InputDescription, given: InputDescription) -> list[str]:
    """How ``given`` differs from ``trained`` in the fields both know (bands as a set: another
    order is fixed by :func:`band_order`). Another image size at the same pixel scale is another
    field of view: resizing it to the model's size would change the angular scale, so it counts
    as a mismatch; without pixel scales, sizes are not compared (the predictor resizes and
    warns)."""
    found = []
    if trained.band_names and given.band_names:
        if band_order(trained.band_names, given.band_names) is None:
            found.append(
                f"bands {','.join(given.band_names)} but the model was trained on "
                f"{','.join(trained.band_names)}"
            )
    if trained.pixel_scale_arcsec and given.pixel_scale_arcsec:
        if not math.isclose(
            trained.pixel_scale_arcsec, given.pixel_scale_arcsec, rel_tol=PIXEL_SCALE_RTOL
        ):
            found.append(
                f'pixel scale {given.pixel_scale_arcsec:g}" but the model was trained at '
                f'{trained.pixel_scale_arcsec:g}"'
                + (f" ({trained.preset})" if trained.preset else "")
            )
    same_scale = (
        trained.pixel_scale_arcsec
        and given.pixel_scale_arcsec
        and math.isclose(
            trained.pixel_scale_arcsec, given.pixel_scale_arcsec, rel_tol=PIXEL_SCALE_RTOL
        )
    )
    if same_scale and trained.image_size_px and given.image_size_px:
        if tuple(trained.image_size_px) != tuple(given.image_size_px):
            found.append(
                f"{given.image_size_px[0]}x{given.image_size_px[1]} px images (another field of "
                f"view at the same pixel scale) but the model was trained on "
                f"{trained.image_size_px[0]}x{trained.image_size_px[1]} px"
            )
    if trained.flux_units and given.flux_units and trained.flux_units != given.flux_units:
        found.append(
            f"fluxes in {given.flux_units!r} but the model was trained on {trained.flux_units!r}"
        )
    return found


def check_input(
    trained: InputDescription | None,
    given: InputDescription,
    source: str,
    checkpoint: str,
    allow_mismatch: bool = False,
) -> None:
    """Raise :class:`InputMismatchError` naming ``source`` if ``given`` differs from what
    ``checkpoint`` was trained on, unless ``allow_mismatch`` (then warn). A checkpoint without a
    description (older darklens) is unknown: warned about once."""
    if trained is None:
        if checkpoint not in _warned_unknown:
            _warned_unknown.add(checkpoint)
            warnings.warn(
                f"{checkpoint} does not record its input's bands and pixel scale (written by an "
                "older darklens): cannot check that the data match",
                UserWarning,
                stacklevel=2,
            )
        return
    found = mismatches(trained, given)
    if not found:
        return
    message = f"{source} does not match {checkpoint}: {'; '.join(found)}"
    if allow_mismatch:
        warnings.warn(message + " (scored anyway: --allow-mismatch)", UserWarning, stacklevel=2)
        return
    raise InputMismatchError(
        message + ". Use data like the training set, or pass --allow-mismatch to score it anyway"
    )
