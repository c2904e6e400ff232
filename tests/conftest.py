"""Shared fixtures: where the real test data is, and fresh settings per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real photos with ground truth in ../shared/data (skips when absent)."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real test data not found at {SHARED_DATA} (a fresh clone has no ../shared)")
    return SHARED_DATA


def isolated_settings(root: Path, **overrides):
    """Settings that ignore the environment and keep every folder under ``root``:
    an empty model store, an empty gallery, and their own output and server state."""
    from describe_local.settings import Settings

    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "known_faces").mkdir(exist_ok=True)
    folders = {
        "models_dir": root / "models",
        "known_faces": root / "known_faces",
        "output_dir": root / "out",
        "state_dir": root / "state",
    }
    return Settings.load(environ={}, **{**folders, **overrides})


@pytest.fixture(scope="session")
def make_settings():
    """:func:`isolated_settings`, for module-scoped fixtures in any test folder."""
    return isolated_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings isolated from the user's environment, models and gallery."""
    for key in list(os.environ):
        if key.startswith("DESCRIBE_LOCAL_"):
            monkeypatch.delenv(key)
    return isolated_settings(tmp_path)
