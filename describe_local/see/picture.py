"""Is it a photo of the world at all? Screenshots, pages of text and blank pictures told apart
before a caption model is asked what it sees (it would make up a scene for any of them).

Measured on a copy shrunk (nearest pixel, so that no averaging hides sensor noise) to at most
:data:`JUDGED_SIDE` pixels, numpy only, a few milliseconds:

- ``luma_std``: a blank picture (a lens cap, a wall, an empty screen) hardly varies at all;
- ``flat_pairs``: the share of side-by-side pixels of exactly the same colour. A screen's
  background is drawn in one colour; a camera's sensor noise makes neighbours differ even in
  a clear sky (the shared photos: at most 0.63, most under 0.4; rendered documentation pages:
  0.79 and more);
- ``colours``: distinct colours on a 128 x 128 grid of samples: a rendered page uses a few
  hundred (its text's anti-aliasing), a photo thousands;
- ``flat_blocks`` and ``background``: for screenshots saved as JPEG, which blurs exact equality:
  the share of 4 x 4 blocks with no texture, and the share of pixels within a hair of the most
  common grey level (a page's background);
- ``chroma``: the share of clearly coloured pixels; a page of print has none.

These are image statistics, not a model: a screenshot of a photo (a photo viewer) is still
called a photo, and a poster made on a computer may be called a screenshot. The check can be
turned off (``check_picture_kind``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from describe_local.results import Picture

if TYPE_CHECKING:
    from describe_local.images import Photo

JUDGED_SIDE = 512  # enough to see a screen's flat background; the check costs a few ms
BLANK_STD = 6.0  # luma standard deviation under this: one even tone (the shared photos: 23 and up)
FLAT_PAIRS = 0.7  # and ...
FEW_COLOURS = 1500  # ... together: drawn, not photographed
# A screenshot saved as JPEG: most of it one background tone, a third or more of it untextured,
# and still few colours.
JPEG_BACKGROUND = 0.6
JPEG_FLAT_BLOCKS = 0.35
JPEG_FEW_COLOURS = 3500
PAGE_CHROMA = 0.002  # share of clearly coloured pixels under this: print, not a screen
PAGE_COLOURS = 300  # and this few colours: black on white (with the scanner's greys)

SENTENCES = {
    Picture.SCREENSHOT: "This looks like a screenshot.",
    Picture.PAGE: "This looks like a page of text.",
}


def measure(photo: Photo) -> dict[str, float]:
    """The statistics :func:`judge` decides by (see the module's docstring), and the mean colour."""
    image = photo.image
    scale = min(1.0, JUDGED_SIDE / max(image.size))
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.NEAREST)
    rgb = np.asarray(image.convert("RGB"))
    packed = rgb[..., 0].astype(np.int32) << 16 | rgb[..., 1].astype(np.int32) << 8 | rgb[..., 2]
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    pairs = packed[:, 1:] == packed[:, :-1] if packed.shape[1] > 1 else np.zeros(1, bool)
    rows = np.linspace(0, packed.shape[0] - 1, 128).astype(int)
    cols = np.linspace(0, packed.shape[1] - 1, 128).astype(int)
    # Distinct colours by sorting: np.unique would import numpy.ma (20 ms of a cold describe).
    sample = np.sort(packed[np.ix_(rows, cols)], axis=None)
    colours = 1 + int(np.count_nonzero(sample[1:] != sample[:-1]))
    hist = np.bincount(grey.astype(np.int64).ravel(), minlength=256)
    background = np.convolve(hist, np.ones(5), mode="same").max() / grey.size
    height, width = (grey.shape[0] // 4) * 4, (grey.shape[1] // 4) * 4
    if height and width:
        blocks = grey[:height, :width].reshape(height // 4, 4, width // 4, 4).std(axis=(1, 3))
        flat_blocks = float((blocks < 1.5).mean())
    else:
        flat_blocks = 0.0
    chroma = float(((rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)) > 40).mean())
    mean = rgb.reshape(-1, 3).mean(axis=0)
    return {"luma_std": float(grey.std()), "flat_pairs": float(pairs.mean()), "colours": float(colours),
            "background": float(background), "flat_blocks": flat_blocks, "chroma": chroma,
            "red": float(mean[0]), "green": float(mean[1]), "blue": float(mean[2])}


def judge(measured: dict[str, float]) -> Picture:
    """What kind of picture :func:`measure`'s statistics describe."""
    if measured["luma_std"] < BLANK_STD:
        return Picture.BLANK
    drawn = measured["flat_pairs"] >= FLAT_PAIRS and measured["colours"] <= FEW_COLOURS
    drawn_jpeg = (measured["background"] >= JPEG_BACKGROUND and measured["flat_blocks"] >= JPEG_FLAT_BLOCKS
                  and measured["colours"] <= JPEG_FEW_COLOURS)
    if not (drawn or drawn_jpeg):
        return Picture.PHOTO
    if measured["chroma"] < PAGE_CHROMA and measured["colours"] <= PAGE_COLOURS:
        return Picture.PAGE
    return Picture.SCREENSHOT


def colour_name(red: float, green: float, blue: float) -> str:
    """A plain name for a colour ("dark grey", "light blue"), for a blank picture."""
    top, bottom = max(red, green, blue), min(red, green, blue)
    light = (top + bottom) / 2
    if top - bottom < 40:  # no hue worth naming
        for limit, name in ((30, "black"), (90, "dark grey"), (170, "grey"), (230, "light grey")):
            if light < limit:
                return name
        return "white"
    hue = _hue(red, green, blue)
    names = ((15, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"), (255, "blue"),
             (290, "purple"), (335, "pink"), (360, "red"))
    name = next(n for limit, n in names if hue < limit)
    return f"dark {name}" if light < 70 else f"light {name}" if light > 190 else name


def _hue(red: float, green: float, blue: float) -> float:
    top, bottom = max(red, green, blue), min(red, green, blue)
    span = top - bottom
    if top == red:
        hue = 60 * (((green - blue) / span) % 6)
    elif top == green:
        hue = 60 * ((blue - red) / span + 2)
    else:
        hue = 60 * ((red - green) / span + 4)
    return hue % 360


def sentence(kind: Picture, measured: dict[str, float]) -> str | None:
    """What is said of a picture that is not a photo (``None`` for a photo)."""
    if kind is Picture.BLANK:
        return f"The picture is blank (all {colour_name(measured['red'], measured['green'], measured['blue'])})."
    return SENTENCES.get(kind)
