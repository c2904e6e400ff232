"""``describe --jobs 2`` and ``--jsonl/--resume`` as a user runs them, with the real models on the
real photos: the same text per photo as one process, MP3 names as one process gives them, and an
interrupted run (the driver killed) finished by ``--resume`` with every photo exactly once.

The helpers here (the tiny caption model, the one-process baseline) are shared with
``test_collection_ray.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from describe_local.audio import decode_audio

ROOT = Path(__file__).resolve().parents[2]
# Greedy search: the same words as beam search would give in both runs, in less time.
COMMON = ("--json", "--no-audio", "--beam", "1")
_BASELINE: dict[str, dict[str, str]] = {}


def collection_env(root: Path) -> dict[str, str]:
    """An environment with its own model store (a tiny random OFA caption model, seeded so that
    photos get different captions) and an empty gallery; written once per ``root``."""
    models, gallery = root / "models", root / "known_faces"
    if not (models / "ofa-tiny" / "config.json").is_file():
        import make_tiny_models

        models.mkdir(parents=True, exist_ok=True)
        gallery.mkdir(parents=True, exist_ok=True)
        make_tiny_models.write_ofa(models / "ofa-tiny", "ofa-tiny", seed=2, scale=6.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    env.update(DESCRIBE_LOCAL_MODELS_DIR=str(models), DESCRIBE_LOCAL_KNOWN_FACES=str(gallery))
    return env


def cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "describe_local", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


def start_cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "describe_local", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def folders(shared_data: Path) -> list[str]:
    """The 77 photos: the 55 COCO photos and the 22 face photos."""
    return [str(shared_data / "captions" / "images"), str(shared_data / "faces" / "photos")]


def some_photos(shared_data: Path, folder: str, count: int) -> list[str]:
    """The first ``count`` photos of ``folder`` (under the shared data), as paths the baseline knows."""
    return [str(p) for p in sorted((shared_data / folder).iterdir()) if p.suffix in {".jpg", ".jpeg", ".png"}][:count]


def baseline(root: Path, shared_data: Path) -> dict[str, str]:
    """The text of each of the 77 photos from one process (today's loop), computed once."""
    key = str(root)
    if key not in _BASELINE:
        done = cli("describe", *folders(shared_data), *COMMON, env=collection_env(root))
        assert done.returncode == 0, done.stderr[-2000:]
        _BASELINE[key] = {r["path"]: r["text"] for r in json_lines(done.stdout)}
        assert len(_BASELINE[key]) == 77
    return _BASELINE[key]


@pytest.fixture(scope="session")
def collection_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the session, the same from every module that asks (the baseline is kept by it)."""
    root = tmp_path_factory.getbasetemp() / "collection"
    root.mkdir(exist_ok=True)
    return root


def wait_for_lines(path: Path, count: int, process: subprocess.Popen, limit_s: float = 300) -> int:
    """Wait until ``path`` holds ``count`` lines (or the process ends); the lines it holds."""
    deadline = time.monotonic() + limit_s
    lines = 0
    while time.monotonic() < deadline and process.poll() is None:
        lines = path.read_bytes().count(b"\n") if path.exists() else 0
        if lines >= count:
            break
        time.sleep(0.2)
    return lines


def test_two_jobs_describe_each_photo_as_one_process_does(collection_root: Path, shared_data: Path, tmp_path: Path):
    expected = baseline(collection_root, shared_data)
    output = tmp_path / "out.jsonl"
    started = time.monotonic()
    done = cli("describe", *folders(shared_data), *COMMON, "--jobs", "2", "--jsonl", str(output),
               env=collection_env(collection_root))
    assert done.returncode == 0, done.stderr[-2000:]
    records = json_lines(done.stdout)
    assert [r["path"] for r in records] == list(expected)  # input order
    assert {r["path"]: r["text"] for r in records} == expected
    assert len({r["caption"] for r in records}) > 10  # the captions differ from photo to photo
    on_disk = json_lines(output.read_text())
    assert sorted((r["sha256"], r["path"]) for r in on_disk) == sorted((r["sha256"], r["path"]) for r in records)
    print(f"--jobs 2: 77 photos in {time.monotonic() - started:.0f} s")


def test_an_interrupted_run_is_finished_by_resume_with_each_photo_once(collection_root: Path, shared_data: Path,
                                                                       tmp_path: Path):
    expected = baseline(collection_root, shared_data)
    photos = some_photos(shared_data, "faces/photos", 12)
    wanted = {p: expected[p] for p in photos}
    env = collection_env(collection_root)
    output = tmp_path / "out.jsonl"
    args = ("describe", *photos, *COMMON, "--jobs", "2", "--jsonl", str(output))

    first = start_cli(*args, env=env)
    try:
        written = wait_for_lines(output, 4, first)
        assert first.poll() is None, "the run ended before it could be interrupted"
        first.send_signal(signal.SIGKILL)  # no clean-up at all: as a power cut or `kill -9`
    finally:
        first.kill()
        first.communicate()
    assert 4 <= written < len(wanted)
    kept = json_lines(output.read_bytes().decode().rsplit("\n", 1)[0])
    assert len(kept) < len(wanted)

    second = cli(*args, "--resume", env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    redone = json_lines(second.stdout)
    assert {r["path"] for r in redone}.isdisjoint(r["path"] for r in kept)  # what was done is not redone
    assert "already in" in second.stderr
    on_disk = json_lines(output.read_text())
    assert sorted(r["path"] for r in on_disk) == sorted(wanted)  # every photo, exactly once
    assert {r["path"]: r["text"] for r in on_disk} == wanted


def test_mp3_names_are_those_one_process_gives(collection_root: Path, shared_data: Path, tmp_path: Path):
    photos = tmp_path / "photos"
    for sub in ("a", "b"):
        (photos / sub).mkdir(parents=True)
        (photos / sub / "x.jpg").symlink_to(shared_data / "faces/photos/knn_test__obama1.jpg")
    (photos / "a" / "x.png").symlink_to(shared_data / "faces/photos/alex-lacamoire.png")
    given = [str(photos / "a"), str(photos / "b")]
    env = collection_env(collection_root)

    one = cli("describe", *given, "--json", "--beam", "1", "-o", str(tmp_path / "one"), env=env)
    two = cli("describe", *given, "--json", "--beam", "1", "--jobs", "2", "-o", str(tmp_path / "two"), env=env)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr[-1500:], two.stderr[-1500:])
    names_one = [Path(r["audio"]).name for r in json_lines(one.stdout)]
    names_two = [Path(r["audio"]).name for r in json_lines(two.stdout)]
    assert names_one == names_two == ["x.jpg.mp3", "x.png.mp3", "x.jpg-2.mp3"]
    for name in names_two:
        samples, rate = decode_audio((tmp_path / "two" / name).read_bytes())
        assert len(samples) / rate > 1.0


def test_alt_text_with_two_jobs_matches_one_process(collection_root: Path, shared_data: Path):
    photos = [str(shared_data / "faces/photos" / n) for n in ("knn_test__obama1.jpg", "two_people.jpg")]
    photos += [str(shared_data / "ocr/scenes/mall_sign.jpg"), "/no/such/photo.jpg"]
    env = collection_env(collection_root)
    one = cli("alt-text", *photos, "--beam", "1", env=env)
    two = cli("alt-text", *photos, "--beam", "1", "--jobs", "2", env=env)
    assert one.returncode == two.returncode == 3  # the missing photo
    fields = ("path", "alt", "long_description", "partial", "text_found")
    assert [{k: r[k] for k in fields} for r in json_lines(one.stdout)] == \
        [{k: r[k] for k in fields} for r in json_lines(two.stdout)]
    assert "no such file" in two.stderr
