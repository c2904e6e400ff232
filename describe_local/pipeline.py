"""The pipeline: a photo in, a spoken description out. The one API the CLI and the server use.

:class:`Describer` loads the models once and describes many photos::

    describer = Describer.load(Settings.load())
    result = describer.describe(Path("photo.jpg"))
    print(result.text); Path("photo.mp3").write_bytes(result.mp3)

Its public methods are all a front end needs: :meth:`~Describer.describe`,
:meth:`~Describer.describe_all`, :meth:`~Describer.read`, :meth:`~Describer.ask`,
:meth:`~Describer.reload_gallery`, :meth:`~Describer.status` and
:meth:`~Describer.languages`.

The flow is see → say: decode → (caption | faces | text, concurrently in
threads) → compose → plan (language, voices) → speak → encode. A stage that
raises or runs past its time budget is recorded in :attr:`Description.errors`
and the others are still spoken. The stages overlap for real: torch releases
the GIL, Tesseract runs as a child process, and faces run in a child process
of their own because dlib's face encoder holds the GIL for its whole call
(``scripts/measure_overlap.py`` measures it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from describe_local.errors import DescribeLocalError, ModelNotInstalled
from describe_local.images import Photo, decode_photo, image_limits, load_photo
from describe_local.results import Answer, DescribeOptions, Description, StageStatus
from describe_local.say import audio, compose
from describe_local.say.plan import LanguageInfo, SpeechPlan, SpeechPlanner
from describe_local.say.speech import Segment, speak_segments
from describe_local.see import CaptionStage, FaceStage, QuestionAnswerer, TextStage, quality
from describe_local.see.faces.watch import GalleryWatch
from describe_local.see.runner import Outcome, StageRunner
from describe_local.settings import Settings

__all__ = ["ANALYSIS_STAGES", "Answer", "DescribeOptions", "Describer", "Description", "StageStatus"]

log = logging.getLogger(__name__)

ANALYSIS_STAGES = ("caption", "faces", "text")
NOT_INSTALLED = "not installed: "  # how an ``errors`` entry of a stage that is off begins


class _Stopwatch:
    """Milliseconds per step, and the total since it was made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ms: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = _ms_since(t0)

    def done(self) -> dict[str, float]:
        self.ms["total"] = _ms_since(self.started)
        return {k: round(v, 1) for k, v in self.ms.items()}


