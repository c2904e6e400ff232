"""``describe-local serve --https``: a certificate authority limited to this machine's names, made
once in the state folder and kept, signing the server's certificate; where it is, its fingerprint and
its end printed; real HTTPS on loopback with the chain verified by Python's ssl; the /trust page
offering it; and the console saying when it is ready."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from describe_local.cli.serve import page_address
from describe_local.server.certificate import certificate_names, ensure_certificates, fingerprint, pem_to_der


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_until_ready(
    args: list[str], env: dict[str, str], port: int, verify: ssl.SSLContext | None, check=None
) -> str:
    """Run ``describe-local serve ARGS`` until /api/health says ready over HTTPS, then ``check(context)``
    while it still runs; return its output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "describe_local", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not come up"
            context = verify or _trust(Path(env["DESCRIBE_LOCAL_STATE_DIR"]) / "tls" / "ca.pem")
            if context is None:
                time.sleep(0.2)
                continue
            try:
                health = httpx.get(f"https://127.0.0.1:{port}/api/health", verify=context, timeout=2).json()
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if health["status"] == "ready":
                time.sleep(1.0)  # the console's "ready" line follows within a poll
                if check is not None:
                    check(context)
                break
            time.sleep(0.2)
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served on that port
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).raise_for_status()
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    return output


def _trust(cert: Path) -> ssl.SSLContext | None:
    """A client context that trusts only ``cert`` (and checks the host name against it)."""
    if not cert.is_file():
        return None
    return ssl.create_default_context(cafile=str(cert))


