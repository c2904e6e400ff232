"""OFA on ONNX Runtime: the caption backend for OFA folders converted with ``describe-local models convert``.

Tried before the torch OFA backend, so a converted folder captions without
importing torch. Same settings as the torch backend: ``beam``,
``max_caption_tokens``, ``device`` (auto, cpu, cuda) and ``torch_threads``
(here: ONNX Runtime's intra-op threads). The precision is the one the folder
was converted for (fp32, or int8 with ``--precision int8``), or fp16 on CUDA
when it has fp16 graphs. This module imports neither torch nor the
torch engine's package. It imports ``ofa_backend`` (for the caption tidying
shared with it) only when used: importing it at the top would register the
torch backend before this one, and the first registered that accepts a folder wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.see import ModelAnswer
from describe_local.see.caption import Backend, register_backend
from describe_local.store.formats import has_ofa_onnx

if TYPE_CHECKING:
    from PIL import Image

    from describe_local.see.caption.ofa.options import SearchOptions
    from describe_local.see.caption.ofa_onnx.runtime import OnnxOFA
    from describe_local.settings import Settings

log = logging.getLogger(__name__)


def accepts(folder: Path) -> bool:
    """Whether ``folder`` is an OFA folder with ONNX graphs listed in its ``onnx/manifest.json``."""
    return has_ofa_onnx(folder)


@dataclass
class OnnxOFACaptioner:
    """A loaded ONNX OFA model with the search settings to caption with (as ``OFACaptioner``)."""

    name: str
    engine: OnnxOFA
    options: SearchOptions

    @classmethod
    def load(cls, folder: Path, settings: Settings) -> OnnxOFACaptioner:
        from describe_local.see.caption.ofa_onnx.runtime import OnnxOFA

        engine = OnnxOFA.load(folder, device=settings.device, threads=settings.torch_threads)
        options = engine.search_options(beam=settings.beam, max_tokens=settings.max_caption_tokens)
        log.info("OFA %s on ONNX Runtime (%s, %s), %s", folder.name, engine.precision,
                 engine.encoder.get_providers()[0], options)
        return cls(name=f"ofa-onnx:{Path(folder).name}", engine=engine, options=options)

    def caption(self, image: Image.Image) -> str:
        """One sentence for ``image``."""
        return self.caption_batch([image])[0]

    def caption_batch(self, images: list[Image.Image]) -> list[str]:
        """Captions for several images in one pass through the graphs."""
        from describe_local.see.caption.ofa_backend import _sentence

        return [_sentence(text) for text in self.engine.caption(images, self.options)]

    def answer(self, image: Image.Image, question: str) -> ModelAnswer:
        """The short answer to a question about ``image``; a question too long is cut, as the torch backend does."""
        from describe_local.see.caption.ofa_backend import _sentence
        from describe_local.see.caption.questions import fit_question

        question, notes = fit_question(question, self.engine.tokenizer.encode, self.engine.max_text_tokens)
        return ModelAnswer(_sentence(self.engine.answer(image, question, self.options)), tuple(notes))


def load(folder: Path, settings: Settings) -> OnnxOFACaptioner:
    return OnnxOFACaptioner.load(Path(folder), settings)


register_backend(Backend(name="ofa-onnx", accepts=accepts, load=load))
