"""Convert an OFA folder for the ONNX backend: graphs, embeddings, optional int8, manifest (needs torch, onnx).

Input: an OFA checkpoint folder. Output: ``FOLDER/onnx/`` as
:mod:`describe_local.store.formats` lays it out, replaced as a whole (written
beside it, then renamed), with a manifest listing each file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from describe_local.store import formats

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the MatMuls with constant weights (every linear layer, output projection included).

    Attention's activation-by-activation MatMuls stay fp32 (``MatMulConstBOnly``);
    convolutions too (the ResNet), as dynamic quantisation of them is slow on CPUs.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                     extra_options={"MatMulConstBOnly": True})


def convert(folder: Path, *, int8: bool = False, precision: str | None = None) -> dict:
    """Export ``folder``'s checkpoint to ONNX (and int8 when ``int8``); return the manifest written.

    ``precision`` is what the folder then runs by default: "fp32", or "int8"
    (only with ``int8``); default fp32.
    """
    import torch

    from describe_local.see.caption.ofa import OFA
    from describe_local.see.caption.ofa.positions import MAX_POSITIONS
    from describe_local.see.caption.ofa_onnx.export import export_graphs

    folder = Path(folder)
    precision = precision or "fp32"
    if precision == "int8" and not int8:
        raise ValueError("precision int8 needs int8=True")
    engine = OFA.load(folder, device="cpu", dtype=torch.float32)
    config = engine.model.config
    work = folder / (formats.OFA_ONNX_DIR + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        export_graphs(engine.model, engine.task.resolution, work)
        np.save(work / Path(formats.OFA_ONNX_EMBEDDINGS).name,
                engine.model.encoder.embed_tokens.weight.detach().numpy().astype(np.float32))
        if int8:
            for name in (formats.OFA_ONNX_ENCODER, formats.OFA_ONNX_DECODER):
                quantize_int8(work / f"{name}.onnx", work / Path(formats.ofa_onnx_graph(name, "int8")).name)
        files = {f"{formats.OFA_ONNX_DIR}/{p.name}": sha256_of(p) for p in sorted(work.iterdir())}
        manifest = {
            "format": MANIFEST_FORMAT,
            "precision": precision,
            "files": files,
            "resolution": engine.task.resolution,
            "prompt": engine.task.prompt,
            "search": engine.task.search,
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
