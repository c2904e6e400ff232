"""Live text's decisions: which lines are new, which way to move the phone, when a page is in view,
and when guidance is spoken (with an injected clock)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from describe_local.errors import FrameInFlight
from describe_local.live_text import Aim, LiveTextSession, LiveTextSessions, SeenLine, page_view
from describe_local.live_text.aiming import aim
from describe_local.live_text.session import GUIDE_EVERY_S, NO_TEXT_AFTER_S, SAME_AGAIN_S
from describe_local.live_text.tracker import FORGET_S, LineTracker, normalised, similar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ocr_noise_is_not_a_new_line_but_another_line_is():
    tracker = LineTracker(clock=Clock())
    assert tracker.new_lines(["SPEED LIMIT", "50"]) == ["SPEED LIMIT", "50"]
    assert tracker.new_lines(["SPEED LlMIT.", "50"]) == []  # one letter misread, a dot added
    assert tracker.new_lines(["speed limit", "MARKET"]) == ["MARKET"]
    assert tracker.new_lines(["SPEED LIMIT 50"]) == []  # the two lines read as one
    assert tracker.new_lines(["Théâtre"]) == ["Théâtre"]
    assert tracker.new_lines(["THEATRE"]) == []


def test_a_line_that_comes_back_after_a_while_is_said_again_but_not_while_it_stays():
    clock = Clock()
    tracker = LineTracker(clock=clock)
    assert tracker.new_lines(["EXIT"]) == ["EXIT"]
    for _ in range(5):  # in view for a long time: never again
        clock.now += FORGET_S - 1
        assert tracker.new_lines(["EXIT"]) == []
    tracker.seen(["EX"])  # cut at the frame's edge: still in view
    clock.now += FORGET_S - 1
    assert tracker.new_lines(["EXIT"]) == []
    clock.now += FORGET_S + 1  # out of view for longer than that
    assert tracker.new_lines(["EXIT"]) == ["EXIT"]


def test_noise_and_unlike_lines():
    assert normalised("  Le Louvre, Paris! ") == "lelouvreparis"
    assert not similar(normalised("LOUVRE"), normalised("MAIRIE"))
    assert LineTracker(clock=Clock()).new_lines(["l", ".", ""]) == []


def line(text: str, box: tuple[int, int, int, int], confidence: float = 0.95) -> SeenLine:
    return SeenLine(text, box, confidence)


@pytest.mark.parametrize(("box", "way"), [
    ((0, 200, 300, 240), Aim.LEFT), ((300, 200, 639, 240), Aim.RIGHT),
    ((200, 0, 400, 30), Aim.UP), ((200, 450, 400, 479), Aim.DOWN),
])
def test_text_cut_at_an_edge_says_to_move_that_way(box, way):
    assert aim([line("MARKET", box)], 640, 480) is way


def test_small_or_smeared_text_and_text_well_in_view():
    assert aim([line("tiny", (100, 100, 160, 110), confidence=0.7)], 640, 480) is Aim.CLOSER
    assert aim([line("tiny", (100, 100, 160, 110))], 640, 480) is None  # small, but read well
    assert aim([line("blur", (100, 100, 400, 150), confidence=0.4)], 640, 480) is Aim.STEADY
    assert aim([line("MARKET", (100, 100, 400, 150))], 640, 480) is None
    assert aim([], 640, 480) is None


def test_guidance_waits_for_the_lines_to_be_heard_comes_at_most_every_few_seconds_and_no_text_is_said():
    clock = Clock()
    session = LiveTextSession(clock=clock)
    whole, cut = line("SPEED LIMIT", (100, 100, 400, 150)), line("MARK", (0, 300, 200, 340))
    first = session.answer([whole, cut], 640, 480)
    assert first.new == ["SPEED LIMIT"] and first.guidance is None  # the line, not guidance over it
    assert [seen.text for seen in first.lines] == ["SPEED LIMIT"]  # a cut line is not read out
    clock.now += 0.2
    assert session.answer([whole, cut], 640, 480).guidance is None  # still being spoken
    clock.now += 1.0
    assert session.answer([whole, cut], 640, 480).guidance is Aim.LEFT
    clock.now += 0.5
    assert session.answer([whole, cut], 640, 480).guidance is None  # not again so soon
    clock.now += GUIDE_EVERY_S
    assert session.answer([whole, cut], 640, 480).guidance is None  # the same again: only after a while
    clock.now += SAME_AGAIN_S
    assert session.answer([whole, cut], 640, 480).guidance is Aim.LEFT
    clock.now += 1.0
    assert session.answer([], 640, 480).guidance is None  # text went a moment ago
    clock.now += NO_TEXT_AFTER_S
    assert session.answer([], 640, 480).guidance is Aim.NO_TEXT


def page_frame(left: int, top: int, right: int, bottom: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A white page on a dark brown table, the page at the given box (the frame cuts what is outside
    it), with lines of 'letters' (2 px strokes every 6 px, a third of the line in ink, as print is)."""
    width, height = size
    page = np.full((bottom - top, right - left, 3), 235, dtype=np.uint8)
    for y in range(20, page.shape[0] - 20, 18):
        for x in range(20, page.shape[1] - 20, 6):
            page[y:y + 8, x:x + 2] = 30
    frame = np.full((height, width, 3), (60, 45, 35), dtype=np.uint8)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    frame[y0:y1, x0:x1] = page[y0 - top:y1 - top, x0 - left:x1 - left]
    return Image.fromarray(frame)


def test_a_page_is_ready_only_with_its_four_edges_in_view_and_filling_the_frame():
    assert page_view(page_frame(60, 40, 580, 450)).ready
    assert page_view(page_frame(-50, 40, 580, 450)).aim is Aim.LEFT
    assert page_view(page_frame(60, 40, 700, 450)).aim is Aim.RIGHT
    assert page_view(page_frame(60, -30, 580, 450)).aim is Aim.UP
    assert page_view(page_frame(60, 40, 580, 520)).aim is Aim.DOWN
    assert page_view(page_frame(-10, -10, 700, 520)).aim is Aim.FARTHER  # all four edges cut
    assert page_view(page_frame(280, 200, 380, 300)).aim is Aim.CLOSER  # a page far away


def test_one_frame_per_session_and_two_per_client_at_a_time():
    sessions = LiveTextSessions(clock=Clock())
    with sessions.frame("10.0.0.2", "tab-one-1"):
        with pytest.raises(FrameInFlight), sessions.frame("10.0.0.2", "tab-one-1"):
            pass
        with sessions.frame("10.0.0.2", "tab-two-2"):
            with pytest.raises(FrameInFlight), sessions.frame("10.0.0.2", "tab-three"):
                pass
            with sessions.frame("10.0.0.3", "tab-one-1"):  # another client is not held up
                pass
    with sessions.frame("10.0.0.2", "tab-one-1"):  # free again once answered
        pass


def test_sessions_are_bounded_and_forgotten_when_idle():
    clock = Clock()
    sessions = LiveTextSessions(clock=clock, max_sessions=3, idle_s=60)
    for n in range(5):
        with sessions.frame("10.0.0.2", f"session-{n}"):
            pass
    assert len(sessions) == 3
    clock.now += 61
    with sessions.frame("10.0.0.2", "session-new"):
        pass
    assert len(sessions) == 1
