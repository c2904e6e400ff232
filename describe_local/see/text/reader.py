"""The text stage: read the text in a photo, in reading order, and name its language, offline.

Engines (``Settings.ocr_engine``):

- ``auto`` (default): PP-OCR finds the text. A scanned or digital page (a
  flat background under many lines) goes to Tesseract's layout analysis,
  which reads dense print, columns and accents better; everything else is
  read by PP-OCR, and where its text is in a language Tesseract has a pack
  for (not English), Tesseract reads the same lines again to put back the
  accents PP-OCR's alphabet cannot spell (â, ç, ñ, ö, ß...).
- ``pp-ocr``: PP-OCR alone. ``tesseract``: Tesseract alone (the stage before PP-OCR).

``scripts/measure_ocr.py`` measures the three on the shared data.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from describe_local.errors import ConfigError, DescribeLocalError, OcrNotInstalled, first_line
from describe_local.images import Photo
from describe_local.see.text import filters, order
from describe_local.see.text.detect import Region, closer_look, first_pass
from describe_local.see.text.language import LanguageGuesser
from describe_local.see.text.models import TextModel, model_set
from describe_local.see.text.result import TextLine, TextReading, Word
from describe_local.see.text.scene import RawLine, SceneEngine, release_memory
from describe_local.see.text.tesseract import PACK_TO_ISO, Tesseract, installed_packs, join_words
from describe_local.settings import Settings
from describe_local.store import formats

log = logging.getLogger(__name__)

ENGINES = ("auto", "pp-ocr", "tesseract")

# A page: at least this many lines over a background this flat (share of
# pixels within a few gray levels of the commonest). Scans and digital posters
# measure 0.52 to 0.90, phone photos 0.04 to 0.53 (a face on black), so the
# line count decides between a page and a dark backdrop.
PAGE_MIN_FLAT = 0.45
PAGE_MIN_LINES = 5
PAGE_SAMPLE = 24  # lines whose direction tells how a page lies

MIN_SIDE = 8  # pixels: a thinner picture holds no line of text
MAX_ASPECT = 60.0  # a picture longer than this many times its width is no photo


@dataclass
class TextReader:
    """The text stage, loaded once: Tesseract (checked), PP-OCR's sessions and the language guesser."""

    tesseract: str  # path of the binary; '' when the engine does not use it
    languages: str  # Tesseract's form: "eng+spa+fra"
    min_confidence: float  # Tesseract words, 0-100
    guesser: LanguageGuesser
    timeout_s: float = 60.0
    engine: str = "auto"
    scene: SceneEngine | None = None
    det_side: int = 960
    max_tiles: int = 4
    min_line_confidence: float = 0.8
    max_lines: int = 200

    @classmethod
    def check(cls, settings: Settings) -> tuple[str, str, list[str]]:
        """Check the settings, Tesseract and its packs (``settings.ocr_languages``) and the model set,
        loading nothing: the engine, the Tesseract binary ('' when not used) and the packs. Raises
        :class:`ConfigError` or :class:`OcrNotInstalled` saying what to do."""
        engine = settings.ocr_engine.strip().lower()
        if engine not in ENGINES:
            raise ConfigError(f"setting 'ocr_engine': {settings.ocr_engine!r} is not one of {', '.join(ENGINES)}")
        packs = [p for p in settings.ocr_languages.split("+") if p]
        if not packs:
            raise OcrNotInstalled("no OCR language set: set DESCRIBE_LOCAL_OCR_LANGUAGES, e.g. eng+fra")
        unknown = [p for p in packs if p not in PACK_TO_ISO]
        if unknown:
            raise OcrNotInstalled(
                f"OCR language(s) {', '.join(unknown)} not supported: use some of {'+'.join(PACK_TO_ISO)}"
            )
        binary = ""
        if engine != "pp-ocr":
            binary = shutil.which("tesseract") or ""
            if not binary:
                raise OcrNotInstalled(
                    "Tesseract is not installed: run ./scripts/setup, or apt-get install tesseract-ocr"
                )
            installed = installed_packs(binary)  # one run of the binary, not one per pack
            missing = [p for p in packs if p not in installed]
            if missing:
                debs = " ".join(f"tesseract-ocr-{p}" for p in missing)
                raise OcrNotInstalled(
                    f"Tesseract language pack(s) {', '.join(missing)} missing: "
                    f"run ./scripts/setup, or apt-get install {debs}"
                )
        if engine != "tesseract":
            try:
                model_set(settings.ocr_model)
            except ValueError:
                names = ", ".join(m.value for m in TextModel)
                raise ConfigError(f"setting 'ocr_model': {settings.ocr_model!r} is not one of {names}") from None
        return engine, binary, packs

    @classmethod
    def load(cls, settings: Settings, checked: tuple[str, str, list[str]] | None = None) -> TextReader:
        """Check as :meth:`check` does (``checked``: what it returned, for the same settings), and
        load PP-OCR and the language guesser, as the engine needs."""
        engine, binary, packs = checked or cls.check(settings)
        scene = None
        if engine != "tesseract":
            try:
                scene = SceneEngine(settings.ocr_threads, model_set(settings.ocr_model), settings.ocr_det_pixels,
                                    cache_dir=cache_folder(settings))
            except ImportError as exc:
                raise OcrNotInstalled(
                    f"PP-OCR cannot load ({first_line(exc)}): pip install onnxruntime opencv-python-headless"
                ) from None
        guesser = LanguageGuesser.load([PACK_TO_ISO[p] for p in packs], settings.text_language_min_confidence,
                                       cache_folder(settings))
        return cls(
            tesseract=binary, languages="+".join(packs), min_confidence=settings.ocr_min_confidence,
            guesser=guesser, timeout_s=settings.stage_timeout_s, engine=engine, scene=scene,
            det_side=settings.ocr_det_side, max_tiles=settings.ocr_max_tiles,
            min_line_confidence=settings.ocr_min_line_confidence, max_lines=settings.ocr_max_lines,
        )

    @property
    def tess(self) -> Tesseract:
        return Tesseract(self.tesseract, self.languages, self.min_confidence)

    @property
    def primary(self) -> str:
        """The pack that probes for text: English where it is installed."""
        return self.tess.primary

    def read(self, photo: Photo) -> TextReading:
        """Read the text in ``photo``: lines in reading order, their text, its language.

        A reading with no text ('' and no lines) when the photo has none.
        Raises :class:`DescribeLocalError` when the photo cannot be read (too
        thin, an engine failure, Tesseract past its time).
        """
        width, height = photo.image.size
        if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
            raise DescribeLocalError(f"cannot read text in a {width}x{height} picture: too thin for a line of text")
        if self.engine == "tesseract" or self.scene is None:
            return self._read_with_tesseract(photo.image, 0, {})
        timings: dict[str, float] = {}
        try:
            rgb = photo.array if photo.image.mode == "RGB" else np.asarray(photo.image.convert("RGB"))
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            start = time.perf_counter()
            first = first_pass(bgr, self.scene.probability_map, self.det_side)
            timings["detect"] = _ms_since(start)
            if self.engine == "auto" and self._is_page(photo.image, first.regions):
                page = self._read_page(photo.image, bgr, first.regions, timings)
                if page.text:
                    return page
                timings = page.timings_ms  # Tesseract found nothing: PP-OCR reads what it found
            start = time.perf_counter()
            regions = closer_look(bgr, self.scene.probability_map, first, self.det_side, self.max_tiles)
            regions = [r for r in regions if not filters.is_blob(r, min(width, height))]
            regions = sorted(regions, key=lambda r: -r.score)[: self.max_lines]
            timings["closer"] = _ms_since(start)
            start = time.perf_counter()
            lines = self.scene.crop(bgr, regions)
            self.scene.stand_upright(lines)
            timings["direction"] = _ms_since(start)
            start = time.perf_counter()
            self.scene.read(lines)
            timings["recognize"] = _ms_since(start)
        except DescribeLocalError:
            raise
        except Exception as exc:  # onnxruntime, OpenCV and numpy errors on a picture they cannot take
            log.warning("PP-OCR failed on %s: %s", photo.source, first_line(exc))
            raise DescribeLocalError(f"the text stage could not read this photo: {first_line(exc)}") from exc
        finally:
            self.scene.give_back()
            release_memory()
        log.debug("PP-OCR on %s: first pass at %.2f, %d regions", photo.source, first.scale, len(regions))
        return self._scene_reading(lines, width, height, timings)

    # -- PP-OCR's reading -------------------------------------------------------------

    def _scene_reading(self, lines: list[RawLine], width: int, height: int, timings: dict[str, float]) -> TextReading:
        """Clean, filter and order PP-OCR's lines; put back accents; name the language."""
        kept = []
        for line in lines:
            line.text = filters.fix_confusions(filters.clean_text(line.text))
            if filters.plausible(line, self.min_line_confidence):
                kept.append(line)
        if not filters.photo_has_text(kept):
            return TextReading(timings_ms=timings)
        engine = "pp-ocr"
        language, _ = self.guesser.identify(" ".join(ln.text for ln in kept))
        pack = self.tess.pack_for(language) if self.engine == "auto" and self.tesseract else None
        if pack and language != "en":
            start = time.perf_counter()
            if self._put_back_accents(kept, pack):
                engine = "pp-ocr+tesseract"
            timings["accents"] = _ms_since(start)
        pieces = [order.Piece(ln.text, ln.quad, ln.confidence) for ln in kept]
        arranged, rotation = order.arrange(pieces, width, height)
        text = order.join_text(arranged)
        language, confidence = self.guesser.identify(text)
        text_lines = [TextLine(a.text, a.box, a.confidence, a.block) for a in arranged]
        words = [w for index, a in enumerate(arranged) for w in _words_of(a, index, kept)]
        return TextReading(text, language, confidence, words, "scene", timings, text_lines, engine, rotation)

    def _put_back_accents(self, lines: list[RawLine], pack: str) -> bool:
        """Tesseract (``pack``) reads the lines with letters again; its accents go into PP-OCR's text.

        Returns whether any line changed.
        """
        chosen = [ln for ln in lines if sum(ch.isalpha() for ch in ln.text) >= 3 and ln.crop is not None]
        if not chosen:
            return False
        crops = [Image.fromarray(np.ascontiguousarray(ln.crop[:, :, ::-1])) for ln in chosen]
        changed = False
        for line, tess in zip(chosen, self.tess.read_lines(crops, pack, self.timeout_s), strict=True):
            merged = filters.merge_accents(line.text, tess)
            if merged != line.text:
                log.debug("accents: %r -> %r (Tesseract read %r)", line.text, merged, tess)
                line.text, changed = merged, True
        return changed

    def _is_page(self, image: Image.Image, regions: list[Region]) -> bool:
        """Whether the photo is a document page for Tesseract: many lines on a flat background."""
        if len(regions) < PAGE_MIN_LINES:
            return False
        return flat_share(image) >= PAGE_MIN_FLAT

    def _read_page(self, image: Image.Image, bgr: np.ndarray, regions: list[Region], timings: dict[str, float]
                   ) -> TextReading:
        """Tesseract's reading of a page, turned upright first: the way its longest lines stand
        (PP-OCR's direction classifier on at most PAGE_SAMPLE of them) tells how the page lies."""
        start = time.perf_counter()
        longest = sorted(regions, key=lambda r: -max(r.bounds[2] - r.bounds[0], r.bounds[3] - r.bounds[1]))
        sample = self.scene.crop(bgr, longest[:PAGE_SAMPLE])
        self.scene.stand_upright(sample)
        timings = {**timings, "direction": _ms_since(start)}
        return self._read_with_tesseract(image, _dominant_direction(sample), timings)

    # -- Tesseract's reading ----------------------------------------------------------

    def _read_with_tesseract(self, image: Image.Image, direction: int, timings: dict[str, float]) -> TextReading:
        """Tesseract on the photo turned upright (``direction``: 0-3 quarter turns clockwise the text lies)."""
        upright = image.rotate(90 * direction, expand=True) if direction else image
        words, mode, more = self.tess.read(upright, self.guesser.identify, self.timeout_s)
        timings.update(more)
        if not words:
            return TextReading(timings_ms=timings)
        if direction:
            words = [_turn_word(w, direction, image.width, image.height) for w in words]
        text = join_words(words)
        language, confidence = self.guesser.identify(text)
        lines = _tesseract_lines(words)
        return TextReading(text, language, confidence, words, mode, timings, lines, "tesseract", 90 * direction)