class Describer:
    """Loaded stages and voices, ready to describe any number of photos.

    Every stage is optional and replaceable: ``caption``, ``faces`` and
    ``text`` are anything that follows the protocols in :mod:`describe_local.see`.
    ``planner`` chooses the language and voices (:mod:`describe_local.say.plan`);
    ``speech`` says whether audio can be made at all.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        caption: CaptionStage | None = None,
        faces: FaceStage | None = None,
        text: TextStage | None = None,
        planner: SpeechPlanner | None = None,
        speech: bool = False,
        unavailable: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.caption = caption
        self.faces = faces
        self.text = text
        self.planner = planner
        self.speech = speech and planner is not None
        # Stages that could not be loaded, and why; reported with every result.
        self.unavailable: dict[str, str] = dict(unavailable or {})
        # The gallery as the faces stage last loaded it: changed by anyone, it is reloaded
        # before the next photo, so that a removed person is never named again.
        self._gallery_watch = GalleryWatch(settings.known_faces)
        self._gallery_lock = threading.Lock()
        if faces is not None:
            self._gallery_watch.mark()
        self._runner = StageRunner(len(ANALYSIS_STAGES))

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
        from describe_local.say.speech import load_bundled_voice
        from describe_local.see.caption import load_captioner

        say = progress or (lambda _msg: None)
        stages = set(stages)
        unknown = stages - set(ANALYSIS_STAGES)
        if unknown:
            raise ValueError(f"unknown stages: {', '.join(sorted(unknown))}")
        unavailable: dict[str, str] = {}
        # Stages that start helper processes are closed again if a later one fails to load.
        with contextlib.ExitStack() as cleanup:
            caption = faces = text = None
            if "caption" in stages:
                say("loading the caption model")
                try:
                    caption = load_captioner(settings)
                    cleanup.callback(_close, caption)
                except ModelNotInstalled as exc:
                    unavailable["caption"] = f"{NOT_INSTALLED}{exc}"
                    log.info("caption stage off: %s", exc)
            if "faces" in stages:
                say("loading the face models and the gallery")
                faces = _load_faces(settings)
                cleanup.callback(_close, faces)
            if "text" in stages:
                say("checking Tesseract")
                from describe_local.see.text import TextReader

                text = TextReader.load(settings)
            bundled = None
            if speech:
                say("loading the voice")
                bundled = load_bundled_voice()
            # Loaded without speech too: `--no-audio --lang es` still prints Spanish.
            say("loading translation models")
            planner = SpeechPlanner.load(settings, bundled_voice=bundled)
            describer = cls(settings, caption=caption, faces=faces, text=text, planner=planner,
                            speech=speech, unavailable=unavailable)
            cleanup.pop_all()  # loaded: the describer closes them from now on
            return describer

    def close(self) -> None:
        """Stop the stage threads and any helper process a stage started."""
        self._runner.close()
        for stage in (self.caption, self.faces, self.text):
            _close(stage)

    def __enter__(self) -> Describer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the public API ----------------------------------------------------------------

    def open_photo(self, source: Photo | Path | str | bytes) -> Photo:
        """Decode ``source`` with the configured limits (raises :class:`ImageError`)."""
        if isinstance(source, Photo):
            return source
        limits = image_limits(self.settings)
        if isinstance(source, bytes):
            return decode_photo(source, **limits)
        return load_photo(Path(source), **limits)

    def describe(self, source: Photo | Path | str | bytes, options: DescribeOptions | None = None) -> Description:
        """Describe one photo. Raises :class:`ImageError` if it cannot be decoded."""
        return self._describe(source, options or DescribeOptions(), ANALYSIS_STAGES)

    def read(self, source: Photo | Path | str | bytes, options: DescribeOptions | None = None) -> Description:
        """Read all the text in a photo aloud, in reading order (a document channel): the text
        stage alone. Raises :class:`ImageError` if the photo cannot be decoded."""
        options = dataclasses.replace(options or DescribeOptions(), all_text=True)
        return self._describe(source, options, ("text",))

    def _describe(self, source: Photo | Path | str | bytes, options: DescribeOptions,
                  stages: tuple[str, ...]) -> Description:
        clock = _Stopwatch()
        with clock.step("decode"):
            photo = self.open_photo(source)
        with clock.step("quality"):
            guidance = quality.assess(photo)
        if "faces" in stages and self.faces is not None and self._gallery_watch.changed():
            with clock.step("gallery"):
                self.reload_gallery()
        with clock.step("analysis"):
            outcomes = self._runner.run(self._stage_functions(stages), photo, self.settings.stage_timeout_s,
                                        sequential=options.sequential)
        errors = {stage: why for stage, why in self.unavailable.items() if stage in stages}
        for stage, outcome in outcomes.items():
            clock.ms[stage] = outcome.ms
            if outcome.error:
                errors[stage] = outcome.error

        caption = _value(outcomes, "caption")
        found_faces = _value(outcomes, "faces")
        reading = _value(outcomes, "text")
        people = list(found_faces.people) if found_faces else []
        unknown = int(found_faces.unknown) if found_faces else 0
        text_found = (reading.text or None) if reading else None
        spoken_text, more_lines = text_found, 0
        if reading is not None and reading.lines and not options.all_text:
            shown, more_lines = reading.first_lines(self.settings.spoken_text_lines)
            if more_lines:
                spoken_text = "\n".join(line.text for line in shown)
        text_language = reading.language if reading else None
        turned = quality.orientation_advice(reading.rotation) if reading is not None and text_found else None
        guidance += [turned] if turned else []

        problems = {stage: "off" if error.startswith(NOT_INSTALLED) else "failed"
                    for stage, error in errors.items() if stage in ANALYSIS_STAGES}
        with clock.step("compose"):
            if stages == ("text",) and not text_found and not problems:
                sentences = [compose.Sentence("nothing", "I found no text in this photo.")]
            else:
                sentences = compose.compose(caption, people, unknown, spoken_text, text_language,
                                            problems=problems, more_lines=more_lines)
            sentences = [compose.Sentence("guidance", advice) for advice in guidance] + sentences
        with clock.step("translate"):
            plan = self._plan(sentences, options)
        result = Description(
            path=photo.source, text=plan.text, caption=caption, people=people, unknown_faces=unknown,
            text_found=text_found, text_language=text_language,
            text_lines=reading.lines_as_dicts() if reading is not None else [],
            language=plan.language, notes=plan.notes, errors=errors, guidance=guidance,
        )
        if options.audio:
            self._add_audio(result, plan.segments, options, clock, errors)
        result.timings_ms = clock.done()
        return result

    def describe_all(
        self, sources: Iterable[Path], options: DescribeOptions | None = None, *, read: bool = False
    ) -> Iterator[tuple[Path, Description | DescribeLocalError]]:
        """Describe (or with ``read``, :meth:`read`) each photo in turn; a photo that fails
        yields its error instead."""
        method = self.read if read else self.describe
        for source in sources:
            try:
                yield source, method(source, options)
            except DescribeLocalError as exc:
                yield source, exc

    def ask(self, source: Photo | Path | str | bytes, question: str,
            options: DescribeOptions | None = None) -> Answer:
        """Answer a question about a photo with the caption model (OFA answers with the same weights).

        Raises :class:`ModelNotInstalled` when no loaded model can answer questions.
        """
        options = options or DescribeOptions()
        question = " ".join(question.split())
        if not question:
            raise DescribeLocalError("the question is empty: ask something about the photo")
        if self.caption is None:
            raise ModelNotInstalled(self.unavailable.get("caption", "no caption model is loaded").removeprefix(
                NOT_INSTALLED))
        if not isinstance(self.caption, QuestionAnswerer):
            raise ModelNotInstalled(f"{self.caption.name} cannot answer questions; questions need an OFA model "
                                    "(e.g. --caption-model ofa-tiny)")
        clock = _Stopwatch()
        with clock.step("decode"):
            photo = self.open_photo(source)
        with clock.step("answer"):
            answered = self.caption.answer(photo.image, question)
        # A backend may say how the answer came about (e.g. the question was cut to fit).
        notes = list(getattr(answered, "notes", ()))
        text = str(answered) or "I don't know."
        result = Answer(path=photo.source, question=question, answer=text, notes=notes)
        if options.audio:
            self._add_audio(result, [Segment(text, "en")], options, clock, {})
        result.timings_ms = clock.done()
        return result

    def reload_gallery(self) -> int:
        """Re-read the known-faces gallery (after a change by any means); returns how many people
        it knows, or 0 when the faces stage is off."""
        if self.faces is None:
            return 0
        from describe_local.see.faces.gallery import Gallery

        with self._gallery_lock:
            self._gallery_watch.mark()  # before reading: a change made meanwhile is seen next time
            return self.faces.reload(Gallery.open(self.settings.known_faces, self.settings))

    def status(self) -> dict[str, StageStatus]:
        """Which stages and models are loaded, and why not (no names of people)."""
        voice = self.planner.voices.default_for("en") if self.planner else None
        return {
            "caption": StageStatus(self.caption is not None, getattr(self.caption, "name", None),
                                   self.unavailable.get("caption")),
            "faces": StageStatus(self.faces is not None, None, self.unavailable.get("faces")),
            "text": StageStatus(self.text is not None, None, self.unavailable.get("text")),
            "speech": StageStatus(self.speech, voice.key if voice and self.speech else None),
            "translate": StageStatus(self.planner is not None),
        }

    def languages(self, *, all_common: bool = False) -> list[LanguageInfo]:
        """The languages a description can be spoken in, with their translation and voices."""
        return self.planner.languages(all_common=all_common) if self.planner else []

    # -- stages --------------------------------------------------------------------

    def _stage_functions(self, stages: tuple[str, ...]) -> dict[str, Callable[[Photo], Any]]:
        functions: dict[str, Callable[[Photo], Any]] = {}
        if self.caption is not None and "caption" in stages:
            captioner = self.caption
            functions["caption"] = lambda photo: captioner.caption(photo.image)
        if self.faces is not None and "faces" in stages:
            functions["faces"] = self.faces.recognize
        if self.text is not None and "text" in stages:
            functions["text"] = self.text.read
        return functions

    # -- saying --------------------------------------------------------------------

    def _plan(self, sentences: list[compose.Sentence], options: DescribeOptions) -> SpeechPlan:
        """The language and voices to speak ``sentences`` in (English only without a planner)."""
        voice = options.voice or self.settings.voice or None
        if self.planner is None:
            return SpeechPlan([Segment(compose.render(sentences), "en")], "en", [])
        lang = options.lang or self.planner.language_of_voice(options.voice) or self.settings.lang
        return self.planner.plan(sentences, lang, voice if options.audio else None)

    def _add_audio(self, result: Description | Answer, segments: list[Segment], options: DescribeOptions,
                   clock: _Stopwatch, errors: dict[str, str]) -> None:
        """Speak ``segments`` into ``result.mp3`` (and the main voice into ``result.voice``)."""
        if not self.speech or self.planner is None:
            errors["speech"] = "speech is off (the describer was loaded without a voice)"
            return
        voices = self.planner.voices
        preferred = options.voice or self.settings.voice or None

        def voice_for(segment: Segment) -> Any:
            return voices.load_voice(segment.voice or voices.choose(segment.language, preferred).key)

        with clock.step("speech"):
            pcm, rate = speak_segments(segments, voice_for, options.length_scale or self.settings.length_scale)
        if isinstance(result, Description) and segments:
            result.voice = segments[0].voice or voices.choose(segments[0].language, preferred).key
        with clock.step("encode"):
            result.mp3 = audio.encode_mp3(pcm, rate)


def _load_faces(settings: Settings) -> FaceStage:
    from describe_local.see.faces.gallery import Gallery
    from describe_local.see.faces.recognize import FaceRecognizer

    return FaceRecognizer.load(Gallery.open(settings.known_faces, settings), settings)


def _value(outcomes: dict[str, Outcome], stage: str) -> Any:
    outcome = outcomes.get(stage)
    return outcome.value if outcome is not None else None


def _close(stage: Any) -> None:
    """Close a stage that holds a helper process or other resources, if it has ``close()``."""
    close = getattr(stage, "close", None)
    if close is not None:
        close()


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
