"""Alt text as a pure function of the findings, and the HTML edits that carry it into a page."""

from __future__ import annotations

import re

import pytest

from describe_local.alt_text.pages import decode_page, find_images, insert_alts, parse_srcset
from describe_local.alt_text.wording import alt_text, clean_caption, salient_text, shorten
from describe_local.errors import PageError
from describe_local.results import Findings, StageState

NO_CAPTION = {"caption": StageState.off("caption model 'ofa-tiny' is not installed")}
LEAD_INS = re.compile(r"\b(?:image|picture|photo) of\b", re.IGNORECASE)


def found(caption=None, people=(), unknown=0, lines=(), stages=None) -> Findings:
    """Findings as the describer gives them; ``lines`` are (text, height, confidence, block)."""
    text_lines = [{"text": t, "box": [0, 0, 10, h], "confidence": c, "block": b} for t, h, c, b in lines]
    return Findings(text="", caption=caption, people=list(people), unknown_faces=unknown,
                    text_found="\n".join(t for t, *_ in lines) or None, text_lines=text_lines,
                    stages=dict(stages if stages is not None else ({} if caption else NO_CAPTION)))


# -- wording -----------------------------------------------------------------------------------


@pytest.mark.parametrize("caption", [
    "an image of a dog running on the beach", "a picture of a dog running on the beach",
    "A photo of a dog running on the beach", "there is a dog running on the beach",
    "a close-up photograph of a dog running on the beach",
])
def test_no_image_of_lead_in(caption):
    result = alt_text(found(caption))
    assert result.alt == "A dog running on the beach."
    assert not LEAD_INS.search(result.alt)
    assert result.partial is False


def test_caption_first_then_people_then_text():
    result = alt_text(found("a kitchen with white cabinets", unknown=2, lines=[("FOOD KITCHENS", 20, 0.97, 0)]))
    assert result.alt == "A kitchen with white cabinets, with two people and the text 'FOOD KITCHENS'."
    assert result.long_description == (
        "A kitchen with white cabinets. There are two people in the image. Text in the image: 'FOOD KITCHENS'."
    )


def test_text_goes_right_after_the_thing_that_carries_it():
    result = alt_text(found("a man holding a poster in a park", lines=[("WHY PAY FOR NOTHING?", 30, 0.95, 0)]))
    assert result.alt == "A man holding a poster reading 'WHY PAY FOR NOTHING?' in a park."


def test_text_the_caption_already_says_is_not_repeated():
    result = alt_text(found("an exit sign above a door", lines=[("EXIT", 40, 0.99, 0)]))
    assert result.alt == "An exit sign above a door."


def test_a_caption_with_a_person_is_not_told_about_one_face_again():
    assert alt_text(found("a man riding a bike", unknown=1)).alt == "A man riding a bike."
    assert alt_text(found("a group of people on a beach", unknown=5)).alt == "A group of people on a beach."
    assert alt_text(found("a man riding a bike", unknown=3)).alt == "A man riding a bike, with three people."


def test_people_are_counted_not_named_by_default():
    findings = found(people=["Ada Lovelace", "Alan Turing"], unknown=1)
    result = alt_text(findings)
    assert result.alt == "Three people."
    assert "Ada" not in result.alt + result.long_description
    assert "Turing" not in result.alt + result.long_description
    named = alt_text(findings, names=True)
    assert named.alt == "Ada Lovelace, Alan Turing, and one other person."
    assert "Ada Lovelace" in named.long_description


def test_no_caption_is_partial_and_still_says_people_and_text():
    result = alt_text(found(unknown=1, lines=[("EXIT", 20, 0.99, 0)]))
    assert result.partial is True
    assert result.alt == "One person with the text 'EXIT'."
    assert alt_text(found(lines=[("EXIT", 20, 0.99, 0)])).alt == "Text reading 'EXIT'."


def test_nothing_found_gives_no_alt_rather_than_a_decorative_one():
    result = alt_text(found())
    assert result == type(result)("", "", True)


def test_a_stage_that_failed_makes_it_partial_even_with_a_caption():
    assert alt_text(found("a cat", stages={"faces": StageState.timed_out(3)})).partial is True


@pytest.mark.parametrize("max_chars", [20, 30, 45, 60, 125])
def test_never_longer_than_max_chars_and_cut_at_a_word(max_chars):
    caption = ("a very long caption about a crowded street market full of fruit stalls and people "
               "buying vegetables on a sunny afternoon in the old town")
    for findings in (
        found(caption, unknown=4, lines=[("FRESH FRUIT EVERY DAY", 30, 0.98, 0), ("OPEN 7 DAYS", 30, 0.98, 1)]),
        found(unknown=2, lines=[("Reduce your risk of coronavirus infection by washing hands often", 25, 0.97, 0)]),
        found(people=["Ada Lovelace", "Charles Babbage", "Mary Somerville"], unknown=9),
    ):
        said = " ".join([caption, *findings.people, *(line["text"] for line in findings.text_lines),
                         "people person with the text reading one two four nine other and"])
        vocabulary = {w.casefold() for w in re.findall(r"\w+", said)}
        for names in (False, True):
            alt = alt_text(findings, max_chars, names=names).alt
            assert 0 < len(alt) <= max_chars, alt
            if alt.endswith("…"):  # cut: whole words only
                words = re.findall(r"\w+", alt[:-1])
                assert words and {w.casefold() for w in words} <= vocabulary, alt


