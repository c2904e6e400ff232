"""Run an exported OFA folder on ONNX Runtime: NumPy in, NumPy out, no torch.

:class:`OnnxOFA` mirrors the torch engine's ``OFA`` (``caption``, ``answer``,
``generate_ids``, ``encode``), reading what the engine would derive from the
checkpoint (task settings, special ids) from ``onnx/manifest.json``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from describe_local.errors import ModelNotInstalled
from describe_local.memory import settle_allocator
from describe_local.see.caption.ofa.options import SearchOptions, question_prompt, search_options
from describe_local.see.caption.ofa_onnx.search import SpecialIds, generate
from describe_local.see.caption.ofa_onnx.sessions import CUDA, load_tokenizer, open_session, providers
from describe_local.store import formats

if TYPE_CHECKING:
    import onnxruntime as ort
    from PIL import Image

    from describe_local.see.caption.ofa.tokenizer import PromptTokenizer

log = logging.getLogger(__name__)


def image_array(images: list[Image.Image], size: int) -> np.ndarray:
    """(B, 3, size, size) float32 pixels, exactly as the engine's ``preprocess.image_tensor``.

    An RGB photo is resized as it is (``convert`` would first copy it whole: 36 MB of a 12-megapixel
    photo), and the arithmetic is done in place, in the same order, into the one batch array.
    """
    from PIL import Image

    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    for i, image in enumerate(images):
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        pixels = np.asarray(rgb.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
        pixels /= np.float32(255.0)
        pixels -= np.float32(0.5)
        pixels /= np.float32(0.5)
        batch[i] = pixels.transpose(2, 0, 1)
    return batch


def pick_precision(folder: Path, manifest: dict, chosen: list[str], precision: str | None) -> str:
    """``precision`` if given, else fp16 on CUDA where the folder has fp16 graphs, else the manifest's."""
    if precision:
        return precision
    if chosen[0] == CUDA and "fp16" in formats.ofa_onnx_precisions(folder):
        return "fp16"
    return str(manifest.get("precision", "fp32"))


class EmbeddingTable:
    """The (vocab, D) token embeddings of a ``.npy`` file, read a row at a time as they are looked up.

    A caption reads a few dozen rows of a 60 MB table. A memory mapping of it brought in
    far more than those rows (the kernel maps whole cached folios around each fault: 56 MB
    resident after 85 random rows); reading just the rows asked for costs a few microseconds each.
    """

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(handle)
            self.offset = handle.tell()
        if fortran or len(shape) != 2:
            raise ModelNotInstalled(f"{path} is not a (vocab, width) table: convert the model again")
        self.path = Path(path)
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        """float32 rows ``ids`` (any shape of token ids) -> ``ids.shape + (D,)``."""
        ids = np.asarray(ids, dtype=np.int64)
        flat = ids.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= self.shape[0]):
            raise IndexError(f"token id out of range 0..{self.shape[0] - 1}")
        out = np.empty((flat.size, self.shape[1]), dtype=self.dtype)
        with open(self.path, "rb", buffering=0) as handle:
            fd = handle.fileno()
            for i, token in enumerate(flat.tolist()):
                out[i] = np.frombuffer(os.pread(fd, self.row_bytes, self.offset + token * self.row_bytes), self.dtype)
        return out.reshape(*ids.shape, self.shape[1]).astype(np.float32, copy=False)


