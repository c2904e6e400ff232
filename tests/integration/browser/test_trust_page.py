"""The /trust page in Chromium: a phone-width screen reads it, axe-core finds nothing, and the QR code
a phone's camera sees holds the address its text alternative says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from describe_local.pipeline import Describer
from describe_local.server import create_app
from describe_local.server.certificate import certificate_names, ensure_certificates
from describe_local.server.running import ServerThread
from describe_local.server.trust_api import TrustInfo
from describe_local.settings import Settings
from tests.integration.browser.test_pages import audit, no_horizontal_scroll, small_targets

ADDRESS = "https://192.168.1.5:8000/trust"


@pytest.fixture(scope="module")
def trust_server(page_settings: Settings, describer: Describer) -> Iterator[tuple[ServerThread, str]]:
    """A server offering its authority, as ``serve --https`` sets it up; and the authority's fingerprint."""
    certs = ensure_certificates(page_settings.state_dir / "tls", certificate_names("127.0.0.1"))
    app = create_app(page_settings, describer)
    app.state.trust = TrustInfo(certs.ca, certs.fingerprint, certs.ca_expires.date().isoformat(), ADDRESS)
    with ServerThread(app) as server:
        yield server, certs.fingerprint


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_trust_page_at_320_px(browser: Any, trust_server, axe_source: str, scheme: str, screenshots: Path):
    import cv2

    server, fingerprint = trust_server
    context = browser.new_context(viewport={"width": 320, "height": 640}, color_scheme=scheme, bypass_csp=True,
                                  service_workers="block", accept_downloads=True)  # fmt: skip
    page = context.new_page()
    try:
        page.goto(f"{server.url}/trust")
        headings = page.eval_on_selector_all("h1, h2", "els => els.map(e => e.tagName + ' ' + e.textContent)")
        assert headings[0] == "H1 Trust this server on a phone"
        assert any("Android" in h for h in headings) and any("iPhone" in h for h in headings)
        assert no_horizontal_scroll(page), "the page scrolls sideways at 320 px"
        assert not small_targets(page)
        audit(page, axe_source, f"/trust ({scheme})")
        page.screenshot(path=str(screenshots / f"trust-320-{scheme}.png"), full_page=True)

        # The code holds the address; its text alternative is that address, also there as a link.
        qr = page.locator("img.trust-qr")
        assert qr.get_attribute("alt") == ADDRESS
        assert page.locator(f'a[href="{ADDRESS}"]').inner_text() == ADDRESS
        pixels = cv2.imdecode(np.frombuffer(qr.screenshot(), np.uint8), cv2.IMREAD_GRAYSCALE)
        found, _, _ = cv2.QRCodeDetector().detectAndDecode(pixels)
        assert found == ADDRESS
        shown = page.inner_text(".trust-fingerprint").replace("\n", "").replace("\u200b", "")
        assert shown == fingerprint

        # The button downloads the authority as a .crt.
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the certificate").click()
        assert download.value.suggested_filename == "describe-local-ca.crt"
    finally:
        context.close()


def test_the_qr_code_shows_under_the_pages_own_policy(browser: Any, trust_server):
    """The code is a data: image, which the page's Content-Security-Policy must let through."""
    server, _ = trust_server
    context = browser.new_context(viewport={"width": 320, "height": 640}, service_workers="block")
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(f"{server.url}/trust")
        page.wait_for_load_state("load")
        assert page.evaluate("() => document.querySelector('img.trust-qr').naturalWidth") > 0
        assert not refused, refused
    finally:
        context.close()
