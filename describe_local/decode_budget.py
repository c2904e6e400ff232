"""What decoding a photo will cost, judged from its header before any pixel is decoded.

:func:`check_header` refuses a photo with :class:`ImageTooLarge` for its pixel count or aspect
ratio, :func:`check_memory` for the memory its decoder would need (:func:`decode_bytes`), and
:func:`shrink_rows` plans the band-by-band shrink to the working size. The estimate follows what
Pillow and its libraries really allocate (peak RSS measured on 6000 x 6000 photos, Pillow 13):

- the picture itself, in Pillow's storage: 1 byte a pixel for "1", "L" and "P", 2 for 16-bit
  grey, 4 for everything else ("RGB" is stored as 4 bytes too);
- progressive JPEG: libjpeg keeps every DCT coefficient of the *full-size* picture (2 bytes each,
  per component at its sampling), whatever the draft scale (1.77 pictures at 4:2:0);
- TIFF through libtiff: one strip or tile buffer of raw samples, the whole picture when it is one strip;
- WebP: libwebp's canvas and a bytes copy of it, 4 pictures in all; HEIF: libheif's planes (1.85);
- BMP: the run-length decoder builds the picture in a bytes buffer first (counted for every BMP).
"""

from __future__ import annotations

import math

from PIL import Image

from describe_local.errors import ImageError, ImageTooLarge

# Formats by the names people know them by (Pillow's names otherwise).
FORMAT_NAMES = {"WEBP": "WebP", "HEIF": "HEIC", "MPO": "JPEG", "JPEG2000": "JPEG 2000"}
# Frame markers (SOFn) of arithmetic-coded JPEGs, which can hold less than a bit a block.
_ARITHMETIC_SOF = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Pictures' worth of memory a decoder holds besides the picture it fills (see above).
_EXTRA_PICTURES = {"WEBP": 3.0, "HEIF": 1.5, "BMP": 1.0}


def working_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled down (never up) so that its long side is at most ``max_side``."""
    width, height = size
    scale = min(1.0, max_side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def pixel_bytes(mode: str) -> int:
    """Bytes Pillow stores a pixel of ``mode`` in."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def check_header(img: Image.Image, source: str, *, max_pixels: int, max_aspect: float) -> None:
    """Refuse ``img`` (opened, not loaded) for its pixel count or its aspect ratio.

    The memory check needs the draft size, so :func:`check_memory` is a separate step.
    """
    width, height = img.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"{source}: {width}x{height} pixels is over the limit of {max_pixels / 1e6:.0f} megapixels")
    if max(width, height) > max_aspect * max(1, min(width, height)):
        raise ImageTooLarge(
            f"{source}: {width}x{height} pixels is too long and thin to describe "
            f"(one side over {max_aspect:g} times the other); crop it first"
        )


def check_jpeg_data(img: Image.Image, data: bytes, source: str) -> None:
    """Refuse a JPEG whose header claims more pixels than its bytes can hold, as truncated.

    libjpeg fills what is missing with grey and calls it a warning, so a 16x16 photo whose
    header says 9000x9000 would decode to a grey picture. A Huffman-coded JPEG spends at least
    one bit on every 8x8 block of its first component (its DC code), so it holds at least
    ``blocks / 8`` bytes; arithmetic coding has no such floor and is not judged.
    """
    if img.format not in ("JPEG", "MPO"):
        return
    marker = _jpeg_frame_marker(data)
    if marker is None or marker in _ARITHMETIC_SOF:
        return
    width, height = img.size
    floor = math.ceil(width / 8) * math.ceil(height / 8) // 8
    if len(data) < floor:
        raise ImageError(f"{source}: cannot decode the image: the file is truncated (its header says {width}x{height} "
                         f"pixels, which need at least {floor} bytes, and it holds {len(data)}); send the whole file")


