"""The ``/trust`` page: how a phone comes to trust the server's HTTPS authority in a few steps.

It offers the authority ``serve --https`` made (:mod:`~describe_local.server.certificate`) as a
``.crt`` download, which Android and iOS both install, shows its fingerprint to compare, and the
page's own address as a QR code (whose text alternative is the address itself) for the phone's
camera. ``serve`` tells the app what to offer in ``app.state.trust``; without it (plain HTTP, or
the user's own ``--cert``) the page says how to get there instead.
"""

from __future__ import annotations

import html
import string
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from describe_local.errors import NoCertificate
from describe_local.server.certificate import fingerprint_pem, pem_to_der
from describe_local.server.guard import PAGE_CSP

router = APIRouter(include_in_schema=False)

TEMPLATE = Path(__file__).parent / "static" / "trust.html"
CA_FILE_NAME = "describe-local-ca.crt"
CA_MEDIA_TYPE = "application/x-x509-ca-cert"  # what makes Android and iOS offer to install it


@dataclass(frozen=True)
class TrustInfo:
    """What the page offers: the authority's file (None: not one of ours), its fingerprint and end."""

    ca: Path | None
    fingerprint: str
    expires: str  # YYYY-MM-DD
    url: str = ""  # this page's address on the home network; empty: the address the request came to

    def at(self, url: str) -> TrustInfo:
        return replace(self, url=url)


def _trust(request: Request) -> TrustInfo | None:
    return getattr(request.app.state, "trust", None)


@router.get("/trust")
async def trust_page(request: Request) -> HTMLResponse:
    info = _trust(request)
    if info is None or info.ca is None:
        body = _not_ours(info)
    else:
        url = info.url or str(request.url_for("trust_page"))
        body = _steps(info, url)
    page = string.Template(_template()).substitute(body=body)
    return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})


@router.get(f"/trust/{CA_FILE_NAME}")
async def trust_download(request: Request) -> Response:
    info = _trust(request)
    if info is None or info.ca is None:
        raise NoCertificate("this server has no certificate authority of its own to offer; start it with "
                            "`describe-local serve --https`")  # fmt: skip
    try:
        pem = info.ca.read_bytes()
        same = fingerprint_pem(pem) == info.fingerprint
    except (OSError, ValueError):
        same = False
    if not same:  # removed, or replaced by another start: not what the page shows
        raise NoCertificate("the certificate changed since this server started; restart it and reload the page")
    return Response(pem_to_der(pem), media_type=CA_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{CA_FILE_NAME}"'})  # fmt: skip


@cache
def _template() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def qr_svg_uri(text: str) -> str:
    """``text`` as a QR code, an SVG ``data:`` URI (the page's policy allows data: images)."""
    import segno

    return segno.make(text, error="m", micro=False).svg_data_uri(scale=6, border=4, dark="#000", light="#fff")


def _steps(info: TrustInfo, url: str) -> str:
    e = html.escape
    fingerprint = ":<wbr>".join(e(pair) for pair in info.fingerprint.split(":"))  # breaks at 320 px
    return f"""
    <p class="lead">Phones open the app over HTTPS only from a server they trust. This server signs its
      own certificates; trust its certificate once on each phone, in a few steps.</p>

    <section class="card stack trust-address" aria-labelledby="address-title">
      <h2 id="address-title">1. Open this page on the phone</h2>
      <p>Point the phone's camera at the code, or type the address.</p>
      <img class="trust-qr" src="{e(qr_svg_uri(url))}" alt="{e(url)}" width="240" height="240">
      <p><a class="trust-url" href="{e(url)}">{e(url)}</a></p>
      <p>The phone warns that the connection is not private: this time, continue to the page.</p>
    </section>

    <section class="card stack" aria-labelledby="download-title">
      <h2 id="download-title">2. Download the certificate</h2>
      <p><a class="button" href="/trust/{CA_FILE_NAME}" download="{CA_FILE_NAME}">Download the certificate</a></p>
      <p>Before installing it, check that the phone shows this SHA-256 fingerprint:</p>
      <p class="trust-fingerprint"><code>{fingerprint}</code></p>
      <p>It is valid until {e(info.expires)}, and it vouches only for this machine's own names and
        home network addresses, never for any other site.</p>
    </section>

    <section class="card stack" aria-labelledby="android-title">
      <h2 id="android-title">3. Install it: Android</h2>
      <ol>
        <li>Open Settings, then Security and privacy (or Security), More security settings,
          Encryption and credentials.</li>
        <li>Choose Install a certificate, then CA certificate, and Install anyway.</li>
        <li>Pick {CA_FILE_NAME} from Downloads.</li>
      </ol>
    </section>

    <section class="card stack" aria-labelledby="iphone-title">
      <h2 id="iphone-title">3. Install it: iPhone and iPad</h2>
      <ol>
        <li>Download it in Safari and choose Allow: the phone says the profile was downloaded.</li>
        <li>Open Settings, General, VPN and Device Management, choose describe-local and Install.</li>
        <li>Then Settings, General, About, Certificate Trust Settings: turn on full trust for
          describe-local.</li>
      </ol>
    </section>

    <section class="card stack" aria-labelledby="done-title">
      <h2 id="done-title">4. Open the app</h2>
      <p><a href="/">Open the describe page</a>: the phone no longer warns, and can install the app.</p>
    </section>"""


def _not_ours(info: TrustInfo | None) -> str:
    if info is not None:  # --cert: the user's own certificate
        return """
    <p class="lead">This server uses the certificate it was given (<code>--cert</code>). Phones trust it
      the way its issuer says; there is nothing to install from here.</p>"""
    return """
    <p class="lead">This server is not serving HTTPS with a certificate of its own, so there is nothing
      to trust yet.</p>
    <p>Start it with <code>describe-local serve --host 0.0.0.0 --https</code>, then open this page
      again at the https address it prints.</p>"""
