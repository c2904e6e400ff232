"""What a model folder is: a caption model, an Argos translation package, or a Piper voice.

:func:`identify` checks a folder thoroughly before it is imported (and says
what is wrong when it is not a model we can use); :func:`guess_kind` is the
cheap look used to list folders that have no manifest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.errors import NotAModel
from describe_local.store import formats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identified:
    """What :func:`identify` found in a folder."""

    kind: str
    name: str  # the name it gets in the store unless the user chooses one
    licence: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def identify(folder: Path) -> Identified:
    """Say what model ``folder`` holds; raise :class:`NotAModel` with the reason otherwise."""
    if (folder / formats.ARGOS_METADATA).is_file():
        return _argos_package(folder)
    voices = formats.piper_models(folder)
    if voices:
        return _piper_voice(folder, voices)
    return _caption_model(folder)


def guess_kind(folder: Path) -> str | None:
    """The kind of model in ``folder`` from the files it has, without loading anything."""
    if formats.is_argos_package(folder):
        return "translation"
    if formats.piper_voices(folder):
        return "voice"
    if formats.has_caption_config(folder):
        return "caption"
    return None


def _argos_package(folder: Path) -> Identified:
    problem = formats.argos_layout_problem(folder)
    if problem:
        raise NotAModel(f"{folder.name}: {problem}")
    meta = formats.read_json_object(folder / formats.ARGOS_METADATA) or {}
    source, target = meta["from_code"], meta["to_code"]
    details = {
        "from": source,
        "to": target,
        "from_name": meta.get("from_name", ""),
        "to_name": meta.get("to_name", ""),
        "package_version": meta.get("package_version", ""),
    }
    licence = "see README.md in the package" if (folder / "README.md").is_file() else "unknown"
    return Identified("translation", f"argos-{source}_{target}", licence, details)


def _piper_voice(folder: Path, onnx_files: list[Path]) -> Identified:
    paired = formats.piper_voices(folder)
    if not paired:
        raise NotAModel(formats.piper_voice_problem(onnx_files[0]) or f"{onnx_files[0].name} is not a Piper voice")
    if len(paired) > 1:
        raise NotAModel(f"{folder.name} holds several voices; import them one at a time")
    onnx = paired[0]
    problem = formats.piper_voice_problem(onnx)
    if problem:
        raise NotAModel(problem)
    config = formats.read_json_object(formats.piper_config(onnx)) or {}
    key = onnx.name.removesuffix(formats.PIPER_SUFFIX)
    details = {
        "language": str(config["language"]["code"]),
        "key": key,
        "quality": config.get("audio", {}).get("quality", ""),
        "speakers": int(config.get("num_speakers", 1)),
        "onnx": onnx.name,
    }
    licence = "see MODEL_CARD" if (folder / "MODEL_CARD").is_file() else "unknown"
    return Identified("voice", key, licence, details)


def _caption_model(folder: Path) -> Identified:
    # Decided from the files alone: the store never imports a caption backend (nor torch).
    backend = formats.caption_backend(folder)
    if backend is None:
        raise NotAModel(
            f"{folder.name} is not a model describe-local understands: not an Argos package "
            f"({formats.ARGOS_METADATA}), not a Piper voice (.onnx + .onnx.json), and not a caption "
            f"model ({', '.join(formats.CAPTION_BACKENDS)}): it {formats.caption_layout_problem(folder)}"
        )
    problem = formats.caption_layout_problem(folder)
    if problem:
        article = "an" if backend == "ofa" else "a"
        raise NotAModel(f"{folder.name} looks like {article} {backend} caption model but {problem}; "
                        "copy the whole folder")
    log.debug("%s is a caption model for the %s backend", folder, backend)
    return Identified("caption", folder.name, _caption_licence(folder), {"backend": backend})


def _caption_licence(folder: Path) -> str:
    for name in ("LICENSE", "LICENSE.txt", "LICENCE"):
        if (folder / name).is_file():
            return f"see {name}"
    return "unknown"
