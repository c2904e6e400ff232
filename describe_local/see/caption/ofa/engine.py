"""A loaded OFA checkpoint that captions photos and answers questions about them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from describe_local.errors import ConfigError
from describe_local.see.caption.ofa.checkpoint import load_model
from describe_local.see.caption.ofa.config import OFAConfig
from describe_local.see.caption.ofa.generate import generate
from describe_local.see.caption.ofa.model import EncoderOutput, OFAModel
from describe_local.see.caption.ofa.options import SearchOptions, question_prompt, search_options
from describe_local.see.caption.ofa.preprocess import (
    CAPTION_PROMPT,
    PRETRAINED_CAPTION_PROMPT,
    default_resolution,
    image_tensor,
)
from describe_local.see.caption.ofa.tokenizer import OFATokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSettings:
    """What a checkpoint folder says about its task (ModelScope's ``configuration.json``)."""

    resolution: int
    prompt: str = CAPTION_PROMPT
    search: dict = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path, config: OFAConfig) -> TaskSettings:
        path = Path(folder) / "configuration.json"
        model: dict = {}
        if path.is_file():
            try:
                model = json.loads(path.read_text(encoding="utf-8")).get("model", {}) or {}
            except (OSError, ValueError) as exc:
                log.warning("ignoring unreadable %s: %s", path, exc)
        return cls(
            resolution=int(model.get("patch_image_size", default_resolution(config.d_model))),
            prompt=str(model.get("prompt", default_prompt(Path(folder), has_task_file=path.is_file()))),
            search=dict(model.get("beam_search", {}) or {}),
        )

    def search_options(self, beam: int | None = None, max_tokens: int | None = None) -> SearchOptions:
        """The folder's beam-search settings, overridden by the caller's beam and length.

        ``beam == 1`` means plain greedy search (no n-gram or length rules).
        """
        return search_options(self.search, beam, max_tokens)


def default_prompt(folder: Path, *, has_task_file: bool) -> str:
    """The caption prompt a checkpoint was trained with, as its model card gives it.

    Caption fine-tuned checkpoints (ModelScope caption folders, ``OFA-large-caption``)
    use " what does the image describe?"; the pretrained ``OFA-Sys/ofa-*`` ones
    answer " what is the description of the image?".
    """
    if has_task_file or "caption" in folder.name.lower():
        return CAPTION_PROMPT
    return PRETRAINED_CAPTION_PROMPT


def pick_device(name: str = "auto") -> tuple[torch.device, torch.dtype]:
    """"auto": CUDA in bf16 (fp16 on older cards) when present, else the CPU in fp32."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu"), torch.float32
    if not name.startswith("cuda") and name != "auto":
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but this machine has no usable CUDA GPU: use auto or cpu")
    device = torch.device("cuda" if name == "auto" else name)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, dtype


@dataclass
class OFA:
    """An OFA checkpoint ready to run: model, tokenizer, task settings, device."""

    model: OFAModel
    tokenizer: OFATokenizer
    task: TaskSettings
    device: torch.device
    dtype: torch.dtype
    folder: Path

    @classmethod
    def load(cls, folder: Path, *, device: str = "auto", dtype: torch.dtype | None = None) -> OFA:
        """Load the checkpoint in ``folder`` (see :mod:`describe_local.see.caption.ofa.checkpoint`)."""
        folder = Path(folder)
        config = OFAConfig.load(folder)
        torch_device, torch_dtype = pick_device(device)
        torch_dtype = dtype or torch_dtype
        # Moved first, then prepared: prepare() makes q/k/v views of one joint weight, which a
        # later .to() would leave behind in the old dtype (fp16 on a GPU then failed).
        model = load_model(folder, config).to(device=torch_device, dtype=torch_dtype).prepare()
        return cls(
            model=model,
            tokenizer=OFATokenizer.load(folder),
            task=TaskSettings.read(folder, config),
            device=torch_device,
            dtype=torch_dtype,
            folder=folder,
        )

    def prompt_ids(self, prompts: list[str]) -> torch.Tensor:
        """(B, T) ids of ``prompts`` with ``<s>``/``</s>``, right-padded to the longest."""
        encoded = [self.tokenizer.encode(p) for p in prompts]
        width = max(len(e) for e in encoded)
        rows = [e + [self.tokenizer.pad_id] * (width - len(e)) for e in encoded]
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def encode(self, images: list[Image.Image], prompts: list[str]) -> EncoderOutput:
        pixels = image_tensor(images, self.task.resolution).to(self.device, self.dtype)
        return self.model.encode(self.prompt_ids(prompts), pixels)

    @torch.inference_mode()
    def generate_ids(
        self, images: list[Image.Image], prompts: list[str], options: SearchOptions
    ) -> list[list[int]]:
        return generate(self.model, self.encode(images, prompts), options)

    def caption(self, images: list[Image.Image], options: SearchOptions | None = None) -> list[str]:
        """One caption per image (a batch runs through the model at once)."""
        options = options or self.task.search_options()
        ids = self.generate_ids(images, [self.task.prompt] * len(images), options)
        return [self.tokenizer.decode(row).strip() for row in ids]

    def answer(self, image: Image.Image, question: str, options: SearchOptions | None = None) -> str:
        """OFA's answer to ``question`` about ``image`` (visual question answering)."""
        options = options or self.task.search_options()
        ids = self.generate_ids([image], [question_prompt(question)], options)
        return self.tokenizer.decode(ids[0]).strip()
