"""The listener's experience in a real browser (issue 11): what is on screen after each photo, what
is announced, where focus goes, playback, questions, downloads, history, and axe-core on each state.

The server runs the real models with a tiny random OFA checkpoint imported into its store, so
that questions go through the real engine (its answers are filler; their path is what is tested).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from describe_local.audio import decode_audio
from describe_local.settings import Settings

from .test_pages import (
    NOTHING_OF_THE_PHOTO,
    RESULT_NOW,
    SHOWN,
    TIMEOUT_MS,
    audit,
    described,
    no_horizontal_scroll,
    small_targets,
)

PHOTOS = "faces/photos"
GROUP = "knn_test__obama_and_biden.jpg"  # "I see 3 people, but I don't recognize them."
ONE = "obama_small.jpg"  # "I see one person, ..."
READY = SHOWN  # the description's text is on the page (a streamed one's once it is done)
# Every text the status region held, in order (it is cleared and set again for each message).
RECORD_ANNOUNCEMENTS = """
window.__said = [];
document.addEventListener('DOMContentLoaded', () => {
  const box = document.getElementById('status');
  if (!box) return;
  new MutationObserver(() => {
    const text = box.textContent.trim();
    if (text && window.__said[window.__said.length - 1] !== text) window.__said.push(text);
  }).observe(box, {childList: true, subtree: true, characterData: true});
});
"""
HISTORY_COUNT = """async () => await new Promise((resolve, reject) => {
  const open = indexedDB.open('describe-local', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('history', {keyPath: 'id', autoIncrement: true});
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const count = open.result.transaction('history').objectStore('history').count();
    count.onsuccess = () => { open.result.close(); resolve(count.result); };
    count.onerror = () => reject(count.error);
  };
})"""


def import_tiny_ofa(models_dir: Path, scratch: Path) -> str:
    """A tiny random OFA checkpoint (scripts/make_tiny_models.py) imported into the store at
    ``models_dir`` as a USB stick's would be; returns its name, for the ``caption_model`` setting.
    Its answers are filler, but they come from the real engine through the real pipeline."""
    import make_tiny_models

    from describe_local.store.importing import import_model
    from describe_local.store.local import ModelStore

    usb = make_tiny_models.write_ofa(scratch / "usb" / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0)
    return import_model(ModelStore.open(models_dir), usb).name


@pytest.fixture(scope="module")
def page_settings(tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    """The browser fixtures' settings (conftest.py), with a caption model that answers questions."""
    root = tmp_path_factory.mktemp("listener")
    name = import_tiny_ofa(root / "models", root)
    return make_settings(root, caption_model=name, beam=1, device="cpu")


@contextmanager
def opened(browser: Any, url: str, **context: Any) -> Iterator[Any]:
    """A fresh page at ``url`` (its own storage), announcements recorded in ``window.__said``."""
    options = {"viewport": {"width": 390, "height": 844}, "bypass_csp": True, "service_workers": "block", **context}
    ctx = browser.new_context(**options)
    ctx.add_init_script(RECORD_ANNOUNCEMENTS)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        yield page
    finally:
        ctx.close()


def describe(page: Any, shared_data: Path, name: str, control: str = "#photo", folder: str = PHOTOS) -> str:
    """Choose photo ``name`` with ``control``; wait for its description; return its text."""
    page.evaluate("document.getElementById('status').textContent = ''")
    page.set_input_files(control, str(shared_data / folder / name))
    page.wait_for_function(READY)
    return page.inner_text("#description")


def announcement(text: str, streamed: bool = True) -> str:
    """What the live region should say for a description ``text``: not what it says, and that it
    plays (by itself: the page had a gesture, Playwright's evaluate counts as one). A streamed one
    is heard before its text exists, and nothing more is said over it; one that is not streamed
    says how long it is first."""
    if streamed:
        return "Playing."
    count = len(re.findall(r"[.!?](?:\s|$)", text)) or 1
    return f"Description ready: {count} sentence{'' if count == 1 else 's'}. Playing."


def said(page: Any) -> list[str]:
    return page.evaluate("window.__said")


def playing(page: Any, selector: str = "#player", after_s: float = 0.2) -> None:
    page.wait_for_function(
        "([s, t]) => { const a = document.querySelector(s); return !a.paused && a.currentTime > t; }",
        arg=[selector, after_s],
    )


# -- what is on screen ----------------------------------------------------------------------------