def cache_folder(settings: Settings) -> Path:
    """Where the stage keeps the copies it derives from its models' files, for quicker loads
    (``language.py``, ``sessions.py``): a folder the model store's listing passes over."""
    return formats.store_cache(settings.models_dir, "text")


def flat_share(image: Image.Image) -> float:
    """The share of pixels within 4 gray levels of the commonest, at 512 px: a scan's or a poster's background."""
    gray = image.convert("L")
    gray.thumbnail((512, 512))
    hist = np.bincount(np.asarray(gray).ravel(), minlength=256)
    mode = int(hist.argmax())
    return float(hist[max(0, mode - 4): mode + 5].sum() / max(1, hist.sum()))


def _dominant_direction(lines: list[RawLine]) -> int:
    """Quarter turns clockwise the photo's text lies (the direction most lines read in, by their length)."""
    weight = [0.0] * 4
    for line in lines:
        weight[order.direction_of(line.quad)] += float(np.linalg.norm(line.quad[1] - line.quad[0]))
    return int(np.argmax(weight))


def _turn_word(word: Word, direction: int, width: int, height: int) -> Word:
    """A word boxed on the upright picture, boxed on the photo as it lies (``direction`` quarter turns)."""
    left, top, w, h = word.box
    corners = np.array([[left, top], [left + w, top + h]], dtype=float)
    x, y = corners[:, 0], corners[:, 1]
    if direction == 1:  # upright = photo turned counter-clockwise: photo x = W - y', y = x'
        xs, ys = width - y, x
    elif direction == 2:
        xs, ys = width - x, height - y
    else:
        xs, ys = y, height - x
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min()), int(ys.max() - ys.min()))
    return Word(word.text, word.confidence, word.line, box)


