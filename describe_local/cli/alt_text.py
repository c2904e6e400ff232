"""``describe-local alt-text PATH...``: alt text for images, and for the images of web pages.

- Images and folders of images: one line per image on stdout (JSON lines, or ``--csv``) with
  ``path``, ``alt``, ``long_description``, ``partial``, ``text_found`` and ``errors``.
- ``.html`` pages, or folders holding a static site: every ``<img>`` with no ``alt`` gets one
  (``alt_text/site.py``), into a copy of the site (``-o DIR``) or the pages themselves
  (``--in-place``, keeping each changed page's original as ``PAGE.bak``). A summary goes to
  stderr, and with ``--report FILE`` every page and image as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from describe_local.cli._caption import check_caption, note_if_missing
from describe_local.cli._choices import caption_model_given, check_caption_model, check_folders
from describe_local.cli._common import (
    add_caption_options,
    add_collection_options,
    add_gallery_option,
    as_collection,
    bar_wanted,
    check_beam,
    check_collection_options,
    expand_photos,
    json_line,
    json_safe,
    load_settings,
    needed_on_every_node,
    progress_printer,
    shown,
)
from describe_local.errors import ConfigError, DescribeLocalError, ImageError, OutputError, PageError

if TYPE_CHECKING:
    from describe_local.alt_text.site import PageReport
    from describe_local.alt_text.wording import AltText
    from describe_local.pipeline import Describer

PROGRESS_FROM = 4  # more images than this show n/N progress on a terminal
COLUMNS = ("path", "alt", "long_description", "partial", "text_found", "errors")


def register(subparsers: argparse._SubParsersAction) -> None:
    from describe_local.alt_text.wording import DEFAULT_MAX_CHARS, MAX_CHARS_RANGE

    parser = subparsers.add_parser(
        "alt-text",
        help="alt text for images, or fill in the missing alt text of web pages",
        description=(
            "Write alt text: one short sentence for a screen reader, with the caption first, a count "
            "of people and any text that stands out. For images and folders of images, prints one "
            "line per image. For .html pages or a folder holding a static site, gives every <img> "
            "that has no alt attribute one (alt=\"\" is kept: it marks a decorative image); remote "
            "and data: images are skipped, never fetched."
        ),
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="an image, a folder of images, an .html page, or a folder holding a site")
    low, high = MAX_CHARS_RANGE
    parser.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS, metavar="N",
                        help=f"longest alt text, {low} to {high} (default {DEFAULT_MAX_CHARS})")
    parser.add_argument("--names", action="store_true",
                        help="name the known people (by default they are only counted: a public page "
                        "must not give away who is in your gallery)")
    parser.add_argument("--csv", action="store_true", help="images: print CSV instead of JSON lines")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="pages: write a copy of the site (same tree, other files copied too) into DIR")
    parser.add_argument("--in-place", action="store_true",
                        help="pages: change the pages themselves, keeping each changed page's original as PAGE.bak")
    parser.add_argument("--report", type=Path, metavar="FILE",
                        help="pages: write every page and image (filled, kept, skipped and why) to FILE as JSON")
    parser.add_argument("--progress", action="store_true",
                        help="print n/N as each image starts, on stderr (the default for more than "
                        f"{PROGRESS_FROM} images when stderr is a terminal)")
    add_gallery_option(parser)
    add_caption_options(parser, "caption model")
    add_collection_options(parser, "image")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Alt text for the images or pages in ``args.paths``; the exit code."""
    from describe_local.alt_text.site import holds_pages, is_page
    from describe_local.alt_text.wording import MAX_CHARS_RANGE

    check_beam(args)
    low, high = MAX_CHARS_RANGE
    if not low <= args.max_chars <= high:
        raise ConfigError(f"--max-chars {args.max_chars} is out of range: give {low} to {high}")
    pages = [p for p in args.paths if (p.is_dir() and holds_pages(p)) or (not p.is_dir() and is_page(p))]
    if pages and len(pages) < len(args.paths):
        raise ConfigError("give either web pages (.html files or site folders) or images, not both")
    if pages:
        if bool(args.output) == bool(args.in_place):
            raise ConfigError("for web pages, give -o DIR (a copy of the site) or --in-place (with .bak files)")
        if args.csv:
            raise ConfigError("--csv is for images; pages get --report FILE")
        if args.jobs is not None or args.ray is not None or args.jsonl is not None:
            raise ConfigError("--jobs, --ray and --jsonl are for images; pages are done in one process")
        jobs, copies, links = _page_jobs(pages, args.output)
    else:
        if args.output or args.in_place or args.report:
            raise ConfigError("-o, --in-place and --report are for web pages; images are printed on stdout")
        photos = expand_photos(args.paths)
        if not photos:
            raise ImageError("no images found in the given folder(s)")

    check_collection_options(args)
    settings = load_settings(args, known_faces="gallery", caption_model="caption_model", beam="beam", jobs="jobs")
    check_folders(args, settings)
    wanted_caption = caption_model_given(args, settings)
    if wanted_caption is not None:
        check_caption_model(wanted_caption, settings.models_dir)
    if not pages and as_collection(args, settings):
        return _run_collection(args, settings, photos)
    from describe_local.pipeline import Describer

    with Describer.load(settings, speech=False, progress=progress_printer() if not args.quiet else None) as describer:
        check_caption(describer, settings, "alt-text", wanted=wanted_caption, note=not args.quiet)
        if pages:
            return _run_pages(describer, args, jobs, copies, links)
        return _run_images(describer, args, photos)


