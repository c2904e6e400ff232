"""Read PyTorch and safetensors checkpoints into NumPy arrays, without torch.

``torch.save`` writes a pickle whose tensors point into raw storages: in the zip
format (torch >= 1.6) each storage is a member ``ARCHIVE/data/KEY`` beside the
pickle ``ARCHIVE/data.pkl``; in the legacy format the storages follow the
pickle in the same file. A pickle can run any code when loaded, so it is read
here by an unpickler that knows only the few names a state dict is made of
(:data:`_ALLOWED`) and refuses any other, before anything runs.

Storages are memory-mapped where the file allows (zip members are stored
uncompressed): only the tensors that are used are ever read. bfloat16, which
NumPy lacks, becomes float32 (exactly).
"""

from __future__ import annotations

import collections
import json
import mmap
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from describe_local.errors import ModelNotInstalled

BFLOAT16 = "bfloat16"  # a storage's element type that NumPy has not: read as uint16, widened to float32

_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": BFLOAT16,
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
_TORCH_DTYPES: dict[str, str] = {
    "float32": "<f4", "float": "<f4", "float64": "<f8", "double": "<f8", "float16": "<f2", "half": "<f2",
    "bfloat16": BFLOAT16, "int64": "<i8", "long": "<i8", "int32": "<i4", "int": "<i4", "int16": "<i2",
    "short": "<i2", "int8": "i1", "uint8": "u1", "bool": "?",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_SAFETENSORS_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": BFLOAT16, "I64": "<i8", "I32": "<i4",
                       "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


class CheckpointError(ModelNotInstalled):
    """A weights file that is damaged, truncated, or holds more than tensors."""


@dataclass(frozen=True)
class _StorageType:
    dtype: str


@dataclass
class _Storage:
    """A storage's raw elements (a flat array over the mapped file), once it has been located."""

    dtype: str
    data: np.ndarray | None = None


def _element_size(dtype: str) -> int:
    return 2 if dtype == BFLOAT16 else np.dtype(dtype).itemsize


def _typed(raw: np.ndarray, dtype: str) -> np.ndarray:
    """A flat byte array seen as elements of ``dtype`` (bfloat16 as uint16 still)."""
    return raw.view("<u2" if dtype == BFLOAT16 else dtype)


def _finish(array: np.ndarray, dtype: str) -> np.ndarray:
    if dtype != BFLOAT16:
        return array
    # bfloat16 is the top half of a float32: widening it is a shift, exact
    return (np.ascontiguousarray(array).astype(np.uint32) << 16).view(np.float32)


def _as_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple) -> np.ndarray:
    if not isinstance(storage, _Storage) or storage.data is None:
        raise pickle.UnpicklingError("a tensor without its storage")
    if not all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride)) or len(size) != len(stride):
        raise pickle.UnpicklingError("a tensor with a malformed shape")
    flat = storage.data
    end = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1 if all(size) else offset
    if end > flat.shape[0]:
        raise pickle.UnpicklingError(f"a tensor reaches past its storage ({end} > {flat.shape[0]} elements)")
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * item for s in stride],
                                           writeable=False)
    return _finish(view, storage.dtype)


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: tuple, stride: tuple, *_ignored: Any) -> np.ndarray:
    return _as_tensor(storage, offset, tuple(size), tuple(stride))


def _rebuild_tensor_v3(storage: _Storage, offset: int, size: tuple, stride: tuple, _grad: Any, _hooks: Any,
                       dtype: str, *_ignored: Any) -> np.ndarray:
    if storage.dtype != dtype:  # an untyped storage: the tensor says what its elements are
        storage = _Storage(dtype, _typed(storage.data.view(np.uint8), dtype) if storage.data is not None else None)
    return _as_tensor(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: np.ndarray, *_ignored: Any) -> np.ndarray:
    return data


# The names a state dict's pickle may use; anything else (os.system, builtins.eval...) is refused.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
    **{("torch", name): dtype for name, dtype in _TORCH_DTYPES.items()},
    ("torch", "UntypedStorage"): _StorageType("u1"),
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, storage: Any) -> None:
        super().__init__(file)
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: a weights file holds only tensors") from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], (_StorageType, str))):
            raise pickle.UnpicklingError(f"refusing the persistent object {str(pid)[:60]}")
        return self._storage(pid)