def test_a_new_photo_takes_the_old_result_away_and_an_error_replaces_it(
    browser: Any, live_server, axe_source: str, shared_data: Path, tmp_path: Path
):
    server, _ = live_server
    with opened(browser, server.url + "/") as page:
        describe(page, shared_data, ONE)
        assert page.is_visible("#play") and page.get_attribute("#player", "src")
        assert page.is_visible("#ask")

        # At once, before the server answers: nothing of the old photo can be read or played.
        page.set_input_files("#choose", str(shared_data / PHOTOS / GROUP))
        assert page.evaluate(RESULT_NOW) == NOTHING_OF_THE_PHOTO
        page.wait_for_function(READY)
        assert "3 people" in page.inner_text("#description")

        # A file that is not a photo: the error, and nothing else.
        not_a_photo = tmp_path / "notes.jpg"
        not_a_photo.write_text("this is not a photo")
        page.set_input_files("#photo", str(not_a_photo))
        page.wait_for_function("document.querySelector('[role=alert]').textContent.length > 0")
        assert "not an image" in page.inner_text("[role=alert]").lower()
        assert not page.is_visible("#result") and not page.is_visible("#play") and not page.is_visible("#ask")
        assert page.inner_text("#description") == ""
        assert page.get_attribute("#player", "src") is None and page.get_attribute("#preview", "src") is None
        audit(page, axe_source, "the describe page with an error after a description")


def test_a_photo_chosen_while_one_is_described_is_queued_then_described(
    browser: Any, live_server, shared_data: Path
):
    server, _ = live_server
    with opened(browser, server.url + "/") as page:
        posted: list[str] = []
        page.on("request", lambda r: posted.append(r.url) if r.url.endswith("/api/describe") else None)
        page.set_input_files("#photo", str(shared_data / PHOTOS / GROUP))
        page.set_input_files("#choose", str(shared_data / PHOTOS / ONE))  # while the first is described
        page.wait_for_function("window.__said.some((t) => t.startsWith('Photo queued'))")
        page.wait_for_function(READY + " && document.getElementById('description').textContent.includes('one person')")
        assert len(posted) == 2
        assert "Photo queued. It will be described next." in said(page)
        assert any("Describing the next photo" in t for t in said(page))
        # The first one was not lost: it is in the history, newest first.
        page.wait_for_function("document.querySelectorAll('#history-list li').length === 2")
        items = page.locator("#history-list li").all_inner_texts()
        assert "one person" in items[0] and "3 people" in items[1]


@pytest.mark.parametrize(
    ("width", "height", "what"),
    [(390, 844, "a phone"), (640, 400, "200% zoom of a 1280x800 window"), (320, 640, "320 px wide")],
)
def test_the_result_is_announced_briefly_and_focus_goes_back_to_take_the_next_photo(
    browser: Any, live_server, axe_source: str, shared_data: Path, width: int, height: int, what: str
):
    server, _ = live_server
    for scheme in ("light", "dark"):
        with opened(browser, server.url + "/", viewport={"width": width, "height": height},
                    color_scheme=scheme) as page:  # fmt: skip
            audit(page, axe_source, f"the describe page before a photo ({what}, {scheme})")
            text = describe(page, shared_data, GROUP)
            # A stream done before it is heard says "Playing." when it is.
            page.wait_for_function("document.getElementById('status').textContent.length > 0")
            status = page.inner_text("#status")
            assert status == announcement(text), status
            assert text not in status  # the MP3 says the text; the live region only that it is ready
            # No camera in this browser: "Take a photo" is the file button, and focus is back on it.
            assert page.evaluate("document.activeElement.id") == "photo"
            top, bottom = page.eval_on_selector("#description", "e => [e.getBoundingClientRect().top, "
                                                "e.getBoundingClientRect().bottom]")  # fmt: skip
            assert 0 <= top < height and bottom > 0, f"the description is off-screen ({what}): {top}"
            assert re.fullmatch(r"Photo you took at .+", page.get_attribute("#preview", "alt"))
            assert no_horizontal_scroll(page), f"the page scrolls sideways ({what})"
            assert small_targets(page) == []
            audit(page, axe_source, f"the describe page with a description ({what}, {scheme})")


def test_short_or_detailed_is_sent_and_kept(browser: Any, live_server, shared_data: Path):
    server, _ = live_server
    with opened(browser, server.url + "/") as page:
        # The form's text fields as the page sends them (Playwright does not see a FormData body).
        page.evaluate("""() => {
            window.__sent = [];
            const send = window.fetch;
            window.fetch = (url, options) => {
                if (options && options.body instanceof FormData) {
                    window.__sent.push(Object.fromEntries([...options.body].filter(([, v]) => typeof v === 'string')));
                }
                return send(url, options);
            };
        }""")
        describe(page, shared_data, ONE)
        page.check("#detail-detailed")
        describe(page, shared_data, ONE)
        sent = page.evaluate("window.__sent")
        assert [s["detail"] for s in sent] == ["short", "detailed"] and sent[0]["lang"] == "en"
        page.reload()
        assert page.is_checked("#detail-detailed")  # the choice is remembered on this device


