"""The model store knows every model format without the caption stage.

``describe_local.store`` must say what a folder holds (and import it) with the
standard library alone: no torch, no transformers, nothing from
``describe_local.see``. The first test checks that in a fresh interpreter; the
rest check :mod:`describe_local.store.formats` on folders written here (the
layouts only: none of them is a loadable model).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from describe_local.store import formats

FORBIDDEN = ("torch", "transformers", "describe_local.see")


def _write(folder: Path, files: dict[str, bytes | str | dict]) -> Path:
    """Write ``files`` (bytes, text, or a dict written as JSON) into the new folder ``folder``."""
    folder.mkdir(parents=True)
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, dict):
            path.write_text(json.dumps(data), encoding="utf-8")
        elif isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    return folder


def _ofa(folder: Path, **changes: bytes | str | dict | None) -> Path:
    """An OFA checkpoint's layout; a change of ``None`` leaves that file out."""
    files: dict[str, bytes | str | dict | None] = {
        "config.json": {"architectures": ["OFAModel"], "model_type": "ofa", "d_model": 8},
        "vocab.json": {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3},
        "merges.txt": "#version: 0.2\n",
        "pytorch_model.bin": b"\0" * 64,
        **changes,
    }
    return _write(folder, {k: v for k, v in files.items() if v is not None})


def _transformers(folder: Path, model_type: str = "blip", **changes: bytes | str | dict | None) -> Path:
    """What ``save_pretrained`` writes for an image-to-text model, in outline."""
    files: dict[str, bytes | str | dict | None] = {
        "config.json": {"model_type": model_type, "architectures": ["BlipForConditionalGeneration"]},
        "model.safetensors": b"\0" * 64,
        "preprocessor_config.json": {"image_processor_type": "BlipImageProcessor"},
        **changes,
    }
    return _write(folder, {k: v for k, v in files.items() if v is not None})


def _argos(folder: Path, **changes: bytes | str | dict | None) -> Path:
    files: dict[str, bytes | str | dict | None] = {
        "metadata.json": {"type": "translate", "from_code": "en", "to_code": "es", "package_version": "1.0"},
        "model/model.bin": b"\0" * 64,
        "sentencepiece.model": b"\0" * 16,
        **changes,
    }
    return _write(folder, {k: v for k, v in files.items() if v is not None})


def _voice_config(language: str = "es") -> dict:
    return {"language": {"code": language}, "audio": {"sample_rate": 22050, "quality": "medium"}}


# -- the store without the caption stage -------------------------------------------------------

_CHILD = """
import json, sys
from pathlib import Path

from describe_local.store import ModelStore, import_model
from describe_local.store.kinds import guess_kind, identify

ofa, hf, models = (Path(p) for p in sys.argv[1:4])
forbidden = sys.argv[4].split(",")
store = ModelStore.open(models)
found = {}
for folder in (ofa, hf):
    identified = identify(folder)
    installed = import_model(store, folder)
    found[folder.name] = [identified.kind, identified.details.get("backend"),
                          installed.manifest.details.get("backend"), guess_kind(installed.path)]
loaded = [m for m in forbidden if m in sys.modules]
print(json.dumps({"found": found, "loaded": loaded}))
"""


def test_the_store_identifies_and_imports_caption_models_without_torch(tmp_path: Path) -> None:
    ofa = _ofa(tmp_path / "ofa-tiny")
    hf = _transformers(tmp_path / "blip-tiny")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ofa), str(hf), str(tmp_path / "models"), ",".join(FORBIDDEN)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["found"] == {
        "ofa-tiny": ["caption", "ofa", "ofa", "caption"],
        "blip-tiny": ["caption", "transformers", "transformers", "caption"],
    }
    assert result["loaded"] == [], f"identifying and importing caption models loaded {result['loaded']}"


def test_formats_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import describe_local.store.formats; "
        "import json; print(json.dumps(sorted(m for m in set(sys.modules) - before if m.startswith('describe_local'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # the package, the store's __init__ and what it imports; never a stage
    loaded = json.loads(done.stdout)
    assert "describe_local.store.formats" in loaded
    assert not [m for m in loaded if m.startswith(("describe_local.see", "describe_local.say"))]