def load(path: Path) -> dict[str, np.ndarray]:
    """The tensors of ``path`` (``.safetensors``, or a ``torch.save`` file), by name; read-only arrays.

    Raises :class:`CheckpointError` (one line, naming the file) when the file is
    damaged, truncated, or holds anything but tensors.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else b""
        if path.suffix == ".safetensors":
            state = _load_safetensors(mapped)
        elif zipfile.is_zipfile(path):
            state = _load_zip(path, mapped)
        elif bytes(mapped[:4]) == b"PK\x03\x04":
            raise EOFError("a zip archive without its end: truncated")
        else:
            state = _load_legacy(mapped)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, KeyError, TypeError,
            IndexError, AttributeError, struct.error, OSError) as exc:
        raise CheckpointError(f"cannot read the weights {path}: {exc or type(exc).__name__} "
                              "(damaged or not a weights file; copy the model again)") from exc
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise CheckpointError(f"{path} holds something other than a dictionary of tensors")
    return dict(state)


def _load_zip(path: Path, mapped: Any) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError("no data.pkl in the archive")
        prefix = pickles[0][: -len("data.pkl")]
        big = prefix + "byteorder" in names and archive.read(prefix + "byteorder").strip() == b"big"
        infos = {info.filename: info for info in archive.infolist()}

        def storage(pid: tuple) -> _Storage:
            kind, key = pid[1], str(pid[2])
            dtype = kind.dtype if isinstance(kind, _StorageType) else str(kind)
            info = infos.get(f"{prefix}data/{key}")
            if info is None:
                raise ValueError(f"storage {key} is missing from the archive")
            raw = _member_bytes(archive, info, mapped)
            if big:
                raw = _typed(raw, dtype).byteswap().view(np.uint8)
            return _Storage(dtype, _typed(raw[: len(raw) - len(raw) % _element_size(dtype)], dtype))

        with archive.open(pickles[0]) as handle:
            return _Unpickler(handle, storage).load()


def _member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, mapped: Any) -> np.ndarray:
    """A zip member's bytes: a view of the mapped file when stored uncompressed (as torch.save writes them)."""
    if info.compress_type == zipfile.ZIP_STORED:
        header = bytes(mapped[info.header_offset: info.header_offset + 30])
        if len(header) == 30 and header[:4] == b"PK\x03\x04":
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            if start + info.file_size <= len(mapped):
                return np.frombuffer(mapped, np.uint8, info.file_size, start)
    return np.frombuffer(archive.read(info), np.uint8)


def _load_legacy(mapped: Any) -> Any:
    """The pre-zip format: magic, protocol, system info, the state pickle, storage keys, then each storage."""
    if not mapped:
        raise EOFError("an empty file")
    stream = mapped  # an mmap reads like a file: the pickles are parsed from it without a copy
    if _Unpickler(stream, None).load() != _LEGACY_MAGIC:
        raise ValueError("not a PyTorch checkpoint (no zip archive, no legacy magic number)")
    _Unpickler(stream, None).load()  # protocol version
    info = _Unpickler(stream, None).load()
    if isinstance(info, dict) and not info.get("little_endian", True):
        raise ValueError("a big-endian legacy checkpoint")
    storages: dict[str, _Storage] = {}
    views: list[tuple[_Storage, str, int, int]] = []

    def storage(pid: tuple) -> _Storage:
        kind, key = pid[1], str(pid[2])
        dtype = kind.dtype if isinstance(kind, _StorageType) else str(kind)
        root = storages.setdefault(key, _Storage(dtype))
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return root
        view_key, offset, size = view
        part = _Storage(dtype)
        views.append((part, key, int(offset), int(size)))
        storages.setdefault(f"view:{view_key}", part)
        return part

    # Tensors are rebuilt once their storages are read, which come after the pickle: keep the calls for then.
    class _Deferred(_Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found = super().find_class(module, name)
            if not callable(found) or found is collections.OrderedDict:
                return found
            return lambda *args: _Later(found, args)

    state = _Deferred(stream, storage).load()
    keys = _Unpickler(stream, None).load()
    offset = stream.tell()
    for key in keys:
        root = storages.get(str(key))
        (count,) = struct.unpack("<q", bytes(mapped[offset: offset + 8]))
        offset += 8
        if root is None:
            raise ValueError(f"storage {key} is not used by the state")
        nbytes = count * _element_size(root.dtype)
        if count < 0 or offset + nbytes > len(mapped):
            raise EOFError("the file ends inside a storage: truncated")
        root.data = _typed(np.frombuffer(mapped, np.uint8, nbytes, offset), root.dtype)
        offset += nbytes
    for part, key, start, size in views:
        part.data = storages[key].data[start: start + size]
    return _resolve(state)


@dataclass
class _Later:
    """A tensor-rebuilding call of the legacy format, made once the storages are read."""

    function: Any
    args: tuple


def _resolve(value: Any) -> Any:
    if isinstance(value, _Later):
        return value.function(*(_resolve(a) for a in value.args))
    if isinstance(value, dict):
        return type(value)((k, _resolve(v)) for k, v in value.items())
    return value


def _load_safetensors(mapped: Any) -> dict[str, np.ndarray]:
    (length,) = struct.unpack("<Q", bytes(mapped[:8]))
    if length > len(mapped) - 8:
        raise EOFError("the header is longer than the file: truncated")
    header = json.loads(bytes(mapped[8: 8 + length]))
    base = 8 + length
    state = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{name}: unsupported element type {entry['dtype']}")
        start, end = (int(v) for v in entry["data_offsets"])
        shape = tuple(int(v) for v in entry["shape"])
        if base + end > len(mapped) or end - start != int(np.prod(shape)) * _element_size(dtype):
            raise EOFError(f"{name} reaches past the end of the file: truncated")
        raw = np.frombuffer(mapped, np.uint8, end - start, base + start)
        state[name] = _finish(_typed(raw, dtype).reshape(shape), dtype)
    return state
