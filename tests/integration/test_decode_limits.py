"""Decoding within a budget (issue 10): photos that would take the server's memory are refused
from their header or shrunk while they decode, and only the photo formats we list are opened.

Memory is measured in a child process (its own peak, VmHWM: ru_maxrss would carry the peak of the
pytest process it was forked from across exec), so that what pytest itself holds
does not count and one test's peak does not hide another's.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin, features

from describe_local.errors import ImageError
from describe_local.images import decode_photo
from describe_local.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = Settings()
LIMITS = {"max_bytes": DEFAULTS.max_image_bytes, "max_pixels": DEFAULTS.max_image_pixels}
WORKING_SIDE = DEFAULTS.max_photo_side
SEND_A_PHOTO = "send a photo (JPEG, PNG, WebP, GIF, TIFF, BMP or HEIC)"

# Decodes one file the way the describer does, then touches it the way the stages do
# (the pixel array, the face stage's 1600 px copy), and prints the outcome and its peak RSS.
CHILD = """
import json, resource, sys
from pathlib import Path
from describe_local.errors import DescribeLocalError
from describe_local.images import load_photo
out = {}
try:
    photo = load_photo(Path(sys.argv[1]), max_bytes=int(sys.argv[2]), max_pixels=int(sys.argv[3]))
    arr = photo.array
    photo.fit_within(1600)
    h, w = arr.shape[:2]
    out.update(outcome="ok", size=list(photo.size), top=arr[h // 8, w // 2].tolist(),
               bottom=arr[h - 1 - h // 8, w // 2].tolist())
except DescribeLocalError as exc:
    out.update(outcome=type(exc).__name__, message=str(exc), http_status=exc.http_status)
out["maxrss_mb"] = int(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')).split()[1]) / 1024
print(json.dumps(out))
"""


def _decode_in_child(path: Path) -> dict:
    """Run CHILD on ``path`` with the default limits; its JSON report."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(LIMITS["max_bytes"]), str(LIMITS["max_pixels"])],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _write_png(path: Path, width: int, height: int, color_type: int, rows) -> None:
    """A non-interlaced 8-bit PNG streamed row by row (``rows`` yields (count, row bytes) runs),
    so that writing a 100 MP picture never holds it in memory."""
    packer = zlib.compressobj(9)
    idat = bytearray()
    for count, row in rows:
        line = b"\x00" + row  # filter type 0
        per_block = max(1, (1 << 20) // len(line))
        for start in range(0, count, per_block):
            idat += packer.compress(line * min(per_block, count - start))
    idat += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", bytes(idat)) + _chunk(b"IEND", b"")
    )


def test_a_tall_thin_png_is_refused_from_its_header(tmp_path: Path):
    # 1 x 90,000,000 grey pixels: under the 100 MP limit, ~175 KB on disk, 3 GB to decode and resize.
    path = tmp_path / "tall.png"
    _write_png(path, 1, 90_000_000, 0, [(90_000_000, b"\x00")])
    assert path.stat().st_size < 400_000
    report = _decode_in_child(path)
    assert report["outcome"] == "ImageTooLarge", report
    assert report["http_status"] == 413
    assert "\n" not in report["message"] and "1x90000000" in report["message"], report
    assert report["maxrss_mb"] < 600, report


@pytest.mark.slow
def test_a_100_megapixel_png_decodes_within_budget_to_the_working_size(tmp_path: Path):
    # 9999 x 9999 RGB, red above blue: 400 MB in Pillow's 4-byte pixels, 724 MB peak before the fix.
    path = tmp_path / "square.png"
    half = 9999 // 2
    _write_png(path, 9999, 9999, 2, [(half, b"\xc8\x1e\x1e" * 9999), (9999 - half, b"\x1e\x1e\xc8" * 9999)])
    report = _decode_in_child(path)
    assert report["outcome"] == "ok", report
    assert max(report["size"]) == WORKING_SIDE and report["size"][0] == report["size"][1], report
    assert report["top"][0] > 180 and report["top"][2] < 60, report  # red stays on top
    assert report["bottom"][2] > 180 and report["bottom"][0] < 60, report
    assert report["maxrss_mb"] < 600, report


def _tiny(fmt: str) -> bytes:
    """A few bytes of a 16 x 16 picture in ``fmt`` (Pillow's format name)."""
    mode = {"SPIDER": "F", "EPS": "RGB", "DDS": "RGBA"}.get(fmt, "RGB")
    img = Image.new(mode, (16, 16), 200 if mode == "F" else (200, 40, 40, 255)[: len(mode)])
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


# Pillow format name -> the name the message gives; None: no signature to name it by (TGA and
# SPIDER files have no magic bytes), so the message only says it is not a photo we read.
REFUSED = {"ICO": "ICO", "TGA": None, "PCX": "PCX", "SGI": "SGI", "DDS": "DDS", "QOI": "QOI",
           "SPIDER": None, "JPEG2000": "JPEG 2000", "EPS": "EPS"}  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(REFUSED))
def test_other_formats_are_refused_before_their_plugin_runs(fmt: str, monkeypatch: pytest.MonkeyPatch):
    if fmt == "JPEG2000" and not features.check("jpg_2000"):
        pytest.skip("this Pillow was built without OpenJPEG, so it cannot write a JPEG 2000 file")
    data = _tiny(fmt)
    Image.init()
    plugin = Image.OPEN[fmt][0]
    assert isinstance(plugin, type), plugin
    opened: list[str] = []  # any call here means the format's own parser ran on the upload
    original_open, original_load = plugin._open, plugin.load

    def spy_open(self):
        opened.append("_open")
        return original_open(self)

    def spy_load(self):
        opened.append("load")
        return original_load(self)

    monkeypatch.setattr(plugin, "_open", spy_open)
    monkeypatch.setattr(plugin, "load", spy_load)
    spawned: list[object] = []  # EPS: Ghostscript would be started through subprocess

    def no_process(args, *a, **kw):
        spawned.append(args)
        raise FileNotFoundError(args)

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(subprocess, "check_call", no_process)

    with pytest.raises(ImageError) as caught:
        decode_photo(data, source="upload.bin", **LIMITS)
    message = str(caught.value)
    assert SEND_A_PHOTO in message and "\n" not in message, message
    assert caught.value.http_status == 415
    if REFUSED[fmt]:
        assert f"is a {REFUSED[fmt]} file" in message or f"is an {REFUSED[fmt]} file" in message, message
    assert opened == [] and spawned == [], (opened, spawned)


def test_a_large_real_jpeg_decodes_in_draft_mode_to_the_working_size_upright(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
):
    # A real phone-style photo, enlarged to 53 MP and stored sideways (EXIF orientation 6).
    with Image.open(shared_data / "faces" / "photos" / "tests_obama3.jpg") as real:
        upright = real.convert("RGB")
    big = upright.resize((upright.width * 4, upright.height * 4), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": so store it turned 90° anticlockwise
    buf = io.BytesIO()
    big.transpose(Image.Transpose.ROTATE_90).save(buf, format="JPEG", quality=88, exif=exif.tobytes())
    del big

    scales: list[int] = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy_draft(self, mode, size):
        found = original_draft(self, mode, size)
        scales.append(self.decoderconfig[0] if self.decoderconfig else 1)
        return found

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy_draft)
    photo = decode_photo(buf.getvalue(), source="big.jpg", **LIMITS)
    assert scales and scales[0] >= 2, scales  # libjpeg scaled the DCT: the full 53 MP were never made
    assert max(photo.size) <= WORKING_SIDE
    assert photo.size[1] > photo.size[0]  # portrait, as the photo was taken
    reference = np.asarray(upright.resize(photo.size, Image.Resampling.BILINEAR), dtype=np.float32)
    difference = float(np.abs(photo.array.astype(np.float32) - reference).mean())
    assert difference < 6.0, difference  # the same picture, the right way up
