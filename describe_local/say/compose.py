"""Turn what the stages found into the sentences that are spoken.

The wording follows the original system ("I recognize 3 people: Kanbo, Jack,
and Ayman.", "There was text found in the image as well. It reads: ...").
Each sentence is kept whole, with the parts that must never be translated
(people's names, the text read from the photo) held apart as ``protected``
values, so that translation works on complete, grammatical sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class Sentence:
    """One spoken sentence.

    ``template`` is English text with ``{placeholders}`` for the ``protected``
    values: names and text read from the photo, which are spoken as they are.
    ``kind`` says what the sentence reports (caption, people, unknown, text, nothing).
    ``language`` is the language of the protected values where known (OCR text).
    """

    kind: str
    template: str
    protected: dict[str, str] = field(default_factory=dict)
    language: str | None = None

    def render(self, template: str | None = None) -> str:
        """The sentence with its protected values put back (into ``template`` if given)."""
        return (template or self.template).format(**self.protected)


# What is said, once, in place of a stage's findings when it is off or failed: the
# listener must never take "nothing found" for "nothing there".
PROBLEMS = {
    ("caption", "off"): "I can't describe the scene because no caption model is installed.",
    ("caption", "failed"): "I couldn't describe the scene in this photo.",
    ("faces", "off"): "I can't check for people because face recognition is not installed.",
    ("faces", "failed"): "I couldn't check for people in this photo.",
    ("text", "off"): "I can't read text because text reading is not installed.",
    ("text", "failed"): "I couldn't read the text in this photo.",
}


def compose(
    caption: str | None,
    people: list[str],
    unknown_faces: int,
    text_found: str | None,
    text_language: str | None = None,
    *,
    problems: dict[str, str] | None = None,
    more_lines: int = 0,
) -> list[Sentence]:
    """The sentences that describe a photo, in speaking order.

    ``problems`` maps a stage ("caption", "faces", "text") that did not run to
    ``"off"`` (not installed) or ``"failed"`` (an error or past its time budget);
    each is said in plain words where its findings would have been.
    ``more_lines`` is how many lines of the photo's text ``text_found`` leaves
    out, said after it ("And 30 more lines.").
    """
    problems = problems or {}
    sentences: list[Sentence] = []
    if caption:
        sentences.append(Sentence("caption", _as_sentence(caption)))
    elif "caption" in problems:
        sentences.append(_problem("caption", problems["caption"]))

    if people:
        sentences.append(_recognized(people))
    if unknown_faces:
        sentences.append(_unrecognized(unknown_faces, also=bool(people), has_caption=bool(caption)))
    if "faces" in problems:
        sentences.append(_problem("faces", problems["faces"]))

    if text_found:
        found = [s for s in sentences if s.kind != "problem"]
        lead = "There was text found in the image as well." if found else "There is text in the image."
        sentences.append(
            Sentence("text", lead + " It reads: {text}", {"text": speakable(text_found)}, text_language)
        )
        if more_lines > 0:
            sentences.append(Sentence("more", f"And {count_phrase(more_lines, 'more line')}."))
    elif "text" in problems:
        sentences.append(_problem("text", problems["text"]))

    if not sentences:
        sentences.append(Sentence("nothing", "I could not find anything to describe in this photo."))
    elif all(s.kind == "problem" for s in sentences) and set(problems) == {"caption"}:
        # Only the scene is missing, and the stages that ran found nothing: say so, not "nothing here".
        sentences.append(Sentence("nothing", "I found no people and no text."))
    return sentences


def _problem(stage: str, how: str) -> Sentence:
    return Sentence("problem", PROBLEMS[stage, "off" if how == "off" else "failed"])


def render(sentences: list[Sentence]) -> str:
    """All sentences as one paragraph of English."""
    return " ".join(s.render() for s in sentences)


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


def _recognized(people: list[str]) -> Sentence:
    protected = {f"name{i}": name for i, name in enumerate(people)}
    placeholders = [f"{{name{i}}}" for i in range(len(people))]
    template = f"I recognize {count_phrase(len(people), 'person', 'people')}: {join_names(placeholders)}."
    return Sentence("people", template, protected)


def _unrecognized(n: int, *, also: bool, has_caption: bool) -> Sentence:
    who = count_phrase(n, "person", "people")
    if also:
        return Sentence("unknown", f"I also see {who} I don't recognize.")
    if has_caption:
        return Sentence("unknown", f"I see {who} I don't recognize.")
    return Sentence("unknown", f"I see {who}, but I don't recognize them.")


def _as_sentence(caption: str) -> str:
    """Capitalise a model's caption and end it with a full stop."""
    text = re.sub(r"\s+", " ", caption).strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    # Braces would be read as placeholders by Sentence.render.
    return text.replace("{", "(").replace("}", ")")
