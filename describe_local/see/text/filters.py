"""Cleaning PP-OCR's lines: its alphabet's quirks, digits read for letters, lines that are not text,
and Tesseract's accents put back into PP-OCR's reading.

In and out: strings, and :class:`~describe_local.see.text.scene.RawLine` lists.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from describe_local.see.text.detect import Region
from describe_local.see.text.scene import RawLine

# Scripts the OCR languages never use: PP-OCRv4's alphabet is mostly Chinese,
# and on texture or a letter it cannot spell it answers with one of these.
FOREIGN = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Arrows, box drawing, shapes and dingbats: a sign's arrow read as '→' is not text to speak.
SYMBOLS = re.compile(r"[\u2190-\u21ff\u2500-\u27bf\u2b00-\u2bff]")
# Letters round a 0 or a 1: 'Appr0va1', '0rder', 'S-F0OD'.
TOKEN = re.compile(r"[0-9A-Za-zÀ-ÖØ-öø-ÿ]+")

# A line of this many characters or fewer must be surer than the others to count:
# texture (a collar, a tie) reads as 'I', 'II', '1' or 'OK' at high confidence.
SHORT_LINE = 3
SHORT_LINE_CONFIDENCE = 0.93
MIN_ALNUM_SHARE = 0.5
BLOB_ASPECT = 1.3  # a region less elongated than this ...
BLOB_SHARE = 0.08  # ... and thicker than this share of the photo's short side is not read


def is_blob(region: Region, short_side: int) -> bool:
    """A large, nearly square region: a face, an eye, a button read as text, not a line worth reading.

    On the 22 face photos DBNet marks such blobs (up to 371 x 461 px) and the
    recognizer answers with a Chinese character at low confidence; a line of
    two letters or more is longer than high, and a lone letter is small.
    """
    x0, y0, x1, y1 = region.bounds
    long, short = max(x1 - x0, y1 - y0), min(x1 - x0, y1 - y0)
    return long < BLOB_ASPECT * short and short > BLOB_SHARE * short_side


def clean_text(text: str) -> str:
    """NFKC (full-width '（' to '('), no characters of scripts the OCR languages do not use nor arrows,
    spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = SYMBOLS.sub("", FOREIGN.sub("", text))
    return " ".join(text.split())


def fix_confusions(text: str) -> str:
    """Digits read for the letters they resemble inside words: 'Appr0va1' -> 'Approval', '0rder' -> 'Order'.

    Only a 0 (for O) or a 1 (for l) with letters beside it and no digit
    beside it, in a token of at least two letters; 'TAX1', 'T1', '2016FRI' stay.
    """
    def mend(match: re.Match[str]) -> str:
        token = match.group(0)
        if sum(ch.isalpha() for ch in token) < 2:
            return token
        out = list(token)
        for i, ch in enumerate(token):
            if ch not in "01":
                continue
            left = token[i - 1] if i else ""
            right = token[i + 1] if i + 1 < len(token) else ""
            if left.isdigit() or right.isdigit() or not (left.isalpha() or right.isalpha()):
                continue
            neighbours = [c for c in (left, right) if c.isalpha()]
            lower = any(c.islower() for c in neighbours)
            if ch == "0":
                out[i] = "o" if lower and left.isalpha() else "O"
            elif left.isalpha() and left.islower():  # 'va1' -> 'val'; 'TAX1' is a code, left alone
                out[i] = "l"
        return "".join(out)

    return TOKEN.sub(mend, text)


def plausible(line: RawLine, min_confidence: float) -> bool:
    """Whether a cleaned line reads like text: sure enough, mostly letters and digits, not a lone mark."""
    text = line.text
    alnum = sum(ch.isalnum() for ch in text)
    if alnum < 1 or line.confidence < min_confidence:
        return False
    if alnum / max(1, len(text.replace(" ", ""))) < MIN_ALNUM_SHARE:
        return False
    if len(text.replace(" ", "")) <= SHORT_LINE:
        return line.confidence >= SHORT_LINE_CONFIDENCE and (alnum >= 2 or text.isdigit())
    return True


def photo_has_text(lines: list[RawLine]) -> bool:
    """Whether the lines kept add up to text, rather than a few marks read off texture.

    One short line alone is not text ('OK', 'II' off a shirt); a word of four
    letters or digits, or two lines, are.
    """
    if len(lines) >= 2:
        return True
    return any(sum(ch.isalnum() for ch in ln.text) >= 4 for ln in lines)


def strip_accents(text: str) -> str:
    """'Théâtre' -> 'Theatre'."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def merge_accents(pp: str, tess: str) -> str:
    """PP-OCR's line with Tesseract's accents where both read the same letters.

    PP-OCR reads scene text better but its alphabet has no â, ç, ñ, ö, ß...;
    Tesseract with the language's pack spells them. Where the two readings
    agree letter for letter (accents and case aside), each letter takes
    Tesseract's accent and PP-OCR's case; elsewhere PP-OCR's reading stands.
    Tesseract's ß stands where PP-OCR read 'B' or 'ss' for it.
    """
    if not tess:
        return pp
    base_pp = strip_accents(pp).casefold()
    tess_chars = list(tess.replace("ß", "\0"))  # a letter of its own: casefold would make it 'ss'
    base_tess = strip_accents("".join(tess_chars)).casefold()
    if len(base_pp) != len(pp) or len(base_tess) != len(tess_chars):  # a letter that decomposes to two: leave it
        return pp
    out = list(pp)
    matcher = difflib.SequenceMatcher(None, base_pp, base_tess, autojunk=False)
    for tag, i0, i1, j0, j1 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i0, i1), range(j0, j1), strict=True):
                accented = tess_chars[j]
                if accented.isalpha() and accented.casefold() != pp[i].casefold():
                    out[i] = accented.upper() if pp[i].isupper() else accented.lower()
        elif tag == "replace" and tess_chars[j0:j1] == ["\0"] and base_pp[i0:i1] in ("b", "ss"):
            after = pp[i1:i1 + 1]
            out[i0] = "SS" if pp[i0].isupper() and not after.islower() else "ß"  # STRASSE, Straße
            for k in range(i0 + 1, i1):
                out[k] = ""  # keeps ``out`` aligned with ``pp``
    return "".join(out)
