"""The describer's voice: what is said, in which language, by which voice, and the MP3.

:class:`Speaker` joins the speech plan (:mod:`.plan`: the language and each segment's
voice, or English and why) to the voices (:mod:`.speech`) and the MP3 encoder
(:mod:`describe_local.audio`). Without a planner (a describer loaded bare, as in the
unit tests) everything is said in English and nothing is spoken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from describe_local.errors import ModelNotInstalled
from describe_local.memory import drop_mapped_weights
from describe_local.results import DescribeOptions, Description, Said, Seen, Speech
from describe_local.say import compose
from describe_local.say.plan import SpeechPlan, SpeechPlanner
from describe_local.say.speech import SEGMENT_PAUSE_S, Segment, length_scale_for, silence, speak_segments
from describe_local.timing import Stopwatch

if TYPE_CHECKING:
    from describe_local.audio import Mp3Stream
    from describe_local.say.speech import Voice
    from describe_local.settings import Settings

SPEECH_OFF = "speech is off (the describer was loaded without a voice)"


@dataclass
class Speaker:
    """Plans and speaks what the describer says."""

    settings: Settings
    planner: SpeechPlanner | None = None
    speech: bool = False  # whether voices may be loaded (the describer was loaded with speech)
    _spoken: dict[str, Voice] = field(default_factory=dict, repr=False)  # the voices that have spoken

    def __post_init__(self) -> None:
        self.speech = self.speech and self.planner is not None

    def plan(self, sentences: list[compose.Sentence], options: DescribeOptions, *, opening: bool = True) -> SpeechPlan:
        """The language and voices to speak ``sentences`` in (English only without a planner);
        ``opening``: they begin a description (a fallback to English is said there)."""
        if self.planner is None:
            return SpeechPlan([Segment(compose.render(sentences), "en")], "en", [])
        lang = options.lang or self.planner.language_of_voice(options.voice) or self.settings.lang
        return self.planner.plan(sentences, lang, self._preferred(options) if options.audio else None,
                                 opening=opening)

    def pcm(self, segments: list[Segment], options: DescribeOptions) -> Speech:
        """``segments`` spoken with their voices (the first one's key in ``voice``), one pause
        between voices. Raises :class:`ModelNotInstalled` when speech is off."""
        pcm, rate = self._pcm(segments, options)
        return Speech(pcm, rate, self._voice_key(segments[0], options) if segments else "")

    def speak(self, text: str, language: str, options: DescribeOptions) -> Speech:
        """``text``, already in ``language``, spoken by the voice the plan gives that language:
        the listener's (``options.voice``) where it speaks it, else the language's default."""
        segment = Segment(text, language)
        pcm, rate = self._pcm([segment], options)
        return Speech(pcm, rate, self._voice_key(segment, options))

    def rest(self) -> None:
        """Hand the weights of the voices that have spoken back to the system until they speak again:
        between descriptions the stages' models have the memory (``voice_copy.py``)."""
        for voice in list(self._spoken.values()):
            voice.rest()

    def default_voice(self) -> str | None:
        """The key of the English voice, when speech is on."""
        voice = self.planner.voices.default_for("en") if self.planner is not None and self.speech else None
        return voice.key if voice is not None else None

    # -- inside ----------------------------------------------------------------------------

    def _pcm(self, segments: list[Segment], options: DescribeOptions) -> tuple[np.ndarray, int]:
        if not self.speech or self.planner is None:
            raise ModelNotInstalled(SPEECH_OFF)
        voices = self.planner.voices

        def voice_for(segment: Segment) -> Voice:
            voice = voices.load_voice(self._voice_key(segment, options))
            self._spoken.setdefault(voice.key, voice)
            return voice

        return speak_segments(segments, voice_for, self._length_scale(options))

    def _voice_key(self, segment: Segment, options: DescribeOptions) -> str:
        assert self.planner is not None
        return segment.voice or self.planner.voices.choose(segment.language, self._preferred(options)).key

    def _preferred(self, options: DescribeOptions) -> str | None:
        return options.voice or self.settings.voice or None

    def _length_scale(self, options: DescribeOptions) -> float:
        return length_scale_for(options.speed) if options.speed else self.settings.length_scale


@dataclass
class Narration:
    """One description said part by part (:meth:`say`), each part as soon as its sentences exist:
    planned, translated and spoken on its own, then joined with a short pause. The whole (text,
    notes, language, voice, PCM) is the same whether it was taken part by part or at the end."""

    speaker: Speaker
    options: DescribeOptions
    clock: Stopwatch
    texts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    language: str | None = None  # of the first part
    voice: str | None = None  # of the first part's first segment
    sample_rate: int = 0
    speech_error: str | None = None  # speech was asked for and is off
    _mp3: Mp3Stream | None = None  # one encoder for every part: the frames of each as it is said

    def say(self, sentences: list[compose.Sentence]) -> Said | None:
        """Plan, translate and (with ``options.audio``) speak one part; ``None`` for no sentences."""
        if not sentences:
            return None
        with self.clock.step("translate"):
            plan = self.speaker.plan(sentences, self.options, opening=not self.texts)
        self.texts.append(plan.text)
        self.notes += [note for note in plan.notes if note not in self.notes]
        self.language = self.language or plan.language
        pcm = None
        if self.options.audio and self.speaker.speech:
            from describe_local.audio import Mp3Stream, resample  # PyAV (15 MB): only where there is sound

            with self.clock.step("speech"):
                if self._mp3 is None and self.options.sequential:
                    # Every stage has run (one after another) before the first words: the pages of their
                    # mapped weights go back to the system before the voice's come in (each stage reads
                    # its own back from the page cache at its next run). A worker peaked 37 MB lower.
                    drop_mapped_weights()
                speech = self.speaker.pcm(plan.segments, self.options)
            self.voice = self.voice or speech.voice
            self.sample_rate = self.sample_rate or speech.sample_rate
            pcm = resample(speech.pcm, speech.sample_rate, self.sample_rate)
            if self._mp3 is not None:  # a breath between parts, as between two voices
                pcm = np.concatenate([silence(self.sample_rate, SEGMENT_PAUSE_S), pcm])
            with self.clock.step("encode"):
                self._mp3 = self._mp3 or Mp3Stream(self.sample_rate)
                frames = self._mp3.feed(pcm)
            return Said(plan.text, plan.language, pcm, self.sample_rate, frames)
        if self.options.audio:
            self.speech_error = SPEECH_OFF
        return Said(plan.text, plan.language)

    def end(self) -> Said | None:
        """The encoder's last frames, as a part with no text (``None`` without speech)."""
        if self._mp3 is None:
            return None
        with self.clock.step("encode"):
            frames = self._mp3.finish()
        return Said("", self.language or "en", None, self.sample_rate, frames)

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def mp3(self) -> bytes | None:
        """All the parts' speech as one MP3 file, the same frames they gave (``None`` without speech)."""
        if self._mp3 is None:
            return None
        with self.clock.step("encode"):
            self._mp3.finish()
            return self._mp3.whole()

    def description(self, seen: Seen, text_found: str | None) -> Description:
        """The whole description once every part is said (its MP3 all the parts' speech)."""
        reading = seen.reading
        result = Description(
            path=seen.source, text=self.text, caption=seen.caption, people=seen.people,
            unknown_faces=seen.unknown_faces, text_found=text_found,
            text_language=reading.language if reading is not None else None,
            text_lines=reading.lines_as_dicts() if reading is not None else [],
            language=self.language or "en", notes=self.notes, guidance=seen.guidance,
            stages=seen.stages, voice=self.voice, picture=seen.picture,
        )
        result.stage_errors()
        if self.speech_error:
            result.errors["speech"] = self.speech_error
        result.mp3 = self.mp3()
        if self._mp3 is not None:
            with self.clock.step("speech"):
                self.speaker.rest()
        result.timings_ms = self.clock.done()
        return result
