"""``describe-local video IN [-o OUT]``: an audio description track for a video, between the lines of dialogue.

Writes ``NAME.described.vtt``, ``NAME.narration.m4a``, ``NAME.described.mp4`` (the video with a
second, described audio track) and ``NAME.html`` into OUT, and prints what was narrated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from describe_local.cli._choices import check_speech_options
from describe_local.cli._common import add_gallery_option, load_settings, progress_printer, shown
from describe_local.errors import OutputError, VideoError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "video",
        help="audio-describe a video: narration between the lines of dialogue",
        description=(
            "Describe what each shot of a video shows (caption, the people you know, text on screen) "
            "and speak it in the pauses of the dialogue. Writes NAME.described.vtt, NAME.narration.m4a, "
            "NAME.described.mp4 (the video with a second audio track) and NAME.html into OUT. "
            "Narration that finds no pause is listed, never spoken over dialogue unless --allow-overlap."
        ),
    )
    parser.add_argument("video", type=Path, metavar="IN", help="the video file")
    parser.add_argument("-o", "--output", type=Path, metavar="OUT", default=Path("out"),
                        help="folder for the outputs (default: ./out; made if missing)")
    parser.add_argument("--lang", metavar="CODE", help="language to narrate in, e.g. es")
    parser.add_argument("--voice", metavar="KEY", help="an installed voice to narrate with")
    add_gallery_option(parser)
    parser.add_argument("--allow-overlap", action="store_true",
                        help="speak narration that finds no pause over the dialogue (ducked) instead of dropping it")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Describe ``args.video`` into ``args.output``; the exit code."""
    from describe_local.pipeline import DescribeOptions, Describer
    from describe_local.video.describe import describe_video
    from describe_local.video.frames import probe

    settings = load_settings(args, known_faces="gallery", lang="lang", voice="voice")
    source: Path = args.video
    if not source.is_file():
        raise VideoError(f"{shown(source)} is not a file")
    probe(source)  # a file that is not a video fails here, before any model loads
    out_dir: Path = args.output
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make {shown(out_dir)}: {exc.strerror or exc}") from None
    check_speech_options(args, settings)
    progress = _progress_line() if sys.stderr.isatty() else None
    with Describer.load(settings, progress=progress_printer()) as describer:
        options = DescribeOptions(lang=args.lang, voice=args.voice)
        report = describe_video(source, out_dir, describer, options, allow_overlap=args.allow_overlap,
                                progress=progress)
    if progress is not None:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return 0
    print(f"{shown(source)}: {len(report.shots)} shots, {len(report.cues)} narrations placed, "
          f"{len(report.dropped)} without a pause ({report.seconds:.1f} s)")
    for cue in report.cues:
        flag = " (over dialogue)" if cue.overlaps else ""
        print(f"  {cue.start:7.2f} {shown(cue.text)}{flag}")
    for at, text in report.dropped:
        print(f"  {at:7.2f} not narrated, no pause: {shown(text)}")
    for error in report.errors:
        print(f"  ({shown(error)})")
    for note in report.notes:
        print(f"  ({shown(note)})")
    for path in report.files:
        print(f"  wrote {shown(path)}")
    return 0


def _progress_line():
    """A progress printer for a terminal: one line rewritten in place, with the time left."""
    started = time.perf_counter()

    def say(what: str, done: float) -> None:
        elapsed = time.perf_counter() - started
        left = f", about {elapsed * (1 - done) / done:.0f} s left" if done > 0.02 else ""
        print(f"\r\033[K{what}: {done:.0%}{left}", end="", file=sys.stderr, flush=True)

    return say
