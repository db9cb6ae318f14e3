"""Denoise files with a denoising checkpoint: the same files, without their noise.

:func:`denoise_files` writes, for every input (files, or folders of them), a file of the same
name and kind into the output folder: a darklens dataset (``.h5``) with the images denoised and
labels, split codes, truth, extra inputs and manifest kept (the manifest records the
checkpoint); a ``.npy`` array of the input's shape; a FITS file with every HDU and header kept and
the first image HDU's data denoised (float32). Each file is written atomically; an existing
output is replaced only with ``overwrite``. Unreadable inputs raise
:class:`~darklens.predict.inputs.BadInputError` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from darklens._atomic import atomic_output
from darklens.data.h5 import DatasetFormatError, DatasetWriter, LensDataset
from darklens.predict.ensemble import PathLike, resolve_inference_device
from darklens.predict.inputs import SUPPORTED, BadInputError, expand_inputs, input_kind
from darklens.predict.tasks import Denoiser
from darklens.runs import BEST

BLOCK = 256  # images denoised at a time


def denoise_files(
    checkpoint: PathLike,
    inputs: PathLike | Sequence[PathLike],
    out_dir: PathLike,
    *,
    which: str = BEST,
    tta: bool = False,
    batch_size: int = 64,
    device: str = "cpu",
    overwrite: bool = False,
    recursive: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Denoise every image of ``inputs`` into ``out_dir`` (created); returns the files written.

    ``progress`` is called with the number of images denoised after each block.
    """
    denoiser = Denoiser.from_checkpoint(
        checkpoint, which, device=resolve_inference_device(device), batch_size=batch_size
    )
    files = list(
        expand_inputs(inputs if not isinstance(inputs, (str, Path)) else [inputs], recursive)
    )
    out = Path(out_dir)
    targets = [out / path.name for path in files]
    for path, target in zip(files, targets, strict=True):
        if input_kind(path) not in ("dataset", "npy", "fits"):
            raise BadInputError(
                path, f"cannot denoise this file type; use one of {SUPPORTED}, except .npz"
            )
        if target.resolve() == path.resolve():
            raise ValueError(f"{target} would overwrite its input; choose another --out folder")
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite (--overwrite) to replace it")
    out.mkdir(parents=True, exist_ok=True)
    for path, target in zip(files, targets, strict=True):
        writer = {"dataset": _denoise_dataset, "npy": _denoise_npy, "fits": _denoise_fits}
        writer[input_kind(path)](denoiser, path, target, tta, progress, str(checkpoint))
    return targets


def _denoise_array(denoiser: Denoiser, array: np.ndarray, source: Path, tta: bool) -> np.ndarray:
    try:
        return denoiser.denoise(array, tta=tta)
    except ValueError as err:
        raise BadInputError(source, str(err)) from None


def _denoise_npy(
    denoiser: Denoiser,
    path: Path,
    target: Path,
    tta: bool,
    progress: Callable[[int], None] | None,
    checkpoint: str,
) -> None:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise BadInputError(path, f"not a readable numeric .npy array ({err})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        raise BadInputError(path, "must hold a numeric array (int or float)")
    if array.ndim >= 3 and array.shape[-1] <= 4 < array.shape[-2]:
        raise BadInputError(
            path, f"looks channel-last {array.shape}; save images as (N, C, H, W) or (C, H, W)"
        )
    denoised = _denoise_array(denoiser, array, path, tta)
    with atomic_output(target) as handle:
        np.save(handle, denoised.reshape(array.shape))
    if progress is not None:
        progress(len(denoised))


def _denoise_fits(
    denoiser: Denoiser,
    path: Path,
    target: Path,
    tta: bool,
    progress: Callable[[int], None] | None,
    checkpoint: str,
) -> None:
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdus:
            hdus = fits.HDUList([hdu.copy() for hdu in hdus])
    except Exception as err:  # astropy raises OSError, ValueError, VerifyError... when damaged
        raise BadInputError(path, f"not a readable FITS file ({err})") from None
    hdu = next((h for h in hdus if h.is_image and h.data is not None), None)
    if hdu is None or hdu.data.ndim not in (2, 3) or hdu.data.dtype.kind not in "iuf":
        raise BadInputError(path, "holds no 2-D image or 3-D cube (C, H, W) to denoise")
    data = np.asarray(hdu.data, dtype=np.float32)
    image = data[None] if data.ndim == 2 else data
    denoised = _denoise_array(denoiser, image[None], path, tta)[0]
    hdu.data = denoised.reshape(data.shape)
    hdu.header["HISTORY"] = f"denoised by darklens with {checkpoint}"
    with atomic_output(target) as handle:
        hdus.writeto(handle)
    if progress is not None:
        progress(1)


def _denoise_dataset(
    denoiser: Denoiser,
    path: Path,
    target: Path,
    tta: bool,
    progress: Callable[[int], None] | None,
    checkpoint: str,
) -> None:
    try:
        source = LensDataset(path)
    except (DatasetFormatError, OSError) as err:
        raise BadInputError(path, f"not a readable darklens dataset ({err})") from None
    with source:
        truth = {name: source.truth(name) for name in source.truth_columns}
        columns = {name: (v.shape[1:], v.dtype.str) for name, v in truth.items()}
        manifest = {**source.manifest, "denoised_by": checkpoint}
        n = len(source.labels)
        with DatasetWriter(
            target, n, source.image_shape, source.class_names, manifest, columns,
            {name: source.input_shape(name) for name in source.input_names} or None,
            overwrite=True,
        ) as writer:  # fmt: skip
            for start in range(0, n, BLOCK):
                rows = np.arange(start, min(start + BLOCK, n))
                denoised = _denoise_array(denoiser, source.images(rows), path, tta)
                writer.write(
                    start, denoised, source.labels[rows], source.split_codes[rows],
                    {name: values[rows] for name, values in truth.items()},
                    {name: source.inputs(name, rows) for name in source.input_names} or None,
                )  # fmt: skip
                if progress is not None:
                    progress(len(rows))
