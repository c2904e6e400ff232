"""Stages that fail or hang, and a gallery changed behind the server's back, with the real models."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from describe_local.pipeline import DescribeOptions, Describer
from describe_local.results import Status
from describe_local.see.faces.gallery import Gallery
from describe_local.server import create_app
from describe_local.server.running import ServerThread
from describe_local.settings import Settings

PHOTOS = "faces/photos"
NO_AUDIO = DescribeOptions(audio=False)


@pytest.fixture(scope="module")
def gallery_settings(shared_data: Path, tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("watch"), stage_timeout_s=4.0)
    gallery = Gallery.open(settings.known_faces, settings)
    gallery.add("Barack Obama", [shared_data / PHOTOS / "knn_train__obama__obama.jpg"])
    gallery.add("Joe Biden", [shared_data / PHOTOS / "knn_train__biden__biden.jpg"])
    return settings


@pytest.fixture(scope="module")
def describer(gallery_settings: Settings) -> Iterator[Describer]:
    with Describer.load(gallery_settings, stages=("faces",), speech=False) as loaded:
        yield loaded


def test_a_stopped_face_process_is_killed_and_replaced_and_the_listener_is_told(describer, shared_data):
    photo = shared_data / PHOTOS / "knn_test__obama1.jpg"
    assert describer.describe(photo, NO_AUDIO).people == ["Barack Obama"]
    worker = describer.faces.worker
    stopped = worker.pid
    os.kill(stopped, signal.SIGSTOP)
    try:
        t0 = time.perf_counter()
        result = describer.describe(photo, NO_AUDIO)
        waited = time.perf_counter() - t0
    finally:
        with_pid_gone = not _alive(stopped)
        if not with_pid_gone:
            os.kill(stopped, signal.SIGCONT)
    assert waited < describer.settings.stage_timeout_s + 2
    assert "faces" in result.errors and result.people == []
    assert "I couldn't check for people in this photo." in result.text
    assert "could not find anything" not in result.text

    deadline = time.monotonic() + 10  # the watchdog kills it at the stage budget
    while _alive(stopped) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(stopped)
    again = describer.describe(photo, NO_AUDIO)  # a new child takes the next photo
    assert again.people == ["Barack Obama"] and again.errors == {}
    assert worker.pid != stopped


def test_a_person_removed_by_hand_is_not_named_by_the_running_server(describer, gallery_settings, shared_data):
    server = ServerThread(create_app(gallery_settings, describer)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            def people() -> list[str]:
                with (shared_data / PHOTOS / "knn_test__obama_and_biden.jpg").open("rb") as fh:
                    response = client.post("/api/describe", files={"photo": ("p.jpg", fh, "image/jpeg")})
                assert response.status_code == 200, response.text
                return response.json()["people"]

            assert sorted(people()) == ["Barack Obama", "Joe Biden"]
            shutil.rmtree(gallery_settings.known_faces / "Barack Obama")  # by hand, not through the server
            assert people() == ["Joe Biden"]
            gallery = Gallery.open(gallery_settings.known_faces, gallery_settings)  # as the CLI would
            gallery.add("Barack Obama", [shared_data / PHOTOS / "knn_train__obama__obama2.jpg"])
            assert sorted(people()) == ["Barack Obama", "Joe Biden"]
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_on_demand_a_face_process_that_cannot_start_fails_only_the_faces_stage(gallery_settings, shared_data,
                                                                                tmp_path, monkeypatch):
    # The child finds this dlib first on its path (the parent never imports dlib itself).
    (tmp_path / "dlib.py").write_text("raise ImportError('this dlib is broken on purpose')\n", encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with Describer.load(gallery_settings, stages=("faces", "text"), speech=False, on_demand=True) as describer:
        result = describer.describe(shared_data / "ocr/signs/french.jpg", NO_AUDIO)
    assert "could not start" in result.errors["faces"] and "broken on purpose" in result.errors["faces"]
    assert result.stages["text"].status is Status.OK and result.text_found  # the other stage was not held up
    assert "I couldn't check for people in this photo." in result.text
