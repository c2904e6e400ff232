"""The describer's own logic with stand-in stages: ordering, failures, time budgets, the public API.

The stages here are small classes that follow the protocols in
``describe_local.see``; the models themselves are tested in tests/integration.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from describe_local.errors import DescribeLocalError, ImageError, ModelNotInstalled
from describe_local.pipeline import DescribeOptions, Describer, Status
from describe_local.results import Picture
from describe_local.say.plan import SpeechPlanner
from describe_local.say.translate import Translator
from describe_local.say.voices import VoiceCatalogue
from describe_local.see import CaptionStage, FaceStage, ModelAnswer, QuestionAnswerer, TextStage
from describe_local.see.faces.recognize import FaceResult
from describe_local.see.text import TextReading
from describe_local.see.text.result import TextLine
from describe_local.settings import Settings


class Caption:
    name = "stand-in"

    def __init__(self, words: str = "a dog on a sofa", delay_s: float = 0.0) -> None:
        self.words, self.delay_s = words, delay_s

    def caption(self, image: Image.Image) -> str:
        time.sleep(self.delay_s)
        return self.words


class Answering(Caption):
    def answer(self, image: Image.Image, question: str) -> ModelAnswer:
        return ModelAnswer(f"{image.size[0]} pixels wide", ("a note on how it came about",))


class Faces:
    def __init__(self, people: list[str], unknown: int = 0) -> None:
        self.result = FaceResult(people=people, unknown=unknown)
        self.galleries: list[object] = []

    def recognize(self, photo) -> FaceResult:
        return self.result

    def reload(self, gallery) -> int:
        self.galleries.append(gallery)
        return len(self.result.people)


class Broken:
    """A stage that fails the way a real one can: an exception with a multi-line message."""

    def read(self, photo) -> TextReading:
        raise RuntimeError("tesseract exploded\nwith a long traceback-like tail")


class Blocked:
    """A stage that does not come back until released (a hung child process, say)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def read(self, photo) -> TextReading:
        self.release.wait(10)
        return TextReading(text="too late")


class Text:
    def __init__(self, text: str, language: str | None = "en", delay_s: float = 0.0) -> None:
        self.text, self.language, self.delay_s = text, language, delay_s

    def read(self, photo) -> TextReading:
        time.sleep(self.delay_s)
        return TextReading(text=self.text, language=self.language)


def _png(size: tuple[int, int] = (40, 30)) -> bytes:
    """A small photo: noise, as a camera's sensor gives (an even colour would be a blank picture)."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(60, 200, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _dark_png() -> bytes:
    """A photo taken in the dark: mean luma about 20, with the sensor's noise (not one even tone)."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(1).integers(0, 40, size=(48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _planner(settings: Settings) -> SpeechPlanner:
    """English only: no translation packages, and the voice catalogue (voices load only to speak)."""
    return SpeechPlanner(Translator({}), VoiceCatalogue.load(settings))


@pytest.fixture
def describer_for(settings: Settings):
    made: list[Describer] = []

    def make(**stages) -> Describer:
        describer = Describer(settings, planner=_planner(settings), **stages)
        made.append(describer)
        return describer

    yield make
    for describer in made:
        describer.close()


NO_AUDIO = DescribeOptions(audio=False)


def test_the_stand_ins_follow_the_stage_protocols():
    assert isinstance(Caption(), CaptionStage) and not isinstance(Caption(), QuestionAnswerer)
    assert isinstance(Answering(), QuestionAnswerer)
    assert isinstance(Faces([]), FaceStage)
    assert isinstance(Text(""), TextStage)


def test_findings_are_spoken_caption_first_then_people_then_text(describer_for):
    describer = describer_for(caption=Caption(), faces=Faces(["Ada", "Grace"], unknown=1), text=Text("EXIT"))
    result = describer.describe(_png(), NO_AUDIO)

    assert result.caption == "a dog on a sofa" and result.people == ["Ada", "Grace"] and result.unknown_faces == 1
    assert result.text.index("A dog on a sofa") < result.text.index("Ada") < result.text.index("EXIT")
    assert result.errors == {} and result.mp3 is None and result.language == "en"
    assert {stage: state.status for stage, state in result.stages.items()} == dict.fromkeys(
        ("caption", "faces", "text"), Status.OK)
    assert {"decode", "caption", "faces", "text", "compose", "translate", "total"} <= set(result.timings_ms)
    assert result.findings()["people"] == ["Ada", "Grace"] and "path" not in result.findings()


