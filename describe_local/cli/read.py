"""``describe-local read PHOTO...``: read all the text in photos aloud, in reading order.

A document channel, as Seeing AI has: no caption and no people, every line of
text (a description speaks only the first lines). Same output options as
``describe``.
"""

from __future__ import annotations

import argparse

from describe_local.cli.describe import add_output_options, run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "read",
        help="read all the text in photos out loud, in reading order (one MP3 per photo)",
        description=(
            "Read every line of text in one or more photos (signs, letters, receipts, pages), "
            "in reading order, and write it spoken as an MP3 per photo. Text in a language "
            "with an installed voice is read with that voice."
        ),
    )
    add_output_options(parser)
    parser.set_defaults(func=run, read=True)
