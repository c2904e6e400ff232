"""The pipeline: a photo in, a spoken description out.

:class:`Describer` loads the models once and describes many photos::

    describer = Describer.load(Settings.load())
    result = describer.describe(Path("photo.jpg"))
    print(result.text); Path("photo.mp3").write_bytes(result.mp3)

Stages: decode → (caption | faces | text, concurrently in threads) → compose →
translate → speak → encode. A stage that raises or runs past its time budget is
recorded in :attr:`Description.errors` and the others are still spoken.

The stages overlap for real: torch releases the GIL, Tesseract runs as a
child process, and faces run in a child process of their own because dlib's
face encoder holds the GIL for its whole call (``scripts/measure_overlap.py``
measures it).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from describe_local import audio, compose
from describe_local.caption import Captioner, load_captioner
from describe_local.errors import DescribeLocalError, ModelNotInstalled
from describe_local.images import Photo, decode_photo, load_photo
from describe_local.settings import Settings
from describe_local.speech import Segment, Voice, load_bundled_voice, silence

log = logging.getLogger(__name__)

ANALYSIS_STAGES = ("caption", "faces", "text")
SEGMENT_PAUSE_S = 0.25


@dataclass
class DescribeOptions:
    """Per-request choices; ``None`` means "use the setting"."""

    lang: str | None = None
    voice: str | None = None
    length_scale: float | None = None
    audio: bool = True
    sequential: bool = False


@dataclass
class Description:
    """What was found in one photo, what is spoken, and how long each stage took."""

    path: str
    text: str
    caption: str | None = None
    people: list[str] = field(default_factory=list)
    unknown_faces: int = 0
    text_found: str | None = None
    text_language: str | None = None
    language: str = "en"  # the language ``text`` is spoken in
    voice: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. a fallback to English
    timings_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # stage -> what went wrong
    audio: str | None = None  # where the MP3 was written, set by the caller
    mp3: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (without the MP3 bytes)."""
        data = asdict(self)
        data.pop("mp3")
        return data


@dataclass
class _Outcome:
    value: Any = None
    ms: float = 0.0
    error: str | None = None


