"""The extension's setup and its life with a server that comes and goes, in real Chromium with
the real describer: the options page opens on install; "Test the connection" tries the address
and token typed (an address without http:// gets it); the toolbar badge says "off" while the
server is down, "ok" when it answers, and in a tab how many images were described; images that
failed are described when the server comes back; a lazily loaded image is described when it is
scrolled into view, and one loaded while hidden when it appears; the shortcut says the alt and
only what the long description adds."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from describe_local.server import alt_text_api, create_app
from describe_local.server.running import ServerThread
from tests.integration.browser.test_extension import (  # noqa: F401 (fixtures)
    PHOTOS,
    TIMEOUT_MS,
    _Quiet,
    alt_server,
    with_extension,
)

LAZY_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lazy</title></head>
<body><main><h1>Photos</h1>
<img id="first" src="people.jpg" width="300" height="200">
<section id="more" hidden><img id="revealed" src="signs.png" width="300" height="200"></section>
<div style="height: 5000px"></div>
<img id="lazy" loading="lazy" src="poster.png" width="300" height="200">
</main></body></html>
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(get: Any, wanted: Any, timeout_s: float = 60.0) -> Any:
    """``get()`` until it returns ``wanted`` (bounded in time); the last value."""
    deadline = time.monotonic() + timeout_s
    value = get()
    while value != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        value = get()
    return value


@pytest.fixture(scope="module")
def lazy_site(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("lazy-site")
    for name in ("people.jpg", "poster.png", "signs.png"):
        shutil.copyfile(shared_data / PHOTOS[name], root / name)
    (root / "lazy.html").write_text(LAZY_PAGE)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/lazy.html"
    server.shutdown()
    thread.join(10)


def test_the_options_open_on_install_and_test_what_is_typed(with_extension, alt_server):  # noqa: F811
    from playwright.sync_api import expect

    context, worker = with_extension
    server_url, token, _ = alt_server
    extension_id = worker.url.split("/")[2]
    # Opened by itself on install: a tab (Playwright attaches after it opened, so it asks the browser).
    tabs = "async () => (await chrome.tabs.query({})).map(t => t.url)"
    assert poll(lambda: f"chrome-extension://{extension_id}/options.html" in worker.evaluate(tabs), True, 30)
    options = context.new_page()
    options.goto(f"chrome-extension://{extension_id}/options.html")
    status = options.get_by_role("status")
    test = options.get_by_role("button", name="Test the connection")
    address = options.get_by_label("Server address")
    token_field = options.get_by_label("Describe token (if your server asks for one)")
    assert "Not the admin token" in options.locator("#token-help").inner_text()

    address.fill(server_url.removeprefix("http://"))  # typed without http://, not saved
    token_field.fill(token)
    test.click()
    expect(status).to_have_text("http:// was added in front of the address. The server answers and is ready.")
    expect(address).to_have_value(server_url)
    token_field.fill("not-the-token")
    test.click()
    expect(status).to_contain_text("refused this token")
    token_field.fill("")
    test.click()
    expect(status).to_contain_text("needs a describe token")
    address.fill("ftp://127.0.0.1:1")
    test.click()
    expect(status).to_contain_text("must start with http:// or https://")
    address.fill(f"127.0.0.1:{free_port()}")
    test.click()
    expect(status).to_contain_text("is not reachable at http://127.0.0.1:")
    assert worker.evaluate("async () => await chrome.storage.local.get(null)") == {}  # tests save nothing

    address.fill(server_url.removeprefix("http://") + "/")
    token_field.fill(token)
    options.get_by_role("button", name="Save").click()
    expect(status).to_have_text("http:// was added in front of the address. Saved.")
    assert worker.evaluate("async () => (await chrome.storage.local.get('server')).server") == server_url


def test_the_badge_retry_when_the_server_is_back_and_lazy_images(with_extension, lazy_site,  # noqa: F811
                                                                  page_settings, describer):
    context, worker = with_extension
    port = free_port()
    worker.evaluate(f"async () => await chrome.storage.local.set({{server: '127.0.0.1:{port}'}})")
    badge = "async (tabId) => await chrome.action.getBadgeText(tabId === null ? {} : {tabId})"
    title = "async () => await chrome.action.getTitle({})"

    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(lazy_site)
    assert poll(lambda: worker.evaluate(badge, None), "off") == "off"  # nothing listens there
    assert f"does not answer at http://127.0.0.1:{port}" in worker.evaluate(title)
    assert page.get_attribute("#first", "alt") is None

    app = create_app(page_settings, describer)
    if not any(getattr(route, "path", None) == "/api/alt-text" for route in app.routes):
        app.include_router(alt_text_api.router)
    server = ServerThread(app, port=port).start()
    try:
        # Nothing is reloaded: the background notices the server and the page retries.
        page.wait_for_selector("#first[data-describe-local-alt]", state="attached")
        assert page.get_attribute("#first", "alt") == "Three people."
        tab = worker.evaluate("async (url) => (await chrome.tabs.query({})).find(t => t.url === url).id", lazy_site)
        assert poll(lambda: worker.evaluate(badge, tab), "1") == "1"
        assert worker.evaluate(badge, None) == "ok"

        page.wait_for_timeout(1500)
        assert page.get_attribute("#lazy", "data-describe-local-alt") is None  # far below: not loaded yet
        page.locator("#lazy").scroll_into_view_if_needed()
        page.wait_for_selector("#lazy[data-describe-local-alt]", state="attached")
        assert "coronavirus" in page.get_attribute("#lazy", "alt")
        assert poll(lambda: worker.evaluate(badge, tab), "2") == "2"

        # The shortcut: the alt, then only what the long description adds ("There are three people
        # in the image." adds nothing to "Three people.").
        page.locator("#first").scroll_into_view_if_needed()
        page.hover("#first")
        page.bring_to_front()
        worker.evaluate("describeFocusedInActiveTab()")
        page.wait_for_function("document.getElementById('describe-local-live')?.textContent.length > 0")
        assert page.evaluate("document.getElementById('describe-local-live').textContent") == "Three people."
        assert worker.evaluate(badge, tab) == "2"  # asked for on demand: not counted again

        # An image loaded while hidden (a tab, a carousel, a lazy section) is described when it appears.
        assert page.get_attribute("#revealed", "data-describe-local-alt") is None
        page.evaluate("document.getElementById('more').hidden = false")
        page.wait_for_selector("#revealed[data-describe-local-alt]", state="attached")
        assert "SPEED LIMIT" in page.get_attribute("#revealed", "alt")
        assert poll(lambda: worker.evaluate(badge, tab), "3") == "3"
    finally:
        server.stop()
