"""Run an exported OFA folder on ONNX Runtime: NumPy in, NumPy out, no torch.

:class:`OnnxOFA` mirrors the torch engine's ``OFA`` (``caption``, ``answer``,
``generate_ids``, ``encode``), reading what the engine would derive from the
checkpoint (task settings, special ids) from ``onnx/manifest.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from describe_local.errors import ConfigError, ModelNotInstalled
from describe_local.see.caption.ofa.options import SearchOptions, question_prompt, search_options
from describe_local.see.caption.ofa.tokenizer import OFATokenizer
from describe_local.see.caption.ofa_onnx.search import SpecialIds, generate
from describe_local.store import formats

if TYPE_CHECKING:
    import onnxruntime as ort
    from PIL import Image

log = logging.getLogger(__name__)


def image_array(images: list[Image.Image], size: int) -> np.ndarray:
    """(B, 3, size, size) float32 pixels, exactly as the engine's ``preprocess.image_tensor``."""
    from PIL import Image

    arrays = []
    for image in images:
        resized = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        pixels = np.asarray(resized, dtype=np.float32) / np.float32(255.0)
        arrays.append((pixels - np.float32(0.5)) / np.float32(0.5))
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))


def providers(device: str) -> list[str]:
    """ONNX Runtime execution providers for the ``device`` setting (auto, cpu, cuda, cuda:N)."""
    import onnxruntime as ort

    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cpu" or (device == "auto" and not has_cuda):
        return ["CPUExecutionProvider"]
    if not device.startswith("cuda") and device != "auto":
        raise ConfigError(f"unknown device {device!r}: use auto, cpu or cuda")
    if not has_cuda:
        raise ConfigError(f"device {device!r} asked for, but this onnxruntime has no CUDA provider "
                          "(install onnxruntime-gpu), or the machine no usable GPU: use auto or cpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


@dataclass
class OnnxOFA:
    """An exported OFA folder ready to run: two sessions, the embedding table, tokenizer, task settings."""

    encoder: ort.InferenceSession
    decoder: ort.InferenceSession
    embeddings: np.ndarray  # (vocab, D), memory-mapped
    tokenizer: Any  # the engine's OFATokenizer
    manifest: dict
    folder: Path
    precision: str

    @classmethod
    def load(cls, folder: Path, *, device: str = "auto", threads: int = 0, precision: str | None = None) -> OnnxOFA:
        """Load ``folder``'s ONNX graphs at ``precision`` (default: the manifest's) on ``device``."""
        import onnxruntime as ort

        folder = Path(folder)
        manifest = formats.read_json_object(folder / formats.OFA_ONNX_MANIFEST)
        if manifest is None:
            raise ModelNotInstalled(f"{folder} has no readable {formats.OFA_ONNX_MANIFEST}: "
                                    f"run `describe-local convert {folder.name}`")
        precision = precision or str(manifest.get("precision", "fp32"))
        if precision not in formats.ofa_onnx_precisions(folder):
            raise ModelNotInstalled(f"{folder} has no {precision} ONNX graphs: "
                                    f"run `describe-local convert {folder.name}` (--int8 for int8)")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        chosen = providers(device)

        def session(name: str) -> ort.InferenceSession:
            path = folder / formats.ofa_onnx_graph(name, precision)
            return ort.InferenceSession(str(path), sess_options=options, providers=chosen)

        tokenizer = OFATokenizer.load(folder)
        return cls(
            encoder=session(formats.OFA_ONNX_ENCODER),
            decoder=session(formats.OFA_ONNX_DECODER),
            embeddings=np.load(folder / formats.OFA_ONNX_EMBEDDINGS, mmap_mode="r"),
            tokenizer=tokenizer,
            manifest=manifest,
            folder=folder,
            precision=precision,
        )

    @property
    def prompt(self) -> str:
        return str(self.manifest["prompt"])

    @property
    def max_text_tokens(self) -> int:
        """The longest prompt (in tokens, ``<s>``/``</s>`` included) the model reads."""
        return int(self.manifest["max_text_tokens"])

    @property
    def special(self) -> SpecialIds:
        return SpecialIds(**self.manifest["special"])

    def search_options(self, beam: int | None = None, max_tokens: int | None = None) -> SearchOptions:
        """The folder's beam-search settings overridden by the caller's, as ``TaskSettings.search_options``."""
        search = self.manifest.get("search", {}) or {}
        return search_options(search, beam, max_tokens)

    def prompt_ids(self, prompts: list[str]) -> np.ndarray:
        """(B, T) int64 ids of ``prompts`` with ``<s>``/``</s>``, right-padded to the longest."""
        encoded = [self.tokenizer.encode(p) for p in prompts]
        width = max(len(e) for e in encoded)
        return np.array([e + [self.tokenizer.pad_id] * (width - len(e)) for e in encoded], dtype=np.int64)

    def encode(self, images: list[Image.Image], prompts: list[str], length: int) -> dict[str, np.ndarray]:
        """The encoder graph's outputs by name, with decoder biases for ``length`` positions."""
        ids = self.prompt_ids(prompts)
        feeds = {
            "text_embeds": np.asarray(self.embeddings[ids], dtype=np.float32),
            "input_ids": ids,
            "pixels": image_array(images, int(self.manifest["resolution"])),
            "target_positions": np.arange(length, dtype=np.int64),
        }
        names = [o.name for o in self.encoder.get_outputs()]
        return dict(zip(names, self.encoder.run(None, feeds), strict=True))

    def generate_ids(self, images: list[Image.Image], prompts: list[str], options: SearchOptions) -> list[list[int]]:
        encoded = self.encode(images, prompts, options.max_tokens + 1)
        return generate(_CachedDecoder(self, encoded), len(images), options, self.special)

    def caption(self, images: list[Image.Image], options: SearchOptions | None = None) -> list[str]:
        """One caption per image (a batch runs through the graphs at once)."""
        ids = self.generate_ids(images, [self.prompt] * len(images), options or self.search_options())
        return [self.tokenizer.decode(row).strip() for row in ids]

    def answer(self, image: Image.Image, question: str, options: SearchOptions | None = None) -> str:
        """The model's answer to ``question`` about ``image``."""
        ids = self.generate_ids([image], [question_prompt(question)], options or self.search_options())
        return self.tokenizer.decode(ids[0]).strip()


class _CachedDecoder:
    """The decoder-step graph with its key/value cache, for :func:`search.generate`."""

    def __init__(self, engine: OnnxOFA, encoded: dict[str, np.ndarray]) -> None:
        self.session = engine.decoder
        self.embeddings = engine.embeddings
        self.cross_keys = encoded["cross_keys"]  # (layers, B, H, S, hd)
        self.cross_values = encoded["cross_values"]
        self.self_bias = encoded["self_bias"]  # (layers, H, L, L)
        self.cross_bias = encoded["cross_bias"]  # (B, H, L, S)
        layers, photos, heads, _, head_dim = self.cross_keys.shape
        self.keys = np.zeros((layers, photos, heads, 0, head_dim), dtype=self.cross_keys.dtype)
        self.values = self.keys

    def step(self, tokens: np.ndarray, t: int) -> np.ndarray:
        feeds = {
            "token_embeds": np.asarray(self.embeddings[tokens], dtype=np.float32),
            "past_keys": self.keys,
            "past_values": self.values,
            "self_bias": np.ascontiguousarray(self.self_bias[:, :, t, : t + 1]),
            "cross_bias": np.ascontiguousarray(self.cross_bias[:, :, t : t + 1]),
            "cross_keys": self.cross_keys,
            "cross_values": self.cross_values,
        }
        logits, self.keys, self.values = self.session.run(None, feeds)
        return logits

    def reorder(self, rows: np.ndarray, kept: np.ndarray | None) -> None:
        self.keys = self.keys[:, rows]
        self.values = self.values[:, rows]
        if kept is not None:
            self.cross_keys = np.ascontiguousarray(self.cross_keys[:, kept])
            self.cross_values = np.ascontiguousarray(self.cross_values[:, kept])
            self.cross_bias = self.cross_bias[kept]

