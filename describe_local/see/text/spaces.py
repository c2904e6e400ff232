"""The spaces PP-OCR's recognizer leaves out between words: put back where the crop shows a gap.

In: a recognized line's text, its characters' centres (0..1 along the crop) and the crop (BGR).
Out: the text with spaces, and the centres with one for each space.
"""

from __future__ import annotations

import cv2
import numpy as np

SPACE_GAP = 0.24  # an inkless run this share of the line's height between two characters ...
SPACE_STEP = 1.3  # ... where the recognizer stepped this many times its usual step is a space


def insert_spaces(text: str, xs: list[float], crop: np.ndarray) -> tuple[str, list[float]]:
    """``text`` with a space wherever the crop shows a word's gap between two characters run together.

    PP-OCRv4's recognizer learnt mostly Chinese, which has no spaces, and runs
    English words together ("SocialReformer"). Two signs of a space, both
    needed: the widest run of columns without ink between the two characters'
    centres, over the crop's height, is at least SPACE_GAP (up to 0.5 between
    the letters of bold or monospaced words, from 0.25 between words), and the
    recognizer's step between them is at least SPACE_STEP times the line's
    usual step (1.0 in those wide words, 1.3 to 2.3 at the missing spaces of
    blue_plaque.jpg, receipt_sideways.jpg, mall_sign.jpg).
    """
    if len(text) < 3 or len(xs) != len(text):
        return text, xs
    steps = np.diff(xs)
    usual = float(np.median(steps)) or 1.0
    empty = _empty_columns(crop)
    width, height = len(empty), crop.shape[0]
    out, positions = [text[0]], [xs[0]]
    for i in range(1, len(text)):
        a, b = text[i - 1], text[i]
        if a.isalnum() and b.isalnum() and not (a.isdigit() and b.isdigit()) and steps[i - 1] >= SPACE_STEP * usual:
            lo, hi = int(xs[i - 1] * width), int(np.ceil(xs[i] * width))
            if _longest_run(empty[lo:hi]) >= SPACE_GAP * height:
                out.append(" ")
                positions.append((xs[i - 1] + xs[i]) / 2)
        out.append(b)
        positions.append(xs[i])
    return "".join(out), positions


def _empty_columns(crop: np.ndarray) -> np.ndarray:
    """Which columns of the crop's middle band hold no ink (Otsu's threshold; ink is what the border is not)."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = gray < threshold if np.median(border) >= threshold else gray > threshold
    h = gray.shape[0]
    band = ink[int(h * 0.2): max(int(h * 0.8), int(h * 0.2) + 1)]  # clear of the neighbouring lines' edges
    return band.sum(axis=0) <= max(1, 0.03 * band.shape[0])


def _longest_run(flags: np.ndarray) -> int:
    """The longest run of True in ``flags``."""
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best
