"""Read the text in a photo with Tesseract and name its language offline.

This stage replaces Textract and Comprehend. Tesseract reads two kinds of
picture badly with one setting: a document page wants layout analysis (page
segmentation mode 3, which keeps columns and reading order), a sign in a
street photo wants sparse text (mode 11, which finds scattered words). So:

1. probe at about the photo's own size with the English pack alone (cheap):
   the layout pass, and the sparse pass unless the layout pass found a page;
   the pass that read more (characters weighted by confidence) wins;
2. nothing found: no text (most photos stop here, for about 0.3 s of CPU);
3. scene text: a closer look at the photo enlarged, as sign lettering is small;
4. text in another language (or in several): read again with that pack (or
   all packs), which gets the accents right; the better read is kept.

Tesseract happily "reads" fur, leaves and brick as glyph soup, so every word
must pass a confidence and shape test, a line is kept only when it holds a
real word (three or more letters, confident, plausible letter case), and one
three-letter word alone in a photo is not text. Photos without text then say
nothing.

Tesseract runs as a child process of our own (not through pytesseract) so
that the child alone gets ``OMP_THREAD_LIMIT=1``: pytesseract hands the child
this process's environment, and setting the variable here would also cap
torch's OpenMP threads for the caption model. The waiting thread releases the
GIL, so the stage overlaps with the others.

The language of what was read is named by ``py3langid`` restricted to the OCR
languages (``scripts/measure_langid.py`` compares it with ``lingua``); too
little text, or a low confidence, means unknown.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import shutil
import subprocess
import time
import unicodedata
from dataclasses import dataclass, field

from PIL import Image, ImageOps

from describe_local.errors import DescribeLocalError, OcrNotInstalled
from describe_local.images import Photo
from describe_local.settings import Settings

log = logging.getLogger(__name__)

# Tesseract language pack -> ISO 639-1 code; every pack is a Debian package.
PACK_TO_ISO = {"eng": "en", "spa": "es", "fra": "fr", "deu": "de", "por": "pt", "ita": "it"}

LAYOUT_MODE = 3  # automatic page segmentation: columns, paragraphs, reading order
SPARSE_MODE = 11  # as much scattered text as possible, in no particular order

# Long side of the picture Tesseract gets. Larger costs time and gains nothing
# on a 300 dpi page (2400 px is about 220 dpi on A4); smaller pictures are
# enlarged towards it (at most MAX_ENLARGE times) because lettering on a sign
# in a phone photo is often under the 20-30 px Tesseract reads best: the
# Louvre signs in french.jpg (1024 px) read "du LOUVRE" at 1x and "Mairie",
# "Palais du LOUVRE", "LES ARTS DÉCORATIFS", "Théâtre" at 2.5x.
MAX_SIDE = 2400
MAX_ENLARGE = 3.0
# The probe for text enlarges only small pictures, to this long side: the
# sparse pass costs time in proportion to the pixels and to the texture it
# finds (up to 11 s on a 640 px COCO photo of a rug enlarged 3x).
PROBE_MIN_SIDE = 1000

# The layout pass is taken as a page, and the sparse pass skipped, when it
# kept at least this many words.
PAGE_MIN_WORDS = 12

# Text with no clear language is read again with every pack only from this
# many letters on; shorter text (a brand name, a few letters) keeps the probe.
REREAD_MIN_LETTERS = 20

# Fewer letters than this carry no language.
LANGUAGE_MIN_LETTERS = 4

VOWELS = frozenset("aeiouyàáâãäåæèéêëìíîïòóôõöøœùúûüÿ")
PUNCTUATION_EDGES = "\"'“”‘’„«»‹›()[]{}<>.,;:!?¡¿-–—_*|/\\~`^°•·#%$€£&+=@"


@dataclass(frozen=True)
class Word:
    """One word Tesseract read, with its confidence (0-100) and where it is."""

    text: str
    confidence: float
    line: tuple[int, int, int]  # (block, paragraph, line) within one pass
    box: tuple[int, ...]  # left, top, width, height in the photo's pixels


@dataclass
class TextReading:
    """What the text stage found: ``text`` is '' when the photo has no text."""

    text: str = ""
    language: str | None = None  # ISO 639-1, None when unknown
    language_confidence: float = 0.0
    words: list[Word] = field(default_factory=list)
    mode: str = "none"  # "page" (layout pass), "scene" (sparse pass) or "none"
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class LanguageGuesser:
    """py3langid restricted to a few languages, with a confidence floor."""

    identifier: object  # py3langid.langid.LanguageIdentifier
    min_confidence: float

    @classmethod
    def load(cls, languages: list[str], min_confidence: float) -> LanguageGuesser:
        """Load the py3langid model (5 MB, about half a second) for ``languages`` (ISO 639-1)."""
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        identifier.set_languages(languages)
        return cls(identifier, min_confidence)

    def identify(self, text: str) -> tuple[str | None, float]:
        """The language of ``text`` and the confidence (0-1); None when unsure or too short."""
        if sum(ch.isalpha() for ch in text) < LANGUAGE_MIN_LETTERS:
            return None, 0.0
        language, confidence = self.identifier.classify(text)
        confidence = float(confidence)
        if confidence < self.min_confidence:
            return None, confidence
        return language, confidence


@dataclass
class TextReader:
    """Tesseract, checked once, and the language guesser."""

    tesseract: str
    languages: str  # Tesseract's form: "eng+spa+fra"
    min_confidence: float
    guesser: LanguageGuesser
    timeout_s: float = 60.0

    @classmethod
    def load(cls, settings: Settings) -> TextReader:
        """Check that Tesseract and the language packs of ``settings.ocr_languages`` are installed."""
        binary = shutil.which("tesseract")
        if binary is None:
            raise OcrNotInstalled(
                "Tesseract is not installed: run ./scripts/setup, or apt-get install tesseract-ocr"
            )
        packs = [p for p in settings.ocr_languages.split("+") if p]
        if not packs:
            raise OcrNotInstalled("no OCR language set: set DESCRIBE_LOCAL_OCR_LANGUAGES, e.g. eng+fra")
        unknown = [p for p in packs if p not in PACK_TO_ISO]
        if unknown:
            raise OcrNotInstalled(
                f"OCR language(s) {', '.join(unknown)} not supported: use some of {'+'.join(PACK_TO_ISO)}"
            )
        missing = [p for p in packs if p not in installed_packs(binary)]
        if missing:
            debs = " ".join(f"tesseract-ocr-{p}" for p in missing)
            raise OcrNotInstalled(
                f"Tesseract language pack(s) {', '.join(missing)} missing: "
                f"run ./scripts/setup, or apt-get install {debs}"
            )
        guesser = LanguageGuesser.load(
            [PACK_TO_ISO[p] for p in packs], settings.text_language_min_confidence
        )
        return cls(
            tesseract=binary,
            languages="+".join(packs),
            min_confidence=settings.ocr_min_confidence,
            guesser=guesser,
            timeout_s=settings.stage_timeout_s,
        )

    def read(self, photo: Photo) -> TextReading:
        """Read the text in ``photo``; '' and no language when it has none."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        picture = prepare(photo.image, PROBE_MIN_SIDE)
        timings["prepare"] = _ms_since(start)

        # Probe at about the photo's own size with English alone: one pack
        # loads in a fifth of the time of six, and it is enough to tell whether
        # there is text at all, which most photos do not have.
        probe = self.primary
        start = time.perf_counter()
        words = keep_real_words(self._recognize(picture, LAYOUT_MODE, probe, photo), self.min_confidence)
        timings["layout"] = _ms_since(start)
        psm, mode = LAYOUT_MODE, "page"
        if len(words) < PAGE_MIN_WORDS:
            start = time.perf_counter()
            scene = keep_real_words(self._recognize(picture, SPARSE_MODE, probe, photo), self.min_confidence)
            timings["sparse"] = _ms_since(start)
            if score(scene) > score(words):
                words, psm, mode = scene, SPARSE_MODE, "scene"
        if not words:
            return TextReading(timings_ms=timings)

        # A closer look at scene text: sign lettering is often too small for
        # Tesseract at the photo's own size.
        if mode == "scene":
            closer = prepare(photo.image, MAX_SIDE)
            if closer.size != picture.size:
                picture = closer
                start = time.perf_counter()
                again = keep_real_words(self._recognize(picture, psm, probe, photo), self.min_confidence)
                timings["closer"] = _ms_since(start)
                words = max(again, words, key=score)

        # Read again with the pack of the text's language (all of them when it
        # is unclear) so that accents come out right; keep the better read.
        language, confidence = self.guesser.identify(join_words(words))
        packs = self.packs_for(language)
        letters = sum(ch.isalpha() for w in words for ch in w.text)
        if language is None and letters < REREAD_MIN_LETTERS:
            packs = probe  # six packs cost seconds; a few letters are not worth them
        if packs != probe:
            start = time.perf_counter()
            again = keep_real_words(self._recognize(picture, psm, packs, photo), self.min_confidence)
            timings["reread"] = _ms_since(start)
            if score(again) >= score(words):
                words = again
                language, confidence = self.guesser.identify(join_words(words))

        text = join_words(words)
        log.debug("read %d words (%s), language %s %.2f", len(words), mode, language, confidence)
        return TextReading(text, language, confidence, words, mode, timings)

    @property
    def primary(self) -> str:
        """The pack that probes for text: English where it is installed."""
        packs = self.languages.split("+")
        return "eng" if "eng" in packs else packs[0]

    def packs_for(self, language: str | None) -> str:
        """The packs to read text in ``language`` with: its own alone, or all when unknown.

        Alone, because mixed with English the French pack read "Théatre" and
        "dy" where alone it read "Théâtre" and "du" (french.jpg), in two thirds
        of the time.
        """
        pack = next((p for p, iso in PACK_TO_ISO.items() if iso == language), None)
        return pack if pack in self.languages.split("+") else self.languages

    def _recognize(self, picture: Image.Image, psm: int, packs: str, photo: Photo) -> list[Word]:
        """Run Tesseract on ``picture`` (``photo`` resized) with language ``packs`` in
        segmentation mode ``psm``; every word it saw, boxed in ``photo``'s pixels."""
        data = io.BytesIO()
        picture.save(data, format="PPM")  # uncompressed: no encoding cost, read from stdin
        # One OpenMP thread: the stage runs beside face detection and captioning
        # on few cores, where Tesseract's own threads only add contention.
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        command = [self.tesseract, "stdin", "stdout", "-l", packs, "--psm", str(psm), "tsv"]
        try:
            done = subprocess.run(
                command, input=data.getvalue(), capture_output=True, env=env,
                timeout=self.timeout_s, check=False,
            )
        except subprocess.TimeoutExpired:
            raise DescribeLocalError(f"Tesseract took more than {self.timeout_s:g} s and was stopped") from None
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()
            raise DescribeLocalError(f"Tesseract failed: {reason[-1] if reason else done.returncode}")
        return parse_tsv(done.stdout.decode("utf-8", errors="replace"), picture.width / photo.image.width)


