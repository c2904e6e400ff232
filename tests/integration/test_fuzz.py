"""A bounded fuzz run of the photo decoder: a few hundred damaged JPEG, PNG, GIF, TIFF and HEIC
files, made in memory from the real photos, must each decode to a :class:`Photo` or be refused
with an :class:`ImageError`: no other exception, no hang, and bounded memory.

The loop runs in a child process (this file run as a script), so that its peak RSS is its own;
the seed is fixed, so a failure names a case that can be run again.
"""

from __future__ import annotations

import io
import json
import logging
import random
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED = 20240610
CASES = 1000
LIMITS = {"max_bytes": 40 * 1024 * 1024, "max_pixels": 100_000_000}
HUGE = (0, 1, 255, 4097, 9_999, 30_000, 65_500, 65_535, 100_000, 1_000_000, 90_000_000, 2**31 - 1, 2**32 - 1)


def test_damaged_photos_decode_or_are_refused(shared_data: Path):
    done = subprocess.run(
        [sys.executable, __file__, str(shared_data)], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["escaped"] == [], report["escaped"][:10]
    assert report["cases"] == CASES
    assert report["outcomes"]["photo"] >= 30 and report["outcomes"]["refused"] >= 30, report["outcomes"]
    assert set(report["formats"]) == {"JPEG", "PNG", "GIF", "TIFF", "HEIF"}, report["formats"]
    assert report["bad_photos"] == [], report["bad_photos"][:10]
    assert report["seconds"] < 120, report
    assert report["maxrss_mb"] < 800, report


# -- the child: seeds, mutations, the loop ------------------------------------------------


def _seeds(data: Path) -> list[tuple[str, bytes]]:
    """(format, bytes) of the unmutated files: real JPEG, PNG and TIFF files as they are, and
    GIF, HEIC, an LZW TIFF and an EXIF-rotated JPEG made from real photos (none are in the data)."""
    import pillow_heif
    from PIL import Image

    photos = sorted((data / "captions" / "images").glob("*.jpg"))[:3]
    seeds = [("JPEG", p.read_bytes()) for p in photos]
    seeds += [("JPEG", (data / "ocr" / "signs" / "french.jpg").read_bytes())]
    seeds += [("PNG", (data / "faces" / "photos" / "alex-lacamoire.png").read_bytes())]
    seeds += [("PNG", (data / "ocr" / "signs" / "example3.png").read_bytes())]
    seeds += [("TIFF", (data / "ocr" / "pages" / "phototest.tif").read_bytes())]
    with Image.open(photos[0]) as img:
        small = img.convert("RGB")
    small.thumbnail((320, 320))

    def encoded(fmt: str, img, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    seeds += [("JPEG", encoded("JPEG", small, quality=85, exif=exif.tobytes(), progressive=True))]
    seeds += [("GIF", encoded("GIF", small.convert("P")))]
    seeds += [("TIFF", encoded("TIFF", small, compression="tiff_lzw"))]
    heif = pillow_heif.from_pillow(small)
    buf = io.BytesIO()
    heif.save(buf, quality=80)
    seeds += [("HEIF", buf.getvalue())]
    return seeds


def _bit_flips(rng: random.Random, data: bytearray, _fmt: str, _donors: list[bytes]) -> None:
    for _ in range(rng.choice((1, 2, 4, 8, 32))):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _truncate(rng: random.Random, data: bytearray, _fmt: str, _donors: list[bytes]) -> None:
    del data[rng.randrange(1, len(data)) :]


def _splice(rng: random.Random, data: bytearray, _fmt: str, donors: list[bytes]) -> None:
    """Insert, or write over, a run of bytes taken from another (or the same) file."""
    donor = rng.choice(donors)
    start = rng.randrange(len(donor))
    piece = donor[start : start + rng.randrange(1, 4096)]
    at = rng.randrange(len(data))
    if rng.random() < 0.5:
        data[at:at] = piece
    else:
        data[at : at + len(piece)] = piece


def _huge_size(rng: random.Random, data: bytearray, fmt: str, _donors: list[bytes]) -> None:
    """Set the width, the height or both in the header to an extreme value."""
    fields = _size_fields(bytes(data), fmt)
    for offset, width_bytes, order in rng.sample(fields, rng.randint(1, len(fields))) if fields else ():
        value = min(rng.choice(HUGE), 2 ** (8 * width_bytes) - 1)
        data[offset : offset + width_bytes] = value.to_bytes(width_bytes, order)
    if fmt == "PNG" and len(data) >= 33:  # a fresh CRC, so that the decoder reads the new size
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))


