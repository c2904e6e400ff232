"""Convert an OFA folder for the ONNX backend: graphs, embeddings, optional int8 and fp16, manifest (onnx, no torch).

Input: an OFA checkpoint folder. The graphs are written from its weights read
as NumPy arrays (:mod:`.build`, :mod:`.source`): no torch is imported, so a
lean install converts what it pulls or imports. Output: ``FOLDER/onnx/`` as
:mod:`describe_local.store.formats` lays it out, replaced as a whole (written
beside it, then renamed), with a manifest listing each file's sha256.

Each graph's weights go into a data file beside it (ONNX's external data):
ONNX Runtime then reads each weight straight into the tensor it runs with,
instead of parsing one big file into memory first and copying every weight out
of it, which put the captioner's load-time peak some 120 MB higher.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from describe_local.store import formats
from describe_local.store.manifest import sha256_file as sha256_of

log = logging.getLogger(__name__)



def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the MatMuls with constant weights (every linear layer, output projection included).

    Attention's activation-by-activation MatMuls stay fp32 (``MatMulConstBOnly``);
    convolutions too (the ResNet), as dynamic quantisation of them is slow on CPUs.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantiser logs each MatMul it skips, and advice for static quantisation, on the root logger.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(str(source), str(target), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                         extra_options={"MatMulConstBOnly": True})
    finally:
        root.setLevel(level)


def save_with_data_file(source: Path, target: Path) -> list[Path]:
    """Write the graph ``source`` as ``target`` with its weights in ``target.data``; return the files written."""
    import onnx

    model = onnx.load(str(source))
    data = formats.ofa_onnx_data_name(target.name)
    onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data, size_threshold=1024)
    (target.parent / data).chmod(target.stat().st_mode & 0o777)  # onnx makes it private; the graph is not
    return [target, target.parent / data]


def convert(folder: Path, *, int8: bool = False, fp16: bool = False, precision: str | None = None) -> dict:
    """Write ``folder``'s checkpoint as ONNX graphs (and int8, fp16 when asked); return the manifest written.

    ``precision`` is what the folder then runs on a CPU by default: "fp32", or
    "int8" (only with ``int8``); default fp32. The fp16 graphs are for CUDA.
    """
    from describe_local.see.caption.ofa.config import OFAConfig
    from describe_local.see.caption.ofa_onnx.build import build_graphs
    from describe_local.see.caption.ofa_onnx.sessions import prepare_copies
    from describe_local.see.caption.ofa_onnx.source import MAX_POSITIONS, Task, Weights

    folder = Path(folder)
    precision = precision or "fp32"
    if precision == "int8" and not int8:
        raise ValueError("precision int8 needs int8=True")
    config = OFAConfig.load(folder)
    task = Task.read(folder, config)
    weights = Weights(folder, config)
    work = folder / formats.OFA_ONNX_PARTIAL
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    busy = work / f"{formats.BUSY_MARKER}{os.getpid()}"  # `models verify --clean` leaves a live one be
    busy.touch()
    try:
        graphs = build_graphs(weights, task.resolution, work)
        unused = sorted(n for n in set(weights.state) - weights.used if not n.endswith("num_batches_tracked"))
        if unused:  # as the torch engine: said, not refused
            log.info("ignoring %d unused checkpoint entries, e.g. %s", len(unused), unused[:3])
        if int8:
            with tempfile.TemporaryDirectory(dir=work) as raw:
                for name, path in graphs.items():
                    quantize_int8(path, Path(raw) / f"{name}.int8.onnx")
                    save_with_data_file(Path(raw) / f"{name}.int8.onnx",
                                        work / Path(formats.ofa_onnx_graph(name, "int8")).name)
        if fp16:  # for CUDA: the same graphs, weights and arithmetic in fp16
            build_graphs(weights, task.resolution, work, "fp16")
        np.save(work / Path(formats.OFA_ONNX_EMBEDDINGS).name, weights("encoder.embed_tokens.weight"))
        busy.unlink()
        files = {f"{formats.OFA_ONNX_DIR}/{p.name}": sha256_of(p) for p in sorted(work.iterdir())}
        manifest = {
            "format": formats.OFA_ONNX_FORMAT,
            "precision": precision,
            "files": files,
            "resolution": task.resolution,
            "prompt": task.prompt,
            "search": task.search,
            "special": {"bos": config.bos_token_id, "pad": config.pad_token_id, "eos": config.eos_token_id},
            "max_text_tokens": min(config.max_position_embeddings, MAX_POSITIONS),
            "source_weights": _weights_stamp(folder),
        }
        (work / Path(formats.OFA_ONNX_MANIFEST).name).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        final = folder / formats.OFA_ONNX_DIR
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    prepare_copies(folder)
    log.info("converted %s: %s", folder, ", ".join(files))
    return manifest


def _weights_stamp(folder: Path) -> dict[str, int]:
    """Sizes of the weight files the graphs came from: a cheap way for tools to notice a replaced checkpoint."""
    return {name: (folder / name).stat().st_size for name in formats.WEIGHT_FILES if (folder / name).is_file()}


def verify(folder: Path) -> list[str]:
    """The files of ``folder``'s ONNX manifest that are missing or whose sha256 differs (empty: all good)."""
    manifest = formats.read_json_object(Path(folder) / formats.OFA_ONNX_MANIFEST) or {}
    bad = []
    for name, digest in (manifest.get("files") or {}).items():
        path = Path(folder) / name
        if not path.is_file() or sha256_of(path) != digest:
            bad.append(name)
    return bad
