"""OFA (One For All, ICML 2022) inference in plain PyTorch.

An encoder reads the image (ResNet patches) and the prompt tokens together; a
decoder writes the answer one token at a time, attending to the encoder output.
What sets OFA apart from a plain transformer, and is all here:

* position information enters only as attention biases: an absolute part (a
  projection of learned position embeddings, scaled by ``pos_scaling``) plus a
  learned per-layer relative part (1-D buckets for tokens, 2-D for patches);
* NormFormer extras: a layer norm after each attention and inside the FFN, and
  a learned per-head scale (``c_attn``) of the attention output;
* queries scaled by ``(head_dim * attn_scale_factor) ** -0.5``.

Submodule names follow the released checkpoints, so their state dict loads
as it is (see :mod:`describe_local.see.caption.ofa.checkpoint`). :meth:`OFAModel.prepare`
then folds constant factors into the weights (BatchNorm into convolutions,
query scaling and head scales into projections) for speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from describe_local.see.caption.ofa.config import RESNET_LAYERS, OFAConfig
from describe_local.see.caption.ofa.layers import (
    Attention,
    DecoderLayer,
    EncoderLayer,
    LayerCache,
    heads_view,
    maybe_norm,
    padding_bias_of,
)
from describe_local.see.caption.ofa.positions import image_position_ids, patch_buckets, token_buckets
from describe_local.see.caption.ofa.resnet import ResNetBackbone


@dataclass
class EncoderOutput:
    hidden: torch.Tensor  # (B, S, D) after the final layer norm
    padding: torch.Tensor | None  # (B, S) True at padded prompt tokens, None when none
    positions: torch.Tensor  # (1, S, D) normalised position embeddings (image, then text)



class Encoder(nn.Module):
    def __init__(self, config: OFAConfig, embed_tokens: nn.Embedding) -> None:
        super().__init__()
        dim = config.d_model
        self.config = config
        self.heads = config.encoder_attention_heads
        self.embed_scale = math.sqrt(dim) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.type_embedding = nn.Embedding(2, dim) if config.add_type_embedding else None
        self.embed_images = ResNetBackbone(RESNET_LAYERS[config.resnet_type])
        self.image_proj = nn.Linear(1024, dim)
        self.patch_layernorm_embedding = maybe_norm(dim, config.patch_layernorm_embedding)
        self.layernorm_embedding = maybe_norm(dim, config.layernorm_embedding)
        self.embed_positions = nn.Embedding(config.max_position_embeddings + 2, dim)
        self.embed_image_positions = nn.Embedding(config.image_bucket_size**2 + 1, dim)
        self.pos_ln = nn.LayerNorm(dim)
        self.image_pos_ln = nn.LayerNorm(dim)
        self.pos_q_linear = nn.Linear(dim, dim)
        self.pos_k_linear = nn.Linear(dim, dim)
        self.pos_scaling = float(dim / self.heads * config.attn_scale_factor) ** -0.5
        tables = 1 if config.share_attn_bias else config.encoder_layers
        token_distances = 2 * config.token_bucket_size - 1
        image_distances = (2 * config.image_bucket_size - 1) ** 2 + 3
        self.token_rel_pos_table_list = nn.ModuleList(
            nn.Embedding(token_distances, self.heads) for _ in range(tables)
        )
        self.image_rel_pos_table_list = nn.ModuleList(
            nn.Embedding(image_distances, self.heads) for _ in range(tables)
        )
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.layer_norm = maybe_norm(dim, config.encoder_normalize_before)
        self._layout_cache: tuple[tuple, tuple[torch.Tensor, ...]] | None = None

    def _layout(
        self, text_len: int, grid: tuple[int, int], ref: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Position embeddings, absolute biases and relative buckets for a (text length, grid) layout.

        They depend only on the layout, not on the photo or the words, so they
        are computed once and reused for every image of the same size.
        """
        key = (text_len, grid, ref.device, ref.dtype)
        if self._layout_cache is not None and self._layout_cache[0] == key:
            return self._layout_cache[1]
        patch_ids = image_position_ids(*grid, self.config.image_bucket_size).to(ref.device)
        text_pos = self.pos_ln(self.embed_positions.weight[:text_len])
        image_pos = self.image_pos_ln(self.embed_image_positions(patch_ids))
        positions = torch.cat([image_pos, text_pos])[None]  # (1, S, D)
        q = heads_view(self.pos_q_linear(positions), self.heads) * self.pos_scaling
        k = heads_view(self.pos_k_linear(positions), self.heads)
        abs_bias = q @ k.transpose(-1, -2)  # (1, H, S, S)
        image_rel = patch_buckets(*grid, self.config.image_bucket_size).to(ref.device)
        token_rel = token_buckets(self.config.token_bucket_size, text_len).to(ref.device)
        value = (positions, abs_bias, image_rel, token_rel)
        self._layout_cache = (key, value)
        return value

    def _layer_bias(
        self, index: int, abs_bias: torch.Tensor, image_rel: torch.Tensor, token_rel: torch.Tensor
    ) -> torch.Tensor:
        table = 0 if self.config.share_attn_bias else index
        bias = abs_bias.clone()
        patches = image_rel.shape[0]
        token_bias = self.token_rel_pos_table_list[table](token_rel)
        bias[:, :, patches:, patches:] += token_bias.permute(2, 0, 1)
        image_bias = self.image_rel_pos_table_list[table](image_rel)
        bias[:, :, :patches, :patches] += image_bias.permute(2, 0, 1)
        return bias

    def forward(self, input_ids: torch.Tensor, images: torch.Tensor) -> EncoderOutput:
        """Encode (B, T) prompt ids and (B, 3, H, W) normalised images."""
        features = self.embed_images(images)  # (B, 1024, h, w)
        grid = (features.shape[-2], features.shape[-1])
        image_x = self.image_proj(features.flatten(2).transpose(1, 2)) * self.embed_scale
        text_x = self.embed_tokens(input_ids) * self.embed_scale
        if self.type_embedding is not None:
            image_x = image_x + self.type_embedding.weight[1]
            text_x = text_x + self.type_embedding.weight[0]
        if self.patch_layernorm_embedding is not None:
            image_x = self.patch_layernorm_embedding(image_x)
        if self.layernorm_embedding is not None:
            text_x = self.layernorm_embedding(text_x)
        x = torch.cat([image_x, text_x], dim=1)

        text_len = input_ids.shape[1]
        positions, abs_bias, image_rel, token_rel = self._layout(text_len, grid, x)
        text_pad = input_ids.eq(self.config.pad_token_id)
        padding = None
        pad_bias = None
        if bool(text_pad.any()):
            padding = torch.cat([text_pad.new_zeros(x.shape[0], image_x.shape[1]), text_pad], dim=1)
            x = x * (~padding).unsqueeze(-1).to(x.dtype)
            pad_bias = padding_bias_of(padding, x.dtype)
        for index, layer in enumerate(self.layers):
            bias = self._layer_bias(index, abs_bias, image_rel, token_rel)
            if pad_bias is not None:
                bias = bias + pad_bias
            x = layer(x, bias.to(x.dtype))
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return EncoderOutput(hidden=x, padding=padding, positions=positions)


