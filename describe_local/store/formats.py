"""The on-disk format of every kind of model, in one place.

Which files make a model folder of each kind, and cheap checks of a folder
against them. Only the standard library is used, so that the store can say
what a folder holds without importing torch or transformers; the caption
backends and the OFA checkpoint reader take their file names from here too.

- caption, OFA (Hugging Face ``OFA-Sys/ofa-*`` or ModelScope ``damo/ofa_*``):
  ``config.json`` saying ``model_type: ofa``, weights, ``vocab.json`` and
  ``merges.txt``; ModelScope folders add ``configuration.json`` (task settings).
- caption, ``transformers`` image-to-text: what ``save_pretrained`` writes, a
  ``config.json`` whose ``model_type`` is a family we know how to prompt, and weights.
- translation, Argos Translate package (an unzipped ``.argosmodel``):
  ``metadata.json``, a CTranslate2 model in ``model/``, and a
  ``sentencepiece.model`` or ``bpe.model``.
- voice, Piper: ``NAME.onnx`` with its config ``NAME.onnx.json`` beside it.

Each ``*_problem`` function takes a folder (or file) and returns ``None``
when it fits the format, else a short clause saying what is wrong ("has no
vocab.json"), for the caller to put into its own message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# -- weights, as Hugging Face's save_pretrained names them (OFA releases use the same names) ------

CONFIG = "config.json"  # the model's architecture (OFA and transformers alike)
TASK_CONFIG = "configuration.json"  # ModelScope's task settings: image size, prompt, beam search
# Single-file checkpoints, the preferred first (safetensors need no unpickling).
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Sharded checkpoints: an index whose "weight_map" names the shard holding each tensor.
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

# -- caption models ----------------------------------------------------------------------------

OFA_MODEL_TYPE = "ofa"
OFA_TOKENIZER_FILES = ("vocab.json", "merges.txt")  # BART's byte-level BPE
# Everything of an OFA checkpoint but its weights (TASK_CONFIG only in ModelScope folders).
OFA_FILES = (CONFIG, TASK_CONFIG, *OFA_TOKENIZER_FILES)

# A Florence-2 repository's files besides the weights: the model's, generation's, processor's and tokenizer's settings.
FLORENCE_FILES = (CONFIG, "generation_config.json", "preprocessor_config.json", "processor_config.json",
                  "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                  *OFA_TOKENIZER_FILES)

# ``model_type`` values (config.json, lower case) of the image-to-text families the
# transformers backend can caption with; how each is prompted is the backend's business.
TRANSFORMERS_MODEL_TYPES = frozenset({"blip", "git", "vision-encoder-decoder", "florence2", "smolvlm", "idefics3"})

# Caption backends by name, in the order a folder is tried against them.
CAPTION_BACKENDS = ("ofa", "transformers")

# -- translations and voices -------------------------------------------------------------------

ARGOS_METADATA = "metadata.json"
ARGOS_MODEL_DIR = "model"  # a CTranslate2 model
ARGOS_MODEL = f"{ARGOS_MODEL_DIR}/model.bin"
ARGOS_TOKENIZERS = ("sentencepiece.model", "bpe.model")
ARGOS_TRANSLATE = "translate"  # metadata "type" of a translation package (the default when absent)

PIPER_SUFFIX = ".onnx"
PIPER_CONFIG_SUFFIX = ".json"  # appended: NAME.onnx -> NAME.onnx.json
PIPER_MIN_BYTES = 1024  # smaller than any real voice: a placeholder or a failed copy


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in the file ``path``; ``None`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- weights -----------------------------------------------------------------------------------


def index_shards(index: Path) -> list[str] | None:
    """The shard files a sharded checkpoint's ``index`` names, sorted; ``None`` when it is not an index."""
    data = read_json_object(index)
    weight_map = data.get("weight_map") if data else None
    if not isinstance(weight_map, dict) or not weight_map:
        return None
    return sorted({str(shard) for shard in weight_map.values()})


