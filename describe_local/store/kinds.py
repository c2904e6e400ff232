"""What a model folder is: a caption model, an Argos translation package, or a Piper voice.

:func:`identify` checks a folder thoroughly before it is imported (and says
what is wrong when it is not a model we can use); :func:`guess_kind` is the
cheap look used to list folders that have no manifest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.errors import DescribeLocalError

log = logging.getLogger(__name__)

OFA_WEIGHTS = ("pytorch_model.bin", "model.safetensors")


class NotAModel(DescribeLocalError):
    """A folder or file offered to the store is not a model we can use."""

    exit_code = 4


@dataclass(frozen=True)
class Identified:
    """What :func:`identify` found in a folder."""

    kind: str
    name: str  # the name it gets in the store unless the user chooses one
    licence: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def identify(folder: Path) -> Identified:
    """Say what model ``folder`` holds; raise :class:`NotAModel` with the reason otherwise."""
    if (folder / "metadata.json").is_file():
        return _argos_package(folder)
    voices = sorted(folder.glob("*.onnx"))
    if voices:
        return _piper_voice(folder, voices)
    return _caption_model(folder)


def guess_kind(folder: Path) -> str | None:
    """The kind of model in ``folder`` from the files it has, without loading anything."""
    if (folder / "metadata.json").is_file() and (folder / "model").is_dir():
        return "translation"
    if any(p.with_name(p.name + ".json").is_file() for p in folder.glob("*.onnx")):
        return "voice"
    if (folder / "config.json").is_file() or (folder / "configuration.json").is_file():
        return "caption"
    return None


def _argos_package(folder: Path) -> Identified:
    meta = _read_json(folder / "metadata.json")
    kind = meta.get("type", "translate")
    if kind != "translate":
        raise NotAModel(f"{folder.name}: an Argos package of type {kind!r}; only translation packages are used")
    source, target = meta.get("from_code"), meta.get("to_code")
    if not source or not target:
        raise NotAModel(f"{folder.name}/metadata.json names no from_code/to_code")
    if not (folder / "model" / "model.bin").is_file():
        raise NotAModel(f"{folder.name}: the Argos package has no model/model.bin (CTranslate2 model)")
    if not ((folder / "sentencepiece.model").is_file() or (folder / "bpe.model").is_file()):
        raise NotAModel(f"{folder.name}: the Argos package has no sentencepiece.model or bpe.model")
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
    paired = [p for p in onnx_files if p.with_name(p.name + ".json").is_file()]
    if not paired:
        raise NotAModel(f"{onnx_files[0].name} has no {onnx_files[0].name}.json beside it (the voice's config)")
    if len(paired) > 1:
        raise NotAModel(f"{folder.name} holds several voices; import them one at a time")
    onnx = paired[0]
    config = _read_json(onnx.with_name(onnx.name + ".json"))
    try:
        language = str(config["language"]["code"])
        int(config["audio"]["sample_rate"])
    except (KeyError, TypeError, ValueError):
        raise NotAModel(
            f"{onnx.name}.json is not a Piper voice config (no language.code or audio.sample_rate)"
        ) from None
    if onnx.stat().st_size < 1024:
        raise NotAModel(f"{onnx.name} is too small to be a voice model")
    key = onnx.name.removesuffix(".onnx")
    details = {
        "language": language,
        "key": key,
        "quality": config.get("audio", {}).get("quality", ""),
        "speakers": int(config.get("num_speakers", 1)),
        "onnx": onnx.name,
    }
    licence = "see MODEL_CARD" if (folder / "MODEL_CARD").is_file() else "unknown"
    return Identified("voice", key, licence, details)


def _caption_model(folder: Path) -> Identified:
    from describe_local.caption import backends

    registered = backends()
    for backend in registered.values():
        try:
            accepted = backend.accepts(folder)
        except Exception as exc:  # a backend's check must not sink the import
            log.debug("caption backend %s could not check %s: %s", backend.name, folder, exc)
            accepted = False
        if accepted:
            if not _has_weights(folder):
                raise NotAModel(f"{folder.name} looks like a {backend.name} caption model but holds no weights "
                                "(pytorch_model.bin or *.safetensors); copy the whole folder")
            return Identified("caption", folder.name, _caption_licence(folder), {"backend": backend.name})
    if "ofa" not in registered:
        # The OFA engine is not importable here: check the released folder layout instead.
        missing = _ofa_layout_problem(folder)
        if missing is None:
            return Identified("caption", folder.name, _caption_licence(folder), {"backend": "ofa"})
    raise NotAModel(
        f"{folder.name} is not a model describe-local understands: not an Argos package "
        "(metadata.json), not a Piper voice (.onnx + .onnx.json), and no caption backend "
        f"({', '.join(sorted(registered)) or 'none available'}) accepts it"
    )


def _has_weights(folder: Path) -> bool:
    """Whether ``folder`` holds model weights in a format the caption backends read."""
    patterns = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "pytorch_model.bin.index.json")
    return any(path.is_file() for pattern in patterns for path in folder.glob(pattern))


def _ofa_layout_problem(folder: Path) -> str | None:
    config_path = folder / "config.json"
    if not config_path.is_file():
        return "no config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "config.json is not JSON"
    if not isinstance(config, dict) or config.get("model_type") != "ofa":
        return "config.json is not an OFA config"
    if not any((folder / w).is_file() for w in OFA_WEIGHTS):
        return "no weights"
    if not (folder / "vocab.json").is_file():
        return "no vocab.json"
    return None


def _caption_licence(folder: Path) -> str:
    for name in ("LICENSE", "LICENSE.txt", "LICENCE"):
        if (folder / name).is_file():
            return f"see {name}"
    return "unknown"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotAModel(f"{path.name} cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise NotAModel(f"{path.name} is not a JSON object")
    return data
