"""Live text in real Chromium, its fake camera filming clips made from the shared photos
(``scripts/live_text_clips.py``): a sign sliding into view, a sign cut off at the left, a page
sliding onto a table. The server is the real app with the real text stage.

Announcements are recorded from the live region each time it is set (a line said twice counts
twice, even in a row), and the frames the page sends are counted in the page.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_text_clips import Clip, cut_left_clip, page_clip, sign_clip, write_y4m
from PIL import Image

from describe_local.live_text.tracker import normalised, similar

from .test_camera import ax_nodes, filming, page_state, phone, tap, wait_live
from .test_pages import audit, no_horizontal_scroll, small_targets

SIGN = "ocr/signs/example3.png"  # "SPEED LIMIT" on a road sign, "BASRURKAR MARKET" on a shop
PAGE = "ocr/pages/phototest.tif"  # "This is a lot of 12 point text to test the ocr code ..."
# Every time the live region is set to something, in order (``dl.announce`` clears it first).
RECORD_EVERY_ANNOUNCEMENT = """
window.__announced = [];
document.addEventListener('DOMContentLoaded', () => {
  const box = document.getElementById('status');
  let last = '';
  new MutationObserver(() => {
    const text = box.textContent.trim();
    if (text && text !== last) window.__announced.push(text);
    last = text;
  }).observe(box, {childList: true, subtree: true, characterData: true});
});
window.__frames = 0;
const realFetch = window.fetch;
window.fetch = function (url, ...rest) {
  if (String(url).endsWith('/api/live-text')) window.__frames += 1;
  if (String(url).endsWith('/api/speak')) (window.__spoken = window.__spoken || []).push(rest[0].body.get('text'));
  if (String(url).endsWith('/api/read')) (window.__read = window.__read || []).push(rest[0].body.get('photo'));
  return realFetch.call(this, url, ...rest);
};
"""
WATCH_S = 25  # long enough for the sign to be read many times over on a busy machine


def film(browser: Any, clip: Clip, folder: Path, name: str) -> Any:
    return filming(browser, write_y4m(clip.frames, folder / f"{name}.y4m", clip.fps))


@pytest.fixture(scope="module")
def clips(shared_data: Path) -> dict[str, Clip]:
    sign = Image.open(shared_data / SIGN)
    return {"sign": sign_clip(sign), "cut-left": cut_left_clip(sign),
            "page": page_clip(Image.open(shared_data / PAGE))}


@pytest.fixture(scope="module")
def cameras(browser: Any, clips: dict[str, Clip], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("live-text")
    made: dict[str, Any] = {}
    try:
        for name, clip in clips.items():
            made[name] = film(browser, clip, folder, name)
        yield made
    finally:
        for b in made.values():
            b.close()


@contextmanager
def live_camera(browser: Any, url: str) -> Iterator[Any]:
    """A phone on the describe page, its camera live, every announcement and frame recorded."""
    with phone(browser, url + "/") as page:
        page.add_init_script(RECORD_EVERY_ANNOUNCEMENT)
        page.reload()
        wait_live(page)
        yield page


def frames_sent(page: Any) -> int:
    """How many frames the page has sent to /api/live-text (counted in the page: Playwright's sync
    API would only report requests while the test is calling it)."""
    return page.evaluate("window.__frames")


def announced(page: Any) -> list[str]:
    return page.evaluate("window.__announced")


def until(page: Any, check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}; said: {announced(page)}; page: {page_state(page)}"
        time.sleep(0.2)


def lines_said(texts: list[str], *, meta: tuple[str, ...]) -> list[str]:
    """The lines read out, one per sentence, leaving out what the app says of itself."""
    lines = []
    for text in texts:
        if text.startswith(meta):
            continue
        lines.extend(part.strip() for part in text.replace("!", ".").split(". ") if part.strip())
    return lines


META = ("Live text", "Move ", "Hold still", "No text", "Finding the page", "Page ")


def test_each_line_of_a_sign_is_said_once_and_pause_resume_leave_are_one_action_each(
    cameras: dict, live_server, axe_source: str, screenshots: Path
):
    server, _ = live_server
    with live_camera(cameras["sign"], server.url) as page:
        # One action from the camera view: the button right after the shutter.
        tree = [node[:2] for node in ax_nodes(page) if node[0] == "button"]
        assert tree[:2] == [("button", "Take a photo"), ("button", "Live text")], tree
        tap(page, "#live-start")
        page.wait_for_selector("#live:not([hidden])")
        assert page.evaluate("document.activeElement.id") == "live-pause"
        audit(page, axe_source, "live text, on")
        assert small_targets(page) == [] and no_horizontal_scroll(page)

        until(page, lambda: any("MARKET" in t.upper() for t in announced(page)), 90, "MARKET was never said")
        until(page, lambda: any("SPEED" in t.upper() for t in announced(page)), 30, "SPEED was never said")
        time.sleep(WATCH_S)  # the clip loops: the sign leaves the frame's edge and comes back, again and again
        said = lines_said(announced(page), meta=META)
        keys = [normalised(line) for line in said]
        repeats = [said[i] for i, key in enumerate(keys) if any(similar(key, other) for other in keys[:i])]
        assert repeats == [], f"said more than once: {repeats} (all: {announced(page)})"
        heard = page.eval_on_selector_all("#live-heard li", "items => items.map(i => i.textContent)")
        assert sorted(map(normalised, heard)) == sorted(keys)
        page.screenshot(path=str(screenshots / "live-text-sign.png"), full_page=True)

        # Pause: no more frames, said once; Resume: frames again.
        tap(page, "#live-pause")
        until(page, lambda: announced(page)[-1] == "Live text paused.", 10, "pause was not said")
        assert page.inner_text("#live-pause") == "Resume"
        audit(page, axe_source, "live text, paused")
        time.sleep(1.5)  # a frame already sent may still be answered
        sent = frames_sent(page)
        time.sleep(3)
        assert frames_sent(page) == sent, "frames were sent while paused"
        tap(page, "#live-pause")
        until(page, lambda: frames_sent(page) > sent, 30, "no frame after Resume")

        # Leave: the camera stops, no more frames, the start button has focus again.
        tap(page, "#live-leave")
        until(page, lambda: announced(page)[-1] == "Live text off.", 10, "leaving was not said")
        assert page.evaluate("document.getElementById('viewfinder').srcObject") is None
        assert page.evaluate("document.activeElement.id") == "live-start"
        time.sleep(1.5)
        sent = frames_sent(page)
        time.sleep(3)
        assert frames_sent(page) == sent, "frames were sent after leaving"
        audit(page, axe_source, "live text, left")


def test_lines_can_be_read_in_the_servers_voice_instead(cameras: dict, live_server):
    server, _ = live_server
    with live_camera(cameras["sign"], server.url) as page:
        # Chosen once, in live text's panel, and kept on this phone: the next start uses it.
        tap(page, "#live-start")
        page.check("#live-voice")
        tap(page, "#live-leave")
        page.reload()
        wait_live(page)
        tap(page, "#live-start")
        assert page.is_checked("#live-voice")
        until(page, lambda: any("MARKET" in t.upper() for t in page.evaluate("window.__spoken || []")), 90,
              "MARKET was never sent to the server's voice")
        # The voice's MP3 plays (the start tap unlocked its element), and the screen reader is not
        # given the same lines too.
        until(page, lambda: page.evaluate(
            "window.__plays.some(p => p.id === '' && p.outcome === 'ok' && p.src !== 'blob:')"), 60,
            "the server's voice did not play")
        assert not any("MARKET" in t.upper() for t in announced(page))


def test_text_cut_at_the_left_edge_says_move_left(cameras: dict, live_server):
    server, _ = live_server
    with live_camera(cameras["cut-left"], server.url) as page:
        tap(page, "#live-start")
        until(page, lambda: any("left" in t for t in announced(page)), 90, "no guidance to the left")
        guidance = [t for t in announced(page) if t.startswith("Move ")]
        assert guidance and all(t == "Move the phone left." for t in guidance), guidance


def test_read_the_page_waits_for_all_four_edges_and_reads_as_the_cli_does(
    cameras: dict, clips: dict[str, Clip], live_server, page_settings, axe_source: str, tmp_path: Path
):
    server, _ = live_server
    clip = clips["page"]
    with live_camera(cameras["page"], server.url) as page:
        tap(page, "#live-start")
        page.wait_for_selector("#live:not([hidden])")
        tap(page, "#live-page")
        page.wait_for_selector("#live-page-box:not([hidden])", timeout=120_000)
        assert page.evaluate("document.activeElement.id") == "live-page-text"
        shown = page.inner_text("#live-page-text")
        audit(page, axe_source, "live text, a page read")
        sent = page.evaluate("""async () => await Promise.all((window.__read || []).map(async (blob) =>
            Array.from(new Uint8Array(await blob.arrayBuffer()))))""")
    assert len(sent) == 1
    photo = bytes(sent[0])
    # The photo is of a frame where the whole page lies on the table: the clip's nearest frame.
    taken = np.asarray(Image.open(io.BytesIO(photo)).convert("L"), dtype=np.float32)
    errors = [np.abs(taken - np.asarray(f.convert("L"), dtype=np.float32)).mean() for f in clip.frames]
    nearest = int(np.argmin(errors))
    assert clip.photo_whole(nearest), f"the page was taken with an edge out of view (frame {nearest})"
    assert not clip.photo_whole(0)  # and the clip does start with one out of view
    # The same photo read by the CLI says the same text.
    (tmp_path / "page.jpg").write_bytes(photo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    env.update(DESCRIBE_LOCAL_MODELS_DIR=str(page_settings.models_dir),
               DESCRIBE_LOCAL_KNOWN_FACES=str(page_settings.known_faces))
    cli = subprocess.run([sys.executable, "-m", "describe_local", "read", "--json", "--no-audio",
                          str(tmp_path / "page.jpg")], capture_output=True, text=True, timeout=300, env=env)
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout.splitlines()[0])
    assert shown.strip() == (expected["text_found"] or "").strip()
    assert "quick brown" in shown