def weights_problem(folder: Path) -> str | None:
    """What keeps ``folder``'s weights from being read: ``None`` when a loader finds them all.

    An index (with every shard it names) wins over a single file, as both the
    OFA checkpoint reader and ``transformers`` read them.
    """
    folder = Path(folder)
    for name in INDEX_FILES:
        if not (folder / name).is_file():
            continue
        shards = index_shards(folder / name)
        if shards is None:
            return f"has a {name} that is not a weight index"
        missing = [shard for shard in shards if not (folder / shard).is_file()]
        if missing:
            return f"lacks {missing[0]}, which {name} names ({len(missing)} shard(s) missing)"
        return None
    if any((folder / name).is_file() for name in WEIGHT_FILES):
        return None
    return f"holds no weights ({' or '.join(WEIGHT_FILES)}, or a sharded checkpoint's index)"


def has_weights(folder: Path) -> bool:
    """Whether ``folder`` holds a checkpoint the caption backends can read (all shards present)."""
    return weights_problem(folder) is None


# -- caption models ----------------------------------------------------------------------------


def has_caption_config(folder: Path) -> bool:
    """Whether ``folder`` has a caption model's config file (the cheap look used for listing)."""
    return (Path(folder) / CONFIG).is_file() or (Path(folder) / TASK_CONFIG).is_file()


def config_model_type(folder: Path) -> str | None:
    """``model_type`` from ``folder/config.json``, in lower case; ``None`` without one."""
    config = read_json_object(Path(folder) / CONFIG)
    model_type = str(config.get("model_type") or "").lower() if config else ""
    return model_type or None


def is_ofa_folder(folder: Path) -> bool:
    """Whether ``folder``'s config.json is an OFA one (``model_type: ofa`` or an ``OFA*`` architecture)."""
    config = read_json_object(Path(folder) / CONFIG)
    if config is None:
        return False
    if str(config.get("model_type") or "").lower() == OFA_MODEL_TYPE:
        return True
    architectures = config.get("architectures")
    if not isinstance(architectures, list):
        return False
    return any(str(a).lower().startswith(OFA_MODEL_TYPE) for a in architectures)


def ofa_layout_problem(folder: Path) -> str | None:
    """What keeps ``folder`` from being a complete OFA checkpoint; ``None`` when it is one."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        return f"has no {CONFIG}"
    if read_json_object(folder / CONFIG) is None:
        return f"has a {CONFIG} that is not a JSON object"
    if not is_ofa_folder(folder):
        return f"has a {CONFIG} that is not an OFA config (model_type {OFA_MODEL_TYPE!r})"
    problem = weights_problem(folder)
    if problem:
        return problem
    missing = [name for name in OFA_TOKENIZER_FILES if not (folder / name).is_file()]
    if missing:
        return f"has no {' or '.join(missing)} (the tokenizer)"
    return None


def transformers_model_type(folder: Path) -> str | None:
    """``folder``'s ``model_type`` when it is an image-to-text family the transformers backend runs."""
    model_type = config_model_type(folder)
    return model_type if model_type in TRANSFORMERS_MODEL_TYPES else None


def transformers_layout_problem(folder: Path) -> str | None:
    """What keeps ``folder`` from being a ``transformers`` captioner we can run; ``None`` when it is one."""
    folder = Path(folder)
    if read_json_object(folder / CONFIG) is None:
        return f"has no readable {CONFIG}"
    if transformers_model_type(folder) is None:
        return (f"has model_type {config_model_type(folder)!r}, not an image-to-text family we run "
                f"({', '.join(sorted(TRANSFORMERS_MODEL_TYPES))})")
    return weights_problem(folder)


def caption_backend(folder: Path) -> str | None:
    """The caption backend (one of :data:`CAPTION_BACKENDS`) whose format ``folder``'s config is in.

    Decided by the config alone: the folder may still lack files (see
    :func:`caption_layout_problem`).
    """
    if is_ofa_folder(folder):
        return "ofa"
    if transformers_model_type(folder) is not None:
        return "transformers"
    return None


