"""Questions to a caption model: cut to what the model reads, with a note when cut (no torch).

Both OFA backends (torch and ONNX Runtime) cut a long question the same way, so
that they give the same answer and the same note.
"""

from __future__ import annotations

from collections.abc import Callable

from describe_local.see.caption.ofa.options import question_prompt


def fit_question(question: str, encode: Callable[[str], list[int]], limit: int) -> tuple[str, list[str]]:
    """``question`` cut to its first words whose prompt ``encode`` makes at most ``limit`` tokens,
    and a note if it was cut (a first word too long alone is cut to the characters that fit)."""

    def fits(text: str) -> bool:
        return len(encode(question_prompt(text))) <= limit

    if fits(question):
        return question, []
    words = question.split()
    kept = _longest_prefix(words, " ", fits)
    if kept == 0:
        first = words[0][: _longest_prefix(list(words[0]), "", fits)]
        return first, [f"the question was cut to the start of its first word, of {len(words)} words: "
                       f"the model reads at most {limit} tokens"]
    note = f"the question was cut to its first {kept} of {len(words)} words: the model reads at most {limit} tokens"
    return " ".join(words[:kept]), [note]


def _longest_prefix(units: list[str], joiner: str, fits: Callable[[str], bool]) -> int:
    """The most leading ``units`` that, joined, still ``fits`` (a binary search: ``fits`` is monotone)."""
    low, high = 0, len(units)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(joiner.join(units[:middle])):
            low = middle
        else:
            high = middle - 1
    return low
