"""``describe-local ask PHOTO "question"``: answer a question about a photo, out loud.

OFA answers with the same weights that caption (visual question answering);
the answer is printed and spoken into an MP3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from describe_local.cli._choices import caption_model_given, check_caption_model, check_folders
from describe_local.cli._common import (
    add_caption_options,
    check_beam,
    json_line,
    load_settings,
    mp3_namer,
    progress_printer,
    shown,
    write_mp3,
)
from describe_local.errors import DescribeLocalError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="answer a question about a photo, out loud",
        description=(
            'Answer a question about a photo, e.g. ask car.jpg "what colour is the car?". '
            "Prints the answer and writes it spoken as an MP3."
        ),
    )
    parser.add_argument("photo", type=Path, metavar="PHOTO")
    parser.add_argument(
        "question", metavar="QUESTION",
        help="the question, in English (one longer than the model reads is cut to fit, with a note on stderr)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="OUT",
        help="the MP3 to write (default: out/PHOTO-answer.mp3); a folder puts it there",
    )
    parser.add_argument("--no-audio", action="store_true", help="print the answer only; no MP3")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    add_caption_options(parser, "the OFA model to ask")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from describe_local.pipeline import DescribeOptions, Describer

    if not args.question.split():
        raise DescribeLocalError("the question is empty: ask something about the photo")
    check_beam(args)
    settings = load_settings(args, caption_model="caption_model", beam="beam")
    audio = not args.no_audio
    # Checked before any model loads, so that a bad -o or model costs nothing.
    target = mp3_namer(args.output, settings.output_dir, [args.photo], "-answer") if audio else None
    check_folders(args, settings)
    wanted = caption_model_given(args, settings)
    if wanted is not None:
        check_caption_model(wanted, settings.models_dir)
    say = progress_printer()
    with Describer.load(settings, stages=("caption",), speech=audio, progress=say) as describer:
        result = describer.ask(args.photo, args.question, DescribeOptions(audio=audio, lang="en"))
    if result.mp3 is not None and target is not None:
        result.audio = str(write_mp3(target(args.photo), result.mp3))
    if args.json:
        print(json_line(result.to_json()))
    else:
        print(shown(result.answer))
    for note in result.notes:
        print(f"note: {shown(note)}", file=sys.stderr)
    if result.audio and not args.json:
        print(f"  audio: {shown(result.audio)}", file=sys.stderr)
    return 0
