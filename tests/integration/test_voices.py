"""The voice catalogue: voices per language and dialect, defaults, --voice, speed.

Other voices are the bundled joe voice's model registered under other language
tags and qualities (no registry carries a second Piper voice).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from describe_local.errors import ModelNotInstalled
from describe_local.say.speech import BUNDLED_VOICE, bundled_voice_path
from describe_local.say.voices import VoiceCatalogue, base_language, normalize_tag
from describe_local.settings import Settings


def _add_voice(models: Path, key: str, quality: str) -> None:
    """A voice folder as `models import` leaves it (the model file hard-linked to save disk)."""
    onnx = bundled_voice_path()
    folder = models / key
    folder.mkdir(parents=True)
    try:
        os.link(onnx, folder / f"{key}.onnx")
    except OSError:
        shutil.copy(onnx, folder / f"{key}.onnx")
    config = json.loads(onnx.with_name(onnx.name + ".json").read_text(encoding="utf-8"))
    config["language"]["code"] = key.split("-")[0]
    config["audio"]["quality"] = quality
    (folder / f"{key}.onnx.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("voices") / "models"
    for key, quality in [("es_ES-joe-medium", "medium"), ("es_MX-joe-high", "high"),
                         ("es_MX-joe-low", "low"), ("en_GB-joe-medium", "medium")]:
        _add_voice(models, key, quality)
    return models


def _catalogue(models: Path, **settings) -> VoiceCatalogue:
    return VoiceCatalogue.load(Settings.load(environ={}, models_dir=models, **settings))


def test_the_bundled_voice_is_always_there(tmp_path):
    catalogue = _catalogue(tmp_path / "empty")
    assert [v.key for v in catalogue.voices] == [BUNDLED_VOICE]
    assert catalogue.default_for("en").key == BUNDLED_VOICE
    assert not catalogue.has("es")
    assert catalogue.choose("es").key == BUNDLED_VOICE  # nothing for Spanish: English speaks


def test_several_voices_per_language_and_dialects(models):
    catalogue = _catalogue(models)
    languages = catalogue.languages()
    assert sorted(languages) == ["en", "es"]
    assert [v.key for v in languages["es"]] == ["es_MX-joe-high", "es_ES-joe-medium", "es_MX-joe-low"]
    assert catalogue.default_for("es").key == "es_MX-joe-high"  # best quality
    assert catalogue.default_for("es_ES").key == "es_ES-joe-medium"  # the dialect asked for
    assert catalogue.default_for("es-ar").key == "es_MX-joe-high"  # no es_AR voice: the language's default
    assert catalogue.default_for("en").key == BUNDLED_VOICE
    assert catalogue.default_for("en_GB").key == "en_GB-joe-medium"
    assert catalogue.for_language("es_ES")[0].key == "es_ES-joe-medium"


def test_default_voices_setting(models):
    catalogue = _catalogue(models, default_voices="es_ES-joe-medium, en_GB-joe-medium")
    assert catalogue.default_for("es").key == "es_ES-joe-medium"
    assert catalogue.default_for("es_MX").key == "es_MX-joe-high"  # a dialect's own voice still wins
    assert catalogue.default_for("en").key == "en_GB-joe-medium"
    ignored = _catalogue(models, default_voices="es_ES-nobody-low")
    assert ignored.default_for("es").key == "es_MX-joe-high"


def test_choosing_a_voice(models):
    catalogue = _catalogue(models)
    assert catalogue.choose("es", "es_MX-joe-low").key == "es_MX-joe-low"
    # --voice names a Spanish voice; English parts (e.g. a fallback) keep an English voice.
    assert catalogue.choose("en", "es_MX-joe-low").key == BUNDLED_VOICE
    with pytest.raises(ModelNotInstalled, match="voice 'es_ES-nadie-medium' is not installed"):
        catalogue.choose("es", "es_ES-nadie-medium")


def test_voices_load_once_and_speak_faster_with_a_lower_length_scale(models):
    catalogue = _catalogue(models)
    voice = catalogue.voice_for("es_MX", None)
    assert voice.key == "es_MX-joe-high" and voice.language == "es_MX"
    assert catalogue.voice_for("es-mx", "es_MX-joe-high") is voice
    text = "Hello, this is a test of the reading speed."
    normal = voice.synthesize(text, length_scale=1.0)
    fast = voice.synthesize(text, length_scale=0.6)
    assert fast.dtype == np.int16 and normal.size > 0
    assert fast.size < 0.8 * normal.size


def test_language_tags():
    assert base_language("es-MX") == "es" and base_language("PT_br") == "pt"
    assert normalize_tag("es-mx") == "es_MX" and normalize_tag("ES") == "es"