# -- OFA checkpoints ---------------------------------------------------------------------------


def test_an_ofa_folder_is_recognised_by_model_type_or_architecture(tmp_path: Path) -> None:
    assert formats.is_ofa_folder(_ofa(tmp_path / "a"))
    assert formats.is_ofa_folder(_ofa(tmp_path / "b", **{"config.json": {"architectures": ["OFAModelForCaption"]}}))
    assert formats.caption_backend(tmp_path / "a") == "ofa"
    assert not formats.is_ofa_folder(_ofa(tmp_path / "c", **{"config.json": {"model_type": "blip"}}))
    assert not formats.is_ofa_folder(_ofa(tmp_path / "d", **{"config.json": "not json"}))
    assert not formats.is_ofa_folder(_ofa(tmp_path / "e", **{"config.json": "[1, 2]"}))
    assert not formats.is_ofa_folder(_ofa(tmp_path / "f", **{"config.json": None}))


def test_a_complete_ofa_layout_has_no_problem(tmp_path: Path) -> None:
    assert formats.ofa_layout_problem(_ofa(tmp_path / "bin")) is None
    safetensors = _ofa(tmp_path / "st", **{"pytorch_model.bin": None, "model.safetensors": b"\0" * 8})
    assert formats.ofa_layout_problem(safetensors) is None
    modelscope = _ofa(tmp_path / "ms", **{"configuration.json": {"model": {"patch_image_size": 256}}})
    assert formats.ofa_layout_problem(modelscope) is None
    assert formats.has_weights(modelscope)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"config.json": None}, "config.json"),
        ({"config.json": {"model_type": "git"}}, "not an OFA config"),
        ({"pytorch_model.bin": None}, "no weights"),
        ({"vocab.json": None}, "vocab.json"),
        ({"merges.txt": None}, "merges.txt"),
    ],
)
def test_an_incomplete_ofa_layout_says_what_is_missing(tmp_path: Path, change: dict, expected: str) -> None:
    problem = formats.ofa_layout_problem(_ofa(tmp_path / "ofa", **change))
    assert problem is not None and expected in problem


def test_a_sharded_checkpoint_needs_every_shard_its_index_names(tmp_path: Path) -> None:
    index = {"metadata": {}, "weight_map": {"a.weight": "part-1.bin", "b.weight": "part-2.bin", "c": "part-1.bin"}}
    sharded = {"pytorch_model.bin": None, "pytorch_model.bin.index.json": index, "part-1.bin": b"\0"}
    folder = _ofa(tmp_path / "sharded", **sharded)
    assert formats.index_shards(folder / "pytorch_model.bin.index.json") == ["part-1.bin", "part-2.bin"]
    assert not formats.has_weights(folder)
    problem = formats.ofa_layout_problem(folder)
    assert problem is not None and "part-2.bin" in problem
    (folder / "part-2.bin").write_bytes(b"\0")
    assert formats.has_weights(folder)
    assert formats.ofa_layout_problem(folder) is None
    (folder / "pytorch_model.bin.index.json").write_text("{}", encoding="utf-8")
    assert formats.index_shards(folder / "pytorch_model.bin.index.json") is None
    assert not formats.has_weights(folder)


def test_weights_are_only_the_file_names_the_loaders_read(tmp_path: Path) -> None:
    stray = _ofa(tmp_path / "stray", **{"pytorch_model.bin": None, "weights.safetensors": b"\0"})
    assert not formats.has_weights(stray)
    assert formats.weights_problem(stray) is not None
    assert formats.WEIGHT_FILES[0] == "model.safetensors"  # preferred when a hub has both


# -- transformers image-to-text ----------------------------------------------------------------


@pytest.mark.parametrize("model_type", ["blip", "git", "vision-encoder-decoder", "Florence2", "smolvlm", "idefics3"])
def test_known_transformers_captioners_are_recognised(tmp_path: Path, model_type: str) -> None:
    folder = _transformers(tmp_path / "m", model_type)
    assert formats.transformers_model_type(folder) == model_type.lower()
    assert formats.caption_backend(folder) == "transformers"
    assert formats.transformers_layout_problem(folder) is None
    assert formats.caption_layout_problem(folder) is None


