"""Alt text in the page's own language: a page whose ``<html lang>`` is not English gets its
generated alts translated by the installed models (``Describer.translate``), or a report note that
says why they stay English."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from describe_local.errors import DescribeLocalError

if TYPE_CHECKING:
    from describe_local.alt_text.site import ImageReport


def in_page_language(items: list[ImageReport], lang: str, translations: frozenset[str],
                     translate: Callable[[list[str], str], list[str]] | None) -> str:
    """Put the generated alts of a page in ``lang`` into that language where a translation is
    installed; the report's note says which was done."""
    code = lang.split("-")[0].lower()
    generated = [item for item in items if item.generated and item.alt]
    if code not in translations or translate is None:
        return language_note(lang, translations)
    if generated:
        try:
            for item, alt in zip(generated, translate([item.alt or "" for item in generated], code),
                                 strict=True):
                item.alt = alt
        except DescribeLocalError as exc:
            return f"the page's language is {lang}; its alts are written in English (the translation failed: {exc})"
    return f"the page's language is {lang}; its generated alts are translated into it by the installed model"


def language_note(lang: str, translations: frozenset[str]) -> str:
    """Why a page in ``lang`` gets English alts: no translation into it is installed."""
    code = lang.split("-")[0].lower()
    return (f"the page's language is {lang}; its alts are written in English (no translation to {code} is "
            f"installed: describe-local models pull or import one)")
