"""The integration tier: real models, real photos, child processes. Every test here is marked
``integration`` (``pytest -m "not integration"`` leaves them out)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


# -- a real web server on loopback (tests/integration/test_server*.py) ------------------------------


@pytest.fixture(scope="module")
def base_settings(tmp_path_factory: pytest.TempPathFactory, make_settings):
    """Isolated settings for the module's servers: an empty model store and gallery."""
    return make_settings(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def describer(base_settings, shared_data: Path):
    """All the real models (no caption model is installed in this store: reported as such)."""
    from describe_local.pipeline import Describer

    with Describer.load(base_settings) as d:
        yield d


@pytest.fixture(scope="module")
def make_server(base_settings, describer, tmp_path_factory: pytest.TempPathFactory):
    """Start a server with some settings changed; returns it and its admin token.

    With ``describe_token=True`` it returns the token for describing instead. Each
    server gets a fresh state folder; ``state_dir`` among the overrides picks one.
    """
    import time

    from describe_local.server import create_app
    from describe_local.server.auth import ADMIN, DESCRIBE, TokenStore
    from describe_local.server.running import ServerThread
    from describe_local.settings import Settings

    servers: list[ServerThread] = []

    def make(*, describe_token: bool = False, clock=time.time, **overrides):
        state_dir = overrides.pop("state_dir", None) or tmp_path_factory.mktemp("state")
        settings = Settings.load(environ={}, **{**base_settings.as_dict(), "state_dir": state_dir, **overrides})
        token = TokenStore.open(state_dir).reset(DESCRIBE if describe_token else ADMIN)
        server = ServerThread(create_app(settings, describer, clock=clock)).start()
        servers.append(server)
        return server, token

    yield make
    for server in servers:
        server.stop()