def test_a_failing_stage_is_reported_in_one_line_and_the_rest_is_spoken(describer_for):
    describer = describer_for(caption=Caption(), faces=Faces(["Ada"]), text=Broken())
    result = describer.describe(_png(), NO_AUDIO)

    assert result.errors == {"text": "RuntimeError: tesseract exploded"}
    assert result.stages["text"].status is Status.FAILED and result.stages["text"].went_wrong
    assert result.to_json()["stages"]["text"] == {
        "status": "failed", "detail": "RuntimeError: tesseract exploded", "ms": round(result.stages["text"].ms, 1)}
    assert "Ada" in result.text and "A dog on a sofa" in result.text and result.text_found is None


def test_a_stage_past_its_budget_is_dropped_and_does_not_hold_up_the_next_photo(settings, describer_for):
    settings.stage_timeout_s = 0.3
    blocked = Blocked()
    describer = describer_for(caption=Caption(), text=blocked)
    try:
        for _ in range(2):  # the second photo must not wait for the first photo's hung stage
            t0 = time.perf_counter()
            result = describer.describe(_png(), NO_AUDIO)
            assert time.perf_counter() - t0 < 2.0
            assert result.errors == {"text": "timed out after 0.3 s"}
            assert result.stages["text"].status is Status.TIMED_OUT
            assert result.caption == "a dog on a sofa"
    finally:
        blocked.release.set()


def test_stages_overlap_unless_sequential(describer_for):
    describer = describer_for(caption=Caption(delay_s=0.3), faces=Faces([]), text=Text("", delay_s=0.3))

    t0 = time.perf_counter()
    describer.describe(_png(), NO_AUDIO)
    parallel = time.perf_counter() - t0
    t0 = time.perf_counter()
    describer.describe(_png(), DescribeOptions(audio=False, sequential=True))
    sequential = time.perf_counter() - t0

    assert parallel < 0.5 <= sequential


def test_nothing_found_says_so(describer_for):
    result = describer_for(faces=Faces([]), text=Text("")).describe(_png(), NO_AUDIO)
    assert result.text == "I could not find anything to describe in this photo."


def test_an_undecodable_photo_raises_image_error_and_describe_all_goes_on(describer_for, tmp_path: Path):
    describer = describer_for(caption=Caption())
    bad, good = tmp_path / "bad.jpg", tmp_path / "good.png"
    bad.write_bytes(b"not an image")
    good.write_bytes(_png())
    with pytest.raises(ImageError):
        describer.describe(bad, NO_AUDIO)
    results = list(describer.describe_all([bad, good], NO_AUDIO))
    assert isinstance(results[0][1], ImageError) and results[1][1].caption == "a dog on a sofa"


def test_not_installed_stages_are_reported_with_every_result_and_in_status(settings):
    with Describer(settings, planner=_planner(settings), faces=Faces([]),
                   off={"caption": "no caption model"}) as describer:
        result = describer.describe(_png(), NO_AUDIO)
        status = describer.status()
    assert result.errors == {"caption": "not installed: no caption model"}  # derived, as clients read it
    assert result.stages["caption"].status is Status.OFF and result.stages["caption"].detail == "no caption model"
    assert not status["caption"].loaded and status["caption"].detail == "no caption model"
    assert status["caption"].status is Status.OFF and status["faces"].status is Status.OK
    assert status["faces"].loaded and not status["text"].loaded and not status["speech"].loaded


def test_audio_without_a_voice_is_an_error_entry_not_a_crash(settings):
    with Describer(settings, planner=_planner(settings), caption=Caption(), speech=False) as describer:
        result = describer.describe(_png(), DescribeOptions(audio=True))
    assert result.mp3 is None and "speech is off" in result.errors["speech"]


def test_ask_uses_a_model_that_answers_and_refuses_one_that_does_not(describer_for):
    answer = describer_for(caption=Answering()).ask(_png((64, 10)), "  how   wide? ", NO_AUDIO)
    assert answer.answer == "64 pixels wide" and answer.question == "how wide?"
    assert answer.notes == ["a note on how it came about"]

    with pytest.raises(ModelNotInstalled, match="cannot answer questions"):
        describer_for(caption=Caption()).ask(_png(), "why?", NO_AUDIO)
    with pytest.raises(DescribeLocalError, match="question is empty"):
        describer_for(caption=Answering()).ask(_png(), "   ", NO_AUDIO)


def test_ask_without_a_caption_model_says_how_to_install_one(settings):
    with Describer(settings, off={"caption": "pull ofa-tiny"}) as describer, \
            pytest.raises(ModelNotInstalled, match="^pull ofa-tiny$"):
        describer.ask(_png(), "why?", NO_AUDIO)


