"""A second caption backend: ``transformers`` image-to-text models from a local folder.

Runs the families ``transformers`` can caption with out of the box: BLIP, GIT,
ViT-GPT2 style ``VisionEncoderDecoderModel``, Florence-2 and SmolVLM/Idefics3
(chat models asked for one sentence). The folder is what ``save_pretrained``
writes (``config.json``, weights, processor or tokenizer + image processor
files); nothing is downloaded. Honours ``beam`` (1: greedy),
``max_caption_tokens``, ``device``, and for Florence-2 ``caption_detail`` and
``caption_max_words`` (its detailed-caption task, cut at sentence ends). A
Florence-2 folder converted to ONNX runs on ``florence_onnx`` instead, without torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from describe_local.errors import ModelNotInstalled, TorchNotInstalled
from describe_local.see.caption import Backend, register_backend
from describe_local.store.formats import transformers_model_type

if TYPE_CHECKING:
    from PIL import Image

    from describe_local.settings import Settings

log = logging.getLogger(__name__)

# What each family is asked; families not listed (BLIP, GIT, ViT-GPT2) get no text prompt.
# Which model types are captioners at all is store.formats.TRANSFORMERS_MODEL_TYPES.
PROMPTS: dict[str, str] = {
    "florence2": "<CAPTION>",
    "smolvlm": "Describe this image in one sentence.",
    "idefics3": "Describe this image in one sentence.",
}
CHAT_FAMILIES = frozenset({"smolvlm", "idefics3"})  # prompted through the processor's chat template
# With ``caption_detail = "detailed"``: the families' own detailed-caption tasks (cut at sentence ends afterwards).
DETAILED_PROMPTS: dict[str, str] = {"florence2": "<MORE_DETAILED_CAPTION>"}


def accepts(folder: Path) -> bool:
    """Whether ``folder`` is a ``transformers`` captioner of a family we know how to prompt."""
    return transformers_model_type(folder) is not None


@dataclass
class TransformersCaptioner:
    """A loaded image-to-text model, its processor(s) and generation settings."""

    name: str
    family: str
    model: Any
    processor: Any  # turns (images, text) into model inputs
    tokenizer: Any  # turns generated ids into text
    generation: dict
    device: Any
    dtype: Any
    prompt: str | None = None
    max_words: int = 0  # a detailed caption is cut at the last sentence end within these; 0: not cut

    @classmethod
    def load(cls, folder: Path, settings: Settings) -> TransformersCaptioner:
        folder = Path(folder)
        family = transformers_model_type(folder) or ""
        try:
            import torch
            import transformers
        except ModuleNotFoundError as exc:
            raise TorchNotInstalled.for_(f"the {family} caption model {folder.name} needs torch and transformers",
                                         exc.name) from None

        from describe_local.see.caption.ofa import pick_device

        if settings.torch_threads > 0:
            torch.set_num_threads(settings.torch_threads)
        device, dtype = pick_device(settings.device)
        try:
            model = transformers.AutoModelForImageTextToText.from_pretrained(
                folder, dtype=dtype, local_files_only=True
            )
            processor, tokenizer = _processors(folder, family, transformers)
        except (OSError, ValueError) as exc:
            raise ModelNotInstalled(f"cannot load the {family} captioner in {folder}: {exc}") from exc
        model = model.to(device).eval()
        detailed = settings.caption_detail == "detailed" and family in DETAILED_PROMPTS
        generation = {
            "max_new_tokens": settings.caption_max_words * 3 // 2 if detailed else settings.max_caption_tokens,
            "num_beams": max(1, settings.beam),
            "do_sample": False,
        }
        log.info("%s captioner %s on %s (%s)", family, folder.name, device, dtype)
        return cls(
            name=f"{family}:{folder.name}",
            family=family,
            model=model,
            processor=processor,
            tokenizer=tokenizer,
            generation=generation,
            device=device,
            dtype=dtype,
            prompt=DETAILED_PROMPTS[family] if detailed else PROMPTS.get(family),
            max_words=settings.caption_max_words if detailed else 0,
        )

    def caption(self, image: Image.Image) -> str:
        """One sentence for ``image``."""
        return self.caption_batch([image])[0]

    def caption_batch(self, images: list[Image.Image]) -> list[str]:
        import torch

        images = [im.convert("RGB") for im in images]
        inputs = self._inputs(images)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self.generation)
        if not self.model.config.is_encoder_decoder and "input_ids" in inputs:
            output = output[:, inputs["input_ids"].shape[1] :]  # keep only the new tokens
        texts = [" ".join(t.split()) for t in self.tokenizer.batch_decode(output, skip_special_tokens=True)]
        if self.max_words:
            from describe_local.see.caption.florence_onnx.wording import cut_at_sentences

            texts = [cut_at_sentences(t, self.max_words) for t in texts]
        return texts

    def _inputs(self, images: list[Image.Image]) -> dict:
        prompt = self.prompt
        if self.family in CHAT_FAMILIES:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = self.processor(text=[text] * len(images), images=[[im] for im in images],
                                    return_tensors="pt")
        elif prompt is not None:
            inputs = self.processor(text=[prompt] * len(images), images=images, return_tensors="pt")
        else:
            inputs = self.processor(images=images, return_tensors="pt")
        return {
            k: v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in inputs.items()
        }


def _processors(folder: Path, family: str, transformers: Any) -> tuple[Any, Any]:
    """(input processor, tokenizer for decoding) of a saved model folder."""
    if family == "vision-encoder-decoder":
        # ViT-GPT2 style folders carry an image processor and a tokenizer, no joint processor
        image_processor = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return image_processor, tokenizer
    processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
    return processor, getattr(processor, "tokenizer", processor)


def load(folder: Path, settings: Settings) -> TransformersCaptioner:
    return TransformersCaptioner.load(Path(folder), settings)


register_backend(Backend(name="transformers", accepts=accepts, load=load))
