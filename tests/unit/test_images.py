"""Decoding every kind of photo a phone or a scanner makes, and refusing everything else."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from describe_local.errors import ImageError, ImageTooLarge
from describe_local.images import decode_photo, load_photo

LIMITS = {"max_bytes": 40 * 1024 * 1024, "max_pixels": 100_000_000}


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _close_to(photo_img: Image.Image, reference: Image.Image, tol: float) -> bool:
    a = np.asarray(photo_img.convert("RGB"), dtype=np.float32)
    b = np.asarray(reference.convert("RGB").resize(photo_img.size), dtype=np.float32)
    return float(np.abs(a - b).mean()) < tol


@pytest.mark.parametrize(
    ("fmt", "mode", "kw"),
    [
        ("JPEG", "RGB", {"quality": 90}),
        ("PNG", "RGB", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "P", {}),
        ("PNG", "L", {}),
        ("PNG", "LA", {}),
        ("WEBP", "RGB", {"quality": 90}),
        ("JPEG", "CMYK", {}),
        ("TIFF", "RGB", {}),
        ("BMP", "RGB", {}),
        ("GIF", "P", {}),
    ],
)
def test_formats_and_modes_decode_to_rgb(astronaut, fmt, mode, kw):
    source = astronaut.convert(mode)
    photo = decode_photo(_encode(source, fmt, **kw), **LIMITS)
    assert photo.image.mode == "RGB"
    assert photo.size == astronaut.size
    assert photo.array.shape == (512, 512, 3)
    assert photo.array.dtype == np.uint8
    # Content is preserved: close to the same conversion done directly.
    assert _close_to(photo.image, source, tol=12.0)


def test_transparent_png_is_composited_on_white():
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    photo = decode_photo(_encode(rgba, "PNG"), **LIMITS)
    assert photo.array.min() == 255  # fully transparent red reads as white, not red or black


def test_16_bit_grayscale_is_scaled_not_clipped():
    ramp = (np.linspace(0, 65535, 256, dtype=np.float64)[None, :].repeat(16, 0)).astype(np.uint16)
    img = Image.fromarray(ramp)  # mode I;16
    photo = decode_photo(_encode(img, "PNG"), **LIMITS)
    row = photo.array[0, :, 0].astype(int)
    assert row[0] <= 1 and row[-1] >= 254
    assert 120 <= row[128] <= 135  # mid-grey stays mid-grey (clipping would give 255)


def test_heic_decodes(astronaut):
    import pillow_heif

    heif = pillow_heif.from_pillow(astronaut)
    buf = io.BytesIO()
    heif.save(buf, quality=90)
    photo = decode_photo(buf.getvalue(), **LIMITS)
    assert photo.size == astronaut.size
    assert _close_to(photo.image, astronaut, tol=12.0)


@pytest.mark.parametrize(("orientation", "size"), [(1, (60, 40)), (3, (60, 40)), (6, (40, 60)), (8, (40, 60))])
def test_exif_orientation_is_applied(orientation, size):
    # Left half red, right half blue, stored sideways with an EXIF orientation tag.
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = (255, 0, 0)
    arr[:, 30:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = decode_photo(_encode(img, "JPEG", exif=exif.tobytes(), quality=95), **LIMITS)
    assert photo.size == size
    if orientation == 6:  # rotate 90° clockwise: what was left (red) is now on top
        assert photo.array[2, 20, 0] > 200 and photo.array[-3, 20, 2] > 200
    if orientation == 3:  # upside down: red is now on the right
        assert photo.array[20, -3, 0] > 200 and photo.array[20, 2, 2] > 200


def test_not_an_image():
    with pytest.raises(ImageError, match="not an image"):
        decode_photo(b"%PDF-1.4 hello, I am not a photo", **LIMITS)


def test_empty():
    with pytest.raises(ImageError, match="empty"):
        decode_photo(b"", **LIMITS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_is_refused_even_when_a_library_allows_truncated_images(astronaut, fmt, monkeypatch):
    from PIL import ImageFile

    # face_recognition, for one, does this for the whole process when imported.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _encode(astronaut, fmt)
    with pytest.raises(ImageError, match="truncated|cannot decode"):
        decode_photo(data[: len(data) // 2], **LIMITS)


def test_decompression_bomb_is_refused():
    # A tiny PNG that claims 10000 x 10000 pixels.
    img = Image.new("L", (10000, 10000))
    data = _encode(img, "PNG", optimize=True)
    assert len(data) < 1_000_000
    with pytest.raises(ImageTooLarge, match="megapixels") as caught:
        decode_photo(data, max_bytes=LIMITS["max_bytes"], max_pixels=50_000_000)
    assert caught.value.http_status == 413


def test_byte_limit(tmp_path: Path, astronaut):
    path = tmp_path / "big.png"
    path.write_bytes(_encode(astronaut, "PNG"))
    with pytest.raises(ImageTooLarge, match="over the"):
        load_photo(path, max_bytes=1000, max_pixels=LIMITS["max_pixels"])


def test_long_thin_picture_is_refused_from_its_header():
    data = _encode(Image.new("L", (2100, 100)), "PNG")
    with pytest.raises(ImageTooLarge, match="2100x100 pixels is too long and thin"):
        decode_photo(data, max_aspect=20, **LIMITS)
    assert decode_photo(data, max_aspect=25, **LIMITS).size == (2100, 100)


def test_decode_memory_is_judged_before_decoding(astronaut):
    data = _encode(astronaut.convert("RGBA"), "PNG")  # 512 x 512 x 4 bytes: about 1 MB decoded
    with pytest.raises(ImageTooLarge, match="would need about 1 MB to decode, over the 0.5 MB limit"):
        decode_photo(data, max_decode_mb=0.5, **LIMITS)


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGBA"), ("PNG", "I;16"), ("GIF", "P"), ("JPEG", "RGB")])
def test_large_photo_shrinks_to_the_working_size_as_it_decodes(astronaut, fmt, mode):
    reference = astronaut.convert("L" if mode == "I;16" else mode)
    source = Image.fromarray(np.asarray(reference, np.uint16) * 257) if mode == "I;16" else reference
    photo = decode_photo(_encode(source, fmt), max_side=200, **LIMITS)
    assert photo.size == (200, 200) and photo.original_size == (512, 512)
    assert photo.image.mode == "RGB"
    assert _close_to(photo.image, reference, tol=12.0)


def test_shrinking_keeps_the_exif_orientation():
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = (255, 0, 0)  # stored: red left, blue right; orientation 6 turns red to the top
    arr[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = decode_photo(_encode(Image.fromarray(arr), "JPEG", exif=exif.tobytes(), quality=95), max_side=30, **LIMITS)
    assert photo.size == (20, 30) and photo.original_size == (40, 60)
    assert photo.array[2, 10, 0] > 200 and photo.array[-3, 10, 2] > 200


def test_missing_file(tmp_path: Path):
    with pytest.raises(ImageError, match="no such file"):
        load_photo(tmp_path / "nope.jpg", **LIMITS)


def test_directory_is_not_a_photo(tmp_path: Path):
    with pytest.raises(ImageError, match="not a file"):
        load_photo(tmp_path, **LIMITS)


def test_fit_within_downscales_long_side(astronaut):
    photo = decode_photo(_encode(astronaut, "PNG"), **LIMITS)
    small, scale = photo.fit_within(256)
    assert max(small.size) == 256 and scale == pytest.approx(0.5)
    same, scale = photo.fit_within(4000)
    assert same.size == (512, 512) and scale == 1.0