class Describer:
    """Loaded models, ready to describe any number of photos."""

    def __init__(
        self,
        settings: Settings,
        *,
        captioner: Captioner | None,
        faces: Any | None,
        reader: Any | None,
        voice: Voice | None,
        translator: Any | None = None,
        unavailable: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.captioner = captioner
        self.faces = faces
        self.reader = reader
        self.voice = voice
        self.translator = translator
        # Stages that could not be loaded, and why; reported with every result.
        self.unavailable: dict[str, str] = dict(unavailable or {})
        # Twice the stages: a stage that ran past its budget still holds its thread
        # until it ends, and must not make the next photo's stages wait for it.
        self._pool = cf.ThreadPoolExecutor(max_workers=2 * len(ANALYSIS_STAGES), thread_name_prefix="stage")

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        stages: Iterable[str] = ANALYSIS_STAGES,
        speech: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> Describer:
        """Load every model the pipeline needs, once.

        A stage whose model is not installed is left out and reported (the
        caption until a caption model is pulled); other load errors propagate.
        ``progress`` is called with a short message before each model loads.
        """
        say = progress or (lambda _msg: None)
        stages = set(stages)
        unavailable: dict[str, str] = {}
        # Stages that start helper processes are closed again if a later one fails to load.
        with contextlib.ExitStack() as cleanup:
            captioner = None
            if "caption" in stages:
                say("loading the caption model")
                try:
                    captioner = load_captioner(settings)
                    cleanup.callback(_close, captioner)
                except ModelNotInstalled as exc:
                    unavailable["caption"] = f"not installed: {exc}"
                    log.info("caption stage off: %s", exc)

            faces = None
            if "faces" in stages:
                say("loading the face models and the gallery")
                from describe_local.faces import FaceRecognizer
                from describe_local.gallery import Gallery

                faces = FaceRecognizer.load(Gallery.open(settings.known_faces), settings)
                cleanup.callback(_close, faces)

            reader = None
            if "text" in stages:
                say("checking Tesseract")
                from describe_local.text import TextReader

                reader = TextReader.load(settings)

            voice = None
            if speech:
                say("loading the voice")
                voice = load_bundled_voice()
            # Loaded without speech too: `--no-audio --lang es` still prints Spanish.
            say("loading translation models")
            from describe_local.translate import Translator

            translator = Translator.load(settings, bundled_voice=voice)

            describer = cls(
                settings,
                captioner=captioner,
                faces=faces,
                reader=reader,
                voice=voice,
                translator=translator,
                unavailable=unavailable,
            )
            cleanup.pop_all()  # loaded: the describer closes them from now on
            return describer

    def close(self) -> None:
        """Stop the stage threads and any helper process a stage started."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for stage in (self.captioner, self.faces, self.reader):
            _close(stage)

    def __enter__(self) -> Describer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- describing -----------------------------------------------------------------

    def open_photo(self, source: Photo | Path | str | bytes) -> Photo:
        """Decode ``source`` with the configured limits (raises :class:`ImageError`)."""
        if isinstance(source, Photo):
            return source
        limits = {"max_bytes": self.settings.max_image_bytes, "max_pixels": self.settings.max_image_pixels}
        if isinstance(source, bytes):
            return decode_photo(source, **limits)
        return load_photo(Path(source), **limits)

    def describe(
        self, source: Photo | Path | str | bytes, options: DescribeOptions | None = None
    ) -> Description:
        """Describe one photo. Raises :class:`ImageError` if it cannot be decoded."""
        options = options or DescribeOptions()
        started = time.perf_counter()
        timings: dict[str, float] = {}

        t0 = time.perf_counter()
        photo = self.open_photo(source)
        timings["decode"] = _ms_since(t0)

        t0 = time.perf_counter()
        outcomes = self._analyse(photo, sequential=options.sequential)
        timings["analysis"] = _ms_since(t0)
        errors = dict(self.unavailable)
        for stage, outcome in outcomes.items():
            timings[stage] = outcome.ms
            if outcome.error:
                errors[stage] = outcome.error

        caption = outcomes["caption"].value if "caption" in outcomes else None
        face_result = outcomes["faces"].value if "faces" in outcomes else None
        reading = outcomes["text"].value if "text" in outcomes else None
        people = list(face_result.people) if face_result else []
        unknown = int(face_result.unknown) if face_result else 0
        text_found = (reading.text or None) if reading else None
        text_language = reading.language if reading else None

        t0 = time.perf_counter()
        sentences = compose.compose(caption, people, unknown, text_found, text_language)
        timings["compose"] = _ms_since(t0)

        t0 = time.perf_counter()
        lang = options.lang or self._language_of_voice(options.voice) or self.settings.lang
        segments, spoken_lang, notes = self._translate(sentences, lang)
        timings["translate"] = _ms_since(t0)

        result = Description(
            path=photo.source,
            text=" ".join(s.text for s in segments),
            caption=caption,
            people=people,
            unknown_faces=unknown,
            text_found=text_found,
            text_language=text_language,
            language=spoken_lang,
            notes=notes,
            errors=errors,
        )

        if options.audio:
            if self.voice is None:
                errors["speech"] = "speech is off (the describer was loaded without a voice)"
            else:
                t0 = time.perf_counter()
                pcm, rate, voice_key = self._speak(segments, options)
                timings["speech"] = _ms_since(t0)
                result.voice = voice_key
                t0 = time.perf_counter()
                result.mp3 = audio.encode_mp3(pcm, rate)
                timings["encode"] = _ms_since(t0)

        timings["total"] = _ms_since(started)
        result.timings_ms = {k: round(v, 1) for k, v in timings.items()}
        return result

    def describe_all(
        self, sources: Iterable[Path], options: DescribeOptions | None = None
    ) -> Iterator[tuple[Path, Description | DescribeLocalError]]:
        """Describe each photo in turn; a photo that fails yields its error instead."""
        for source in sources:
            try:
                yield source, self.describe(source, options)
            except DescribeLocalError as exc:
                yield source, exc

    # -- stages --------------------------------------------------------------------

    def _stage_functions(self) -> dict[str, Callable[[Photo], Any]]:
        functions: dict[str, Callable[[Photo], Any]] = {}
        if self.captioner is not None:
            functions["caption"] = lambda photo: self.captioner.caption(photo.image)
        if self.faces is not None:
            functions["faces"] = self.faces.recognize
        if self.reader is not None:
            functions["text"] = self.reader.read
        return functions

    def _analyse(self, photo: Photo, *, sequential: bool) -> dict[str, _Outcome]:
        """Run caption, faces and text on ``photo``, concurrently unless ``sequential``."""
        budget = self.settings.stage_timeout_s
        functions = self._stage_functions()
        outcomes: dict[str, _Outcome] = {}
        if sequential:
            for name, fn in functions.items():
                outcomes[name] = self._wait(self._pool.submit(_timed, name, fn, photo), name, budget)
            return outcomes
        futures = {name: self._pool.submit(_timed, name, fn, photo) for name, fn in functions.items()}
        deadline = time.perf_counter() + budget
        for name, future in futures.items():
            outcomes[name] = self._wait(future, name, max(0.0, deadline - time.perf_counter()))
        return outcomes

    def _wait(self, future: cf.Future, name: str, timeout: float) -> _Outcome:
        try:
            return future.result(timeout=timeout)
        except cf.TimeoutError:
            # The thread cannot be killed; it finishes in the background and its
            # result is dropped. The description goes on without this stage.
            log.warning("%s stage exceeded its %.0f s budget", name, self.settings.stage_timeout_s)
            return _Outcome(
                ms=self.settings.stage_timeout_s * 1000,
                error=f"timed out after {self.settings.stage_timeout_s:g} s",
            )

    def _translate(
        self, sentences: list[compose.Sentence], lang: str
    ) -> tuple[list[Segment], str, list[str]]:
        """Segments to speak, the language they are in, and notes (e.g. a fallback)."""
        # The translator also handles English: it gives the text read from the photo
        # a segment (and so a voice) of its own language.
        if self.translator is not None:
            return self.translator.translate(sentences, lang)
        if lang.split("_")[0].split("-")[0].lower() != "en":
            note = f"Translation to {lang!r} is not available; speaking English."
            return [Segment(compose.render(sentences), "en")], "en", [note]
        return [Segment(compose.render(sentences), "en")], "en", []

    def _language_of_voice(self, key: str | None) -> str | None:
        """The language a chosen voice speaks, so that `--voice es_MX-...` alone means Spanish."""
        voices = getattr(self.translator, "voices", None)
        info = voices.find(key) if key and voices is not None else None
        return info.language if info is not None else None

    def _speak(self, segments: list[Segment], options: DescribeOptions) -> tuple[np.ndarray, int, str]:
        """PCM for all segments, the sample rate, and the key of the main voice."""
        length_scale = options.length_scale or self.settings.length_scale
        voices = getattr(self.translator, "voices", None)
        parts: list[np.ndarray] = []
        rate = self.voice.sample_rate
        main_key = self.voice.key
        for i, segment in enumerate(segments):
            voice = self.voice
            if voices is not None:
                voice = voices.voice_for(segment.language, options.voice or self.settings.voice or None)
            if i == 0:
                main_key = voice.key
            pcm = voice.synthesize(segment.text, length_scale=length_scale)
            if parts:
                parts.append(silence(rate, SEGMENT_PAUSE_S))
            parts.append(audio.resample(pcm, voice.sample_rate, rate))
        pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        return pcm, rate, main_key


def _timed(name: str, fn: Callable[[Photo], Any], photo: Photo) -> _Outcome:
    """Run one stage; catch its failure so that the others still count."""
    t0 = time.perf_counter()
    try:
        value = fn(photo)
    except Exception as exc:  # a failing stage must not sink the description
        log.exception("the %s stage failed", name)
        message = str(exc).split("\n")[0] or type(exc).__name__
        return _Outcome(ms=_ms_since(t0), error=f"{type(exc).__name__}: {message}")
    return _Outcome(value=value, ms=_ms_since(t0))


def _close(stage: Any) -> None:
    """Close a stage that holds a helper process or other resources, if it has ``close()``."""
    close = getattr(stage, "close", None)
    if close is not None:
        close()


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


