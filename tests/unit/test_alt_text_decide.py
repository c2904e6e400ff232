"""The W3C alt decision tree, placeholders and the machine's mark, on real pages and real image
files written here; the alts a describer would give are handed in as values (``AltText``), and
every byte outside the changed ``<img>`` tags must stay as it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from describe_local.alt_text.audit import Issue, audit_site
from describe_local.alt_text.decide import Choices, Rule
from describe_local.alt_text.pages import attribute_spans, decode_page, find_images, insert_alts
from describe_local.alt_text.placeholders import Placeholder, placeholder, repeated_alts
from describe_local.alt_text.report import render_part
from describe_local.alt_text.site import PlanOptions, decide_site, finish_page, plan_page
from describe_local.alt_text.wording import AltText

PEOPLE = AltText("Three people.", "There are three people in the image.", True)


def photo(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    """A small real photo with more than one colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, "white")
    img.paste((200, 30, 30), (0, 0, size[0] // 2, size[1]))
    img.save(path)
    return path


def run_site(root: Path, pages: dict[str, str], choices: Choices | None = None, mark: bool = False,
             alts: dict[str, AltText] | None = None):
    """Plan, decide and finish every page; ``alts``: file name -> what the describer said
    (every image that asks gets ``PEOPLE`` otherwise). Returns {page: (new bytes or None, report)}."""
    for name, text in pages.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    plans = [plan_page(root / name, root) for name in pages]
    choices = choices or Choices()
    decide_site(plans, choices)
    described = {path: (alts or {}).get(path.name, PEOPLE) for plan in plans for path in plan.images()}
    options = PlanOptions(choices, mark=mark)
    return {str(plan.page.relative_to(root)): finish_page(plan, described, options) for plan in plans}


def outside_tags_unchanged(old: bytes, new: bytes) -> None:
    """Every byte outside the <img> tags is the same, in the same order."""
    strip = re.compile(rb"<img\b[^>]*>", re.IGNORECASE)
    assert strip.sub(b"<img>", old) == strip.sub(b"<img>", new)


def test_an_image_that_is_all_a_link_holds_is_named_by_the_linked_page(tmp_path):
    photo(tmp_path / "img" / "family.jpg")
    photo(tmp_path / "img" / "other.jpg")
    index = ('<html lang="en"><title>Home</title><body>\n'
             '<a href="family.html"><img src="img/family.jpg"></a>\n'
             '<a href="about/"><img src="img/family.jpg" width="40"></a>\n'
             '<a href="https://example.org/"><img src="img/other.jpg"></a>\n'
             '<a href="family.html" aria-label="Our family, photos"><img src="img/other.jpg"></a>\n'
             '<button type="submit"><img src="img/other.jpg"></button>\n</body></html>\n')
    done = run_site(tmp_path, {"index.html": index,
                               "family.html": "<title>The Smith family</title><h1>Smiths</h1>",
                               "about/index.html": "<p>no title</p><h1>About us</h1>"})
    data, report = done["index.html"]
    alts = [(image.status, image.alt) for image in report.images]
    assert alts == [("link named", "The Smith family"), ("link named", "About us"),
                    ("link described", "Three people, link"), ("link named", "Our family, photos"),
                    ("link described", "Three people, button")]
    assert [tag.attrs["alt"] for tag in find_images(data.decode())] == [a for _, a in alts]
    outside_tags_unchanged(index.encode(), data)


def test_a_captioned_image_and_an_image_beside_its_link_text_get_an_empty_alt(tmp_path):
    photo(tmp_path / "a.jpg")
    page = ('<figure><img src="a.jpg"><figcaption>Three people at the <b>beach</b></figcaption></figure>\n'
            '<a href="x.html"><img src="a.jpg"> Our family</a>\n<p><img src="a.jpg"></p>\n')
    data, report = run_site(tmp_path, {"p.html": page})["p.html"]
    assert [(i.status, i.alt) for i in report.images] == [
        ("captioned", ""), ("captioned", ""), ("filled", "Three people.")]
    assert [t.attrs["alt"] for t in find_images(data.decode())] == ["", "", "Three people."]
    outside_tags_unchanged(page.encode(), data)
    _, asked = run_site(tmp_path, {"p.html": page}, Choices(describe_captioned=True))["p.html"]
    assert [i.status for i in asked.images] == ["filled", "filled", "filled"]


def test_spacers_and_single_colour_rules_get_an_empty_alt(tmp_path):
    Image.new("RGB", (1, 1), "white").save(tmp_path / "dot.gif")
    Image.new("RGB", (600, 40), (20, 20, 20)).save(tmp_path / "rule.png")
    photo(tmp_path / "photo.png")
    page = ('<img src="photo.png" width="1" height="1">\n<img src="dot.gif">\n<img src="rule.png">\n'
            '<img src="photo.png">\n')
    data, report = run_site(tmp_path, {"p.html": page})["p.html"]
    assert [(i.status, i.alt) for i in report.images] == [
        ("spacer", ""), ("spacer", ""), ("spacer", ""), ("filled", "Three people.")]
    assert "single colour" in report.images[2].reason and "1 x 1" in report.images[1].reason
    outside_tags_unchanged(page.encode(), data)


@pytest.mark.parametrize(("alt", "src", "why"), [
    ("IMG_2041.jpg", "a.jpg", Placeholder.FILE_NAME), ("DSC_0042", "a.jpg", Placeholder.CAMERA_NAME),
    ("image", "a.jpg", Placeholder.GENERIC), ("A photo.", "a.jpg", Placeholder.GENERIC),
    ("Logo", "a.png", Placeholder.GENERIC), ("pics/a.jpg", "pics/a.jpg", Placeholder.SOURCE),
    ("a", "/x/a.jpg", Placeholder.SOURCE), ("12", "a.jpg", Placeholder.NO_WORDS),
    ("Acme logo", "a.png", None), ("Two dogs in the snow", "dogs.jpg", None), ("", "a.jpg", None),
])
def test_placeholders(alt, src, why):
    assert placeholder(alt, src) is why


def test_an_alt_on_several_different_images_is_a_placeholder_but_one_image_used_often_is_not():
    uses = [("person image", "a.jpg"), ("Person image.", "b.jpg"), ("person  image", "c.jpg"),
            ("Site logo", "logo.png"), ("Site logo", "logo.png"), ("Site logo", "logo.png")]
    assert repeated_alts(uses) == {"person image"}


def test_placeholders_are_replaced_and_listed_or_kept_when_asked(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        photo(tmp_path / name)
    page = ('<img alt="person image" src="a.jpg"><img src="b.jpg" alt="person image" >\n'
            "<img alt='person image' src=c.jpg><img src=\"d.jpg\" alt=\"IMG_2041.jpg\">"
            '<img src="d.jpg" alt="Our dog Rex asleep">\n')
    data, report = run_site(tmp_path, {"p.html": page})["p.html"]
    assert [(i.status, i.placeholder, i.old_alt) for i in report.images] == [
        ("filled", Placeholder.REPEATED.value, "person image"), ("filled", Placeholder.REPEATED.value, "person image"),
        ("filled", Placeholder.REPEATED.value, "person image"), ("filled", Placeholder.FILE_NAME.value, "IMG_2041.jpg"),
        ("kept", None, None)]
    tags = find_images(data.decode())
    assert [t.attrs["alt"] for t in tags] == ["Three people."] * 4 + ["Our dog Rex asleep"]
    assert all(t.tag_text.lower().count("alt=") == 1 for t in tags)  # replaced, never doubled
    outside_tags_unchanged(page.encode(), data)
    kept, listed = run_site(tmp_path, {"p.html": page}, Choices(keep_placeholders=True))["p.html"]
    assert kept is None and [i.placeholder for i in listed.images][:4] == [
        Placeholder.REPEATED.value] * 3 + [Placeholder.FILE_NAME.value]


def test_mark_says_a_machine_wrote_it_and_partial_when_no_caption_model_ran(tmp_path):
    photo(tmp_path / "a.jpg")
    photo(tmp_path / "b.jpg")
    page = '<a href="#"><img src="a.jpg"></a><img src="b.jpg"><img src="a.jpg" alt="">'
    full = AltText("A dog on a sofa.", "A dog on a sofa.", False)
    data, _ = run_site(tmp_path, {"p.html": page}, mark=True, alts={"b.jpg": full})["p.html"]
    tags = find_images(data.decode())
    assert [t.attrs.get("data-alt-generated") for t in tags] == ["describe-local partial", "describe-local", None]
    plain, _ = run_site(tmp_path, {"p.html": page}, alts={"b.jpg": full})["p.html"]
    assert b"data-alt-generated" not in plain
    # A later run keeps what it wrote (no placeholder even when repeated) and an audit finds it.
    (tmp_path / "p.html").write_bytes(data)
    plan = plan_page(tmp_path / "p.html", tmp_path)
    decide_site([plan], Choices())
    assert [d.rule for d in plan.decisions] == [Rule.KEPT, Rule.KEPT, Rule.DECORATIVE]
    assert audit_site([plan]).totals[Issue.GENERATED.value] == 2


def test_the_page_language_is_reported_when_the_alts_are_in_english(tmp_path):
    photo(tmp_path / "a.jpg")
    _, report = run_site(tmp_path, {"fr.html": '<html lang="fr-CA"><img src="a.jpg"></html>'})["fr.html"]
    assert report.lang == "fr-CA" and "fr-CA" in report.note and "English" in report.note
    assert "no translation to fr is installed" in report.note
    _, english = run_site(tmp_path, {"en.html": '<html lang="en-GB"><img src="a.jpg"></html>'})["en.html"]
    assert english.note is None


def test_replacing_an_alt_changes_only_that_tag_in_any_encoding():
    text = "<p>d\u00e9j\u00e0</p><IMG ALT='x.png' data-alt-generated=old SRC=x.png/>\n<img\nsrc=a alt=\"b\">"
    raw = text.encode("cp1252")
    raw = b'<meta charset="windows-1252">' + raw
    page = decode_page(raw)
    tags = find_images(page.text)
    assert [page.text[tags[0].offset:][s:e] for s, e in attribute_spans(tags[0].tag_text, ["alt"])] == ["ALT='x.png' "]
    new, _ = insert_alts(raw, page, [(tags[0], "Caf\u00e9 \u2192")])
    assert new == raw.replace(b"<IMG ALT='x.png' data-alt-generated=old SRC=x.png/>",
                              b'<IMG alt="Caf\xe9 &#8594;" SRC=x.png/>')


def test_the_audit_counts_every_issue_worst_page_first_and_changes_nothing(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        photo(tmp_path / name)
    pages = {"good.html": '<html lang="en"><img src="a.jpg" alt="Our dog Rex asleep on the sofa"></html>',
             "bad.html": ('<a href="good.html"><img src="a.jpg"></a><img src="b.jpg" alt="photo">'
                          '<img src="c.jpg" alt="A tree">\n<img src="b.jpg" alt="A tree">'
                          f'<img src="c.jpg" alt="{"long " * 40}">'),
             "mid.html": '<img src="a.jpg"><img src="b.jpg" alt="" data-alt-generated="describe-local">'}
    before = {}
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
        before[name] = (tmp_path / name).read_bytes()
    plans = [plan_page(tmp_path / name, tmp_path) for name in pages]
    audit = audit_site(plans, max_chars=125, root=tmp_path)
    assert [p.page for p in audit.pages] == ["bad.html", "mid.html", "good.html"]
    bad = audit.pages[0]
    assert [i.issues for i in bad.images] == [["missing", "link without a name"], ["placeholder"], ["duplicate"],
                                              ["duplicate"], ["too long"]]
    assert audit.totals["missing"] == 2 and audit.totals["decorative"] == 1 and audit.totals["generated"] == 1
    assert audit.duplicates == [("a tree", 2)]
    assert all((tmp_path / name).read_bytes() == data for name, data in before.items())
    html = render_part(audit, audit.pages, 1, 1)
    assert html.index("bad.html") < html.index("mid.html") and '<html lang="en">' in html


def test_the_language_note_says_no_translation_is_installed():
    from describe_local.alt_text.language import language_note

    assert "no translation to es is installed" in language_note("es-MX", frozenset())
