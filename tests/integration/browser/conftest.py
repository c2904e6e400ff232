"""Browser fixtures: Debian's chromium driven by Playwright, axe-core, and a live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from describe_local.pipeline import Describer
from describe_local.server import create_app
from describe_local.server.auth import ADMIN, TokenStore
from describe_local.server.running import ServerThread
from describe_local.settings import Settings

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path(os.environ.get("DESCRIBE_LOCAL_CHROMIUM", "/usr/bin/chromium"))
# Playwright adds --headless itself; these keep chromium from reaching out or needing a GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.is_file():
        pytest.skip(
            f"axe-core is not installed at {AXE} (./scripts/setup-tests runs npm ci --prefix tests/integration/browser)"
        )
    return AXE.read_text()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (./scripts/setup-tests installs Debian's chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $DESCRIBE_LOCAL_SCREENSHOTS, or a temporary folder."""
    folder = Path(os.environ.get("DESCRIBE_LOCAL_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page_settings(tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    return make_settings(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def describer(page_settings: Settings, shared_data: Path) -> Iterator[Describer]:
    with Describer.load(page_settings) as d:
        yield d


@pytest.fixture(scope="module")
def live_server(page_settings: Settings, describer: Describer) -> Iterator[tuple[ServerThread, str]]:
    """A server on a free loopback port, and its admin token."""
    token = TokenStore.open(page_settings.state_dir).reset(ADMIN)
    server = ServerThread(create_app(page_settings, describer)).start()
    yield server, token
    server.stop()
    shutil.rmtree(page_settings.known_faces, ignore_errors=True)