def caption_layout_problem(folder: Path) -> str | None:
    """What keeps ``folder`` from being a caption model a backend can load; ``None`` when it is one."""
    backend = caption_backend(folder)
    if backend == "ofa":
        return ofa_layout_problem(folder)
    if backend == "transformers":
        return transformers_layout_problem(folder)
    if not (Path(folder) / CONFIG).is_file():
        return f"has no {CONFIG}"
    return (f"has a {CONFIG} of model_type {config_model_type(folder)!r}, neither OFA nor a "
            f"transformers image-to-text family ({', '.join(sorted(TRANSFORMERS_MODEL_TYPES))})")


# -- Argos Translate packages ------------------------------------------------------------------


def is_argos_package(folder: Path) -> bool:
    """Whether ``folder`` looks like an Argos package (the cheap look: metadata and a model folder)."""
    return (Path(folder) / ARGOS_METADATA).is_file() and (Path(folder) / ARGOS_MODEL_DIR).is_dir()


def argos_layout_problem(folder: Path) -> str | None:
    """What keeps ``folder`` from being an Argos translation package; ``None`` when it is one."""
    folder = Path(folder)
    meta = read_json_object(folder / ARGOS_METADATA)
    if meta is None:
        return f"has no readable {ARGOS_METADATA} (a JSON object)"
    kind = meta.get("type", ARGOS_TRANSLATE)
    if kind != ARGOS_TRANSLATE:
        return f"is an Argos package of type {kind!r}; only translation packages are used"
    if not meta.get("from_code") or not meta.get("to_code"):
        return f"has a {ARGOS_METADATA} that names no from_code/to_code"
    if not (folder / ARGOS_MODEL).is_file():
        return f"has no {ARGOS_MODEL} (the CTranslate2 model)"
    if not any((folder / name).is_file() for name in ARGOS_TOKENIZERS):
        return f"has no {' or '.join(ARGOS_TOKENIZERS)}"
    return None


# -- Piper voices ------------------------------------------------------------------------------


def piper_config(onnx: Path) -> Path:
    """The config file that belongs beside the voice model ``onnx`` (``NAME.onnx.json``)."""
    onnx = Path(onnx)
    return onnx.with_name(onnx.name + PIPER_CONFIG_SUFFIX)


def piper_models(folder: Path) -> list[Path]:
    """Every ``*.onnx`` file in ``folder``, sorted: a voice model each, with or without its config."""
    return sorted(Path(folder).glob(f"*{PIPER_SUFFIX}"))


def piper_voices(folder: Path) -> list[Path]:
    """The ``*.onnx`` files in ``folder`` that have their ``.onnx.json`` beside them."""
    return [onnx for onnx in piper_models(folder) if piper_config(onnx).is_file()]


def piper_voice_problem(onnx: Path) -> str | None:
    """What keeps the voice model ``onnx`` (and its config) from being a Piper voice; ``None`` when it is one."""
    onnx = Path(onnx)
    config_path = piper_config(onnx)
    if not config_path.is_file():
        return f"{onnx.name} has no {config_path.name} beside it (the voice's config)"
    config = read_json_object(config_path)
    if config is None:
        return f"{config_path.name} is not a JSON object"
    try:
        str(config["language"]["code"])
        int(config["audio"]["sample_rate"])
    except (KeyError, TypeError, ValueError):
        return f"{config_path.name} is not a Piper voice config (no language.code or audio.sample_rate)"
    if onnx.stat().st_size < PIPER_MIN_BYTES:
        return f"{onnx.name} is too small to be a voice model"
    return None


# -- OFA exported to ONNX (``describe-local models convert``; issue 15) ------------------------
#
# ``onnx/`` inside an OFA folder: the image + prompt encoder and one decoder step as two
# graphs, each with its weights in a data file beside it (ONNX external data, read straight
# into place at load), the shared token embeddings as a NumPy array (memory-mapped by the
# runtime, so the rows a caption never uses are never read), and a manifest with every
# file's sha256 and what the runtime needs to know without importing torch (task settings,
# special ids). Graphs of an older layout (another ``format``) are not used: convert again.

