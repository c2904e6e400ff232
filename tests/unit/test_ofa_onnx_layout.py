"""The ONNX folder layout without running a model: which precisions a folder has, stale layouts,
checksums in the store's manifest, the embedding table read a row at a time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from describe_local.store import formats
from describe_local.store.manifest import Manifest, checksum_folder, refresh_checksums


def _ofa_folder(root: Path, *, format_: int = formats.OFA_ONNX_FORMAT, precisions=("fp32",)) -> Path:
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"model_type": "ofa"}), encoding="utf-8")
    onnx = root / formats.OFA_ONNX_DIR
    onnx.mkdir()
    files = {}
    for precision in precisions:
        for name in (formats.OFA_ONNX_ENCODER, formats.OFA_ONNX_DECODER):
            graph = formats.ofa_onnx_graph(name, precision)
            for rel in (graph, formats.ofa_onnx_data_name(graph)):
                (root / rel).write_bytes(rel.encode())
                files[rel] = "0" * 64
    np.save(root / formats.OFA_ONNX_EMBEDDINGS, np.arange(12, dtype=np.float32).reshape(4, 3))
    (root / formats.OFA_ONNX_MANIFEST).write_text(json.dumps({"format": format_, "files": files}), encoding="utf-8")
    return root


def test_precisions_need_graphs_and_their_weights(tmp_path):
    folder = _ofa_folder(tmp_path / "m", precisions=("fp32", "int8"))
    assert formats.ofa_onnx_precisions(folder) == ["fp32", "int8"] and formats.has_ofa_onnx(folder)
    assert not formats.ofa_onnx_stale(folder)
    (folder / formats.ofa_onnx_data_name(formats.ofa_onnx_graph(formats.OFA_ONNX_DECODER, "int8"))).unlink()
    assert formats.ofa_onnx_precisions(folder) == ["fp32"]


def test_an_older_layout_is_stale_not_runnable(tmp_path):
    folder = _ofa_folder(tmp_path / "m", format_=1)
    assert formats.ofa_onnx_stale(folder) and not formats.has_ofa_onnx(folder)
    assert formats.ofa_onnx_precisions(folder) == []
    plain = tmp_path / "plain"
    plain.mkdir()
    assert not formats.ofa_onnx_stale(plain)


def test_store_checksums_leave_out_the_optimised_copies(tmp_path):
    folder = _ofa_folder(tmp_path / "m")
    cache = folder / formats.OFA_ONNX_CACHE_DIR / "key"
    cache.mkdir(parents=True)
    (cache / "encoder.onnx").write_bytes(b"machine specific")
    found = checksum_folder(folder)
    assert formats.OFA_ONNX_MANIFEST in found and "config.json" in found
    assert not any(rel.startswith(formats.OFA_ONNX_CACHE_DIR) for rel in found)


def test_refresh_records_the_onnx_files_only(tmp_path):
    folder = _ofa_folder(tmp_path / "m")
    assert refresh_checksums(folder, formats.OFA_ONNX_DIR) is None  # no store manifest: nothing written
    Manifest(name="m", kind="caption", source="test", licence="", files={"config.json": "stale",
             "onnx/gone.onnx": "x"}).write(folder)
    manifest = refresh_checksums(folder, formats.OFA_ONNX_DIR)
    assert manifest.files["config.json"] == "stale"  # checked at install; not re-blessed here
    assert "onnx/gone.onnx" not in manifest.files
    assert formats.OFA_ONNX_EMBEDDINGS in manifest.files
    assert Manifest.read(folder).files == manifest.files


def test_embedding_rows_read_from_the_file(tmp_path):
    from describe_local.see.caption.ofa_onnx.runtime import EmbeddingTable

    folder = _ofa_folder(tmp_path / "m")
    table = EmbeddingTable(folder / formats.OFA_ONNX_EMBEDDINGS)
    full = np.load(folder / formats.OFA_ONNX_EMBEDDINGS)
    ids = np.array([[3, 0], [1, 1]])
    assert table.shape == (4, 3) and np.array_equal(table[ids], full[ids]) and table[ids].dtype == np.float32
    with pytest.raises(IndexError):
        table[np.array([4])]


def test_machine_key_follows_the_graphs(tmp_path):
    pytest.importorskip("onnxruntime")
    from describe_local.see.caption.ofa_onnx.sessions import machine_key

    folder = _ofa_folder(tmp_path / "m")
    key = machine_key(folder)
    assert key == machine_key(folder)
    manifest = folder / formats.OFA_ONNX_MANIFEST
    manifest.write_text(manifest.read_text() + " ", encoding="utf-8")  # converted again
    assert machine_key(folder) != key
