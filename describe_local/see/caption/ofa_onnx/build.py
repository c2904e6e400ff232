"""Write the two OFA graphs of :mod:`.export` from NumPy weights, without torch.

The same inputs, outputs, names, dtypes and dynamic axes as the torch exporter
(see its docstring, and :mod:`.runtime`, which runs them): ``encoder`` computes
the encoder output, each decoder layer's cross-attention keys and values and
the decoder's position biases once per photo; ``decoder_step`` runs one token
per hypothesis and ends in log-softmax and top-k.

What depends only on the weights is computed here once, in float64 and rounded
once: the layer-normed position embeddings and their query/key projections (a
table per position, gathered by the graph), and the folded weights of
:class:`.source.Weights`. The rest follows the torch engine step by step.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from describe_local.see.caption.ofa.config import OFAConfig
from describe_local.see.caption.ofa_onnx.build_layers import (
    Heads,
    StepInputs,
    cross_keys_values,
    decoder_layer,
    encoder_layer,
    resnet,
    resnet_grid,
)
from describe_local.see.caption.ofa_onnx.graph import Graph, save
from describe_local.see.caption.ofa_onnx.source import (
    MAX_POSITIONS,
    Weights,
    image_position_ids,
    patch_buckets,
    relative_bucket_table,
)
from describe_local.store import formats

log = logging.getLogger(__name__)

FEATURES = 1024  # channels of the ResNet's third stage, which image_proj reads


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    x = x.astype(np.float64)
    centred = x - x.mean(-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(-1, keepdims=True) + eps) * weight + bias


def _project(w: Weights, x: np.ndarray, name: str, scale: float = 1.0) -> np.ndarray:
    """``x`` (float64) through the linear layer ``name``, times ``scale``: a table the graph gathers from."""
    return (x @ w(f"{name}.weight").astype(np.float64).T + w(f"{name}.bias")) * scale


class _Positions:
    """The position tables of both graphs' biases (see the module doc)."""

    def __init__(self, w: Weights, config: OFAConfig, grid: tuple[int, int]) -> None:
        dim = config.d_model
        self.limit = min(config.max_position_embeddings, MAX_POSITIONS)
        patch_ids = image_position_ids(*grid, config.image_bucket_size)
        text = _layer_norm(w("encoder.embed_positions.weight")[: self.limit], w("encoder.pos_ln.weight"),
                           w("encoder.pos_ln.bias"))
        image = _layer_norm(w("encoder.embed_image_positions.weight")[patch_ids], w("encoder.image_pos_ln.weight"),
                            w("encoder.image_pos_ln.bias"))
        enc_scale = float(dim / config.encoder_attention_heads * config.attn_scale_factor) ** -0.5
        dec_scale = float(dim / config.decoder_attention_heads * config.attn_scale_factor) ** -0.5
        self.enc_q = (_project(w, image, "encoder.pos_q_linear", enc_scale),
                      _project(w, text, "encoder.pos_q_linear", enc_scale))
        self.enc_k = (_project(w, image, "encoder.pos_k_linear"), _project(w, text, "encoder.pos_k_linear"))
        self.cross_k = (_project(w, image, "decoder.cross_pos_k_linear"),
                        _project(w, text, "decoder.cross_pos_k_linear"))
        target = _layer_norm(w("decoder.embed_positions.weight")[: self.limit], w("decoder.pos_ln.weight"),
                             w("decoder.pos_ln.bias"))
        self.self_q = _project(w, target, "decoder.self_pos_q_linear", dec_scale)
        self.self_k = _project(w, target, "decoder.self_pos_k_linear")
        self.cross_q = _project(w, target, "decoder.cross_pos_q_linear", dec_scale)
        self.buckets = relative_bucket_table(config.token_bucket_size, self.limit)
        self.image_rel = patch_buckets(*grid, config.image_bucket_size)


def _rows(g: Graph, table: np.ndarray, positions: str, name: str) -> str:
    return g.op("Gather", g.const(table, name), positions, axis=0)