class Decoder(nn.Module):
    def __init__(self, config: OFAConfig, embed_tokens: nn.Embedding) -> None:
        super().__init__()
        dim = config.d_model
        self.config = config
        self.heads = config.decoder_attention_heads
        self.embed_scale = math.sqrt(dim) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = nn.Embedding(config.max_position_embeddings + 2, dim)
        self.pos_ln = nn.LayerNorm(dim)
        self.self_pos_q_linear = nn.Linear(dim, dim)
        self.self_pos_k_linear = nn.Linear(dim, dim)
        self.cross_pos_q_linear = nn.Linear(dim, dim)
        self.cross_pos_k_linear = nn.Linear(dim, dim)
        self.pos_scaling = float(dim / self.heads * config.attn_scale_factor) ** -0.5
        self.layernorm_embedding = maybe_norm(dim, config.layernorm_embedding)
        tables = 1 if config.share_attn_bias else config.decoder_layers
        self.token_rel_pos_table_list = nn.ModuleList(
            nn.Embedding(2 * config.token_bucket_size - 1, self.heads) for _ in range(tables)
        )
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        self.layer_norm = maybe_norm(dim, config.decoder_normalize_before)
        self.output_projection = None
        if not config.share_decoder_input_output_embed:
            self.output_projection = nn.Linear(dim, config.vocab_size, bias=False)

    def position_biases(
        self, length: int, source_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention biases for target positions 0..length-1.

        Returns the self-attention biases, (layers, H, length, length), and the
        cross-attention bias, (H, length, S): both depend only on positions.
        """
        target = self.pos_ln(self.embed_positions.weight[:length])[None]  # (1, L, D)
        q = heads_view(self.self_pos_q_linear(target), self.heads) * self.pos_scaling
        k = heads_view(self.self_pos_k_linear(target), self.heads)
        self_abs = (q @ k.transpose(-1, -2))[0]  # (H, L, L)
        buckets = token_buckets(self.config.token_bucket_size, length).to(target.device)
        self_bias = torch.stack(
            [
                self_abs + self.token_rel_pos_table_list[self._table(i)](buckets).permute(2, 0, 1)
                for i in range(len(self.layers))
            ]
        )
        q = heads_view(self.cross_pos_q_linear(target), self.heads) * self.pos_scaling
        k = heads_view(self.cross_pos_k_linear(source_positions), self.heads)
        cross_bias = (q @ k.transpose(-1, -2))[0]  # (H, L, S)
        return self_bias, cross_bias

    def _table(self, index: int) -> int:
        return 0 if self.config.share_attn_bias else index

    def start(self, encoder_out: EncoderOutput, rows: int, max_len: int) -> list[LayerCache]:
        """Empty caches for ``rows`` hypotheses (a multiple of the images) of up to ``max_len`` tokens."""
        hidden = encoder_out.hidden
        caches = []
        for layer in self.layers:
            ck, cv = layer.cross_attn.keys_values(hidden)
            shape = (rows, self.heads, max_len, layer.self_attn.head_dim)
            caches.append(
                LayerCache(
                    keys=hidden.new_zeros(shape),
                    values=hidden.new_zeros(shape),
                    cross_keys=ck,
                    cross_values=cv,
                )
            )
        return caches

    def step(
        self,
        tokens: torch.Tensor,
        t: int,
        caches: list[LayerCache],
        self_bias: torch.Tensor,
        cross_bias: torch.Tensor,
        padding_bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """Logits (N, vocab) of the token after ``tokens`` (N,), the tokens at position ``t``."""
        n = tokens.shape[0]
        images = caches[0].cross_keys.shape[0]
        beams = n // images
        x = self.embed_tokens(tokens)[:, None] * self.embed_scale
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        cross = cross_bias[None, :, t : t + 1, :]  # (1, H, 1, S): the same for every beam
        if padding_bias is not None:
            cross = cross + padding_bias
        for index, layer in enumerate(self.layers):
            bias = self_bias[index, :, t : t + 1, : t + 1][None]
            x = layer.step(x, caches[index], t, bias, cross, beams)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        weight = self.embed_tokens.weight if self.output_projection is None else self.output_projection.weight
        return F.linear(x[:, 0], weight)


class OFAModel(nn.Module):
    """The OFA encoder-decoder; see :mod:`describe_local.see.caption.ofa.generate` for decoding."""

    def __init__(self, config: OFAConfig) -> None:
        super().__init__()
        self.config = config
        shared = nn.Embedding(config.vocab_size, config.d_model, config.pad_token_id)
        self.encoder = Encoder(config, shared)
        self.decoder = Decoder(config, shared)

    @torch.no_grad()
    def prepare(self) -> OFAModel:
        """Switch to inference and fold constant factors into the weights (see the module doc)."""
        self.eval()
        self.encoder.embed_images.fuse_batchnorm()
        for module in self.modules():
            if isinstance(module, Attention):
                module.prepare()
        return self

    def encode(self, input_ids: torch.Tensor, images: torch.Tensor) -> EncoderOutput:
        return self.encoder(input_ids, images)


def padding_bias(encoder_out: EncoderOutput) -> torch.Tensor | None:
    """The cross-attention bias that hides padded prompt tokens, or None."""
    if encoder_out.padding is None:
        return None
    return padding_bias_of(encoder_out.padding, encoder_out.hidden.dtype)
