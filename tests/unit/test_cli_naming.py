"""The CLI's pure helpers: names shown on a terminal, JSON lines, MP3 names, the -o check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from describe_local.cli._common import json_line, mp3_namer, shown, write_mp3
from describe_local.errors import ConfigError

# -- shown: what reaches a terminal ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "printed"),
    [
        ("Zoë Saldaña", "Zoë Saldaña"),  # letters of any alphabet are left alone
        ("a?b<c>", "a?b<c>"),
        ("x\x1b[31my", "x\\x1b[31my"),  # a terminal escape sequence, defused
        ("two\nlines\tand\r", "two\\nlines\\tand\\r"),
        ("evil\u202etxt.jpg", "evil\\u202etxt.jpg"),  # right-to-left override
        (os.fsdecode(b"caf\xe9.jpg"), "caf\\xe9.jpg"),  # a byte that is not UTF-8
        ("\x7f\x85", "\\x7f\\x85"),
    ],
)
def test_shown_escapes_control_characters_and_undecodable_bytes(raw: str, printed: str):
    assert shown(raw) == printed
    printed.encode("utf-8")  # always printable on a strict UTF-8 terminal


def test_shown_takes_paths_and_exceptions():
    assert shown(Path(os.fsdecode(b"/tmp/\xff/a\x07.jpg"))) == "/tmp/\\xff/a\\x07.jpg"
    assert shown(ValueError("bad\x1bname")) == "bad\\x1bname"


# -- JSON lines -----------------------------------------------------------------------------------


def test_json_lines_are_valid_utf8_and_say_what_was_escaped():
    record = {"path": os.fsdecode(b"/p/caf\xe9.jpg"), "audio": "/o/x.mp3", "text": "Zoë \x1b", "people": ["Ann"]}
    line = json_line(record)
    line.encode("utf-8")  # strict
    data = json.loads(line)
    assert data["path"] == "/p/caf\\xe9.jpg"
    assert data["escaped"] == ["path"]
    assert data["text"] == "Zoë \x1b"  # JSON escapes control characters itself
    assert "\n" not in line
    assert "escaped" not in json.loads(json_line({"path": "/p/plain.jpg"}))


def test_json_lines_are_ascii_when_the_output_is_not_utf8():
    line = json_line({"text": "Zoë"}, ascii_only=True)
    assert line.isascii() and json.loads(line)["text"] == "Zoë"


# -- MP3 names ----------------------------------------------------------------------------------


def _names(photos: list[str], tmp_path: Path, output: Path | None = None, suffix: str = "") -> list[str]:
    paths = [tmp_path / p for p in photos]
    namer = mp3_namer(output, tmp_path / "out", paths, suffix)
    return [str(namer(p).relative_to(output if output and output.suffix != ".mp3" else tmp_path / "out"))
            for p in paths]


def test_a_unique_stem_names_its_mp3(tmp_path: Path):
    assert _names(["a/x.jpg", "a/y.png"], tmp_path) == ["x.mp3", "y.mp3"]
    assert _names(["car.jpg"], tmp_path, suffix="-answer") == ["car-answer.mp3"]


def test_photos_that_share_a_stem_keep_their_suffix(tmp_path: Path):
    assert _names(["a/x.jpg", "a/x.png", "a/z.jpg"], tmp_path) == ["x.jpg.mp3", "x.png.mp3", "z.mp3"]
    # Case does not make names distinct: the MP3s may land on a case-insensitive disk.
    assert _names(["a/X.jpg", "b/x.png"], tmp_path) == ["X.jpg.mp3", "x.png.mp3"]


def test_the_same_name_in_two_folders_gets_a_number(tmp_path: Path):
    assert _names(["a/x.jpg", "b/x.jpg", "c/x.jpg"], tmp_path) == ["x.jpg.mp3", "x.jpg-2.mp3", "x.jpg-3.mp3"]
    # A photo named twice is spoken twice, into two files.
    assert _names(["a/x.jpg", "a/x.jpg"], tmp_path) == ["x.jpg.mp3", "x.jpg-2.mp3"]


def test_a_generated_name_never_takes_another_photos_name(tmp_path: Path):
    names = _names(["a/x.jpg", "b/x.jpg", "x.jpg-2.jpg", "x.jpg.png"], tmp_path)
    assert len({n.casefold() for n in names}) == 4


def test_output_ending_in_mp3_names_the_one_file(tmp_path: Path):
    target = tmp_path / "answer.mp3"
    assert mp3_namer(target, tmp_path / "out", [tmp_path / "a.jpg"])(tmp_path / "a.jpg") == target
    with pytest.raises(ConfigError, match=r"-o .*answer\.mp3.* one photo.* 2 photos"):
        mp3_namer(target, tmp_path / "out", [tmp_path / "a.jpg", tmp_path / "b.jpg"])
    folder = tmp_path / "folder.mp3"  # a folder that happens to end in .mp3 is a folder
    folder.mkdir()
    assert mp3_namer(folder, tmp_path, [tmp_path / "a.jpg"])(tmp_path / "a.jpg") == folder / "a.mp3"


@pytest.mark.parametrize("case", ["existing file", "under a file", "mp3 under a file", "default under a file"])
def test_an_output_that_cannot_be_used_is_refused_in_one_line(tmp_path: Path, case: str):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep")
    output, default = {
        "existing file": (blocker, tmp_path),
        "under a file": (blocker / "deeper" / "out", tmp_path),
        "mp3 under a file": (blocker / "x.mp3", tmp_path),
        "default under a file": (None, blocker / "out"),
    }[case]
    with pytest.raises(ConfigError) as info:
        mp3_namer(output, default, [tmp_path / "a.jpg"])
    message = str(info.value)
    assert "\n" not in message and "notes.txt" in message
    assert ("-o" in message) if output is not None else ("output_dir" in message)
    assert blocker.read_text() == "keep"


def test_checking_the_output_creates_nothing(tmp_path: Path):
    mp3_namer(tmp_path / "new" / "folder", tmp_path, [tmp_path / "a.jpg"])
    assert not (tmp_path / "new").exists()


def test_write_mp3_makes_the_folder_and_leaves_no_temporary_file(tmp_path: Path):
    target = tmp_path / "out" / "x.mp3"
    assert write_mp3(target, b"ID3data") == target
    assert target.read_bytes() == b"ID3data"
    assert os.listdir(target.parent) == ["x.mp3"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write"):
        write_mp3(blocker / "x.mp3", b"data")


# -- the listener's command line (issue 11): choices, summary, a reader that leaves ---------------


def _rows():
    from describe_local.say.plan import LanguageInfo

    voice = {"key": "en_US-joe-medium", "dialect": "en_US", "quality": "medium", "default": True}
    return [LanguageInfo("en", "English", "built in", True, [voice]),
            LanguageInfo("es", "Spanish", "not installed", False, [])]


def test_a_language_is_checked_by_its_base_and_refused_with_the_codes():
    from describe_local.cli._choices import check_lang

    assert check_lang("es-MX", _rows()).code == "es"
    assert check_lang("EN", _rows()).code == "en"
    with pytest.raises(ConfigError, match="'xx' is not a language .* choose one of en, es "):
        check_lang("xx", _rows())


def test_a_voice_is_refused_with_the_installed_ones_and_how_to_pull_a_real_key():
    from describe_local.cli._choices import check_voice
    from describe_local.errors import ModelNotInstalled

    assert check_voice("en_US-joe-medium", _rows()).code == "en"
    with pytest.raises(ConfigError, match="not a voice.*en_US-joe-medium"):
        check_voice("nonsense", _rows())
    with pytest.raises(ModelNotInstalled, match="models pull es_MX-ald-medium"):
        check_voice("es_MX-ald-medium", _rows())


def test_only_a_caption_model_asked_for_is_checked(tmp_path: Path):
    import argparse

    from describe_local.cli._choices import caption_model_given, check_caption_model
    from describe_local.errors import ModelNotInstalled
    from describe_local.settings import Settings

    default = Settings.load(environ={})
    assert caption_model_given(argparse.Namespace(caption_model=None), default) is None
    assert caption_model_given(argparse.Namespace(caption_model="ofa-base"), default) == "ofa-base"
    assert caption_model_given(argparse.Namespace(), Settings.load(environ={}, caption_model="x")) == "x"
    (tmp_path / "mine").mkdir()
    check_caption_model("mine", tmp_path)  # a name in the store
    check_caption_model(str(tmp_path / "mine"), tmp_path / "elsewhere")  # a folder
    for name, words in (("ofa-medium", "models pull ofa-medium"), ("../nowhere", "no such folder"),
                        ("whatever", "not one describe-local can pull")):
        with pytest.raises(ModelNotInstalled, match=words):
            check_caption_model(name, tmp_path)


def test_the_closing_summary(capsys):
    from describe_local.cli.describe import _print_summary

    _print_summary(1, 0, 3.0, read=False)
    assert capsys.readouterr().err == ""
    _print_summary(12, 1, 40.8, read=False)
    assert capsys.readouterr().err == "11 photos described, 1 failed, 3.4 s each on average\n"
    _print_summary(2, 0, 1.0, read=True)
    assert capsys.readouterr().err == "2 photos read, 0.5 s each on average\n"


def test_a_reader_that_leaves_ends_the_command_quietly(tmp_path: Path, monkeypatch, capsys):
    """`models list --json | head` once blamed the disk: a broken pipe is no store error."""
    import io

    from describe_local import cli

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", Gone())
    assert cli.main(["models", "--models-dir", str(tmp_path), "list", "--json"]) == 141
    assert capsys.readouterr().err == ""