def _source(g: Graph, pair: tuple[np.ndarray, np.ndarray], text_len: str, name: str) -> str:
    """The rows of the image patches, then of the first ``text_len`` text positions: (S, D)."""
    image, text = pair
    return g.op("Concat", g.const(image, f"{name}.image"), g.slice_rows(g.const(text, f"{name}.text"), text_len),
                axis=0)


def _abs_bias(g: Graph, q: str, k: str, heads: Heads) -> str:
    """(Lq, D) queries and (Lk, D) keys -> (H, Lq, Lk) ``q @ k.T`` per head."""
    qh = g.op("Transpose", g.op("Reshape", q, g.ints([0, heads.heads, heads.head_dim])), perm=[1, 0, 2])
    kh = g.op("Transpose", g.op("Reshape", k, g.ints([0, heads.heads, heads.head_dim])), perm=[1, 2, 0])
    return g.op("MatMul", qh, kh)


def _relative(g: Graph, pos: _Positions, positions: str) -> str:
    """The (L, L) token bucket of every pair of ``positions``."""
    distance = g.op("Sub", g.unsqueeze(positions, [1]), g.unsqueeze(positions, [0]))
    return g.op("Gather", g.const(pos.buckets, "token_buckets"),
                g.op("Add", distance, g.const(np.int64(pos.limit - 1))), axis=0)


def _table_bias(g: Graph, table: str, buckets: str) -> str:
    """A relative-position table's bias at ``buckets`` (L, M): (H, L, M)."""
    return g.op("Transpose", g.op("Gather", table, buckets, axis=0), perm=[2, 0, 1])


