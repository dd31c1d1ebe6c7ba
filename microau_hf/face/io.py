"""Loading frames robustly: every way a corpus or a user hands us an image becomes an RGB uint8 array, or one clear
error line that names the file.

The pixel conversion itself (grayscale, palette, CMYK, alpha, 16-bit, EXIF rotation) lives in the processor's
:func:`~microau_hf.processing_micro_au_clip.to_rgb_array`, so that the face pipeline and the processor can never turn
the same file into different pixels; this module adds the checks and the error messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from ..errors import first_line
from ..processing_micro_au_clip import to_rgb_array

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray]

#: The image formats read here (any case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Frames smaller than this on either side hold too few pixels for a face crop worth detecting AUs in.
MIN_SIDE = 64
#: Frames larger than this (pixels) are refused before they are decoded: 25 MP is a 6000x4000 camera photo, far more
#: than a face needs, and an 8000x8000 pair would take gigabytes through the pipeline. Downscale such frames first.
MAX_PIXELS = 25_000_000


def check_pixel_count(width: int, height: int, label: str, max_pixels: int | None = None) -> None:
    """:class:`ImageLoadError` naming ``label`` when a ``width`` x ``height`` frame exceeds ``max_pixels`` (default
    :data:`MAX_PIXELS`)."""
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if width * height > max_pixels:
        raise ImageLoadError(f"{label}: image is {width}x{height} px ({width * height / 1e6:.1f} MP), above the "
                             f"{max_pixels / 1e6:.0f} MP limit; downscale it first (both frames alike)")


class ImageLoadError(ValueError):
    """An image that cannot be used; the message is one line: ``<file or item>: <problem>``."""


def describe(source: ImageSource) -> str:
    """A short name for messages: the path, or the kind of in-memory image."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, Image.Image):
        return getattr(source, "filename", "") or f"<PIL {source.mode} image>"
    if isinstance(source, np.ndarray):
        return f"<array {source.dtype} {tuple(source.shape)}>"
    return f"<{type(source).__name__}>"


def load_image(source: ImageSource, name: str | None = None, min_side: int = MIN_SIDE) -> np.ndarray:
    """``source`` as an ``(H, W, 3)`` uint8 RGB array; :class:`ImageLoadError` naming ``name`` (or the file) if it is
    unusable."""
    label = name or describe(source)
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise ImageLoadError(f"{label}: no such file")
    _check_size_before_decoding(source, label)
    try:
        image = to_rgb_array(source)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # PIL reports a truncated file as OSError, an unknown format as UnidentifiedImageError (an OSError) and some
        # broken headers as SyntaxError; all of them mean the same thing to the caller.
        raise ImageLoadError(f"{label}: cannot read the image ({first_line(err)})") from None
    height, width = image.shape[:2]
    if min(height, width) < min_side:
        raise ImageLoadError(f"{label}: image is {width}x{height} px, smaller than the {min_side} px minimum")
    return image


def _check_size_before_decoding(source: ImageSource, label: str) -> None:
    """The pixel cap, read from the file's header (or the array's shape), so a huge frame is never decoded."""
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            check_pixel_count(source.shape[1], source.shape[0], label)
        return
    if isinstance(source, Image.Image):
        check_pixel_count(*source.size, label)
        return
    try:
        with Image.open(source) as opened:  # reads the header only
            width, height = opened.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return  # unreadable: the decoding below names the problem
    check_pixel_count(width, height, label)


def load_pair(
    onset: ImageSource, apex: ImageSource, name: str | None = None, min_side: int = MIN_SIDE
) -> tuple[np.ndarray, np.ndarray]:
    """Onset and apex frames of one sample; refused unless both load and have the same size.

    Different sizes mean the frames were not cut from the same video geometry, so one transform cannot align both.
    """
    first = load_image(onset, _frame_label(onset, name, "onset"), min_side)
    second = load_image(apex, _frame_label(apex, name, "apex"), min_side)
    if first.shape != second.shape:
        files = all(isinstance(frame, (str, os.PathLike)) for frame in (onset, apex))
        label = f"{describe(onset)} / {describe(apex)}" if files or not name else name  # both files, when they are
        (h0, w0), (h1, w1) = first.shape[:2], second.shape[:2]
        raise ImageLoadError(
            f"{label}: onset is {w0}x{h0} px but apex is {w1}x{h1} px; they must be frames of one video at one size"
        )
    return first, second


def _frame_label(source: ImageSource, name: str | None, role: str) -> str | None:
    """How a message names one frame of a pair: a file by its own path (the onset's name would point at the wrong
    file), an in-memory frame by the sample's name and its role."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"{name} {role}" if name else None


__all__ = ["IMAGE_SUFFIXES", "ImageLoadError", "MAX_PIXELS", "MIN_SIDE", "check_pixel_count", "describe", "load_image", "load_pair"]
