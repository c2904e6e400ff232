"""What the PyTorch engine and the ONNX runtime share, with no torch: search options and the VQA prompt."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class SearchOptions:
    beam: int = 5
    max_tokens: int = 16  # generated tokens, not counting </s>
    min_tokens: int = 1  # </s> is refused before this many tokens
    no_repeat_ngram: int = 3  # 0: allowed
    length_penalty: float = 1.0

    @classmethod
    def plain_greedy(cls, max_tokens: int = 16) -> SearchOptions:
        """Argmax at every step, no length or n-gram rules: comparable token for token."""
        return cls(beam=1, max_tokens=max_tokens, min_tokens=0, no_repeat_ngram=0)


def search_options(search: dict[str, Any], beam: int | None = None, max_tokens: int | None = None) -> SearchOptions:
    """A checkpoint's beam-search settings (``configuration.json``'s ``beam_search``), overridden by
    the caller's beam and length. ``beam == 1`` means plain greedy search (no n-gram or length rules)."""
    options = SearchOptions(
        beam=int(search.get("beam_size", 5)),
        max_tokens=int(search.get("max_len_b", 16)),
        min_tokens=int(search.get("min_len", 1)),
        no_repeat_ngram=int(search.get("no_repeat_ngram_size", 3)),
        length_penalty=float(search.get("len_penalty", 1.0)),
    )
    if max_tokens is not None:
        options = replace(options, max_tokens=max_tokens)
    if beam is not None:
        if beam <= 1:
            return SearchOptions.plain_greedy(options.max_tokens)
        options = replace(options, beam=beam)
    return options


def question_prompt(question: str) -> str:
    """A VQA prompt as OFA was trained on: lower case, a leading space, ending in '?'."""
    text = " ".join(question.lower().lstrip(",.!?*#:;~").replace("-", " ").replace("/", " ").split())
    if not text.endswith("?"):
        text += "?"
    return " " + text
