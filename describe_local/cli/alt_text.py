"""``describe-local alt-text PATH...``: alt text for images, and for the images of web pages.

- Images and folders of images: one line per image on stdout (JSON lines, or ``--csv``) with
  ``path``, ``alt``, ``long_description``, ``partial``, ``text_found`` and ``errors``.
- ``.html`` pages, or folders holding a static site: every ``<img>`` with no ``alt`` (or a
  placeholder one) gets one by the W3C alt decision tree (``cli/alt_text_pages.py``), into a
  folder of the changed pages (``-o DIR``; ``--copy-all`` for the whole site) or the pages
  themselves (``--in-place``, keeping each changed page's original as ``PAGE.bak``). A summary
  goes to stderr, and with ``--report FILE`` every page and image as JSON.
- ``--audit``: nothing changes; a report of every image (HTML and JSON into ``-o DIR``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
import time
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
    load_settings,
    needed_on_every_node,
    progress_printer,
    shown,
)
from describe_local.cli.alt_text_pages import (
    PROGRESS_FROM,
    announced,
    described_images,
    page_jobs,
    run_audit,
    run_pages,
)
from describe_local.errors import ConfigError, DescribeLocalError, ImageError

if TYPE_CHECKING:
    from describe_local.pipeline import Describer

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
            "that has no alt attribute (or a placeholder: a file name, 'image', one alt on many images) "
            "one, by the W3C alt decision tree: an image that is all a link holds names the linked "
            "page; a captioned image, a spacer or a single-colour rule gets alt=\"\"; others are "
            "described. alt=\"\" already there is kept (it marks a decorative image); remote and data: "
            "images are skipped, never fetched. --audit changes nothing and reports every image."
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
                        help="pages: write the pages that change, and the files they show, into DIR (same tree); "
                        "with --audit: write the report (report.html, report.json) into DIR")
    parser.add_argument("--copy-all", action="store_true",
                        help="pages with -o: copy the whole site, unchanged pages and every other file too")
    parser.add_argument("--audit", action="store_true",
                        help="pages: change nothing, load no model; report every image: missing, decorative, "
                        "placeholder, duplicate, too long (over --max-chars), linked image without a name, generated")
    parser.add_argument("--keep-placeholders", action="store_true",
                        help="pages: keep placeholder alts (file names, 'image', 'logo', one alt on many images) "
                        "instead of replacing them; they are still listed")
    parser.add_argument("--describe-captioned", action="store_true",
                        help="pages: describe images whose caption or link text already says what they show "
                        "(by default they get alt=\"\", so that nothing is read twice)")
    parser.add_argument("--mark", action="store_true",
                        help='pages: mark each alt written with data-alt-generated="describe-local" ("describe-local '
                        'partial" when no caption model ran), so that a CMS or a later audit can find them')
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
    page_only = args.audit or args.copy_all or args.keep_placeholders or args.describe_captioned or args.mark
    if page_only and not pages:
        raise ConfigError("--audit, --copy-all, --keep-placeholders, --describe-captioned and --mark are for web "
                          "pages (.html files or site folders)")
    if args.audit:
        if args.in_place or args.copy_all:
            raise ConfigError("--audit changes nothing: leave out --in-place and --copy-all (-o DIR is for its report)")
        jobs, _, _ = page_jobs(pages, None)
        if args.output is not None:
            page_jobs(pages, args.output)  # the same checks: a report folder outside the site
        return run_audit(args, jobs)
    if args.copy_all and not args.output:
        raise ConfigError("--copy-all goes with -o DIR")
    if pages:
        if bool(args.output) == bool(args.in_place):
            raise ConfigError("for web pages, give -o DIR (a copy of the site) or --in-place (with .bak files)")
        if args.csv:
            raise ConfigError("--csv is for images; pages get --report FILE")
        if args.jobs is not None or args.ray is not None or args.jsonl is not None:
            raise ConfigError("--jobs, --ray and --jsonl are for images; pages are done in one process")
        jobs, copies, links = page_jobs(pages, args.output)
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
            return run_pages(describer, args, jobs, copies, links)
        return _run_images(describer, args, photos)


# -- images -------------------------------------------------------------------------------------


def _run_images(describer: Describer, args: argparse.Namespace, photos: list[Path]) -> int:
    """One line per image on stdout; the exit code (3 when an image cannot be read)."""
    writer = csv.writer(sys.stdout, lineterminator="\n") if args.csv else None
    if writer:
        writer.writerow(COLUMNS)
    failures: list[DescribeLocalError] = []
    started = time.perf_counter()
    for path, result in described_images(describer, announced(photos, args.progress, args.quiet), args):
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
                    {"max_chars": args.max_chars, "names": args.names, "sequential": False},  # in turn on one core
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
