"""English wording shared by the spoken description (``say/compose.py``) and alt text
(``alt_text/``): counts that agree with their noun, lists of names, text read aloud."""

from __future__ import annotations

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def speakable(text: str) -> str:
    """Text read from a photo as one line to speak, with a pause where a new line starts anew.

    A sign's separate lines ("Musée du" / "LOUVRE" / "Théâtre") become
    sentences; a page's lines that continue a sentence are joined with a space.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    spoken = lines[0]
    for line in lines[1:]:
        ends_open = spoken[-1].isalnum()
        starts_new = line[0].isupper() or line[0].isdigit()
        spoken += (". " if ends_open and starts_new else " ") + line
    return spoken


def count_phrase(n: int, noun: str, plural: str | None = None) -> str:
    """'one person', '2 people': a count and a noun that agree."""
    plural = plural or noun + "s"
    if n == 1:
        return f"one {noun}"
    return f"{n} {plural}"


def join_names(names: list[str]) -> str:
    """'Kanbo', 'Kanbo and Jack', 'Kanbo, Jack, and Ayman' (serial comma, as the original)."""
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + ", and " + names[-1]
