"""``describe-local serve``: the web app for phones and kiosks on the home network.

With ``--https`` it serves over TLS with a self-signed certificate made once and kept in
the state folder (or the ``--cert``/``--key`` given): a phone treats the page as a secure
context only over HTTPS (or on localhost), and only then runs its service worker
(offline use, installing the app), its camera and its share sheet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import ipaddress
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.cli._common import add_gallery_option, load_settings
from describe_local.errors import CannotListen, ConfigError

if TYPE_CHECKING:
    from describe_local.server.state import ServerState

log = logging.getLogger(__name__)

TLS_FOLDER = "tls"  # under the state folder
CERT_DAYS = 800  # iOS refuses server certificates valid for more than 825 days
RENEW_BEFORE_DAYS = 30
ANY_ADDRESS = ("0.0.0.0", "::", "")
CAPTION_HINT = "`describe-local models pull ofa-tiny` (or `describe-local models import FOLDER` offline)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the web page and API (take a photo on a phone, hear it described)",
        description=(
            "Serve the describe page, the known-people page, the API (/docs) and the audio "
            "from this machine. Models load once at start-up. On first start an admin token "
            "is made and printed once: keep it, it is needed to change the known people."
        ),
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for the home network)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    add_gallery_option(parser)
    parser.add_argument(
        "--reset-admin-token", action="store_true",
        help="make a new admin token (the old one stops working) and print it",
    )
    parser.add_argument(
        "--https", action="store_true",
        help="serve over HTTPS, which phones need for offline use and installing the app; a self-signed "
             "certificate is made once in the state folder (trust it on each phone, see README)",
    )
    parser.add_argument("--cert", type=Path, metavar="PEM", help="with --https: your own certificate (PEM)")
    parser.add_argument("--key", type=Path, metavar="PEM", help="with --https: the key of --cert (PEM)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from describe_local.server import create_app
    from describe_local.server.auth import ADMIN, DESCRIBE, TokenStore
    from describe_local.server.connections import uvicorn_config
    from describe_local.server.logs import keep_names_out_of_logs

    if (args.cert or args.key) and not (args.cert and args.key and args.https):
        raise ConfigError("--cert and --key go together, with --https")
    settings = load_settings(args, host="host", port="port", known_faces="gallery")
    # The port first: a start that cannot listen (the port taken) must not make, and lose, a token.
    listening = _listen(settings.host, settings.port)
    tokens = TokenStore.open(settings.state_dir)
    new_admin = tokens.reset(ADMIN) if args.reset_admin_token else tokens.ensure(ADMIN)
    if new_admin:
        print(f"Admin token (shown once; needed for the Known people page): {new_admin}")
    if settings.require_token_for_describe:
        new_describe = tokens.ensure(DESCRIBE)
        if new_describe:
            print(f"Access token for describing (shown once; enter it on the page): {new_describe}")

    address = page_address(settings.host)
    tls: dict[str, str] = {}
    if args.https:
        if args.cert:
            cert, key = args.cert, args.key
            for path in (cert, key):
                if not path.is_file():
                    raise ConfigError(f"{path} is not a file")
        else:
            cert, key = ensure_certificate(Path(settings.state_dir) / TLS_FOLDER, certificate_names(settings.host))
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        print(f"Certificate SHA-256 fingerprint: {fingerprint(cert)}")
    url = f"{'https' if tls else 'http'}://{_url_host(address)}:{settings.port}/"

    debug = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    keep_names_out_of_logs(debug)
    log.setLevel(logging.DEBUG if debug else logging.INFO)  # "ready" and its warnings, even without -v
    app = create_app(settings)
    config = uvicorn_config(
        app,
        settings,
        host=settings.host,
        port=settings.port,
        # uvicorn's access log shows full paths (names, signatures): only when debugging.
        access_log=debug,
        timeout_graceful_shutdown=5,
        **tls,
    )
    print(f"Serving on {url} (models are loading; Ctrl-C stops)", flush=True)
    if not tls and settings.host in ANY_ADDRESS:
        print("Phones need --https for offline use and to install the app.", flush=True)
    sys.stdout.flush()
    threading.Thread(target=report_when_ready, args=(app.state.server, url), name="ready", daemon=True).start()
    server = uvicorn.Server(config)
    server.run(sockets=[listening])
    return 0 if server.started else 1


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound and listening on ``host``:``port`` (:class:`CannotListen`, with what to do, if not)."""
    import uvicorn

    try:
        return uvicorn.Config(app=None, host=host, port=port, log_config=None).bind_socket()
    except (OSError, SystemExit) as exc:  # uvicorn logs the reason and exits where it cannot bind
        reason = getattr(exc, "strerror", None) or "the address is taken or not this machine's"
        raise CannotListen(f"cannot listen on {_url_host(host)}:{port} ({reason}); is another server running "
                          "there? Stop it, or choose another --port") from None


