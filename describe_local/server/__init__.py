"""The web app: ``describe-local serve`` serves the page, the API and the audio from this machine."""

from __future__ import annotations

from describe_local.server.app import create_app

__all__ = ["create_app"]
