"""``describe --play`` against a fake audio sink: a player program that keeps what it is given.

The sink stands where ``aplay`` would: it reads raw PCM on stdin and records each write with
its time, so the test hears what a speaker would, and when.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from describe_local.audio import decode_audio

from .test_cli_describe import run_cli

SINK = """\
import sys, time
out, log = open(sys.argv[1], "wb"), open(sys.argv[1] + ".log", "w")
log.write(f"rate {sys.argv[2]}\\n")
while chunk := sys.stdin.buffer.read1(1 << 16):
    out.write(chunk)
    log.write(f"{time.time()} {len(chunk)}\\n")
"""
PHOTO = "faces/photos/knn_test__kit_with_rose.jpg"  # a face, then the backdrop's text: two parts


@pytest.fixture
def isolated(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "models").mkdir()
    (tmp_path / "known_faces").mkdir()
    return {"DESCRIBE_LOCAL_MODELS_DIR": str(tmp_path / "models"),
            "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "known_faces")}


def test_play_speaks_each_part_through_the_player_as_it_comes(tmp_path: Path, isolated, shared_data: Path):
    sink, heard = tmp_path / "sink.py", tmp_path / "heard.pcm"
    sink.write_text(SINK, encoding="utf-8")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(sink))} {shlex.quote(str(heard))} {{rate}}"
    out = tmp_path / "out"
    done = run_cli("describe", str(shared_data / PHOTO), "--play", "-o", str(out),
                   env={**isolated, "DESCRIBE_LOCAL_PLAY_COMMAND": command})
    assert done.returncode == 0, done.stderr
    log = heard.with_name("heard.pcm.log").read_text().splitlines()
    rate = int(log[0].split()[1])
    writes = [(float(t), int(n)) for t, n in (line.split() for line in log[1:])]
    pcm = np.frombuffer(heard.read_bytes(), dtype="<i2")
    mp3 = out / "knn_test__kit_with_rose.mp3"
    written, mp3_rate = decode_audio(mp3.read_bytes())
    assert rate == mp3_rate == 22050
    # What the speaker got is the description's speech, all of it ...
    assert abs(len(pcm) - len(written)) / len(written) < 0.01, (len(pcm), len(written))
    # ... in parts, the first before the description was done (its MP3 is written at the end).
    assert len(writes) >= 2 and writes[0][0] < mp3.stat().st_mtime
    assert "It reads:" in done.stdout


def test_play_with_no_player_says_so_before_describing(tmp_path: Path, isolated, shared_data: Path):
    done = run_cli("describe", str(shared_data / PHOTO), "--play", "-o", str(tmp_path / "out"),
                   env={**isolated, "DESCRIBE_LOCAL_PLAY_COMMAND": "no-such-player-here -r {rate}"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        "describe-local: error: --play: the player 'no-such-player-here' of play_command is not installed")


def test_play_on_a_machine_without_a_sound_device_is_one_line(tmp_path: Path, isolated, shared_data: Path):
    # What aplay does where there is no sound card: a complaint on stderr and status 1.
    command = "sh -c 'echo \"aplay: main:831: audio open error: No such file or directory\" >&2; exit 1'"
    done = run_cli("describe", str(shared_data / PHOTO), "--play", "-o", str(tmp_path / "out"),
                   env={**isolated, "DESCRIBE_LOCAL_PLAY_COMMAND": command})
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("describe-local: error:")]
    assert len(errors) == 1 and "cannot play sound on this machine" in errors[0], done.stderr
    assert "audio open error" in errors[0] and "Traceback" not in done.stderr


def test_play_refuses_options_it_cannot_honour(isolated, shared_data: Path):
    done = run_cli("describe", str(shared_data / PHOTO), "--play", "--no-audio", env=isolated)
    assert done.returncode == 2 and "--play" in done.stderr
