"""Decode a photo once, safely, into the RGB picture every stage reads.

Accepts JPEG, PNG (RGBA too), WebP, GIF, TIFF, BMP and phone HEIC/HEIF photos in any of
Pillow's modes (grayscale, palette, CMYK, 16-bit), applies the EXIF orientation, and refuses
anything else with a one-line :class:`ImageError`.

Decoding keeps to a budget (issue 10): only those formats' decoders ever see the bytes; the
header's size, aspect ratio and estimated decode memory are checked before any pixel is decoded
(:mod:`describe_local.decode_budget`); and a photo larger than the working size
(``max_photo_side``, 4096 px by default) is shrunk as it decodes: JPEGs in libjpeg's draft mode,
others band by band, so the full-size picture is never copied or converted whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import struct
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from describe_local import decode_budget
from describe_local.errors import ImageError, ImageTooLarge, first_line
from describe_local.settings import Settings

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
# The only Pillow plugins that may open an upload (Pillow's names; MPO photos come through JPEG's).
# Every other decoder stays out of reach: EPS would start Ghostscript, and the rarely used
# plugins are where most of Pillow's security fixes have landed.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "HEIF")
SEND_A_PHOTO = "send a photo (JPEG, PNG, WebP, GIF, TIFF, BMP or HEIC)"

# What malformed input makes the decoders raise (pillow-heif raises RuntimeError for libheif's
# errors, Pillow's parsers struct.error): "this file cannot be decoded", not a bug of ours.
_DECODE_FAILURES = (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error)
# Source bytes (in Pillow's 4-byte pixels) shrunk at a time when a photo is shrunk band by band.
_BAND_BYTES = 8 << 20
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # fmt: skip
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}


@dataclass(frozen=True)
class Photo:
    """A decoded photo: 8-bit RGB, upright, plus where it came from.

    ``original_size`` is the upright size the file holds, when decoding shrank it to the
    working size (``None``: it was not shrunk).
    """

    image: Image.Image
    source: str = "<bytes>"
    original_size: tuple[int, int] | None = None

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
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=_formats()) as img:
            return SUFFIX_BY_FORMAT.get(img.format or "", default)
    except (OSError, ValueError, SyntaxError):  # not an image: a later step refuses it with a clear message
        return default


def image_limits(settings: Settings) -> dict[str, Any]:
    """The keyword arguments :func:`load_photo` and :func:`decode_photo` take, from ``settings``."""
    return {"max_bytes": settings.max_image_bytes, "max_pixels": settings.max_image_pixels,
            "max_aspect": settings.max_image_aspect, "max_decode_mb": settings.max_decode_mb,
            "max_side": settings.max_photo_side}  # fmt: skip


def load_photo(path: Path, *, max_bytes: int, max_pixels: int, **budget: Any) -> Photo:
    """Read and decode the photo at ``path``; raise :class:`ImageError` if it is not usable.

    ``budget`` takes :func:`decode_photo`'s other limits (``max_aspect``, ``max_decode_mb``, ``max_side``).
    """
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
        raise ImageTooLarge(
            f"{path}: {_human(size)} is over the {_human(max_bytes)} limit "
            "(set DESCRIBE_LOCAL_MAX_IMAGE_BYTES to raise it)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}") from None
    return decode_photo(data, source=str(path), max_bytes=max_bytes, max_pixels=max_pixels, **budget)


def decode_photo(
    data: bytes,
    *,
    source: str = "<upload>",
    max_bytes: int,
    max_pixels: int,
    max_aspect: float = _DEFAULTS["max_image_aspect"],
    max_decode_mb: float = _DEFAULTS["max_decode_mb"],
    max_side: int = _DEFAULTS["max_photo_side"],
) -> Photo:
    """Decode image bytes into an upright 8-bit RGB :class:`Photo` whose long side is at most ``max_side``.

    Raises :class:`ImageTooLarge` (HTTP 413) for a photo over the byte, pixel, aspect ratio or
    decode memory (``max_decode_mb``) limits, all judged before decoding, and :class:`ImageError`
    (415) for anything that is not a photo in a format we read or cannot be decoded.
    """
    if not data:
        raise ImageError(f"{source}: the file is empty")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{source}: {_human(len(data))} is over the {_human(max_bytes)} limit")

    # Some libraries (face_recognition among them) switch LOAD_TRUNCATED_IMAGES
    # on for the whole process when imported; a truncated photo must still be
    # refused here, so switch it back off.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data), formats=_formats()) as img:
            decode_budget.check_header(img, source, max_pixels=max_pixels, max_aspect=max_aspect)
            decode_budget.check_jpeg_data(img, data, source)
            full_size = img.size
            target = decode_budget.working_size(full_size, max_side)
            if target != full_size and img.format in ("JPEG", "MPO"):
                img.draft("RGB", target)  # libjpeg scales the DCT by 1/2, 1/4 or 1/8: never the full picture
            needed = decode_budget.check_memory(img, source, full_size, max_decode_mb)
            img.load()
            picture = _shrink_to_rgb(img, target)
            orientation = _orientation(img)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{source}: too many pixels, over the limit of {max_pixels / 1e6:.0f} megapixels") from None
    except UnidentifiedImageError:
        raise _not_a_photo(data, source) from None
    except _DECODE_FAILURES as exc:
        reason = first_line(exc)
        if "truncated" in reason.lower() or isinstance(exc, EOFError):
            reason = "the file is truncated"
        raise ImageError(f"{source}: cannot decode the image: {reason}") from None
    if orientation in _TRANSPOSE:
        picture = picture.transpose(_TRANSPOSE[orientation])
    upright = full_size[::-1] if orientation in (5, 6, 7, 8) else full_size
    if picture.size == upright:
        return Photo(picture, source=source)
    log.debug("%s: %dx%d shrunk to %dx%d as it decoded (decoder memory about %d MB)",
              source, *upright, *picture.size, needed // 1_000_000)  # fmt: skip
    return Photo(picture, source=source, original_size=upright)


def _formats() -> list[str]:
    """PHOTO_FORMATS that this Pillow can open (HEIF only with pillow-heif).

    Only the photo formats' plugins are imported (``Image.init()`` imports some forty, 60-80 ms
    of a cold describe); the error path for other files imports them all.
    """
    from PIL import BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin  # noqa: F401

    with contextlib.suppress(ImportError):  # a Pillow built without libwebp
        from PIL import WebPImagePlugin  # noqa: F401
    return [name for name in PHOTO_FORMATS if name in Image.OPEN]


def _not_a_photo(data: bytes, source: str) -> ImageError:
    """The error for bytes no photo decoder would open, naming the format when its signature shows it.

    Only Pillow's signature checks run (a look at the first bytes): no other plugin parses the file.
    """
    prefix = data[:16]
    Image.init()  # every plugin's signature check
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        try:
            matched = bool(accept and accept(prefix))
        except (*_DECODE_FAILURES, IndexError, TypeError):
            matched = False
        if not matched:
            continue
        label = decode_budget.FORMAT_NAMES.get(name, name)
        if name in PHOTO_FORMATS:
            return ImageError(f"{source}: cannot decode the image: a damaged {label} file")
        article = "an" if label[0] in "AEFHILMNORSX" and label not in ("FITS", "SUN", "MCIDAS") else "a"
        return ImageError(f"{source} is {article} {label} file; {SEND_A_PHOTO}")
    return ImageError(f"{source}: not an image, or a format this tool cannot read; {SEND_A_PHOTO}")


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) of a loaded image; 1 when there is none or it cannot be read."""
    try:
        value = img.getexif().get(0x0112, 1)
    except (*_DECODE_FAILURES, IndexError, KeyError, TypeError):  # a damaged EXIF block: keep the photo as stored
        return 1
    return value if isinstance(value, int) else 1


