"""What the caption says: a detailed caption cut at sentence ends, and an unsure one hedged.

Pure text functions (no model): the backend calls them with the model's own
scores. The hedge threshold is a mean token log-probability (natural log, the
tokens after ``<s>`` up to and with ``</s>``, under the model's softmax before
the search's rules). Its default is calibrated on random weights only
(``scripts/measure_hedge.py`` measures it on any model folder and the COCO
photos with their references) until it can be measured on real weights.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
# Openings of detailed captions that say nothing about the scene; a hedge replaces them.
_LEADS = re.compile(r"^(?:the|this) (?:image|picture|photo) (?:shows|is of|is|depicts)\s+|^(?:this|it) is\s+",
                    re.IGNORECASE)
_COMMON_STARTS = frozenset({"a", "an", "the", "one", "two", "three", "four", "five", "six", "several", "some", "many",
                            "few", "people"})


def cut_at_sentences(text: str, max_words: int) -> str:
    """The whole sentences of ``text`` that fit in ``max_words`` words; at least the first, itself cut
    to ``max_words`` words (ending with a full stop) when it is longer."""
    text = " ".join(text.split())
    if not text:
        return text
    kept: list[str] = []
    words = 0
    for sentence in _SENTENCE_END.split(text):
        count = len(sentence.split())
        if words + count > max_words:
            break
        kept.append(sentence)
        words += count
    if kept:
        return " ".join(kept)
    first = " ".join(text.split()[:max_words]).rstrip(",;:")
    return first if first.endswith((".", "!", "?")) else first + "."


def hedge(text: str, mean_logprob: float, below: float) -> str:
    """``text`` as "it might be ..." when the model's mean token log-probability is under ``below``."""
    if not text or mean_logprob >= below:
        return text
    rest = _LEADS.sub("", text, count=1)
    first = rest.split(" ", 1)[0]
    if first.lower() in _COMMON_STARTS:  # not a name: lower case inside the sentence
        rest = first.lower() + rest[len(first):]
    return f"it might be {rest}"
