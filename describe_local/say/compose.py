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
from typing import Any

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


# What is said in place of a stage's findings when it is off or failed: the listener must
# never take "nothing found" for "nothing there". A stage that is off is said in full once
# (``Teller.told_off``); after that only where nothing else was found, in SHORT_OFF's words.
PROBLEMS = {
    ("caption", Status.OFF): "I can't describe the scene because no caption model is installed.",
    ("caption", Status.FAILED): "I couldn't describe the scene in this photo.",
    ("faces", Status.OFF): "I can't check for people because face recognition is not installed.",
    ("faces", Status.FAILED): "I couldn't check for people in this photo.",
    ("text", Status.OFF): "I can't read text because text reading is not installed.",
    ("text", Status.FAILED): "I couldn't read the text in this photo.",
}
SHORT_OFF = {
    "caption": "No scene description: no caption model.",
    "faces": "No check for people: face recognition is not installed.",
    "text": "No text reading: text reading is not installed.",
}
PARTS = ("caption", "faces", "text")  # the order the stages' findings are told in


@dataclass
class Teller:
    """The sentences of one description, part by part in speaking order, so that each part can be
    spoken as soon as its stage is done: :meth:`opening` (photo quality advice), then one call per
    stage in :data:`PARTS` order, then :meth:`closing`. Each part depends only on those before it.

    ``told_off``: the stages that are off and were already told in full (in this run or server
    session); each one newly told is added to it. ``None``: tell every one in full.
    """

    spoken_lines: int = 6  # lines of text read before "And N more lines."
    all_text: bool = False  # read every line
    text_only: bool = False  # reading a document: no text is "I found no text in this photo."
    told_off: set[str] | None = None
    problems: dict[str, StageState] = field(default_factory=dict)
    silenced: list[str] = field(default_factory=list)  # off stages not said in full this time
    found: bool = False  # a finding was said (not a problem, not advice)
    has_caption: bool = False
    text_found: str | None = None  # all the text read, lines in reading order
    said: int = 0  # sentences said so far about the stages (findings and problems, not advice)
    picture_said: bool = False  # "This looks like a page of text." was said: its text needs no other lead

    def opening(self, guidance: list[str]) -> list[Sentence]:
        """Photo quality advice, said first (it does not count as something said about the photo)."""
        return [Sentence("guidance", advice) for advice in guidance]

    def picture(self, said: str | None) -> list[Sentence]:
        """What kind of picture it is, where it is not a photo ("This looks like a screenshot."):
        said first; its text then follows as "It reads: ..." (a blank picture needs nothing more)."""
        if not said:
            return []
        self.picture_said = True
        return self._said([Sentence("picture", said)])

    def part(self, stage: str, seen: Seen) -> list[Sentence]:
        """The sentences of ``stage``'s findings in ``seen`` (a stage not asked for says nothing)."""
        state = seen.stages.get(stage)
        if state is None:
            return []
        if state.status is not Status.OK:
            return self._said(self._problem(stage, state))
        if stage == "caption":
            self.has_caption = bool(seen.caption)
            return self._said([Sentence("caption", _as_sentence(seen.caption))] if seen.caption else [], found=True)
        if stage == "faces":
            return self._said(self._faces(seen.people, seen.unknown_faces), found=True)
        return self._said(self._text(seen.reading), found=True)

    def closing(self) -> list[Sentence]:
        """What is said when nothing else was: never silence, and never "nothing there" for a
        stage that did not run."""
        if self.found:
            return []
        if self.text_only and not self.problems:
            return self._said([Sentence("nothing", "I found no text in this photo.")])
        sentences = [Sentence("problem", SHORT_OFF[stage]) for stage in self.silenced]
        if not self.said and not sentences:
            sentences.append(Sentence("nothing", "I could not find anything to describe in this photo."))
        elif set(self.problems) == {"caption"} and not self.text_only:
            # Only the scene is missing, and the stages that ran found nothing: say so, not "nothing here".
            sentences.append(Sentence("nothing", "I found no people and no text."))
        return self._said(sentences)

    # -- inside --------------------------------------------------------------------------

    def _said(self, sentences: list[Sentence], *, found: bool = False) -> list[Sentence]:
        self.said += len(sentences)
        self.found = self.found or (found and bool(sentences))
        return sentences

    def _problem(self, stage: str, state: StageState) -> list[Sentence]:
        self.problems[stage] = state
        if state.is_off and self.told_off is not None:
            if stage in self.told_off:
                self.silenced.append(stage)
                return []
            self.told_off.add(stage)
        return [Sentence("problem", PROBLEMS[stage, Status.OFF if state.is_off else Status.FAILED])]

    def _faces(self, people: list[str], unknown: int) -> list[Sentence]:
        sentences = [_recognized(people)] if people else []
        if unknown:
            sentences.append(_unrecognized(unknown, also=bool(people), has_caption=self.has_caption))
        return sentences

    def _text(self, reading: Any) -> list[Sentence]:
        self.text_found = (reading.text or None) if reading is not None else None
        if not self.text_found:
            return []
        spoken, more = self.text_found, 0
        if reading.lines and not self.all_text:
            shown, more = reading.first_lines(self.spoken_lines)
            if more:
                spoken = "\n".join(line.text for line in shown)
        return _text_sentences(spoken, reading.language, more, found_before=self.found, lead=not self.picture_said)


