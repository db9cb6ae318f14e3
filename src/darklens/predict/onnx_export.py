"""Export a trained checkpoint to ONNX, checked against torch with onnxruntime.

What is exported is the network followed by a softmax: input ``image``, float32
``[batch, in_chans, img_size, img_size]`` **already preprocessed**; output ``probabilities``,
float32 ``[batch, n_classes]`` in the order of the class names. The preprocessing is not baked
into the graph (its antialiased resize has no exact ONNX equivalent); it is written beside the
model as ``<out>.json`` (e.g. ``model.onnx.json``) with the class names, the checkpoint's
``preprocessing`` entry and the steps in words, so any runtime can reproduce it:

0. with ``crop`` set, cut each image to its central ``crop`` x ``crop`` pixels;
1. resize each image to ``img_size`` x ``img_size`` (bilinear, antialiased when shrinking; skip
   when the image already has that size, as for images like the training data);
2. normalise with ``normalization``: ``minmax`` scales each image to [0, 1] over all its channels
   and pixels, ``zscore`` to mean 0 and standard deviation 1 per image, ``dataset`` subtracts the
   per-channel ``mean`` and divides by ``std``, ``none`` leaves the values.

The model is traced by torch's TorchScript-based exporter (the torch.export-based one needs
onnxscript, which darklens does not depend on). That exporter refuses adaptive average pooling
whose output size does not divide its input size (e.g. ``deeplense_cnn`` below 64 px or at
150 px); as the input size is fixed, such a pool is exported as the equivalent pair of matrix
products (:class:`MatrixAdaptiveAvgPool2d`). Before anything is written, onnxruntime runs the
exported graph on seeded random inputs and must agree with torch within
:data:`AGREEMENT_TOLERANCE` in every probability, else :class:`OnnxMismatchError` is raised and no
file is left behind.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from darklens import __version__
from darklens.data.preprocessing import Preprocessing
from darklens.runs import (
    BEST,
    atomic_write_bytes,
    atomic_write_text,
    checkpoint_json_path,
    load_checkpoint,
    to_json_safe,
)

FORMAT = "darklens-onnx"
FORMAT_VERSION = 1
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
AGREEMENT_TOLERANCE = 1e-4  # max |p_onnx - p_torch| over all checked probabilities
MIN_OPSET = 11
CHECK_SEED = 0
CHECK_BATCH_SIZES = (1, 3)  # dynamic batch: a single image and a small batch
STATIC_BATCH = 1
FORMATS = ("onnx",)

NORMALIZATION_STEPS = {
    "minmax": "scale each image to [0, 1]: (x - min) / (max - min) over all its channels and "
    "pixels (a constant image becomes 0)",
    "zscore": "standardise each image: (x - mean) / std over all its channels and pixels "
    "(population std; a constant image becomes 0)",
    "dataset": "standardise each channel with the stored dataset statistics: "
    "(x - mean[c]) / std[c]",
    "channel_minmax": "scale each channel of each image to [0, 1]: (x - min) / (max - min)",
    "asinh": "per channel: asinh(x / softening[c]), the stored softening (training sky noise)",
    "none": "use the values as they are",
}


class OnnxMismatchError(RuntimeError):
    """onnxruntime's probabilities differ from torch's by more than the tolerance."""


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and how closely onnxruntime matched torch."""

    model_path: Path
    spec_path: Path
    max_abs_diff: float
    class_names: tuple[str, ...]


