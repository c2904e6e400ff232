"""Camera clips for live text, made from real photos: a sign that comes into view from one side
and stays, a sign cut off at the left, a page that slides into view on a table
(``ocr/pages/phototest.tif``, a short page in 12 point print).

Each clip is a list of frames (RGB PIL images) and, per frame, where the photo lies in it, so that
a test or a benchmark knows which frame first shows a line (or a page's four edges) whole.
:func:`write_y4m` writes a clip as the Y4M file Chromium's fake camera plays (in a loop).

    python scripts/live_text_clips.py OUT_DIR   # writes sign.y4m, cut-left.y4m, page.y4m from ../shared/data
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TABLE = (58, 46, 38)  # what the photos lie on, in the middle of the frame: darker than any page


@dataclass(frozen=True)
class Clip:
    """Frames at ``fps``, and the box [x0, y0, x1, y1] of the photo in each frame (may run past the
    frame's edges), with the photo's scale in the frame."""

    frames: list[Image.Image]
    boxes: list[tuple[int, int, int, int]]
    scale: float
    fps: int

    def placed(self, index: int, box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
        """``box`` (in the photo's own pixels) where it lies in frame ``index``."""
        x0, y0 = self.boxes[index][:2]
        return (x0 + box[0] * self.scale, y0 + box[1] * self.scale,
                x0 + box[2] * self.scale, y0 + box[3] * self.scale)

    def photo_whole(self, index: int) -> bool:
        """Whether the whole photo (all four of its edges) is inside frame ``index``."""
        width, height = self.frames[index].size
        x0, y0, x1, y1 = self.boxes[index]
        return x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height

    def whole_in(self, index: int, box: tuple[int, int, int, int], margin: float = 0.0) -> bool:
        """Whether ``box`` (the photo's pixels) is wholly inside frame ``index``, ``margin`` px in."""
        width, height = self.frames[index].size
        x0, y0, x1, y1 = self.placed(index, box)
        return x0 >= margin and y0 >= margin and x1 <= width - margin and y1 <= height - margin


def _table(size: tuple[int, int], seed: int) -> Image.Image:
    """What the photo lies on, as a camera sees it: lit unevenly (brighter towards one corner)
    and with the sensor's noise, never one flat colour."""
    width, height = size
    light = 0.75 + 0.5 * (np.linspace(0, 1, width)[None, :] + np.linspace(0, 1, height)[:, None]) / 2
    table = np.asarray(TABLE, dtype=np.float32)[None, None, :] * light[:, :, None]
    noise = np.random.default_rng(seed).normal(0, 3, (height, width, 1))
    return Image.fromarray(np.clip(table + noise, 0, 255).astype(np.uint8))


def _frame(photo: Image.Image, size: tuple[int, int], left: int, top: int, seed: int) -> Image.Image:
    frame = _table(size, seed)
    frame.paste(photo, (left, top))  # PIL clips what falls outside
    return frame


def slide(photo: Image.Image, size: tuple[int, int], fps: int, start: tuple[float, float], end: tuple[float, float],
          move_s: float, hold_s: float, fill: float = 0.8) -> Clip:
    """``photo`` scaled to ``fill`` of the frame, moving from ``start`` to ``end`` (its top-left
    corner, as shares of the frame's width and height) over ``move_s``, then still for ``hold_s``."""
    width, height = size
    scale = min(fill * width / photo.width, fill * height / photo.height)
    shown = photo.convert("RGB").resize((round(photo.width * scale), round(photo.height * scale)),
                                        Image.Resampling.LANCZOS)
    moving, holding = max(1, round(move_s * fps)), max(1, round(hold_s * fps))
    frames, boxes = [], []
    for index in range(moving + holding):
        t = min(1.0, index / moving)
        left = round((start[0] + (end[0] - start[0]) * t) * width)
        top = round((start[1] + (end[1] - start[1]) * t) * height)
        frames.append(_frame(shown, size, left, top, index))
        boxes.append((left, top, left + shown.width, top + shown.height))
    return Clip(frames, boxes, scale, fps)


def centred(photo: Image.Image, size: tuple[int, int], fill: float) -> tuple[float, float]:
    """The top-left corner (shares of the frame) that centres ``photo`` scaled to ``fill``."""
    width, height = size
    scale = min(fill * width / photo.width, fill * height / photo.height)
    return ((width - photo.width * scale) / 2 / width, (height - photo.height * scale) / 2 / height)


def sign_clip(photo: Image.Image, size: tuple[int, int] = (640, 480), fps: int = 10) -> Clip:
    """A sign coming into view from the right (cut by the frame's right edge at first), then still."""
    x, y = centred(photo, size, 0.85)
    return slide(photo, size, fps, (0.6, y), (x, y), move_s=2.0, hold_s=6.0, fill=0.85)


def cut_left_clip(photo: Image.Image, size: tuple[int, int] = (640, 480), fps: int = 10) -> Clip:
    """A sign held still with its left part out of the frame."""
    _, y = centred(photo, size, 0.85)
    scale = min(0.85 * size[0] / photo.width, 0.85 * size[1] / photo.height)
    left = -0.35 * photo.width * scale / size[0]
    return slide(photo, size, fps, (left, y), (left, y), move_s=0.1, hold_s=2.0, fill=0.85)


def page_clip(photo: Image.Image, size: tuple[int, int] = (1280, 960), fps: int = 5) -> Clip:
    """A page sliding in from the left (its left edge out of view at first) to lie whole on the table."""
    x, y = centred(photo, size, 0.85)
    return slide(photo, size, fps, (-0.3, y), (x, y), move_s=3.0, hold_s=5.0, fill=0.85)


def write_y4m(frames: list[Image.Image], out: Path, fps: int) -> Path:
    """``frames`` as a Y4M file (4:2:0, the format Chromium's fake camera plays from a file)."""
    width, height = frames[0].width // 2 * 2, frames[0].height // 2 * 2
    with out.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            ycbcr = frame.crop((0, 0, width, height)).convert("YCbCr")
            planes = [np.asarray(plane, dtype=np.float32) for plane in ycbcr.split()]
            fh.write(b"FRAME\n" + planes[0].astype(np.uint8).tobytes())
            for plane in planes[1:]:
                half = plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
                fh.write(half.round().astype(np.uint8).tobytes())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sign = Image.open(args.data / "ocr" / "signs" / "example3.png")
    page = Image.open(args.data / "ocr" / "pages" / "phototest.tif")
    for name, clip in (("sign", sign_clip(sign)), ("cut-left", cut_left_clip(sign)), ("page", page_clip(page))):
        print(write_y4m(clip.frames, args.out / f"{name}.y4m", clip.fps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