# -- listening ------------------------------------------------------------------------------------


def test_pause_resumes_where_it_was_and_the_speed_buttons_and_keys_work(
    browser: Any, live_server, shared_data: Path
):
    server, _ = live_server
    with opened(browser, server.url + "/") as page:
        describe(page, shared_data, GROUP)
        assert page.get_attribute("#player", "controls") is not None  # the browser's own: pause, seek
        assert "K" in page.inner_text("#shortcuts")  # the keys are written on the page (a fine pointer)

        page.click("[data-rate='1.5']")
        assert page.eval_on_selector("#player", "a => a.playbackRate") == 1.5
        assert page.get_attribute("[data-rate='1.5']", "aria-pressed") == "true"
        assert page.get_attribute("[data-rate='1']", "aria-pressed") == "false"

        playing(page)  # by itself
        assert page.inner_text("#play") == "Pause"
        page.click("#play")
        paused_at = page.eval_on_selector("#player", "a => a.paused ? a.currentTime : -1")
        assert paused_at > 0
        time.sleep(0.5)
        assert page.eval_on_selector("#player", "a => a.currentTime") == paused_at  # it did not rewind
        assert page.inner_text("#play") == "Resume"
        page.click("#play")
        playing(page, after_s=paused_at)

        # Keys, from the description, where focus lands.
        page.focus("#description")
        page.keyboard.press("k")
        page.wait_for_function("document.getElementById('player').paused")
        page.keyboard.press("f")
        assert page.eval_on_selector("#player", "a => a.playbackRate") == 2
        page.keyboard.press("s")
        page.keyboard.press("s")
        assert page.eval_on_selector("#player", "a => a.playbackRate") == 1.25
        position = page.eval_on_selector("#player", "a => a.currentTime")
        page.keyboard.press("j")
        assert page.eval_on_selector("#player", "a => a.currentTime") == max(0, position - 5)
        page.keyboard.press("k")
        playing(page, after_s=0)
        # The speed is kept for the next description.
        page.reload()
        describe(page, shared_data, ONE)
        assert page.eval_on_selector("#player", "a => a.playbackRate") == 1.25


def test_download_share_and_copy(browser: Any, live_server, shared_data: Path):
    server, _ = live_server
    with opened(browser, server.url + "/") as page:
        with page.expect_response("**/api/describe") as answer:
            describe(page, shared_data, GROUP)
        spoken = described(page, answer.value.json())["text"]  # the shown text may leave out an off stage
        assert "/api/audio/" in page.get_attribute("#download", "href")  # the whole MP3, not the stream
        with page.expect_download() as info:
            page.click("#download")
        download = info.value
        assert download.suggested_filename.startswith("description-") and download.suggested_filename.endswith(".mp3")
        samples, rate = decode_audio(Path(download.path()).read_bytes())
        assert 1.5 <= len(spoken.split()) / (len(samples) / rate) <= 5.0
        # This chromium has no Web Share: no button that cannot work.
        assert page.is_visible("#share") == page.evaluate("'share' in navigator")

    stub = """
        window.__shared = null;
        navigator.canShare = (data) => true;
        navigator.share = async (data) => { window.__shared = {
            text: data.text, files: (data.files || []).map((f) => [f.name, f.type, f.size])}; };
    """
    context = browser.new_context(bypass_csp=True, service_workers="block")
    context.add_init_script(stub)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server.url + "/")
        text = describe(page, shared_data, ONE)
        assert page.is_visible("#share")
        page.click("#share")
        page.wait_for_function("window.__shared !== null")
        shared = page.evaluate("window.__shared")
        assert shared["text"] == text
        [(name, kind, size)] = shared["files"]
        assert name.endswith(".mp3") and kind == "audio/mpeg" and size > 1000

        page.click("#copy")
        page.wait_for_function("document.getElementById('status').textContent === 'Text copied.'")
        assert page.evaluate("navigator.clipboard.readText()") == text
    finally:
        context.close()


# -- asking ---------------------------------------------------------------------------------------