# -- saying when it is ready --------------------------------------------------------------------


def report_when_ready(state: ServerState, url: str, poll_s: float = 0.2) -> None:
    """Wait for the models to load, then log "ready" with what is loaded, and a warning for each
    stage that is off (captions: how to install a model)."""
    while state.status == "loading":
        time.sleep(poll_s)
    if state.describer is None:
        log.error("the models could not be loaded: %s", state.load_error)
        return
    loaded, off = [], []
    for stage, status in state.describer.status().items():
        if status.loaded:
            loaded.append(f"{stage} ({status.name})" if status.name else stage)
        else:
            off.append(stage)
            detail = status.detail or "not loaded"
            if stage == "caption":
                hint = "" if "models pull" in detail else f"; install a caption model with {CAPTION_HINT}"
                log.warning("captions are off: %s%s", detail, hint)
            else:
                log.warning("%s is off: %s", stage, detail)
    log.info("ready at %s: %s loaded%s", url, ", ".join(loaded) or "nothing",
             f"; off: {', '.join(off)}" if off else "")


# -- the address to open, and the certificate -----------------------------------------------------


def lan_address() -> str | None:
    """This machine's address on the home network, found without sending anything: a UDP socket
    "connected" to a private address only picks the interface its route would use."""
    for probe in ("10.255.255.255", "192.168.255.255", "172.31.255.255"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                found = s.getsockname()[0]
        except OSError:
            continue
        if not ipaddress.ip_address(found).is_loopback and found != "0.0.0.0":
            return found
    return None


def page_address(host: str) -> str:
    """The address a phone opens: the LAN address when listening on every address (if it can be
    found), else the host given."""
    if host in ANY_ADDRESS:
        return lan_address() or "127.0.0.1"
    return host


def certificate_names(host: str) -> list[str]:
    """The names and addresses a certificate for this server should hold."""
    names = ["localhost", "127.0.0.1", "::1"]
    if host in ANY_ADDRESS:
        found = lan_address()
        names += [found] if found else []
        hostname = socket.gethostname()
        names += [hostname, f"{hostname}.local"] if hostname and hostname != "localhost" else []
    elif host.startswith("[") and host.endswith("]"):
        names.append(host[1:-1])
    else:
        names.append(host)
    return list(dict.fromkeys(n.lower() for n in names if _usable_name(n)))


def _usable_name(name: str) -> bool:
    """An IP address, or a host name a certificate can hold (letters, digits, hyphens, dots)."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name.isascii() and all(part and part.replace("-", "").isalnum() for part in name.split("."))


def fingerprint(cert: Path) -> str:
    """The SHA-256 fingerprint of a PEM certificate, as browsers and phones show it (AB:CD:...)."""
    import ssl

    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def ensure_certificate(folder: Path, names: list[str], now: dt.datetime | None = None) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` in ``folder``: kept from an earlier start while it is valid for another
    month and names all of ``names``, else made anew (phones must then trust the new one)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    now = now or dt.datetime.now(dt.UTC)
    if cert.is_file() and key.is_file():
        reason = _unfit(cert, names, now)
        if reason is None:
            return cert, key
        log.warning("making a new HTTPS certificate (%s); phones must trust the new one", reason)
    folder.mkdir(parents=True, exist_ok=True)
    key_pem, cert_pem = _self_signed(names, now)
    # The key is this server's alone: owner-only, written before the certificate that needs it.
    fd = os.open(key.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    os.replace(key.with_suffix(".tmp"), key)
    cert.write_bytes(cert_pem)
    log.info("made a self-signed HTTPS certificate for %s", ", ".join(names))
    return cert, key


def _unfit(cert: Path, names: list[str], now: dt.datetime) -> str | None:
    """Why the certificate at ``cert`` will not do (None when it will)."""
    from cryptography import x509

    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
        san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return "the one kept could not be read"
    if loaded.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return "the one kept expires soon"
    held = {str(v).lower() for v in san.get_values_for_type(x509.DNSName)}
    held |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    missing = [n for n in names if _name_key(n) not in held]
    return f"the one kept does not name {', '.join(missing)}" if missing else None


def _name_key(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _self_signed(names: list[str], now: dt.datetime) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed certificate for ``names``, both PEM.

    It is its own authority (CA, may sign certificates) so that Android and iOS let a person
    install and trust it; the names are in the subjectAltName, where browsers look."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "describe-local"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"describe-local on {socket.gethostname() or 'this server'}"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))  # a phone whose clock is a little behind
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _url_host(address: str) -> str:
    """``address`` as it goes in a URL (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
