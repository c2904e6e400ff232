"""Export a ``transformers`` Florence-2 folder to three ONNX graphs with ``torch.onnx`` (conversion time only).

* ``vision``: pixels (1, 3, H, W) -> the projected image tokens (1, N, D), through
  ``transformers``' own DaViT tower and projector, traced as they are, one photo a run.
* ``encoder``: (image tokens, the prompt's token embeddings, its attention mask)
  -> every decoder layer's cross-attention keys and values (L, B, H, S, hd) and
  the additive cross-attention mask (B, 1, 1, S). Everything that does not
  change while decoding is computed here, once per photo.
* ``decoder_step``: (one token's embedding, its position, the self-attention
  cache so far, the cross mask and each layer's cross keys and values) -> the logits (N, vocab) and the
  cache grown by one.

The text graphs are written out here from the BART layers' own weights (the
projections, norms and activations are the modules themselves) rather than traced
through ``transformers``' cache and mask machinery, which the tracer cannot follow
with dynamic shapes. Token embeddings are looked up outside the graphs, in a
``.npy`` table read a row at a time, so the 51k x D table is not held twice.
This module needs torch; the runtime does not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from describe_local.see.caption.florence_onnx import layout

log = logging.getLogger(__name__)

OPSET = 17
POSITION_OFFSET = 2  # BART's learnt positions start at row 2


def _heads(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, S, D) -> (B, H, S, hd)."""
    return x.view(x.shape[0], x.shape[1], -1, attn.head_dim).transpose(1, 2)


