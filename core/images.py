"""Ordinary image files (PNG, JPEG, BMP, 8/16-bit TIFF ...) decoded with Pillow.

Every domain reads plain images through here, so they decode alike and fail alike: a file that
is missing, not an image or truncated raises the caller's ``ReadError`` subclass naming the file
(a medical caller's error class keeps the path out of the message, see ``core.privacy``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import ReadError

# Pillow modes of one integer channel wider than 8 bits
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I")


def read_pil(path: str | os.PathLike, error: type[ReadError] = ReadError,
             mode: str | None = None) -> np.ndarray:
    """The decoded pixels, (H, W) or (H, W, C), in Pillow ``mode`` ("L", "RGB" ...; None keeps
    the file's own)."""
    return _decode(path, error, lambda pil: np.asarray(pil if mode in (None, pil.mode) else pil.convert(mode)))


def read_image_tensor(path: str | os.PathLike, error: type[ReadError] = ReadError,
                      mode: str | None = None) -> torch.Tensor:
    """(C, H, W) float32 in [0, 1].

    ``mode=None``: grey stays one channel (16-bit grey is divided by 65535 when it uses more than
    8 bits, else by 255; float images are stretched from their own min..max) and everything else
    becomes RGB. ``mode="RGB"`` or ``"L"`` forces three or one channel.
    """
    array = _decode(path, error, lambda pil: _unit_range(pil, mode))
    return torch.from_numpy(np.ascontiguousarray(array[None] if array.ndim == 2 else array.transpose(2, 0, 1)))


def _unit_range(pil: Image.Image, mode: str | None) -> np.ndarray:
    if mode is None:
        if pil.mode in _WIDE_GREY:
            array = np.asarray(pil, dtype=np.float32)
            return array / (65535.0 if array.max() > 255 else 255.0)
        if pil.mode == "F":
            array = np.asarray(pil, dtype=np.float32)
            return (array - array.min()) / max(float(array.max() - array.min()), 1e-6)
        mode = "L" if pil.mode in ("L", "1", "LA") else "RGB"
    return np.asarray(pil.convert(mode), dtype=np.float32) / 255.0


def _decode(path: str | os.PathLike, error: type[ReadError], convert) -> np.ndarray:
    if os.path.isdir(path):
        raise error(path, "is a directory, not an image")
    if not os.path.isfile(path):
        raise error(path, "no such file")
    try:
        with Image.open(path) as pil:
            pil.load()
            return convert(pil)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # SyntaxError: Pillow's parsers raise it for some malformed headers
        raise error(path, f"cannot decode image ({type(exc).__name__}: {exc})") from None
