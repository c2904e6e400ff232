"""``describe-local ask PHOTO "question"``: answer a question about a photo, out loud.

OFA answers with the same weights that caption (visual question answering);
the answer is printed and spoken into an MP3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from describe_local.cli._common import (
    add_caption_options,
    check_beam,
    load_settings,
    mp3_namer,
    progress_printer,
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
    parser.add_argument("question", metavar="QUESTION", help="the question, in English")
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
    say = progress_printer()
    with Describer.load(settings, stages=("caption",), speech=audio, progress=say) as describer:
        result = describer.ask(args.photo, args.question, DescribeOptions(audio=audio, lang="en"))
    if result.mp3 is not None:
        result.audio = str(write_mp3(mp3_namer(args.output, settings.output_dir, 1, "-answer")(args.photo), result.mp3))
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(result.answer)
        if result.audio:
            print(f"  audio: {result.audio}", file=sys.stderr)
    return 0
