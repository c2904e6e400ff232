"""OFA's transformer layers: attention with NormFormer extras, and the encoder and decoder layers.

The names of submodules follow the released checkpoints (see :mod:`.model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from describe_local.see.caption.ofa.config import OFAConfig

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


class Attention(nn.Module):
    """Multi-head attention with OFA's query scaling and NormFormer head scales."""

    def __init__(self, dim: int, heads: int, scale_factor: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scaling = float(self.head_dim * scale_factor) ** -0.5
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.c_attn = nn.Parameter(torch.ones(heads))
        self.prepared = False

    @torch.no_grad()
    def prepare(self) -> None:
        """Fold the query scaling into q_proj and the head scales into out_proj."""
        if self.prepared:
            return
        self.q_proj.weight.mul_(self.scaling)
        self.q_proj.bias.mul_(self.scaling)
        per_column = self.c_attn.repeat_interleave(self.head_dim)
        self.out_proj.weight.mul_(per_column[None, :])
        self.c_attn.fill_(1.0)
        # one matmul for queries, keys and values of self-attention
        self.qkv_weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
        self.qkv_bias = torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        # the separate projections become views of the joint one: no second copy in memory
        for index, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            rows = slice(index * proj.out_features, (index + 1) * proj.out_features)
            proj.weight = nn.Parameter(self.qkv_weight[rows], requires_grad=False)
            proj.bias = nn.Parameter(self.qkv_bias[rows], requires_grad=False)
        self.prepared = True

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of ``x`` for self-attention, each (B, heads, T, hd)."""
        if not self.prepared:
            return (self.query(x), *self.keys_values(x))
        b, t, _ = x.shape
        qkv = F.linear(x, self.qkv_weight, self.qkv_bias).view(b, t, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, heads, T, head_dim)."""
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        q = self.split(self.q_proj(x))
        return q if self.prepared else q * self.scaling

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.k_proj(x)), self.split(self.v_proj(x))

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """Attention of (B, H, T, hd) queries; returns (B, T, D) after the output projection."""
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        b, _, t, _ = out.shape
        if not self.prepared:
            out = out * self.c_attn[None, :, None, None]
        return self.out_proj(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return self.attend(*self.project(x), bias)


def maybe_norm(dim: int, enabled: bool) -> nn.LayerNorm | None:
    return nn.LayerNorm(dim) if enabled else None


class FeedForward(nn.Module):
    """The FFN sub-block of a layer: fc1, activation, optional NormFormer norm, fc2."""

    def forward_ffn(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.fc1(x))
        if self.ffn_layer_norm is not None:
            x = self.ffn_layer_norm(x)
        return self.fc2(x)


class EncoderLayer(FeedForward):
    def __init__(self, config: OFAConfig) -> None:
        super().__init__()
        dim = config.d_model
        self.self_attn = Attention(dim, config.encoder_attention_heads, config.attn_scale_factor)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.self_attn_mid_layer_norm = maybe_norm(dim, config.normformer)
        self.fc1 = nn.Linear(dim, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, dim)
        self.ffn_layer_norm = maybe_norm(config.encoder_ffn_dim, config.normformer)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre_norm = config.encoder_normalize_before
        self.activation = _ACTIVATIONS[config.activation_function]
        _add_residual_scales(self, dim, config, ("weight_self_attn", "weight_ffn"))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        h = self.self_attn_layer_norm(x) if self.pre_norm else x
        h = self.self_attn(h, bias)
        if self.self_attn_mid_layer_norm is not None:
            h = self.self_attn_mid_layer_norm(h)
        x = x + _scaled(self, "weight_self_attn", h)
        if not self.pre_norm:
            x = self.self_attn_layer_norm(x)
        h = self.final_layer_norm(x) if self.pre_norm else x
        x = x + _scaled(self, "weight_ffn", self.forward_ffn(h))
        return x if self.pre_norm else self.final_layer_norm(x)


class DecoderLayer(FeedForward):
    def __init__(self, config: OFAConfig) -> None:
        super().__init__()
        dim = config.d_model
        heads = config.decoder_attention_heads
        self.self_attn = Attention(dim, heads, config.attn_scale_factor)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.self_attn_mid_layer_norm = maybe_norm(dim, config.normformer)
        self.cross_attn = Attention(dim, heads, config.attn_scale_factor)
        self.cross_attn_layer_norm = nn.LayerNorm(dim)
        self.cross_attn_mid_layer_norm = maybe_norm(dim, config.normformer)
        self.fc1 = nn.Linear(dim, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, dim)
        self.ffn_layer_norm = maybe_norm(config.decoder_ffn_dim, config.normformer)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre_norm = config.decoder_normalize_before
        self.activation = _ACTIVATIONS[config.activation_function]
        _add_residual_scales(self, dim, config, ("weight_self_attn", "weight_cross_attn", "weight_ffn"))

    def step(
        self,
        x: torch.Tensor,
        cache: LayerCache,
        t: int,
        self_bias: torch.Tensor,
        cross_bias: torch.Tensor,
        beams: int,
    ) -> torch.Tensor:
        """One decoding step for (N, 1, D) inputs at position ``t``, updating ``cache``."""
        h = self.self_attn_layer_norm(x) if self.pre_norm else x
        q, k, v = self.self_attn.project(h)
        cache.keys[:, :, t : t + 1] = k
        cache.values[:, :, t : t + 1] = v
        h = self.self_attn.attend(q, cache.keys[:, :, : t + 1], cache.values[:, :, : t + 1], self_bias)
        if self.self_attn_mid_layer_norm is not None:
            h = self.self_attn_mid_layer_norm(h)
        x = x + _scaled(self, "weight_self_attn", h)
        if not self.pre_norm:
            x = self.self_attn_layer_norm(x)

        h = self.cross_attn_layer_norm(x) if self.pre_norm else x
        # The beams of one image share its encoder keys: attend with the beams as
        # extra query rows, (B, H, beams, hd), instead of copying keys per beam.
        q = self.cross_attn.query(h)  # (B*beams, H, 1, hd)
        n, heads, _, hd = q.shape
        q = q.view(n // beams, beams, heads, hd).transpose(1, 2)
        h = self.cross_attn.attend(q, cache.cross_keys, cache.cross_values, cross_bias)
        h = h.reshape(n, 1, -1)
        if self.cross_attn_mid_layer_norm is not None:
            h = self.cross_attn_mid_layer_norm(h)
        x = x + _scaled(self, "weight_cross_attn", h)
        if not self.pre_norm:
            x = self.cross_attn_layer_norm(x)

        h = self.final_layer_norm(x) if self.pre_norm else x
        x = x + _scaled(self, "weight_ffn", self.forward_ffn(h))
        return x if self.pre_norm else self.final_layer_norm(x)


def _add_residual_scales(layer: nn.Module, dim: int, config: OFAConfig, names: tuple[str, ...]) -> None:
    """ModelScope's ``use_gamma_feature`` checkpoints scale each sub-block before its residual."""
    for name in names:
        if config.use_gamma_feature:
            layer.register_parameter(name, nn.Parameter(torch.ones(dim)))
        else:
            setattr(layer, name, None)


def _scaled(layer: nn.Module, name: str, h: torch.Tensor) -> torch.Tensor:
    scale = getattr(layer, name)
    return h if scale is None else h * scale


@dataclass
class LayerCache:
    keys: torch.Tensor  # (N, H, max_len, hd) self-attention keys so far
    values: torch.Tensor
    cross_keys: torch.Tensor  # (B, H, S, hd) encoder keys, shared by the beams of an image
    cross_values: torch.Tensor


def heads_view(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, D) -> (B, heads, T, D / heads)."""
    b, t, d = x.shape
    return x.view(b, t, heads, d // heads).transpose(1, 2)


def padding_bias_of(padding: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, S) padding flags -> (B, 1, 1, S) additive bias: the dtype's minimum at pads."""
    bias = torch.zeros(padding.shape, dtype=dtype, device=padding.device)
    bias.masked_fill_(padding, torch.finfo(dtype).min)
    return bias[:, None, None, :]
