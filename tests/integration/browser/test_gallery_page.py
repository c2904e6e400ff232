"""The known-people page as a blind person on a phone meets it, in a real Chromium.

What a screen reader gets is read from Chromium's own accessibility tree (the DevTools
protocol: each control's role, name, description, disabled and invalid states), what it hears
unprompted from the live regions (every text they were given, in order), and the page is
audited with axe-core at 320 CSS px: a missing token and a wrong one say different things and
what to do, "Add person" is unavailable (and says why) until there is a token, and a batch of
photos adds the good ones and names each refused one, with why, in one announcement.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from describe_local.settings import Settings

from .test_pages import TIMEOUT_MS, audit, poll_until

PHOTOS = "faces/photos"
GOOD = ["knn_train__obama__obama.jpg", "knn_train__obama__obama2.jpg"]  # one face each, about 1 MP
TWO_FACES = ("faces/groups", "2008_001009.jpg")
NO_FACE = ("faces/groups", "dogs.jpg")
# This module's server takes uploads of at most 580 kB and photos of at most 2 MP: the batch
# below is over the upload limit together, one photo is over it on its own, one over the pixels.
MAX_UPLOAD = 580_000
MAX_PIXELS = 2_000_000
TOO_MANY_PIXELS = (PHOTOS, "knn_test__obama_and_biden.jpg")  # 2.9 MP in 560 kB
TOO_LARGE = (PHOTOS, "tests_obama3.jpg")  # 596 kB

# Every text the live regions were given, in order: what a screen reader says unprompted.
HEARD = """(() => {
  window.__heard = [];
  for (const id of ['status', 'error']) {
    const box = document.getElementById(id);
    new MutationObserver(() => {
      const text = box.textContent.trim();
      if (text) window.__heard.push(`${box.getAttribute('role')}: ${text}`);
    }).observe(box, {childList: true, characterData: true, subtree: true});
  }
})()"""


@pytest.fixture(scope="module")
def page_settings(tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    """The browser conftest's settings, with limits that real photos are over."""
    return make_settings(tmp_path_factory.mktemp("gallery-page"), max_image_pixels=MAX_PIXELS,
                         max_upload_bytes=MAX_UPLOAD)


