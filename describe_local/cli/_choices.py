"""What a listener may choose: languages, voices and caption models, checked before any photo is
described, each refusal one line that lists the values that would work."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.cli._common import setting_default, shown
from describe_local.errors import ConfigError, ModelNotInstalled

if TYPE_CHECKING:
    from describe_local.pipeline import LanguageInfo
    from describe_local.settings import Settings

PIPER_VOICES_URL = "https://huggingface.co/rhasspy/piper-voices"
NEEDS_NETWORK = "(needs a network)"


def speech_choices(settings: Settings) -> list[LanguageInfo]:
    """The languages a description can be spoken in (installed ones, and the common ones that
    fall back to English), each with its installed voices. Loads no model: the store is only read."""
    from describe_local.pipeline import Describer

    listing = dataclasses.replace(settings, lang="en")  # "en": warm no translation model
    with Describer.load(listing, stages=(), speech=False) as describer:
        return describer.languages(all_common=True)


def installed_voices(rows: list[LanguageInfo]) -> list[str]:
    """Every installed voice key in ``rows``, in the order listed."""
    return [str(v["key"]) for row in rows for v in row.voices]


def pullable_voices(code: str, installed: list[str]) -> list[str]:
    """Voice keys of language ``code`` that the catalogue names and are not installed (the
    catalogue knows a few keys offline; any Piper voice key can be pulled)."""
    from describe_local.languages import base_language
    from describe_local.store import known_models

    return [e.name for e in known_models()
            if e.kind == "voice" and base_language(e.repo.split("-")[0]) == code and e.name not in installed]


def check_speech_options(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse a language or voice (from ``--lang``/``--voice`` or the settings) that cannot be
    used, in one line listing those that can: :class:`ConfigError` (exit 2) for a value that is
    no language or voice, :class:`ModelNotInstalled` (exit 4) for a voice that can be pulled."""
    lang, voice = getattr(args, "lang", None), getattr(args, "voice", None)
    effective_lang = lang if lang is not None else settings.lang
    effective_voice = voice if voice is not None else settings.voice
    if lang is None and voice is None and effective_lang == setting_default("lang") and not effective_voice:
        return  # English with its default voice is always there
    rows = speech_choices(settings)
    check_lang(effective_lang, rows, "--lang" if lang is not None else "the setting lang")
    # A voice of another language than --lang is fine: it speaks the parts in its own language
    # (an English fallback, text read from the photo).
    if voice is not None or effective_voice:
        check_voice(effective_voice, rows, "--voice" if voice is not None else "the setting voice")


def check_lang(lang: str, rows: list[LanguageInfo], option: str = "--lang") -> LanguageInfo:
    """The row of ``lang`` ("es", "es_MX", "es-mx"), or :class:`ConfigError` listing the codes."""
    from describe_local.languages import base_language

    code = base_language(lang.strip())
    row = next((r for r in rows if r.code == code), None)
    if row is None:
        raise ConfigError(
            f"{option} {shown(lang)!r} is not a language describe-local can speak; choose one of "
            f"{', '.join(r.code for r in rows)} (another needs its translation and a voice: "
            "`describe-local languages`)"
        )
    return row


def check_voice(voice: str, rows: list[LanguageInfo], option: str = "--voice") -> LanguageInfo:
    """The row of the language installed voice ``voice`` speaks, else an error listing the installed
    voices: :class:`ModelNotInstalled` when ``voice`` is a Piper voice key that can be pulled."""
    from describe_local.store import UnknownModel, resolve

    for row in rows:
        if any(v["key"] == voice for v in row.voices):
            return row
    installed = ", ".join(installed_voices(rows)) or "none"
    try:
        pullable = resolve(voice).kind == "voice"
    except UnknownModel:
        pullable = False
    if pullable:
        raise ModelNotInstalled(
            f"{option} {voice} is not installed (installed: {installed}); get it with "
            f"`describe-local models pull {voice}` {NEEDS_NETWORK}, or `describe-local models import "
            f"{voice}.onnx` with its .onnx.json beside it"
        )
    raise ConfigError(
        f"{option} {shown(voice)!r} is not a voice; choose one of the installed voices: {installed} "
        "(`describe-local languages` lists them and the voices you can pull)"
    )


def check_folders(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse (:class:`ConfigError`, one line) a model store that is not a folder, and a ``--gallery``
    that does not exist: describing with a mistyped gallery would silently recognise nobody."""
    if settings.models_dir.exists() and not settings.models_dir.is_dir():
        raise ConfigError(f"the model store {shown(settings.models_dir)} is not a folder; "
                          "give a folder (--models-dir, or the setting models_dir)")
    gallery = getattr(args, "gallery", None)
    if gallery is not None and not gallery.is_dir():
        raise ConfigError(f"--gallery {shown(gallery)} is not a folder; give the known-faces folder "
                          "(one subfolder per person; `describe-local faces add` makes it)")


def caption_model_given(args: argparse.Namespace, settings: Settings) -> str | None:
    """The caption model the user asked for (``--caption-model``, or a setting other than the
    default), or ``None`` for the default, whose absence is only a note."""
    given = getattr(args, "caption_model", None)
    if given is not None:
        return str(given)
    if settings.caption_model != setting_default("caption_model"):
        return settings.caption_model
    return None


def check_caption_model(name: str, models_dir: Path) -> None:
    """Raise :class:`ModelNotInstalled` (exit 4) unless ``name`` is an existing folder or a model in
    the store, naming the installed caption models and how to install one."""
    candidate = Path(name).expanduser()
    if candidate.is_dir() or (_plain_name(name) and (models_dir / name).is_dir()):
        return
    # Only to say what is missing: the catalogue imports an HTTP client (20 ms of a cold describe).
    from describe_local.store import ModelStore, UnknownModel, resolve
    from describe_local.store.catalogue import CAPTION_MODELS

    installed = [m.name for m in ModelStore.open(models_dir).installed(kind="caption")]
    have = f"installed: {', '.join(installed)}" if installed else "no caption model is installed"
    names = ", ".join(e.name for e in CAPTION_MODELS)
    pull = f"`describe-local models pull NAME` {NEEDS_NETWORK} with NAME one of {names}"
    offline = "`describe-local models import FOLDER` offline"
    if not _plain_name(name):
        raise ModelNotInstalled(f"--caption-model {shown(name)}: no such folder ({have}); "
                                f"give a model folder, or install one with {pull}, or {offline}")
    try:
        known = resolve(name).kind == "caption"
    except UnknownModel:
        known = False
    if known:
        raise ModelNotInstalled(f"caption model {name} is not installed ({have}); install it with "
                                f"`describe-local models pull {name}` {NEEDS_NETWORK}, or {offline}")
    raise ModelNotInstalled(f"caption model {shown(name)!r} is not installed and not one describe-local "
                            f"can pull ({have}); give a model folder, or install one with {pull}, or {offline}")


def _plain_name(name: str) -> bool:
    """Whether ``name`` names a model in the store rather than a path."""
    return bool(name) and not any(sep in name for sep in ("/", os.sep)) and name not in {".", ".."} \
        and not name.startswith("~")