# -- images -------------------------------------------------------------------------------------


def _run_images(describer: Describer, args: argparse.Namespace, photos: list[Path]) -> int:
    """One line per image on stdout; the exit code (3 when an image cannot be read)."""
    writer = csv.writer(sys.stdout, lineterminator="\n") if args.csv else None
    if writer:
        writer.writerow(COLUMNS)
    failures: list[DescribeLocalError] = []
    started = time.perf_counter()
    for path, result in _described(describer, _announced(photos, args.progress, args.quiet), args):
        if isinstance(result, DescribeLocalError):
            failures.append(result)
            print(f"describe-local: error: {shown(result)}", file=sys.stderr, flush=True)
            record = {"path": str(path), "alt": "", "long_description": "", "partial": True, "text_found": None,
                      "errors": {"decode" if isinstance(result, ImageError) else "describe": shown(result)}}
        else:
            (alt, description) = result
            record = {"path": str(path), "alt": alt.alt, "long_description": alt.long_description,
                      "partial": alt.partial, "text_found": description.text_found, "errors": description.errors}
        _print_row(record, writer)
    if len(photos) > 1 and not args.quiet:
        _print_rate(len(photos), len(failures), time.perf_counter() - started)
    if not failures:
        return 0
    if all(isinstance(f, ImageError) for f in failures):
        return ImageError.exit_code
    return max(f.exit_code for f in failures)


def _print_row(record: dict[str, Any], writer: Any) -> None:
    """One image's line on stdout: a CSV row (``writer``) or a JSON line."""
    if writer:
        errors = "; ".join(f"{k}: {v}" for k, v in record["errors"].items())
        writer.writerow([shown(record["path"]), record["alt"], record["long_description"],
                         str(record["partial"]).lower(), record["text_found"] or "", errors])
    else:
        print(json_line(record))
    sys.stdout.flush()


def _print_rate(total: int, failed: int, seconds: float) -> None:
    print(f"{total - failed} of {total} images given alt text, "
          f"{total / max(seconds, 1e-9) * 60:.0f} images per minute", file=sys.stderr, flush=True)


