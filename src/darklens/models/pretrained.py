"""Load pretrained weights from a local file into a model, safely and with a report.

Files are read without running code: ``.safetensors`` through safetensors, ``.pth/.pt/.bin`` only
through ``torch.load(weights_only=True)``. Common checkpoint wrappers are unwrapped, the first
convolution is adapted when the channel counts differ (e.g. RGB ImageNet weights into 1-channel
lensing images), and classifier-head tensors of another shape are skipped, since a new task has
its own classes. Anything else that does not fit is an error, never a silently partial model.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pth", ".pt", ".bin")
# Keys under which training scripts commonly nest the state dict, tried in this order.
CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")
# Key prefixes added by DataParallel/DDP, torch.compile and wrapper modules.
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_pretrained` did with each tensor (all names are state-dict keys)."""

    path: Path
    loaded: tuple[str, ...]
    adapted: tuple[str, ...]
    skipped_head: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    def summary(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors from {self.path}"]
        if self.adapted:
            parts.append(f"adapted input channels of {', '.join(self.adapted)}")
        if self.skipped_head:
            parts.append(f"skipped head tensors of another shape: {', '.join(self.skipped_head)}")
        if self.missing:
            parts.append(f"{len(self.missing)} model tensors not in the file")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} file tensors not in the model")
        return "; ".join(parts)


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the tensors of a weights file (no code is ever unpickled), unwrapping containers."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights file {path} does not exist; pass a local .safetensors or .pth file"
        )
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except SafetensorError as err:
            raise ValueError(f"could not read {path} as a safetensors file: {err}") from err
    if suffix in TORCH_SUFFIXES:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
            raise ValueError(
                f"refusing to load {path}: torch.load(weights_only=True) cannot read it, so it is "
                "either not a PyTorch checkpoint or it stores Python objects besides tensors, "
                "which darklens never unpickles. Save only the tensors "
                "(torch.save(model.state_dict(), path)) or convert the file to .safetensors"
            ) from err
        return unwrap_checkpoint(checkpoint, source=str(path))
    accepted = ", ".join(SAFETENSORS_SUFFIXES + TORCH_SUFFIXES)
    raise ValueError(f"unsupported weights file {path}: expected one of {accepted}")


