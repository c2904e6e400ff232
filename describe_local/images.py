"""Decode a photo once, safely, into the RGB picture every stage reads.

Accepts JPEG, PNG (RGBA too), WebP, GIF, TIFF, BMP and phone HEIC/HEIF photos
in any of Pillow's modes (grayscale, palette, CMYK, 16-bit), applies the EXIF
orientation, and refuses anything else with a one-line :class:`ImageError`.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from describe_local.errors import ImageError, first_line

log = logging.getLogger(__name__)

try:  # HEIC support is optional at import time so that a broken wheel does not hide the rest.
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
    HEIF_SUPPORTED = False

# We enforce our own pixel limit (Settings.max_image_pixels) before decoding;
# Pillow's warning at 89 MP would only add noise for large phone photos.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

# File suffixes counted as photos (in folders and the gallery).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
# The suffix a file of each Pillow format gets when we name it ourselves.
SUFFIX_BY_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
                    "TIFF": ".tif", "HEIF": ".heic"}  # fmt: skip


@dataclass(frozen=True)
class Photo:
    """A decoded photo: 8-bit RGB, upright, plus where it came from."""

    image: Image.Image
    source: str = "<bytes>"

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @cached_property
    def array(self) -> np.ndarray:
        """The pixels as a read-only ``H x W x 3`` uint8 array, shared by all stages."""
        arr = np.asarray(self.image, dtype=np.uint8)
        arr.flags.writeable = False
        return arr

    def fit_within(self, max_side: int) -> tuple[Image.Image, float]:
        """A copy whose long side is at most ``max_side``, and the scale applied (<= 1)."""
        width, height = self.image.size
        scale = min(1.0, max_side / max(width, height))
        if scale >= 1.0:
            return self.image, 1.0
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return self.image.resize(size, Image.Resampling.BILINEAR), scale


def is_image_path(path: Path) -> bool:
    """Whether ``path`` has the suffix of a photo we read."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def suffix_for(source: Path | bytes, default: str = ".jpg") -> str:
    """The suffix for an image file or bytes, from its real format (``default`` when unknown)."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            return SUFFIX_BY_FORMAT.get(img.format or "", default)
    except (OSError, ValueError, SyntaxError):  # not an image: a later step refuses it with a clear message
        return default


def load_photo(path: Path, *, max_bytes: int, max_pixels: int) -> Photo:
    """Read and decode the photo at ``path``; raise :class:`ImageError` if it is not usable."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}") from None
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if size > max_bytes:
        raise ImageError(
            f"{path}: {_human(size)} is over the {_human(max_bytes)} limit "
            "(set DESCRIBE_LOCAL_MAX_IMAGE_BYTES to raise it)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}") from None
    return decode_photo(data, source=str(path), max_bytes=max_bytes, max_pixels=max_pixels)


def decode_photo(data: bytes, *, source: str = "<upload>", max_bytes: int, max_pixels: int) -> Photo:
    """Decode image bytes into an upright 8-bit RGB :class:`Photo`."""
    if not data:
        raise ImageError(f"{source}: the file is empty")
    if len(data) > max_bytes:
        raise ImageError(f"{source}: {_human(len(data))} is over the {_human(max_bytes)} limit")

    # Some libraries (face_recognition among them) switch LOAD_TRUNCATED_IMAGES
    # on for the whole process when imported; a truncated photo must still be
    # refused here, so switch it back off.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{source}: {width}x{height} pixels is over the limit of "
                    f"{max_pixels / 1e6:.0f} megapixels"
                )
            img.load()
            upright = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(upright)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{source}: too many pixels, over the limit of {max_pixels / 1e6:.0f} megapixels") from None
    except UnidentifiedImageError:
        raise ImageError(f"{source}: not an image, or a format this tool cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = first_line(exc)
        if "truncated" in reason.lower() or isinstance(exc, EOFError):
            reason = "the file is truncated"
        raise ImageError(f"{source}: cannot decode the image: {reason}") from None
    return Photo(rgb, source=source)


def _human(n_bytes: int) -> str:
    """'812 KB', '41.9 MB': a byte count for a message."""
    if n_bytes < 1_000_000:
        return f"{n_bytes / 1000:.0f} KB" if n_bytes >= 1000 else f"{n_bytes} bytes"
    return f"{n_bytes / 1e6:.1f} MB"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency over white, 16-bit scaled, not clipped."""
    if img.mode == "RGB":
        return img.copy()
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        peak = 65535 if img.mode.startswith("I;16") or arr.max() > 255 else 255
        arr8 = (arr.astype(np.float32) * (255.0 / peak)).clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr8 = ((arr - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
