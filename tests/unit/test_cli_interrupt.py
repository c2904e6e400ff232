"""Ctrl-C in the command line at any moment: one line, "Stopped.", and exit status 130."""

from __future__ import annotations

import pytest

from describe_local import cli
from describe_local.errors import OcrNotInstalled


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


def _model_that_cannot_load_for_ctrl_c(*_args, **_kwargs):
    """As a stage reports an extension module interrupted while it loads (pybind11's ImportError)."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("initialization failed") from interrupt
    except ImportError as exc:
        raise OcrNotInstalled(f"PP-OCR cannot load ({exc}): pip install onnxruntime") from None


@pytest.mark.parametrize(("func", "code", "said"), [
    (_model_that_cannot_load_for_ctrl_c, 130, "Stopped.\n"),
    (lambda _args: (_ for _ in ()).throw(OcrNotInstalled("PP-OCR cannot load (no cv2)")), 4,
     "describe-local: error: PP-OCR cannot load (no cv2)\n"),
])
def test_ctrl_c_while_a_model_loads_is_not_told_as_a_missing_model(monkeypatch, capsys, func, code: int, said: str):
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: type("Args", (), {
        "verbose": 0, "command": "describe", "func": staticmethod(func)})())
    assert cli.main(["describe", "x.jpg"]) == code
    assert capsys.readouterr().err == said