class ProbabilityModel(nn.Module):
    """A classifier followed by a softmax over its class logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def adaptive_pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """The [n_out, n_in] matrix of 1-D adaptive average pooling: output ``k`` is the mean of
    inputs ``floor(k n_in / n_out)`` up to (excluding) ``ceil((k + 1) n_in / n_out)``."""
    matrix = torch.zeros(n_out, n_in)
    for k in range(n_out):
        start = (k * n_in) // n_out
        stop = -(-(k + 1) * n_in // n_out)
        matrix[k, start:stop] = 1.0 / (stop - start)
    return matrix


class MatrixAdaptiveAvgPool2d(nn.Module):
    """Adaptive average pooling of a fixed input size as ``rows @ x @ cols`` (exportable)."""

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", adaptive_pool_matrix(in_size[0], out_size[0]))
        self.register_buffer("cols", adaptive_pool_matrix(in_size[1], out_size[1]).T.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows @ x @ self.cols


def _pool_sizes(module: nn.AdaptiveAvgPool2d, in_size: tuple[int, int]) -> tuple[int, int]:
    out = module.output_size
    pair = (out, out) if isinstance(out, int) else tuple(out)
    return tuple(i if o is None else int(o) for i, o in zip(in_size, pair, strict=True))


def exportable_copy(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of ``model`` whose adaptive average pools that the exporter refuses (output size
    not dividing the input size seen on ``example``) are :class:`MatrixAdaptiveAvgPool2d`."""
    clone = copy.deepcopy(model).to(example.device).eval()
    seen: dict[str, tuple[int, int]] = {}

    def recorder(name: str):
        def record(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen.setdefault(name, tuple(args[0].shape[-2:]))

        return record

    hooks = [
        module.register_forward_pre_hook(recorder(name))
        for name, module in clone.named_modules()
        if isinstance(module, nn.AdaptiveAvgPool2d)
    ]
    try:
        with torch.no_grad():
            clone(example)
    finally:
        for hook in hooks:
            hook.remove()
    for name, in_size in seen.items():
        out_size = _pool_sizes(clone.get_submodule(name), in_size)
        if all(i % o == 0 for i, o in zip(in_size, out_size, strict=True)):
            continue
        parent, _, child = name.rpartition(".")
        setattr(clone.get_submodule(parent), child, MatrixAdaptiveAvgPool2d(in_size, out_size))
    return clone


def spec_path_for(model_path: str | Path) -> Path:
    """The preprocessing spec written beside an exported model: ``<model_path>.json``."""
    path = Path(model_path)
    return path.with_name(path.name + ".json")


def export_to_bytes(
    model: nn.Module, example: torch.Tensor, *, opset: int = 17, dynamic_batch: bool = True
) -> bytes:
    """The ONNX bytes of ``ProbabilityModel(model)`` traced on ``example`` (eval mode, CPU)."""
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    wrapped = ProbabilityModel(exportable_copy(model, example.cpu())).eval()
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter announces its deprecation and warns about traced constants
        # and shape inference, printing whole graphs; the numerical check after export is what
        # tells whether the graph is right.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                wrapped,
                (example,),
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
        except (ValueError, RuntimeError) as err:  # OnnxExporterError is a RuntimeError
            reason = _first_line(err)
            raise ValueError(
                f"torch cannot export this model to ONNX opset {opset}: {reason}"
            ) from None
    return buffer.getvalue()


def _first_line(err: Exception) -> str:
    """The gist of an exporter error, whose message can run on with the whole traced graph."""
    text = str(err).strip()
    gist = text.splitlines()[0].split("[Caused by")[0].strip() if text else ""
    return gist or type(err).__name__


def check_agreement(
    onnx_bytes: bytes,
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    normalization: str = "minmax",
    batch_sizes: Sequence[int] = CHECK_BATCH_SIZES,
    seed: int = CHECK_SEED,
) -> float:
    """Max |p_onnxruntime - p_torch| on seeded random preprocessed inputs of each batch size.

    Inputs are uniform in [0, 1) for ``minmax`` (its output range), standard normal otherwise.
    """
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load_from_string(onnx_bytes))
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    wrapped = ProbabilityModel(model).to("cpu").eval()
    generator = torch.Generator().manual_seed(seed)
    draw = torch.rand if normalization == "minmax" else torch.randn
    worst = 0.0
    for batch in batch_sizes:
        x = draw((batch, *input_shape), generator=generator)
        with torch.inference_mode():
            expected = wrapped(x).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        if got.shape != expected.shape:
            raise OnnxMismatchError(
                f"onnxruntime returned shape {got.shape} for batch {batch}, torch {expected.shape}"
            )
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - expected))))
    return worst


