"""Translate the composed description with Argos Translate packages from the model store.

Offline by construction. ``argostranslate`` is installed without its
dependencies (they would bring stanza, spaCy and a CUDA build of torch), and
only two of its parts are used: the package format (``metadata.json`` and the
tokenizer a package ships) and, through CTranslate2, the model. Sentences are
split here, with a rule that is exact for the sentences :mod:`compose` writes,
so none of argostranslate's sentence splitters (which download models on first
use) is ever imported.

What is never translated: the names of people and the text read from the
photo. Each :class:`~describe_local.compose.Sentence` holds them apart as
``protected`` values; the template goes through the model with each value
replaced by a number (numbers come through machine translation unchanged), the
numbers are checked and the values put back. When a number is lost, the part
of the sentence before the protected values is translated alone and the
values follow it as a list. The text read from the photo is spoken on its own,
with a voice of its language where one is installed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from describe_local.compose import Sentence
from describe_local.errors import ModelNotInstalled
from describe_local.speech import Segment
from describe_local.voices import VoiceCatalogue, base_language, normalize_tag

if TYPE_CHECKING:
    from describe_local.settings import Settings
    from describe_local.speech import Voice

log = logging.getLogger(__name__)

PIVOT = "en"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Numbers that stand in for names: three digits, so that no model writes them with a
# thousands separator; another series when the sentence already holds one of them.
_SENTINEL_BASES = (731, 831, 931, 631, 531, 431, 331, 231, 7301, 8301, 9301)

# Dialects that Argos packages name with codes of their own.
ARGOS_DIALECTS = {"pt_BR": "pb", "zh_TW": "zt", "zh_HK": "zt"}

LANGUAGE_NAMES = {
    "pb": "Portuguese (Brazil)", "zt": "Chinese (traditional)",
    "ar": "Arabic", "az": "Azerbaijani", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English", "eo": "Esperanto",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "lt": "Lithuanian",
    "lv": "Latvian", "ms": "Malay", "nb": "Norwegian", "ne": "Nepali", "nl": "Dutch", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian",
    "sq": "Albanian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}


def language_name(code: str) -> str:
    """"Spanish" for "es" (or "es_MX"); the code itself when unknown."""
    return LANGUAGE_NAMES.get(base_language(code), code)


@dataclass
class ArgosPackage:
    """One installed Argos translation package; its CTranslate2 model loads on first use."""

    source: str
    target: str
    name: str
    path: Path
    threads: int
    _package: Any = field(repr=False)
    beam_size: int = 4
    # Benchmarks only: random weights never end a sentence, so fix the output
    # length to this many times the input instead of running to the limit.
    forced_length_ratio: float | None = None
    _model: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, folder: Path, *, threads: int, beam_size: int = 4, name: str | None = None) -> ArgosPackage:
        """Read the package in ``folder`` (metadata and tokenizer; the model waits)."""
        package_module = _argos_package_module(folder.parent)
        package = package_module.Package(folder)
        if getattr(package, "tokenizer", None) is None:
            raise ModelNotInstalled(f"{folder.name}: the package has no sentencepiece.model or bpe.model")
        if (folder / "bpe.model").is_file() and not (folder / "sentencepiece.model").is_file():
            try:
                import sacremoses  # noqa: F401  (BPE packages tokenize with it)
            except ImportError:
                raise ModelNotInstalled(
                    f"{folder.name} is an old BPE package and needs sacremoses (pip install sacremoses)"
                ) from None
        return cls(package.from_code, package.to_code, name or folder.name, folder, threads, package, beam_size)

    def warm(self) -> None:
        """Load the CTranslate2 model now rather than at the first translation."""
        self._translator()

    def translate(self, texts: list[str]) -> list[str]:
        """Translate each of ``texts`` (single sentences) from :attr:`source` to :attr:`target`."""
        if not texts:
            return []
        tokenizer = self._package.tokenizer
        tokens = [tokenizer.encode(text) for text in texts]
        prefix = self._package.target_prefix
        longest = max(len(t) for t in tokens)
        options: dict[str, Any] = {"max_decoding_length": 2 * longest + 10}
        if self.forced_length_ratio is not None:
            length = max(1, round(longest * self.forced_length_ratio))
            options = {"max_decoding_length": length, "min_decoding_length": length}
        results = self._translator().translate_batch(
            tokens,
            target_prefix=[[prefix]] * len(tokens) if prefix else None,
            beam_size=self.beam_size,
            length_penalty=0.2,
            replace_unknowns=True,
            **options,
        )
        translated = []
        for result in results:
            text = tokenizer.decode(result.hypotheses[0])
            if prefix and text.startswith(prefix):
                text = text[len(prefix):]
            translated.append(text.strip())
        return translated

    def _translator(self) -> Any:
        with self._lock:
            if self._model is None:
                import ctranslate2

                log.info("loading translation model %s", self.name)
                self._model = ctranslate2.Translator(
                    str(self.path / "model"), device="cpu", compute_type="auto",
                    inter_threads=1, intra_threads=self.threads,
                )
            return self._model


@dataclass
class Translator:
    """Installed translation packages and voices: English descriptions in, spoken segments out."""

    packages: dict[tuple[str, str], ArgosPackage]
    voices: VoiceCatalogue

    @classmethod
    def load(cls, settings: Settings, *, bundled_voice: Voice | None = None) -> Translator:
        """Find the translation packages and voices in the store (``settings.models_dir``).

        The model for ``settings.lang`` is loaded now; others on first use.
        """
        from describe_local.store import ModelStore

        threads = max(1, settings.translation_threads)
        packages: dict[tuple[str, str], ArgosPackage] = {}
        for model in ModelStore.open(settings.models_dir).installed(kind="translation"):
            try:
                package = ArgosPackage.load(
                    model.path, threads=threads, beam_size=max(1, settings.translation_beam), name=model.name
                )
            except (ModelNotInstalled, OSError, ValueError) as exc:
                log.warning("translation package %s skipped: %s", model.name, exc)
                continue
            packages.setdefault((package.source, package.target), package)
        translator = cls(packages, VoiceCatalogue.load(settings, bundled=bundled_voice))
        for package in translator.route(PIVOT, base_language(settings.lang)) or []:
            try:
                package.warm()
            except (RuntimeError, OSError, ValueError) as exc:  # a damaged model.bin
                log.warning("translation model %s cannot be loaded, left out: %s", package.name, exc)
                del translator.packages[package.source, package.target]
        return translator

    # -- what is available ------------------------------------------------------------

    def route(self, source: str, target: str) -> list[ArgosPackage] | None:
        """Packages that take ``source`` to ``target``: direct, else through English, else
        through any one other language; ``[]`` when they are the same, ``None`` when impossible."""
        source, target = base_language(source), base_language(target)
        if source == target:
            return []
        if (source, target) in self.packages:
            return [self.packages[source, target]]
        middles = [PIVOT, *sorted({t for s, t in self.packages if s == source} - {PIVOT})]
        for middle in middles:
            if (source, middle) in self.packages and (middle, target) in self.packages:
                return [self.packages[source, middle], self.packages[middle, target]]
        return None

    def targets(self, source: str = PIVOT) -> dict[str, list[ArgosPackage]]:
        """Every language ``source`` can be translated into, with the route."""
        codes = {t for (_, t) in self.packages} | {s for (s, _) in self.packages}
        routes = {code: self.route(source, code) for code in sorted(codes - {source})}
        return {code: r for code, r in routes.items() if r}

    def translate_texts(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate whole texts (split into sentences here) along :meth:`route`."""
        route = self.route(source, target)
        if route is None:
            raise ModelNotInstalled(
                f"no translation from {language_name(source)} to {language_name(target)} is installed"
            )
        pieces = [split_sentences(text) for text in texts]
        flat = [p for group in pieces for p in group]
        for package in route:
            flat = package.translate(flat)
        out, i = [], 0
        for group in pieces:
            out.append(" ".join(flat[i : i + len(group)]))
            i += len(group)
        return out

    # -- the pipeline's entry point ---------------------------------------------------

    def translate(self, sentences: list[Sentence], lang: str) -> tuple[list[Segment], str, list[str]]:
        """The segments to speak for ``sentences`` in ``lang``, the language spoken, and notes.

        Falls back to English, and says so in the notes and the spoken text,
        when ``lang`` has no translation model or no voice.
        """
        tag, base = normalize_tag(lang), base_language(lang)
        notes: list[str] = []
        if base == PIVOT:
            return self._segments(sentences, [s.template for s in sentences], tag, notes), tag, notes
        code = self._argos_code(tag, base)
        missing = None
        if self.route(PIVOT, code) is None:
            missing = f"no translation model for {language_name(base)} is installed"
            hint = f"describe-local models pull argos-en_{base}"
        elif not self.voices.has(base):
            missing = f"no {language_name(base)} voice is installed"
            hint = "describe-local languages lists the voices; models pull VOICE_KEY adds one"
        elif not self.voices.loads(tag):
            missing = f"the {language_name(base)} voice cannot be loaded"
            hint = "describe-local models verify, then pull or import the voice again"
        if missing:
            return self._english(sentences, base, missing, hint, notes)
        try:
            templates = self._translate_templates(sentences, code, notes)
        except (RuntimeError, OSError, ValueError) as exc:  # a damaged model must not cost the description
            log.exception("translation to %s failed", code)
            return self._english(sentences, base, f"translation to {language_name(base)} failed ({exc})",
                                 "describe-local models verify, then pull or import the model again", notes)
        return self._segments(sentences, templates, tag, notes), tag, notes

    def _english(self, sentences: list[Sentence], base: str, missing: str, hint: str,
                 notes: list[str]) -> tuple[list[Segment], str, list[str]]:
        """The English description, opened by a sentence that says why it is not in ``base``."""
        notes.append(f"{missing[0].upper()}{missing[1:]}, so the description is in English (to fix it: {hint}).")
        spoken = Segment(f"{language_name(base)} is not available, so I will describe this in English.", "en")
        segments = self._segments(sentences, [s.template for s in sentences], "en", notes)
        return _merge([spoken, *segments]), "en", notes

    def _argos_code(self, tag: str, base: str) -> str:
        """The Argos language code for ``tag``: a dialect's own code where such a package is installed."""
        special = ARGOS_DIALECTS.get(tag)
        if special and self.route(PIVOT, special) is not None:
            return special
        return base

    def _translate_templates(self, sentences: list[Sentence], target: str, notes: list[str]) -> list[str]:
        """Each sentence's template in ``target``, its placeholders intact.

        The words before the protected values of a sentence are translated in
        the same batch, in case the masked sentence loses a placeholder: a
        spare row in the batch costs far less than a second call.
        """
        masked = [_mask(s) for s in sentences]
        leads = {i: _lead(s) for i, (s, m) in enumerate(zip(sentences, masked, strict=True)) if m.sentinels}
        texts = [m.text for m in masked] + [lead for lead in leads.values() if lead]
        translated = iter(self.translate_texts(texts, PIVOT, target))
        whole = [next(translated) for _ in masked]
        lead_out = {i: next(translated) if lead else "" for i, lead in leads.items()}
        templates: list[str] = []
        for i, (sentence, mask, text) in enumerate(zip(sentences, masked, whole, strict=True)):
            template = mask.restore(text)
            if template is None:
                log.info("placeholders lost in translation of %r; using its lead", sentence.template)
                template = _lead_then_values(sentence, leads[i], lead_out[i], notes)
            templates.append(template)
        return templates

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
                segments.append(Segment(_fill(template, sentence.protected), spoken))
        return _merge(segments)

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


