"""The torch-free checkpoint reader: the same tensors as ``torch.load``, and nothing but tensors."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest

from describe_local.store import torch_checkpoint
from describe_local.store.torch_checkpoint import CheckpointError


def _tensors():
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    state = {
        "float": torch.randn(3, 4, generator=generator),
        "half": torch.randn(3, 4, generator=generator).half(),
        "bf16": torch.randn(5, 6, generator=generator).bfloat16(),
        "long": torch.arange(7),
        "transposed": torch.randn(4, 6, generator=generator).t(),  # strides, not contiguous
        "flags": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
    }
    state["rows"] = state["float"][1:]  # shares the storage of "float", at an offset
    state["param"] = torch.nn.Parameter(torch.ones(2, 2), requires_grad=False)
    return torch, state


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_same_tensors_as_torch_load(tmp_path, zip_format):
    torch, state = _tensors()
    path = tmp_path / "weights.bin"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    ours = torch_checkpoint.load(path)
    assert list(ours) == list(state)
    for name, tensor in torch.load(path, weights_only=True).items():
        expected = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).detach().numpy()
        assert ours[name].dtype == expected.dtype and ours[name].shape == expected.shape, name
        assert ours[name].tobytes() == expected.tobytes(), name  # bit for bit
    assert not ours["float"].flags.writeable  # a view of the mapped file


def test_safetensors_with_bfloat16(tmp_path):
    torch, state = _tensors()
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in state.items() if k not in ("rows", "transposed")}
    save_file(state, tmp_path / "model.safetensors")
    ours = torch_checkpoint.load(tmp_path / "model.safetensors")
    for name, tensor in state.items():
        expected = tensor.float() if tensor.dtype == torch.bfloat16 else tensor
        assert ours[name].tobytes() == expected.numpy().tobytes(), name


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_pickle_that_runs_code_is_refused_before_it_runs(tmp_path, zip_format):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"weight": _Payload(marker)}, protocol=2)
    path = tmp_path / "pytorch_model.bin"
    if zip_format:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", payload)
            archive.writestr("archive/version", "3\n")
    else:
        path.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001) + pickle.dumps({})
                         + payload)
    with pytest.raises(CheckpointError) as caught:
        torch_checkpoint.load(path)
    message = str(caught.value)
    assert "refusing posix.system" in message or "refusing os.system" in message, message
    assert "\n" not in message and str(path) in message
    assert not marker.exists()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_truncated_file_is_one_line(tmp_path, zip_format):
    torch, state = _tensors()
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=zip_format)
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    with pytest.raises(CheckpointError) as caught:
        torch_checkpoint.load(path)
    assert "\n" not in str(caught.value) and "truncated" in str(caught.value), caught.value
    assert caught.value.exit_code == 4


def test_not_a_dictionary_of_tensors(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    assert torch_checkpoint.load(path) == {}
    path.write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(CheckpointError, match="truncated"):
        torch_checkpoint.load(path)
    legacy = tmp_path / "list.bin"
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001) + pickle.dumps({})
                       + pickle.dumps([1, 2], protocol=2) + pickle.dumps([], protocol=2))
    with pytest.raises(CheckpointError, match="other than a dictionary"):
        torch_checkpoint.load(legacy)