def test_ask_about_the_photo_and_hear_the_answer(browser: Any, live_server, axe_source: str, shared_data: Path):
    server, _ = live_server
    with opened(browser, server.url + "/") as page:
        describe(page, shared_data, GROUP)
        assert page.get_by_label("Your question").count() == 1  # a text box: a phone's dictation fills it
        page.fill("#question", "how many people are in the picture?")
        page.press("#question", "Enter")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('Answer ready')")
        answer = page.inner_text("#answer")
        assert answer.strip()
        assert page.evaluate("document.activeElement.id") == "answer"
        src = page.eval_on_selector("#answer-player", "a => a.src")
        assert "/api/audio/" in src and "sig=" in src
        mp3 = bytes(page.evaluate("async (u) => Array.from(new Uint8Array(await (await fetch(u)).arrayBuffer()))", src))
        samples, rate = decode_audio(mp3)
        assert len(samples) / rate > 0.3
        assert page.inner_text("[role=alert]") == ""
        audit(page, axe_source, "the describe page with an answer")
        # Keys in the answer play the answer.
        page.focus("#answer")
        page.keyboard.press("k")
        playing(page, "#answer-player", after_s=0)


def test_a_photo_shared_from_another_app_is_described(browser: Any, live_server, shared_data: Path):
    """The manifest's share target, as Android's share sheet uses it: a multipart POST to /share."""
    import json

    server, _ = live_server
    with opened(browser, server.url + "/") as page:
        manifest = json.loads(page.evaluate("fetch('/manifest.webmanifest').then((r) => r.text())"))
        target = manifest["share_target"]
        assert (target["action"], target["method"], target["enctype"]) == ("/share", "POST", "multipart/form-data")
        field = target["params"]["files"][0]["name"]
        photo = list((shared_data / PHOTOS / ONE).read_bytes())
        page.evaluate(
            """([action, field, bytes]) => {
                const form = Object.assign(document.createElement('form'),
                    {method: 'post', action, enctype: 'multipart/form-data'});
                const input = Object.assign(document.createElement('input'), {type: 'file', name: field});
                const files = new DataTransfer();
                files.items.add(new File([new Uint8Array(bytes)], 'shared.jpg', {type: 'image/jpeg'}));
                input.files = files.files;
                form.append(input);
                document.body.append(form);
                form.submit();
            }""",
            [target["action"], field, photo],
        )
        page.wait_for_function(READY)
        assert "one person" in page.inner_text("#description")
        assert page.evaluate("location.hash") == ""  # the id is gone from the address


# -- history --------------------------------------------------------------------------------------


def test_history_is_kept_on_the_device_and_cleared_after_asking(
    browser: Any, live_server, axe_source: str, shared_data: Path
):
    server, _ = live_server
    with opened(browser, server.url + "/") as page:
        assert page.evaluate(HISTORY_COUNT) == 0 and page.is_hidden("#clear-history")
        text = describe(page, shared_data, ONE)
        page.wait_for_function("document.querySelectorAll('#history-list li').length === 1")
        page.reload()  # kept across visits
        page.wait_for_function("document.querySelectorAll('#history-list li').length === 1")
        assert page.evaluate(HISTORY_COUNT) == 1
        assert page.inner_text("#history-list .gist") == text  # what was found, first
        assert page.get_attribute("#history-list img", "alt") == ""  # decorative: the text says it
        audit(page, axe_source, "the describe page with its history")

        page.click("#clear-history")  # asks first (test_camera.py has the dialog's details)
        page.click("#clear-confirm")
        page.wait_for_function("document.getElementById('status').textContent === 'History cleared.'")
        assert page.evaluate(HISTORY_COUNT) == 0
        assert page.locator("#history-list li").count() == 0 and page.is_hidden("#clear-history")


# -- axe-core on the other pages ------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [390, 320])
def test_docs_and_gallery_pass_axe_with_colour_contrast(
    browser: Any, live_server, axe_source: str, scheme: str, width: int
):
    server, _ = live_server
    with opened(browser, server.url + "/docs", viewport={"width": width, "height": 700}, color_scheme=scheme) as page:
        page.wait_for_selector(".opblock")
        audit(page, axe_source, f"/docs ({scheme}, {width} px)")
        page.click(".opblock-summary-control >> nth=0")  # an operation opened, ready to try
        page.click(".try-out__btn >> nth=0")
        page.wait_for_selector(".btn.execute")
        page.click(".models-control")  # the schemas too
        audit(page, axe_source, f"/docs with an operation open to try ({scheme}, {width} px)")
        page.goto(server.url + "/gallery")
        audit(page, axe_source, f"/gallery ({scheme}, {width} px)")
        assert no_horizontal_scroll(page)