OFA_ONNX_DIR = "onnx"
PARTIAL_SUFFIX = ".partial"  # a folder being written (onnx.partial): renamed into place when whole
OFA_ONNX_PARTIAL = OFA_ONNX_DIR + PARTIAL_SUFFIX
BUSY_MARKER = ".busy-"  # + the writer's process id, inside a partial folder while it is written
OFA_ONNX_FORMAT = 2
OFA_ONNX_MANIFEST = f"{OFA_ONNX_DIR}/manifest.json"
OFA_ONNX_ENCODER = "encoder"  # + OFA_ONNX_SUFFIXES[precision]
OFA_ONNX_DECODER = "decoder_step"
OFA_ONNX_EMBEDDINGS = f"{OFA_ONNX_DIR}/embed_tokens.npy"
OFA_ONNX_SUFFIXES = {"fp32": ".onnx", "int8": ".int8.onnx", "fp16": ".fp16.onnx"}
OFA_ONNX_DATA_SUFFIX = ".data"  # NAME.onnx -> NAME.onnx.data
# ONNX Runtime's graphs as optimised for this machine, written at first load (see the runtime's
# sessions.py): derived files, left out of the store's checksums and of copies to other machines.
OFA_ONNX_CACHE_DIR = f"{OFA_ONNX_DIR}/optimized"
DERIVED_DIRS = (OFA_ONNX_CACHE_DIR,)
# In the model store itself: this machine's derived copies of models that are not in the store
# (the text stage's, the voices', dlib's detector), one folder each; listings pass over it (a dot name).
STORE_CACHE_DIR = ".cache"


def store_cache(models_dir: Path, name: str) -> Path:
    """The model store's folder of derived copies for ``name`` (text, voices, faces)."""
    return Path(models_dir) / STORE_CACHE_DIR / name


def ofa_onnx_graph(name: str, precision: str = "fp32") -> str:
    """The folder-relative path of graph ``name`` (encoder / decoder_step) at ``precision``."""
    return f"{OFA_ONNX_DIR}/{name}{OFA_ONNX_SUFFIXES[precision]}"


def ofa_onnx_data_name(graph_file: str) -> str:
    """The name of the weights file beside the graph file ``graph_file``."""
    return graph_file + OFA_ONNX_DATA_SUFFIX


def ofa_onnx_manifest(folder: Path) -> dict[str, Any] | None:
    """The ONNX manifest of ``folder`` when it is of the layout this version runs, else ``None``."""
    manifest = read_json_object(Path(folder) / OFA_ONNX_MANIFEST)
    if not manifest or manifest.get("format") != OFA_ONNX_FORMAT or not isinstance(manifest.get("files"), dict):
        return None
    return manifest


def ofa_onnx_stale(folder: Path) -> bool:
    """Whether ``folder`` has ONNX graphs of an older layout (converted by an earlier version)."""
    return (Path(folder) / OFA_ONNX_MANIFEST).is_file() and ofa_onnx_manifest(folder) is None


def ofa_onnx_precisions(folder: Path) -> list[str]:
    """The precisions whose graphs (and their data files) the manifest of ``folder`` lists and that are on disk."""
    manifest = ofa_onnx_manifest(folder)
    if manifest is None or not (Path(folder) / OFA_ONNX_EMBEDDINGS).is_file():
        return []
    files = manifest["files"]
    found = []
    for precision in OFA_ONNX_SUFFIXES:
        graphs = [ofa_onnx_graph(name, precision) for name in (OFA_ONNX_ENCODER, OFA_ONNX_DECODER)]
        needed = [*graphs, *(ofa_onnx_data_name(g) for g in graphs)]
        if all(f in files and (Path(folder) / f).is_file() for f in needed):
            found.append(precision)
    return found


def has_ofa_onnx(folder: Path) -> bool:
    """Whether ``folder`` is an OFA folder with exported ONNX graphs the ONNX backend can run."""
    return is_ofa_folder(folder) and bool(ofa_onnx_precisions(folder))
