"""The page ``describe-local video`` writes, in Chromium: the audio description switch makes the
narration heard at the cue times, extended description pauses and resumes the video, the
descriptions show as text on request, and axe-core finds nothing at 320 px wide."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser.test_pages import audit, no_horizontal_scroll, poll_until

pytestmark = pytest.mark.slow

TIMEOUT_MS = 30_000
NOW = """() => {
  const video = document.getElementById('video'), voice = document.getElementById('narration');
  return {video: video.currentTime, videoPaused: video.paused, volume: video.volume,
          voice: voice.currentTime, voicePaused: voice.paused, log: window.describeLog,
          text: document.getElementById('now').textContent, textHidden: document.getElementById('now').hidden};
}"""


@pytest.fixture(scope="module")
def pages(shared_data: Path, describer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    """Each clip described once by the real describer: name -> (report, its page)."""
    from describe_local.video.describe import describe_video

    done = {}
    for name in ("issue-134-rotate", "issue-195-aspect-ratio"):
        out = tmp_path_factory.mktemp(name)
        report = describe_video(shared_data / "video" / f"{name}.mp4", out, describer)
        done[name] = (report, out / f"{name}.html")
    return done


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def _open(page: Any, html: Path) -> None:
    page.goto(html.as_uri())
    poll_until(page, "() => document.getElementById('video').readyState >= 2 && "
                     "document.getElementById('narration').readyState >= 2")


def _table(page: Any) -> list[dict[str, Any]]:
    """The page's cue table: each narration's time, its stretch of the narration file, hold, short."""
    return page.evaluate("() => JSON.parse(document.getElementById('cues').textContent)")


def _play_from(page: Any, seconds: float) -> None:
    page.evaluate("(t) => { const v = document.getElementById('video'); v.currentTime = t; }", max(0.0, seconds))
    poll_until(page, "() => !document.getElementById('video').seeking")
    page.evaluate("() => document.getElementById('video').play()")


def test_the_description_switch_plays_the_narration_at_its_cue_with_the_sound_lowered(pages, page: Any):
    _report, html = pages["issue-134-rotate"]
    _open(page, html)
    page.click("#show-text")  # a real click: the descriptions as text, and the page may now play sound
    page.click("#extended")  # off: each line as it fits its pause, over the running video
    table = _table(page)
    index = next(i for i, c in enumerate(table) if not c["hold"])
    cue = table[index]
    _play_from(page, cue["at"] - 1.0)
    poll_until(page, f"() => window.describeLog.some((e) => e.cue === {index})")
    page.wait_for_timeout(300)
    now = page.evaluate(NOW)
    entry = next(e for e in now["log"] if e["cue"] == index)
    assert abs(entry["video"] - cue["at"]) < 0.3, entry  # started at the cue's time
    assert not now["voicePaused"] and not now["videoPaused"], now  # heard over the running video
    assert now["volume"] == pytest.approx(0.3), now  # the video's own sound lowered under it
    assert cue["from"] < now["voice"] < cue["to"], (now, cue)
    assert now["text"] == cue["text"] and not now["textHidden"]
    poll_until(page, "() => document.getElementById('narration').paused")  # stops at the end of its clip
    assert page.evaluate("() => document.getElementById('video').volume") == 1


def test_extended_description_reads_the_whole_screen_text_with_the_video_paused(pages, page: Any):
    """The film's first pause is too short for all the text on its screen: with the video allowed to
    pause, the whole text is read while the picture holds, instead of its first line."""
    _report, html = pages["issue-134-rotate"]
    _open(page, html)
    page.click("#show-text")
    table = _table(page)
    short = next(i for i, c in enumerate(table) if c["short"])
    index = short + 1  # its whole text, held
    assert table[index]["hold"] and table[index]["at"] == table[short]["at"]
    _play_from(page, table[index]["at"] - 0.8)
    poll_until(page, f"() => window.describeLog.some((e) => e.cue === {index})")
    page.wait_for_timeout(300)
    now = page.evaluate(NOW)
    assert all(e["cue"] != short for e in now["log"]), now["log"]  # the cut one is not said as well
    assert now["videoPaused"] and not now["voicePaused"], now
    assert "Send Spike" in now["text"], now


def test_switching_the_description_off_keeps_the_narration_silent(pages, page: Any):
    _report, html = pages["issue-134-rotate"]
    _open(page, html)
    page.click("#describe")  # off
    at = _table(page)[0]["at"]
    _play_from(page, at - 0.5)
    poll_until(page, f"() => document.getElementById('video').currentTime > {at + 0.6}")
    now = page.evaluate(NOW)
    assert now["log"] == [] and now["voicePaused"] and now["volume"] == 1, now


def test_extended_description_pauses_the_video_speaks_and_resumes(pages, page: Any):
    report, html = pages["issue-195-aspect-ratio"]
    assert any(c.held for c in report.cues), "the documentary's dialogue leaves no pause long enough"
    _open(page, html)
    page.click("#show-text")
    table = _table(page)
    index = next(i for i, c in enumerate(table) if c["hold"])
    cue = table[index]
    _play_from(page, cue["at"] - 0.8)
    poll_until(page, f"() => window.describeLog.some((e) => e.cue === {index})")
    page.wait_for_timeout(300)
    now = page.evaluate(NOW)
    assert now["videoPaused"] and not now["voicePaused"], now  # the picture holds while it is spoken
    assert abs(now["video"] - cue["at"]) < 0.3, now
    assert now["text"] == cue["text"]
    poll_until(page, f"() => !document.getElementById('video').paused && "
                     f"document.getElementById('video').currentTime > {cue['at'] + 0.3}")
    assert page.evaluate("() => document.getElementById('narration').paused")


def test_with_extended_description_off_the_video_never_stops(pages, page: Any):
    report, html = pages["issue-195-aspect-ratio"]
    cue = next(c for c in report.cues if c.held)
    _open(page, html)
    page.click("#extended")  # off
    _play_from(page, cue.start - 0.5)
    poll_until(page, f"() => document.getElementById('video').currentTime > {cue.start + 0.8}")
    now = page.evaluate(NOW)
    assert now["log"] == [] and not now["videoPaused"], now


def test_the_page_has_no_axe_violations_and_fits_320_px(pages, page: Any, axe_source: str):
    for name, (_report, html) in pages.items():
        _open(page, html)
        assert no_horizontal_scroll(page), page.evaluate("() => document.documentElement.scrollWidth")
        audit(page, axe_source, f"the video page of {name} at 320 px")
        page.click("#show-text")
        audit(page, axe_source, f"the video page of {name} with the descriptions shown")
        links = page.evaluate("() => [...document.querySelectorAll('.transcript a')].map((a) => a.textContent)")
        assert links and all(len(text.split()) >= 3 for text in links), links  # the moment and the text
