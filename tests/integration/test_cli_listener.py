"""The command line as a listener meets it (issue 11): options checked up front with the valid values
in the error, voices to pull listed, quiet broken pipes, a JSON line for every photo, progress and a
closing summary, a proportional --speed, and the text orientation guidance on real text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from describe_local.audio import decode_audio
from describe_local.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An empty model store and gallery, for this process (in-process ``main``) and for children."""
    for key in list(os.environ):
        if key.startswith("DESCRIBE_LOCAL_"):
            monkeypatch.delenv(key)
    env = {"DESCRIBE_LOCAL_MODELS_DIR": str(tmp_path / "models"),
           "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "known_faces"),
           "DESCRIBE_LOCAL_OUTPUT_DIR": str(tmp_path / "out")}
    for key, value in env.items():
        Path(value).mkdir()
        monkeypatch.setenv(key, value)
    return env


def spawn(*args: str, env: dict[str, str], close_stdout: bool = False) -> tuple[int, str, str]:
    """Run the CLI in a child process; with ``close_stdout`` its reader is gone before it writes
    (as `| head` that has read enough). Returns the exit code, stdout and stderr."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")} | env
    child = subprocess.Popen([sys.executable, "-m", "describe_local", *args], cwd=ROOT, env=full_env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if close_stdout:
        child.stdout.close()
        err = child.stderr.read()
        return child.wait(timeout=600), "", err
    out, err = child.communicate(timeout=600)
    return child.returncode, out, err


# -- every option checked before any photo, with what would work ----------------------------------


@pytest.mark.parametrize(
    ("options", "code", "words"),
    [
        (["--lang", "xx"], 2, ["'xx'", "en, de, es, fr, it, pt"]),
        (["--voice", "nonsense"], 2, ["'nonsense' is not a voice", "en_US-joe-medium"]),
        (["--voice", "es_AR-daniela-high"], 4, ["not installed", "en_US-joe-medium", "models pull es_AR-daniela-high"]),
        (["--caption-model", "/no/such/dir"], 4, ["no such folder", "models pull", "models import"]),
        (["--caption-model", "ofa-base"], 4, ["ofa-base is not installed", "models pull ofa-base"]),
        (["--caption-model", "nonsense"], 4, ["not one describe-local can pull", "ofa-tiny"]),
        (["--speed", "9"], 2, ["0.25 to 4"]),
        (["--beam", "0"], 1, ["--beam"]),
        (["--gallery", "/no/such/gallery"], 2, ["--gallery", "not a folder"]),
    ],
)
def test_bad_options_are_refused_in_one_line_with_the_valid_values(isolated, shared_data: Path, capsys,
                                                                   options: list[str], code: int, words: list[str]):
    photo = str(shared_data / "ocr/signs/french.jpg")
    assert main(["describe", photo, "--no-audio", *options]) == code
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err


def test_a_model_store_that_is_a_file_is_one_line(isolated, tmp_path: Path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["languages", "--models-dir", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_language_from_the_settings_is_checked_too(isolated, shared_data: Path, capsys, monkeypatch):
    monkeypatch.setenv("DESCRIBE_LOCAL_LANG", "klingon")
    assert main(["read", str(shared_data / "ocr/signs/french.jpg"), "--no-audio"]) == 2
    assert "the setting lang 'klingon'" in capsys.readouterr().err


def test_good_options_pass_and_a_dialect_is_a_language(isolated, shared_data: Path, capsys):
    """Spanish falls back to English (nothing installed), and says so; joe may speak the English parts."""
    code = main(["read", str(shared_data / "ocr/signs/french.jpg"), "--no-audio", "--lang", "es-MX",
                 "--voice", "en_US-joe-medium"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Spanish is not available" in out


def test_a_folder_that_is_not_a_caption_model_is_an_error_when_asked_for(isolated, shared_data: Path, capsys):
    code = main(["describe", str(shared_data / "ocr/signs/french.jpg"), "--no-audio",
                 "--caption-model", isolated["DESCRIBE_LOCAL_KNOWN_FACES"]])
    out, err = capsys.readouterr()
    assert code == 4 and out == ""
    assert "is not a caption model" in err and "models pull" in err


# -- languages: voices installed and to pull -------------------------------------------------------


def test_languages_lists_installed_and_pullable_voices(isolated, capsys):
    assert main(["languages"]) == 0
    out = capsys.readouterr().out
    assert "*en_US-joe-medium" in out
    assert "voices to pull (needs a network): es_ES-davefx-medium, es_MX-ald-medium" in out
    assert "fr_FR-siwis-medium" in out and "models pull KEY" in out
    assert main(["languages", "--json"]) == 0
    rows = {row["code"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["de"]["pullable_voices"] == ["de_DE-thorsten-medium"]
    assert rows["en"]["pullable_voices"] == ["en_GB-alan-medium"]  # joe is installed, so not offered


# -- a reader that leaves early ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [["languages"], ["models", "list", "--json"], ["faces", "list"]])
def test_a_closed_pipe_ends_quietly(isolated, command: list[str]):
    code, _out, err = spawn(*command, env=isolated, close_stdout=True)
    assert code == 141
    assert err == ""


def test_a_closed_pipe_while_describing_ends_quietly(isolated, shared_data: Path):
    photos = [str(shared_data / "ocr/signs/french.jpg")] * 2
    code, _out, err = spawn("describe", *photos, "--json", "--no-audio", env=isolated, close_stdout=True)
    assert code == 141
    assert "Traceback" not in err and "error" not in err


# -- JSON lines, progress and the closing summary ---------------------------------------------------


def test_every_photo_gets_a_json_line_progress_and_a_summary(isolated, shared_data: Path, tmp_path: Path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    good = shared_data / "ocr/signs/french.jpg"
    code, out, err = spawn("read", str(bad), str(good), str(tmp_path / "missing.jpg"), "--json", "--no-audio",
                           "--progress", env=isolated)
    assert code == 3
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(bad), str(good), str(tmp_path / "missing.jpg")]
    assert "not an image" in records[0]["errors"]["decode"]
    assert "no such file" in records[2]["errors"]["decode"]
    assert "It reads:" in records[1]["text"]
    lines = err.splitlines()
    assert [line.split()[0] for line in lines if line[:1].isdigit() and "/" in line.split()[0]] == ["1/3", "2/3", "3/3"]
    assert lines[-1].startswith("1 photo read, 2 failed, ") and lines[-1].endswith(" s each on average")

    # stderr is not a terminal here: without --progress, only the summary.
    code, out, err = spawn("read", str(good), str(good), "--no-audio", env=isolated)
    assert code == 0
    assert "1/2" not in err and err.splitlines()[-1].startswith("2 photos read, ")
    # One photo: no summary.
    code, out, err = spawn("read", str(good), "--no-audio", env=isolated)
    assert code == 0 and "on average" not in err


def test_a_photo_whose_mp3_cannot_be_written_still_gets_its_json_line(isolated, shared_data: Path, tmp_path: Path):
    target = tmp_path / "mp3s"
    (target / "french.mp3").mkdir(parents=True)  # a folder where the MP3 would go: it cannot be written
    code, out, err = spawn("read", str(shared_data / "ocr/signs/french.jpg"), "--json", "-o", str(target),
                           env=isolated)
    assert code == 2, err
    record = json.loads(out)
    assert "It reads:" in record["text"] and record["audio"] is None
    assert "cannot write" in record["errors"]["output"]


# -- speed, measured on the MP3 the listener gets ---------------------------------------------------


def test_speed_is_proportional_through_the_command_line(isolated, shared_data: Path, tmp_path: Path):
    photo = str(shared_data / "ocr/signs/french.jpg")
    seconds = {}
    for speed in ("1", "2", "3"):
        mp3 = tmp_path / f"speed{speed}.mp3"
        code, _out, err = spawn("read", photo, "--speed", speed, "-o", str(mp3), env=isolated)
        assert code == 0, err
        samples, rate = decode_audio(mp3.read_bytes())
        seconds[speed] = len(samples) / rate
    assert seconds["2"] / seconds["1"] == pytest.approx(1 / 2, abs=0.05)
    assert seconds["3"] / seconds["1"] == pytest.approx(1 / 3, abs=0.05)


# -- the text's orientation, as the real text stage reports it --------------------------------------


@pytest.fixture(scope="module")
def text_reader():
    from describe_local.see.text import TextReader
    from describe_local.settings import Settings

    return TextReader.load(Settings.load(environ={}))


def test_turned_text_gets_orientation_advice(text_reader, shared_data: Path):
    from describe_local.images import Photo
    from describe_local.see.quality import orientation_advice

    sign = Image.open(shared_data / "ocr/signs/french.jpg").convert("RGB")
    advice = {}
    for clockwise in (0, 90, 180, 270):
        turned = Photo(sign.rotate(-clockwise, expand=True))  # Pillow turns counter-clockwise
        advice[clockwise] = orientation_advice(text_reader.read(turned).rotation)
    assert advice == {
        0: None,
        90: "The text is sideways; turn the page a quarter turn to the left.",
        180: "The text is upside down.",
        270: "The text is sideways; turn the page a quarter turn to the right.",
    }


def test_one_sideways_line_on_an_upright_receipt_is_no_reason_to_turn_it(text_reader, shared_data: Path):
    from describe_local.images import Photo
    from describe_local.see.quality import assess, orientation_advice

    receipt = Photo(Image.open(shared_data / "ocr/scenes/receipt_sideways.jpg").convert("RGB"))
    assert orientation_advice(text_reader.read(receipt).rotation) is None
    assert assess(receipt) == []