@dataclass
class OnnxOFA:
    """An exported OFA folder ready to run: two sessions, the embedding table, tokenizer, task settings."""

    encoder: ort.InferenceSession
    decoder: ort.InferenceSession
    embeddings: EmbeddingTable  # (vocab, D), rows read as looked up
    tokenizer: PromptTokenizer  # the caption prompt's ids kept; the whole BPE read only for questions
    manifest: dict
    folder: Path
    precision: str

    @classmethod
    def load(cls, folder: Path, *, device: str = "auto", threads: int = 0, precision: str | None = None) -> OnnxOFA:
        """Load ``folder``'s ONNX graphs at ``precision`` (default: fp16 on CUDA when converted with
        ``--fp16``, else the manifest's) on ``device``."""
        folder = Path(folder)
        manifest = formats.ofa_onnx_manifest(folder)
        if manifest is None:
            raise ModelNotInstalled(f"{folder} has no ONNX graphs of this version's layout: "
                                    f"run `describe-local models convert {folder.name}`")
        settle_allocator()  # the sessions have no arena: their freed tensors go back (describe_local.memory)
        chosen = providers(device)
        precision = pick_precision(folder, manifest, chosen, precision)
        if precision not in formats.ofa_onnx_precisions(folder):
            flag = "" if precision == "fp32" else f" --{precision}"
            raise ModelNotInstalled(f"{folder} has no {precision} ONNX graphs: "
                                    f"run `describe-local models convert {folder.name}{flag}`")

        def session(name: str) -> ort.InferenceSession:
            return open_session(folder, name, precision, chosen, device, threads)

        tokenizer = load_tokenizer(folder, manifest)
        # The decoder first: packing its output projection briefly holds it twice (60 MB with
        # the released vocabulary), which then sits on less and so raises the peak less.
        decoder = session(formats.OFA_ONNX_DECODER)
        return cls(
            encoder=session(formats.OFA_ONNX_ENCODER),
            decoder=decoder,
            embeddings=EmbeddingTable(folder / formats.OFA_ONNX_EMBEDDINGS),
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

    def encode(self, images: list[Image.Image], prompts: list[str] | np.ndarray, length: int) -> dict[str, np.ndarray]:
        """The encoder graph's outputs by name, with decoder biases for ``length`` positions.

        ``prompts``: the text of each photo's prompt, or their (B, T) ids as :meth:`prompt_ids` gives them.
        """
        ids = self.prompt_ids(prompts) if isinstance(prompts, list) else np.asarray(prompts, dtype=np.int64)
        feeds = {
            "text_embeds": self.embeddings[ids],
            "input_ids": ids,
            "pixels": image_array(images, int(self.manifest["resolution"])),
            "target_positions": np.arange(length, dtype=np.int64),
        }
        names = [o.name for o in self.encoder.get_outputs()]
        return dict(zip(names, self.encoder.run(None, feeds), strict=True))

    def generate_ids(self, images: list[Image.Image], prompts: list[str] | np.ndarray,
                     options: SearchOptions) -> list[list[int]]:
        """The best token ids for each image (prompts as :meth:`encode` takes them)."""
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

    _OUTPUTS = ("top_values", "top_tokens", "present_keys", "present_values")

    def __init__(self, engine: OnnxOFA, encoded: dict[str, np.ndarray]) -> None:
        self.session = engine.decoder
        self.embeddings = engine.embeddings
        self.vocab = engine.embeddings.shape[0]
        self.cross_keys = encoded["cross_keys"]  # (layers, B, H, S, hd)
        self.cross_values = encoded["cross_values"]
        self.self_bias = encoded["self_bias"]  # (layers, H, L, L)
        self.cross_bias = encoded["cross_bias"]  # (B, H, L, S)
        layers, photos, heads, _, head_dim = self.cross_keys.shape
        self.keys = np.zeros((layers, photos, heads, 0, head_dim), dtype=self.cross_keys.dtype)
        self.values = self.keys

    def _feeds(self, tokens: np.ndarray, t: int, ban: np.ndarray, k: int) -> dict[str, np.ndarray]:
        return {
            "token_embeds": self.embeddings[tokens],
            "past_keys": self.keys,
            "past_values": self.values,
            "self_bias": np.ascontiguousarray(self.self_bias[:, :, t, : t + 1]),
            "cross_bias": np.ascontiguousarray(self.cross_bias[:, :, t : t + 1]),
            "cross_keys": self.cross_keys,
            "cross_values": self.cross_values,
            "ban": ban,
            "k_slots": np.zeros(k, dtype=np.int64),
        }

    def top(self, tokens: np.ndarray, t: int, ban: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        values, top, self.keys, self.values = self.session.run(list(self._OUTPUTS), self._feeds(tokens, t, ban, k))
        return values, top

    def step(self, tokens: np.ndarray, t: int) -> np.ndarray:
        """The raw logits (N, vocab) after ``tokens`` at position ``t`` (for tests); grows the cache."""
        ban = np.zeros((1, self.vocab), dtype=np.float32)
        logits, self.keys, self.values = self.session.run(["logits", "present_keys", "present_values"],
                                                          self._feeds(tokens, t, ban, 1))
        return logits

    def reorder(self, rows: np.ndarray, kept: np.ndarray | None) -> None:
        self.keys = self.keys[:, rows]
        self.values = self.values[:, rows]
        if kept is not None:
            self.cross_keys = np.ascontiguousarray(self.cross_keys[:, kept])
            self.cross_values = np.ascontiguousarray(self.cross_values[:, kept])
            self.cross_bias = self.cross_bias[kept]
