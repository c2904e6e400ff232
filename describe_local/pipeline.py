"""The pipeline: a photo in, a spoken description out. The one API the CLI and the server use.

:class:`Describer` loads the models once and describes many photos::

    describer = Describer.load(Settings.load())
    result = describer.describe(Path("photo.jpg"))
    print(result.text); Path("photo.mp3").write_bytes(result.mp3)

Its public methods are all a front end needs: :meth:`~Describer.describe`,
:meth:`~Describer.describe_all`, :meth:`~Describer.read`, :meth:`~Describer.look`
(the stages alone, for measuring them), :meth:`~Describer.ask`, :meth:`~Describer.speak`
(text in the describer's own voices), :meth:`~Describer.translate`, :meth:`~Describer.reload_gallery`,
:meth:`~Describer.status` and :meth:`~Describer.languages`.

The flow is see → say: decode → (caption | faces | text, concurrently in
threads) → compose → plan (language, voices) → speak → encode. Each stage's
state (ran, off, failed, timed out) is a value, :class:`~describe_local.results.StageState`,
carried in :attr:`Description.stages`; a stage that fails does not stop the
others. The stages overlap for real: torch releases the GIL, Tesseract runs as
a child process, and faces run in a child process of their own because dlib's
face encoder holds the GIL for its whole call (``scripts/measure_overlap.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from describe_local.errors import DescribeLocalError, ModelNotInstalled
from describe_local.images import Photo, decode_photo, image_limits, load_photo
from describe_local.memory import release_free_memory, settle_allocator
from describe_local.results import (
    Answer,
    DescribeOptions,
    Description,
    Picture,
    Said,
    Seen,
    Speech,
    StageState,
    StageStatus,
    Status,
)
from describe_local.say import compose
from describe_local.say.plan import LanguageInfo, SpeechPlanner
from describe_local.say.speaker import Narration, Speaker
from describe_local.say.speech import Segment
from describe_local.see import CaptionStage, FaceStage, QuestionAnswerer, TextStage, picture, quality
from describe_local.see.faces.watch import GalleryWatch
from describe_local.see.loading import ANALYSIS_STAGES, close_stage, load_stages
from describe_local.see.runner import Outcome, StageRunner, record
from describe_local.settings import Settings
from describe_local.timing import Stopwatch

__all__ = ["ANALYSIS_STAGES", "Answer", "DescribeOptions", "Describer", "Description", "LanguageInfo", "Said",
           "Seen", "Speech", "StageState", "StageStatus", "Status"]

log = logging.getLogger(__name__)

Source = Photo | Path | str | bytes


class Describer:
    """Loaded stages and voices, ready to describe any number of photos.

    Every stage is optional and replaceable: ``caption``, ``faces`` and
    ``text`` are anything that follows the protocols in :mod:`describe_local.see`.
    ``planner`` chooses the language and voices (:mod:`describe_local.say.plan`);
    ``speech`` says whether audio can be made at all. ``off`` names the stages
    that could not be loaded, with why, in words.
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
        off: dict[str, str] | None = None,
        on_demand: bool = False,
    ) -> None:
        self.settings = settings
        self.caption = caption
        self.faces = faces
        self.text = text
        self.planner = planner
        self._speaker = Speaker(settings, planner, speech)
        # Stages that could not be loaded: the same state for every photo, and in status().
        self._off = {stage: StageState.off(why) for stage, why in (off or {}).items()}
        # The stages that are off and were already told in full: told once per describer (a CLI
        # run, a server's life), then only where nothing else was found, in a few words.
        self._told_off: set[str] = set()
        # The gallery as the faces stage last loaded it: changed by anyone, it is reloaded
        # before the next photo, so that a removed person is never named again.
        self._gallery_watch = GalleryWatch(settings.known_faces)
        self._gallery_lock = threading.Lock()
        if faces is not None:
            self._gallery_watch.mark()
        self._runner = StageRunner(len(ANALYSIS_STAGES))
        self._on_demand = on_demand  # models loaded as they run, one at a time, all let go before the voice speaks

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        stages: Iterable[str] = ANALYSIS_STAGES,
        speech: bool = True,
        progress: Callable[[str], None] | None = None,
        on_demand: bool | None = None,
    ) -> Describer:
        """Load every model the pipeline needs, once (see :mod:`describe_local.see.loading`):
        a stage whose model is not installed is off, other load errors propagate.
        ``progress`` is called with a short message before each model loads. ``on_demand``: the
        caption and text models, and the voice, load only as they are needed, and the stages'
        models one at a time, each let go after its run (a small machine, or a single photo);
        ``None``: as the ``models_in_memory`` setting says ("one": on demand).
        """
        from describe_local.say.speech import load_bundled_voice
        from describe_local.say.voice_copy import copies_folder

        if on_demand is None:
            on_demand = settings.models_in_memory == "one"
        settle_allocator()  # before the models load: their freed tensors go back to the system
        say = progress or (lambda _msg: None)
        loaded = load_stages(settings, stages, say, on_demand=on_demand)
        try:
            bundled = None
            if speech and not on_demand:  # on demand, the voice catalogue loads it when first spoken
                say("loading the voice")
                bundled = load_bundled_voice(copies_folder(settings.models_dir))
            # Loaded without speech too: `--no-audio --lang es` still prints Spanish.
            say("loading translation models")
            planner = SpeechPlanner.load(settings, bundled_voice=bundled)
        except BaseException:
            loaded.close()
            raise
        return cls(settings, caption=loaded.caption, faces=loaded.faces, text=loaded.text, planner=planner,
                   speech=speech, off=loaded.off, on_demand=on_demand)

    def close(self) -> None:
        """Stop the stage threads and any helper process a stage started."""
        self._runner.close()
        for stage in (self.caption, self.faces, self.text):
            close_stage(stage)

    def __enter__(self) -> Describer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the public API ----------------------------------------------------------------

    def open_photo(self, source: Source, *, name: str | None = None) -> Photo:
        """Decode ``source`` with the configured limits (raises :class:`ImageError`); ``name``
        names photo bytes in errors and results (``<upload>`` otherwise)."""
        if isinstance(source, Photo):
            return source
        limits = image_limits(self.settings)
        if isinstance(source, bytes):
            return decode_photo(source, **limits, **({"source": name} if name else {}))
        return load_photo(Path(source), **limits)

    def describe(self, source: Source, options: DescribeOptions | None = None, *,
                 name: str | None = None) -> Description:
        """Describe one photo. Raises :class:`ImageError` if it cannot be decoded.
        ``name``: what to call photo bytes in errors and in ``Description.path``."""
        return _last(self._tell(source, options or DescribeOptions(), ANALYSIS_STAGES, name))

    def tell(self, source: Source, options: DescribeOptions | None = None, *, name: str | None = None,
             read: bool = False) -> Iterator[Said | Description]:
        """Describe (``read``: read) one photo part by part: a :class:`Said` for each part as soon
        as it is spoken (advice and the caption first, then people, then text, in that order
        whatever stage finishes first; with audio, a last one with no text and the MP3's last
        frames), then the whole :class:`Description` (its MP3 the very same frames). Raises
        :class:`ImageError` before anything is said if the photo cannot be decoded."""
        if read:
            options = dataclasses.replace(options or DescribeOptions(), all_text=True)
        return self._tell(source, options or DescribeOptions(), ("text",) if read else ANALYSIS_STAGES, name)

    def read(self, source: Source, options: DescribeOptions | None = None, *,
             name: str | None = None) -> Description:
        """Read all the text in a photo aloud, in reading order (a document channel): the text
        stage alone. Raises :class:`ImageError` if the photo cannot be decoded."""
        return _last(self.tell(source, options, name=name, read=True))

    def look(self, source: Source, stages: Iterable[str] = ANALYSIS_STAGES, *, name: str | None = None,
             sequential: bool = False) -> Seen:
        """What the analysis ``stages`` see in a photo, with each one's state and time, before
        anything is composed or spoken (for measuring the stages themselves)."""
        clock = Stopwatch()
        with clock.step("decode"):
            photo = self.open_photo(source, name=name)
        return self._look(photo, tuple(stages), clock, sequential)

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

    def ask(self, source: Source, question: str, options: DescribeOptions | None = None) -> Answer:
        """Answer a question about a photo with the caption model (OFA answers with the same weights).

        Raises :class:`ModelNotInstalled` when no loaded model can answer questions.
        """
        options = options or DescribeOptions()
        question = " ".join(question.split())
        if not question:
            raise DescribeLocalError("the question is empty: ask something about the photo")
        if self.caption is None:
            off = self._off.get("caption")
            raise ModelNotInstalled(off.detail if off is not None and off.detail else "no caption model is loaded")
        if not isinstance(self.caption, QuestionAnswerer):
            raise ModelNotInstalled(f"{self.caption.name} cannot answer questions; questions need an OFA model "
                                    "(e.g. --caption-model ofa-tiny)")
        clock = Stopwatch()
        with clock.step("decode"):
            photo = self.open_photo(source)
        with clock.step("answer"):
            answered = self.caption.answer(photo.image, question)
        text = answered.text or "I don't know."
        result = Answer(path=photo.source, question=question, answer=text, notes=list(answered.notes))
        if options.audio and self._speaker.speech:
            with clock.step("speech"):
                speech = self._speaker.pcm([Segment(text, "en")], options)
            with clock.step("encode"):
                from describe_local.audio import encode_mp3  # PyAV: only where there is sound

                result.mp3 = encode_mp3(speech.pcm, speech.sample_rate)
        result.timings_ms = clock.done()
        return result

    def speak(self, text: str, language: str = "en", options: DescribeOptions | None = None) -> Speech:
        """``text``, already in ``language`` (e.g. a description's ``text`` and ``language``), spoken by
        the voice the describer's plan gives that language: the listener's voice (``options.voice``)
        where it speaks it, else the language's default. Raises :class:`ModelNotInstalled` when
        the describer was loaded without speech."""
        return self._speaker.speak(text, language, options or DescribeOptions())

    def translate(self, texts: list[str], lang: str) -> list[str]:
        """English ``texts`` in ``lang`` (ISO 639-1 or a tag such as ``fr-CA``), by the installed
        translation models (alt text in a page's own language). Raises :class:`ModelNotInstalled`
        where none translates into ``lang``."""
        code = lang.split("-")[0].split("_")[0].lower()
        if code == "en" or not texts:
            return list(texts)
        if self.planner is None:
            raise ModelNotInstalled("no translation models are loaded")
        return self.planner.translator.translate_texts(list(texts), "en", code)

    def reload_gallery(self) -> int:
        """Re-read the known-faces gallery (after a change by any means); returns how many people
        it knows, or 0 when the faces stage is off."""
        if self.faces is None:
            return 0
        from describe_local.gallery import open_gallery

        with self._gallery_lock:
            self._gallery_watch.mark()  # before reading: a change made meanwhile is seen next time
            return self.faces.reload(open_gallery(self.settings))

    def status(self) -> dict[str, StageStatus]:
        """Which stages and models are loaded, and why not (no names of people)."""

        def stage(name: str, loaded: object, model: str | None = None) -> StageStatus:
            if loaded is not None:
                return StageStatus(Status.OK, model)
            off = self._off.get(name)
            return StageStatus(Status.OFF, None, off.detail if off is not None else None)

        voice = self._speaker.default_voice()
        return {
            "caption": stage("caption", self.caption, getattr(self.caption, "name", None)),
            "faces": stage("faces", self.faces),
            "text": stage("text", self.text),
            "speech": StageStatus(Status.OK, voice) if self._speaker.speech else StageStatus(Status.OFF),
            "translate": StageStatus(Status.OK if self.planner is not None else Status.OFF),
        }

    def languages(self, *, all_common: bool = False) -> list[LanguageInfo]:
        """The languages a description can be spoken in, with their translation and voices."""
        return self.planner.languages(all_common=all_common) if self.planner else []

    # -- seeing --------------------------------------------------------------------

    def _look(self, photo: Photo, stages: tuple[str, ...], clock: Stopwatch, sequential: bool) -> Seen:
        seen, waits = self._start(photo, stages, clock, sequential)
        with clock.step("analysis"):
            for stage, wait in waits.items():
                record(seen, stage, wait(), clock)
        return seen

    def _start(self, photo: Photo, stages: tuple[str, ...], clock: Stopwatch,
               sequential: bool) -> tuple[Seen, dict[str, Callable[[], Outcome]]]:
        """The photo's advice and the stages that are off, and the stages started (``sequential``:
        already run one after another): a call per stage that waits for its outcome."""
        with clock.step("quality"):
            guidance = quality.assess(photo)
        if "faces" in stages and self.faces is not None and self._gallery_watch.changed():
            with clock.step("gallery"):
                self.reload_gallery()
        functions = self._stage_functions(stages)
        budget = self.settings.stage_timeout_s
        if sequential:  # each timed alone (benchmarks), or a collection worker with one core
            done = self._runner.run(functions, photo, budget, sequential=True)
            waits = {stage: (lambda outcome=outcome: outcome) for stage, outcome in done.items()}
        elif self._on_demand:  # the face child works beside the others, which load their models in turn
            beside = {stage: fn for stage, fn in functions.items() if stage == "faces"}
            waits = self._runner.start(beside, photo, budget)
            done = self._runner.run({s: fn for s, fn in functions.items() if s not in beside}, photo, budget,
                                    sequential=True)
            waits.update({stage: (lambda outcome=outcome: outcome) for stage, outcome in done.items()})
        else:
            waits = self._runner.start(functions, photo, budget)
        seen = Seen(source=photo.source, guidance=guidance,
                    stages={stage: state for stage, state in self._off.items() if stage in stages})
        return seen, waits

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

    def _tell(self, source: Source, options: DescribeOptions, stages: tuple[str, ...],
              name: str | None) -> Iterator[Said | Description]:
        clock = Stopwatch()
        with clock.step("decode"):
            photo = self.open_photo(source, name=name)  # before the generator: a bad photo raises at once
        return self._parts(photo, options, stages, clock)

    def _parts(self, photo: Photo, options: DescribeOptions, stages: tuple[str, ...],
               clock: Stopwatch) -> Iterator[Said | Description]:
        kind, kind_said = Picture.PHOTO, None
        if stages == ANALYSIS_STAGES and self.settings.check_picture_kind and options.check_picture:
            with clock.step("picture"):
                measured = picture.measure(photo)
                kind = picture.judge(measured)
                kind_said = picture.sentence(kind, measured)
            if kind is not Picture.PHOTO:  # read (short or detailed, as asked), not captioned; a blank has nothing
                stages = () if kind is Picture.BLANK else ("text",)
        seen, waits = self._start(photo, stages, clock, options.sequential)
        if self._on_demand:  # the face child done too before the voice is loaded
            done = {stage: wait() for stage, wait in waits.items()}
            waits = {stage: (lambda outcome=outcome: outcome) for stage, outcome in done.items()}
        seen.picture = kind
        if kind is Picture.BLANK:
            seen.guidance = []  # "very dark" says less than "blank (all black)"
        del photo  # the running stages hold it: it is freed as the last one ends, not after the speech
        advice = len(seen.guidance)
        teller = compose.Teller(self.settings.spoken_text_lines, options.all_text, stages == ("text",),
                                self._told_off)
        narration = Narration(self._speaker, options, clock)
        opening = [*teller.picture(kind_said), *teller.opening(seen.guidance)]
        for stage in compose.PARTS:
            if stage in waits:
                record(seen, stage, waits[stage](), clock)
            with clock.step("compose"):
                # Advice the stage added (the text is sideways) comes just before its sentences.
                sentences = [*opening, *teller.opening(seen.guidance[advice:]), *teller.part(stage, seen)]
            opening, advice = [], len(seen.guidance)
            if said := narration.say(sentences):
                yield said
        if said := narration.say(teller.closing()):
            yield said
        if said := narration.end():
            yield said
        description = narration.description(seen, teller.text_found)
        release_free_memory()  # what this photo's models freed, back to the system before the next
        yield description


def _last(parts: Iterator[Said | Description]) -> Description:
    """The :class:`Description` that ends :meth:`Describer.tell`'s parts."""
    for part in parts:
        if isinstance(part, Description):
            return part
    raise RuntimeError("the description ended without its result")  # a bug: _parts always ends with one
