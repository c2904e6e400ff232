"""The pages in a real browser: describe a photo, hear it, manage known people, audit with axe-core."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from describe_local.audio import decode_audio
from describe_local.pipeline import Describer
from describe_local.server import create_app
from describe_local.server.running import ServerThread
from describe_local.settings import Settings

PHOTOS = "faces/photos"
MIN_TARGET_PX = 44
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
TIMEOUT_MS = 90_000  # describing takes seconds on a busy 2-core machine

# What of a described photo a page holds: all of it goes at once with a new photo or an error.
RESULT_NOW = """() => ({
    hidden: document.getElementById('result').hidden,
    text: document.getElementById('description').textContent,
    src: document.getElementById('player').getAttribute('src'),
    ask: document.getElementById('ask').hidden})"""
NOTHING_OF_THE_PHOTO = {"hidden": True, "text": "", "src": None, "ask": True}


def poll_until(page: Any, script: str) -> None:
    """Wait until ``script`` is true by evaluating it again and again: where the page's policy
    forbids eval, Playwright's wait_for_function cannot run."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(script):
        assert time.monotonic() < deadline, script
        time.sleep(0.1)


def audit(page: Any, axe_source: str, what: str) -> None:
    """Run axe-core with the WCAG 2.2 AA tags; fail listing every violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_TAGS,
    )
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} -> " + "; ".join(n["target"][0] for n in v["nodes"][:5])
        for v in result["violations"]
    ]
    assert not problems, f"axe-core on {what}:\n" + "\n".join(problems)


# The description is shown: its text is on the page (a streamed one's when it is done).
SHOWN = """(() => { const d = document.getElementById('description');
  return !document.getElementById('result').hidden && d.textContent.length > 0 && !d.hasAttribute('aria-busy'); })()"""


def described(page: Any, answer: dict[str, Any]) -> dict[str, Any]:
    """What a plain POST answers for a description: the POST's own answer, or for a streamed one
    (``stream: true``) its ``done`` event, read again from its events URL (which gives every event
    from the first until it expires)."""
    if not answer.get("stream"):
        return answer
    stream = page.evaluate("async (u) => await (await fetch(u)).text()", answer["events_url"])
    events = []
    for block in stream.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    assert events and events[-1][0] == "done", events
    return events[-1][1]


def small_targets(page: Any) -> list[str]:
    """Visible controls smaller than 44 x 44 CSS px (links inside text are exempt)."""
    return page.evaluate(
        """(min) => {
            const controls = document.querySelectorAll(
                'button, select, summary, input:not([type=file]), .big-button, nav a, .take-photo input');
            const small = [];
            for (const el of controls) {
                const box = el.getBoundingClientRect();
                const style = getComputedStyle(el);
                if (box.width === 0 || style.visibility === 'hidden' || el.closest('[hidden]')) continue;
                if (box.width < min || box.height < min) {
                    small.push(`${el.tagName.toLowerCase()}#${el.id} ${box.width.toFixed(0)}x${box.height.toFixed(0)}`);
                }
            }
            return small;
        }""",
        MIN_TARGET_PX,
    )


def no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.fixture(params=["light", "dark"])
def scheme(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def page(browser: Any, scheme: str) -> Iterator[Any]:
    # bypass_csp: axe-core is injected as an inline script, which the pages' policy forbids.
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme=scheme, bypass_csp=True, service_workers="block"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def test_take_a_photo_hear_the_description(
    page: Any, live_server, axe_source: str, shared_data: Path, screenshots: Path, scheme: str
):
    server, _ = live_server
    page.goto(server.url + "/")
    page.wait_for_load_state("networkidle")
    audit(page, axe_source, f"the describe page ({scheme}, before)")
    assert small_targets(page) == []
    page.screenshot(path=str(screenshots / f"index-{scheme}-before.png"), full_page=True)

    photo = page.locator("#photo")
    assert photo.get_attribute("accept") == "image/*" and photo.get_attribute("capture") == "environment"
    assert page.get_by_label("Take a photo").count() == 1  # a visible label names the control
    # An existing photo too: without `capture`, which makes some phones offer only the camera.
    choose = page.get_by_label("Choose a photo")
    assert choose.get_attribute("accept") == "image/*" and choose.get_attribute("capture") is None
    assert page.get_by_label("Language of the description").count() == 1

    with page.expect_response("**/api/describe") as answer:
        photo.set_input_files(str(shared_data / PHOTOS / "knn_test__obama_and_biden.jpg"))
    # The streamed description plays by itself (this page had a gesture: Playwright's evaluate
    # counts as one), from its first words: paused at once, it waits there for the checks below.
    page.wait_for_function("(() => { const a = document.getElementById('player'); "
                           "return !a.paused && a.currentTime > 0.2; })()")  # fmt: skip
    assert page.inner_text("#play") == "Pause"
    page.click("#play")
    assert page.eval_on_selector("#player", "a => a.paused && a.currentTime > 0.2")
    page.wait_for_function(SHOWN)
    status = page.inner_text("#status")
    text = page.inner_text("#description")
    assert "I see 3 people, but I don't recognize them." in text
    # The live region says briefly that it plays or is ready, never the text (the MP3 says it):
    # "Playing." where it was done while it played, how long it is where it was done once paused.
    assert status == "Playing." or (status.startswith("Description ready: ") and "sentence" in status)
    assert text not in status and len(status) < 80
    # Focus is not taken from where the listener went while it played (test_listener.py: after a
    # tap and nothing else, it is back on "Take a photo").
    assert page.evaluate("document.activeElement.id") == "play"
    assert page.inner_text("[role=alert]") == ""

    # The audio element's source is a real MP3 of the description as spoken: the stream (all of
    # it, now that it is done) or the whole MP3.
    spoken = described(page, answer.value.json())["text"]
    src = page.eval_on_selector("#player", "a => a.src")
    assert "/api/live/" in src or "/api/audio/" in src, src
    mp3 = bytes(
        page.evaluate(
            "async (u) => Array.from(new Uint8Array(await (await fetch(u)).arrayBuffer()))", src
        )
    )
    samples, rate = decode_audio(mp3)
    assert 1.5 <= len(spoken.split()) / (len(samples) / rate) <= 5.0
    assert "/api/audio/" in page.get_attribute("#download", "href")  # the whole MP3, seekable

    # The big button plays it on from where it was paused (test_listener.py has more).
    assert page.inner_text("#play") == "Resume"
    page.click("#play")
    page.wait_for_function("(() => { const a = document.getElementById('player'); "
                           "return !a.paused && a.currentTime > 0.2; })()")  # fmt: skip

    audit(page, axe_source, f"the describe page ({scheme}, after a description)")
    assert small_targets(page) == []
    page.screenshot(path=str(screenshots / f"index-{scheme}-after.png"), full_page=True)


def test_errors_are_announced_as_alerts(page: Any, live_server, axe_source: str, tmp_path: Path):
    server, _ = live_server
    page.goto(server.url + "/")
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("this is not a photo")
    page.set_input_files("#photo", str(not_a_photo))
    page.wait_for_function("document.querySelector('[role=alert]').textContent.length > 0")
    assert "not an image" in page.inner_text("[role=alert]").lower()
    audit(page, axe_source, "the describe page with an error")


def test_focus_is_visible_on_the_photo_control(page: Any, live_server):
    server, _ = live_server
    page.goto(server.url + "/")
    # No camera in this browser: focus goes to the file button "Take a photo" by itself.
    page.wait_for_function("document.getElementById('camera-reason').textContent.length > 0")
    for _ in range(10):
        if page.evaluate("document.activeElement.id") == "photo":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "photo"
    outline = page.eval_on_selector("label[for=photo]", "el => getComputedStyle(el).outlineStyle + ' ' + "
                                    "getComputedStyle(el).outlineWidth")  # fmt: skip
    assert outline == "solid 4px"


@pytest.mark.parametrize("path", ["/", "/gallery"])
def test_pages_reflow_at_200_percent_zoom(browser: Any, live_server, path: str, screenshots: Path):
    server, _ = live_server
    # 200% zoom on a 640 px wide screen leaves 320 CSS px, the width WCAG's reflow rule names.
    context = browser.new_context(viewport={"width": 640, "height": 900}, device_scale_factor=2, bypass_csp=True)
    page = context.new_page()
    page.goto(server.url + path)
    page.evaluate("document.body.style.zoom = '2'")
    assert no_horizontal_scroll(page), f"{path} scrolls sideways at 200% zoom"
    page.screenshot(path=str(screenshots / f"zoom200{path.replace('/', '-') or '-index'}.png"))
    context.close()


def test_gallery_page_add_and_remove_a_person(
    page: Any, live_server, axe_source: str, shared_data: Path, screenshots: Path, scheme: str
):
    server, token = live_server
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(server.url + "/gallery")
    audit(page, axe_source, f"the gallery page ({scheme}, locked)")
    assert small_targets(page) == []

    page.fill("#admin-token", "wrong")
    page.click("text=Show the people")
    page.wait_for_function("document.querySelector('[role=alert]').textContent.includes('admin token')")

    page.fill("#admin-token", token)
    page.click("text=Show the people")
    page.wait_for_function("document.getElementById('status').textContent.includes('No one')")

    page.fill("#name", "Barack Obama")
    obama = ("knn_train__obama__obama.jpg", "knn_train__obama__obama2.jpg")
    page.set_input_files("#photos", [str(shared_data / PHOTOS / f) for f in obama])
    page.click("text=Add person")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Added Barack Obama')")
    assert "Barack Obama (2 photos)" in page.inner_text("#people")
    audit(page, axe_source, f"the gallery page ({scheme}, with a person)")
    assert small_targets(page) == []
    page.screenshot(path=str(screenshots / f"gallery-{scheme}.png"), full_page=True)

    # A photo with two faces is refused, with the reason, as an alert.
    page.fill("#name", "Someone Else")
    page.set_input_files("#photos", str(shared_data / "faces/groups/2008_001009.jpg"))
    page.click("text=Add person")
    page.wait_for_function("document.querySelector('[role=alert]').textContent.includes('faces found')")
    audit(page, axe_source, f"the gallery page ({scheme}, refusal shown)")

    page.get_by_role("button", name="Remove Barack Obama").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Removed Barack Obama')")
    assert page.locator("#people li").count() == 0


def test_a_kiosk_opens_the_page_while_the_server_is_down(
    browser: Any, page_settings: Settings, describer: Describer
):
    server = ServerThread(create_app(page_settings, describer)).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("navigator.serviceWorker.ready.then(() => true)")
        page.reload()  # now under the service worker's control
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        server.stop()
        page.reload()
        assert page.inner_text("h1") == "Describe a photo"
        page.wait_for_function("document.getElementById('status').textContent.includes('cannot be reached')")
        assert page.locator("#photo").count() == 1
        assert page.eval_on_selector(".big-button", "el => getComputedStyle(el).minHeight") != "auto"  # CSS too
        page.goto(server.url + "/gallery")
        assert page.inner_text("h1") == "Known people"
    finally:
        server.stop()
        context.close()


def test_a_server_that_asks_for_a_token(
    browser: Any, page_settings: Settings, describer: Describer, axe_source: str, shared_data: Path, tmp_path: Path
):
    from dataclasses import replace

    from describe_local.server.auth import DESCRIBE, TokenStore

    settings = replace(page_settings, require_token_for_describe=True, state_dir=tmp_path / "state")
    token = TokenStore.open(settings.state_dir).reset(DESCRIBE)
    server = ServerThread(create_app(settings, describer)).start()
    context = browser.new_context(bypass_csp=True, service_workers="block")
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server.url + "/")
        page.wait_for_selector("#token", state="visible")  # shown because the server asks for one
        audit(page, axe_source, "the describe page asking for a token")
        page.set_input_files("#photo", str(shared_data / PHOTOS / "obama_small.jpg"))
        page.wait_for_function("document.querySelector('[role=alert]').textContent.includes('access token')")
        page.fill("#token", token)
        page.dispatch_event("#token", "change")
        page.set_input_files("#photo", str(shared_data / PHOTOS / "obama_small.jpg"))
        page.wait_for_function(SHOWN)
        assert page.inner_text("[role=alert]") == ""
    finally:
        context.close()
        server.stop()


def test_pages_and_docs_work_under_their_content_security_policy(browser: Any, live_server, shared_data: Path):
    """The other tests bypass the policy (axe is injected inline); this one keeps it on."""

    server, _ = live_server
    context = browser.new_context(service_workers="block")
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', "
        "(e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    try:
        for path, ready in [("/docs", ".opblock"), ("/gallery", "#admin-token"), ("/", "#photo")]:
            page.goto(server.url + path)
            page.wait_for_selector(ready, state="attached")
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__csp") == [], path
        page.set_input_files("#photo", str(shared_data / PHOTOS / "obama_small.jpg"))
        poll_until(page, f"() => {SHOWN}")
        # It plays by itself (Playwright's evaluate above counts as a gesture), under the policy.
        poll_until(page, "() => { const a = document.getElementById('player'); "
                         "return !a.paused && a.currentTime > 0.2; }")
        assert page.evaluate("window.__csp") == []
        # ReDoc renders too; the policy only stops it from fetching its logo from its CDN.
        page.goto(server.url + "/redoc")
        page.wait_for_selector("text=Describe a photo", state="attached")
        assert all(" https://" in v for v in page.evaluate("window.__csp")), page.evaluate("window.__csp")
    finally:
        context.close()