def test_the_gallery_is_opened_with_the_describers_own_settings(tmp_path: Path, make_settings, monkeypatch):
    """The bug this guards against: the gallery re-read the settings from the environment."""
    monkeypatch.setenv("DESCRIBE_LOCAL_FACE_MAX_SIDE", "1600")
    monkeypatch.setenv("DESCRIBE_LOCAL_KNOWN_FACES", str(tmp_path / "elsewhere"))
    settings = make_settings(tmp_path, face_max_side=800)
    faces = Faces(["Ada"])
    with Describer(settings, faces=faces) as describer:
        assert describer.reload_gallery() == 1
    (gallery,) = faces.galleries
    assert gallery.settings is settings
    assert gallery.folder == settings.known_faces and gallery.settings.face_max_side == 800


def test_reload_gallery_without_faces_is_harmless(settings):
    with Describer(settings) as describer:
        assert describer.reload_gallery() == 0


def test_languages_without_translations_is_english_with_the_bundled_voice(settings):
    with Describer(settings, planner=_planner(settings)) as describer:
        languages = describer.languages()
    assert [info.code for info in languages] == ["en"]
    assert languages[0].ready and languages[0].voices[0]["key"] == "en_US-joe-medium"


def test_load_refuses_an_unknown_stage(settings):
    with pytest.raises(ValueError, match="unknown stages: colour"):
        Describer.load(settings, stages=("caption", "colour"), speech=False)


def test_a_gallery_changed_by_anyone_is_reloaded_before_the_next_photo(settings):
    faces = Faces(["Ada"])
    person = settings.known_faces / "Ada"
    with Describer(settings, faces=faces) as describer:
        describer.describe(_png(), NO_AUDIO)
        assert faces.galleries == []  # unchanged since load: no reload
        person.mkdir()
        (person / "ada.jpg").write_bytes(_png())
        describer.describe(_png(), NO_AUDIO)
        assert len(faces.galleries) == 1
        describer.describe(_png(), NO_AUDIO)
        assert len(faces.galleries) == 1  # seen once, not reloaded again
        (person / "ada.jpg").unlink()
        person.rmdir()
        result = describer.describe(_png(), NO_AUDIO)
        assert len(faces.galleries) == 2 and "gallery" in result.timings_ms


def test_the_gallery_stamp_sees_photos_added_replaced_and_removed(tmp_path: Path):
    from describe_local.see.faces.watch import gallery_stamp

    assert gallery_stamp(tmp_path / "missing") == ()
    (tmp_path / "Ada").mkdir()
    first = gallery_stamp(tmp_path)
    (tmp_path / ".encodings.json").write_text("{}")  # the cache is not a change
    assert gallery_stamp(tmp_path) == first
    (tmp_path / "Ada" / "a.jpg").write_bytes(b"x")
    second = gallery_stamp(tmp_path)
    assert second != first
    (tmp_path / "Ada" / "a.jpg").write_bytes(b"xy")  # replaced in place: another size
    assert gallery_stamp(tmp_path) != second


class Lines:
    """A text stage that reads ``count`` numbered lines."""

    def __init__(self, count: int) -> None:
        from describe_local.see.text import TextLine

        self.lines = [TextLine(f"line {i}", [0, 10 * i, 50, 10 * i + 8], 0.9, 0) for i in range(1, count + 1)]

    def read(self, photo) -> TextReading:
        return TextReading(text="\n".join(line.text for line in self.lines), language="en", lines=self.lines)


def test_a_description_speaks_the_first_lines_and_says_how_many_more(settings, describer_for):
    settings.spoken_text_lines = 3
    result = describer_for(caption=Caption(), text=Lines(10)).describe(_png(), NO_AUDIO)
    assert "line 3" in result.text and "line 4" not in result.text
    assert result.text.endswith("And 7 more lines.")
    assert result.text_found.splitlines() == [f"line {i}" for i in range(1, 11)]
    assert [line["text"] for line in result.text_lines] == [f"line {i}" for i in range(1, 11)]
    assert result.text_lines[1] == {"text": "line 2", "box": [0, 20, 50, 28], "confidence": 0.9, "block": 0}


def test_read_speaks_all_the_text_and_nothing_else(settings, describer_for):
    settings.spoken_text_lines = 3
    describer = describer_for(caption=Caption(), faces=Faces(["Ada"]), text=Lines(10))
    result = describer.read(_png(), NO_AUDIO)
    assert "line 10" in result.text and "more line" not in result.text
    assert "Ada" not in result.text and "dog" not in result.text and result.caption is None
    assert set(result.timings_ms) >= {"text"} and "caption" not in result.timings_ms
    assert describer_for(text=Lines(0)).read(_png(), NO_AUDIO).text == "I found no text in this photo."


def test_a_dark_photo_is_said_to_be_dark_first(describer_for):
    result = describer_for(caption=Caption()).describe(_dark_png(), NO_AUDIO)
    assert result.guidance == ["The photo is very dark."]
    assert result.text.startswith("The photo is very dark. A dog on a sofa.")


