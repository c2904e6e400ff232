"""The default caption backend: OFA checkpoints run by our own engine (:mod:`describe_local.see.caption.ofa`).

Settings honoured: ``beam`` (5 by default, as OFA evaluates; 1 is plain greedy
search with no n-gram or length rules), ``max_caption_tokens``, ``device``
("auto": CUDA in bf16/fp16 when present, else CPU) and ``torch_threads``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.errors import TORCH_INSTALL, TorchNotInstalled
from describe_local.see import ModelAnswer
from describe_local.see.caption import Backend, register_backend
from describe_local.see.caption.questions import fit_question
from describe_local.store.formats import is_ofa_folder, ofa_onnx_stale

if TYPE_CHECKING:
    from PIL import Image

    from describe_local.see.caption.ofa import OFA, SearchOptions
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

# OFA's <code_*> (image codes) and <bin_*> (box corners) mean nothing read aloud, nor do the
# filler entries at the end of a vocabulary (BART's madeupwordNNNN, <unused_N> in our test vocabularies).
_LOCATION_TOKEN = re.compile(r"<(?:code|bin|unused)_\d+>|madeupword\d+")


def accepts(folder: Path) -> bool:
    """Whether ``folder`` holds an OFA checkpoint (HF ``OFA-Sys`` or ModelScope layout).

    Judged by its config alone, as the store does; missing weights or tokenizer
    files are reported when the model is loaded.
    """
    return is_ofa_folder(folder)


@dataclass
class OFACaptioner:
    """A loaded OFA model with the search settings to caption with."""

    name: str
    engine: OFA
    options: SearchOptions

    @classmethod
    def load(cls, folder: Path, settings: Settings) -> OFACaptioner:
        try:
            import torch
        except ModuleNotFoundError as exc:
            raise torch_needed(Path(folder), exc.name) from None
        if ofa_onnx_stale(Path(folder)):
            log.warning("%s has ONNX graphs of an older layout, so PyTorch captions instead (slower): "
                        "run `describe-local models convert %s`", folder, Path(folder).name)

        from describe_local.see.caption.ofa import OFA

        if settings.torch_threads > 0:
            torch.set_num_threads(settings.torch_threads)
        engine = OFA.load(folder, device=settings.device)
        options = engine.task.search_options(beam=settings.beam, max_tokens=settings.max_caption_tokens)
        log.info("OFA %s on %s (%s), %s", folder.name, engine.device, engine.dtype, options)
        return cls(name=f"ofa:{Path(folder).name}", engine=engine, options=options)

    def caption(self, image: Image.Image) -> str:
        """One sentence for ``image``, as the checkpoint writes it."""
        return self.caption_batch([image])[0]

    def caption_batch(self, images: list[Image.Image]) -> list[str]:
        """Captions for several images in one pass through the model."""
        return [_sentence(text) for text in self.engine.caption(images, self.options)]

    def answer(self, image: Image.Image, question: str) -> ModelAnswer:
        """OFA's short answer to a question about ``image`` (same weights, VQA prompt).

        A question longer than the model reads is cut to its first words that
        fit, and the answer's ``notes`` say so.
        """
        from describe_local.see.caption.ofa.positions import MAX_POSITIONS

        # Past the model's text positions the position tables have no row: an IndexError.
        limit = min(self.engine.model.config.max_position_embeddings, MAX_POSITIONS)
        question, notes = fit_question(question, self.engine.tokenizer.encode, limit)
        return ModelAnswer(_sentence(self.engine.answer(image, question, self.options)), tuple(notes))


def _sentence(text: str) -> str:
    """Tidy a generated caption: no image-code/location tokens, single spaces, no space before punctuation."""
    text = " ".join(_LOCATION_TOKEN.sub(" ", text).split())
    for mark in (" .", " ,", " ?", " !"):
        text = text.replace(mark, mark[1:])
    return text


def torch_needed(folder: Path, missing: str | None) -> TorchNotInstalled:
    """The error for an OFA folder the ONNX backend cannot run (no graphs, or an older layout) where
    torch is not installed: converting it (no torch needed) is the way."""
    why = "has ONNX graphs of an older layout" if ofa_onnx_stale(folder) else "has no ONNX graphs"
    gone = f" and {missing} is not installed" if missing else ""
    return TorchNotInstalled(
        f"the OFA caption model {folder.name} {why}{gone}: run `describe-local models convert {folder.name}` "
        f"once (no torch needed), or install torch to run it as it is (`{TORCH_INSTALL}`)")


def load(folder: Path, settings: Settings) -> OFACaptioner:
    return OFACaptioner.load(Path(folder), settings)


register_backend(Backend(name="ofa", accepts=accepts, load=load))
