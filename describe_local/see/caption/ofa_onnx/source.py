"""What converting reads from an OFA checkpoint folder, without torch: its weights as NumPy arrays
(named as the engine names them), its task settings, and the fixed tables both engines derive.

The weights come through :mod:`describe_local.store.torch_checkpoint`, which
refuses any pickle that holds more than tensors. The constant factors the
torch engine folds into its weights in ``OFAModel.prepare`` (BatchNorm into the
convolutions, the query scaling and NormFormer head scales into the attention
projections) are folded here with the same arithmetic, so that both engines
run the same numbers.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from describe_local.errors import ModelNotInstalled
from describe_local.see.caption.ofa.config import OFAConfig
from describe_local.store import torch_checkpoint
from describe_local.store.formats import INDEX_FILES, WEIGHT_FILES, index_shards

log = logging.getLogger(__name__)

MAX_POSITIONS = 1024  # as ofa.positions: the longest text the released checkpoints were built for
# as ofa.preprocess: the caption prompts of the model cards, and the input size by model width
CAPTION_PROMPT = " what does the image describe?"
PRETRAINED_CAPTION_PROMPT = " what is the description of the image?"
_RESOLUTION_BY_WIDTH = ((512, 256), (768, 384))
LARGE_RESOLUTION = 480
BATCHNORM_EPS = 1e-5  # torch's BatchNorm2d default, which the checkpoints were trained with

# Present in released checkpoints but unused by text generation.
_UNUSED_PREFIXES = (
    "decoder.embed_image_positions.",
    "decoder.image_pos_ln.",
    "decoder.code_layernorm_embedding.",
    "decoder.image_rel_pos_table_list.",
)
_UNUSED_NAMES = (
    "encoder.token_rp_bucket",
    "encoder.image_rp_bucket",
    "decoder.token_rp_bucket",
    "decoder.image_rp_bucket",
    "decoder.image_position_idx",
    "encoder.version",
    "decoder.version",
)
# The token embedding is shared by encoder, decoder and output; checkpoints keep
# one or more of these names for it.
_SHARED_EMBEDDING_NAMES = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "shared.weight",
)


def read_state_dict(folder: Path, read: Callable[[Path], dict] = torch_checkpoint.load) -> dict:
    """All tensors of the checkpoint in ``folder`` (one file or a sharded index), by their saved names,
    each file read by ``read`` (NumPy arrays by default; the torch engine passes its own reader)."""
    folder = Path(folder)
    for name in INDEX_FILES:
        index = folder / name
        if index.is_file():
            shards = index_shards(index)
            if shards is None:
                raise ModelNotInstalled(f"{index} is not a weight index (no weight_map); copy the model again")
            state: dict = {}
            for shard in shards:
                state.update(read(folder / shard))
            return state
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return read(folder / name)
    raise ModelNotInstalled(f"no weights in {folder}: expected one of {', '.join(WEIGHT_FILES + INDEX_FILES)}")


def normalise_names(state: dict) -> dict:
    """Map saved names onto ours: drop a task-wrapper ``model.`` prefix and unused entries.

    The shared token embedding ends up as ``encoder.embed_tokens.weight`` whatever it was saved as.
    """
    if state and all(k.startswith("model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    kept = {n: t for n, t in state.items() if n not in _UNUSED_NAMES and not n.startswith(_UNUSED_PREFIXES)}
    shared = next((kept[n] for n in _SHARED_EMBEDDING_NAMES if n in kept), None)
    if shared is None and "decoder.output_projection.weight" in kept:
        shared = kept["decoder.output_projection.weight"]
    for name in _SHARED_EMBEDDING_NAMES:
        kept.pop(name, None)
    if shared is not None:
        kept["encoder.embed_tokens.weight"] = shared
    return kept


def default_resolution(d_model: int) -> int:
    """The input size the released checkpoint of this width was trained at."""
    return next((size for width, size in _RESOLUTION_BY_WIDTH if d_model <= width), LARGE_RESOLUTION)


@dataclass(frozen=True)
class Task:
    """A folder's task settings (ModelScope's ``configuration.json``), as the engine's ``TaskSettings``."""

    resolution: int
    prompt: str
    search: dict = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path, config: OFAConfig) -> Task:
        path = Path(folder) / "configuration.json"
        model: dict = {}
        if path.is_file():
            try:
                model = json.loads(path.read_text(encoding="utf-8")).get("model", {}) or {}
            except (OSError, ValueError) as exc:
                log.warning("ignoring unreadable %s: %s", path, exc)
        # caption fine-tuned checkpoints were trained on the first prompt, the pretrained ones the second
        caption = path.is_file() or "caption" in Path(folder).name.lower()
        return cls(
            resolution=int(model.get("patch_image_size", default_resolution(config.d_model))),
            prompt=str(model.get("prompt", CAPTION_PROMPT if caption else PRETRAINED_CAPTION_PROMPT)),
            search=dict(model.get("beam_search", {}) or {}),
        )