def test_a_shorter_limit_drops_text_before_people_and_keeps_the_caption():
    findings = found("a busy street at night", unknown=3, lines=[("GRAND HOTEL", 40, 0.98, 0)])
    assert alt_text(findings).alt == "A busy street at night, with three people and the text 'GRAND HOTEL'."
    assert alt_text(findings, 45).alt == "A busy street at night, with three people."
    assert alt_text(findings, 30).alt == "A busy street at night."


def test_shorten_cuts_at_a_word_boundary():
    assert shorten("one two three four", 100) == "one two three four"
    assert shorten("one two three four", 12) == "one two…"
    assert len(shorten("x" * 50, 10)) == 10


def test_clean_caption():
    assert clean_caption("  a picture   of a\ncat. ") == "A cat"
    assert clean_caption("an image of ") is None
    assert clean_caption(None) is None


def test_salient_text_keeps_signs_and_leaves_out_noise_repeats_and_small_print():
    lines = [
        {"text": "SPEED", "box": [0, 86, 9, 100], "confidence": 0.996, "block": 0},
        {"text": "LIMIT", "box": [0, 100, 9, 113], "confidence": 0.994, "block": 0},
        {"text": "BASRURKAR", "box": [0, 114, 9, 129], "confidence": 0.99, "block": 1},
        {"text": "MARKET", "box": [0, 129, 9, 143], "confidence": 0.99, "block": 1},
        {"text": "BASRURKAR MARKET',", "box": [0, 262, 9, 277], "confidence": 0.938, "block": 2},
        {"text": "SPEE D LIMIT", "box": [0, 280, 9, 294], "confidence": 0.955, "block": 2},
        {"text": "DANGEN", "box": [0, 0, 9, 26], "confidence": 0.86, "block": 3},
        {"text": "tiny print", "box": [0, 0, 9, 4], "confidence": 0.99, "block": 4},
    ]
    assert salient_text(lines) == ["SPEED LIMIT", "BASRURKAR MARKET"]
    assert salient_text([], "EXIT\nEXIT\nOPEN") == ["EXIT", "OPEN"]


# -- pages -------------------------------------------------------------------------------------


def test_find_images_gives_exact_offsets_lines_and_attributes():
    text = ("<!doctype html>\r\n<title>a <img src=t.jpg></title>\n<p>x</p><IMG SRC='a.jpg' Alt=''>\n"
            "<script>var s = '<img src=s.jpg>';</script><!-- <img src=c.jpg> -->\n"
            "<picture><source srcset='b.jpg 2x, c.jpg 1x'><img src=\"d.jpg\" srcset=\"e.jpg 640w\"/></picture>")
    images = find_images(text)
    assert [(i.line, i.attrs.get("src")) for i in images] == [(3, "a.jpg"), (5, "d.jpg")]
    for image in images:
        assert text[image.offset:].startswith(image.tag_text)
    assert images[0].has_alt and not images[1].has_alt
    assert [(c.url, c.kind, c.value) for c in images[1].candidates] == [
        ("b.jpg", "x", 2.0), ("c.jpg", "x", 1.0), ("e.jpg", "w", 640.0), ("d.jpg", "x", 1.0)]


def test_parse_srcset():
    assert [(c.url, c.kind, c.value) for c in parse_srcset(" a.jpg 1x,b.jpg  2x , c,d.jpg 300w, e.jpg")] == [
        ("a.jpg", "x", 1.0), ("b.jpg", "x", 2.0), ("c,d.jpg", "w", 300.0), ("e.jpg", "x", 1.0)]
    assert [c.url for c in parse_srcset("data:image/png;base64,AAA= 2x")] == ["data:image/png;base64,AAA="]


@pytest.mark.parametrize(("prefix", "encoding", "alt", "written"), [
    (b"", "utf-8", "Caf\u00e9 sign \u2018OPEN\u2019", "Caf\u00e9 sign \u2018OPEN\u2019".encode()),
    (b"\xef\xbb\xbf", "utf-8", "Caf\u00e9", "Caf\u00e9".encode()),
    (b'<meta charset="iso-8859-1">', "cp1252", "Caf\u00e9 \u2192 \u0416", b"Caf\xe9 &#8594; &#1046;"),
])
def test_insert_alts_changes_nothing_else_and_keeps_the_encoding(prefix, encoding, alt, written):
    body = "<p>d\u00e9j\u00e0 vu</p>\r\n<img src=a.jpg>\n<img alt='' src=b.jpg><img\nsrc=\"c.jpg\" />"
    raw = prefix + body.encode("utf-8" if encoding == "utf-8" else encoding)
    page = decode_page(raw)
    assert page.encoding == encoding
    missing = [tag for tag in find_images(page.text) if not tag.has_alt]
    assert len(missing) == 2
    new, offsets = insert_alts(raw, page, [(tag, f'{alt} "{n}" <&>') for n, tag in enumerate(missing)])
    inserted = [b' alt="' + written + f' &quot;{n}&quot; &lt;&amp;&gt;"'.encode() for n in range(2)]
    rebuilt = new
    for offset, attribute in sorted(zip(offsets, inserted, strict=True), reverse=True):
        shift = sum(len(a) for o, a in zip(offsets, inserted, strict=True) if o < offset)
        assert rebuilt[offset + shift:offset + shift + len(attribute)] == attribute
        rebuilt = rebuilt[:offset + shift] + rebuilt[offset + shift + len(attribute):]
    assert rebuilt == raw


def test_a_page_whose_bytes_would_not_come_back_is_refused():
    with pytest.raises(PageError):
        decode_page(b'<meta charset="utf-32"><img src=a.jpg>')
