"""Input-size checks shared by the model constructors."""

from __future__ import annotations


def require_img_size(model: str, img_size: int, minimum: int = 32, multiple: int = 1) -> None:
    """Raise ValueError unless ``img_size`` (pixels) is at least ``minimum`` and a ``multiple``."""
    if img_size >= minimum and img_size % multiple == 0:
        return
    rule = f">= {minimum}" + (f" and a multiple of {multiple}" if multiple > 1 else "")
    above = max(minimum, -(-img_size // multiple) * multiple)
    raise ValueError(f"model {model!r} needs img_size {rule}; got {img_size} (try {above})")
