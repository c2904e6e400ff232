"""A conversion killed half-way leaves ``onnx.partial`` in its model: ``models list`` and
``models verify`` say so (never "ok"), and ``verify --clean`` removes it, unless the conversion
that writes it is still running. Real folders, a real killed process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from describe_local.cli import main as cli_main
from describe_local.store import ModelStore, import_model
from describe_local.store.formats import BUSY_MARKER, OFA_ONNX_PARTIAL
from tests.integration.test_store import _ofa_files, _write_folder


def _model_with_partial(tmp_path):
    store = ModelStore.open(tmp_path / "models")
    model = import_model(store, _write_folder(tmp_path / "usb" / "ofa-tiny", _ofa_files(seed=3)))
    partial = model.path / OFA_ONNX_PARTIAL
    partial.mkdir()
    # Written by a process that is then killed, as `models convert` is by Ctrl-C or the OOM killer.
    writer = subprocess.Popen([sys.executable, "-c", "import sys, time; open(sys.argv[1], 'wb').write(b'x' * 4096); "
                               "time.sleep(60)", str(partial / "encoder.onnx")])
    (partial / f"{BUSY_MARKER}{writer.pid}").touch()
    return store, model, partial, writer


def test_an_interrupted_conversion_is_seen_by_list_and_verify_and_cleaned(tmp_path, capsys):
    store, model, partial, writer = _model_with_partial(tmp_path)
    try:
        while not (partial / "encoder.onnx").exists() or (partial / "encoder.onnx").stat().st_size < 4096:
            pass
        # While its writer lives, the folder is left be.
        assert cli_main(["models", "--models-dir", str(store.root), "verify", "--clean"]) == 0
        assert "still running" in capsys.readouterr().out and partial.exists()
    finally:
        writer.kill()
        writer.wait()
    assert cli_main(["models", "--models-dir", str(store.root), "verify"]) == 1
    out = capsys.readouterr().out
    assert "onnx.partial" in out and "verify --clean" in out and ": ok" not in out
    assert cli_main(["models", "--models-dir", str(store.root), "list"]) == 0
    assert "UNFINISHED: onnx.partial" in capsys.readouterr().out
    assert cli_main(["models", "--models-dir", str(store.root), "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["installed"][0]["unfinished"] == ["onnx.partial"]
    assert cli_main(["models", "--models-dir", str(store.root), "verify", "--clean"]) == 0
    assert "removed onnx.partial" in capsys.readouterr().out
    assert not partial.exists() and (model.path / "pytorch_model.bin").is_file()
    assert cli_main(["models", "--models-dir", str(store.root), "verify"]) == 0
    assert ": ok (" in capsys.readouterr().out
    assert os.listdir(model.path).count(OFA_ONNX_PARTIAL) == 0