def _run_collection(args: argparse.Namespace, settings: Any, photos: list[Path]) -> int:
    """Alt text for ``photos`` with worker processes, on Ray, or into a JSON-lines file; the exit code."""
    from describe_local.collection import TaskSpec, failed, run_collection

    note_if_missing(settings, "alt-text", note=not args.quiet)
    spec = TaskSpec("describe_local.collection.tasks:alt_text_photos", settings,
                    {"max_chars": args.max_chars, "names": args.names},
                    needs=needed_on_every_node(settings) if args.ray is not None else ())
    writer = csv.writer(sys.stdout, lineterminator="\n") if args.csv else None
    if writer:
        writer.writerow(COLUMNS)
    kinds: list[set[str]] = []
    started, count = time.perf_counter(), 0
    records = run_collection(photos, spec, jobs=settings.jobs, ray=args.ray, output=args.jsonl,
                             resume=args.resume, progress=bar_wanted(args), include_done=False)
    with contextlib.closing(records):
        for record in records:
            count += 1
            failure = failed(record)
            if failure:
                kinds.append(failure)
                for key in sorted(failure):
                    print(f"describe-local: error: {shown(record['errors'][key])}", file=sys.stderr, flush=True)
            row = {"path": record["path"], "alt": "", "long_description": "", "partial": True, "text_found": None,
                   **{k: v for k, v in record.items() if k != "sha256"}, "errors": record.get("errors") or {}}
            _print_row(row, writer)
    if not args.quiet:
        if count < len(photos):
            print(f"{len(photos) - count} of {len(photos)} images were already in {shown(args.jsonl)}",
                  file=sys.stderr)
        if count > 1:
            _print_rate(count, len(kinds), time.perf_counter() - started)
    if not kinds:
        return 0
    return ImageError.exit_code if all(k == {"decode"} for k in kinds) else 1


def _described(describer: Describer, paths: Iterable[Path], args: argparse.Namespace) -> Iterator[tuple[Path, Any]]:
    """``(path, (AltText, Description))`` per image, or ``(path, error)`` for one that failed."""
    from describe_local.alt_text.wording import alt_text
    from describe_local.results import DescribeOptions

    for path, result in describer.describe_all(paths, DescribeOptions(audio=False)):
        if isinstance(result, DescribeLocalError):
            yield path, result
        else:
            yield path, (alt_text(result, args.max_chars, args.names), result)


def _announced(paths: list[Path], forced: bool, quiet: bool = False) -> Iterator[Path]:
    """``paths``, printing ``n/N path`` on stderr as each starts (``--progress``, or a terminal
    and more than a few; never with ``quiet``)."""
    show = not quiet and (forced or (len(paths) > PROGRESS_FROM and sys.stderr.isatty()))
    for index, path in enumerate(paths, 1):
        if show:
            print(f"{index}/{len(paths)} {shown(path)}", file=sys.stderr, flush=True)
        yield path


# -- pages --------------------------------------------------------------------------------------


Job = tuple[Path, Path, Path]  # a page, its site's folder, where it is written
Link = tuple[Path, Path | None, Path]  # a symbolic link, where it leads inside its site (None: out), its copy


def _page_jobs(inputs: list[Path], output: Path | None) -> tuple[list[Job], list[tuple[Path, Path]], list[Link]]:
    """``(page, site root, where it goes)`` for each page, ``(file, target)`` for each other
    file of a site to copy (with ``-o`` only), and each symbolic link met (never followed: a
    page behind one is not read, a file behind one not copied). Checked before any model loads."""
    from describe_local.alt_text.site import is_page, link_inside, site_files

    jobs: list[Job] = []
    copies: list[tuple[Path, Path]] = []
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


