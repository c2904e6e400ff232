"""The speech plan: in which language a description is spoken, with which voices, and why.

One owner for these decisions. Given the composed English sentences and the
listener's language, :class:`SpeechPlanner` decides:

- whether the description can be spoken in that language (a translation model
  *and* a voice that loads), else it falls back to English and says so, both
  in :attr:`SpeechPlan.notes` and in the spoken text;
- the voice of each stretch of speech: the listener's voice (``--voice`` or the
  language's default), and for the text read from the photo a voice of that
  text's own language where one is installed.

Translation itself is :mod:`describe_local.say.translate` (text only); voices are
found by :mod:`describe_local.say.voices`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from describe_local.errors import first_line
from describe_local.languages import base_language, language_name, normalize_tag
from describe_local.say.compose import Sentence
from describe_local.say.speech import Segment
from describe_local.say.translate import ARGOS_DIALECTS, PIVOT, Translator, fill
from describe_local.say.voices import VoiceCatalogue

if TYPE_CHECKING:
    from describe_local.say.speech import Voice
    from describe_local.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SpeechPlan:
    """What to say: segments in speaking order, each with its language and voice."""

    segments: list[Segment]
    language: str  # the language the description is spoken in
    notes: list[str] = field(default_factory=list)  # e.g. a fallback to English

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)


@dataclass(frozen=True)
class LanguageInfo:
    """A language a description can be spoken in, and what is installed for it."""

    code: str
    name: str
    translation: str  # "built in", "installed (NAME)", "not installed (...)"
    translation_installed: bool
    voices: list[dict[str, object]]  # key, dialect, quality, default

    @property
    def ready(self) -> bool:
        return self.translation_installed and bool(self.voices)


# Shown even when nothing is installed for them, so that the user sees what to pull.
COMMON_LANGUAGES = ("en", "es", "fr", "de", "pt", "it")


@dataclass
class SpeechPlanner:
    """The installed translations and voices, and the rules that choose between them."""

    translator: Translator
    voices: VoiceCatalogue

    @classmethod
    def load(cls, settings: Settings, *, bundled_voice: Voice | None = None) -> SpeechPlanner:
        """Find the translation packages and voices in ``settings.models_dir``."""
        return cls(Translator.load(settings), VoiceCatalogue.load(settings, bundled=bundled_voice))

    # -- what is available ------------------------------------------------------------

    def language_of_voice(self, key: str | None) -> str | None:
        """The language a voice speaks, so that ``--voice es_MX-...`` alone means Spanish."""
        info = self.voices.find(key) if key else None
        return info.language if info is not None else None

    def languages(self, *, all_common: bool = False) -> list[LanguageInfo]:
        """English plus every language with a translation or a voice installed
        (and, with ``all_common``, the common ones with nothing installed)."""
        targets = self.translator.targets(PIVOT)
        voices = self.voices.languages()
        codes = set(targets) | set(voices) | {PIVOT} | (set(COMMON_LANGUAGES) if all_common else set())
        rows = []
        for code in sorted(codes, key=lambda c: (c != PIVOT, c)):
            route = targets.get(code)
            if code == PIVOT:
                translation = "built in"
            elif route is None:
                translation = f"not installed (describe-local models pull argos-en_{code})"
            elif len(route) == 1:
                translation = f"installed ({route[0].name})"
            else:
                names = ", ".join(p.name for p in route)
                translation = f"installed, through {language_name(route[0].target)} ({names})"
            default = self.voices.default_for(code)
            rows.append(LanguageInfo(
                code=code,
                name=language_name(code),
                translation=translation,
                translation_installed=code == PIVOT or route is not None,
                voices=[{"key": v.key, "dialect": v.language, "quality": v.quality,
                         "default": default is not None and v.key == default.key}
                        for v in voices.get(code, [])],
            ))
        return rows

    # -- planning ---------------------------------------------------------------------

    def plan(self, sentences: list[Sentence], lang: str, voice: str | None = None, *,
             opening: bool = True) -> SpeechPlan:
        """The segments to speak for ``sentences`` in ``lang``, each with its voice.

        Falls back to English, and says so in the notes and (when ``opening``: the first
        part of a description) the spoken text, when ``lang`` has no translation model or
        no voice that loads. ``voice`` (a key) is the listener's choice for the spoken language.
        """
        tag, base = normalize_tag(lang), base_language(lang)
        notes: list[str] = []
        if base == PIVOT:
            segments = self._segments(sentences, [s.template for s in sentences], tag, notes)
            return self._voiced(segments, tag, notes, voice)
        code = self._argos_code(tag, base)
        missing = hint = None
        if self.translator.route(PIVOT, code) is None:
            missing = f"no translation model for {language_name(base)} is installed"
            hint = f"describe-local models pull argos-en_{base}"
        elif not self.voices.has(base):
            missing = f"no {language_name(base)} voice is installed"
            hint = "describe-local languages lists the voices; models pull VOICE_KEY adds one"
        elif not self.voices.loads(tag):
            missing = f"the {language_name(base)} voice cannot be loaded"
            hint = "describe-local models verify, then pull or import the voice again"
        if missing:
            return self._english(sentences, base, missing, hint or "", notes, voice, opening)
        try:
            templates = self.translator.translate_templates(sentences, code, notes)
        except (RuntimeError, OSError, ValueError) as exc:  # a damaged model must not cost the description
            log.exception("translation to %s failed", code)
            return self._english(sentences, base, f"translation to {language_name(base)} failed ({first_line(exc)})",
                                 "describe-local models verify, then pull or import the model again", notes, voice,
                                 opening)
        return self._voiced(self._segments(sentences, templates, tag, notes), tag, notes, voice)

    def _english(self, sentences: list[Sentence], base: str, missing: str, hint: str,
                 notes: list[str], voice: str | None, opening: bool = True) -> SpeechPlan:
        """The English description, opened (``opening``) by a sentence that says why it is not in ``base``."""
        notes.append(f"{missing[0].upper()}{missing[1:]}, so the description is in English (to fix it: {hint}).")
        spoken = Segment(f"{language_name(base)} is not available, so I will describe this in English.", "en")
        segments = self._segments(sentences, [s.template for s in sentences], "en", notes)
        return self._voiced(merge([spoken, *segments] if opening else segments), "en", notes, voice)

    def _voiced(self, segments: list[Segment], spoken: str, notes: list[str], voice: str | None) -> SpeechPlan:
        """Each segment with the key of the voice that speaks it (the listener's voice for
        the spoken language when it speaks that language)."""
        voiced = [Segment(s.text, s.language, self.voices.choose(s.language, voice).key) for s in segments]
        return SpeechPlan(voiced, spoken, notes)

    def _argos_code(self, tag: str, base: str) -> str:
        """The Argos language code for ``tag``: a dialect's own code where such a package is installed."""
        special = ARGOS_DIALECTS.get(tag)
        if special and self.translator.route(PIVOT, special) is not None:
            return special
        return base

    def _segments(
        self, sentences: list[Sentence], templates: list[str], spoken: str, notes: list[str]
    ) -> list[Segment]:
        """Segments in speaking order; text read from the photo gets a segment of its own language."""
        segments: list[Segment] = []
        for sentence, template in zip(sentences, templates, strict=True):
            if sentence.kind == "text" and "text" in sentence.protected:
                lead = template.replace("{text}", "").strip()
                if lead:
                    segments.append(Segment(lead, spoken))
                segments.append(Segment(sentence.protected["text"], self._text_language(sentence, spoken, notes)))
            else:
                segments.append(Segment(fill(template, sentence.protected), spoken))
        return merge(segments)

    def _text_language(self, sentence: Sentence, spoken: str, notes: list[str]) -> str:
        """The language to read the photo's text in: its own where a voice speaks it."""
        language = sentence.language
        if not language or base_language(language) == base_language(spoken):
            return spoken
        if self.voices.has(language):
            return base_language(language)
        notes.append(
            f"The text in the photo looks {language_name(language)}; no {language_name(language)} voice "
            f"is installed, so it is read with the {language_name(spoken)} voice."
        )
        return spoken


def merge(segments: list[Segment]) -> list[Segment]:
    """Join neighbouring segments of the same language, so that one voice reads them in one go."""
    merged: list[Segment] = []
    for segment in segments:
        if not segment.text:
            continue
        if merged and merged[-1].language == segment.language:
            merged[-1] = Segment(f"{merged[-1].text} {segment.text}", segment.language)
        else:
            merged.append(segment)
    return merged