def _tesseract_lines(words: list[Word]) -> list[TextLine]:
    """Tesseract's words as lines, in its reading order; each paragraph a block."""
    lines: list[TextLine] = []
    blocks: dict[tuple[int, int], int] = {}
    current: list[Word] = []

    def flush() -> None:
        if not current:
            return
        block = blocks.setdefault(current[0].line[:2], len(blocks))
        x0 = min(w.box[0] for w in current)
        y0 = min(w.box[1] for w in current)
        x1 = max(w.box[0] + w.box[2] for w in current)
        y1 = max(w.box[1] + w.box[3] for w in current)
        confidence = sum(w.confidence for w in current) / len(current) / 100
        lines.append(TextLine(" ".join(w.text for w in current), [x0, y0, x1, y1], round(confidence, 3), block))

    for word in words:
        if current and word.line != current[-1].line:
            flush()
            current = []
        current.append(word)
    flush()
    return lines


def _words_of(line: order.Arranged, index: int, pieces: list[RawLine]) -> list[Word]:
    """Words of an arranged line, boxed by where the recognizer placed their characters."""
    words = []
    for member in line.members:
        piece = pieces[member]
        text, xs = piece.text, piece.char_x
        if len(xs) != len(text):  # cleaning changed the length: place characters evenly
            xs = [(i + 0.5) / max(1, len(text)) for i in range(len(text))]
        tl, tr, br, bl = piece.quad
        start = 0
        for token in text.split(" "):
            if token:
                a = xs[start] - 0.5 / max(1, len(text))
                b = xs[start + len(token) - 1] + 0.5 / max(1, len(text))
                a, b = max(0.0, a), min(1.0, b)
                corners = np.array([tl + (tr - tl) * a, tl + (tr - tl) * b, bl + (br - bl) * b, bl + (br - bl) * a])
                x0, y0 = np.floor(corners.min(axis=0))
                x1, y1 = np.ceil(corners.max(axis=0))
                box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
                words.append(Word(token, round(piece.confidence * 100, 1), (line.block, 0, index), box))
            start += len(token) + 1
    return words


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
