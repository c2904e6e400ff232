"""Stages on demand: a model loaded just before its run and let go after, one at a time."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import threading
import time

import pytest

from describe_local.errors import FaceWorkerError, ModelNotInstalled, OcrNotInstalled
from describe_local.see.loading import OnDemandCaption, OnDemandText, PendingFaces, load_stages


class Model:
    """A stage's model that counts how many are loaded at once (the test's own stand-in for a load)."""

    loaded = 0
    most = 0
    lock = threading.Lock()

    def __init__(self) -> None:
        with Model.lock:
            Model.loaded += 1
            Model.most = max(Model.most, Model.loaded)
        self.closed = False

    def close(self) -> None:
        with Model.lock:
            Model.loaded -= 1
        self.closed = True

    def caption(self, image) -> str:
        time.sleep(0.02)  # long enough for another thread to try its turn
        return "a caption"

    def read(self, photo) -> str:
        time.sleep(0.02)
        return "some text"


@pytest.fixture
def stand_ins() -> tuple[OnDemandCaption, OnDemandText, threading.Lock, list[Model]]:
    """A caption and a text stand-in sharing one turn, and the models they have made so far."""
    turn = threading.Lock()
    made: list[Model] = []

    def load() -> Model:
        made.append(Model())
        return made[-1]

    return OnDemandCaption(load, turn, "ofa-onnx:tiny"), OnDemandText(load, turn), turn, made


def test_stand_ins_sharing_a_turn_never_hold_two_models_and_close_each_after_its_run(stand_ins):
    caption, text, _, made = stand_ins
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(caption.caption(None))) for _ in range(4)]
    threads += [threading.Thread(target=lambda: results.append(text.read(None))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["a caption"] * 4 + ["some text"] * 4
    assert len(made) == 8 and all(model.closed for model in made)
    assert Model.most == 1 and Model.loaded == 0


def test_a_model_that_cannot_answer_questions_says_so_on_demand():
    caption = OnDemandCaption(Model, threading.Lock(), "git:tiny")
    with pytest.raises(ModelNotInstalled, match="git:tiny cannot answer questions"):
        caption.answer(None, "what colour is it?")


def test_a_missing_text_language_is_told_when_the_stages_load_not_after_the_caption(settings):
    settings.ocr_languages = "eng+xyz"
    with pytest.raises(OcrNotInstalled, match="xyz"):
        load_stages(settings, ["text"], lambda _message: None, on_demand=True)


def test_a_preloaded_model_serves_its_first_use_and_holds_the_turn_until_then(stand_ins):
    caption, text, turn, made = stand_ins
    caption.preload()
    assert len(made) == 1 and turn.locked()  # the text stage waits for the caption's run
    assert caption.caption(None) == "a caption"
    assert len(made) == 1 and made[0].closed and not turn.locked()
    assert text.read(None) == "some text" and len(made) == 2
    caption.preload()
    caption.close()  # never used (the photo could not be decoded): let go, and the turn with it
    assert made[-1].closed and not turn.locked()


def test_the_setting_one_puts_every_describer_on_demand(settings):
    from describe_local.pipeline import Describer

    settings.models_in_memory = "one"
    with Describer.load(settings, stages=("text",), speech=False) as describer:  # as the server loads it
        assert isinstance(describer.text, OnDemandText)
    settings.models_in_memory = "auto"
    with Describer.load(settings, stages=("text",), speech=False) as describer:
        assert not isinstance(describer.text, OnDemandText)


class Faces:
    """A faces stage that says what it was asked (the test's own stand-in for the face child)."""

    def __init__(self) -> None:
        self.closed = False

    def recognize(self, photo) -> str:
        return f"faces in {photo}"

    def reload(self, gallery) -> int:
        return len(gallery)

    def close(self) -> None:
        self.closed = True


def test_pending_faces_wait_for_the_child_then_answer_and_close_it():
    starting: cf.Future = cf.Future()
    pending = PendingFaces(starting)
    answers: list[str] = []
    use = threading.Thread(target=lambda: answers.append(pending.recognize("dogs.jpg")))
    use.start()
    time.sleep(0.05)
    assert use.is_alive() and not answers  # the child has not started yet
    faces = Faces()
    starting.set_result(faces)
    use.join(5)
    assert answers == ["faces in dogs.jpg"] and pending.reload(["Ann", "Bo"]) == 2
    pending.close()
    assert faces.closed


def test_pending_faces_whose_child_could_not_start_fail_their_use_and_close_quietly():
    starting: cf.Future = cf.Future()
    starting.set_exception(FaceWorkerError("the face detection process could not start: no dlib"))
    pending = PendingFaces(starting)
    with pytest.raises(FaceWorkerError, match="could not start: no dlib"):
        pending.recognize("dogs.jpg")
    pending.close()  # nothing to close, nothing raised


def test_on_demand_the_faces_stage_is_not_waited_for_at_load(settings):
    with contextlib.closing(load_stages(settings, ["faces"], lambda _message: None, on_demand=True)) as loaded:
        assert isinstance(loaded.faces, PendingFaces)
    with contextlib.closing(load_stages(settings, ["faces"], lambda _message: None)) as loaded:
        assert loaded.faces is not None and not isinstance(loaded.faces, PendingFaces)
