"""``describe-local serve --https``: a self-signed certificate made once in the state folder and
reused, its fingerprint printed, real HTTPS on loopback; and the console saying when it is ready."""

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

from describe_local.cli.serve import certificate_names, ensure_certificate, fingerprint, page_address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_until_ready(args: list[str], env: dict[str, str], port: int, verify: ssl.SSLContext | None) -> str:
    """Run ``describe-local serve ARGS`` until /api/health says ready over HTTPS; return its output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "describe_local", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not come up"
            context = verify or _trust(Path(env["DESCRIBE_LOCAL_STATE_DIR"]) / "tls" / "cert.pem")
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


def test_serve_https_makes_a_certificate_once_and_answers_over_tls(tmp_path: Path, shared_data: Path):
    port = free_port()
    env = {"DESCRIBE_LOCAL_STATE_DIR": str(tmp_path / "state"), "DESCRIBE_LOCAL_MODELS_DIR": str(tmp_path),
           "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "faces"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    cert = tmp_path / "state" / "tls" / "cert.pem"
    key = cert.with_name("key.pem")

    first = serve_until_ready(["--https"], env, port, None)
    made = cert.read_bytes()
    printed = first.split("Certificate SHA-256 fingerprint: ", 1)[1].split()[0]
    der = ssl.PEM_cert_to_DER_cert(made.decode())
    assert printed == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    assert f"Serving on https://127.0.0.1:{port}/" in first
    assert key.stat().st_mode & 0o777 == 0o600
    # The console says when it is ready and what is off, with how to turn captions on.
    assert "ready at https://127.0.0.1" in first and "faces" in first
    assert "captions are off" in first and "models pull ofa-tiny" in first

    second = serve_until_ready(["--https"], env, port, _trust(cert))
    assert cert.read_bytes() == made  # kept, so that the phones that trust it still do
    assert f"Certificate SHA-256 fingerprint: {printed}" in second

    # Your own certificate and key: the state folder's are not touched, nor made.
    own = tmp_path / "own"
    own_cert, own_key = ensure_certificate(own, ["localhost", "127.0.0.1"])
    env["DESCRIBE_LOCAL_STATE_DIR"] = str(tmp_path / "state2")
    third = serve_until_ready(["--https", "--cert", str(own_cert), "--key", str(own_key)], env, port, _trust(own_cert))
    assert f"Certificate SHA-256 fingerprint: {fingerprint(own_cert)}" in third
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
    assert socket.gethostname().lower() in lan or not socket.gethostname()
    assert page_address("192.168.1.5") == "192.168.1.5" and page_address("0.0.0.0") in [*lan, "127.0.0.1"]

    now = dt.datetime.now(dt.UTC)
    cert, _ = ensure_certificate(tmp_path, names, now)
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert loaded.not_valid_after_utc - now <= dt.timedelta(days=825)  # the most iOS accepts
    assert loaded.extensions.get_extension_for_class(x509.BasicConstraints).value.ca  # installable on a phone
    made = cert.read_bytes()

    assert ensure_certificate(tmp_path, names, now + dt.timedelta(days=100))[0].read_bytes() == made
    # Another address to serve on, or the end of its life near: a new one.
    assert ensure_certificate(tmp_path, [*names, "192.168.1.5"], now)[0].read_bytes() != made
    renewed, later = cert.read_bytes(), now + dt.timedelta(days=790)
    assert ensure_certificate(tmp_path, [*names, "192.168.1.5"], later)[0].read_bytes() != renewed


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
