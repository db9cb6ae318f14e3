"""Run folders and checkpoints: the file names, and checkpoints that never run code when loaded.

A run folder (written by :func:`darklens.train.train`)::

    config.yaml           every setting, resolved (image size, device, precision)
    best.safetensors/json checkpoint selected on the validation monitor (see TrainConfig.monitor)
    last.safetensors/json checkpoint of the latest epoch
    last_state.*          resume state (model, optimiser, schedule, history): a TrainState
    history.csv           per-epoch metrics (and TensorBoard scalars under tb/ when available)
    members/<name>/       for stacked models: one complete run per member


A checkpoint ``stem`` is two files, ``stem.safetensors`` (the model's tensors) and ``stem.json``
(format, model name and constructor arguments, preprocessing, class names, metrics, the training
configuration, and the sha256 of the weights file). Both are written atomically (temporary file in
the same folder, fsync, ``os.replace``), weights first; a crash between the two replacements leaves
a JSON whose sha256 does not match the weights, which :func:`load_checkpoint` reports instead of
silently loading the wrong tensors.

The resume state (model, optimiser tensors, scheduler numbers, history) of a run is one
self-contained safetensors file whose header carries the JSON state, so it is replaced in a single
atomic step; ``last_state.json`` next to it is a human-readable copy.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

import darklens
from darklens.guards import check_allocation

CONFIG_FILE = "config.yaml"
BEST, LAST, STATE = "best", "last", "last_state"
HISTORY_FILE = "history.csv"
TENSORBOARD_DIR = "tb"
MEMBERS_DIR = "members"

FORMAT = "darklens-checkpoint"
FORMAT_VERSION = 1
STATE_FORMAT = "darklens-train-state"
STATE_FORMAT_VERSION = 1
WEIGHTS_SUFFIX = ".safetensors"
_TMP_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint or resume state is missing, damaged, mismatched or of an unknown format."""


