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


# -- ranges and choices (issue 10) ---------------------------------------------------------------


def test_every_numeric_setting_has_a_range_that_holds_its_default():
    import dataclasses
    import typing

    hints = typing.get_type_hints(Settings)
    defaults = Settings.load(environ={})
    for f in dataclasses.fields(Settings):
        if hints[f.name] in (int, float):
            assert "range" in f.metadata, f"setting {f.name} needs a range in its field metadata"
            low, high = f.metadata["range"]
            assert low <= getattr(defaults, f.name) <= high, f.name


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("max_queue", "0", "setting max_queue: 0 is out of range (1 to 1000)"),
        ("face_upsample", "-1", "setting face_upsample: -1 is out of range"),
        ("stage_timeout_s", "0", "setting stage_timeout_s: 0 is out of range"),
        ("beam", "0", "setting beam: 0 is out of range"),
        ("face_tolerance", "nan", "setting face_tolerance: nan is out of range"),
        ("request_timeout_s", "inf", "setting request_timeout_s: inf is out of range"),
        ("port", "70000", "setting port: 70000 is out of range (1 to 65535)"),
        ("device", "gpu", "setting device: 'gpu' is not one of auto, cpu, cuda"),
    ],
)
def test_values_out_of_range_are_one_line_naming_the_setting(setting: str, value: str, message: str):
    variable = "DESCRIBE_LOCAL_" + setting.upper()
    with pytest.raises(ConfigError) as info:
        Settings.load(environ={variable: value})
    text = str(info.value)
    assert text.startswith(message), text
    assert variable in text and "\n" not in text


def test_ranges_hold_for_the_config_file_and_the_command_line_too(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("max_queue = 5000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"max_queue: 5000 is out of range \(1 to 1000\), from .*c\.toml"):
        Settings.load(config_file=config, environ={})
    with pytest.raises(ConfigError, match="beam: 0 is out of range"):
        Settings.load(environ={}, beam=0)


def test_whole_numbers_must_be_whole(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("beam = 2.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'beam'"):
        Settings.load(config_file=config, environ={})
    config.write_text("beam = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'beam'"):
        Settings.load(config_file=config, environ={})
    config.write_text("beam = 3.0\nstage_timeout_s = 2\n", encoding="utf-8")
    loaded = Settings.load(config_file=config, environ={})
    assert loaded.beam == 3 and loaded.stage_timeout_s == 2.0


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "CPU"])
def test_device_choices(device: str):
    assert Settings.load(environ={"DESCRIBE_LOCAL_DEVICE": device}).device == device.lower()


def test_small_values_that_tests_and_kiosks_use_are_allowed():
    s = Settings.load(environ={}, stage_timeout_s=0.01, request_timeout_s=0.2, max_queue=1, torch_threads=0)
    assert s.stage_timeout_s == 0.01 and s.max_queue == 1


@pytest.mark.parametrize("content, message", [
    ("beam = 3\nlanguage = 'caf\u00e9'\n".encode("latin-1"), "is not UTF-8 text"),
    (b'"describe-local" = 3\n', "'describe-local' must be a table"),
    (b'describe-local = "x"\n', "'describe-local' must be a table"),
    (b'known_faces = "~nouser-that-is-not-here/x"\n', "names a home folder that does not exist"),
    (b"beam = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nests arrays or tables"),
    (b"beam = " + b"{a=" * 3000 + b"1" + b"}" * 3000 + b"\n", "nests arrays or tables"),
    (b"known_faces = [1, 2]\n", "is not a valid Path"),
    (b'known_faces = "a\\u0000b"\n', "is not a valid Path"),
    (b"beam = '" + b"x" * 10_000 + b"'\n", "is not a valid int"),
    (b"# " + b"x" * (1024 * 1024 + 1) + b"\n", "a settings file is a few lines"),
])
def test_a_bad_settings_file_is_one_config_error_naming_it(tmp_path: Path, content: bytes, message: str):
    config = tmp_path / "describe-local.toml"
    config.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        Settings.load(config_file=config, environ={})
    text = str(caught.value)
    assert message in text and "\n" not in text and len(text) < 400
    assert str(config) in text