def _jpeg_frame_marker(data: bytes) -> int | None:
    """The SOFn marker byte of a JPEG (0xC0 baseline, 0xC2 progressive...), read from its
    segments up to the first scan; ``None`` when there is none before it."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers with no length
            at += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
        if marker == 0xDA:
            return None
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return None


def check_memory(img: Image.Image, source: str, full_size: tuple[int, int], max_decode_mb: float) -> int:
    """Refuse ``img`` when decoding it would take more than ``max_decode_mb``; the estimate in bytes.

    ``img`` is opened and, for a JPEG, drafted; ``full_size`` is its size before the draft.
    """
    needed = decode_bytes(img, full_size)
    if needed > max_decode_mb * 1e6:
        width, height = full_size
        name = FORMAT_NAMES.get(img.format or "", img.format)
        raise ImageTooLarge(
            f"{source}: a {width}x{height} {name} picture would need about {needed / 1e6:.0f} MB "
            f"to decode, over the {max_decode_mb:g} MB limit"
        )
    return needed


def decode_bytes(img: Image.Image, full_size: tuple[int, int]) -> int:
    """Bytes the decoder of ``img`` (opened, maybe drafted, not loaded) will hold at its peak."""
    width, height = img.size
    picture = width * height * pixel_bytes(img.mode)
    fmt = img.format or ""
    extra = int(picture * _EXTRA_PICTURES.get(fmt, 0.0))
    if fmt in ("JPEG", "MPO") and img.info.get("progressive"):
        extra += _coefficient_bytes(img, full_size)
    elif fmt == "TIFF" and any(tile.codec_name == "libtiff" for tile in getattr(img, "tile", ())):
        extra += _tiff_buffer_bytes(img)
    return picture + extra


def _coefficient_bytes(img: Image.Image, full_size: tuple[int, int]) -> int:
    """The DCT coefficient buffer libjpeg keeps for a progressive JPEG of ``full_size``."""
    width, height = full_size
    layers = [layer for layer in getattr(img, "layer", []) if layer[1] > 0 and layer[2] > 0]
    if not layers:  # no sampling factors: count every component at full resolution
        return width * height * 2 * max(1, len(img.getbands()))
    h_max, v_max = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
    share = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    return int(width * height * 2 * share)


def _tiff_buffer_bytes(img: Image.Image) -> int:
    """libtiff's buffer for one strip (or tile) of raw samples; a whole picture when the tags say nothing."""
    width, height = img.size
    tags = getattr(img, "tag_v2", {})

    def tag(number: int, default: int) -> int:
        value = tags.get(number, default)
        value = value[0] if isinstance(value, tuple) and value else value
        return int(value) if isinstance(value, int | float) and value > 0 else default

    bits = tags.get(258, (8,))
    bits_per_pixel = sum(int(b) for b in bits) if isinstance(bits, tuple) else int(bits) * tag(277, 1)
    # Some layouts are read through libtiff's RGBA interface: 4 bytes a pixel, whatever the samples.
    pixel = max(4.0, bits_per_pixel / 8)
    if 322 in tags and 323 in tags:  # tiled
        return int(min(tag(322, width), width) * min(tag(323, height), height) * pixel)
    return int(width * min(tag(278, height), height) * pixel)


def shrink_rows(height: int, target_height: int, width: int, band_bytes: int) -> list[tuple[int, int, int, int]]:
    """How to shrink ``height`` rows to ``target_height`` band by band with a bicubic filter.

    Each band is (first output row, end output row, first source row, end source row); source
    bands overlap by the filter's reach, so that the result equals a resize of the whole picture.
    """
    step = height / target_height
    margin = math.ceil(2 * max(1.0, step)) + 2  # bicubic reaches 2 source pixels per output pixel
    per_band = max(1, int(band_bytes / (4 * max(1, width)) / step))
    bands = []
    for top in range(0, target_height, per_band):
        bottom = min(target_height, top + per_band)
        first = max(0, math.floor(top * step) - margin)
        last = min(height, math.ceil(bottom * step) + margin)
        bands.append((top, bottom, first, last))
    return bands