def test_serve_https_makes_an_authority_once_and_answers_over_tls(tmp_path: Path, shared_data: Path):
    port = free_port()
    env = {"DESCRIBE_LOCAL_STATE_DIR": str(tmp_path / "state"), "DESCRIBE_LOCAL_MODELS_DIR": str(tmp_path),
           "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "faces"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    tls = tmp_path / "state" / "tls"
    ca, chain, key = tls / "ca.pem", tls / "cert.pem", tls / "key.pem"
    seen: dict[str, object] = {}

    def over_tls(context: ssl.SSLContext) -> None:
        """What a client that trusts only the authority gets: the chain, the /trust page, the .crt."""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:  # fmt: skip
            seen["leaf"] = conn.getpeercert(binary_form=True)
        shown = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts"],
                               input="", capture_output=True, text=True, timeout=30).stdout  # fmt: skip
        seen["chain"] = [ssl.PEM_cert_to_DER_cert(f"-----BEGIN CERTIFICATE-----{pem.split('-----END')[0]}"
                                                  "-----END CERTIFICATE-----\n")
                         for pem in shown.split("-----BEGIN CERTIFICATE-----")[1:]]  # fmt: skip
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=10) as c:
            seen["page"] = c.get("/trust").text
            seen["crt"] = c.get("/trust/describe-local-ca.crt")

    first = serve_until_ready(["--https"], env, port, None, over_tls)
    made = ca.read_bytes()
    ca_der = ssl.PEM_cert_to_DER_cert(made.decode())
    printed = first.split("Certificate SHA-256 fingerprint: ", 1)[1].split()[0]
    assert printed == ":".join(f"{b:02X}" for b in hashlib.sha256(ca_der).digest())
    assert f"HTTPS certificate authority: {ca} (valid until " in first
    until = dt.date.fromisoformat(first.split("(valid until ", 1)[1][:10])
    assert dt.timedelta(days=3000) < until - dt.date.today() <= dt.timedelta(days=3651)
    assert f"Serving on https://127.0.0.1:{port}/" in first
    assert f"To trust it on a phone, open https://127.0.0.1:{port}/trust" in first
    assert key.stat().st_mode & 0o777 == 0o600 and (tls / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    # ssl verified the server's certificate against the authority; the server sends both.
    assert seen["leaf"] == pem_to_der(chain.read_bytes()) != ca_der  # its first certificate
    assert seen["chain"] == [seen["leaf"], ca_der]
    # The /trust page, over the same TLS: the fingerprint, and the authority as a .crt phones install.
    assert printed.replace(":", "") in str(seen["page"]).replace("<wbr>", "").replace(":", "")
    crt = seen["crt"]
    assert isinstance(crt, httpx.Response) and crt.status_code == 200, crt
    assert crt.headers["content-type"] == "application/x-x509-ca-cert" and crt.content == ca_der
    # The console says when it is ready and what is off, with how to turn captions on.
    assert "ready at https://127.0.0.1" in first and "faces" in first
    assert "captions are off" in first and "models pull ofa-tiny" in first

    second = serve_until_ready(["--https"], env, port, _trust(ca))
    assert ca.read_bytes() == made  # kept, so that the phones that trust it still do
    assert f"Certificate SHA-256 fingerprint: {printed}" in second and "authority is new" not in second

    # Your own certificate and key: the state folder's are not touched, nor made.
    own = tmp_path / "own"
    own_certs = ensure_certificates(own, ["localhost", "127.0.0.1"])
    env["DESCRIBE_LOCAL_STATE_DIR"] = str(tmp_path / "state2")
    third = serve_until_ready(["--https", "--cert", str(own_certs.chain), "--key", str(own_certs.key)], env, port,
                              _trust(own_certs.ca))  # fmt: skip
    assert f"Certificate SHA-256 fingerprint: {fingerprint(own_certs.chain)}" in third
    assert not (tmp_path / "state2" / "tls").exists()


def test_cert_and_key_go_together_with_https(tmp_path: Path):
    env = {"DESCRIBE_LOCAL_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "describe_local", "serve", "--cert", str(tmp_path / "c.pem")],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "--cert and --key go together, with --https" in done.stderr


def test_the_certificate_names_this_server_and_is_remade_only_when_it_must(tmp_path: Path):
    from cryptography import x509

    names = certificate_names("127.0.0.1")
    assert names[:3] == ["localhost", "127.0.0.1", "::1"]
    lan = certificate_names("0.0.0.0")  # every address: the LAN address (if found) and this host's names
    hostname = socket.gethostname().lower()
    assert (hostname in lan and f"{hostname.split('.')[0]}.local" in lan) or hostname in ("", "localhost")
    assert page_address("192.168.1.5") == "192.168.1.5" and page_address("0.0.0.0") in [*lan, "127.0.0.1"]

    now = dt.datetime.now(dt.UTC)
    names = certificate_names("192.168.1.5")
    assert names == ["localhost", "127.0.0.1", "::1", "192.168.1.5"]
    made = ensure_certificates(tmp_path, names, now)
    leaf = x509.load_pem_x509_certificate(made.chain.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1", "192.168.1.5"}
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert leaf.not_valid_after_utc - now <= dt.timedelta(days=825)  # the most iOS accepts
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf_pem, ca_pem = made.chain.read_bytes(), made.ca.read_bytes()

    assert ensure_certificates(tmp_path, names, now + dt.timedelta(days=100)).chain.read_bytes() == leaf_pem
    # Another address to serve on, in the same home network: a new server certificate, the same authority.
    moved = ensure_certificates(tmp_path, [*names[:3], "192.168.1.6"], now)
    assert moved.chain.read_bytes() != leaf_pem and moved.ca.read_bytes() == ca_pem and not moved.made_ca
    # The end of its life near: a new one, still from the same authority.
    renewed = moved.chain.read_bytes()
    later = ensure_certificates(tmp_path, [*names[:3], "192.168.1.6"], now + dt.timedelta(days=790))
    assert later.chain.read_bytes() != renewed and later.ca.read_bytes() == ca_pem
    # The authority's own end near (it lasts ten years): a new authority.
    assert ensure_certificates(tmp_path, names, now + dt.timedelta(days=3640)).made_ca


def _verify(ca_pem: bytes, chain_pem: bytes, name: str) -> None:
    """Verify ``chain_pem``'s first certificate for ``name`` as a browser would, trusting only ``ca_pem``
    (cryptography's verifier honours NameConstraints); raises VerificationError if it does not hold."""
    import ipaddress

    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    try:
        subject: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = x509.DNSName(name)
    leaf, *rest = x509.load_pem_x509_certificates(chain_pem)
    store = Store([x509.load_pem_x509_certificate(ca_pem)])
    PolicyBuilder().store(store).build_server_verifier(subject).verify(leaf, rest)


def test_the_authority_vouches_only_for_this_machine(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A phone that trusts the authority trusts it for this server's names and home addresses, and
    for no other site, even one its own key signs; a new address from the router keeps it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.verification import VerificationError

    from describe_local.server.certificate import _make_leaf

    names = ["localhost", "127.0.0.1", "::1", "192.168.1.5", "myhost", "myhost.local"]
    made = ensure_certificates(tmp_path, names)
    ca = x509.load_pem_x509_certificate(made.ca.read_bytes())
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    limits = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert limits.critical
    allowed = limits.value.permitted_subtrees
    assert {str(t.value) for t in allowed if isinstance(t, x509.DNSName)} == {"localhost", "myhost", "myhost.local"}
    assert {str(t.value) for t in allowed if isinstance(t, x509.IPAddress)} == {"192.168.0.0/16", "127.0.0.0/8",
                                                                                "::1/128"}  # fmt: skip
    chain_pem, ca_pem = made.chain.read_bytes(), made.ca.read_bytes()
    for name in names:
        _verify(ca_pem, chain_pem, name)

    # Even a certificate the authority's own key signs is refused for any other name or address.
    ca_key = serialization.load_pem_private_key((tmp_path / "ca-key.pem").read_bytes(), password=None)
    for other in ("bank.example", "myhost.local.evil.example", "8.8.8.8", "10.0.0.1"):
        _, forged = _make_leaf([other], ca, ca_key, dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
        forged_pem = forged.public_bytes(serialization.Encoding.PEM)
        with pytest.raises(VerificationError, match="name constraint"):
            _verify(ca_pem, forged_pem, other)

    # The router hands out another address in the same block: the phone's trust holds.
    moved = ensure_certificates(tmp_path, [*names[:3], "192.168.7.40", *names[4:]])
    assert not moved.made_ca and moved.ca.read_bytes() == ca_pem
    _verify(ca_pem, moved.chain.read_bytes(), "192.168.7.40")
    _verify(ca_pem, moved.chain.read_bytes(), "myhost.local")
    # Another network altogether: a new authority, said out loud (phones must trust it again).
    with caplog.at_level("WARNING", logger="describe_local.server.certificate"):
        elsewhere = ensure_certificates(tmp_path, [*names[:3], "10.0.0.5", *names[4:]])
    assert elsewhere.made_ca and elsewhere.fingerprint != made.fingerprint
    assert "phones must trust the new one" in caplog.text and "10.0.0.5" in caplog.text


def test_a_certificate_from_before_the_authority_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A state folder from an older version holds a self-signed certificate that may vouch for any
    site: the next start makes the limited authority, and a server certificate it signs."""
    import subprocess as sp

    from cryptography import x509

    sp.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"), "-days", "30",
            "-subj", "/CN=old", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE"], check=True, capture_output=True)  # fmt: skip
    old = (tmp_path / "cert.pem").read_bytes()
    with caplog.at_level("WARNING", logger="describe_local.server.certificate"):
        made = ensure_certificates(tmp_path, ["localhost", "127.0.0.1"])
    assert "not limited to this machine" in caplog.text and "phones must trust the new one" in caplog.text
    assert made.made_ca and made.chain.read_bytes() != old
    _leaf, ca = x509.load_pem_x509_certificates(made.chain.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.NameConstraints).critical
    _verify(made.ca.read_bytes(), made.chain.read_bytes(), "127.0.0.1")


def test_a_start_that_cannot_listen_makes_no_token(tmp_path: Path):
    """The admin token is shown once: a first start on a taken port must not make (and lose) it."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")},
           "DESCRIBE_LOCAL_STATE_DIR": str(tmp_path / "state"),
           "DESCRIBE_LOCAL_MODELS_DIR": str(tmp_path / "models"),
           "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "faces")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "describe_local", "serve", "--port", str(port)],
                              capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Admin token" not in done.stdout and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("describe-local: error:")]
    assert len(errors) == 1 and f"cannot listen on 127.0.0.1:{port}" in errors[0] and "--port" in errors[0]
    # The next start that can listen shows the token (it was never made).
    proc = subprocess.Popen([sys.executable, "-m", "describe_local", "serve", "--port", str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert first.startswith("Admin token (shown once"), first
