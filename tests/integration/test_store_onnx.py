"""``models pull`` and ``models import`` export an OFA model to ONNX without torch.

A tiny random OFA checkpoint (real weights, the released layout) goes into a
store through the command line: from a folder, and pulled from the loopback hub
of ``test_store.py``. The graphs land in the model's ``onnx/`` with their
checksums in the store's manifest, and the folder then captions through the
ONNX backend.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import make_tiny_models
import pytest

from describe_local.cli import main as cli_main
from describe_local.errors import ManifestError
from describe_local.see.caption import onnx_backend
from describe_local.store import Manifest, ModelStore, formats, import_model
from tests.integration.test_store import _serve_hf_repo, hub  # noqa: F401 (the loopback hub fixture)


@pytest.fixture(scope="module")
def tiny_ofa(tmp_path_factory) -> Path:
    return make_tiny_models.write_ofa(tmp_path_factory.mktemp("usb") / "ofa-tiny", "ofa-tiny", seed=4, scale=3.0)


def _onnx_entries(manifest: Manifest) -> set[str]:
    return {rel for rel in manifest.files if rel.startswith(f"{formats.OFA_ONNX_DIR}/")}


def test_import_converts_and_records_checksums(tmp_path, tiny_ofa, capsys):
    models = tmp_path / "models"
    assert cli_main(["models", "--models-dir", str(models), "import", str(tiny_ofa)]) == 0
    assert "ONNX graphs written" in capsys.readouterr().out
    folder = models / "ofa-tiny"
    assert onnx_backend.accepts(folder) and formats.ofa_onnx_precisions(folder) == ["fp32"]
    manifest = Manifest.read(folder)
    on_disk = {p.relative_to(folder).as_posix() for p in (folder / formats.OFA_ONNX_DIR).iterdir()}
    # this machine's optimised copies (written by the conversion) are derived files, not checksummed
    assert formats.OFA_ONNX_CACHE_DIR in on_disk
    assert _onnx_entries(manifest) == on_disk - {formats.OFA_ONNX_CACHE_DIR}
    assert formats.OFA_ONNX_MANIFEST in on_disk
    assert manifest.verify(folder) == []
    assert cli_main(["models", "--models-dir", str(models), "verify"]) == 0
    # converting again (int8 too) replaces the graphs, and the manifest follows
    assert cli_main(["models", "--models-dir", str(models), "convert", "ofa-tiny", "--int8"]) == 0
    manifest = Manifest.read(folder)
    assert formats.ofa_onnx_graph(formats.OFA_ONNX_DECODER, "int8") in manifest.files
    assert manifest.verify(folder) == [] and not (tiny_ofa / formats.OFA_ONNX_DIR).exists()
    # a graph changed by hand is caught by `models verify`
    with open(folder / formats.ofa_onnx_graph(formats.OFA_ONNX_ENCODER), "ab") as handle:
        handle.write(b"\0")
    assert cli_main(["models", "--models-dir", str(models), "verify"]) == 1


def test_no_convert_and_a_converted_copy(tmp_path, tiny_ofa, capsys):
    models = tmp_path / "models"
    assert cli_main(["models", "--models-dir", str(models), "import", str(tiny_ofa), "--name", "plain",
                     "--no-convert"]) == 0
    assert not (models / "plain" / formats.OFA_ONNX_DIR).exists()
    # a folder converted elsewhere comes with its graphs, which are checked against their manifest
    assert cli_main(["models", "--models-dir", str(models), "convert", "plain"]) == 0
    copy = shutil.copytree(models / "plain", tmp_path / "usb" / "converted")
    (copy / "describe-local.json").unlink()
    capsys.readouterr()
    assert cli_main(["models", "--models-dir", str(models), "import", str(copy)]) == 0
    assert "converting" not in capsys.readouterr().err  # it had its graphs already
    assert onnx_backend.accepts(models / "converted")
    graph = copy / formats.ofa_onnx_graph(formats.OFA_ONNX_DECODER)
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(ManifestError, match="ONNX graphs do not match"):
        import_model(ModelStore.open(tmp_path / "other"), copy)


def test_pull_converts(tmp_path, tiny_ofa, hub, monkeypatch, capsys):  # noqa: F811 (the hub fixture)
    files = {p.name: p.read_bytes() for p in tiny_ofa.iterdir() if p.is_file()}
    _serve_hf_repo(hub, "OFA-Sys/ofa-tiny", files, lfs={"pytorch_model.bin"})
    monkeypatch.setenv("DESCRIBE_LOCAL_HF_ENDPOINT", hub.url)
    models = tmp_path / "models"
    assert cli_main(["models", "--models-dir", str(models), "pull", "ofa-tiny"]) == 0
    folder = models / "ofa-tiny"
    assert onnx_backend.accepts(folder)
    manifest = Manifest.read(folder)
    assert _onnx_entries(manifest) and manifest.verify(folder) == []
    onnx_manifest = json.loads((folder / formats.OFA_ONNX_MANIFEST).read_text())
    assert onnx_manifest["format"] == formats.OFA_ONNX_FORMAT


def test_a_model_that_cannot_convert_is_still_installed(tmp_path, tiny_ofa, capsys):
    broken = shutil.copytree(tiny_ofa, tmp_path / "usb" / "broken")
    (broken / "pytorch_model.bin").write_bytes(b"not a checkpoint" * 100)
    models = tmp_path / "models"
    assert cli_main(["models", "--models-dir", str(models), "import", str(broken)]) == 0
    err = capsys.readouterr().err
    assert "could not be converted to ONNX" in err and "models convert broken" in err
    assert (models / "broken").is_dir() and not (models / "broken" / formats.OFA_ONNX_DIR).exists()
