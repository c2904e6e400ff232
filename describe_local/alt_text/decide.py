"""What each ``<img>`` of a page should get, by the W3C alt decision tree where the page shows
the answer (https://www.w3.org/WAI/tutorials/images/decision-tree/):

- an image that is all a link or button holds names where the link goes or what the button
  does: the control's own ``aria-label``/``title``, else the linked local page's ``<title>`` or
  ``<h1>``; only when nothing else is known is the picture described, ending ", link";
- an image whose caption (``<figcaption>``) or the text beside it in the same link or button
  already says what it shows gets ``alt=""`` (unless ``describe_captioned``);
- a tiny image (a side of at most :data:`SPACER_PX`) or one of a single colour (a spacer, a
  rule) gets ``alt=""``;
- otherwise the picture is described.

An alt already there is kept (``alt=""`` marks a decorative image) unless it is a placeholder
(``alt_text/placeholders.py``): then the image counts as missing, unless ``keep_placeholders``.
Pure decisions over a scanned page; files are only looked at to tell a spacer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from describe_local.alt_text.pages import MARK_ATTRIBUTE, ImgTag
from describe_local.alt_text.placeholders import Placeholder, normalised, placeholder

__all__ = ["SPACER_PX", "Choices", "Decision", "Rule", "decide", "is_spacer", "link_alt"]

SPACER_PX = 3  # an image this thin or less is a spacer or a rule, never content
SINGLE_COLOUR_SPREAD = 3  # the most a channel may vary (0-255) in a "single-colour" image
SPACER_CHECK_PIXELS = 16_000_000  # bigger images are not decoded to check for one colour


class Rule(enum.Enum):
    """What an ``<img>`` gets (the report's ``status``)."""

    KEPT = "kept"  # an alt a person wrote
    DECORATIVE = "decorative"  # alt="" already there
    DESCRIBE = "filled"  # the picture is described (the alt filled in)
    LINK_NAME = "link named"  # the control's name: the destination's title, the button's label
    LINK_DESCRIBED = "link described"  # nothing names the destination: "<description>, link"
    CAPTIONED = "captioned"  # alt="" written: the caption or the link's text says it
    SPACER = "spacer"  # alt="" written: tiny or a single colour
    SKIPPED = "skipped"


WRITES_EMPTY = (Rule.CAPTIONED, Rule.SPACER)
NEEDS_DESCRIBING = (Rule.DESCRIBE, Rule.LINK_DESCRIBED)


@dataclass(frozen=True)
class Choices:
    """The user's choices: replace placeholders (default) and leave captioned images empty (default)."""

    keep_placeholders: bool = False
    describe_captioned: bool = False


@dataclass
class Decision:
    """One image's rule, with what it needs: ``image`` (the file to describe or check), ``alt``
    (a name found in the page), ``reason`` (why, in words), and ``placeholder`` when the alt
    it had says nothing (that alt is in ``old_alt``)."""

    rule: Rule
    image: Path | None = None
    alt: str | None = None
    reason: str | None = None
    placeholder: Placeholder | None = None
    old_alt: str | None = None
    generated: bool = False  # the alt there was written by describe-local (data-alt-generated)


def decide(tag: ImgTag, image: Path | str, choices: Choices, *, repeated: Collection[str] = (),
           name_of: Callable[[str], str | None] = lambda _href: None) -> Decision:
    """The rule for ``tag``; ``image``: its local file, or why there is none (``site.choose_image``);
    ``repeated``: the site's alts given to many images (normalised); ``name_of``: a link's
    destination name (its local page's title), or None."""
    file = image if isinstance(image, Path) else None
    found: Placeholder | None = None
    alt = tag.attrs.get("alt")
    if alt is not None:
        generated = MARK_ATTRIBUTE in tag.attrs
        if not alt.strip():
            return Decision(Rule.DECORATIVE, file, alt="", generated=generated)
        found = None if generated else placeholder(alt, tag.src)
        if found is None and not generated and normalised(alt) in repeated:
            found = Placeholder.REPEATED
        if found is None or choices.keep_placeholders:
            return Decision(Rule.KEPT, file, alt=alt, placeholder=found, generated=generated)
    decision = _missing(tag, image, choices, name_of)
    decision.placeholder, decision.old_alt = found, alt
    return decision


def _missing(tag: ImgTag, image: Path | str, choices: Choices, name_of: Callable[[str], str | None]) -> Decision:
    file = image if isinstance(image, Path) else None
    box = tag.container
    if box is not None and box.image_only:
        name = box.label or (name_of(box.href) if box.kind == "link" and box.href else None)
        if name:
            return Decision(Rule.LINK_NAME, file, alt=name, reason=f"names the {box.kind}'s "
                            + ("label" if box.label else "destination"))
        if file is None:
            return Decision(Rule.SKIPPED, reason=str(image))
        return Decision(Rule.LINK_DESCRIBED, file, reason=f"nothing names the {box.kind}: the picture is described")
    if not choices.describe_captioned:
        if box is not None and box.text:
            return Decision(Rule.CAPTIONED, file, alt="", reason=f"the {box.kind}'s text names it")
        if tag.caption:
            return Decision(Rule.CAPTIONED, file, alt="", reason="its caption says what it shows")
    spacer = is_spacer(tag, file)
    if spacer:
        return Decision(Rule.SPACER, file, alt="", reason=spacer)
    if file is None:
        return Decision(Rule.SKIPPED, reason=str(image))
    return Decision(Rule.DESCRIBE, file)


def link_alt(description: str, kind: str) -> str:
    """A described picture as a control's name when nothing else names it: "Three people, link"."""
    return f"{description.rstrip('. ')}, {kind}"


def is_spacer(tag: ImgTag, file: Path | None) -> str | None:
    """Why the image is a spacer or a rule (thin by its attributes or its pixels, or a single
    colour), or None."""
    for side in ("width", "height"):
        value = (tag.attrs.get(side) or "").strip().removesuffix("px")
        if value.isdigit() and int(value) <= SPACER_PX:
            return f"{value} pixels {'wide' if side == 'width' else 'high'}"
    return _spacer_file(file) if file is not None else None


def _spacer_file(file: Path) -> str | None:
    from PIL import Image

    from describe_local.images import PHOTO_FORMATS

    try:
        with Image.open(file, formats=PHOTO_FORMATS) as img:
            width, height = img.size
            if min(width, height) <= SPACER_PX:
                return f"{width} x {height} pixels"
            if width * height > SPACER_CHECK_PIXELS:
                return None
            img.draft("RGB", (64, 64))  # JPEG: decode small
            small = img.convert("RGBA").resize((min(width, 32), min(height, 32)))
            if all(high - low <= SINGLE_COLOUR_SPREAD for low, high in small.getextrema()):
                return "a single colour"
    except Exception:  # not an image we read: described (or skipped) as any other
        return None
    return None
