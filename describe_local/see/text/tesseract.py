"""Tesseract, run as a child process: document pages, and the accents PP-OCR cannot spell.

Tesseract reads two kinds of picture badly with one setting: a document page
wants layout analysis (page segmentation mode 3, which keeps columns and
reading order), a sign in a street photo wants sparse text (mode 11). So
:meth:`Tesseract.read` (the engine of the stage before PP-OCR, kept for
pages and as the ``tesseract`` engine setting):

1. probe at about the photo's own size with the English pack alone (cheap):
   the layout pass, and the sparse pass unless the layout pass found a page;
   the pass that read more (characters weighted by confidence) wins;
2. nothing found: no text;
3. scene text: a closer look at the photo enlarged, as sign lettering is small;
4. text in another language (or in several): read again with that pack (or
   all packs), which gets the accents right; the better read is kept.

Tesseract happily "reads" fur, leaves and brick as glyph soup, so every word
must pass a confidence and shape test, a line is kept only when it holds a
real word, and one three-letter word alone in a photo is not text.

It runs as our own child process (not through pytesseract) so that the child
alone gets ``OMP_THREAD_LIMIT=1``: setting it here would also cap torch's
OpenMP threads for the caption model. Waiting releases the GIL.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import subprocess
import time
import unicodedata
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from describe_local.errors import DescribeLocalError, first_line
from describe_local.see.text.result import Word

log = logging.getLogger(__name__)

# Tesseract language pack -> ISO 639-1 code; every pack is a Debian package.
PACK_TO_ISO = {"eng": "en", "spa": "es", "fra": "fr", "deu": "de", "por": "pt", "ita": "it"}

LAYOUT_MODE = 3  # automatic page segmentation: columns, paragraphs, reading order
SPARSE_MODE = 11  # as much scattered text as possible, in no particular order
BLOCK_MODE = 6  # one uniform block: the stacked lines of a second reading

# Long side of the picture Tesseract gets: larger costs time and gains nothing
# on a 300 dpi page; smaller pictures are enlarged towards it (at most
# MAX_ENLARGE times), as sign lettering in a phone photo is often under the
# 20-30 px Tesseract reads best.
MAX_SIDE = 2400
MAX_ENLARGE = 3.0
PROBE_MIN_SIDE = 1000  # the probe enlarges only small pictures, to this long side
PAGE_MIN_WORDS = 12  # the layout pass is a page, and the sparse pass skipped, from this many words
REREAD_MIN_LETTERS = 20  # text with no clear language is read again with every pack from this many letters

VOWELS = frozenset("aeiouyàáâãäåæèéêëìíîïòóôõöøœùúûüÿ")
PUNCTUATION_EDGES = "\"'“”‘’„«»‹›()[]{}<>.,;:!?¡¿-–—_*|/\\~`^°•·#%$€£&+=@"


def installed_packs(binary: str = "tesseract") -> set[str]:
    """The language packs Tesseract can load."""
    done = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, check=False, timeout=30)
    lines = (done.stdout + done.stderr).splitlines()
    return {line.strip() for line in lines if line.strip() and " " not in line.strip()}


@dataclass
class Tesseract:
    """The Tesseract binary and the packs to read with (Tesseract's form: "eng+spa+fra")."""

    binary: str
    languages: str
    min_confidence: float  # 0-100: words below it are dropped

    @property
    def primary(self) -> str:
        """The pack that probes for text: English where it is installed."""
        packs = self.languages.split("+")
        return "eng" if "eng" in packs else packs[0]

    def pack_for(self, language: str | None) -> str | None:
        """The installed pack for ``language`` (ISO 639-1), or None."""
        pack = next((p for p, iso in PACK_TO_ISO.items() if iso == language), None)
        return pack if pack in self.languages.split("+") else None

    def read(self, image: Image.Image, identify, timeout_s: float) -> tuple[list[Word], str, dict[str, float]]:
        """Words in ``image`` in Tesseract's reading order, the mode ("page", "scene" or "none") and timings.

        ``identify``: text -> (ISO language or None, confidence), to choose the pack of a second reading.
        """
        timings: dict[str, float] = {}
        start = time.perf_counter()
        picture = prepare(image, PROBE_MIN_SIDE)
        timings["prepare"] = _ms_since(start)
        probe, width = self.primary, image.width
        start = time.perf_counter()
        words = keep_real_words(self.recognize(picture, LAYOUT_MODE, probe, width, timeout_s), self.min_confidence)
        timings["layout"] = _ms_since(start)
        psm, mode = LAYOUT_MODE, "page"
        if len(words) < PAGE_MIN_WORDS:
            start = time.perf_counter()
            scene = keep_real_words(self.recognize(picture, SPARSE_MODE, probe, width, timeout_s), self.min_confidence)
            timings["sparse"] = _ms_since(start)
            if score(scene) > score(words):
                words, psm, mode = scene, SPARSE_MODE, "scene"
        if not words:
            return [], "none", timings
        if mode == "scene":  # sign lettering is often too small at the photo's own size
            closer = prepare(image, MAX_SIDE)
            if closer.size != picture.size:
                picture = closer
                start = time.perf_counter()
                again = keep_real_words(self.recognize(picture, psm, probe, width, timeout_s), self.min_confidence)
                timings["closer"] = _ms_since(start)
                words = max(again, words, key=score)
        # Read again with the pack of the text's language (all of them when it
        # is unclear) so that accents come out right; keep the better read.
        # Alone, because mixed with English the French pack read "Théatre" where alone it read "Théâtre".
        language, _ = identify(join_words(words))
        packs = self.pack_for(language) or self.languages
        letters = sum(ch.isalpha() for w in words for ch in w.text)
        if language is None and letters < REREAD_MIN_LETTERS:
            packs = probe  # six packs cost seconds; a few letters are not worth them
        if packs != probe:
            start = time.perf_counter()
            again = keep_real_words(self.recognize(picture, psm, packs, width, timeout_s), self.min_confidence)
            timings["reread"] = _ms_since(start)
            if score(again) >= score(words):
                words = again
        return words, mode, timings

    def read_lines(self, crops: list[Image.Image], pack: str, timeout_s: float) -> list[str]:
        """Each crop (one line of text, upright) read by Tesseract with ``pack``: all in one call.

        The crops are scaled to one height and stacked with white between
        them, dark text on light; Tesseract's lines are matched back to the
        crops by their height on the stack. A crop it read nothing on gives ''.
        """
        height, gap = 40, 24
        rows = [_dark_on_light(c, height) for c in crops]
        width = max(r.width for r in rows) + 2 * gap
        stack = Image.new("L", (width, gap + len(rows) * (height + gap)), 255)
        for i, row in enumerate(rows):
            stack.paste(row, (gap, gap + i * (height + gap)))
        words = self.recognize(stack, BLOCK_MODE, pack, stack.width, timeout_s)
        texts: list[list[str]] = [[] for _ in rows]
        for word in words:
            middle = word.box[1] + word.box[3] / 2
            slot = int((middle - gap / 2) // (height + gap))
            if 0 <= slot < len(rows) and word.confidence >= 0:
                texts[slot].append(word.text)
        return [" ".join(t) for t in texts]

    def recognize(self, picture: Image.Image, psm: int, packs: str, width: int, timeout_s: float) -> list[Word]:
        """Run Tesseract on ``picture`` (a copy resized from one ``width`` pixels wide) with ``packs`` in
        segmentation mode ``psm``: every word it saw, boxed in the original's pixels."""
        data = io.BytesIO()
        picture.save(data, format="PPM")  # uncompressed: no encoding cost, read from stdin
        # One OpenMP thread: the stage runs beside the other stages on few cores.
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        command = [self.binary, "stdin", "stdout", "-l", packs, "--psm", str(psm), "tsv"]
        try:
            done = subprocess.run(
                command, input=data.getvalue(), capture_output=True, env=env, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise DescribeLocalError(f"Tesseract took more than {timeout_s:g} s and was stopped") from None
        except OSError as exc:
            raise DescribeLocalError(f"Tesseract could not run: {first_line(exc)}") from None
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()
            raise DescribeLocalError(f"Tesseract failed: {reason[-1] if reason else done.returncode}")
        return parse_tsv(done.stdout.decode("utf-8", errors="replace"), picture.width / width)


def prepare(image: Image.Image, min_side: int = MAX_SIDE) -> Image.Image:
    """A grayscale copy for Tesseract: long side at most MAX_SIDE, enlarged up to ``min_side``."""
    factor = max(image.size) // MAX_SIDE
    if factor >= 2:  # a cheap box reduction first: grayscale and Lanczos on 48 MP cost most of a second
        image = image.reduce(factor)
    gray = ImageOps.grayscale(image)
    long_side = max(gray.size)
    scale = min(MAX_SIDE / long_side, max(1.0, min(MAX_ENLARGE, min_side / long_side)))
    if abs(scale - 1) < 0.05:
        return gray
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    return gray.resize(size, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)


def parse_tsv(tsv: str, scale: float = 1.0) -> list[Word]:
    """Words from Tesseract's TSV output, in its reading order; boxes divided by ``scale``."""
    words = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        words.append(
            Word(
                text=unicodedata.normalize("NFC", text),
                confidence=float(row["conf"]),
                line=(int(row["block_num"]), int(row["par_num"]), int(row["line_num"])),
                box=tuple(round(int(row[k]) / scale) for k in ("left", "top", "width", "height")),
            )
        )
    return words


def core(token: str) -> str:
    """A token without the punctuation around it: '(quick)' -> 'quick'."""
    return token.strip(PUNCTUATION_EDGES)


def looks_like_word(token: str) -> bool:
    """Whether ``token`` is shaped like a word or a number rather than glyph soup."""
    body = core(token)
    if not body:
        return False
    alnum = sum(ch.isalnum() for ch in body)
    if alnum / len(body) < 0.7:
        return False
    letters = [ch for ch in body if ch.isalpha()]
    # Case flipping back to upper inside a word ('iH', 'oN', 'eS') is noise.
    return not any(a.islower() and b.isupper() for a, b in itertools.pairwise(letters))


def is_anchor(word: Word, min_confidence: float) -> bool:
    """A word sure enough to prove that its line is real text."""
    letters = [ch.lower() for ch in core(word.text) if ch.isalpha()]
    if word.confidence < min_confidence or len(letters) < 3 or not looks_like_word(word.text):
        return False
    if len(set(letters)) == 1:  # 'lll', 'III': strokes, not a word
        return False
    return not (len(letters) >= 4 and not VOWELS.intersection(letters))


def keep_real_words(words: list[Word], min_confidence: float) -> list[Word]:
    """The confident, word-shaped words of the lines that hold at least one anchor word.

    A single three-letter anchor in the whole picture is not enough: texture
    read as 'off', 'Alt' or 'ibe' is that; a word of four letters or two anchors are.
    """
    anchors = [w for w in words if is_anchor(w, min_confidence)]
    longest = max((sum(ch.isalpha() for ch in w.text) for w in anchors), default=0)
    if len(anchors) < 2 and longest < 4:
        return []
    anchored = {w.line for w in anchors}
    return [w for w in words if w.line in anchored and w.confidence >= min_confidence and looks_like_word(w.text)]


def score(words: list[Word]) -> float:
    """How much was read, weighted by confidence: the criterion between two readings."""
    return sum(len(core(w.text)) * w.confidence / 100 for w in words)


def join_words(words: list[Word]) -> str:
    """Words into text: lines of a paragraph run on (hyphenated breaks re-joined), paragraphs on new lines."""
    paragraphs: list[list[str]] = []
    last: tuple[int, int, int] | None = None
    for word in words:
        new_line = word.line != last
        if last is None or word.line[:2] != last[:2]:
            paragraphs.append([])
        last = word.line
        tokens = paragraphs[-1]
        broken = tokens and tokens[-1].endswith("-") and tokens[-1][-2:-1].isalpha()
        if new_line and broken and word.text[:1].islower():
            tokens[-1] = tokens[-1][:-1] + word.text  # 'ex-' + 'plain' split at a line end
        else:
            tokens.append(word.text)
    return "\n".join(" ".join(tokens) for tokens in paragraphs)


def _dark_on_light(crop: Image.Image, height: int) -> Image.Image:
    """A line crop in gray, ``height`` pixels high, inverted when its text is light on dark (a street sign)."""
    gray = ImageOps.grayscale(crop)
    gray = gray.resize((max(1, round(gray.width * height / max(1, gray.height))), height), Image.Resampling.BICUBIC)
    pixels = np.asarray(gray).astype(np.float32)
    # The letters are the minority side of the mean: light ones (a street sign) are turned dark.
    if (pixels > pixels.mean()).mean() < 0.5:
        gray = ImageOps.invert(gray)
    return ImageOps.autocontrast(gray, cutoff=1)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
