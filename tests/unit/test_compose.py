"""The spoken sentences: the original's wording, grammatical counts and lists."""

from __future__ import annotations

import pytest

from describe_local.results import StageState
from describe_local.say.compose import compose, render
from describe_local.wording import join_names

# The states are values: their detail wording is the stage's own and never read here.
OFF = StageState.off("any words at all")
FAILED = StageState.failed("RuntimeError: boom")
TIMED_OUT = StageState.timed_out(3)


def spoken(*args, **kw) -> str:
    return render(compose(*args, **kw))


def test_caption_alone_is_capitalised_and_ends_with_a_stop():
    assert spoken("a tabby cat curled up in a fluffy white bed", [], 0, None) == (
        "A tabby cat curled up in a fluffy white bed."
    )


def test_one_person():
    assert spoken(None, ["Kanbo"], 0, None) == "I recognize one person: Kanbo."


def test_three_people_with_serial_comma():
    assert spoken(None, ["Kanbo", "Jack", "Ayman"], 0, None) == "I recognize 3 people: Kanbo, Jack, and Ayman."


def test_two_people():
    assert spoken(None, ["Kanbo", "Jack"], 0, None) == "I recognize 2 people: Kanbo and Jack."


def test_text_after_other_findings_uses_the_original_wording():
    text = spoken("a man on a stage", [], 0, "AWS re: Invent")
    assert text == "A man on a stage. There was text found in the image as well. It reads: AWS re: Invent"


@pytest.mark.parametrize(
    ("people", "unknown", "caption", "expected"),
    [
        (["Kanbo"], 2, None, "I recognize one person: Kanbo. I also see 2 people I don't recognize."),
        (["Kanbo"], 1, None, "I recognize one person: Kanbo. I also see one person I don't recognize."),
        ([], 2, None, "I see 2 people, but I don't recognize them."),
        ([], 1, None, "I see one person, but I don't recognize them."),
        ([], 3, "three people at a table", "Three people at a table. I see 3 people I don't recognize."),
    ],
)
def test_unknown_faces(people, unknown, caption, expected):
    assert spoken(caption, people, unknown, None) == expected


def test_nothing_found_is_a_clear_sentence():
    assert spoken(None, [], 0, None) == "I could not find anything to describe in this photo."


def test_text_alone():
    assert spoken(None, [], 0, "EXIT") == "There is text in the image. It reads: EXIT"


def test_names_and_text_are_protected_and_braces_survive():
    sentences = compose("a {weird} caption", ["Zoë {x}"], 0, "50% {off}", "en")
    assert render(sentences) == (
        "A (weird) caption. I recognize one person: Zoë {x}. "
        "There was text found in the image as well. It reads: 50% {off}"
    )
    people = next(s for s in sentences if s.kind == "people")
    assert people.protected == {"name0": "Zoë {x}"}
    assert "{name0}" in people.template and "Zoë" not in people.template
    text = next(s for s in sentences if s.kind == "text")
    assert text.protected == {"text": "50% {off}"} and text.language == "en"


def test_join_names():
    assert join_names(["A"]) == "A"
    assert join_names(["A", "B", "C", "D"]) == "A, B, C, and D"


def test_sign_lines_become_pauses_and_page_lines_flow():
    assert spoken(None, [], 0, "Musée du\nLOUVRE\nThéâtre") == (
        "There is text in the image. It reads: Musée du. LOUVRE. Théâtre"
    )
    assert spoken(None, [], 0, "The quick brown\nfox jumps over.\nThen it sleeps") == (
        "There is text in the image. It reads: The quick brown fox jumps over. Then it sleeps"
    )


def test_a_stage_that_did_not_run_is_said_in_plain_words_not_taken_for_nothing():
    off = compose(None, ["Ada"], 0, None, problems={"caption": OFF})
    assert render(off) == ("I can't describe the scene because no caption model is installed. "
                           "I recognize one person: Ada.")
    failed = compose("a dog", [], 0, "EXIT", problems={"faces": FAILED})
    assert render(failed) == ("A dog. I couldn't check for people in this photo. "
                              "There was text found in the image as well. It reads: EXIT")
    assert "could not find anything" not in render(compose(None, [], 0, None, problems={"text": TIMED_OUT}))
    assert render(compose(None, [], 0, None, problems={"caption": OFF})) == (
        "I can't describe the scene because no caption model is installed. I found no people and no text.")
    assert render(compose(None, [], 0, "EXIT", problems={"caption": OFF})).endswith(
        "There is text in the image. It reads: EXIT")
