"""A stage's state is a value: every front end reports it right whatever the words say.

The details below are worded to fool any reader that parses text (a stage that is off
says "RuntimeError ... failed", one that failed says "not installed"), and the prefix of
the derived ``errors`` entry is changed too; each front end must still tell off from failed.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from describe_local import results
from describe_local.alt_text.wording import alt_text
from describe_local.cli import _caption
from describe_local.cli.describe import _print_record
from describe_local.cli.serve import report_when_ready
from describe_local.errors import ModelNotInstalled
from describe_local.pipeline import DescribeOptions, Describer, Status
from describe_local.video import describe as video
from describe_local.video.shots import Shot

from .test_pipeline import Faces, _planner, _png

OFF_WORDS = "RuntimeError: the caption stage failed and timed out after 3 s"
FAILED_WORDS = "not installed: the text stage is not installed"
TEXT_DETAIL = f"RuntimeError: {FAILED_WORDS}"  # as the stage runner words a failure


class MisleadingText:
    """A text stage whose failure reads like a stage that is not installed."""

    def read(self, photo):
        raise RuntimeError(FAILED_WORDS)


@pytest.fixture
def described(settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(results, "_OFF_PREFIX", "FAILED >> ")  # the derived wording changes too
    with Describer(settings, planner=_planner(settings), faces=Faces([]), text=MisleadingText(),
                   off={"caption": OFF_WORDS}) as describer:
        yield describer, describer.describe(_png(), DescribeOptions(audio=False))


def test_the_describer_carries_the_states_as_values(described):
    describer, result = described
    assert result.stages["caption"].status is Status.OFF and result.stages["caption"].detail == OFF_WORDS
    assert result.stages["text"].status is Status.FAILED and result.stages["text"].detail == TEXT_DETAIL
    assert result.stages["faces"].status is Status.OK
    assert result.errors["caption"] == f"FAILED >> {OFF_WORDS}"  # derived in one place, from the state
    assert result.to_json()["stages"]["caption"]["status"] == "off"  # the JSON the CLI and the web API give
    assert result.to_json()["stages"]["text"]["status"] == "failed"
    status = describer.status()
    assert status["caption"].status is Status.OFF and status["caption"].detail == OFF_WORDS
    assert status["caption"].to_json()["loaded"] is False


def test_compose_says_off_and_failed_in_their_own_words(described):
    _, result = described
    assert "I can't describe the scene because no caption model is installed." in result.text
    assert "I couldn't read the text in this photo." in result.text
    assert "I couldn't describe the scene" not in result.text and "text reading is not installed" not in result.text


def test_the_cli_lists_the_failed_stage_only(described, capsys: pytest.CaptureFixture[str]):
    _, result = described
    _print_record(result.to_json(), as_json=False)  # also how --jobs/--ray records are printed
    out = capsys.readouterr().out
    assert f"(text failed: {TEXT_DETAIL})" in out
    assert "caption failed" not in out


def test_the_cli_caption_note_and_error(described, settings, capsys: pytest.CaptureFixture[str]):
    describer, _ = described
    _caption.check_caption(describer, settings, "describe", wanted=None, note=True)
    assert "no caption model is installed" in capsys.readouterr().err
    with pytest.raises(ModelNotInstalled, match="^RuntimeError: the caption stage failed"):
        _caption.check_caption(describer, settings, "alt-text", wanted="ofa-tiny", note=True)


def test_serve_warns_of_the_stage_that_is_off(described, caplog: pytest.LogCaptureFixture):
    describer, _ = described
    with caplog.at_level(logging.INFO, logger="describe_local.cli.serve"):
        report_when_ready(SimpleNamespace(status="ready", describer=describer), "http://127.0.0.1:1")
    assert f"captions are off: {OFF_WORDS}" in caplog.text
    assert "faces, text, translate loaded; off: caption, speech" in caplog.text


def test_video_reports_the_failed_stage_per_shot_not_the_one_that_is_off(described):
    describer, _ = described
    report = video.VideoReport("clip.mp4", 3.0)
    picture = Image.fromarray(np.random.default_rng(0).integers(60, 200, (30, 40, 3), dtype=np.uint8))
    video._findings(describer, Shot(0.0, 3.0, picture, 1.0), DescribeOptions(), report)
    assert report.errors == [f"shot at 0.0 s: text: {TEXT_DETAIL}"]


def test_alt_text_is_partial_when_a_stage_did_not_run(described):
    _, result = described
    assert alt_text(result).partial is True
    ran = results.Findings(text="", caption="a dog", stages={"caption": results.StageState.ok(1.0)})
    assert alt_text(ran).partial is False