def _size_fields(data: bytes, fmt: str) -> list[tuple[int, int, str]]:
    """(offset, size in bytes, byte order) of the header fields that hold the picture's size."""
    if fmt == "PNG":
        return [(16, 4, "big"), (20, 4, "big")]
    if fmt == "GIF":
        return [(6, 2, "little"), (8, 2, "little")]
    if fmt == "HEIF":
        at = data.find(b"ispe")
        return [(at + 8, 4, "big"), (at + 12, 4, "big")] if at > 0 else []
    if fmt == "JPEG":
        at = 2
        while at + 9 < len(data) and data[at] == 0xFF:
            marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):  # a frame header: precision, height, width
                return [(at + 5, 2, "big"), (at + 7, 2, "big")]
            at += 2 + length
        return []
    if fmt == "TIFF":
        order = "little" if data[:2] == b"II" else "big"
        ifd = int.from_bytes(data[4:8], order)
        found = []
        for i in range(int.from_bytes(data[ifd : ifd + 2], order)):
            entry = ifd + 2 + 12 * i
            tag, kind = (
                int.from_bytes(data[entry : entry + 2], order),
                int.from_bytes(data[entry + 2 : entry + 4], order),
            )
            if tag in (256, 257):  # ImageWidth, ImageLength: a SHORT or a LONG
                found.append((entry + 8, 2 if kind == 3 else 4, order))
        return found
    return []


MUTATIONS: dict[str, Callable[[random.Random, bytearray, str, list[bytes]], None]] = {
    "bit_flips": _bit_flips, "truncate": _truncate, "splice": _splice, "huge_size": _huge_size,
}  # fmt: skip