def unwrap_checkpoint(checkpoint: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Descend through ``state_dict``/``model``/... wrappers and return the tensors found."""
    current = checkpoint
    while isinstance(current, Mapping):
        nested = [current[k] for k in CONTAINER_KEYS if isinstance(current.get(k), Mapping)]
        if not nested:
            break
        current = nested[0]
    if not isinstance(current, Mapping):
        raise ValueError(f"{source} holds a {type(current).__name__}, not a dict of tensors")
    tensors = {str(k): v for k, v in current.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{source} holds no tensors (its keys: {sorted(map(str, current))[:10]})")
    return tensors


def strip_wrapper_prefixes(
    tensors: Mapping[str, torch.Tensor], model_keys: set[str]
) -> dict[str, torch.Tensor]:
    """Remove prefixes such as ``module.`` that every file key has and no model key has."""
    result = dict(tensors)
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in result) and not any(
                k.startswith(prefix) for k in model_keys
            ):
                result = {k[len(prefix) :]: v for k, v in result.items()}
                stripped = True
    return result


def head_prefix(model: nn.Module) -> str | None:
    """Module path of the classifier head: timm's ``get_classifier()`` or the last Linear layer."""
    get_classifier = getattr(model, "get_classifier", None)
    head = get_classifier() if callable(get_classifier) else None
    if not isinstance(head, nn.Module) or not any(True for _ in head.parameters()):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        head = linears[-1] if linears else None
    return next((name for name, m in model.named_modules() if m is head and name), None)


def first_conv_weight_key(model: nn.Module) -> str | None:
    """State-dict key of the weight of the first 2-D convolution (the one that sees the image)."""
    name = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    return None if name is None else f"{name}.weight"


def adapt_input_channels(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Convert a conv weight [out, c, k, k] to ``in_chans`` inputs (timm ``adapt_input_conv``).

    One channel: sum over the input channels, so a grey image x gives the same response as the
    RGB image (x, x, x). More channels: repeat cyclically and scale by c / in_chans.
    """
    from darklens._compat import import_torchvision

    import_torchvision()
    from timm.models import adapt_input_conv

    return adapt_input_conv(in_chans, weight, base_chans=weight.shape[1])


def load_pretrained(
    model: nn.Module,
    path: str | Path,
    *,
    strict_head: bool = False,
    first_conv: str | None = None,
    classifier: str | None = None,
) -> LoadReport:
    """Copy the matching tensors of a local weights file into ``model`` (in place).

    ``first_conv`` / ``classifier`` are the module paths of the image-facing convolution and the
    head, as a model's registry entry records them (:class:`darklens.models.ModelEntry`); for a
    model outside the registry they are found: the first ``Conv2d``, and timm's
    ``get_classifier()`` or the last ``Linear``.

    Raises FileNotFoundError if the file is missing, and ValueError if it can't be read safely,
    if no tensor outside the classifier head matches, or if a non-head tensor has another shape
    (a head tensor too, with ``strict_head=True``). Model tensors the file lacks keep their
    values; they are reported, and a warning names those outside the head.
    """
    path = Path(path)
    model_state = model.state_dict()
    tensors = strip_wrapper_prefixes(read_weights(path), set(model_state))
    head = classifier if classifier is not None else head_prefix(model)
    conv_key = f"{first_conv}.weight" if first_conv is not None else first_conv_weight_key(model)

    updates: dict[str, torch.Tensor] = {}
    adapted, skipped_head, mismatched, unexpected = [], [], [], []
    for key, tensor in tensors.items():
        target = model_state.get(key)
        if target is None:
            unexpected.append(key)
        elif tensor.shape == target.shape:
            updates[key] = tensor
        elif key == conv_key and _differs_in_input_channels(tensor, target):
            updates[key] = adapt_input_channels(tensor, target.shape[1])
            adapted.append(key)
        elif head is not None and key.startswith(f"{head}.") and not strict_head:
            skipped_head.append(key)
        else:
            mismatched.append(f"{key} (file {tuple(tensor.shape)}, model {tuple(target.shape)})")
    if mismatched:
        raise ValueError(f"{path} does not fit this model; shapes differ: {', '.join(mismatched)}")
    if not any(head is None or not k.startswith(f"{head}.") for k in updates):
        raise ValueError(
            f"no tensor in {path} matches the model body: file keys start {sorted(tensors)[:5]}, "
            f"model keys start {sorted(model_state)[:5]}; is it the same architecture?"
        )
    model.load_state_dict({**model_state, **updates})
    missing = tuple(k for k in model_state if k not in tensors)
    _warn_missing(path, missing, head)
    return LoadReport(
        path=path,
        loaded=tuple(updates),
        adapted=tuple(adapted),
        skipped_head=tuple(skipped_head),
        missing=missing,
        unexpected=tuple(unexpected),
    )


def _differs_in_input_channels(tensor: torch.Tensor, target: torch.Tensor) -> bool:
    return (
        tensor.ndim == 4
        and target.ndim == 4
        and tensor.shape[0] == target.shape[0]
        and tensor.shape[2:] == target.shape[2:]
    )


def _warn_missing(path: Path, missing: tuple[str, ...], head: str | None) -> None:
    """Warn about body tensors the file lacks: they keep their random initialisation."""
    body = [
        k
        for k in missing
        if not k.endswith("num_batches_tracked") and not (head and k.startswith(f"{head}."))
    ]
    if body:
        warnings.warn(
            f"{len(body)} model tensors are not in {path} and keep their random "
            f"initialisation: {', '.join(body[:5])}{', ...' if len(body) > 5 else ''}",
            stacklevel=3,
        )
