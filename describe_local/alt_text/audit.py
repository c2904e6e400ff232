"""An audit of a site's alt text: every image's problems, counted per page and for the site,
worst pages first. Changes nothing and needs no model (``alt-text --audit``).

Each image gets the issues that apply (:class:`Issue`): ``missing`` (no alt), ``placeholder``
(an alt that says nothing: ``alt_text/placeholders.py``), ``link without a name`` (an image
that is all a link or button holds, and whose alt is missing, empty or a placeholder: the
control has no name), ``duplicate`` (the same alt on different images), ``too long`` (over
``max_chars``), and for the record ``decorative`` (``alt=""``) and ``generated`` (marked with
``data-alt-generated``: a machine wrote it). A page's score weighs them (:data:`WEIGHTS`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.alt_text.pages import MARK_ATTRIBUTE
from describe_local.alt_text.placeholders import Placeholder, normalised, placeholder, repeated_alts

if TYPE_CHECKING:
    from describe_local.alt_text.site import PagePlan

__all__ = ["WEIGHTS", "Audit", "AuditedImage", "AuditedPage", "Issue", "audit_site"]


class Issue(enum.Enum):
    MISSING = "missing"
    UNNAMED_LINK = "link without a name"
    PLACEHOLDER = "placeholder"
    DUPLICATE = "duplicate"
    TOO_LONG = "too long"
    DECORATIVE = "decorative"
    GENERATED = "generated"


# How much each issue weighs in a page's score (worst first): what leaves a reader with nothing,
# then what misleads, then what only tires.
WEIGHTS = {Issue.MISSING: 3, Issue.UNNAMED_LINK: 3, Issue.PLACEHOLDER: 2, Issue.DUPLICATE: 1, Issue.TOO_LONG: 1,
           Issue.DECORATIVE: 0, Issue.GENERATED: 0}


@dataclass
class AuditedImage:
    """One ``<img>``: where, its alt (None: none), its issues (values of :class:`Issue`) and
    what they mean here (``why``)."""

    line: int
    src: str | None
    alt: str | None
    issues: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)


@dataclass
class AuditedPage:
    page: str
    lang: str = ""
    images: list[AuditedImage] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    score: int = 0
    error: str | None = None


@dataclass
class Audit:
    """The site's pages, worst first, and its totals."""

    site: str
    max_chars: int
    pages: list[AuditedPage]
    totals: dict[str, int]
    duplicates: list[tuple[str, int]]  # an alt and on how many different images, most first

    counted = tuple(issue.value for issue in Issue)

    def to_json(self) -> str:
        body = {"site": self.site, "max_chars": self.max_chars, "totals": self.totals,
                "duplicates": [{"alt": alt, "images": n} for alt, n in self.duplicates],
                "pages": [{**vars(page), "images": [vars(image) for image in page.images]} for page in self.pages]}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n"  # big sites: compact


def audit_site(plans: Iterable[PagePlan], max_chars: int = 125, root: Path | None = None) -> Audit:
    """The audit of the scanned pages ``plans`` (``site.plan_page``; their bytes are not needed)."""
    plans = list(plans)
    uses = [(tag.attrs["alt"] or "", found if isinstance(found, Path) else tag.src)
            for plan in plans for tag, found in zip(plan.tags, plan.found, strict=True) if tag.has_alt]
    repeated = repeated_alts(uses)
    shared = repeated_alts(uses, at_least=2)
    images_per_alt: dict[str, set[object]] = {}
    for alt, image in uses:
        if normalised(alt) in shared:
            images_per_alt.setdefault(normalised(alt), set()).add(image)
    pages = [_page(plan, max_chars, repeated, shared, root) for plan in plans]
    pages.sort(key=lambda p: (-p.score, -len(p.images), p.page))
    totals = {"pages": len(pages), "images": sum(len(p.images) for p in pages),
              "pages with problems": sum(p.score > 0 for p in pages),
              "pages not read": sum(bool(p.error) for p in pages),
              **{issue.value: sum(p.counts.get(issue.value, 0) for p in pages) for issue in Issue}}
    duplicates = sorted(((alt, len(images)) for alt, images in images_per_alt.items()), key=lambda d: (-d[1], d[0]))
    return Audit(str(root) if root else "", max_chars, pages, totals, duplicates)


def _page(plan: PagePlan, max_chars: int, repeated: set[str], shared: set[str], root: Path | None) -> AuditedPage:
    name = str(plan.page.relative_to(root)) if root and plan.page.is_relative_to(root) else str(plan.page)
    page = AuditedPage(name, plan.lang, error=plan.error)
    counts = dict.fromkeys((issue.value for issue in Issue), 0)
    for tag in plan.tags:
        alt = tag.attrs.get("alt")
        item = AuditedImage(tag.line, tag.src, alt)
        issues: list[Issue] = []
        found: Placeholder | None = None
        if alt is None:
            issues.append(Issue.MISSING)
        elif not alt.strip():
            issues.append(Issue.DECORATIVE)
        else:
            key = normalised(alt)
            found = placeholder(alt, tag.src) or (Placeholder.REPEATED if key in repeated else None)
            if found is not None:
                issues.append(Issue.PLACEHOLDER)
                item.why.append(f"placeholder: {found.value}")
            elif key in shared:
                issues.append(Issue.DUPLICATE)
            if len(alt) > max_chars:
                issues.append(Issue.TOO_LONG)
                item.why.append(f"{len(alt)} characters")
        box = tag.container
        if box is not None and box.image_only and not box.label and (not (alt or "").strip() or found):
            issues.append(Issue.UNNAMED_LINK)
            item.why.append(f"the {box.kind} is named only by this image"
                            + (f" (it leads to {box.href})" if box.href else ""))
        if MARK_ATTRIBUTE in tag.attrs:
            issues.append(Issue.GENERATED)
            item.why.append(f"{MARK_ATTRIBUTE}={tag.attrs[MARK_ATTRIBUTE] or ''}")
        item.issues = [issue.value for issue in issues]
        for issue in issues:
            counts[issue.value] += 1
            page.score += WEIGHTS[issue]
        page.images.append(item)
    page.counts = counts
    return page

