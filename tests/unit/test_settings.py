"""Settings: defaults < config file < environment < command line, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from describe_local.errors import ConfigError
from describe_local.settings import Settings, project_root


def test_defaults_keep_models_beside_the_code_not_in_home():
    s = Settings.load(environ={})
    assert s.models_dir == project_root() / "models"
    assert s.known_faces == project_root() / "known_faces"
    assert s.face_tolerance == 0.55 and s.beam == 5 and s.lang == "en"


def test_precedence(tmp_path: Path):
    config = tmp_path / "describe-local.toml"
    config.write_text('lang = "fr"\nbeam = 3\nface_tolerance = 0.5\n', encoding="utf-8")
    env = {"DESCRIBE_LOCAL_BEAM": "2", "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "g")}
    s = Settings.load(config_file=config, environ=env, face_tolerance=None, lang="es")
    assert s.lang == "es"  # command line beats config
    assert s.beam == 2  # environment beats config
    assert s.face_tolerance == 0.5  # config beats default; None override ignored
    assert s.known_faces == tmp_path / "g"


def test_config_file_from_environment(tmp_path: Path):
    config = tmp_path / "elsewhere.toml"
    config.write_text('[describe-local]\nrequire_token_for_describe = true\n', encoding="utf-8")
    s = Settings.load(environ={"DESCRIBE_LOCAL_CONFIG": str(config)})
    assert s.require_token_for_describe is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DESCRIBE_LOCAL_BEAM": "five"}, "'beam'"),
        ({"DESCRIBE_LOCAL_KEEP_UPLOADS": "maybe"}, "'keep_uploads'"),
        ({"DESCRIBE_LOCAL_CONFIG": "/nonexistent/x.toml"}, "does not exist"),
    ],
)
def test_bad_values_are_reported(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ=env)


def test_unknown_setting_in_config(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("colour = 'blue'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load(config_file=config, environ={})


def test_broken_config_file(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("lang = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read config file"):
        Settings.load(config_file=config, environ={})
