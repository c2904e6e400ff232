"""Whom the server trusts: the Host names it answers by default (against DNS rebinding), the client
a trusted reverse proxy names (for the wrong-token limit), and the /trust page that offers its HTTPS
authority to phones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from describe_local.server import create_app
from describe_local.server.certificate import certificate_names, ensure_certificates, machine_names
from describe_local.server.running import ServerThread
from describe_local.server.trust_api import TrustInfo

PEOPLE = "/api/gallery/people"  # needs the admin token: a wrong one is a guess


def _status(server: ServerThread, host: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/health", headers={"Host": host}, timeout=10)


def test_by_default_only_this_machines_names_are_answered(make_server):
    """A web page on another name that resolves to this server (DNS rebinding) is refused."""
    server, _ = make_server()
    port = server.port
    own = [f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}", "app.localhost", *machine_names()]
    for host in own:
        assert _status(server, host).status_code == 200, host
    foreign = ["evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "localhost.evil.example",
               "192.168.1.200", *(f"{name}.evil.example" for name in machine_names())]  # fmt: skip
    for host in foreign:
        refused = _status(server, host)
        assert refused.status_code == 400, host
        detail = refused.json()["detail"]
        assert "does not answer to that host name" in detail and "allowed_hosts" in detail, detail
        assert refused.headers["x-content-type-options"] == "nosniff"
    # "*" answers any name, as before this default.
    anyone, _ = make_server(allowed_hosts="*")
    assert _status(anyone, "evil.example").status_code == 200


def test_the_address_a_request_came_to_is_answered(base_settings, describer, tmp_path: Path):
    """Listening on every address, a phone uses whichever address it reached: that one is answered
    (here a server on 127.0.0.2, which is neither the configured host nor 'localhost')."""
    from describe_local.settings import Settings

    settings = Settings.load(environ={}, **{**base_settings.as_dict(), "state_dir": tmp_path})
    with ServerThread(create_app(settings, describer), host="127.0.0.2") as server:
        assert _status(server, f"127.0.0.2:{server.port}").status_code == 200
        assert _status(server, "127.0.0.3").status_code == 400


def _guess(client: httpx.Client, forwarded_for: str | None, token: str = "guess") -> int:
    headers = {"Authorization": f"Bearer {token}"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return client.get(PEOPLE, headers=headers).status_code


def test_behind_a_trusted_proxy_one_guesser_is_held_back_not_everyone(make_server):
    server, token = make_server(trusted_proxies="127.0.0.1, 10.9.0.0/16", token_failures_per_minute=3)
    with httpx.Client(base_url=server.url, timeout=10) as proxy:  # from 127.0.0.1: the proxy
        for _ in range(3):
            assert _guess(proxy, "203.0.113.7") == 401
        assert _guess(proxy, "203.0.113.7") == 429
        assert _guess(proxy, "203.0.113.7", token) == 429  # held back: even the right token is not tried
        # Everyone else behind the same proxy still gets in.
        assert _guess(proxy, "203.0.113.8", token) == 200
        # The guesser cannot dodge it by sending its own X-Forwarded-For: the proxy appends the
        # address it heard from, and that (the rightmost that is no trusted proxy) is the client.
        assert _guess(proxy, "198.51.100.1, 203.0.113.7", token) == 429
        assert _guess(proxy, "203.0.113.7, 10.9.4.4", token) == 429  # through a second trusted proxy
        assert _guess(proxy, "not-an-address, 203.0.113.8", token) == 200
    # A client that is no trusted proxy is counted by its own address, whatever header it sends.
    direct = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server.url, timeout=10, transport=direct) as c:
        for i in range(3):
            assert _guess(c, f"192.0.2.{i}") == 401
        assert _guess(c, "192.0.2.99", token) == 429


def test_without_trusted_proxies_x_forwarded_for_is_ignored(make_server):
    server, token = make_server(token_failures_per_minute=3)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for i in range(3):
            assert _guess(c, f"192.0.2.{i}") == 401
        assert _guess(c, "192.0.2.99") == 429
        assert _guess(c, "192.0.2.100", token) == 429


def test_a_bad_trusted_proxy_is_one_line_before_anything_is_made(tmp_path: Path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")},
           "DESCRIBE_LOCAL_STATE_DIR": str(tmp_path / "state"), "DESCRIBE_LOCAL_TRUSTED_PROXIES": "10.0.0.1, proxy.lan"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "describe_local", "serve", "--port", str(port)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "describe-local: error: setting trusted_proxies: 'proxy.lan' is not an address or CIDR block "
        "(e.g. 10.0.0.2 or 172.16.0.0/12)"
    ]
    assert "Admin token" not in done.stdout and not (tmp_path / "state" / "tokens.json").exists()


# -- the /trust page ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trusted(base_settings, describer, tmp_path_factory: pytest.TempPathFactory):
    """A server that offers its authority (as ``serve --https`` sets it up), and that authority."""
    from describe_local.settings import Settings

    state = tmp_path_factory.mktemp("trust")
    settings = Settings.load(environ={}, **{**base_settings.as_dict(), "state_dir": state})
    certs = ensure_certificates(state / "tls", certificate_names("127.0.0.1"))
    app = create_app(settings, describer)
    app.state.trust = TrustInfo(certs.ca, certs.fingerprint, certs.ca_expires.date().isoformat(),
                                "https://192.168.1.5:8000/trust")  # fmt: skip
    with ServerThread(app) as server:
        yield server, certs


def test_the_trust_page_offers_the_authority(trusted):
    from cryptography import x509

    server, certs = trusted
    with httpx.Client(base_url=server.url, timeout=10) as c:
        page = c.get("/trust")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src" not in page.headers["content-security-policy"]  # the page's own: nothing inline
        html = page.text
        assert "<h1>Trust this server on a phone</h1>" in html and "Android" in html and "iPhone" in html
        # The QR code's text alternative is the address it holds, which is also there as a link.
        assert 'alt="https://192.168.1.5:8000/trust"' in html and 'href="https://192.168.1.5:8000/trust"' in html
        assert certs.fingerprint.replace(":", "") in html.replace("<wbr>", "").replace(":", "")
        crt = c.get("/trust/describe-local-ca.crt")
    assert crt.status_code == 200 and crt.headers["content-type"] == "application/x-x509-ca-cert"
    assert 'filename="describe-local-ca.crt"' in crt.headers["content-disposition"]
    offered = x509.load_der_x509_certificate(crt.content)
    assert offered == x509.load_pem_x509_certificate(certs.ca.read_bytes())
    assert offered.extensions.get_extension_for_class(x509.NameConstraints).critical


def test_without_an_authority_the_trust_page_says_how_to_get_one(make_server):
    server, _ = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        page = c.get("/trust")
        assert page.status_code == 200 and "describe-local serve --host 0.0.0.0 --https" in page.text
        assert "<img" not in page.text
        missing = c.get("/trust/describe-local-ca.crt")
    assert missing.status_code == 404 and "serve --https" in missing.json()["detail"]


def test_an_authority_replaced_after_the_start_is_not_offered(base_settings, describer, tmp_path: Path):
    """Another start made a new authority: this server would offer one that is not what its page shows."""
    from describe_local.settings import Settings

    settings = Settings.load(environ={}, **{**base_settings.as_dict(), "state_dir": tmp_path})
    certs = ensure_certificates(tmp_path / "tls", certificate_names("127.0.0.1"))
    app = create_app(settings, describer)
    app.state.trust = TrustInfo(certs.ca, certs.fingerprint, "2036-01-01")
    with ServerThread(app) as server:
        assert httpx.get(f"{server.url}/trust/describe-local-ca.crt", timeout=10).status_code == 200
        certs.ca.write_bytes(b"not a certificate")
        changed = httpx.get(f"{server.url}/trust/describe-local-ca.crt", timeout=10)
        assert changed.status_code == 404 and "restart it" in changed.json()["detail"]
        certs.ca.unlink()
        assert httpx.get(f"{server.url}/trust/describe-local-ca.crt", timeout=10).status_code == 404
