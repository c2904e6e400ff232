"""The architecture of an OFA checkpoint, read from its ``config.json``.

Field names and defaults follow the released OFA ``config.json`` files (the
Hugging Face ``OFA-Sys/*`` folders and ModelScope's OFA checkpoints), so that a
file written by either loads unchanged; unknown fields are ignored.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from describe_local.errors import ModelNotInstalled

# ResNet depth -> Bottleneck blocks in its first three stages (OFA drops stage 4).
RESNET_LAYERS = {
    "resnet50": (3, 4, 6),
    "resnet101": (3, 4, 23),
    "resnet152": (3, 8, 36),
}


@dataclass(frozen=True)
class OFAConfig:
    vocab_size: int = 59457
    d_model: int = 512
    encoder_layers: int = 4
    decoder_layers: int = 4
    encoder_attention_heads: int = 8
    decoder_attention_heads: int = 8
    encoder_ffn_dim: int = 2048
    decoder_ffn_dim: int = 2048
    activation_function: str = "gelu"
    max_position_embeddings: int = 1024
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    scale_embedding: bool = False
    normformer: bool = True
    encoder_normalize_before: bool = True
    decoder_normalize_before: bool = True
    layernorm_embedding: bool = True
    patch_layernorm_embedding: bool = True
    resnet_type: str = "resnet101"
    token_bucket_size: int = 256
    image_bucket_size: int = 42
    add_type_embedding: bool = True
    share_decoder_input_output_embed: bool = True
    attn_scale_factor: float = 2.0
    entangle_position_embedding: bool = False
    share_attn_bias: bool = False
    use_ofasys: bool = False
    use_gamma_feature: bool = False  # some ModelScope checkpoints: learned residual scales

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OFAConfig:
        """Build a config from the parsed ``config.json``; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        config = cls(**{k: v for k, v in data.items() if k in names})
        config.check()
        return config

    @classmethod
    def load(cls, folder: Path) -> OFAConfig:
        """Read ``folder/config.json``."""
        path = Path(folder) / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelNotInstalled(f"cannot read the OFA config {path}: {exc}") from exc
        return cls.from_dict(data)

    def check(self) -> None:
        """Refuse variants this engine does not run, with a message that says which."""
        if self.use_ofasys:
            raise ModelNotInstalled(
                "this OFA checkpoint uses the OFA-Sys ViT image encoder (use_ofasys), which "
                "describe-local does not run; use an OFA-Sys/ofa-* or ModelScope ResNet checkpoint"
            )
        if self.resnet_type not in RESNET_LAYERS:
            raise ModelNotInstalled(
                f"unsupported OFA image backbone {self.resnet_type!r} "
                f"(known: {', '.join(sorted(RESNET_LAYERS))})"
            )
        if self.entangle_position_embedding:
            raise ModelNotInstalled("OFA checkpoints with entangled position embeddings are not supported")
        if self.d_model % self.encoder_attention_heads or self.d_model % self.decoder_attention_heads:
            raise ModelNotInstalled("OFA config: d_model is not a multiple of the attention heads")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"model_type": "ofa", "architectures": ["OFAModel"]}