def installed_packs(binary: str = "tesseract") -> set[str]:
    """The language packs Tesseract can load."""
    done = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, check=False, timeout=30)
    lines = (done.stdout + done.stderr).splitlines()
    return {line.strip() for line in lines if line.strip() and " " not in line.strip()}


def prepare(image: Image.Image, min_side: int = MAX_SIDE) -> Image.Image:
    """A grayscale copy for Tesseract: long side at most MAX_SIDE, enlarged up to ``min_side``."""
    factor = max(image.size) // MAX_SIDE
    if factor >= 2:  # a cheap box reduction first: grayscale and Lanczos on 48 MP cost most of a second
        image = image.reduce(factor)
    gray = ImageOps.grayscale(image)
    long_side = max(gray.size)
    # Shrink to MAX_SIDE, or enlarge towards min_side (MAX_ENLARGE times at most).
    scale = min(MAX_SIDE / long_side, max(1.0, min(MAX_ENLARGE, min_side / long_side)))
    if abs(scale - 1) < 0.05:
        return gray
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    if scale > 1:
        return gray.resize(size, Image.Resampling.BICUBIC)
    return gray.resize(size, Image.Resampling.LANCZOS)


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
    body = core(word.text)
    letters = [ch.lower() for ch in body if ch.isalpha()]
    if word.confidence < min_confidence or len(letters) < 3 or not looks_like_word(word.text):
        return False
    if len(set(letters)) == 1:  # 'lll', 'III': strokes, not a word
        return False
    return not (len(letters) >= 4 and not VOWELS.intersection(letters))


def keep_real_words(words: list[Word], min_confidence: float) -> list[Word]:
    """The confident, word-shaped words of the lines that hold at least one anchor word.

    A single three-letter anchor in the whole picture is not enough: texture
    read as 'off', 'Alt' or 'ibe' is that (COCO photos of a hydrant, a plane,
    a train); a word of four letters or two anchors are.
    """
    anchors = [w for w in words if is_anchor(w, min_confidence)]
    longest = max((sum(ch.isalpha() for ch in w.text) for w in anchors), default=0)
    if len(anchors) < 2 and longest < 4:
        return []
    anchored = {w.line for w in anchors}
    return [
        w for w in words
        if w.line in anchored and w.confidence >= min_confidence and looks_like_word(w.text)
    ]


def score(words: list[Word]) -> float:
    """How much was read, weighted by confidence: the criterion between the two passes."""
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


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
