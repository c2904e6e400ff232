"""What the text stage hands the pipeline: :class:`TextReading`, its :class:`TextLine` s and :class:`Word` s."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Word:
    """One word read, with its confidence (0-100) and where it is.

    ``line``: (block, paragraph, line) within one reading, which groups words into lines.
    ``box``: left, top, width, height in the photo's pixels.
    """

    text: str
    confidence: float
    line: tuple[int, int, int]
    box: tuple[int, ...]


@dataclass(frozen=True)
class TextLine:
    """One line of text, in reading order.

    ``box``: [x0, y0, x1, y1] in the photo's pixels (the axis-aligned box
    around the line, whichever way it runs). ``confidence``: 0..1. ``block``:
    the index of the block (a sign, a paragraph, a receipt) the line belongs
    to, counted from 0 in reading order.
    """

    text: str
    box: list[int]
    confidence: float
    block: int

    def as_dict(self) -> dict:
        """The line as plain JSON types."""
        return {"text": self.text, "box": list(self.box), "confidence": round(self.confidence, 3), "block": self.block}


@dataclass
class TextReading:
    """What the text stage found: ``text`` is '' and ``lines`` empty when the photo has none.

    ``text``: every line in reading order; lines of one block on new lines,
    blocks separated by a new line too. ``mode``: "page" (Tesseract's layout
    reading of a document), "scene" (text in a photo) or "none".
    ``engine``: "tesseract", "pp-ocr", "pp-ocr+tesseract" (PP-OCR lines with
    Tesseract's accents) or "" when nothing was read.
    """

    text: str = ""
    language: str | None = None  # ISO 639-1, None when unknown
    language_confidence: float = 0.0
    words: list[Word] = field(default_factory=list)
    mode: str = "none"
    timings_ms: dict[str, float] = field(default_factory=dict)
    lines: list[TextLine] = field(default_factory=list)
    engine: str = ""
    rotation: int = 0  # degrees the photo's text is turned clockwise from upright (0, 90, 180, 270)

    def first_lines(self, count: int) -> tuple[list[TextLine], int]:
        """The first ``count`` lines in reading order, and how many more there are (for "... and N more lines")."""
        count = max(0, count)
        return self.lines[:count], max(0, len(self.lines) - count)

    def lines_as_dicts(self) -> list[dict]:
        """Every line as plain JSON types, for the description's ``text_lines``."""
        return [line.as_dict() for line in self.lines]
