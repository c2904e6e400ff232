"""The audit's report as files: ``report.json`` (everything) and ``report.html`` (accessible:
headings, tables with header cells, a language, no colour alone), split into parts of
:data:`PAGES_PER_PART` pages so that a browser and a screen reader cope with a big site.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from describe_local.alt_text.audit import Audit, AuditedPage, Issue
from describe_local.alt_text.files import write_atomic

__all__ = ["PAGES_PER_PART", "render_part", "write_report"]

PAGES_PER_PART = 250
MAX_SHOWN = 300  # the most characters of an alt or a URL shown in the HTML (the JSON has all)
MEANING = {
    Issue.MISSING: "No alt attribute: a screen reader reads the file name, or nothing.",
    Issue.UNNAMED_LINK: "The image is all a link or button holds, and names it with nothing useful.",
    Issue.PLACEHOLDER: "An alt that says nothing: a file name, 'image', 'logo', or one alt on many images.",
    Issue.DUPLICATE: "The same alt as other, different images: readers cannot tell them apart.",
    Issue.TOO_LONG: "Longer than the limit: long alts are tiring; use a caption or a long description.",
    Issue.DECORATIVE: "alt=\"\": marked decorative, skipped by screen readers. Check that it is.",
    Issue.GENERATED: "Written by a machine (data-alt-generated): have a person check it.",
}
_STYLE = """body{font:1rem/1.5 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem;color:#111;
background:#fff}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}th,td{border:1px solid #666;padding:0.25rem 0.5rem;
text-align:left;vertical-align:top}code{word-break:break-all}a{color:#0645ad}a:focus{outline:3px solid #111}
nav ul{display:flex;flex-wrap:wrap;gap:0.5rem;list-style:none;padding:0}"""


def write_report(audit: Audit, folder: Path) -> list[Path]:
    """``report.json`` and the HTML parts (``report.html``, ``report-2.html``, ...) in ``folder``;
    the files written, the first part first. Raises ``OutputError`` (one line)."""
    with_problems = [page for page in audit.pages if page.score or page.error or page.counts.get("generated")]
    parts = [with_problems[i:i + PAGES_PER_PART] for i in range(0, len(with_problems), PAGES_PER_PART)] or [[]]
    written: list[Path] = []
    for number, pages in enumerate(parts, 1):
        path = folder / part_name(number)
        write_atomic(path, render_part(audit, pages, number, len(parts)).encode("utf-8"))
        written.append(path)
    write_atomic(folder / "report.json", audit.to_json().encode("utf-8"))
    written.append(folder / "report.json")
    return written


def part_name(number: int) -> str:
    return "report.html" if number == 1 else f"report-{number}.html"


def render_part(audit: Audit, pages: list[AuditedPage], number: int, parts: int) -> str:
    """One HTML part: the site's summary, then its share of the pages, worst first."""
    totals = audit.totals
    title = f"Alt text audit{': ' + audit.site if audit.site else ''}" + (f", part {number} of {parts}" if parts > 1
                                                                            else "")
    out = [f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
           f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{_e(title)}</title>\n'
           f"<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{_e(title)}</h1>\n",
           f"<p>{totals['pages']} pages and {totals['images']} images; {totals['pages with problems']} pages have "
           "images to look at. Nothing in the site was changed. Every image is in "
           '<a href="report.json">report.json</a>.</p>\n']
    out.append('<h2 id="summary">Site summary</h2>\n<table>\n<caption>Images by issue</caption>\n<thead><tr>'
               '<th scope="col">Issue</th><th scope="col">Images</th><th scope="col">What it means</th></tr>'
               "</thead>\n<tbody>\n")
    for issue in Issue:
        out.append(f'<tr><th scope="row">{_e(issue.value)}</th><td>{totals[issue.value]}</td>'
                   f"<td>{_e(MEANING[issue])}</td></tr>\n")
    out.append("</tbody>\n</table>\n")
    if audit.duplicates:
        out.append('<h2 id="repeated">Alts on several different images</h2>\n<ul>\n')
        for alt, count in audit.duplicates[:20]:
            out.append(f"<li><q>{_e(_cut(alt))}</q>: {count} images</li>\n")
        out.append("</ul>\n")
    if parts > 1:
        out.append('<nav aria-label="Parts of the report"><ul>\n')
        for other in range(1, parts + 1):
            current = ' aria-current="page"' if other == number else ""
            out.append(f'<li><a href="{part_name(other)}"{current}>Part {other}</a></li>\n')
        out.append("</ul></nav>\n")
    first = (number - 1) * PAGES_PER_PART
    out.append(f'<h2 id="pages">Pages, worst first{f" ({first + 1} to {first + len(pages)})" if pages else ""}</h2>\n')
    if not pages:
        out.append("<p>No page has an image to look at.</p>\n")
    for index, page in enumerate(pages, first + 1):
        out.append(_page_section(page, index))
    out.append("</main>\n</body>\n</html>\n")
    return "".join(out)


def _page_section(page: AuditedPage, index: int) -> str:
    counts = ", ".join(f"{n} {issue}" for issue, n in page.counts.items() if n) or "no issues"
    out = [f'<section aria-labelledby="page-{index}">\n<h3 id="page-{index}">{_e(page.page)}</h3>\n'
           f"<p>{len(page.images)} images: {_e(counts)}{'; language ' + _e(page.lang) if page.lang else ''}.</p>\n"]
    if page.error:
        out.append(f"<p>Not read: {_e(page.error)}</p>\n")
    shown = [image for image in page.images if image.issues]
    if shown:
        out.append(f'<table>\n<caption>Images of {_e(page.page)} to look at</caption>\n<thead><tr>'
                   '<th scope="col">Line</th><th scope="col">Image</th><th scope="col">Alt</th>'
                   '<th scope="col">Issues</th></tr></thead>\n<tbody>\n')
        for image in shown:
            alt = "(none)" if image.alt is None else ('""' if not image.alt.strip() else _cut(image.alt))
            issues = ", ".join(image.issues) + (f" ({'; '.join(image.why)})" if image.why else "")
            out.append(f"<tr><td>{image.line}</td><td><code>{_e(_cut(image.src or '(no src)'))}</code></td>"
                       f"<td>{_e(alt)}</td><td>{_e(issues)}</td></tr>\n")
        out.append("</tbody>\n</table>\n")
    out.append("</section>\n")
    return "".join(out)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"


def _e(text: str) -> str:
    return escape(text, quote=True)
