"""Florence-2 on ONNX Runtime: the caption backend for Florence-2 folders with ``onnx-florence/`` graphs.

Tried before the ``transformers`` backend (which runs the same folder on torch),
so a converted folder captions without importing torch. Settings: ``beam``
(1: greedy; Florence-2's released setting is 3), ``max_caption_tokens`` (new
tokens, ``<s>`` and ``</s>`` included, as ``generate``'s ``max_new_tokens``),
``torch_threads`` (here ONNX Runtime's intra-op threads) and ``device``.
``caption_detail`` "detailed" asks for Florence-2's ``<MORE_DETAILED_CAPTION>``,
cut at sentence ends to ``caption_max_words``; a caption whose mean token
log-probability is under ``hedge_below`` is said as "it might be ...".
Florence-2 has no question-answering task, so this captioner has no
``answer``: ``ask`` says that the model cannot answer questions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.see.caption import Backend, register_backend
from describe_local.see.caption.florence_onnx import layout

if TYPE_CHECKING:
    from PIL import Image

    from describe_local.see.caption.florence_onnx.runtime import OnnxFlorence
    from describe_local.see.caption.florence_onnx.search import Rules
    from describe_local.settings import Settings

log = logging.getLogger(__name__)

NEW_TOKENS_OVER_WORDS = 4  # <s>, </s>, and room for a word cut in pieces: max_caption_tokens counts words' tokens


def accepts(folder: Path) -> bool:
    """Whether ``folder`` has Florence-2 ONNX graphs listed in its ``onnx-florence/manifest.json``."""
    return layout.has_graphs(folder)


@dataclass
class FlorenceCaptioner:
    """A loaded ONNX Florence-2 with the search rules to caption with."""

    name: str
    engine: OnnxFlorence
    rules: Rules
    task: str
    max_words: int = 0  # a detailed caption is cut at the last sentence end within these; 0: not cut
    hedge_below: float = float("-inf")  # "it might be ..." under this mean token log-probability

    @classmethod
    def load(cls, folder: Path, settings: Settings) -> FlorenceCaptioner:
        from describe_local.see.caption.florence_onnx.runtime import CAPTION, DETAILED, OnnxFlorence

        engine = OnnxFlorence.load(folder, device=settings.device, threads=settings.torch_threads)
        detailed = settings.caption_detail == "detailed"
        # a detailed caption's budget is in words, cut at sentence ends afterwards; BPE takes ~1.3 tokens a word
        tokens = settings.caption_max_words * 3 // 2 if detailed else settings.max_caption_tokens
        rules = engine.rules(beams=settings.beam, max_new_tokens=tokens + NEW_TOKENS_OVER_WORDS)
        log.info("Florence-2 %s on ONNX Runtime (%s), %s", folder.name, engine.precision, rules)
        return cls(name=f"florence2-onnx:{Path(folder).name}", engine=engine, rules=rules,
                   task=DETAILED if detailed else CAPTION, max_words=settings.caption_max_words if detailed else 0,
                   hedge_below=settings.hedge_below)

    def caption(self, image: Image.Image) -> str:
        """One sentence for ``image``."""
        return self.caption_batch([image])[0]

    def caption_batch(self, images: list[Image.Image]) -> list[str]:
        """Captions for several images in one pass through the graphs."""
        from describe_local.see.caption.florence_onnx.wording import cut_at_sentences, hedge

        texts = []
        for result in self.engine.generate(images, self.task, self.rules):
            text = self.engine.text(result)
            if self.max_words:
                text = cut_at_sentences(text, self.max_words)
            texts.append(hedge(text, result.mean_logprob, self.hedge_below))
        return texts


def load(folder: Path, settings: Settings) -> FlorenceCaptioner:
    return FlorenceCaptioner.load(Path(folder), settings)


register_backend(Backend(name="florence2-onnx", accepts=accepts, load=load))