def onnx_spec(
    meta: dict[str, Any],
    source: Path,
    model_path: Path,
    onnx_bytes: bytes,
    *,
    opset: int,
    dynamic_batch: bool,
    max_abs_diff: float,
) -> dict[str, Any]:
    """The JSON written beside the model: inputs, outputs, preprocessing, provenance, check."""
    prep = Preprocessing.from_dict(meta["preprocessing"])
    size, chans = prep.img_size, prep.in_chans
    batch: str | int = "batch" if dynamic_batch else STATIC_BATCH
    normalization = prep.normalization
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_file": model_path.name,
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "input": {"name": INPUT_NAME, "shape": [batch, chans, size, size], "dtype": "float32"},
        "output": {
            "name": OUTPUT_NAME,
            "shape": [batch, len(meta["class_names"])],
            "dtype": "float32",
            "meaning": "softmax class probabilities, columns in the order of class_names",
        },
        "class_names": list(meta["class_names"]),
        "preprocessing": prep.to_dict(),
        "preprocessing_steps": [
            *(
                [
                    f"cut the central {prep.crop}x{prep.crop} pixels (top-left corner at "
                    f"((H - {prep.crop}) // 2, (W - {prep.crop}) // 2))"
                ]
                if prep.crop is not None
                else []
            ),
            f"resize to {size}x{size} pixels (bilinear, antialiased when shrinking; skipped when "
            "the image already has that size)",
            NORMALIZATION_STEPS.get(normalization, normalization),
        ],
        "model": meta["model"],
        "source_checkpoint": str(source),
        "weights_sha256": meta["weights"]["sha256"],
        "opset": opset,
        "dynamic_batch": dynamic_batch,
        "check": {
            "max_abs_diff": max_abs_diff,
            "tolerance": AGREEMENT_TOLERANCE,
            "batch_sizes": list(CHECK_BATCH_SIZES if dynamic_batch else (STATIC_BATCH,)),
            "seed": CHECK_SEED,
        },
        "darklens_version": __version__,
    }


def export_onnx(
    run_or_checkpoint: str | Path,
    out_path: str | Path | None = None,
    *,
    which: str = BEST,
    opset: int = 17,
    dynamic_batch: bool = True,
    overwrite: bool = False,
) -> OnnxExport:
    """Export a run's ``which`` checkpoint (or a checkpoint file) to ``out_path`` (``.onnx``;
    default ``<run>/<which>.onnx`` or ``<stem>.onnx`` beside the checkpoint) plus its spec
    ``<out_path>.json``.

    ``dynamic_batch`` lets the model take any batch size, else exactly one image. Raises
    :class:`OnnxMismatchError` (writing nothing) if onnxruntime disagrees with torch.
    """
    json_path = checkpoint_json_path(run_or_checkpoint, which)
    model_path = Path(out_path) if out_path is not None else json_path.with_suffix(".onnx")
    if model_path.suffix.lower() != ".onnx":
        raise ValueError(f"the ONNX file name must end in .onnx, got {model_path}")
    spec_path = spec_path_for(model_path)
    if not overwrite:
        for path in (model_path, spec_path):
            if path.exists():
                raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite)")
    model, meta = load_checkpoint(json_path, device="cpu")
    prep = Preprocessing.from_dict(meta["preprocessing"])
    if prep.extras:
        raise ValueError(
            f"ONNX export takes image-only models; {meta['model']['name']} also takes "
            f"{', '.join(prep.extras)} (use darklens predict / Predictor for it)"
        )
    input_shape = (prep.in_chans, prep.img_size, prep.img_size)
    example = torch.zeros((2 if dynamic_batch else STATIC_BATCH, *input_shape))
    onnx_bytes = export_to_bytes(model, example, opset=opset, dynamic_batch=dynamic_batch)
    batch_sizes = CHECK_BATCH_SIZES if dynamic_batch else (STATIC_BATCH,)
    diff = check_agreement(
        onnx_bytes,
        model,
        input_shape,
        normalization=prep.normalization,
        batch_sizes=batch_sizes,
    )
    if not diff < AGREEMENT_TOLERANCE:
        raise OnnxMismatchError(
            f"onnxruntime disagrees with torch on {json_path} ({meta['model']['name']}): max "
            f"probability difference {diff:.3g} >= {AGREEMENT_TOLERANCE}; nothing was written"
        )
    spec = onnx_spec(
        meta,
        json_path.resolve(),
        model_path,
        onnx_bytes,
        opset=opset,
        dynamic_batch=dynamic_batch,
        max_abs_diff=diff,
    )
    atomic_write_bytes(model_path, onnx_bytes)
    atomic_write_text(spec_path, json.dumps(to_json_safe(spec), indent=2) + "\n")
    return OnnxExport(model_path, spec_path, diff, tuple(meta["class_names"]))
