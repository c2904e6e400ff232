"""``describe-local serve``: the web app for phones and kiosks on the home network."""

from __future__ import annotations

import argparse
import logging
import sys

from describe_local.cli._common import add_gallery_option, load_settings


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from describe_local.server import create_app
    from describe_local.server.auth import ADMIN, DESCRIBE, TokenStore
    from describe_local.server.connections import uvicorn_config
    from describe_local.server.logs import keep_names_out_of_logs

    settings = load_settings(args, host="host", port="port", known_faces="gallery")
    tokens = TokenStore.open(settings.state_dir)
    new_admin = tokens.reset(ADMIN) if args.reset_admin_token else tokens.ensure(ADMIN)
    if new_admin:
        print(f"Admin token (shown once; needed for the Known people page): {new_admin}")
    if settings.require_token_for_describe:
        new_describe = tokens.ensure(DESCRIBE)
        if new_describe:
            print(f"Access token for describing (shown once; enter it on the page): {new_describe}")

    debug = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    keep_names_out_of_logs(debug)
    config = uvicorn_config(
        create_app(settings),
        settings,
        host=settings.host,
        port=settings.port,
        # uvicorn's access log shows full paths (names, signatures): only when debugging.
        access_log=debug,
        timeout_graceful_shutdown=5,
    )
    print(f"Serving on http://{settings.host}:{settings.port}/ (models are loading; Ctrl-C stops)", flush=True)
    sys.stdout.flush()
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
