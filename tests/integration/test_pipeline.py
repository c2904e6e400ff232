"""The whole pipeline on real photos with real models: faces, text, speech, MP3."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from describe_local.audio import decode_audio
from describe_local.errors import ImageError
from describe_local.pipeline import DescribeOptions, Describer
from describe_local.see.faces.gallery import Gallery
from describe_local.settings import Settings
from describe_local.wording import speakable

GALLERY = {
    "Barack Obama": ["knn_train__obama__obama.jpg", "knn_train__obama__obama2.jpg"],
    "Joe Biden": ["knn_train__biden__biden.jpg", "knn_train__biden__biden2.jpg"],
    "Kit Harington": ["knn_train__kit_harington__john1.jpeg", "knn_train__kit_harington__john2.jpeg"],
    "Rose Leslie": ["knn_train__rose_leslie__img1.jpg", "knn_train__rose_leslie__img2.jpg"],
}


@pytest.fixture(scope="module")
def pipeline_settings(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("pipeline")
    (root / "models").mkdir()
    settings = Settings.load(environ={}, known_faces=root / "known_faces", models_dir=root / "models")
    gallery = Gallery.open(settings.known_faces, settings)
    for name, files in GALLERY.items():
        gallery.add(name, [shared_data / "faces/photos" / f for f in files])
    return settings


@pytest.fixture(scope="module")
def describer(pipeline_settings: Settings):
    with Describer.load(pipeline_settings) as d:
        yield d


def test_known_people_are_named_and_spoken(describer: Describer, shared_data: Path):
    result = describer.describe(shared_data / "faces/photos/knn_test__obama_and_biden.jpg")
    assert sorted(result.people) == ["Barack Obama", "Joe Biden"]
    assert result.unknown_faces == 1  # a girl at the lower right, whom no one enrolled
    assert "I recognize 2 people: " in result.text
    assert result.text.endswith("I also see one person I don't recognize.")
    assert "Barack Obama" in result.text and "Joe Biden" in result.text
    # No caption model in this store: reported, not silently skipped.
    assert result.caption is None and result.errors["caption"].startswith("not installed")
    for stage in ("decode", "faces", "text", "compose", "speech", "encode", "total"):
        assert result.timings_ms[stage] >= 0
    assert result.timings_ms["total"] >= result.timings_ms["faces"]

    samples, rate = decode_audio(result.mp3)
    seconds = len(samples) / rate
    words = len(result.text.split())
    assert 1.5 <= words / seconds <= 5.0, (words, seconds)  # speech pace: the audio fits the text


def test_text_in_the_photo_is_read_out(describer: Describer, shared_data: Path):
    result = describer.describe(shared_data / "ocr/signs/french.jpg", DescribeOptions(audio=False))
    assert result.text_found
    assert "LOUVRE" in result.text_found or "Théâtre" in result.text_found
    assert result.text.endswith("It reads: " + speakable(result.text_found))
    assert result.mp3 is None


def test_parallel_and_sequential_give_the_same_text(describer: Describer, shared_data: Path):
    for photo in ("faces/photos/knn_test__kit_with_rose.jpg", "faces/groups/2008_002470.jpg", "ocr/signs/example3.png"):
        parallel = describer.describe(shared_data / photo, DescribeOptions(audio=False))
        sequential = describer.describe(shared_data / photo, DescribeOptions(audio=False, sequential=True))
        assert parallel.text == sequential.text, photo
        assert parallel.errors == sequential.errors


def test_unknown_faces_are_counted(describer: Describer, shared_data: Path):
    result = describer.describe(shared_data / "faces/groups/2008_002470.jpg", DescribeOptions(audio=False))
    assert result.people == [] and result.unknown_faces >= 4
    assert f"I see {result.unknown_faces} people, but I don't recognize them." in result.text


def test_a_stage_over_budget_does_not_sink_the_description(pipeline_settings: Settings, shared_data: Path):
    settings = dataclasses.replace(pipeline_settings, stage_timeout_s=0.01)
    with Describer.load(settings) as describer:
        result = describer.describe(shared_data / "faces/groups/bald_guys.jpg")
    assert "timed out" in result.errors["faces"]
    assert result.people == [] and result.unknown_faces == 0
    assert result.text  # something is still said ...
    assert result.mp3 and len(decode_audio(result.mp3)[0]) > 0  # ... and spoken


def test_a_failing_stage_is_recorded_and_the_rest_is_spoken(
    pipeline_settings: Settings, shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    settings = dataclasses.replace(pipeline_settings, ocr_engine="tesseract")
    with Describer.load(settings, stages=("faces", "text"), speech=False) as describer:
        # Tesseract's language data disappears after loading: the text stage fails for real.
        monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
        result = describer.describe(shared_data / "faces/photos/knn_test__obama1.jpg", DescribeOptions(audio=False))
    assert "Tesseract failed" in result.errors.get("text", "")
    assert result.people == ["Barack Obama"]
    assert result.text == "I recognize one person: Barack Obama. I couldn't read the text in this photo."


def test_bad_photo_raises_a_one_line_error(describer: Describer, tmp_path: Path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    with pytest.raises(ImageError) as info:
        describer.describe(bad)
    assert "\n" not in str(info.value) and "notes.jpg" in str(info.value)


def test_describe_all_goes_on_after_a_bad_photo(describer: Describer, shared_data: Path, tmp_path: Path):
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    good = shared_data / "faces/photos/knn_test__obama1.jpg"
    results = list(describer.describe_all([bad, good], DescribeOptions(audio=False)))
    assert isinstance(results[0][1], ImageError)
    assert results[1][1].people == ["Barack Obama"]
