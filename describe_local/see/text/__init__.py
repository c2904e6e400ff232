"""The text stage: the text in a photo, line by line in reading order, and its language, offline.

PP-OCR (``scene.py``, on ONNX Runtime) reads text in photos: signs, plaques,
receipts, text sideways or upside down, small text in large photos (``detect.py``).
Tesseract (``tesseract.py``) reads scanned and digital pages and spells the
accents PP-OCR's alphabet lacks. ``filters.py`` drops what is not text,
``order.py`` puts lines in reading order and blocks, ``language.py`` names
the language. :class:`TextReader` (``reader.py``) chooses per photo; the
pipeline uses ``TextReader.load(settings)`` and ``reader.read(photo)`` ->
:class:`TextReading`.
"""

from __future__ import annotations

from describe_local.errors import OcrNotInstalled
from describe_local.see.text.language import LANGUAGE_MIN_LETTERS, LanguageGuesser
from describe_local.see.text.reader import ENGINES, TextReader
from describe_local.see.text.result import TextLine, TextReading, Word
from describe_local.see.text.tesseract import (
    PACK_TO_ISO,
    installed_packs,
    join_words,
    keep_real_words,
    looks_like_word,
    parse_tsv,
    prepare,
)

__all__ = [
    "ENGINES",
    "LANGUAGE_MIN_LETTERS",
    "PACK_TO_ISO",
    "LanguageGuesser",
    "OcrNotInstalled",
    "TextLine",
    "TextReader",
    "TextReading",
    "Word",
    "installed_packs",
    "join_words",
    "keep_real_words",
    "looks_like_word",
    "parse_tsv",
    "prepare",
]
