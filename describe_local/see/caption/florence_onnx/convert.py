"""Convert a ``transformers`` Florence-2 folder to ONNX graphs in ``onnx-florence/`` (needs torch, once).

Conversion traces ``transformers``' own vision tower with ``torch.onnx`` (the
DaViT tower has no torch-free builder here, unlike OFA's), so it needs torch
and transformers; captioning afterwards needs neither. The folder's files are
written into ``onnx-florence.partial`` and renamed into place when whole, with
a manifest of their sha256, the image size, the special ids and the search
settings read from the folder's ``generation_config.json``/``config.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from describe_local.see.caption.florence_onnx import layout
from describe_local.see.caption.florence_onnx.tokens import write_tokenizer_files
from describe_local.see.caption.ofa_onnx.convert import quantize_int8, save_with_data_file
from describe_local.store.manifest import sha256_file

log = logging.getLogger(__name__)

# Generation settings carried from the folder into the manifest (Florence-2's released values as defaults).
SEARCH_DEFAULTS: dict[str, Any] = {"num_beams": 3, "no_repeat_ngram_size": 3, "early_stopping": True,
                                   "length_penalty": 1.0, "forced_bos_token_id": 0, "forced_eos_token_id": 2,
                                   "decoder_start_token_id": 2, "min_length": 0}


def search_settings(folder: Path, text_config: dict) -> dict[str, Any]:
    """The folder's generation settings: ``generation_config.json`` over the text config over the defaults."""
    path = Path(folder) / "generation_config.json"
    generation = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    settings = {}
    for key, default in SEARCH_DEFAULTS.items():
        value = generation.get(key, text_config.get(key))
        settings[key] = default if value is None else value
    return settings


def convert(folder: Path, *, int8: bool = False, precision: str | None = None) -> dict:
    """Write ``folder``'s Florence-2 as ONNX graphs (and int8 ones when asked); return the manifest."""
    from describe_local.see.caption.florence_onnx.export import export, load_model

    folder = Path(folder)
    precision = precision or "fp32"
    if precision == "int8" and not int8:
        raise ValueError("precision int8 needs int8=True")
    model = load_model(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    text = config.get("text_config") or {}
    processor = json.loads((folder / "processor_config.json").read_text(encoding="utf-8")) \
        if (folder / "processor_config.json").is_file() else {}
    images = processor.get("image_processor") or json.loads(
        (folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    size = images.get("size") or {}
    resolution = int(size.get("height", 768))
    work = folder / f"{layout.DIR}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        graphs = export(model, work, resolution)
        if int8:
            with tempfile.TemporaryDirectory(dir=work) as raw:
                # int8 is the small one: its vision graph takes a dynamic batch, which ONNX Runtime runs
                # holding 200 MB less at its peak than the fixed-shape one (2 s slower at base size)
                sources = dict(graphs, **export(model, Path(raw) / "dynamic", resolution, names=("vision",),
                                                fixed_vision=False))
                for name, path in sources.items():
                    quantize_int8(path, Path(raw) / f"{name}.int8.onnx")
                    save_with_data_file(Path(raw) / f"{name}.int8.onnx",
                                        work / Path(layout.graph_file(name, "int8")).name)
        for path in graphs.values():  # fp32 graphs with their weights beside them, as the int8 ones
            save_with_data_file(path, path)
        write_tokenizer_files(folder, work)
        table = model.model.language_model.shared.weight.detach().numpy().astype(np.float32)
        np.save(work / Path(layout.EMBEDDINGS).name, table)
        files = {f"{layout.DIR}/{p.name}": sha256_file(p) for p in sorted(work.iterdir()) if p.is_file()}
        manifest = {
            "format": layout.FORMAT,
            "family": "florence2",
            "precision": precision,
            "files": files,
            "resolution": resolution,
            "image_tokens": int(images.get("image_seq_length", 577)),
            "mean": [float(x) for x in images.get("image_mean", [0.485, 0.456, 0.406])],
            "std": [float(x) for x in images.get("image_std", [0.229, 0.224, 0.225])],
            "rescale": float(images.get("rescale_factor", 1 / 255)),
            "special": {"bos": int(text.get("bos_token_id", 0)), "pad": int(text.get("pad_token_id", 1)),
                        "eos": int(text.get("eos_token_id", 2))},
            "search": search_settings(folder, text),
            "max_positions": int(text.get("max_position_embeddings", 1024)),
        }
        (work / Path(layout.MANIFEST).name).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        final = folder / layout.DIR
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("converted %s to ONNX: %s", folder, ", ".join(files))
    return manifest


def convert_installed(folder: Path, *, int8: bool = False, precision: str | None = None) -> dict:
    """Convert the Florence-2 model in ``folder`` and record the graphs' sha256 in the store's manifest.

    For ``models convert`` and after ``models pull``/``import``; raises :class:`TorchNotInstalled` (one
    line: what to install) where torch or transformers is missing, as converting traces the model with them.
    """
    import importlib.util

    from describe_local.errors import TorchNotInstalled
    from describe_local.store.manifest import refresh_checksums

    for module in ("torch", "transformers", "onnx"):
        if importlib.util.find_spec(module) is None:
            raise TorchNotInstalled.for_(f"converting the Florence-2 model {Path(folder).name} to ONNX "
                                         "needs torch and transformers (once; captions then need neither)", module)
    manifest = convert(folder, int8=int8, precision=precision)
    refresh_checksums(Path(folder), layout.DIR)
    return manifest
