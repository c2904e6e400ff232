"""The detailed caption's length cut and the hedge of an unsure caption (pure text)."""

from __future__ import annotations

import pytest

from describe_local.see.caption.florence_onnx.wording import cut_at_sentences, hedge

DETAILED = ("The image is a close-up of a Kodak VR35 camera. The camera is black and has the Kodak logo on the top "
            "left corner. The lens is in the center of the body. The background is blurred.")


@pytest.mark.parametrize(("words", "expected"), [
    (11, "The image is a close-up of a Kodak VR35 camera."),
    (25, "The image is a close-up of a Kodak VR35 camera. The camera is black and has the Kodak logo on the top "
         "left corner."),
    (200, DETAILED),
    (4, "The image is a."),  # the first sentence alone is too long: cut in it
])
def test_cut_keeps_whole_sentences_within_the_words(words, expected):
    assert cut_at_sentences(DETAILED, words) == expected


def test_cut_of_nothing_is_nothing():
    assert cut_at_sentences("  ", 10) == ""


@pytest.mark.parametrize(("text", "expected"), [
    ("A black camera sitting on top of a wooden table", "it might be a black camera sitting on top of a wooden table"),
    ("The image shows a dog on a couch.", "it might be a dog on a couch."),
    ("An apple", "it might be an apple"),
    ("Two dogs playing", "it might be two dogs playing"),
    ("Kodak camera on a table", "it might be Kodak camera on a table"),
])
def test_an_unsure_caption_is_hedged(text, expected):
    assert hedge(text, -3.0, below=-2.0) == expected


def test_a_sure_caption_is_stated():
    assert hedge("A dog on a couch", -1.0, below=-2.0) == "A dog on a couch"
    assert hedge("", -9.0, below=-2.0) == ""
