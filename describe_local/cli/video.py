"""``describe-local video IN [-o OUT]``: an audio description track for a video, between the lines of dialogue.

Writes ``NAME.described.mp4`` (the video with the described audio track first, flagged for the
visually impaired, and the original sound second), ``NAME.described.vtt``, ``NAME.narration.m4a``,
``NAME.html`` with what it plays (``NAME.original.mp4``, ``NAME.description.mp3``) and, with
``--extended``, ``NAME.extended.mp4`` and ``NAME.extended.vtt`` into OUT, and prints what was narrated.
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
            "and speak it in the pauses of the dialogue. Writes into OUT: NAME.described.mp4 (the video with "
            "the audio description as its first, default audio track, flagged for the visually impaired, and the "
            "original sound second), NAME.described.vtt (the descriptions heard in it), NAME.narration.m4a (the "
            "narration alone), and NAME.html, a player with an audio description switch that works in every browser "
            "(it plays NAME.original.mp4 and NAME.description.mp3). Narration that finds no pause is never spoken "
            "over dialogue: the page pauses the video for it, --extended writes NAME.extended.mp4 and "
            "NAME.extended.vtt where the picture holds still while it is spoken, and --allow-overlap speaks it over "
            "the dialogue (lowered) instead."
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
    parser.add_argument("--extended", action="store_true",
                        help="also write NAME.extended.mp4/.vtt: the picture holds still while narration that finds "
                        "no pause is spoken (extended audio description, WCAG 1.2.7); nothing is left out")
    parser.add_argument("--original-first", action="store_true",
                        help="keep the original sound as the first, default audio track of the MP4s "
                        "(the description second)")
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
                                extended=args.extended, original_first=args.original_first, progress=progress)
    if progress is not None:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return 0
    held = sum(cue.held for cue in report.cues)
    print(f"{shown(source)}: {len(report.shots)} shots, {len(report.cues) - held} narrations in pauses, "
          f"{held} with the video held, {len(report.dropped)} left out ({report.seconds:.1f} s)")
    if held and report.extended_duration is None:
        print(f"  ({held} narrations find no pause: the page pauses the video for them; --extended writes an MP4 "
              "that does)")
    if report.extended_duration is not None:
        print(f"  extended video: {report.extended_duration:.2f} s ({report.duration:.2f} s and "
              f"{report.extended_duration - report.duration:.2f} s held)")
    for cue in report.cues:
        flag = " (over dialogue)" if cue.overlaps else f" (video held {cue.hold:.1f} s)" if cue.held else ""
        print(f"  {cue.start:7.2f} {shown(cue.text)}{flag}")
        if cue.fuller is not None:
            print(f"          in full, with the video held {cue.fuller.hold:.1f} s: {shown(cue.fuller.text)}")
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
