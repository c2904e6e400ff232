"""``describe-local serve``: the web app for phones and kiosks on the home network.

With ``--https`` it serves over TLS with a certificate signed by a small authority of its own,
made once and kept in the state folder (:mod:`describe_local.server.certificate`), or with the
``--cert``/``--key`` given: a phone treats the page as a secure context only over HTTPS (or on
localhost), and only then runs its service worker (offline use, installing the app), its camera
and its share sheet. The ``/trust`` page offers that authority to phones, with a QR code.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.cli._common import add_gallery_option, load_settings
from describe_local.errors import CannotListen, ConfigError
from describe_local.server.certificate import (
    ANY_ADDRESS,
    certificate_names,
    ensure_certificates,
    fingerprint,
    lan_address,
    machine_names,
)

if TYPE_CHECKING:
    from describe_local.server.state import ServerState
    from describe_local.server.trust_api import TrustInfo
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

TLS_FOLDER = "tls"  # under the state folder
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
        help="serve over HTTPS, which phones need for offline use and installing the app; a certificate "
             "authority limited to this machine's names is made once in the state folder: trust it on "
             "each phone from the /trust page (see README)",
    )
    parser.add_argument("--cert", type=Path, metavar="PEM", help="with --https: your own certificate (PEM)")
    parser.add_argument("--key", type=Path, metavar="PEM", help="with --https: the key of --cert (PEM)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from describe_local.server import create_app
    from describe_local.server.auth import ADMIN, DESCRIBE, TokenStore
    from describe_local.server.connections import uvicorn_config
    from describe_local.server.guard import parse_proxies
    from describe_local.server.logs import keep_names_out_of_logs

    if (args.cert or args.key) and not (args.cert and args.key and args.https):
        raise ConfigError("--cert and --key go together, with --https")
    settings = load_settings(args, host="host", port="port", known_faces="gallery")
    parse_proxies(settings.trusted_proxies)  # a mistake there is told before anything is made
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
    trust: TrustInfo | None = None
    if args.https:
        tls, trust = _tls(args, settings)
    url = f"{'https' if tls else 'http'}://{_url_host(address)}:{settings.port}/"

    debug = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    keep_names_out_of_logs(debug)
    log.setLevel(logging.DEBUG if debug else logging.INFO)  # "ready" and its warnings, even without -v
    app = create_app(settings)
    if trust is not None:
        app.state.trust = trust.at(f"{url}trust")
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
    if trust is not None and trust.ca is not None:
        print(f"To trust it on a phone, open {url}trust (a QR code, the certificate and the steps)", flush=True)
        if settings.host in ANY_ADDRESS and (local := next((n for n in machine_names() if n.endswith(".local")), None)):
            print(f"Where phones know mDNS names, https://{local}:{settings.port}/ stays the same when the "
                  "address changes", flush=True)
    sys.stdout.flush()
    threading.Thread(target=report_when_ready, args=(app.state.server, url), name="ready", daemon=True).start()
    server = uvicorn.Server(config)
    server.run(sockets=[listening])
    return 0 if server.started else 1


def _tls(args: argparse.Namespace, settings: Settings) -> tuple[dict[str, str], TrustInfo]:
    """uvicorn's TLS options, and what the /trust page offers; says where the authority is."""
    from describe_local.server.trust_api import TrustInfo

    if args.cert:
        for path in (args.cert, args.key):
            if not path.is_file():
                raise ConfigError(f"{path} is not a file")
        print(f"Certificate SHA-256 fingerprint: {fingerprint(args.cert)}")
        return {"ssl_certfile": str(args.cert), "ssl_keyfile": str(args.key)}, TrustInfo(None, "", "")
    certs = ensure_certificates(Path(settings.state_dir) / TLS_FOLDER, certificate_names(settings.host))
    until = certs.ca_expires.date().isoformat()
    print(f"HTTPS certificate authority: {certs.ca} (valid until {until}; it vouches only for this machine)")
    print(f"Certificate SHA-256 fingerprint: {certs.fingerprint}")
    if certs.made_ca:
        print("This authority is new: each phone must trust it once (see the /trust page).")
    tls = {"ssl_certfile": str(certs.chain), "ssl_keyfile": str(certs.key)}
    return tls, TrustInfo(certs.ca, certs.fingerprint, until)


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


# -- the address to open -------------------------------------------------------------------------


def page_address(host: str) -> str:
    """The address a phone opens: the LAN address when listening on every address (if it can be
    found), else the host given."""
    if host in ANY_ADDRESS:
        return lan_address() or "127.0.0.1"
    return host


def _url_host(address: str) -> str:
    """``address`` as it goes in a URL (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
