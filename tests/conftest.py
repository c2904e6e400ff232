"""Shared fixtures: where the real test data is, and fresh settings per test."""

from __future__ import annotations

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


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings isolated from the user's config, env and gallery: empty models and gallery."""
    from describe_local.settings import Settings

    for key in list(__import__("os").environ):
        if key.startswith("DESCRIBE_LOCAL_"):
            monkeypatch.delenv(key)
    models = tmp_path / "models"
    gallery = tmp_path / "known_faces"
    models.mkdir()
    gallery.mkdir()
    return Settings.load(
        environ={},
        models_dir=models,
        known_faces=gallery,
        output_dir=tmp_path / "out",
        state_dir=tmp_path / "state",
    )
