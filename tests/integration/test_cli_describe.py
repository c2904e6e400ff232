"""``describe-local describe`` as a user runs it: a real process, real photos, real files written."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from describe_local.audio import decode_audio

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "describe_local", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=600,
    )


@pytest.fixture
def isolated(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "models").mkdir()
    (tmp_path / "known_faces").mkdir()
    return {
        "DESCRIBE_LOCAL_MODELS_DIR": str(tmp_path / "models"),
        "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "known_faces"),
    }


def test_help_lists_the_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("describe", "faces"):
        assert command in out.stdout
    describe_help = run_cli("describe", "--help").stdout
    for option in ("--json", "--sequential", "--no-audio", "--gallery", "-o"):
        assert option in describe_help


def test_describe_folder_writes_json_lines_and_mp3s(tmp_path: Path, isolated, shared_data: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("knn_test__obama1.jpg", "knn_test__kit_with_rose.jpg"):
        (photos / name).symlink_to(shared_data / "faces/photos" / name)
    gallery = Path(isolated["DESCRIBE_LOCAL_KNOWN_FACES"])
    enrol = run_cli("faces", "add", "Barack Obama", str(shared_data / "faces/photos/knn_train__obama__obama.jpg"),
                    env=isolated)
    assert enrol.returncode == 0, enrol.stderr
    assert (gallery / "Barack Obama").is_dir()

    out_dir = tmp_path / "mp3"
    done = run_cli("describe", str(photos), "--json", "-o", str(out_dir), env=isolated)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(x["path"]).name for x in lines] == ["knn_test__kit_with_rose.jpg", "knn_test__obama1.jpg"]
    for record in lines:
        for key in ("path", "text", "caption", "people", "unknown_faces", "text_found", "text_language",
                    "timings_ms", "audio", "errors"):
            assert key in record
        assert record["timings_ms"]["total"] > 0
        samples, rate = decode_audio(Path(record["audio"]).read_bytes())
        assert len(samples) / rate > 1.0
    assert lines[1]["people"] == ["Barack Obama"]
    assert lines[0]["people"] == [] and lines[0]["unknown_faces"] == 2
    assert sorted(p.name for p in out_dir.iterdir()) == ["knn_test__kit_with_rose.mp3", "knn_test__obama1.mp3"]


def _truncated_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()[:600]


def _bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (12000, 12000)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def test_bad_inputs_get_one_line_errors_and_nothing_is_written(tmp_path: Path, isolated):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.jpg").write_text("not a photo at all")
    (bad / "empty.png").write_bytes(b"")
    (bad / "truncated.jpg").write_bytes(_truncated_jpeg())
    (bad / "bomb.png").write_bytes(_bomb_png())
    big = bad / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (800, 800, 3), dtype=np.uint8)).save(big)
    missing = bad / "missing.jpg"
    out_dir = tmp_path / "out"
    env = {**isolated, "DESCRIBE_LOCAL_MAX_IMAGE_BYTES": str(big.stat().st_size - 1)}

    done = run_cli("describe", *(str(bad / n) for n in ("text.jpg", "empty.png", "truncated.jpg", "bomb.png",
                                                        "big.png")), str(missing), "-o", str(out_dir), env=env)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("describe-local: error:")]
    expected = {
        "text.jpg": "not an image",
        "empty.png": "empty",
        "truncated.jpg": "truncated",
        "bomb.png": "megapixels",
        "big.png": "over the",
        "missing.jpg": "no such file",
    }
    assert len(errors) == len(expected), done.stderr
    for line, (name, reason) in zip(errors, expected.items(), strict=True):
        assert name in line and reason in line, line
    assert done.stdout == ""
    assert not out_dir.exists()


def test_one_bad_photo_does_not_stop_the_others(tmp_path: Path, isolated, shared_data: Path):
    (tmp_path / "bad.jpg").write_text("nope")
    done = run_cli("describe", str(tmp_path / "bad.jpg"), str(shared_data / "ocr/signs/french.jpg"),
                   "--no-audio", env=isolated)
    assert done.returncode == 3
    assert "bad.jpg" in done.stderr and "french.jpg" in done.stdout
    assert "It reads:" in done.stdout
    # The listener hears, once, why there is no caption; how to install one goes to stderr.
    assert done.stdout.count("I can't describe the scene because no caption model is installed.") == 1
    assert "models pull" not in done.stdout and "models pull" in done.stderr


def test_describing_writes_nothing_in_the_home_folder(tmp_path: Path, isolated, shared_data: Path):
    """Models and caches stay in the project; no library drops telemetry ids or caches in $HOME."""
    home = tmp_path / "home"
    home.mkdir()
    done = run_cli("describe", str(shared_data / "faces/photos/knn_test__obama1.jpg"), "-o", str(tmp_path / "o"),
                   env={**isolated, "HOME": str(home), "XDG_CACHE_HOME": "", "XDG_DATA_HOME": ""})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "knn_test__obama1.mp3").is_file()
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []


def test_describe_with_a_caption_model_imported_into_the_store(tmp_path: Path, isolated, shared_data: Path):
    """A (tiny, random) OFA checkpoint in the released layout goes in through `models import`,
    then captions through the whole pipeline, concurrently with faces and text."""
    import make_tiny_models

    usb = make_tiny_models.write_ofa(tmp_path / "usb" / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0)
    imported = run_cli("models", "import", str(usb), env=isolated)
    assert imported.returncode == 0, imported.stderr
    assert (Path(isolated["DESCRIBE_LOCAL_MODELS_DIR"]) / "ofa-tiny" / "describe-local.json").is_file()

    photos = [str(shared_data / "captions/images/000000000802.jpg"), str(shared_data / "ocr/signs/french.jpg")]
    runs = {}
    for mode in ([], ["--sequential"]):
        done = run_cli("describe", *photos, "--json", "--no-audio", "--beam", "1", *mode, env=isolated)
        assert done.returncode == 0, done.stderr
        runs[bool(mode)] = [json.loads(line) for line in done.stdout.splitlines()]
    for record in runs[False]:
        assert "caption" not in record["errors"]  # installed, loaded and run: no "not installed"
        assert record["timings_ms"]["caption"] > 0
        # Random weights write mostly OFA's <code_*> image tokens, which are never spoken;
        # the stage's result is a string (None would mean it did not run).
        assert isinstance(record["caption"], str) and "<code_" not in record["text"]
    assert "It reads:" in runs[False][1]["text"]
    assert [r["text"] for r in runs[False]] == [r["text"] for r in runs[True]]
