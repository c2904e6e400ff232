"""Translate the composed description with Argos Translate packages from the model store.

Offline by construction. ``argostranslate`` is installed without its
dependencies (they would bring stanza, spaCy and a CUDA build of torch), and
only two of its parts are used: the package format (``metadata.json`` and the
tokenizer a package ships) and, through CTranslate2, the model. Sentences are
split here, with a rule that is exact for the sentences :mod:`compose` writes,
so none of argostranslate's sentence splitters (which download models on first
use) is ever imported.

What is never translated: the names of people and the text read from the
photo. Each :class:`~describe_local.say.compose.Sentence` holds them apart as
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

from describe_local.errors import ModelNotInstalled
from describe_local.languages import base_language, language_name
from describe_local.say.compose import Sentence

if TYPE_CHECKING:
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

PIVOT = "en"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Numbers that stand in for names: three digits, so that no model writes them with a
# thousands separator; another series when the sentence already holds one of them.
_SENTINEL_BASES = (731, 831, 931, 631, 531, 431, 331, 231, 7301, 8301, 9301)

ARGOS_DIALECTS = {"pt_BR": "pb", "zh_TW": "zt", "zh_HK": "zt"}  # dialects with Argos codes of their own


@dataclass
class ArgosPackage:
    """One installed Argos translation package; its CTranslate2 model loads on first use."""

    source: str
    target: str
    name: str
    path: Path
    threads: int
    _package: Any = field(repr=False)
    beam_size: int  # the translation_beam setting
    # Benchmarks only: random weights never end a sentence, so fix the output
    # length to this many times the input instead of running to the limit.
    forced_length_ratio: float | None = None
    _model: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, folder: Path, *, threads: int, beam_size: int, name: str | None = None) -> ArgosPackage:
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
    """The installed translation packages: English text in, text in another language out."""

    packages: dict[tuple[str, str], ArgosPackage]

    @classmethod
    def load(cls, settings: Settings) -> Translator:
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
        translator = cls(packages)
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

    def translate_templates(self, sentences: list[Sentence], target: str, notes: list[str]) -> list[str]:
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


def fill(template: str, protected: dict[str, str]) -> str:
    """Put protected values back by plain replacement (never str.format on model output)."""
    for name, value in protected.items():
        template = template.replace("{" + name + "}", value)
    return template


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
