"""Export our PyTorch OFA engine to two ONNX graphs with torch.onnx (a cross-check; `models convert` uses .build).

* ``encoder``: (text embeddings, prompt ids, pixels, decoder positions) -> the
  encoder output, every decoder layer's cross-attention keys and values, and
  the decoder's position biases for those positions (self-attention, per layer,
  and cross-attention with the prompt padding folded in). Everything that does
  not change while decoding is computed here, once per photo.
* ``decoder_step``: (token embeddings, the self-attention cache so far, this
  step's biases, the cross keys/values, the search's ban mask, k) -> logits, the
  k best log-probabilities of each row after the bans with their tokens, and the
  cache grown by one. Log-softmax and top-k run in the graph (on all cores)
  rather than in NumPy: over a 59457-token vocabulary they were a tenth of a
  beam-search step.

The graphs reuse the engine's own modules (ResNet, layers, attention, the
weights it folds in :meth:`OFAModel.prepare`), so they compute what it computes;
only the shape bookkeeping is written anew, to keep batch, beam and prompt
length dynamic. Token embeddings are looked up outside (see :data:`EMBEDDINGS`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from describe_local.see.caption.ofa.layers import heads_view
from describe_local.see.caption.ofa.model import OFAModel
from describe_local.see.caption.ofa.positions import MAX_POSITIONS, image_position_ids, patch_buckets, token_buckets

log = logging.getLogger(__name__)

OPSET = 17
ENCODER_INPUTS = ("text_embeds", "input_ids", "pixels", "target_positions")
ENCODER_OUTPUTS = ("hidden", "cross_keys", "cross_values", "self_bias", "cross_bias")
DECODER_INPUTS = ("token_embeds", "past_keys", "past_values", "self_bias", "cross_bias", "cross_keys", "cross_values",
                  "ban", "k_slots")
DECODER_OUTPUTS = ("logits", "top_values", "top_tokens", "present_keys", "present_values")


def relative_bucket_table(bucket_size: int, size: int = MAX_POSITIONS) -> torch.Tensor:
    """Token bucket of every distance -(size-1)..size-1, indexed by distance + size - 1.

    ``token_buckets`` depends on the distance only, so one row and one column of
    its table give all of it; a graph then gathers instead of re-deriving the
    logarithmic buckets (whose float rounding could differ between runtimes).
    """
    table = token_buckets(bucket_size, size)
    return torch.cat([table[0, 1:].flip(0), table[:, 0]])


class EncoderGraph(nn.Module):
    """The encoder and the decoder's per-photo constants, at one fixed image resolution."""

    def __init__(self, model: OFAModel, resolution: int) -> None:
        super().__init__()
        self.model = model
        enc = model.encoder
        self.dtype = next(model.parameters()).dtype
        grid = enc.embed_images(torch.zeros(1, 3, resolution, resolution, dtype=self.dtype)).shape[-2:]
        patch_ids = image_position_ids(*grid, model.config.image_bucket_size)
        self.register_buffer("patch_ids", patch_ids, persistent=False)
        self.register_buffer("image_rel", patch_buckets(*grid, model.config.image_bucket_size), persistent=False)
        limit = min(model.config.max_position_embeddings, MAX_POSITIONS)
        self.offset = limit - 1
        self.register_buffer("token_rel", relative_bucket_table(model.config.token_bucket_size, limit),
                             persistent=False)

    def _rel(self, positions: torch.Tensor) -> torch.Tensor:
        return self.token_rel[positions[:, None] - positions[None, :] + self.offset]

    def forward(
        self, text_embeds: torch.Tensor, input_ids: torch.Tensor, pixels: torch.Tensor, target_positions: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        enc, dec, config = self.model.encoder, self.model.decoder, self.model.config
        text_embeds, pixels = text_embeds.to(self.dtype), pixels.to(self.dtype)  # no-ops in fp32
        features = enc.embed_images(pixels)
        image_x = enc.image_proj(features.flatten(2).transpose(1, 2)) * enc.embed_scale
        text_x = text_embeds * enc.embed_scale
        if enc.type_embedding is not None:
            image_x = image_x + enc.type_embedding.weight[1]
            text_x = text_x + enc.type_embedding.weight[0]
        if enc.patch_layernorm_embedding is not None:
            image_x = enc.patch_layernorm_embedding(image_x)
        if enc.layernorm_embedding is not None:
            text_x = enc.layernorm_embedding(text_x)
        x = torch.cat([image_x, text_x], dim=1)

        text_ids = torch.arange(input_ids.shape[1], dtype=torch.long)
        image_pos = enc.image_pos_ln(enc.embed_image_positions(self.patch_ids))
        positions = torch.cat([image_pos, enc.pos_ln(enc.embed_positions(text_ids))])[None]
        q = heads_view(enc.pos_q_linear(positions), enc.heads) * enc.pos_scaling
        k = heads_view(enc.pos_k_linear(positions), enc.heads)
        abs_bias = q @ k.transpose(-1, -2)  # (1, H, S, S)

        patches = self.patch_ids.shape[0]
        text_pad = input_ids.eq(config.pad_token_id)
        padding = torch.cat([torch.zeros_like(text_pad[:, :1]).expand(-1, patches), text_pad], dim=1)
        x = x * (~padding).unsqueeze(-1).to(x.dtype)  # x * 1 where nothing is padded: unchanged
        pad_bias = torch.where(padding, torch.finfo(x.dtype).min, 0.0).to(x.dtype)[:, None, None, :]
        token_rel = self._rel(text_ids)
        for index, layer in enumerate(enc.layers):
            table = 0 if config.share_attn_bias else index
            image_bias = enc.image_rel_pos_table_list[table](self.image_rel).permute(2, 0, 1)[None]
            token_bias = enc.token_rel_pos_table_list[table](token_rel).permute(2, 0, 1)[None]
            top = torch.cat([abs_bias[:, :, :patches, :patches] + image_bias, abs_bias[:, :, :patches, patches:]], -1)
            bottom = torch.cat([abs_bias[:, :, patches:, :patches],
                                abs_bias[:, :, patches:, patches:] + token_bias], -1)
            x = layer(x, torch.cat([top, bottom], dim=2) + pad_bias)
        if enc.layer_norm is not None:
            x = enc.layer_norm(x)

        cross = [layer.cross_attn.keys_values(x) for layer in dec.layers]
        cross_keys = torch.stack([k for k, _ in cross])
        cross_values = torch.stack([v for _, v in cross])
        target = dec.pos_ln(dec.embed_positions(target_positions))[None]
        q = heads_view(dec.self_pos_q_linear(target), dec.heads) * dec.pos_scaling
        k = heads_view(dec.self_pos_k_linear(target), dec.heads)
        self_abs = (q @ k.transpose(-1, -2))[0]  # (H, L, L)
        buckets = self._rel(target_positions)
        self_bias = torch.stack([
            self_abs + dec.token_rel_pos_table_list[dec._table(i)](buckets).permute(2, 0, 1)
            for i in range(len(dec.layers))
        ])
        q = heads_view(dec.cross_pos_q_linear(target), dec.heads) * dec.pos_scaling
        k = heads_view(dec.cross_pos_k_linear(positions), dec.heads)
        cross_bias = q @ k.transpose(-1, -2) + pad_bias  # (B, H, L, S)
        return x, cross_keys, cross_values, self_bias, cross_bias


class DecoderStepGraph(nn.Module):
    """One decoding step for N hypotheses of B photos (N = B x beams), as ``Decoder.step`` does it."""

    def __init__(self, model: OFAModel) -> None:
        super().__init__()
        self.decoder = model.decoder
        weight = model.decoder.embed_tokens.weight
        if model.decoder.output_projection is not None:
            weight = model.decoder.output_projection.weight
        # (D, vocab): a MatMul, which dynamic int8 quantisation covers (it skips Gemm). A parameter,
        # not a buffer: the exporter makes buffers Constant nodes, which neither the quantiser
        # nor the external-data format (weights memory-mapped at load) reaches.
        self.out_weight = nn.Parameter(weight.detach().t().contiguous(), requires_grad=False)

    def forward(
        self,
        token_embeds: torch.Tensor,  # (N, D) rows of the token embedding table
        past_keys: torch.Tensor,  # (layers, N, H, t, hd)
        past_values: torch.Tensor,
        self_bias: torch.Tensor,  # (layers, H, t + 1): row t of the encoder graph's self_bias
        cross_bias: torch.Tensor,  # (B, H, 1, S): row t of its cross_bias
        cross_keys: torch.Tensor,  # (layers, B, H, S, hd)
        cross_values: torch.Tensor,
        ban: torch.Tensor,  # (N, vocab) or (1, vocab): 0, or -inf for a token the search rules out
        k_slots: torch.Tensor,  # (k,): only its length counts, the number of best tokens wanted per row
    ) -> tuple[torch.Tensor, ...]:
        dec = self.decoder
        x = token_embeds.to(self.out_weight.dtype)[:, None] * dec.embed_scale
        if dec.layernorm_embedding is not None:
            x = dec.layernorm_embedding(x)
        presents_k, presents_v = [], []
        for index, layer in enumerate(dec.layers):
            h = layer.self_attn_layer_norm(x) if layer.pre_norm else x
            q, k, v = layer.self_attn.project(h)
            keys = torch.cat([past_keys[index], k], dim=2)
            values = torch.cat([past_values[index], v], dim=2)
            presents_k.append(keys)
            presents_v.append(values)
            h = layer.self_attn.attend(q, keys, values, self_bias[index][None, :, None, :])
            if layer.self_attn_mid_layer_norm is not None:
                h = layer.self_attn_mid_layer_norm(h)
            x = x + _scaled(layer, "weight_self_attn", h)
            if not layer.pre_norm:
                x = layer.self_attn_layer_norm(x)

            h = layer.cross_attn_layer_norm(x) if layer.pre_norm else x
            q = layer.cross_attn.query(h)  # (N, H, 1, hd) -> (B, H, beams, hd)
            n, heads, _, hd = q.shape
            q = q.reshape(cross_keys.shape[1], -1, heads, hd).transpose(1, 2)
            h = layer.cross_attn.attend(q, cross_keys[index], cross_values[index], cross_bias)
            h = h.reshape(n, 1, -1)
            if layer.cross_attn_mid_layer_norm is not None:
                h = layer.cross_attn_mid_layer_norm(h)
            x = x + _scaled(layer, "weight_cross_attn", h)
            if not layer.pre_norm:
                x = layer.cross_attn_layer_norm(x)

            h = layer.final_layer_norm(x) if layer.pre_norm else x
            x = x + _scaled(layer, "weight_ffn", layer.forward_ffn(h))
            if not layer.pre_norm:
                x = layer.final_layer_norm(x)
        if dec.layer_norm is not None:
            x = dec.layer_norm(x)
        logits = torch.matmul(x, self.out_weight)[:, 0]
        # as the engine's search: float32 log-probabilities, NaN ruled out, then the bans
        lprobs = torch.log_softmax(logits.float(), dim=-1)
        lprobs = torch.where(torch.isnan(lprobs), torch.full_like(lprobs, -torch.inf), lprobs) + ban
        top_values, top_tokens = torch.topk(lprobs, k_slots.shape[0], dim=-1)
        return logits, top_values, top_tokens, torch.stack(presents_k), torch.stack(presents_v)


def _scaled(layer: nn.Module, name: str, h: torch.Tensor) -> torch.Tensor:
    scale = getattr(layer, name)
    return h if scale is None else h * scale


def example_inputs(model: OFAModel, resolution: int) -> tuple[tuple, tuple]:
    """Inputs to trace the two graphs with (2 photos, 2 beams, a padded prompt, step 2)."""
    config = model.config
    dim, layers = config.d_model, config.decoder_layers
    heads = config.decoder_attention_heads
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]])
    encoder = (torch.randn(2, 5, dim), ids, torch.randn(2, 3, resolution, resolution), torch.arange(4))
    graph = EncoderGraph(model, resolution)
    with torch.no_grad():
        _, cross_keys, cross_values, self_bias, cross_bias = graph(*encoder)
    cache = torch.randn(layers, 4, heads, 2, dim // heads)
    vocab = model.decoder.embed_tokens.weight.shape[0]
    decoder = (torch.randn(4, dim), cache, cache.clone(), self_bias[:, :, 2, :3].contiguous(),
               cross_bias[:, :, 2:3].contiguous(), cross_keys, cross_values, torch.zeros(4, vocab),
               torch.zeros(3, dtype=torch.long))
    return encoder, decoder


def export_graphs(model: OFAModel, resolution: int, out_dir: Path) -> dict[str, Path]:
    """Write ``encoder.onnx`` and ``decoder_step.onnx`` of the prepared ``model`` into ``out_dir``.

    Each is one self-contained file; :mod:`.convert` moves the weights out into a
    data file beside it. The graph's arithmetic is in the model's dtype (fp32, or
    fp16 for CUDA); its inputs are float32 whatever the dtype.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_args, decoder_args = example_inputs(model, resolution)
    dtype = next(model.parameters()).dtype
    decoder_args = tuple(a.to(dtype) if a.is_floating_point() and 1 <= i <= 6 else a
                         for i, a in enumerate(decoder_args))
    paths = {"encoder": out_dir / "encoder.onnx", "decoder_step": out_dir / "decoder_step.onnx"}
    jobs = (
        (EncoderGraph(model, resolution), encoder_args, paths["encoder"], ENCODER_INPUTS, ENCODER_OUTPUTS, {
            "text_embeds": {0: "batch", 1: "prompt"}, "input_ids": {0: "batch", 1: "prompt"},
            "pixels": {0: "batch"}, "target_positions": {0: "length"},
            "hidden": {0: "batch", 1: "source"}, "cross_keys": {1: "batch", 3: "source"},
            "cross_values": {1: "batch", 3: "source"}, "self_bias": {2: "length", 3: "length"},
            "cross_bias": {0: "batch", 2: "length", 3: "source"},
        }),
        (DecoderStepGraph(model), decoder_args, paths["decoder_step"], DECODER_INPUTS, DECODER_OUTPUTS, {
            "token_embeds": {0: "rows"}, "past_keys": {1: "rows", 3: "past"}, "past_values": {1: "rows", 3: "past"},
            "self_bias": {2: "seen"}, "cross_bias": {0: "batch", 3: "source"},
            "cross_keys": {1: "batch", 3: "source"}, "cross_values": {1: "batch", 3: "source"},
            "ban": {0: "ban_rows"}, "k_slots": {0: "k"},
            "logits": {0: "rows"}, "top_values": {0: "rows", 1: "k"}, "top_tokens": {0: "rows", 1: "k"},
            "present_keys": {1: "rows", 3: "seen"}, "present_values": {1: "rows", 3: "seen"},
        }),
    )
    for module, args, path, inputs, outputs, axes in jobs:
        module.eval()
        with torch.no_grad():
            torch.onnx.export(module, args, str(path), input_names=list(inputs), output_names=list(outputs),
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
        log.info("wrote %s", path)
    return paths