def encoder_graph(w: Weights, config: OFAConfig, resolution: int, dtype: type = np.float32,
                  data: Path | None = None) -> Graph:
    g = Graph("encoder", dtype, data)
    dim, heads = config.d_model, Heads(config.encoder_attention_heads,
                                       config.d_model // config.encoder_attention_heads)
    grid = resnet_grid(resolution)
    patches = grid[0] * grid[1]
    pos = _Positions(w, config, grid)
    text_embeds = g.input("text_embeds", np.float32, ["batch", "prompt", dim])
    input_ids = g.input("input_ids", np.int64, ["batch", "prompt"])
    pixels = g.input("pixels", np.float32, ["batch", 3, resolution, resolution])
    target_positions = g.input("target_positions", np.int64, ["length"])
    if g.dtype != np.float32:
        text_embeds, pixels = (g.op("Cast", v, to=_onnx_type(g.dtype)) for v in (text_embeds, pixels))
    embed_scale = math.sqrt(dim) if config.scale_embedding else 1.0

    features = g.op("Reshape", resnet(g, w, pixels), g.ints([0, FEATURES, -1]))
    image_x = g.linear(g.op("Transpose", features, perm=[0, 2, 1]), w("encoder.image_proj.weight", (dim, FEATURES)),
                       w("encoder.image_proj.bias", (dim,)), "encoder.image_proj")
    image_x, text_x = g.scale(image_x, embed_scale), g.scale(text_embeds, embed_scale)
    if config.add_type_embedding:
        types = w("encoder.type_embedding.weight", (2, dim))
        image_x = g.op("Add", image_x, g.const(types[1], "encoder.type_embedding.image"))
        text_x = g.op("Add", text_x, g.const(types[0], "encoder.type_embedding.text"))
    if config.patch_layernorm_embedding:
        image_x = g.layer_norm(image_x, w("encoder.patch_layernorm_embedding.weight"),
                               w("encoder.patch_layernorm_embedding.bias"), "encoder.patch_layernorm_embedding")
    if config.layernorm_embedding:
        text_x = g.layer_norm(text_x, w("encoder.layernorm_embedding.weight"), w("encoder.layernorm_embedding.bias"),
                              "encoder.layernorm_embedding")
    x = g.op("Concat", image_x, text_x, axis=1)

    # padded prompt tokens: zeroed, and hidden from attention by the dtype's minimum in the bias
    text_len = g.dim(input_ids, 1)
    pad = g.op("Equal", input_ids, g.const(np.int64(config.pad_token_id)))
    keep = g.op("Pad", g.op("Cast", g.op("Not", pad), to=_onnx_type(g.dtype)), g.ints([0, patches, 0, 0]),
                g.const(1.0))
    x = g.op("Mul", x, g.unsqueeze(keep, [2]))
    pad_bias = g.unsqueeze(g.op("Mul", g.op("Sub", g.const(1.0), keep), g.const(np.finfo(g.dtype).min)), [1, 2])

    abs_bias = _abs_bias(g, _source(g, pos.enc_q, text_len, "encoder.pos_q"),
                         _source(g, pos.enc_k, text_len, "encoder.pos_k"), heads)  # (H, S, S)
    text_rel = _relative(g, pos, g.slice_rows(g.const(np.arange(pos.limit, dtype=np.int64)), text_len))
    image_rel = g.const(pos.image_rel, "image_buckets")
    pad_image = g.op("Concat", g.ints([0, 0, 0, 0, 0]), text_len, axis=0)  # (H, P, P) -> (H, P, S)
    tables: dict[int, str] = {}
    for index in range(config.encoder_layers):
        table = 0 if config.share_attn_bias else index
        if table not in tables:
            image_table = w(f"encoder.image_rel_pos_table_list.{table}.weight")
            token_table = w(f"encoder.token_rel_pos_table_list.{table}.weight")
            top = g.op("Pad", _table_bias(g, g.const(image_table, f"encoder.image_rel.{table}"), image_rel),
                       pad_image)
            bottom = g.op("Pad", _table_bias(g, g.const(token_table, f"encoder.token_rel.{table}"), text_rel),
                          g.ints([0, 0, patches, 0, 0, 0]))
            tables[table] = g.op("Concat", top, bottom, axis=1)
        bias = g.op("Add", g.op("Add", abs_bias, tables[table]), pad_bias)  # (B, H, S, S)
        x = encoder_layer(g, w, config, index, x, bias)
    if config.encoder_normalize_before:
        x = g.layer_norm(x, w("encoder.layer_norm.weight"), w("encoder.layer_norm.bias"), "encoder.layer_norm")
    g.output(x, "hidden", g.dtype, ["batch", "source", dim])

    cross = [cross_keys_values(g, w, config, i, x) for i in range(config.decoder_layers)]
    layers, dec_heads = config.decoder_layers, config.decoder_attention_heads
    head_dim = dim // dec_heads
    for number, name in enumerate(("cross_keys", "cross_values")):
        g.output(g.stack([kv[number] for kv in cross]), name, g.dtype,
                 [layers, "batch", dec_heads, "source", head_dim])

    dec = Heads(dec_heads, head_dim)
    self_abs = _abs_bias(g, _rows(g, pos.self_q, target_positions, "decoder.self_pos_q"),
                         _rows(g, pos.self_k, target_positions, "decoder.self_pos_k"), dec)  # (H, L, L)
    buckets = _relative(g, pos, target_positions)
    self_bias = [g.op("Add", self_abs, _table_bias(g, g.const(
        w(f"decoder.token_rel_pos_table_list.{0 if config.share_attn_bias else i}.weight"),
        f"decoder.token_rel.{i}"), buckets)) for i in range(layers)]
    g.output(g.stack(self_bias), "self_bias", g.dtype, [layers, dec_heads, "length", "length"])
    cross_bias = _abs_bias(g, _rows(g, pos.cross_q, target_positions, "decoder.cross_pos_q"),
                           _source(g, pos.cross_k, text_len, "decoder.cross_pos_k"), dec)  # (H, L, S)
    g.output(g.op("Add", cross_bias, pad_bias), "cross_bias", g.dtype, ["batch", dec_heads, "length", "source"])
    return g


def decoder_graph(w: Weights, config: OFAConfig, dtype: type = np.float32, data: Path | None = None) -> Graph:
    g = Graph("decoder_step", dtype, data)
    dim, layers, heads = config.d_model, config.decoder_layers, config.decoder_attention_heads
    head_dim = dim // heads
    vocab = config.vocab_size
    cache = [layers, "rows", heads, "past", head_dim]
    token_embeds = g.input("token_embeds", np.float32, ["rows", dim])
    past_keys, past_values = (g.input(n, g.dtype, cache) for n in ("past_keys", "past_values"))
    self_bias = g.input("self_bias", g.dtype, [layers, heads, "seen"])
    cross_bias = g.input("cross_bias", g.dtype, ["batch", heads, 1, "source"])
    cross_keys, cross_values = (g.input(n, g.dtype, [layers, "batch", heads, "source", head_dim])
                                for n in ("cross_keys", "cross_values"))
    ban = g.input("ban", np.float32, ["ban_rows", vocab])
    k_slots = g.input("k_slots", np.int64, ["k"])

    if g.dtype != np.float32:
        token_embeds = g.op("Cast", token_embeds, to=_onnx_type(g.dtype))
    x = g.scale(g.unsqueeze(token_embeds, [1]), math.sqrt(dim) if config.scale_embedding else 1.0)
    if config.layernorm_embedding:
        x = g.layer_norm(x, w("decoder.layernorm_embedding.weight"), w("decoder.layernorm_embedding.bias"),
                         "decoder.layernorm_embedding")
    photos = g.dim(cross_keys, 1)
    presents: tuple[list[str], list[str]] = ([], [])
    for index in range(layers):
        def layer_of(v: str, i: int = index) -> str:
            return g.op("Gather", v, g.const(np.int64(i)), axis=0)

        step = StepInputs(layer_of(past_keys), layer_of(past_values), g.unsqueeze(layer_of(self_bias), [0, 2]),
                          layer_of(cross_keys), layer_of(cross_values), cross_bias, photos)
        x, keys, values = decoder_layer(g, w, config, index, x, step)
        presents[0].append(keys)
        presents[1].append(values)
    if config.decoder_normalize_before:
        x = g.layer_norm(x, w("decoder.layer_norm.weight"), w("decoder.layer_norm.bias"), "decoder.layer_norm")
    shared = config.share_decoder_input_output_embed
    out = w("encoder.embed_tokens.weight" if shared else "decoder.output_projection.weight", (vocab, dim))
    # (D, vocab), a MatMul: what dynamic int8 quantisation covers
    logits = g.op("Squeeze", g.linear(x, out, None, "decoder.output_projection"), g.ints([1]))
    g.output(logits, "logits", g.dtype, ["rows", vocab])
    # as the engine's search: float32 log-probabilities, NaN ruled out, then the bans
    lprobs = g.op("LogSoftmax", logits if g.dtype == np.float32 else g.op("Cast", logits, to=_onnx_type(np.float32)),
                  axis=-1)
    lprobs = g.op("Where", g.op("IsNaN", lprobs), g.const(np.float32(-np.inf), keep_dtype=True), lprobs)
    values, tokens = g.op_n("TopK", g.op("Add", lprobs, ban), g.op("Shape", k_slots), outputs=2, axis=-1)
    g.output(values, "top_values", np.float32, ["rows", "k"])
    g.output(tokens, "top_tokens", np.int64, ["rows", "k"])
    seen = [layers, "rows", heads, "seen", head_dim]
    g.output(g.stack(presents[0]), "present_keys", g.dtype, seen)
    g.output(g.stack(presents[1]), "present_values", g.dtype, seen)
    return g


def _onnx_type(dtype: type) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def build_graphs(weights: Weights, resolution: int, out_dir: Path, precision: str = "fp32") -> dict[str, Path]:
    """Write ``encoder`` and ``decoder_step`` of ``weights`` at ``precision`` (fp32 or fp16) into ``out_dir``,
    named as :mod:`describe_local.store.formats` lays them out, each with its data file; return their paths."""
    dtype = np.float16 if precision == "fp16" else np.float32
    paths = {}
    for name in ("encoder", "decoder_step"):
        target = out_dir / Path(formats.ofa_onnx_graph(name, precision)).name
        data = target.with_name(formats.ofa_onnx_data_name(target.name))
        if name == "encoder":
            graph = encoder_graph(weights, weights.config, resolution, dtype, data)
        else:
            graph = decoder_graph(weights, weights.config, dtype, data)
        save(graph, target)
        paths[name] = target
        log.info("wrote %s", target)
    return paths
