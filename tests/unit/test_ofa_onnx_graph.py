"""The small ONNX graph writer the torch-free OFA converter uses: weights streamed into the data file
(aligned, read back exactly by ONNX Runtime), shared weights written once, fp16 graphs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from describe_local.see.caption.ofa_onnx.graph import ALIGN_LARGE_BYTES, Graph, save


def _run(path, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_weights_stream_into_an_aligned_data_file_and_run(tmp_path):
    import onnx

    rng = np.random.default_rng(0)
    big = rng.standard_normal((32, 10000)).astype(np.float32)  # over 1 MB: starts on a 64 KiB boundary
    small = rng.standard_normal((32, 32)).astype(np.float32)
    g = Graph("t", data=tmp_path / "t.onnx.data")
    x = g.input("x", np.float32, ["rows", 32])
    y = g.op("MatMul", x, g.const(small, "small"))
    y = g.op("MatMul", g.op("Add", y, g.op("MatMul", x, g.const(small, "small"))), g.const(big, "big"))
    g.output(g.activation(y, "gelu"), "y", np.float32, ["rows", 10000])
    files = save(g, tmp_path / "t.onnx")
    assert [f.name for f in files] == ["t.onnx", "t.onnx.data"]
    model = onnx.load(str(tmp_path / "t.onnx"), load_external_data=False)
    names = [t.name for t in model.graph.initializer]
    entries = {t.name: {e.key: e.value for e in t.external_data} for t in model.graph.initializer if t.external_data}
    assert sorted(entries) == ["big", "small"] and names.count("small") == 1  # used twice, written once
    assert int(entries["big"]["offset"]) % ALIGN_LARGE_BYTES == 0
    assert int(entries["big"]["length"]) == big.nbytes
    inputs = rng.standard_normal((3, 32)).astype(np.float32)
    (got,) = _run(tmp_path / "t.onnx", {"x": inputs})
    pre = ((inputs @ small) + (inputs @ small)) @ big
    erf = np.vectorize(math.erf)
    expected = 0.5 * pre * (1 + erf(pre / math.sqrt(2)))
    assert np.abs(got - expected).max() < 1e-3 * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("kind", ["relu", "gelu_new"])
def test_activations(tmp_path, kind):
    g = Graph("a", data=tmp_path / "a.onnx.data")
    x = g.input("x", np.float32, [5])
    g.output(g.activation(x, kind), "y", np.float32, [5])
    save(g, tmp_path / "a.onnx")
    values = np.array([-3.0, -0.5, 0.0, 0.7, 2.5], dtype=np.float32)
    (got,) = _run(tmp_path / "a.onnx", {"x": values})
    if kind == "relu":
        expected = np.maximum(values, 0)
    else:
        expected = 0.5 * values * (1 + np.tanh(math.sqrt(2 / math.pi) * (values + 0.044715 * values**3)))
    assert np.allclose(got, expected, atol=1e-6)


def test_fp16_graph_casts_its_weights(tmp_path):
    g = Graph("h", np.float16, data=tmp_path / "h.onnx.data")
    x = g.input("x", np.float16, [2, 600])
    weight = np.full((600, 1), 0.5, dtype=np.float32)
    g.output(g.op("MatMul", x, g.const(weight, "w")), "y", np.float16, [2, 1])
    save(g, tmp_path / "h.onnx")
    (got,) = _run(tmp_path / "h.onnx", {"x": np.ones((2, 600), dtype=np.float16)})
    assert got.dtype == np.float16 and np.array_equal(got, np.full((2, 1), 300, dtype=np.float16))
