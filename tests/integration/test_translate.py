"""Translation through real Argos packages (tiny random CTranslate2 models) with the network blocked.

The packages are written by ``scripts/make_tiny_argos.py`` and installed with
the real ``models import``; a second voice is the bundled joe voice registered
as es_ES. Random weights translate into gibberish, which is enough to show
that text went through the model and that names and the text read from the
photo did not.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from describe_local.cli import main as cli_main
from describe_local.errors import ModelNotInstalled
from describe_local.pipeline import DescribeOptions, Describer
from describe_local.say.compose import Sentence, compose
from describe_local.say.plan import SpeechPlanner
from describe_local.say.speech import bundled_voice_path, load_bundled_voice, speak_segments
from describe_local.say.translate import Translator, _mask, split_sentences
from describe_local.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["Kanbo", "Jack", "Ayman"]
OCR_TEXT = "SALIDA de emergencia 24 h"


# -- no network for anything in this module ---------------------------------------------------


def _is_local(host: object) -> bool:
    if host in (None, "localhost", "") or not isinstance(host, str):
        return host in (None, "localhost", "")
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Refuse (and record) every connection or name lookup that would leave this machine."""
    attempts: list[str] = []
    real = (socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto, socket.getaddrinfo)

    def guard(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            attempts.append(f"connect {address}")
            raise OSError(f"network blocked in tests: {address}")

    def connect(self, address):
        guard(self, address)
        return real[0](self, address)

    def connect_ex(self, address):
        guard(self, address)
        return real[1](self, address)

    def sendto(self, data, *args):
        guard(self, args[-1])
        return real[2](self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            attempts.append(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"network blocked in tests: {host}")
        return real[3](host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
    socket.getaddrinfo = getaddrinfo
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto, socket.getaddrinfo = real


# -- a store with tiny packages and a second voice ------------------------------------------------


def _make_package(folder: Path, source: str, target: str, seed: int, copy: bool = False) -> Path:
    from make_tiny_argos import make_package

    return make_package(folder / f"translate-{source}_{target}.argosmodel", source, target, seed=seed, copy=copy)


def _add_voice(usb: Path, models: Path, key: str) -> None:
    """Register the bundled joe voice's files under another language tag, via `models import`."""
    onnx = bundled_voice_path()
    config = json.loads(onnx.with_name(onnx.name + ".json").read_text(encoding="utf-8"))
    config["language"]["code"] = key.split("-")[0]
    (usb / f"{key}.onnx").write_bytes(onnx.read_bytes())
    (usb / f"{key}.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    assert cli_main(["models", "--models-dir", str(models), "import", str(usb / f"{key}.onnx")]) == 0


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    usb = tmp_path_factory.mktemp("usb")
    models = tmp_path_factory.mktemp("store") / "models"
    for seed, (source, target) in enumerate([("en", "es"), ("es", "en"), ("en", "de"), ("en", "pt")]):
        # en → pt is a model that copies its input (weights set by hand), the others are random.
        package = _make_package(usb, source, target, seed, copy=target == "pt")
        assert cli_main(["models", "--models-dir", str(models), "import", str(package)]) == 0
    _add_voice(usb, models, "es_ES-joe-medium")
    _add_voice(usb, models, "pt_BR-joe-medium")
    return models


@pytest.fixture(scope="module")
def planner(store) -> SpeechPlanner:
    settings = Settings.load(environ={}, models_dir=store, lang="es")
    loaded = SpeechPlanner.load(settings, bundled_voice=load_bundled_voice())
    for package in loaded.translator.packages.values():
        if package.target != "pt":
            # Random weights never end a sentence; keep the gibberish (and so the speech) short.
            package.forced_length_ratio = 1.0
    return loaded


@pytest.fixture(scope="module")
def translator(planner) -> Translator:
    return planner.translator


def _plan(planner: SpeechPlanner, sentences: list[Sentence], lang: str):
    """(segments, spoken language, notes) of the plan for ``sentences`` in ``lang``."""
    plan = planner.plan(sentences, lang)
    return plan.segments, plan.language, plan.notes


@pytest.fixture(scope="module")
def describer(store, planner) -> Describer:
    settings = Settings.load(environ={}, models_dir=store)
    with Describer(settings, planner=planner, speech=True) as loaded:
        yield loaded


def _sentences() -> list[Sentence]:
    return compose("a man riding a bike down a street", NAMES, 1, OCR_TEXT, "es")


# -- tests ------------------------------------------------------------------------------------


def test_the_packages_came_in_through_models_import(store, translator):
    assert sorted(translator.packages) == [("en", "de"), ("en", "es"), ("en", "pt"), ("es", "en")]
    manifest = json.loads((store / "argos-en_es" / "describe-local.json").read_text())
    assert manifest["kind"] == "translation" and manifest["details"]["to"] == "es"
    assert translator.packages["en", "es"]._model is not None  # the settings language is warmed


def test_pipeline_translates_and_keeps_names_and_text_untouched(planner):
    sentences = _sentences()
    english = " ".join(s.render() for s in sentences)

    segments, spoken, notes = _plan(planner, sentences, "es")

    assert spoken == "es" and notes == []
    text = " ".join(s.text for s in segments)
    assert text != english
    assert "A man riding a bike" not in text and "I recognize" not in text
    for name in NAMES:
        assert text.count(name) == 1
    assert text.endswith(OCR_TEXT)  # read as it is, last, in its own language (Spanish here too)
    assert all(s.language == "es" for s in segments)

    pcm, rate = speak_segments(segments, lambda segment: planner.voices.load_voice(segment.voice))
    assert segments[0].voice == "es_ES-joe-medium" and rate == 22050 and len(pcm) > rate // 2


def test_describe_a_photo_in_spanish(describer):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="PNG")

    result = describer.describe(buffer.getvalue(), DescribeOptions(lang="es"))

    assert result.language == "es" and result.voice == "es_ES-joe-medium"
    assert result.text and "I could not find anything" not in result.text
    assert result.notes == []
    assert result.mp3 and result.mp3[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")


def test_a_voice_alone_chooses_its_language(describer):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 200, 30)).save(buffer, format="PNG")

    result = describer.describe(buffer.getvalue(), DescribeOptions(voice="es_ES-joe-medium"))

    assert result.language == "es_ES" and result.voice == "es_ES-joe-medium"
    assert "I could not find anything" not in result.text  # translated, not English


def test_lost_placeholders_fall_back_to_the_lead_and_the_names(translator):
    people = _sentences()[1]
    mask = _mask(people)
    assert mask.text == "I recognize 3 people: 731, 732, and 733."
    raw = translator.translate_texts([mask.text], "en", "es")[0]
    assert mask.restore(raw) is None  # random weights do not copy the numbers

    template = translator.translate_templates([people], "es", notes := [])[0]

    # The lead is translated in the same batch (the forced output length depends on the batch).
    lead = translator.translate_texts([mask.text, "I recognize 3 people:"], "en", "es")[1]
    assert lead and "recognize" not in lead
    assert template == f"{lead} {{name0}}, {{name1}}, {{name2}}."
    assert people.render(template) == f"{lead} Kanbo, Jack, Ayman."
    assert notes == []


def test_names_come_back_through_a_real_model_that_copies(planner, translator):
    """The numbers standing in for the names go through SentencePiece and CTranslate2 and come
    back; the sentence keeps its own conjunction ("and" here, as the model copies)."""
    sentences = _sentences()
    mask = _mask(sentences[1])
    raw = translator.translate_texts([mask.text], "en", "pt")[0]
    assert raw == "I recognize 3 people: 731, 732, and 733."
    assert mask.restore(raw) == "I recognize 3 people: {name0}, {name1}, and {name2}."

    segments, spoken, notes = _plan(planner, sentences, "pt_BR")

    assert spoken == "pt_BR" and notes == []
    assert [s.language for s in segments] == ["pt_BR", "es"]  # the sign is read in Spanish
    english = " ".join(s.render() for s in sentences)
    assert segments[0].text == english.removesuffix(" " + OCR_TEXT)
    assert "I recognize 3 people: Kanbo, Jack, and Ayman." in segments[0].text
    assert segments[1].text == OCR_TEXT
    assert planner.voices.voice_for("pt_BR").key == "pt_BR-joe-medium"


def test_masking_checks_and_restores_placeholders():
    people = Sentence("people", "I recognize 3 people: {name0}, {name1}, and {name2}.",
                      dict(zip(("name0", "name1", "name2"), NAMES, strict=True)))
    mask = _mask(people)
    assert mask.restore("Reconozco a 3 personas: 731, 732 y 733.") == (
        "Reconozco a 3 personas: {name0}, {name1} y {name2}.")
    assert mask.restore("Reconozco a 3 personas: 731 y 733.") is None  # one lost
    assert mask.restore("Reconozco: 731, 731, 732 y 733.") is None  # one doubled
    assert mask.restore("Reconozco: 1731, 732 y 733.") is None  # a longer number is not ours
    assert mask.restore("Reconozco: 731, 732 y 7.33.") is None
    assert mask.restore("{x} 731, 732, 733") == "(x) {name0}, {name1}, {name2}"
    # A template that already holds the numbers gets other ones.
    clash = _mask(Sentence("people", "I recognize 731 people: {name0}.", {"name0": "Ann"}))
    assert clash.text == "I recognize 731 people: 831."
    assert clash.restore(clash.text) == "I recognize 731 people: {name0}."
    # The text read from the photo is not sent to the model at all.
    text = _mask(Sentence("text", "There is text in the image. It reads: {text}", {"text": OCR_TEXT}, "es"))
    assert text.text == "There is text in the image. It reads:" and OCR_TEXT not in text.text


def test_sentences_are_split_without_any_model():
    assert split_sentences("There was text found in the image as well. It reads:") == [
        "There was text found in the image as well.", "It reads:"]
    assert split_sentences("I see one person. I also see 2 people I don't recognize!") == [
        "I see one person.", "I also see 2 people I don't recognize!"]


def test_no_translation_falls_back_to_english_and_says_so(planner):
    segments, spoken, notes = _plan(planner, _sentences(), "fr")

    assert spoken == "en"
    assert len(notes) == 1 and "No translation model for French" in notes[0]
    assert "argos-en_fr" in notes[0]
    assert segments[0].language == "en"
    assert segments[0].text.startswith("French is not available, so I will describe this in English.")
    assert "I recognize 3 people: Kanbo, Jack, and Ayman." in segments[0].text


def test_no_voice_falls_back_to_english_and_says_so(planner):
    segments, spoken, notes = _plan(planner, _sentences(), "de")

    assert spoken == "en" and "No German voice is installed" in notes[0]
    assert segments[0].text.startswith("German is not available")


def test_text_in_another_language_is_read_with_its_own_voice(planner):
    segments, spoken, notes = _plan(planner, _sentences(), "en")

    assert spoken == "en" and notes == []
    assert [s.language for s in segments] == ["en", "es"]
    assert segments[1].text == OCR_TEXT
    assert segments[0].text.endswith("It reads:")
    assert planner.voices.voice_for("es").key == "es_ES-joe-medium"

    german = compose(None, [], 0, "Notausgang", "de")
    segments, _, notes = _plan(planner, german, "en")
    assert [s.language for s in segments] == ["en"] and segments[0].text.endswith("Notausgang")
    assert "looks German; no German voice is installed" in notes[0]


def test_a_damaged_model_falls_back_to_english(store, tmp_path):
    damaged = tmp_path / "models"
    for name in ("argos-en_es", "es_ES-joe-medium"):
        shutil.copytree(store / name, damaged / name, copy_function=os.link)
    (damaged / "argos-en_es" / "model" / "model.bin").unlink()  # a hard link: the original stays
    (damaged / "argos-en_es" / "model" / "model.bin").write_bytes(b"not a model")

    lazy = SpeechPlanner.load(Settings.load(environ={}, models_dir=damaged, lang="en"))
    segments, spoken, notes = _plan(lazy, _sentences(), "es")
    assert spoken == "en" and "Translation to Spanish failed" in notes[0]
    assert segments[0].text.startswith("Spanish is not available")

    eager = SpeechPlanner.load(Settings.load(environ={}, models_dir=damaged, lang="es"))
    assert eager.translator.packages == {}  # left out at load, with a warning, instead of failing the pipeline
    assert "No translation model for Spanish" in _plan(eager, _sentences(), "es")[2][0]


def test_a_damaged_voice_falls_back_to_english(store, tmp_path):
    models = tmp_path / "models"
    for name in ("argos-en_es", "es_ES-joe-medium"):
        shutil.copytree(store / name, models / name, copy_function=os.link)
    onnx = models / "es_ES-joe-medium" / "es_ES-joe-medium.onnx"
    onnx.unlink()
    onnx.write_bytes(b"\0" * 4096)

    loaded = SpeechPlanner.load(Settings.load(environ={}, models_dir=models, lang="en"))
    segments, spoken, notes = _plan(loaded, _sentences(), "es")

    assert spoken == "en" and "The Spanish voice cannot be loaded" in notes[0]
    assert segments[0].text.startswith("Spanish is not available")
    with pytest.raises(ModelNotInstalled, match="voice es_ES-joe-medium cannot be loaded"):
        loaded.voices.voice_for("es")


def test_pivot_through_english(translator):
    route = translator.route("es", "de")
    assert [p.name for p in route] == ["argos-es_en", "argos-en_de"]
    assert translator.route("de", "es") is None
    assert translator.route("es_MX", "es") == []
    out = translator.translate_texts(["Hola. Reconozco a 3 personas."], "es", "de")
    assert len(out) == 1 and out[0]
    with pytest.raises(ModelNotInstalled):
        translator.translate_texts(["Hallo"], "de", "es")


def test_languages_command(store, capsys):
    assert cli_main(["languages", "--models-dir", str(store), "--json"]) == 0
    rows = {row["code"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["es"]["translation"] == "installed (argos-en_es)"
    assert [v["key"] for v in rows["es"]["voices"]] == ["es_ES-joe-medium"]
    assert rows["es"]["voices"][0]["default"] is True
    assert rows["de"]["translation_installed"] and rows["de"]["voices"] == []
    assert not rows["fr"]["translation_installed"]
    assert rows["en"]["voices"][0]["key"] == "en_US-joe-medium"


def test_translation_runtime_imports_nothing_it_does_not_need(store, tmp_path):
    """A fresh interpreter translates; stanza, spaCy, minisbd and torch stay out, nothing
    is written to the home folder, and no socket is opened."""
    script = textwrap.dedent(f"""
        import json, socket, sys
        from pathlib import Path
        opened = []
        real = socket.socket.connect
        def connect(self, address):
            opened.append(str(address))
            raise OSError("blocked")
        socket.socket.connect = connect
        socket.getaddrinfo = lambda *a, **k: opened.append(str(a)) or (_ for _ in ()).throw(OSError("blocked"))
        from describe_local.say.compose import compose
        from describe_local.settings import Settings
        from describe_local.say.plan import SpeechPlanner
        t = SpeechPlanner.load(Settings.load(environ={{}}, models_dir=Path({str(store)!r}), lang="es"))
        plan = t.plan(compose("a dog", ["Kanbo"], 0, None), "es")
        segments, spoken = plan.segments, plan.language
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("stanza", "spacy", "minisbd", "torch"))
        print(json.dumps({{"spoken": spoken, "text": segments[0].text, "heavy": heavy, "opened": opened}}))
    """)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    (tmp_path / "home").mkdir()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["spoken"] == "es" and "Kanbo" in report["text"]
    assert report["heavy"] == []
    assert report["opened"] == []
    # argostranslate made nothing in the home folder (onnxruntime, loading the voice, leaves a
    # device id under ~/.cache/Microsoft: not ours to test here).
    made = [p.relative_to(tmp_path / "home").as_posix() for p in (tmp_path / "home").rglob("*")]
    assert [p for p in made if "argos" in p or p.startswith((".local", ".config"))] == []


def test_the_network_guard_works_and_nothing_tried_to_connect(no_network):
    with pytest.raises(OSError, match="network blocked"):
        socket.getaddrinfo("models.example.invalid", 443)
    assert no_network == ["lookup models.example.invalid"]
    no_network.clear()
