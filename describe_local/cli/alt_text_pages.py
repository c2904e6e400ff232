"""``describe-local alt-text`` on web pages: fill in a site's alt text, or audit it.

- Filling (``-o DIR`` or ``--in-place``): every page is planned and decided first
  (``alt_text/site.py``, the W3C decision tree in ``alt_text/decide.py``), each image that needs
  it is described once, and the pages that change are written whole. ``-o`` holds only those
  pages and the files they show, unless ``--copy-all``.
- Auditing (``--audit``): nothing in the site changes and no model loads; the report
  (``alt_text/audit.py``, written by ``alt_text/report.py``) lists every image's problems.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from describe_local.cli._common import json_safe, shown
from describe_local.errors import ConfigError, DescribeLocalError, OutputError, PageError

if TYPE_CHECKING:
    from describe_local.alt_text.site import PagePlan, PageReport
    from describe_local.alt_text.wording import AltText
    from describe_local.pipeline import Describer

Job = tuple[Path, Path, Path]  # a page, its site's folder, where it is written
Link = tuple[Path, Path | None, Path]  # a symbolic link, where it leads inside its site (None: out), its copy
Copy = tuple[Path, Path]  # a file of the site, where its copy goes
PROGRESS_FROM = 4  # more images than this show n/N progress on a terminal


def page_jobs(inputs: list[Path], output: Path | None) -> tuple[list[Job], list[Copy], list[Link]]:
    """``(page, site root, where it goes)`` for each page, ``(file, target)`` for each other
    file of a site to copy (with ``-o`` only), and each symbolic link met (never followed: a
    page behind one is not read, a file behind one not copied). Checked before any model loads."""
    from describe_local.alt_text.site import is_page, link_inside, site_files

    jobs: list[Job] = []
    copies: list[Copy] = []
    links: list[Link] = []
    if output is not None and output.exists() and not output.is_dir():
        raise OutputError(f"-o {shown(output)} is a file; give a folder")
    out = output.resolve() if output is not None else None
    for given in inputs:
        root = given if given.is_dir() else given.parent
        if out is not None and (out == root.resolve() or (given.is_dir() and out.is_relative_to(given.resolve()))):
            raise OutputError(f"-o {shown(output)} is inside {shown(given)}; give a folder outside the site")
        prefix = Path() if len(inputs) == 1 and given.is_dir() else Path(given.name if given.is_dir() else "")
        for path in site_files(given) if given.is_dir() else [given]:
            target = path if out is None else out / prefix / path.relative_to(root)
            if path.is_symlink():
                links.append((path, link_inside(path, root), target))
            elif is_page(path):
                jobs.append((path, root, target))
            elif out is not None:
                copies.append((path, target))
    targets = [t for _, _, t in jobs] + [t for _, t in copies] + [t for _, _, t in links if out is not None]
    if len(set(targets)) < len(targets):
        raise ConfigError("two of the given pages would be written to the same place; give them one at a time")
    return jobs, copies, links


def run_pages(describer: Describer, args: argparse.Namespace, jobs: list[Job], copies: list[Copy],
              links: list[Link]) -> int:
    """Plan and decide every page, describe each image once, write the pages that change (with
    ``-o``: and the files they show, or with ``--copy-all`` the whole site); the exit code."""
    from describe_local.alt_text.decide import Choices
    from describe_local.alt_text.site import (
        PlanOptions,
        copy_atomic,
        decide_site,
        finish_page,
        plan_page,
        write_atomic,
    )

    choices = Choices(keep_placeholders=args.keep_placeholders, describe_captioned=args.describe_captioned)
    plans = [plan_page(page, root) for page, root, _ in jobs]
    decide_site(plans, choices)
    images = list(dict.fromkeys(path for plan in plans for path in plan.images()))
    described: dict[Path, AltText | str] = {}
    for path, result in described_images(describer, announced(images, args.progress, args.quiet), args):
        described[path] = shown(result) if isinstance(result, DescribeLocalError) else result[0]
    translations = frozenset(info.code for info in describer.languages() if info.translation_installed)
    options = PlanOptions(choices, mark=args.mark, translations=translations - {"en"}, translate=describer.translate)
    reports: list[PageReport] = []
    needed: set[str] = set()
    code = 0
    for plan, (page, _, target) in zip(plans, jobs, strict=True):
        data, report = finish_page(plan, described, options)
        try:
            if data is not None:
                if args.in_place:
                    write_atomic(page.with_name(page.name + ".bak"), plan.raw, like=page)
                write_atomic(target, data, like=page)
                needed |= needed_files(plan)
            elif args.copy_all and plan.error is None:
                copy_atomic(page, target)
            report.output = str(target) if data is not None or (args.copy_all and plan.error is None) else None
        except OutputError as exc:
            report.error, code = str(exc), OutputError.exit_code
        if report.error and not code:
            code = PageError.exit_code
        reports.append(report)
    if not args.copy_all:  # only what the changed pages show
        copies = [(s, t) for s, t in copies if _key(s) in needed]
        links = [link for link in links if _key(link[0]) in needed]
    for source, target in copies:
        try:
            copy_atomic(source, target)
        except OutputError as exc:  # e.g. a full disk: said, and the report still written
            print(f"describe-local: error: {shown(exc)}", file=sys.stderr)
            code = OutputError.exit_code
    link_reports = _links(links, args.in_place)
    if any(r["status"] == "failed" for r in link_reports):
        code = code or OutputError.exit_code
    summarise(reports, args.report, link_reports, copied=None if args.in_place else len(copies))
    return code


def described_images(describer: Describer, paths: Iterable[Path],
                     args: argparse.Namespace) -> Iterator[tuple[Path, Any]]:
    """``(path, (AltText, Description))`` per image, or ``(path, error)`` for one that failed."""
    from describe_local.alt_text.wording import alt_text
    from describe_local.results import DescribeOptions

    for path, result in describer.describe_all(paths, DescribeOptions(audio=False)):
        if isinstance(result, DescribeLocalError):
            yield path, result
        else:
            yield path, (alt_text(result, args.max_chars, args.names), result)


def announced(paths: list[Path], forced: bool, quiet: bool = False) -> Iterator[Path]:
    """``paths``, printing ``n/N path`` on stderr as each starts (``--progress``, or a terminal
    and more than a few; never with ``quiet``)."""
    show = not quiet and (forced or (len(paths) > PROGRESS_FROM and sys.stderr.isatty()))
    for index, path in enumerate(paths, 1):
        if show:
            print(f"{index}/{len(paths)} {shown(path)}", file=sys.stderr, flush=True)
        yield path


def needed_files(plan: PagePlan) -> set[str]:
    """The local files a page shows (its images, stylesheets, scripts, media), as absolute paths
    written the way the page names them (not through links)."""
    urls = [c.url for tag in plan.tags for c in tag.candidates]
    urls += plan.scanned.needs if plan.scanned else []
    found: set[str] = set()
    base = plan.tags[0].base_href if plan.tags else None
    for url in urls:
        parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
        if parts.scheme or parts.netloc or not parts.path:
            continue
        path = unquote(parts.path)
        target = plan.root / path.lstrip("/") if path.startswith("/") else plan.page.parent / path
        found.add(_key(target))
    return found


def _key(path: Path) -> str:
    return os.path.normpath(os.path.abspath(path))


def run_audit(args: argparse.Namespace, jobs: list[Job]) -> int:
    """Audit the pages (nothing in them changes, no model loads): the summary on stderr, the
    report (HTML and JSON) into ``-o``, the JSON alone into ``--report``; the exit code."""
    from describe_local.alt_text.audit import audit_site
    from describe_local.alt_text.report import write_report
    from describe_local.alt_text.site import plan_page, write_atomic

    plans = []
    for page, root, _ in jobs:
        plan = plan_page(page, root, files=False)
        plan.raw, plan.decoded = b"", None  # only the scan is needed: keep memory low on big sites
        plans.append(plan)
    roots = {root for _, root, _ in jobs}
    audit = audit_site(plans, max_chars=args.max_chars, root=next(iter(roots)) if len(roots) == 1 else None)
    totals = audit.totals
    print(f"{totals['pages']} pages, {totals['images']} images: " + ", ".join(
        f"{totals[key]} {key}" for key in audit.counted) + " (nothing changed)", file=sys.stderr)
    for page in audit.pages[:5]:
        if page.score:
            print(f"  {shown(page.page)}: " + ", ".join(f"{n} {k}" for k, n in page.counts.items() if n),
                  file=sys.stderr)
    if args.output is not None:
        files = write_report(audit, args.output)
        print(f"report: {shown(files[0])} (and {len(files) - 1} more file{'s' * (len(files) != 2)})", file=sys.stderr)
    if args.report is not None:
        write_atomic(args.report, audit.to_json().encode())
    return PageError.exit_code if any(page.error for page in audit.pages) else 0


def _links(links: list[Link], in_place: bool) -> list[dict[str, Any]]:
    """Each symbolic link of the sites: made again as a link in the copy when it stays inside
    its site, else skipped, never followed; one record each for the report."""
    from describe_local.alt_text.site import copy_link

    done: list[dict[str, Any]] = []
    for link, real, target in links:
        try:
            leads_to = os.readlink(link)
        except OSError as exc:
            leads_to = f"(unreadable: {exc.strerror})"
        record: dict[str, Any] = {"path": str(link), "leads_to": leads_to, "output": None}
        if real is None:
            record.update(status="skipped", reason="it leads out of the site folder (or nowhere); not followed")
        elif in_place:
            record.update(status="kept", reason="a link inside the site, left as it is")
        else:
            try:
                record.update(status="copied as a link", output=str(target), link=copy_link(link, real, target))
            except OutputError as exc:
                record.update(status="failed", reason=str(exc))
        done.append(record)
    return done


def summarise(reports: list[PageReport], report_file: Path | None, links: list[dict[str, Any]],
              copied: int | None = None) -> None:
    """The closing summary on stderr, and the whole report as JSON in ``report_file``."""
    from describe_local.alt_text.site import SKIPPED, write_atomic

    totals = totals_of(reports)
    line = (f"{totals['pages']} page{'s' * (totals['pages'] != 1)}, {totals['changed']} changed: "
            f"{totals['filled']} image{'s' * (totals['filled'] != 1)} given alt text")
    if totals["partial"]:
        line += f" ({totals['partial']} partial)"
    line += f", {totals['kept']} kept, {totals['decorative']} decorative, {totals['skipped']} skipped"
    for key in ("link named", "link described", "captioned", "spacer"):
        if totals[key]:
            line += f", {totals[key]} {key}"
    if totals["placeholders"]:
        line += f"; {totals['placeholders']} placeholder alt{'s' * (totals['placeholders'] != 1)} replaced"
    reasons = totals["skipped_because"]
    if reasons:
        line += " (" + ", ".join(f"{n} {why}" for why, n in reasons.items()) + ")"
    if links:
        made = sum(link["status"] == "copied as a link" for link in links)
        line += f"; {len(links)} symbolic link{'s' * (len(links) != 1)}: {made} copied as links"
    if copied is not None:
        line += f"; {copied} other file{'s' * (copied != 1)} copied"
    print(line, file=sys.stderr)
    for alt, count in totals["same_alt"].items():
        print(f"  warning: {count} different images were given the same alt {alt!r}; "
              "a caption model (or a person) would tell them apart", file=sys.stderr)
    for link in links:
        if link["status"] in ("skipped", "failed"):
            print(f"  {link['status']} link {shown(link['path'])} -> {shown(link['leads_to'])}: {link['reason']}",
                  file=sys.stderr)
    for report in reports:
        if report.error:
            print(f"describe-local: error: {shown(report.page)}: {shown(report.error)}", file=sys.stderr)
        if report.note:
            print(f"  note: {shown(report.page)}: {report.note}", file=sys.stderr)
        for image in report.images:
            if image.status == SKIPPED and image.reason != "remote image (not fetched)":
                print(f"  skipped {shown(report.page)}:{image.line} {shown(image.src)}: {image.reason}",
                      file=sys.stderr)
            elif image.placeholder and image.generated:
                print(f"  replaced {shown(report.page)}:{image.line} alt {image.old_alt!r} ({image.placeholder})",
                      file=sys.stderr)
    sys.stderr.flush()
    if report_file is not None:
        body = {"pages": [dataclasses.asdict(r) for r in reports], "links": links, "totals": totals}
        write_atomic(report_file, (json.dumps(json_safe(body), ensure_ascii=False, indent=2) + "\n").encode())


def totals_of(reports: list[PageReport]) -> dict[str, Any]:
    """Counts per status, placeholders replaced, why images were skipped, and the alts written
    for two or more different images (a warning: they tell a reader nothing apart)."""
    from describe_local.alt_text.decide import Rule

    counts: dict[str, Any] = {"pages": len(reports), "changed": sum(r.changed for r in reports), "partial": 0,
                              "placeholders": 0, **{rule.value: 0 for rule in Rule}}
    because: dict[str, int] = {}
    written: dict[str, set[str]] = {}
    for report in reports:
        for image in report.images:
            counts[image.status] += 1
            counts["partial"] += image.status == Rule.DESCRIBE.value and image.partial
            counts["placeholders"] += bool(image.placeholder and image.generated)
            if image.status == Rule.SKIPPED.value:
                because[image.reason or "?"] = because.get(image.reason or "?", 0) + 1
            if image.status == Rule.DESCRIBE.value and image.alt and image.image:
                written.setdefault(image.alt, set()).add(image.image)
    counts["skipped_because"] = because
    counts["same_alt"] = {alt: len(images) for alt, images in written.items() if len(images) > 1}
    return counts
