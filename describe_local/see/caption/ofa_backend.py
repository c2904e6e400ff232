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

from describe_local.see.caption import Backend, register_backend
from describe_local.store.formats import is_ofa_folder

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
        import torch

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

    def answer(self, image: Image.Image, question: str) -> str:
        """OFA's short answer to a question about ``image`` (same weights, VQA prompt)."""
        return _sentence(self.engine.answer(image, question, self.options))


def _sentence(text: str) -> str:
    """Tidy a generated caption: no image-code/location tokens, single spaces, no space before punctuation."""
    text = " ".join(_LOCATION_TOKEN.sub(" ", text).split())
    for mark in (" .", " ,", " ?", " !"):
        text = text.replace(mark, mark[1:])
    return text


def load(folder: Path, settings: Settings) -> OFACaptioner:
    return OFACaptioner.load(Path(folder), settings)


register_backend(Backend(name="ofa", accepts=accepts, load=load))