@pytest.fixture(params=["light", "dark"])
def scheme(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def page(browser: Any, live_server, scheme: str) -> Iterator[Any]:
    """The gallery page on a 320 px wide phone, no token in the tab yet, listening to its live regions."""
    server, _ = live_server
    context = browser.new_context(viewport={"width": 320, "height": 700}, color_scheme=scheme, bypass_csp=True,
                                  service_workers="block", has_touch=True, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url + "/gallery")
    page.wait_for_load_state("networkidle")
    page.evaluate(HEARD)
    yield page
    context.close()


class AXTree:
    """Chromium's accessibility tree, node by node, as a screen reader is given it."""

    def __init__(self, page: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Accessibility.enable")

    def node(self, selector: str) -> dict[str, Any]:
        """``role``, ``name``, ``description`` and the states (``disabled``, ``invalid``,
        ``focused``...) of the element ``selector`` picks."""
        root = self.cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node_id = self.cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node_id, f"no element {selector}"
        ax = self.cdp.send("Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False})["nodes"][0]
        value = lambda key: (ax.get(key) or {}).get("value", "")  # noqa: E731
        found = {"role": value("role"), "name": value("name"), "description": value("description"),
                 "ignored": ax.get("ignored", False)}
        for prop in ax.get("properties", []):
            found[prop["name"]] = prop["value"].get("value")
        return found


def heard(page: Any) -> list[str]:
    return page.evaluate("window.__heard")


def posts(page: Any) -> list[str]:
    """Watch the page's POSTs to the gallery; the list fills as they go."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and "/api/gallery" in r.url else None)
    return sent


def test_add_is_unavailable_until_a_token_is_entered_and_says_why(page: Any, axe_source: str, scheme: str):
    ax = AXTree(page)
    add = ax.node("#add-button")
    assert add["role"] == "button" and add["name"] == "Add person"
    assert add.get("disabled") is True, add  # a screen reader says "dimmed" / "unavailable"
    assert add["description"] == "Enter the admin token above first: adding a person needs it.", add
    assert page.is_visible("#add-locked")  # the reason is on the screen too
    audit(page, axe_source, f"the gallery page at 320 px ({scheme}, no token)")

    page.fill("#admin-token", "a token")
    add = ax.node("#add-button")
    assert not add.get("disabled") and add["description"] == "", add
    assert not page.is_visible("#add-locked")
    page.fill("#admin-token", "  ")  # spaces are no token
    assert ax.node("#add-button").get("disabled") is True

    # Pressed all the same (it stays reachable, unlike a disabled button): nothing is sent, and
    # focus goes to the token field, which says what is missing and where a token comes from.
    sent = posts(page)
    page.fill("#name", "Barack Obama")
    page.focus("#add-button")
    page.keyboard.press("Enter")
    poll_until(page, "() => document.activeElement.id === 'admin-token'")
    field = ax.node("#admin-token")
    assert field.get("focused") is True and field.get("invalid") == "true", field
    assert field["description"].startswith("Enter the admin token first."), field
    assert "describe-local serve prints it once" in field["description"], field
    assert "describe-local serve --reset-admin-token" in field["description"], field
    assert sent == []
    # Said once, by the field: no live region speaks over it or repeats it.
    page.wait_for_timeout(300)
    assert heard(page) == []
    audit(page, axe_source, f"the gallery page at 320 px ({scheme}, token missing)")


def test_a_missing_and_a_wrong_token_say_different_things(page: Any, live_server, axe_source: str, scheme: str):
    _, token = live_server
    ax = AXTree(page)
    page.click("text=Show the people")  # no token at all
    poll_until(page, "() => document.activeElement.id === 'admin-token'")
    missing = ax.node("#admin-token")["description"]
    assert missing.startswith("Enter the admin token first.")

    page.fill("#admin-token", "not-the-token")
    assert ax.node("#admin-token").get("invalid") in (None, "false")  # typing clears the mark
    page.click("text=Show the people")
    poll_until(page, "() => document.getElementById('error').textContent.length > 0")
    wrong = page.inner_text("#error")
    # What to do, with the command whoever runs the server needs (the server's own messages lose
    # their commands on the page; this one is the page's).
    assert wrong == ("That admin token is wrong. Check it and enter it again, or get a new one: "
                     "restart the server with describe-local serve --reset-admin-token.")
    assert ax.node("#error")["role"] == "alert"
    assert ax.node("#admin-token").get("invalid") == "true"
    assert "Enter the admin token first" not in ax.node("#admin-token")["description"]
    assert heard(page) == [f"alert: {wrong}"]  # said once
    assert page.evaluate("sessionStorage.getItem('admin-token')") is None  # a wrong token is not kept
    audit(page, axe_source, f"the gallery page at 320 px ({scheme}, wrong token)")

    page.fill("#admin-token", token)
    page.click("text=Show the people")
    poll_until(page, "() => document.getElementById('status').textContent.length > 0")
    assert page.inner_text("#error") == ""
    assert ax.node("#admin-token").get("invalid") in (None, "false")
    assert heard(page)[-1].startswith("status: ")
    assert page.evaluate("sessionStorage.getItem('admin-token')") == token  # kept for this tab


def test_a_batch_adds_the_good_photos_and_names_each_refused_one_in_one_announcement(
    page: Any, live_server, axe_source: str, shared_data: Path, tmp_path: Path, scheme: str, screenshots: Path
):
    _, token = live_server
    notes = tmp_path / "notes.jpg"
    notes.write_text("this is not a photo")
    batch = [
        shared_data / PHOTOS / GOOD[0],
        shared_data / TWO_FACES[0] / TWO_FACES[1],
        notes,
        shared_data / TOO_LARGE[0] / TOO_LARGE[1],
        shared_data / PHOTOS / GOOD[1],
        shared_data / NO_FACE[0] / NO_FACE[1],
        shared_data / TOO_MANY_PIXELS[0] / TOO_MANY_PIXELS[1],
    ]
    assert sum(p.stat().st_size for p in batch) > MAX_UPLOAD  # together over the upload limit
    page.fill("#admin-token", token)
    page.click("text=Show the people")
    poll_until(page, "() => document.getElementById('status').textContent.length > 0")
    page.evaluate("window.__heard = []")
    answers: list[Any] = []
    page.on("response", lambda r: answers.append(r) if r.request.method == "POST" else None)

    page.fill("#name", "Barack Obama")
    page.set_input_files("#photos", [str(p) for p in batch])
    page.click("text=Add person")
    poll_until(page, "() => document.getElementById('status').textContent.startsWith('Added')")
    # The whole batch first (over the limit), then a photo a request.
    assert [a.status for a in answers] == [413, 201, 422, 422, 413, 201, 422, 422], [a.status for a in answers]
    refusals = [r for a in answers[1:] if a.status == 422 for r in a.json()["refused"]]
    reasons = {r["photo"]: r["reason"] for r in refusals}
    assert reasons == {
        TWO_FACES[1]: "2 faces found",
        "notes.jpg": reasons["notes.jpg"],
        NO_FACE[1]: "no face found",
        TOO_MANY_PIXELS[1]: "2000x1428 pixels is over the limit of 2 megapixels",
    } and reasons["notes.jpg"].startswith("not an image"), reasons
    too_large = answers[4].json()["detail"]
    assert "too large" in too_large, too_large

    said = page.inner_text("#status")
    assert said.startswith("Added Barack Obama: 2 photos, 2 in all. 5 photos were not added. "), said
    for photo, reason in [*reasons.items(), (TOO_LARGE[1], too_large)]:  # a sentence each, in order
        assert f" {photo}: {reason.rstrip('.')}." in said, (photo, said)
    assert said.index(TWO_FACES[1]) < said.index("notes.jpg") < said.index(TOO_LARGE[1]) < said.index(NO_FACE[1])
    # What a screen reader says unprompted: that the photos are being checked, then the one
    # announcement of the whole batch; no alert at all, not one per photo.
    assert heard(page) == ["status: Adding Barack Obama. Checking the photos for faces.", f"status: {said}"]
    assert "Barack Obama (2 photos)" in page.inner_text("#people")
    # Refusals keep the name, for other photos of the same person; the chosen photos are cleared.
    assert page.input_value("#name") == "Barack Obama"
    assert page.eval_on_selector("#photos", "el => el.files.length") == 0
    audit(page, axe_source, f"the gallery page at 320 px ({scheme}, a batch with refusals)")
    page.screenshot(path=str(screenshots / f"gallery-batch-{scheme}-320.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")

    # Every photo refused (one request): nothing is added, and one alert names each with why.
    page.evaluate("window.__heard = []")
    answers.clear()
    page.set_input_files("#photos", [str(batch[1]), str(batch[2])])
    page.click("text=Add person")
    poll_until(page, "() => document.getElementById('error').textContent.length > 0")
    assert [a.status for a in answers] == [422]
    alert = page.inner_text("#error")
    assert alert.startswith(f"Nothing was added. {TWO_FACES[1]}: 2 faces found. notes.jpg: not an image"), alert
    assert [h for h in heard(page) if h.startswith("alert")] == [f"alert: {alert}"]
    assert "Barack Obama (2 photos)" in page.inner_text("#people")

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove Barack Obama").click()
    poll_until(page, "() => document.getElementById('status').textContent.startsWith('Removed')")