def _attend(attn: nn.Module, h: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """BART attention of ``h`` (B, T, D) over ``keys``/``values`` (B, H, S, hd), as its eager implementation."""
    q = _heads(attn, attn.q_proj(h))
    weights = torch.matmul(q, keys.transpose(2, 3)) * attn.scaling
    if mask is not None:
        weights = weights + mask
    weights = torch.softmax(weights, dim=-1)
    out = torch.matmul(weights, values).transpose(1, 2).reshape(h.shape[0], h.shape[1], -1)
    return attn.out_proj(out)


def _feed_forward(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return layer.final_layer_norm(h + layer.fc2(layer.activation_fn(layer.fc1(h))))


class VisionGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.get_image_features(pixels).pooler_output


class EncoderGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        language = model.model.language_model
        self.encoder = language.encoder
        self.decoder_layers = language.decoder.layers
        self.scale = float(language.encoder.embed_tokens.embed_scale)
        if getattr(self.encoder, "layer_norm", None) is not None:
            raise ValueError("this BART variant has a final encoder norm: not a Florence-2 text model")

    def forward(self, image_tokens: torch.Tensor, text_embeds: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.cat([image_tokens, text_embeds * self.scale], dim=1)
        ones = torch.ones(image_tokens.shape[:2], dtype=torch.float32)
        keep = torch.cat([ones, attention_mask.to(torch.float32)], dim=1)
        mask = ((1.0 - keep) * torch.finfo(torch.float32).min)[:, None, None, :]
        positions = torch.arange(x.shape[1]) + POSITION_OFFSET
        h = self.encoder.layernorm_embedding(x + self.encoder.embed_positions.weight[positions])
        for layer in self.encoder.layers:
            attn = layer.self_attn
            h = layer.self_attn_layer_norm(h + _attend(attn, h, _heads(attn, attn.k_proj(h)),
                                                       _heads(attn, attn.v_proj(h)), mask))
            h = _feed_forward(layer, h)
        keys = torch.stack([_heads(d.encoder_attn, d.encoder_attn.k_proj(h)) for d in self.decoder_layers])
        values = torch.stack([_heads(d.encoder_attn, d.encoder_attn.v_proj(h)) for d in self.decoder_layers])
        return keys, values, mask


class DecoderStepGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.decoder = model.model.language_model.decoder
        self.lm_head = model.lm_head
        self.scale = float(self.decoder.embed_tokens.embed_scale)

    def forward(self, token_embeds: torch.Tensor, position: torch.Tensor, past_keys: torch.Tensor,
                past_values: torch.Tensor, cross_mask: torch.Tensor,
                *cross: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cross_keys, cross_values = cross[: len(cross) // 2], cross[len(cross) // 2 :]  # one (N, H, S, hd) a layer
        where = self.decoder.embed_positions.weight[position + POSITION_OFFSET]  # (1, D)
        h = self.decoder.layernorm_embedding(token_embeds * self.scale + where)
        keys, values = [], []
        for i, layer in enumerate(self.decoder.layers):
            attn = layer.self_attn
            k = torch.cat([past_keys[i], _heads(attn, attn.k_proj(h))], dim=2)
            v = torch.cat([past_values[i], _heads(attn, attn.v_proj(h))], dim=2)
            keys.append(k)
            values.append(v)
            h = layer.self_attn_layer_norm(h + _attend(attn, h, k, v))
            h = layer.encoder_attn_layer_norm(h + _attend(layer.encoder_attn, h, cross_keys[i], cross_values[i],
                                                          cross_mask))
            h = _feed_forward(layer, h)
        return self.lm_head(h)[:, 0], torch.stack(keys), torch.stack(values)


def cross_input_names(layers: int) -> list[str]:
    """The decoder step's cross-attention inputs, one a layer: fed as views of the encoder's stacked output.

    One stacked input, indexed per layer inside the graph, became a Split that copied all the
    cross keys and values (32 MB for three beams at base size) at every step: 36 of a step's 89 ms
    (ONNX Runtime's profiler, a loaded 2-core machine); a step takes 25 ms without it.
    """
    return [f"cross_keys_{i}" for i in range(layers)] + [f"cross_values_{i}" for i in range(layers)]


def load_model(folder: Path) -> nn.Module:
    """The folder's Florence-2 as ``transformers`` loads it, in fp32, in eval mode."""
    import transformers

    model = transformers.AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32,
                                                                     local_files_only=True)
    return model.eval()


def export(model: nn.Module, out: Path, resolution: int, *, names: tuple[str, ...] = layout.GRAPHS,
           fixed_vision: bool = True) -> dict[str, Path]:
    """Write ``vision.onnx``, ``encoder.onnx`` and ``decoder_step.onnx`` (fp32, those in ``names``) into ``out``.

    ``fixed_vision``: the vision graph for one photo a run with every shape fixed (the tracer's shape
    arithmetic folds away, 5400 -> 3800 nodes), or with a dynamic batch. At base size (2 cores, one
    photo) the fixed one took half the CPU time, 3.4 s instead of 6.5 (int8: 2.5 s instead of 4.6),
    but ONNX Runtime held more at once while running it: a peak 140 MB higher (int8: 200 MB).
    """
    text = model.config.text_config
    layers, heads = text.decoder_layers, text.decoder_attention_heads
    width, head_dim = text.d_model, text.d_model // text.decoder_attention_heads
    out.mkdir(parents=True, exist_ok=True)
    tokens = 2 + resolution // 32 * (resolution // 32) - 1  # any length works: the axes are dynamic
    with torch.no_grad():
        image_tokens = VisionGraph(model)(torch.zeros(1, 3, resolution, resolution))
    prompt = 5
    cross = cross_input_names(layers)
    plans = {
        "vision": (VisionGraph(model), (torch.zeros(1, 3, resolution, resolution),), ("pixels",),
                   ("image_tokens",), {} if fixed_vision else {"pixels": {0: "batch"}, "image_tokens": {0: "batch"}}),
        "encoder": (EncoderGraph(model), (image_tokens, torch.zeros(1, prompt, width),
                                          torch.ones(1, prompt, dtype=torch.int64)),
                    ("image_tokens", "text_embeds", "attention_mask"), ("cross_keys", "cross_values", "cross_mask"),
                    {"image_tokens": {0: "batch", 1: "images"}, "text_embeds": {0: "batch", 1: "prompt"},
                     "attention_mask": {0: "batch", 1: "prompt"}, "cross_keys": {1: "batch", 3: "source"},
                     "cross_values": {1: "batch", 3: "source"}, "cross_mask": {0: "batch", 3: "source"}}),
        "decoder_step": (DecoderStepGraph(model),
                         (torch.zeros(2, 1, width), torch.tensor([3]), torch.zeros(layers, 2, heads, 3, head_dim),
                          torch.zeros(layers, 2, heads, 3, head_dim), torch.zeros(2, 1, 1, tokens),
                          *[torch.zeros(2, heads, tokens, head_dim) for _ in range(2 * layers)]),
                         ("token_embeds", "position", "past_keys", "past_values", "cross_mask", *cross),
                         ("logits", "present_keys", "present_values"),
                         {"token_embeds": {0: "rows"}, "past_keys": {1: "rows", 3: "past"},
                          "past_values": {1: "rows", 3: "past"}, "cross_mask": {0: "rows", 3: "source"},
                          **{name: {0: "rows", 2: "source"} for name in cross},
                          "logits": {0: "rows"}, "present_keys": {1: "rows", 3: "length"},
                          "present_values": {1: "rows", 3: "length"}}),
    }
    paths = {}
    for name, (module, args, inputs, outputs, axes) in plans.items():
        if name not in names:
            continue
        path = out / f"{name}.onnx"
        with torch.no_grad():
            torch.onnx.export(module, args, str(path), input_names=list(inputs), output_names=list(outputs),
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
        log.info("wrote %s", path)
        paths[name] = path
    return paths
