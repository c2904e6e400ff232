"""Where a converted Florence-2 folder keeps its graphs, and what its manifest says (no torch, no onnx)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DIR = "onnx-florence"
MANIFEST = f"{DIR}/manifest.json"
FORMAT = 1
EMBEDDINGS = f"{DIR}/embed_tokens.npy"  # (vocab, D) float32, read a row at a time
GRAPHS = ("vision", "encoder", "decoder_step")
SUFFIXES = {"fp32": ".onnx", "int8": ".int8.onnx"}
DATA_SUFFIX = ".data"


def graph_file(name: str, precision: str = "fp32") -> str:
    """The graph's path inside the model folder."""
    return f"{DIR}/{name}{SUFFIXES[precision]}"


def manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of ``folder``'s Florence-2 graphs, or None when there is none of this layout."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def precisions(folder: Path) -> list[str]:
    """The precisions whose three graphs are all present."""
    folder = Path(folder)
    if manifest(folder) is None or not (folder / EMBEDDINGS).is_file():
        return []
    return [p for p in SUFFIXES if all((folder / graph_file(g, p)).is_file() for g in GRAPHS)]


def has_graphs(folder: Path) -> bool:
    return bool(precisions(folder))