def token_buckets(bucket_size: int, size: int = MAX_POSITIONS, max_positions: int = MAX_POSITIONS) -> np.ndarray:
    """As ``ofa.positions.token_buckets``: the relative bucket of every (query, key) pair, (size, size)."""
    pos = np.arange(size, dtype=np.int64)
    rel = pos[:, None] - pos[None, :]
    mid = bucket_size // 2
    near = (rel < mid) & (rel > -mid)
    dist = np.where(near, mid - 1, np.abs(rel))
    # float32 arithmetic as in the released models (and torch's), so that ceil() rounds the same way
    with np.errstate(divide="ignore"):
        ratio = np.log(dist.astype(np.float32) / np.float32(mid))
    far = np.ceil(ratio / np.float32(math.log((max_positions - 1) / mid)) * np.float32(mid - 1)) + np.float32(mid)
    bucket = np.where(dist <= mid, rel, far.astype(np.int64) * np.sign(rel))
    return bucket + bucket_size - 1


def relative_bucket_table(bucket_size: int, size: int = MAX_POSITIONS) -> np.ndarray:
    """Token bucket of every distance -(size-1)..size-1, indexed by distance + size - 1 (as ``export``'s)."""
    table = token_buckets(bucket_size, size)
    return np.concatenate([table[0, 1:][::-1], table[:, 0]])


def patch_buckets(height: int, width: int, bucket_size: int) -> np.ndarray:
    """As ``ofa.positions.patch_buckets``: the bucket of every pair of patches of an h x w map."""
    rows = np.repeat(np.arange(height), width)
    cols = np.tile(np.arange(width), height)
    dy = rows[:, None] - rows[None, :] + bucket_size - 1
    dx = cols[:, None] - cols[None, :] + bucket_size - 1
    return (dy * (2 * bucket_size - 1) + dx).astype(np.int64)


def image_position_ids(height: int, width: int, bucket_size: int) -> np.ndarray:
    """Grid cell id (row * bucket_size + column + 1) of each patch of an h x w feature map."""
    return (np.arange(height)[:, None] * bucket_size + np.arange(width)[None, :] + 1).reshape(-1)


class Weights:
    """The checkpoint's float tensors as float32 NumPy arrays, by our names, folded as the engine folds them."""

    def __init__(self, folder: Path, config: OFAConfig) -> None:
        self.folder = Path(folder)
        self.config = config
        self.state = normalise_names(read_state_dict(self.folder))
        if config.share_decoder_input_output_embed:
            self.state.pop("decoder.output_projection.weight", None)
        self.used: set[str] = set()  # the names read: what is left over is logged by the converter

    def __call__(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The tensor ``name`` as float32 (checked against ``shape``)."""
        tensor = self.state.get(name)
        if tensor is None:
            raise ModelNotInstalled(f"the OFA checkpoint in {self.folder} lacks the weight {name}: "
                                    "incomplete download or not an OFA model")
        if shape is not None and tuple(tensor.shape) != tuple(shape):
            raise ModelNotInstalled(f"the OFA checkpoint in {self.folder} does not match its config.json: "
                                    f"{name} {tuple(tensor.shape)} vs {tuple(shape)}")
        self.used.add(name)
        return np.asarray(tensor, dtype=np.float32)

    def has(self, name: str) -> bool:
        return name in self.state

    def conv_bn(self, conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
        """A bias-free convolution's weight with the BatchNorm after it folded in: (weight, bias).

        In float64, rounded once to float32, as ``resnet._fold`` does it.
        """
        weight = self(f"{conv}.weight").astype(np.float64)
        out = weight.shape[0]
        gamma, beta = (self(f"{bn}.{n}", (out,)).astype(np.float64) for n in ("weight", "bias"))
        mean, var = (self(f"{bn}.{n}", (out,)).astype(np.float64) for n in ("running_mean", "running_var"))
        scale = gamma / np.sqrt(var + BATCHNORM_EPS)
        return (weight * scale.reshape(-1, 1, 1, 1)).astype(np.float32), (beta - mean * scale).astype(np.float32)

    def attention(self, prefix: str, heads: int) -> dict[str, np.ndarray]:
        """An attention block's projections as ``Attention.prepare`` leaves them: scaling folded into the
        queries, the per-head scales (``c_attn``) into the output projection's columns."""
        dim = self.config.d_model
        head_dim = dim // heads
        scaling = np.float32(float(head_dim * self.config.attn_scale_factor) ** -0.5)
        out = {f"{p}_{k}": self(f"{prefix}.{p}_proj.{k}", (dim, dim) if k == "weight" else (dim,))
               for p in ("q", "k", "v", "out") for k in ("weight", "bias")}
        out["q_weight"], out["q_bias"] = out["q_weight"] * scaling, out["q_bias"] * scaling
        per_column = np.repeat(self(f"{prefix}.c_attn", (heads,)), head_dim)
        out["out_weight"] = out["out_weight"] * per_column[None, :]
        return out
