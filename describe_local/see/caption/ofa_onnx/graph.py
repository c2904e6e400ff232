"""A small ONNX graph writer over ``onnx.helper``: NumPy arrays become initializers, each op one call.

Values are referred to by name (a ``str``). Floating-point constants take the
graph's dtype (float32, or float16 for the CUDA graphs), so that one builder
writes both. Weights go straight into a data file beside the graph (ONNX's
external data) as they are made, so that converting holds about one weight at a
time rather than the whole model twice over; large ones start at 64 KiB
boundaries, where ONNX Runtime can map them from the file instead of copying.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

OPSET = 17
DimSpec = int | str
EXTERNAL_MIN_BYTES = 1024  # smaller constants stay in the graph file
ALIGN_BYTES, ALIGN_LARGE_BYTES, LARGE_BYTES = 64, 65536, 1 << 20


class Graph:
    """The nodes, initializers, inputs and outputs of one ONNX graph being written."""

    def __init__(self, name: str, dtype: type = np.float32, data: Path | None = None) -> None:
        """``data``: the file the weights are written to (its name is what the graph refers to)."""
        import onnx  # noqa: F401  (fails early, with the module's name, where onnx is missing)

        self.name = name
        self.data_path = data
        self._data = open(data, "wb") if data is not None else None  # noqa: SIM115  (closed by close())
        self.dtype = np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self._count = 0
        self._small: dict[tuple, str] = {}
        self._named: set[str] = set()

    # -- values -------------------------------------------------------------------------------------

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def input(self, name: str, dtype: type, shape: list[DimSpec]) -> str:
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, _elem(dtype), shape))
        return name

    def output(self, value: str, name: str, dtype: type, shape: list[DimSpec]) -> None:
        """Declare ``value`` a graph output called ``name`` (renaming it through an Identity)."""
        from onnx import helper

        if value != name:
            self.op("Identity", value, out=name)
        self.outputs.append(helper.make_tensor_value_info(name, _elem(dtype), shape))

    def const(self, array: np.ndarray | float | list, name: str | None = None, *, keep_dtype: bool = False) -> str:
        """An initializer of ``array``; floating point arrays take the graph's dtype unless ``keep_dtype``.

        A ``name`` given twice is one initializer: the same weight, read by two parts of the graph.
        """
        from onnx import numpy_helper

        if name is not None and name in self._named:  # the same weight, used again
            return name
        array = np.asarray(array)
        if array.dtype.kind == "f" and not keep_dtype:
            array = array.astype(self.dtype, copy=False)
        small = array.size <= 16
        key = (array.dtype.str, array.shape, array.tobytes()) if small else None
        if key is not None and key in self._small:
            return self._small[key]
        name = name or self.fresh("const")
        if self._data is not None and array.nbytes >= EXTERNAL_MIN_BYTES:
            self.initializers.append(self._external(array, name))
        else:
            self.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))  # 0-d stays 0-d
        if key is not None:
            self._small[key] = name
        self._named.add(name)
        return name

    def _external(self, array: np.ndarray, name: str):
        """A tensor whose bytes are appended to the data file (little-endian, as ONNX stores them)."""
        from onnx import TensorProto, helper

        align = ALIGN_LARGE_BYTES if array.nbytes >= LARGE_BYTES else ALIGN_BYTES
        offset = -self._data.tell() % align
        self._data.write(b"\0" * offset)
        offset = self._data.tell()
        self._data.write(memoryview(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))).cast("B"))
        tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                             dims=list(array.shape), data_location=TensorProto.EXTERNAL)
        for key, value in (("location", self.data_path.name), ("offset", offset), ("length", array.nbytes)):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
        return tensor

    def close(self) -> None:
        if self._data is not None:
            self._data.close()

    def ints(self, values: list[int]) -> str:
        """A 1-D int64 constant (shapes, axes, pads)."""
        return self.const(np.asarray(values, dtype=np.int64))

    def op(self, op_type: str, *inputs: str, out: str | None = None, outputs: int = 1, **attrs) -> str:
        """Append a node; returns its output (the first, when ``outputs`` > 1: see :meth:`op_n`)."""
        return self.op_n(op_type, *inputs, out=out, outputs=outputs, **attrs)[0]

    def op_n(self, op_type: str, *inputs: str, out: str | None = None, outputs: int = 1, **attrs) -> list[str]:
        from onnx import helper

        names = [out] if out else [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.fresh(f"n_{op_type}"), **attrs))
        return names

    # -- common blocks ------------------------------------------------------------------------------

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None, name: str) -> str:
        """``x @ weight.T + bias`` as MatMul (which int8 dynamic quantisation covers) and Add."""
        y = self.op("MatMul", x, self.const(np.ascontiguousarray(weight.T), f"{name}.weight"))
        return y if bias is None else self.op("Add", y, self.const(bias, f"{name}.bias"))

    def layer_norm(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str, eps: float = 1e-5) -> str:
        return self.op("LayerNormalization", x, self.const(weight, f"{name}.weight"),
                       self.const(bias, f"{name}.bias"), axis=-1, epsilon=eps)

    def scale(self, x: str, factor: float) -> str:
        return x if factor == 1.0 else self.op("Mul", x, self.const(np.float32(factor)))

    def activation(self, x: str, kind: str) -> str:
        """``gelu`` (exact, with erf: ONNX Runtime fuses it), ``gelu_new`` (tanh approximation) or ``relu``."""
        if kind == "relu":
            return self.op("Relu", x)
        if kind == "gelu":
            erf = self.op("Erf", self.op("Div", x, self.const(np.float32(math.sqrt(2.0)))))
            return self.op("Mul", self.op("Mul", x, self.op("Add", erf, self.const(np.float32(1.0)))),
                           self.const(np.float32(0.5)))
        if kind == "gelu_new":
            cube = self.op("Mul", self.op("Pow", x, self.const(np.float32(3.0))), self.const(np.float32(0.044715)))
            inner = self.op("Mul", self.op("Add", x, cube), self.const(np.float32(math.sqrt(2.0 / math.pi))))
            half = self.op("Mul", x, self.const(np.float32(0.5)))
            return self.op("Mul", half, self.op("Add", self.op("Tanh", inner), self.const(np.float32(1.0))))
        raise ValueError(f"unknown activation {kind!r}")

    def unsqueeze(self, x: str, axes: list[int]) -> str:
        return self.op("Unsqueeze", x, self.ints(axes))

    def stack(self, values: list[str]) -> str:
        """Values of one shape stacked on a new first axis."""
        return self.op("Concat", *(self.unsqueeze(v, [0]) for v in values), axis=0)

    def slice_rows(self, x: str, end: str) -> str:
        """``x[:end]`` for a (1,) int64 ``end`` known only at run time."""
        return self.op("Slice", x, self.ints([0]), end, self.ints([0]))

    def dim(self, x: str, axis: int) -> str:
        """The size of ``x`` along ``axis``, as a (1,) int64 value."""
        return self.op("Shape", x, start=axis, end=axis + 1)

    # -- writing ------------------------------------------------------------------------------------

    def model(self):
        from onnx import helper

        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="describe-local")
        model.ir_version = 8  # what ONNX Runtime 1.17 and later read
        return model


def _elem(dtype: type) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def save(graph: Graph, target: Path) -> list[Path]:
    """Write ``graph`` as ``target`` (its weights are in its data file already); return the files written."""
    import onnx

    graph.close()
    onnx.save_model(graph.model(), str(target))
    onnx.checker.check_model(str(target))  # by path: the checker then sees the data file, and no 2 GB limit
    files = [target]
    if graph.data_path is not None:
        graph.data_path.chmod(target.stat().st_mode & 0o777)
        files.append(graph.data_path)
    return files
