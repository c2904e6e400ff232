"""The describer's voice: what is said, in which language, by which voice, and the MP3.

:class:`Speaker` joins the speech plan (:mod:`.plan`: the language and each segment's
voice, or English and why) to the voices (:mod:`.speech`) and the MP3 encoder
(:mod:`describe_local.audio`). Without a planner (a describer loaded bare, as in the
unit tests) everything is said in English and nothing is spoken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from describe_local.errors import ModelNotInstalled
from describe_local.results import DescribeOptions, Speech
from describe_local.say import compose
from describe_local.say.plan import SpeechPlan, SpeechPlanner
from describe_local.say.speech import Segment, length_scale_for, speak_segments

if TYPE_CHECKING:
    from describe_local.say.speech import Voice
    from describe_local.settings import Settings

SPEECH_OFF = "speech is off (the describer was loaded without a voice)"


@dataclass
class Speaker:
    """Plans and speaks what the describer says."""

    settings: Settings
    planner: SpeechPlanner | None = None
    speech: bool = False  # whether voices may be loaded (the describer was loaded with speech)

    def __post_init__(self) -> None:
        self.speech = self.speech and self.planner is not None

    def plan(self, sentences: list[compose.Sentence], options: DescribeOptions) -> SpeechPlan:
        """The language and voices to speak ``sentences`` in (English only without a planner)."""
        if self.planner is None:
            return SpeechPlan([Segment(compose.render(sentences), "en")], "en", [])
        lang = options.lang or self.planner.language_of_voice(options.voice) or self.settings.lang
        return self.planner.plan(sentences, lang, self._preferred(options) if options.audio else None)

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
            return voices.load_voice(self._voice_key(segment, options))

        return speak_segments(segments, voice_for, self._length_scale(options))

    def _voice_key(self, segment: Segment, options: DescribeOptions) -> str:
        assert self.planner is not None
        return segment.voice or self.planner.voices.choose(segment.language, self._preferred(options)).key

    def _preferred(self, options: DescribeOptions) -> str | None:
        return options.voice or self.settings.voice or None

    def _length_scale(self, options: DescribeOptions) -> float:
        return length_scale_for(options.speed) if options.speed else self.settings.length_scale