def _human(n_bytes: int) -> str:
    """'812 KB', '41.9 MB': a byte count for a message."""
    if n_bytes < 1_000_000:
        return f"{n_bytes / 1000:.0f} KB" if n_bytes >= 1000 else f"{n_bytes} bytes"
    return f"{n_bytes / 1e6:.1f} MB"


def _shrink_to_rgb(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A loaded image of any mode as 8-bit RGB of ``size`` (at most its own).

    Band by band: each band of rows is cut out, turned to RGB and resized on its own (with the
    filter's overlap, so the seams do not show), so that memory beyond the decoded picture is
    one band and the result, not a full-size RGB or premultiplied copy.
    """
    extrema = img.getextrema() if img.mode in ("I", "F") else None  # scaling of 32-bit pixels, from all of them
    if img.size == size:
        return _to_rgb(img, extrema)
    out = Image.new("RGB", size)
    width, height = img.size
    step = height / size[1]
    for top, bottom, first, last in decode_budget.shrink_rows(height, size[1], width, _BAND_BYTES):
        band = img.crop((0, first, width, last))  # a copy already: no second one for RGB
        band = band if band.mode == "RGB" else _to_rgb(band, extrema)
        box = (0.0, top * step - first, float(width), min(bottom * step, last) - first)  # min: float rounding
        out.paste(band.resize((size[0], bottom - top), Image.Resampling.BICUBIC, box=box), (0, top))
    return out


def _to_rgb(img: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency over white, 16-bit scaled, not clipped.

    ``extrema`` is the (low, high) of the whole picture for modes "I" and "F", so that bands of it
    are scaled alike; without it, ``img``'s own.
    """
    if img.mode == "RGB":
        return img.copy()
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        high = extrema[1] if extrema else (arr.max() if arr.size else 0)
        peak = 65535 if img.mode.startswith("I;16") or high > 255 else 255
        arr8 = (arr.astype(np.float32) * (255.0 / peak)).clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = (float(v) for v in extrema) if extrema else (float(arr.min()), float(arr.max()))
        arr8 = ((arr - lo) / ((hi - lo) or 1.0) * 255).clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
