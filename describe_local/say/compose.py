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

from describe_local.results import Seen, StageState, Status
from describe_local.wording import count_phrase, join_names, speakable


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
    ("caption", Status.OFF): "I can't describe the scene because no caption model is installed.",
    ("caption", Status.FAILED): "I couldn't describe the scene in this photo.",
    ("faces", Status.OFF): "I can't check for people because face recognition is not installed.",
    ("faces", Status.FAILED): "I couldn't check for people in this photo.",
    ("text", Status.OFF): "I can't read text because text reading is not installed.",
    ("text", Status.FAILED): "I couldn't read the text in this photo.",
}


@dataclass(frozen=True)
class Told:
    """What a description says about the photo's text, beside its sentences."""

    sentences: list[Sentence]
    text_found: str | None  # all the text read, lines in reading order


def describe_seen(seen: Seen, *, spoken_lines: int, all_text: bool, text_only: bool) -> Told:
    """The sentences for what the stages saw, guidance first.

    A description speaks the first ``spoken_lines`` lines of the text and says how many
    more there are; ``all_text`` speaks all of it. ``text_only`` (reading a document):
    a photo with no text and no problem gets "I found no text in this photo."
    """
    reading = seen.reading
    text_found = (reading.text or None) if reading is not None else None
    spoken_text, more_lines = text_found, 0
    if reading is not None and reading.lines and not all_text:
        shown, more_lines = reading.first_lines(spoken_lines)
        if more_lines:
            spoken_text = "\n".join(line.text for line in shown)
    problems = {stage: state for stage, state in seen.stages.items() if state.status is not Status.OK}
    if text_only and not text_found and not problems:
        sentences = [Sentence("nothing", "I found no text in this photo.")]
    else:
        sentences = compose(seen.caption, seen.people, seen.unknown_faces, spoken_text,
                            reading.language if reading is not None else None,
                            problems=problems, more_lines=more_lines)
    return Told([Sentence("guidance", advice) for advice in seen.guidance] + sentences, text_found)


def compose(
    caption: str | None,
    people: list[str],
    unknown_faces: int,
    text_found: str | None,
    text_language: str | None = None,
    *,
    problems: dict[str, StageState] | None = None,
    more_lines: int = 0,
) -> list[Sentence]:
    """The sentences that describe a photo, in speaking order.

    ``problems`` maps a stage ("caption", "faces", "text") that did not run to
    its state: off (not installed), failed or timed out (said alike: it did not
    work on this photo); each is said in plain words where its findings would have been.
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


def _problem(stage: str, state: StageState) -> Sentence:
    return Sentence("problem", PROBLEMS[stage, Status.OFF if state.is_off else Status.FAILED])


def render(sentences: list[Sentence]) -> str:
    """All sentences as one paragraph of English."""
    return " ".join(s.render() for s in sentences)


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
