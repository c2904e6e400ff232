"""The web app: ``describe-local serve`` serves the page, the API and the audio from this machine.

``create_app`` is imported on first use: the CLI reads ``server.certificate`` for every command's
parser, and that must not load FastAPI, uvicorn and the routes (some 40 MB and half a second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from describe_local.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from describe_local.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