def describe_seen(seen: Seen, *, spoken_lines: int, all_text: bool, text_only: bool,
                  told_off: set[str] | None = None) -> tuple[list[Sentence], str | None]:
    """All the sentences for what the stages saw, advice first, and all the text read
    (see :class:`Teller`; this is its every part at once)."""
    teller = Teller(spoken_lines, all_text, text_only, told_off)
    sentences = teller.opening(seen.guidance)
    for stage in PARTS:
        sentences += teller.part(stage, seen)
    return sentences + teller.closing(), teller.text_found


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
    """The sentences that describe a photo, in speaking order (every problem said in full).

    ``problems`` maps a stage ("caption", "faces", "text") that did not run to
    its state: off (not installed), failed or timed out (said alike: it did not
    work on this photo); each is said in plain words where its findings would have been.
    ``more_lines`` is how many lines of the photo's text ``text_found`` leaves
    out, said after it ("And 30 more lines.").
    """
    problems = problems or {}
    stages = {stage: problems.get(stage, StageState.ok()) for stage in PARTS}
    seen = Seen(source="", caption=caption, people=people, unknown_faces=unknown_faces, stages=stages,
                reading=_Reading(text_found or "", text_language))
    teller = Teller(all_text=True)
    sentences = teller.part("caption", seen) + teller.part("faces", seen)
    if more_lines and text_found and "text" not in problems:
        teller.text_found = text_found
        sentences += teller._said(_text_sentences(text_found, text_language, more_lines, found_before=teller.found),
                                  found=True)
    else:
        sentences += teller.part("text", seen)
    return sentences + teller.closing()


@dataclass
class _Reading:
    """A text stage's reading, as far as the sentences need it."""

    text: str
    language: str | None
    lines: list[Any] = field(default_factory=list)


def _text_sentences(spoken: str, language: str | None, more: int, *, found_before: bool,
                    lead: bool = True) -> list[Sentence]:
    opening = "There was text found in the image as well. " if found_before else "There is text in the image. "
    text = speakable(spoken)
    if more and text and text[-1] not in ".!?":
        text += "."  # the read text ends its sentence before "And N more lines."
    sentences = [Sentence("text", (opening if lead else "") + "It reads: {text}", {"text": text}, language)]
    return sentences + ([_more(more)] if more else [])


def _more(lines: int) -> Sentence:
    return Sentence("more", f"And {count_phrase(lines, 'more line')}.")


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
