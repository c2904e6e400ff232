"""The pieces of OFA as ONNX nodes, from NumPy weights: the ResNet stem and stages, attention, and the
encoder and decoder layers (see ``ofa.resnet`` and ``ofa.layers``, whose arithmetic this follows:
BatchNorm folded into the convolutions, the query scaling and head scales into the projections)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from describe_local.see.caption.ofa.config import RESNET_LAYERS, OFAConfig
from describe_local.see.caption.ofa_onnx.graph import Graph
from describe_local.see.caption.ofa_onnx.source import Weights

EXPANSION = 4  # Bottleneck blocks: output channels = 4 x planes
STAGES = ((64, 1), (128, 2), (256, 2))  # (planes, stride) of the three stages OFA keeps


def resnet_grid(resolution: int) -> tuple[int, int]:
    """The (h, w) feature map of a ``resolution`` square photo: the stem's conv and pool, two stride-2 stages."""
    size = (resolution + 2 * 3 - 7) // 2 + 1  # conv1: 7x7, stride 2, padding 3
    size = (size + 2 - 3) // 2 + 1  # max pool: 3x3, stride 2, padding 1
    for _planes, stride in STAGES:
        size = (size + 2 - 3) // stride + 1  # each stage's first 3x3 convolution
    return size, size


def _conv(g: Graph, x: str, w: Weights, conv: str, bn: str, *, stride: int = 1, pad: int = 0) -> str:
    weight, bias = w.conv_bn(conv, bn)
    k = weight.shape[-1]
    return g.op("Conv", x, g.const(weight, f"{conv}.weight"), g.const(bias, f"{conv}.bias"),
                kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)


