"""The language of what was read: ``py3langid`` restricted to the OCR languages.

``scripts/measure_langid.py`` compares it with ``lingua``. Too little text,
or a low confidence, means unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

# Fewer letters than this carry no language.
LANGUAGE_MIN_LETTERS = 4


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