def _run_pages(describer: Describer, args: argparse.Namespace, jobs: list[Job],
               copies: list[tuple[Path, Path]], links: list[Link]) -> int:
    """Plan every page, describe each image once, write the pages, copies and links; the exit code."""
    from describe_local.alt_text.site import copy_atomic, finish_page, plan_page, write_atomic

    plans = [plan_page(page, root) for page, root, _ in jobs]
    images = list(dict.fromkeys(path for plan in plans for path in plan.images()))
    described: dict[Path, AltText | str] = {}
    for path, result in _described(describer, _announced(images, args.progress, args.quiet), args):
        described[path] = shown(result) if isinstance(result, DescribeLocalError) else result[0]
    reports: list[PageReport] = []
    code = 0
    for plan, (page, _, target) in zip(plans, jobs, strict=True):
        data, report = finish_page(plan, described)
        try:
            if data is not None:
                if args.in_place:
                    write_atomic(page.with_name(page.name + ".bak"), plan.raw, like=page)
                write_atomic(target, data, like=page)
            elif not args.in_place and plan.error is None:
                copy_atomic(page, target)
            report.output = str(target) if plan.error is None else None
        except OutputError as exc:
            report.error, code = str(exc), OutputError.exit_code
        if report.error and not code:
            code = PageError.exit_code
        reports.append(report)
    for source, target in copies:
        try:
            copy_atomic(source, target)
        except OutputError as exc:  # e.g. a full disk: said, and the report still written
            print(f"describe-local: error: {shown(exc)}", file=sys.stderr)
            code = OutputError.exit_code
    link_reports = _links(links, args.in_place)
    if any(r["status"] == "failed" for r in link_reports):
        code = code or OutputError.exit_code
    _summarise(reports, args.report, link_reports)
    return code


def _links(links: list[Link], in_place: bool) -> list[dict[str, Any]]:
    """Each symbolic link of the sites: made again as a link in the copy when it stays inside
    its site, else skipped, never followed; one record each for the report."""
    import os

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


def _summarise(reports: list[PageReport], report_file: Path | None, links: list[dict[str, Any]]) -> None:
    """The closing summary on stderr, and the whole report as JSON in ``report_file``."""
    from describe_local.alt_text.site import SKIPPED, write_atomic

    totals = _totals(reports)
    line = (f"{totals['pages']} page{'s' * (totals['pages'] != 1)}, {totals['changed']} changed: "
            f"{totals['filled']} image{'s' * (totals['filled'] != 1)} given alt text")
    if totals["partial"]:
        line += f" ({totals['partial']} partial)"
    line += f", {totals['kept']} kept, {totals['decorative']} decorative, {totals['skipped']} skipped"
    reasons = totals["skipped_because"]
    if reasons:
        line += " (" + ", ".join(f"{n} {why}" for why, n in reasons.items()) + ")"
    if links:
        copied = sum(link["status"] == "copied as a link" for link in links)
        line += f"; {len(links)} symbolic link{'s' * (len(links) != 1)}: {copied} copied as links"
    print(line, file=sys.stderr)
    for link in links:
        if link["status"] in ("skipped", "failed"):
            print(f"  {link['status']} link {shown(link['path'])} -> {shown(link['leads_to'])}: {link['reason']}",
                  file=sys.stderr)
    for report in reports:
        if report.error:
            print(f"describe-local: error: {shown(report.page)}: {shown(report.error)}", file=sys.stderr)
        for image in report.images:
            if image.status == SKIPPED and image.reason != "remote image (not fetched)":
                print(f"  skipped {shown(report.page)}:{image.line} {shown(image.src)}: {image.reason}",
                      file=sys.stderr)
    sys.stderr.flush()
    if report_file is not None:
        body = {"pages": [dataclasses.asdict(r) for r in reports], "links": links, "totals": totals}
        write_atomic(report_file, (json.dumps(json_safe(body), ensure_ascii=False, indent=2) + "\n").encode())


def _totals(reports: list[PageReport]) -> dict[str, Any]:
    counts: dict[str, Any] = {"pages": len(reports), "changed": sum(r.changed for r in reports),
                              "filled": 0, "partial": 0, "kept": 0, "decorative": 0, "skipped": 0}
    because: dict[str, int] = {}
    for report in reports:
        for image in report.images:
            counts[image.status] += 1
            counts["partial"] += image.status == "filled" and image.partial
            if image.status == "skipped":
                because[image.reason or "?"] = because.get(image.reason or "?", 0) + 1
    counts["skipped_because"] = because
    return counts
