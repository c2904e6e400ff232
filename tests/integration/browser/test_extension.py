"""The browser extension (extension/) loaded into real Chromium, against a real describe-local server.

A test page on one loopback port (with a cross-origin image from another origin), the server on
another, a token required: images without alt text (or with a file name for one) get alt text
from the server, the accessibility tree names them, and axe-core's image-alt rule passes after
the extension ran, where it failed before.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from describe_local.pipeline import Describer
from describe_local.server import alt_text_api, create_app
from describe_local.server.auth import DESCRIBE, TokenStore
from describe_local.server.running import ServerThread
from describe_local.settings import Settings

EXTENSION = Path(__file__).resolve().parents[3] / "extension"
CHROMIUM = os.environ.get("DESCRIBE_LOCAL_CHROMIUM", "/usr/bin/chromium")
# As conftest.py's, plus what loading an unpacked extension needs.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHOTOS = {
    "people.jpg": "faces/photos/knn_test__obama_and_biden.jpg",
    "poster.png": "ocr/signs/english.png",
    "signs.png": "ocr/signs/example3.png",
    "street.jpg": "ocr/signs/french.jpg",
    "mall.jpg": "ocr/scenes/mall_sign.jpg",
}
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Photos</title></head>
<body><main>
<h1>Photos</h1>
<img id="people" src="people.jpg" width="400" height="300">
<img id="people-again" src="people.jpg" width="200" height="150">
<img id="sign" src="{other_origin}/signs.png" alt="IMG_0042.jpg" width="300" height="200">
<img id="poster" src="poster.png" width="400" height="300">
<img id="decorative" src="people.jpg" alt="" width="100" height="75">
<a id="street-link" href="#street"><img id="street" src="street.jpg" alt="Street signs in Paris" width="300"
   height="300"></a>
<img id="tiny" src="signs.png" width="20" height="20">
</main>
<script>
setTimeout(() => {{
  const img = new Image(300, 200);
  img.id = "late";
  img.src = "mall.jpg";
  document.querySelector("main").append(img);
}}, 500);
</script>
</body></html>
"""
DESCRIBED = ("people", "people-again", "sign", "poster", "late")
TIMEOUT_MS = 120_000


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[tuple[str, str]]:
    """The test page and its photos served on 127.0.0.1; the URL of the page, and the same server
    under another origin (localhost), for a cross-origin image."""
    root = tmp_path_factory.mktemp("site")
    for name, source in PHOTOS.items():
        shutil.copyfile(shared_data / source, root / name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    port = server.server_address[1]
    (root / "page.html").write_text(PAGE.format(other_origin=f"http://localhost:{port}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/page.html", f"http://localhost:{port}"
    server.shutdown()
    thread.join(10)


class _CountAltText:
    """ASGI middleware counting the requests to POST /api/alt-text."""

    def __init__(self, app: Any, calls: list[str]) -> None:
        self.app, self.calls = app, calls

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/alt-text":
            self.calls.append(scope["method"])
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def alt_server(page_settings: Settings, describer: Describer, tmp_path_factory: pytest.TempPathFactory):
    """A describe-local server that needs a token to describe; its URL, the token, and the
    methods of the requests it got at /api/alt-text."""
    state_dir = tmp_path_factory.mktemp("alt-state")
    settings = Settings.load(environ={}, **{**page_settings.as_dict(), "state_dir": state_dir,
                                            "require_token_for_describe": True})
    token = TokenStore.open(state_dir).reset(DESCRIBE)
    app = create_app(settings, describer)
    if not any(getattr(route, "path", None) == "/api/alt-text" for route in app.routes):
        app.include_router(alt_text_api.router)
    calls: list[str] = []
    app.add_middleware(_CountAltText, calls=calls)
    server = ServerThread(app).start()
    yield server.url, token, calls
    server.stop()


@pytest.fixture
def with_extension(browser: Any, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Chromium with the extension loaded (a persistent profile, new headless mode); the context
    and the extension's service worker."""
    extension = tmp_path / "extension"
    shutil.copytree(EXTENSION, extension)
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM,
        headless=False,  # extensions need the new headless mode, asked for below
        args=["--headless=new", f"--disable-extensions-except={extension}", f"--load-extension={extension}",
              *CHROMIUM_ARGS],
    )
    try:
        worker = context.service_workers[0] if context.service_workers else context.wait_for_event(
            "serviceworker", timeout=30_000)
        yield context, worker
    finally:
        context.close()


def image_alt_violations(page: Any, axe_source: str) -> list[str]:
    """The images axe-core's image-alt rule fails (the 20 px one is left out: it is too small
    for the extension to describe on its own, on purpose)."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate(
        "async () => await axe.run({exclude: [['#tiny']]}, {runOnly: {type: 'rule', values: ['image-alt']}})")
    return [node["target"][0] for v in result["violations"] for node in v["nodes"]]


def test_the_extension_gives_images_alt_text_from_the_server(browser, with_extension, site, alt_server,
                                                              axe_source: str):
    page_url, other_origin = site
    server_url, token, calls = alt_server

    before = browser.new_context()
    plain = before.new_page()
    plain.goto(page_url)
    plain.wait_for_selector("#late")
    assert set(image_alt_violations(plain, axe_source)) == {"#people", "#people-again", "#poster", "#late"}
    before.close()

    from playwright.sync_api import expect

    context, worker = with_extension
    extension_id = worker.url.split("/")[2]
    # Every request the background makes is recorded: only the page's images and the server.
    worker.evaluate("""() => {
        globalThis.requested = [];
        const original = globalThis.fetch;
        globalThis.fetch = (url, init) => {
            requested.push([String(url), init?.method || 'GET']);
            return original(url, init);
        };
    }""")

    options = context.new_page()
    options.goto(f"chrome-extension://{extension_id}/options.html")
    options.get_by_label("Server address").fill(server_url)
    options.get_by_label("Describe token (if your server asks for one)").fill(token)
    options.get_by_role("button", name="Save").click()
    expect(options.get_by_role("status")).to_have_text("Saved.")
    options.get_by_role("button", name="Test the connection").click()
    expect(options.get_by_role("status")).to_have_text("The server answers and is ready.")
    # The extension's pages forbid inline scripts: axe-core comes in through DevTools instead.
    options.evaluate(f"() => {{ {axe_source}\n; window.axe = axe; }}")
    audit = options.evaluate("async () => await axe.run(document, {runOnly: {type: 'tag', "
                             "values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})")
    assert [v["id"] for v in audit["violations"]] == []
    options.close()

    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(page_url)
    for element in DESCRIBED:
        page.wait_for_selector(f"#{element}[data-describe-local-alt]", state="attached")
    alts = page.evaluate("""() => Object.fromEntries([...document.images].map(
        img => [img.id, [img.getAttribute('alt'), img.getAttribute('data-describe-local-alt')]]))""")
    assert alts["people"] == ["Three people.", "Three people."]
    assert alts["people-again"] == ["Three people.", "Three people."]
    assert "SPEED LIMIT" in alts["sign"][0] and alts["sign"][0] == alts["sign"][1]  # the file name replaced
    assert "Reduce your risk of coronavirus infection" in alts["poster"][0]
    assert "ALL YEAR" in alts["late"][0] or "SALE" in alts["late"][0]  # added after the page loaded
    assert alts["decorative"] == ["", None]  # alt="" is a choice, kept
    assert alts["street"] == ["Street signs in Paris", None]
    assert alts["tiny"] == [None, None]  # under 48 px: left alone

    tree = page.locator("main").aria_snapshot()
    assert 'img "Three people."' in tree
    assert "Reduce your risk of coronavirus infection" in tree
    assert image_alt_violations(page, axe_source) == []
    assert calls == ["POST"] * 4  # one per image URL: people.jpg twice on the page, described once

    # The keyboard shortcut's path: describe the image that has focus, and say it.
    page.bring_to_front()
    page.focus("#street-link")
    worker.evaluate("describeFocusedInActiveTab()")
    page.wait_for_function("document.getElementById('describe-local-live')?.textContent.includes('Text')")
    spoken = page.evaluate("document.getElementById('describe-local-live').textContent")
    assert "LES ARTS" in spoken and page.get_attribute("#street", "alt") == "Street signs in Paris"
    assert page.get_attribute("#describe-local-live", "role") == "status"
    worker.evaluate("describeFocusedInActiveTab()")  # again: from the session's cache
    page.wait_for_timeout(1000)
    assert calls == ["POST"] * 5

    requested = worker.evaluate("requested")
    assert sum(method == "POST" for _, method in requested) == 5
    images = {f"{page_url.rsplit('/', 1)[0]}/{n}" for n in PHOTOS} | {f"{other_origin}/signs.png"}
    for url, method in requested:
        assert (url, method) in {(f"{server_url}/api/alt-text", "POST"), (f"{server_url}/api/health", "GET"),
                                 (f"{server_url}/api/alt-text/token", "GET")} or (
            url in images and method == "GET"), url