def resnet(g: Graph, w: Weights, pixels: str) -> str:
    """(B, 3, H, W) pixels -> (B, 1024, H/16, W/16) features, as ``ResNetBackbone``."""
    p = "encoder.embed_images"
    x = g.op("Relu", _conv(g, pixels, w, f"{p}.conv1", f"{p}.bn1", stride=2, pad=3))
    x = g.op("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    inplanes = 64
    for stage, ((planes, stride), count) in enumerate(zip(STAGES, RESNET_LAYERS[w.config.resnet_type],
                                                          strict=True), 1):
        for index in range(count):
            b = f"{p}.layer{stage}.{index}"
            step = stride if index == 0 else 1
            identity = x
            if index == 0 and (step != 1 or inplanes != planes * EXPANSION):
                identity = _conv(g, x, w, f"{b}.downsample.0", f"{b}.downsample.1", stride=step)
            y = g.op("Relu", _conv(g, x, w, f"{b}.conv1", f"{b}.bn1"))
            y = g.op("Relu", _conv(g, y, w, f"{b}.conv2", f"{b}.bn2", stride=step, pad=1))
            y = _conv(g, y, w, f"{b}.conv3", f"{b}.bn3")
            x = g.op("Relu", g.op("Add", y, identity))
            inplanes = planes * EXPANSION
    return x


@dataclass
class Heads:
    """How a width splits into attention heads."""

    heads: int
    head_dim: int

    def split(self, g: Graph, x: str, perm: tuple[int, ...] = (0, 2, 1, 3)) -> str:
        """(B, T, D) -> (B, H, T, hd) (or, with ``perm`` (0, 2, 3, 1), keys ready to multiply: (B, H, hd, T))."""
        return g.op("Transpose", g.op("Reshape", x, g.ints([0, 0, self.heads, self.head_dim])), perm=list(perm))

    def merge(self, g: Graph, x: str) -> str:
        """(B, H, T, hd) -> (B, T, D)."""
        return g.op("Reshape", g.op("Transpose", x, perm=[0, 2, 1, 3]), g.ints([0, 0, self.heads * self.head_dim]))


def attend(g: Graph, q: str, keys_t: str, values: str, bias: str | None) -> str:
    """softmax(q @ keys_t + bias) @ values: scaled dot-product attention, its scaling already in the queries."""
    scores = g.op("MatMul", q, keys_t)
    if bias is not None:
        scores = g.op("Add", scores, bias)
    return g.op("MatMul", g.op("Softmax", scores, axis=-1), values)


def self_attention_qkv(g: Graph, x: str, a: dict[str, np.ndarray], name: str) -> list[str]:
    """Queries, keys and values of ``x`` (each (B, T, D)) from one joint projection, as ``Attention.project``."""
    weight = np.concatenate([a["q_weight"], a["k_weight"], a["v_weight"]])
    bias = np.concatenate([a["q_bias"], a["k_bias"], a["v_bias"]])
    return g.op_n("Split", g.linear(x, weight, bias, f"{name}.qkv"), axis=-1, outputs=3)


@dataclass
class LayerNames:
    """The optional parts of a layer (they depend on the config), looked up once."""

    prefix: str
    pre_norm: bool
    normformer: bool
    gamma: bool


def _norm(g: Graph, w: Weights, x: str, name: str) -> str:
    return g.layer_norm(x, w(f"{name}.weight"), w(f"{name}.bias"), name)


def _residual(g: Graph, w: Weights, x: str, h: str, names: LayerNames, scale: str) -> str:
    if names.gamma:
        h = g.op("Mul", h, g.const(w(f"{names.prefix}.{scale}"), f"{names.prefix}.{scale}"))
    return g.op("Add", x, h)


def _ffn(g: Graph, w: Weights, h: str, names: LayerNames, activation: str) -> str:
    p = names.prefix
    h = g.activation(g.linear(h, w(f"{p}.fc1.weight"), w(f"{p}.fc1.bias"), f"{p}.fc1"), activation)
    if names.normformer:
        h = _norm(g, w, h, f"{p}.ffn_layer_norm")
    return g.linear(h, w(f"{p}.fc2.weight"), w(f"{p}.fc2.bias"), f"{p}.fc2")


def _sub_block(g: Graph, w: Weights, x: str, names: LayerNames, norm: str, mid: str, scale: str, body) -> str:
    """x + body(norm(x)) with the NormFormer mid norm, pre- or post-norm, as the engine's layers."""
    p = names.prefix
    h = body(_norm(g, w, x, f"{p}.{norm}") if names.pre_norm else x)
    if names.normformer and mid:
        h = _norm(g, w, h, f"{p}.{mid}")
    x = _residual(g, w, x, h, names, scale)
    return x if names.pre_norm else _norm(g, w, x, f"{p}.{norm}")


def encoder_layer(g: Graph, w: Weights, config: OFAConfig, index: int, x: str, bias: str) -> str:
    """One ``EncoderLayer`` over (B, S, D) with its (B, H, S, S) attention bias."""
    names = LayerNames(f"encoder.layers.{index}", config.encoder_normalize_before, config.normformer,
                       config.use_gamma_feature)
    heads = Heads(config.encoder_attention_heads, config.d_model // config.encoder_attention_heads)
    a = w.attention(f"{names.prefix}.self_attn", heads.heads)

    def self_attn(h: str) -> str:
        q, k, v = self_attention_qkv(g, h, a, f"{names.prefix}.self_attn")
        out = attend(g, heads.split(g, q), heads.split(g, k, (0, 2, 3, 1)), heads.split(g, v), bias)
        return g.linear(heads.merge(g, out), a["out_weight"], a["out_bias"], f"{names.prefix}.self_attn.out_proj")

    x = _sub_block(g, w, x, names, "self_attn_layer_norm", "self_attn_mid_layer_norm", "weight_self_attn",
                   self_attn)
    return _sub_block(g, w, x, names, "final_layer_norm", "", "weight_ffn",
                      lambda h: _ffn(g, w, h, names, config.activation_function))


@dataclass
class StepInputs:
    """What one decoder layer reads in a step: its slices of the graph's inputs."""

    past_keys: str  # (N, H, t, hd)
    past_values: str
    self_bias: str  # (1, H, 1, t + 1)
    cross_keys: str  # (B, H, S, hd)
    cross_values: str
    cross_bias: str  # (B, H, 1, S)
    photos: str  # B, a (1,) int64 value


def decoder_layer(g: Graph, w: Weights, config: OFAConfig, index: int, x: str,
                  step: StepInputs) -> tuple[str, str, str]:
    """One ``DecoderLayer.step`` over (N, 1, D): returns x and this layer's keys and values grown by one."""
    names = LayerNames(f"decoder.layers.{index}", config.decoder_normalize_before, config.normformer,
                       config.use_gamma_feature)
    heads = Heads(config.decoder_attention_heads, config.d_model // config.decoder_attention_heads)
    a = w.attention(f"{names.prefix}.self_attn", heads.heads)
    c = w.attention(f"{names.prefix}.cross_attn", heads.heads)
    grown: list[str] = []

    def self_attn(h: str) -> str:
        q, k, v = self_attention_qkv(g, h, a, f"{names.prefix}.self_attn")
        keys = g.op("Concat", step.past_keys, heads.split(g, k), axis=2)
        values = g.op("Concat", step.past_values, heads.split(g, v), axis=2)
        grown.extend([keys, values])
        out = attend(g, heads.split(g, q), g.op("Transpose", keys, perm=[0, 1, 3, 2]), values, step.self_bias)
        return g.linear(heads.merge(g, out), a["out_weight"], a["out_bias"], f"{names.prefix}.self_attn.out_proj")

    def cross_attn(h: str) -> str:
        # The beams of a photo share its encoder keys: they attend as extra query rows, (B, H, beams, hd).
        q = g.linear(h, c["q_weight"], c["q_bias"], f"{names.prefix}.cross_attn.q_proj")
        shape = g.op("Concat", step.photos, g.ints([-1, heads.heads, heads.head_dim]), axis=0)
        q = g.op("Transpose", g.op("Reshape", q, shape), perm=[0, 2, 1, 3])
        out = attend(g, q, g.op("Transpose", step.cross_keys, perm=[0, 1, 3, 2]), step.cross_values,
                     step.cross_bias)
        out = g.linear(heads.merge(g, out), c["out_weight"], c["out_bias"], f"{names.prefix}.cross_attn.out_proj")
        return g.op("Reshape", out, g.ints([-1, 1, config.d_model]))  # (B, beams, D) -> (N, 1, D)

    x = _sub_block(g, w, x, names, "self_attn_layer_norm", "self_attn_mid_layer_norm", "weight_self_attn",
                   self_attn)
    x = _sub_block(g, w, x, names, "cross_attn_layer_norm", "cross_attn_mid_layer_norm", "weight_cross_attn",
                   cross_attn)
    x = _sub_block(g, w, x, names, "final_layer_norm", "", "weight_ffn",
                   lambda h: _ffn(g, w, h, names, config.activation_function))
    return x, grown[0], grown[1]


def cross_keys_values(g: Graph, w: Weights, config: OFAConfig, index: int, hidden: str) -> tuple[str, str]:
    """Decoder layer ``index``'s cross-attention keys and values of the encoder output, each (B, H, S, hd)."""
    heads = Heads(config.decoder_attention_heads, config.d_model // config.decoder_attention_heads)
    c = w.attention(f"decoder.layers.{index}.cross_attn", heads.heads)
    p = f"decoder.layers.{index}.cross_attn"
    keys = g.linear(hidden, c["k_weight"], c["k_bias"], f"{p}.k_proj")
    values = g.linear(hidden, c["v_weight"], c["v_bias"], f"{p}.v_proj")
    return heads.split(g, keys), heads.split(g, values)