def _lead(sentence: Sentence) -> str:
    """The words of a template before its first placeholder."""
    first = _PLACEHOLDER.search(sentence.template)
    return sentence.template[: first.start()].strip() if first else sentence.template


def _lead_then_values(sentence: Sentence, lead: str, translated_lead: str, notes: list[str]) -> str:
    """A template from the translated lead followed by the protected values as a plain list
    (no conjunction to translate), ending as the English sentence ends."""
    names = _PLACEHOLDER.findall(sentence.template)
    end = sentence.template.rstrip()[-1:]
    values = ", ".join("{" + n + "}" for n in names) + (end if end in ".!?" else "")
    if lead and not translated_lead:
        notes.append("Part of the description could not be translated and is in English.")
        return sentence.template
    return f"{translated_lead} {values}".strip()


def split_sentences(text: str) -> list[str]:
    """Split at '.', '!' or '?' followed by a space: exact for the sentences compose writes."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p] or [text]


@dataclass(frozen=True)
class _Masked:
    """A template with its placeholders replaced by numbers that survive translation."""

    text: str
    sentinels: dict[str, str]  # number -> placeholder ("731" -> "{name0}")

    def restore(self, translated: str) -> str | None:
        """``translated`` with the placeholders back, or ``None`` if a number was lost or repeated."""
        result = translated.replace("{", "(").replace("}", ")")  # model output is not a template
        for number, placeholder in self.sentinels.items():
            pattern = re.compile(rf"(?<!\d){number}(?!\d)")
            if len(pattern.findall(result)) != 1:
                return None
            result = pattern.sub(placeholder, result)
        return result


def _mask(sentence: Sentence) -> _Masked:
    """Mask the placeholders of ``sentence`` (the text read from the photo is dropped: it is spoken apart)."""
    template = sentence.template
    if sentence.kind == "text":
        template = template.replace("{text}", "").strip()
    names = _PLACEHOLDER.findall(template)
    base = next(
        (b for b in _SENTINEL_BASES
         if len(str(b + len(names))) == len(str(b)) and not any(str(b + i) in template for i in range(len(names)))),
        _SENTINEL_BASES[-1] * 10,
    )
    sentinels: dict[str, str] = {}
    masked = template
    for i, name in enumerate(names):
        number = str(base + i)
        sentinels[number] = "{" + name + "}"
        masked = masked.replace("{" + name + "}", number, 1)
    return _Masked(masked, sentinels)


def _fill(template: str, protected: dict[str, str]) -> str:
    """Put protected values back by plain replacement (never str.format on model output)."""
    for name, value in protected.items():
        template = template.replace("{" + name + "}", value)
    return template


def _merge(segments: list[Segment]) -> list[Segment]:
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


@contextlib.contextmanager
def _argos_home(folder: Path) -> Iterator[None]:
    """Point argostranslate's data, config and cache folders (made at import) into ``folder``."""
    names = ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "ARGOS_PACKAGES_DIR")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(
        XDG_DATA_HOME=str(folder / "data"),
        XDG_CONFIG_HOME=str(folder / "config"),
        XDG_CACHE_HOME=str(folder / "cache"),
        ARGOS_PACKAGES_DIR=str(folder / "packages"),
    )
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_IMPORT_LOCK = threading.Lock()


def _argos_package_module(models_dir: Path) -> Any:
    """``argostranslate.package``, imported so that it creates nothing in the home folder."""
    with _IMPORT_LOCK:
        if "argostranslate.package" not in sys.modules:
            try:
                with _argos_home(models_dir / ".argos"):
                    import argostranslate.package  # noqa: F401
            except ImportError:
                raise ModelNotInstalled("argostranslate is not installed: run ./scripts/setup") from None
        return sys.modules["argostranslate.package"]