def test_other_transformers_models_are_not_captioners(tmp_path: Path) -> None:
    folder = _transformers(tmp_path / "bert", "bert")
    assert formats.transformers_model_type(folder) is None
    assert formats.caption_backend(folder) is None
    assert formats.transformers_layout_problem(folder) is not None
    problem = formats.caption_layout_problem(folder)
    assert problem is not None and "'bert'" in problem


def test_a_transformers_captioner_needs_its_weights(tmp_path: Path) -> None:
    folder = _transformers(tmp_path / "git", "git", **{"model.safetensors": None})
    problem = formats.transformers_layout_problem(folder)
    assert problem is not None and "no weights" in problem
    assert formats.caption_layout_problem(folder) == problem


def test_the_backend_prompts_only_families_the_store_accepts() -> None:
    from describe_local.see.caption import transformers_backend

    assert set(transformers_backend.PROMPTS) <= formats.TRANSFORMERS_MODEL_TYPES
    assert transformers_backend.CHAT_FAMILIES <= formats.TRANSFORMERS_MODEL_TYPES


# -- Argos packages and Piper voices -----------------------------------------------------------


def test_an_argos_package_layout(tmp_path: Path) -> None:
    folder = _argos(tmp_path / "ok")
    assert formats.is_argos_package(folder)
    assert formats.argos_layout_problem(folder) is None
    assert formats.argos_layout_problem(_argos(tmp_path / "bpe", **{"sentencepiece.model": None,
                                                                    "bpe.model": b"\0"})) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metadata.json": {"type": "sbd", "from_code": "en", "to_code": "es"}}, "'sbd'"),
        ({"metadata.json": {"from_code": "en"}}, "from_code/to_code"),
        ({"metadata.json": "[]"}, "metadata.json"),
        ({"model/model.bin": None, "model/other": b"\0"}, "model/model.bin"),
        ({"sentencepiece.model": None}, "sentencepiece.model or bpe.model"),
    ],
)
def test_a_broken_argos_package_says_what_is_wrong(tmp_path: Path, change: dict, expected: str) -> None:
    problem = formats.argos_layout_problem(_argos(tmp_path / "pkg", **change))
    assert problem is not None and expected in problem


def test_piper_voices_are_onnx_files_with_their_config_beside_them(tmp_path: Path) -> None:
    folder = _write(tmp_path / "voice", {
        "es_ES-x-medium.onnx": b"\0" * 2048,
        "es_ES-x-medium.onnx.json": _voice_config(),
        "orphan.onnx": b"\0" * 2048,
    })
    assert [p.name for p in formats.piper_models(folder)] == ["es_ES-x-medium.onnx", "orphan.onnx"]
    assert [p.name for p in formats.piper_voices(folder)] == ["es_ES-x-medium.onnx"]
    assert formats.piper_config(folder / "orphan.onnx").name == "orphan.onnx.json"
    assert formats.piper_voice_problem(folder / "es_ES-x-medium.onnx") is None
    problem = formats.piper_voice_problem(folder / "orphan.onnx")
    assert problem is not None and "orphan.onnx.json" in problem


@pytest.mark.parametrize(
    ("config", "size", "expected"),
    [
        ({"language": {"code": "es"}}, 2048, "sample_rate"),
        ({"audio": {"sample_rate": 22050}}, 2048, "language.code"),
        ({"language": {"code": "es"}, "audio": {"sample_rate": "fast"}}, 2048, "sample_rate"),
        (_voice_config(), 100, "too small"),
    ],
)
def test_a_broken_piper_voice_says_what_is_wrong(tmp_path: Path, config: dict, size: int, expected: str) -> None:
    folder = _write(tmp_path / "voice", {"v.onnx": b"\0" * size, "v.onnx.json": config})
    problem = formats.piper_voice_problem(folder / "v.onnx")
    assert problem is not None and expected in problem