def fuzz(data: Path, cases: int = CASES, seed: int = SEED) -> dict:
    """Decode ``cases`` mutated files; what happened to them, as a JSON-ready report."""

    import numpy as np

    from describe_local.errors import ImageError
    from describe_local.images import decode_photo

    rng = random.Random(seed)
    seeds = _seeds(data)
    donors = [raw for _, raw in seeds]
    outcomes: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    escaped, bad_photos = [], []
    slowest = (0.0, "")
    started = time.monotonic()
    for case in range(cases):
        # Every seed file meets every mutation in turn; a third of the cases get a second one.
        index = case % len(seeds)
        fmt, raw = seeds[index]
        mutated = bytearray(raw)
        names = [sorted(MUTATIONS)[case // len(seeds) % len(MUTATIONS)]]
        if rng.random() < 1 / 3:
            names.append(rng.choice(sorted(MUTATIONS)))
        for name in names:
            MUTATIONS[name](rng, mutated, fmt, donors)
        label = f"case {case}: seed file {index} ({fmt}), {'+'.join(names)}"
        began = time.monotonic()
        try:
            photo = decode_photo(bytes(mutated), source=f"case{case}", **LIMITS)
            outcomes["photo"] += 1
            if photo.image.mode != "RGB" or photo.array.dtype != np.uint8 or photo.array.shape[2] != 3:
                bad_photos.append(label)
        except ImageError as exc:
            outcomes["refused"] += 1
            if "\n" in str(exc):
                bad_photos.append(f"{label}: a message of several lines")
        except Exception as exc:  # what this test looks for
            escaped.append(f"{label}: {type(exc).__name__}: {exc}"[:300])
        formats[fmt] += 1
        slowest = max(slowest, (time.monotonic() - began, label))
    return {
        "cases": cases,
        "outcomes": dict(outcomes),
        "formats": dict(formats),
        "escaped": escaped,
        "bad_photos": bad_photos,
        "slowest": slowest,
        "seconds": time.monotonic() - started,
        "maxrss_mb": int(next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")).split()[1]) / 1024,
    }


# -- pages, archives and settings files: only the project's own errors come out -------------------

INPUT_CASES = 200  # of each kind, seeded; each case must also end in under CASE_SECONDS
CASE_SECONDS = 2.0
TOKENS = ["<a", "<img", " src=", '"', "'", ">", "<!--", "-->", "<![", "<!", "<?", "</", "&#", "&#x110000;",
          "<script>", "</script>", "<picture>", "<source srcset=", " 2x,", "\x00", "\ufffd", "\n", "%00",
          "/" * 300, "a" * 300, "../", "../../etc/passwd", "data:", "<base href=", " alt", "=", "\ud800"]


def _mutate_text(rng: random.Random, text: str, tokens: list[str]) -> str:
    """``text`` with a few random edits: tokens inserted (sometimes thousands of times), a cut,
    a deletion, or random characters."""
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(text))
        kind = rng.random()
        if kind < 0.5:
            text = text[:at] + rng.choice(tokens) + text[at:]
        elif kind < 0.6:
            token = rng.choice(tokens)  # repeated up to about 400 KB: hostile, not merely big
            text = text[:at] + token * min(rng.choice((100, 5_000, 40_000)), 400_000 // len(token)) + text[at:]
        elif kind < 0.75:
            text = text[:at]
        elif kind < 0.9:
            text = text[:at] + text[at + rng.randint(1, 50):]
        else:
            text = text[:at] + "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(1, 20))) + text[at:]
    return text


def _check(label: str, run: Callable[[], object], allowed: type[Exception], escaped: list[str]) -> None:
    began = time.monotonic()
    try:
        run()
    except allowed as exc:
        if "\n" in str(exc).strip():
            escaped.append(f"{label}: a message of several lines: {exc!s:.200}")
    except Exception as exc:  # what this test looks for
        escaped.append(f"{label}: {type(exc).__name__}: {exc}"[:300])
    if time.monotonic() - began > CASE_SECONDS:
        escaped.append(f"{label}: took {time.monotonic() - began:.1f} s")


def test_damaged_pages_are_planned_or_refused(tmp_path: Path):
    from PIL import Image

    from describe_local.alt_text.site import finish_page, plan_page
    from describe_local.alt_text.wording import AltText
    from describe_local.errors import DescribeLocalError

    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    Image.new("RGB", (8, 8), "blue").save(site / "img" / "a.png")
    (site / "img" / "out.png").symlink_to("/etc/passwd")
    seed = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body>\n'
            '<img src="img/a.png"><img src="img/out.png" alt=""><picture><source srcset="img/a.png 2x">'
            '<img src="/img/a.png"></picture><IMG SRC=img/a.png?v=1 /><script>if (a<b) x()</script>\n</body></html>\n')
    rng = random.Random(SEED)
    escaped: list[str] = []
    for case in range(INPUT_CASES):
        text = _mutate_text(rng, seed, TOKENS)
        page = site / "page.html"
        page.write_bytes(text.encode("utf-8", "surrogatepass") if rng.random() < 0.9 else
                         bytes(rng.randrange(256) for _ in range(200)) + text.encode("utf-8", "replace"))

        def plan_and_finish(page: Path = page) -> None:
            plan = plan_page(page, site)
            finish_page(plan, {path: AltText("A blue square.", "A blue square.", False) for path in plan.images()})
            for path in plan.images():
                assert path.resolve().is_relative_to(site.resolve()), path

        _check(f"page case {case}", plan_and_finish, DescribeLocalError, escaped)
    assert escaped == [], escaped[:10]


def test_damaged_archives_are_imported_or_refused(tmp_path: Path):
    import tarfile
    import zipfile

    from describe_local.errors import DescribeLocalError
    from describe_local.store import ModelStore, import_model
    from tests.integration.test_store import _ofa_files

    files = _ofa_files(seed=1)
    zipped, tarred = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"ofa-tiny/{name}", data)
    with tarfile.open(fileobj=tarred, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"ofa-tiny/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    seeds = [(".zip", zipped.getvalue()), (".tar.gz", tarred.getvalue())]
    store = ModelStore.open(tmp_path / "models")
    rng = random.Random(SEED)
    escaped: list[str] = []
    for case in range(INPUT_CASES // 2):
        suffix, raw = seeds[case % 2]
        data = bytearray(raw)
        mutation = rng.choice(["flip", "cut", "splice", "size"])
        if mutation == "flip":
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif mutation == "cut":
            del data[rng.randrange(len(data)):]
        elif mutation == "splice":
            at = rng.randrange(len(data))
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        else:  # a size field somewhere made huge
            at = rng.randrange(len(data) - 4)
            data[at:at + 4] = struct.pack("<I", rng.choice(HUGE))
        archive_path = tmp_path / f"case{case}{suffix}"
        archive_path.write_bytes(bytes(data))
        _check(f"archive case {case} ({suffix}, {mutation})",
               lambda p=archive_path, c=case: import_model(store, p, name=f"case{c}"), DescribeLocalError, escaped)
        if any((store.root / ".tmp").glob("*")):
            escaped.append(f"archive case {case}: scratch left behind")
    assert escaped == [], escaped[:10]


def test_damaged_settings_files_load_or_are_refused(tmp_path: Path):
    from describe_local.errors import ConfigError
    from describe_local.settings import Settings

    seed = ('[describe-local]\nbeam = 3\nlanguage = "en"\nknown_faces = "~/faces"\nkeep_uploads = true\n'
            'stage_timeout_s = 30.0\n')
    tokens = ["[", "]", "{", "}", "=", '"', "'", "\n", "~nouser/", "describe-local = 1\n", "[[describe-local]]",
              "\\u0000", "nan", "inf", "1e999", "-", "#", "true", "\xff", "[describe-local.x]\n", "\x00"]
    rng = random.Random(SEED)
    escaped: list[str] = []
    for case in range(INPUT_CASES):
        config = tmp_path / f"case{case}.toml"
        text = _mutate_text(rng, seed, tokens)
        config.write_bytes(text.encode("utf-8", "surrogatepass") if rng.random() < 0.9 else
                           text.encode("utf-8", "replace") + bytes([rng.randrange(128, 256)]))
        _check(f"settings case {case}", lambda c=config: Settings.load(config_file=c, environ={}), ConfigError,
               escaped)
    assert escaped == [], escaped[:10]


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # Pillow logs every damaged chunk at debug level
    sys.stdout.write(json.dumps(fuzz(Path(sys.argv[1]))) + "\n")