def test_a_stage_that_is_off_is_told_in_full_once_then_briefly_where_nothing_else_was_found(settings):
    with Describer(settings, planner=_planner(settings), faces=Faces([]), text=Text(""),
                   off={"caption": "no caption model"}) as describer:
        first, second = (describer.describe(_png(), NO_AUDIO) for _ in range(2))
    assert first.text == ("I can't describe the scene because no caption model is installed. "
                          "I found no people and no text.")
    assert second.text == "No scene description: no caption model. I found no people and no text."
    assert second.stages["caption"].status is Status.OFF  # the JSON still says it, every time


def test_after_the_first_time_a_stage_that_is_off_is_not_said_beside_findings(settings):
    with Describer(settings, planner=_planner(settings), faces=Faces(["Ada"]), text=Broken(),
                   off={"caption": "no caption model"}) as describer:
        describer.describe(_png(), NO_AUDIO)
        later = describer.describe(_png(), NO_AUDIO)
    # A failure is said every time; a stage that is off, not again.
    assert later.text == "I recognize one person: Ada. I couldn't read the text in this photo."


def test_parts_are_told_in_order_as_soon_as_each_is_ready(describer_for):
    describer = describer_for(caption=Caption(), faces=Faces(["Ada"], unknown=0), text=Text("EXIT", delay_s=0.6))
    started = time.perf_counter()
    parts = []
    for part in describer.tell(_png(), NO_AUDIO):
        parts.append((part, time.perf_counter() - started))
    *said, (description, _) = parts
    assert [p.text for p, _ in said] == ["A dog on a sofa.", "I recognize one person: Ada.",
                                         "There was text found in the image as well. It reads: EXIT"]
    assert said[0][1] < 0.4 <= said[-1][1]  # the caption is out before the slow text stage is done
    assert description.text == " ".join(p.text for p, _ in said)


def test_parts_keep_their_order_when_a_later_stage_finishes_first(describer_for):
    describer = describer_for(caption=Caption(delay_s=0.3), faces=Faces([], unknown=2), text=Text("EXIT"))
    texts = [part.text for part in describer.tell(_png(), NO_AUDIO)]
    assert texts[0] == "A dog on a sofa." and texts[1].startswith("I see 2 people") and "EXIT" in texts[2]


def test_read_text_ends_its_sentence_before_the_count_of_lines_left(describer_for):
    lines = [TextLine(f"line {i}", [0, i * 10, 50, i * 10 + 8], 0.9, 0) for i in range(8)]

    class Lines:
        def read(self, photo) -> TextReading:
            return TextReading(text="\n".join(line.text for line in lines), language="en", lines=lines)

    result = describer_for(text=Lines()).describe(_png(), NO_AUDIO)
    assert result.text.endswith(" line 5. And 2 more lines."), result.text  # cut at a line end, then a full stop


def test_advice_alone_is_not_taken_for_a_description(describer_for):
    result = describer_for(faces=Faces([]), text=Text("")).describe(_dark_png(), NO_AUDIO)
    assert result.guidance and result.text.endswith("I could not find anything to describe in this photo.")


def _screenshot_png() -> bytes:
    """A page as a screen draws it: one flat background, lines of dark 'letters' (lossless)."""
    pixels = np.full((300, 400, 3), 250, dtype=np.uint8)
    for y in range(20, 280, 20):
        for x in range(20, 380, 7):
            pixels[y:y + 9, x:x + 3] = 20
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_screenshot_is_read_not_captioned_and_a_blank_picture_said_blank(describer_for):
    describer = describer_for(caption=Caption(), faces=Faces([]), text=Text("EXIT"))
    page = describer.describe(_screenshot_png(), NO_AUDIO)
    assert page.picture in (Picture.SCREENSHOT, Picture.PAGE)
    assert page.text.startswith(("This looks like a screenshot. It reads: EXIT", "This looks like a page of text. "
                                                                                 "It reads: EXIT"))
    assert "caption" not in page.stages and page.caption is None and "dog" not in page.text
    blank = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 90, 200)).save(blank, format="PNG")
    said = describer.describe(blank.getvalue(), NO_AUDIO)
    assert said.picture is Picture.BLANK and said.text == "The picture is blank (all blue)."
    photo = describer.describe(_png(), NO_AUDIO)
    assert photo.picture is Picture.PHOTO and photo.caption == "a dog on a sofa"
    checked_off = describer.describe(_screenshot_png(), dataclasses.replace(NO_AUDIO, check_picture=False))
    assert checked_off.picture is Picture.PHOTO and checked_off.caption == "a dog on a sofa"
