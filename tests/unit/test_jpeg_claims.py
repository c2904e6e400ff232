"""A JPEG whose header claims more pixels than its bytes can hold is refused as truncated,
not decoded to a grey picture; whole JPEGs, however plain, are not."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from describe_local.errors import ImageError
from describe_local.images import decode_photo

LIMITS = {"max_bytes": 200_000_000, "max_pixels": 200_000_000, "max_decode_mb": 2000}


def _jpeg(size: tuple[int, int], **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, "JPEG", **save)
    return out.getvalue()


def _claiming(data: bytes, width: int, height: int) -> bytes:
    patched = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = patched.find(marker)
        if at >= 0:
            struct.pack_into(">HH", patched, at + 5, height, width)
            return bytes(patched)
    raise AssertionError("no frame header")


@pytest.mark.parametrize("save", [{}, {"progressive": True}, {"optimize": True}])
def test_a_16x16_jpeg_whose_header_says_9000x9000_is_refused_as_truncated(save: dict):
    liar = _claiming(_jpeg((16, 16), **save), 9000, 9000)
    with pytest.raises(ImageError, match="truncated .*9000x9000") as caught:
        decode_photo(liar, source="liar.jpg", **LIMITS)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("save", [{"quality": 5, "optimize": True}, {"quality": 5, "progressive": True}])
def test_plain_whole_jpegs_still_decode(save: dict):
    plain = _jpeg((3000, 2000), **save)  # one colour: as few bytes a block as a JPEG gets
    photo = decode_photo(plain, source="plain.jpg", **LIMITS)
    assert photo.image.getpixel((1500, 1000))[0] > 150
