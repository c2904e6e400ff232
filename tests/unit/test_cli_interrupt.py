"""Ctrl-C in the command line at any moment: one line, "Stopped.", and exit status 130."""

from __future__ import annotations

import pytest

from describe_local import cli


def _interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["build_parser", "_never_fail_to_print"])
def test_ctrl_c_while_the_subcommands_load_is_one_line(monkeypatch, capsys, where: str):
    """The subcommands' imports take seconds (fastapi, pydantic): Ctrl-C then is no traceback."""
    monkeypatch.setattr(cli, where, _interrupt)
    assert cli.main(["languages"]) == 130
    assert capsys.readouterr().err == "Stopped.\n"


def test_ctrl_c_while_a_command_runs_is_one_line(monkeypatch, capsys):
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: type("Args", (), {
        "verbose": 0, "command": "describe", "func": staticmethod(_interrupt)})())
    assert cli.main(["describe", "x.jpg"]) == 130
    assert capsys.readouterr().err == "Stopped.\n"