# -- atomic files --------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the complete new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_current_umask())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files that a killed :func:`atomic_write_bytes` left in ``folder``."""
    for leftover in Path(folder).glob(f".*{_TMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- JSON ----------------------------------------------------------------------------------------
def to_json_safe(value: Any) -> Any:
    """Plain JSON data: tuples become lists, numpy scalars numbers, NaN/inf ``None``."""
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _dump_json(data: Mapping[str, Any]) -> str:
    return json.dumps(to_json_safe(data), indent=2, allow_nan=False) + "\n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"cannot read checkpoint metadata {path}: {err}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data


# -- tensors -------------------------------------------------------------------------------------
def plain_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors that share no memory (what safetensors can store)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in state.items():
        tensor = tensor.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        out[name] = tensor
    return out


def unwrap_model(model: nn.Module) -> nn.Module:
    """The underlying module of a DistributedDataParallel (or similar ``.module``) wrapper."""
    return model.module if isinstance(getattr(model, "module", None), nn.Module) else model


def _safetensors_metadata(data: bytes, source: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header, read without loading tensors."""
    if len(data) < 8:
        raise CheckpointError(f"{source} is truncated (only {len(data)} bytes)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise CheckpointError(f"{source} is truncated or not a safetensors file")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{source} is not a safetensors file (unreadable header)") from None
    return dict(header.get("__metadata__") or {})


def _load_tensors(data: bytes, source: Path) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load(data)
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{source} is damaged or not a safetensors file: {err}") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- model checkpoints ---------------------------------------------------------------------------
def save_checkpoint(stem: str | Path, model: nn.Module, meta: Mapping[str, Any]) -> Path:
    """Write ``stem.safetensors`` and ``stem.json`` atomically; return the JSON path.

    ``meta`` must hold ``model: {name, kwargs}`` with the constructor arguments (including
    ``in_chans``, ``num_classes`` and ``img_size``) so :func:`load_checkpoint` can rebuild it; the
    format, version, darklens version and the weights' sha256 are added here.
    """
    stem = Path(stem)
    spec = meta.get("model")
    if not isinstance(spec, Mapping) or "name" not in spec or "kwargs" not in spec:
        raise ValueError("checkpoint meta needs model: {name, kwargs} to rebuild the model")
    weights = safetensors.torch.save(
        plain_tensors(unwrap_model(model).state_dict()), metadata={"format": FORMAT}
    )
    weights_path = stem.with_name(stem.name + WEIGHTS_SUFFIX)
    record = {
        **meta,
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "darklens_version": darklens.__version__,
        "weights": {"file": weights_path.name, "sha256": _sha256(weights), "bytes": len(weights)},
    }
    json_path = stem.with_name(stem.name + ".json")
    atomic_write_bytes(weights_path, weights)
    atomic_write_text(json_path, _dump_json(record))
    return json_path


def checkpoint_json_path(path_or_run_dir: str | Path, which: str = BEST) -> Path:
    """The JSON sidecar for a run folder (+ ``which``), a stem, a ``.json`` or a weights path."""
    path = Path(path_or_run_dir)
    if path.is_dir():
        candidate = path / f"{which}.json"
        if not candidate.is_file():
            present = sorted(p.stem for p in path.glob("*.json") if p.stem != STATE)
            hint = f" (it has: {', '.join(present)})" if present else ""
            raise FileNotFoundError(f"no checkpoint {which!r} in run folder {path}{hint}")
        return candidate
    if path.suffix == ".json":
        json_path = path
    elif path.suffix == WEIGHTS_SUFFIX:
        json_path = path.with_suffix(".json")
    else:
        json_path = path.with_name(path.name + ".json")
    if not json_path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path_or_run_dir} (looked for {json_path}); pass a run folder, "
            "a checkpoint stem like runs/x/best, or its .json / .safetensors file"
        )
    return json_path


def read_checkpoint_meta(path_or_run_dir: str | Path, which: str = BEST) -> tuple[Path, dict]:
    """Locate a checkpoint and return ``(json_path, meta)`` after checking its format."""
    json_path = checkpoint_json_path(path_or_run_dir, which)
    meta = _read_json(json_path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{json_path} is not a darklens checkpoint (format {meta.get('format')!r})"
        )
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{json_path} has checkpoint version {version!r}; this darklens reads up to "
            f"{FORMAT_VERSION}: upgrade darklens"
        )
    for key in ("model", "weights", "preprocessing", "class_names"):
        if key not in meta:
            raise CheckpointError(
                f"{json_path} lacks the {key!r} entry; it is not a complete checkpoint"
            )
    check_checkpoint_entries(json_path, meta)
    return json_path, meta


MAX_IMG_SIZE = 4096  # px: far above any lensing cutout; a larger stored size is damage


def check_checkpoint_entries(json_path: Path, meta: Mapping[str, Any]) -> None:
    """Types and sizes of the entries a checkpoint is rebuilt from, checked before anything is
    built (a sidecar with ``img_size=60000`` would otherwise allocate gigabytes)."""
    weights, model, pre = meta["weights"], meta["model"], meta["preprocessing"]
    problems = []
    for key in ("file", "sha256"):
        if not isinstance(weights, Mapping) or not isinstance(weights.get(key), str):
            problems.append(f"lacks weights.{key}")
    if not isinstance(model, Mapping) or not isinstance(model.get("name"), str):
        problems.append("lacks model.name")
    elif not isinstance(model.get("kwargs"), Mapping):
        problems.append("lacks model.kwargs")
    else:
        size = model["kwargs"].get("img_size", 1)
        if size is not None and (type(size) is not int or not 1 <= size <= MAX_IMG_SIZE):
            problems.append(f"has model.kwargs.img_size = {size!r} (expected 1..{MAX_IMG_SIZE})")
    names = meta["class_names"]
    fewest = 2 if meta.get("task", "classify") == "classify" else 1  # regression: any dataset
    if (
        not isinstance(names, list)
        or len(names) < fewest
        or not all(isinstance(n, str) for n in names)
    ):
        problems.append("has no list of class names")
    if not isinstance(pre, Mapping):
        problems.append("has no preprocessing mapping")
    else:
        for key, top in (("img_size", MAX_IMG_SIZE), ("in_chans", 64)):
            value = pre.get(key)
            if type(value) is not int or not 1 <= value <= top:
                problems.append(f"has preprocessing.{key} = {value!r} (expected 1..{top})")
        crop = pre.get("crop")
        if crop is not None and (type(crop) is not int or not 1 <= crop <= MAX_IMG_SIZE):
            problems.append(f"has preprocessing.crop = {crop!r} (expected 1..{MAX_IMG_SIZE})")
    if problems:
        raise CheckpointError(
            f"{json_path} {'; '.join(problems)}: it is damaged or not a "
            "checkpoint this darklens wrote"
        )


def read_checkpoint_weights(json_path: Path, meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, after checking they are the ones its JSON describes."""
    record = meta["weights"]
    weights_path = json_path.parent / record["file"]
    if not weights_path.is_file():
        raise CheckpointError(f"{json_path} points to {weights_path}, which does not exist")
    check_allocation(weights_path.stat().st_size, "the checkpoint weights", weights_path)
    data = weights_path.read_bytes()
    if _sha256(data) != record["sha256"]:
        raise CheckpointError(
            f"{weights_path} does not match {json_path.name} (sha256 differs; "
            f"{len(data)} bytes, expected {record.get('bytes')}): the file is truncated, was "
            "replaced, or a save was interrupted. Use another checkpoint of the run (e.g. 'last') "
            "or retrain"
        )
    return _load_tensors(data, weights_path)


def build_model(spec: Mapping[str, Any], source: Path) -> nn.Module:
    """Rebuild the architecture named in a checkpoint's ``model`` entry (no weights loaded)."""
    from darklens.models import create_model

    try:
        return create_model(spec["name"], **spec["kwargs"])
    except KeyError as err:
        message = err.args[0] if err.args else str(err)
        raise CheckpointError(
            f"{source} needs model {spec.get('name')!r}, which this darklens cannot build: "
            f"{message}"
        ) from None
    except TypeError as err:
        raise CheckpointError(
            f"{source}: model {spec.get('name')!r} rejects the stored arguments "
            f"{spec.get('kwargs')}: {err}"
        ) from None


def load_checkpoint(
    path_or_run_dir: str | Path, which: str = BEST, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a checkpoint and load its weights; returns ``(model, meta)``.

    ``path_or_run_dir`` is a run folder (then ``which`` picks ``best`` or ``last``), a stem, or
    the checkpoint's ``.json`` / ``.safetensors`` file. The model is in eval mode on ``device``.
    """
    json_path, meta = read_checkpoint_meta(path_or_run_dir, which)
    model = build_model(meta["model"], json_path)
    tensors = read_checkpoint_weights(json_path, meta)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"the weights of {json_path} do not fit model {meta['model']['name']!r}: {err}"
        ) from None
    return model.to(device).eval(), meta


# -- resume state --------------------------------------------------------------------------------
@dataclass
class TrainState:
    """A run's resume state: the model's and optimiser's tensors and the JSON state.

    ``train_config`` (the resolved TrainConfig as a dict), ``class_names``, ``preprocessing`` (a
    :class:`~darklens.data.preprocessing.Preprocessing` dict), ``progress`` (the trainer's epoch,
    step, best monitored value, history, plateau state) and ``scaler`` (the AMP grad scaler's
    state, when fp16 training used one).
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    train_config: dict[str, Any]
    class_names: list[str]
    preprocessing: dict[str, Any]
    progress: dict[str, Any]
    scaler: dict[str, Any] | None = None

    def json_state(self) -> dict[str, Any]:
        """Everything but the tensors, as stored in the state file's header."""
        return {
            "train_config": self.train_config,
            "class_names": self.class_names,
            "preprocessing": self.preprocessing,
            "progress": self.progress,
            "scaler": self.scaler,
        }


def save_train_state(
    stem: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: Mapping[str, Any],
) -> Path:
    """Write the full resume state to ``stem.safetensors`` (+ readable ``stem.json``).

    ``state`` is :meth:`TrainState.json_state` of the run (train_config, class_names,
    preprocessing, progress, scaler).

    Tensors: the model's (``model.*``) and the optimiser's per-parameter state
    (``optim.<param>.<name>``). Everything else (optimiser hyper-parameters, scheduler numbers,
    epoch, history, ...) is JSON in the safetensors header, so the file alone is a consistent
    snapshot.
    """
    stem = Path(stem)
    tensors = {f"model.{k}": v for k, v in unwrap_model(model).state_dict().items()}
    optim_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, entries in optim_state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{param_id}.{name}"] = value
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    record = {
        **state,
        "format": STATE_FORMAT,
        "version": STATE_FORMAT_VERSION,
        "optimizer": {"param_groups": optim_state["param_groups"], "scalars": scalars},
    }
    text = _dump_json(record)
    data = safetensors.torch.save(plain_tensors(tensors), metadata={"state": text})
    weights_path = stem.with_name(stem.name + WEIGHTS_SUFFIX)
    atomic_write_bytes(weights_path, data)
    readable = {**json.loads(text), "weights": {"file": weights_path.name, "sha256": _sha256(data)}}
    atomic_write_text(stem.with_name(stem.name + ".json"), _dump_json(readable))
    return weights_path


def load_train_state(stem: str | Path) -> TrainState:
    """Read a resume state written by :func:`save_train_state`."""
    stem = Path(stem)
    weights_path = stem.with_name(stem.name + WEIGHTS_SUFFIX)
    if not weights_path.is_file():
        raise FileNotFoundError(
            f"no resume state at {weights_path}; start the run without --resume"
        )
    data = weights_path.read_bytes()
    metadata = _safetensors_metadata(data, weights_path)
    try:
        state = json.loads(metadata["state"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{weights_path} carries no readable training state") from None
    if state.get("format") != STATE_FORMAT or state.get("version", 0) > STATE_FORMAT_VERSION:
        raise CheckpointError(
            f"{weights_path} is not a darklens training state this version can read "
            f"(format {state.get('format')!r}, version {state.get('version')!r})"
        )
    tensors = _load_tensors(data, weights_path)
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, param_id, name = key.split(".", 2)
            per_param.setdefault(int(param_id), {})[name] = value
    for param_id, entries in state["optimizer"]["scalars"].items():
        per_param.setdefault(int(param_id), {}).update(entries)
    optim_state = {"state": per_param, "param_groups": state["optimizer"]["param_groups"]}
    missing = [
        k for k in ("train_config", "class_names", "preprocessing", "progress") if k not in state
    ]
    if missing:
        raise CheckpointError(f"{weights_path} lacks {', '.join(missing)}: not a complete state")
    return TrainState(
        model=model_state,
        optimizer=optim_state,
        train_config=state["train_config"],
        class_names=list(state["class_names"]),
        preprocessing=state["preprocessing"],
        progress=state["progress"],
        scaler=state.get("scaler"),
    )
