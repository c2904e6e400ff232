"""What the CLI says when a command that describes has no caption model: in one place.

A caption model asked for by name (``--caption-model`` or the setting given on the
command line) that does not load is an error; the default one missing is a note on
stderr, with how to install one, and the descriptions go on without a caption.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from describe_local.cli._common import caption_installed
from describe_local.errors import ModelNotInstalled

if TYPE_CHECKING:
    from describe_local.pipeline import Describer
    from describe_local.settings import Settings

INSTALL = "install one with `describe-local models pull ofa-tiny` (or `describe-local models import FOLDER` offline)"
WITHOUT = {  # what goes missing without a caption, per command
    "describe": "descriptions have no caption",
    "alt-text": "alt text is partial (people and text only)",
}


def no_caption_note(command: str) -> str:
    """The note for a machine where no caption model is installed."""
    return f"note: no caption model is installed, so {WITHOUT[command]}; {INSTALL}."


def check_caption(describer: Describer, settings: Settings, command: str, *, wanted: str | None,
                  note: bool) -> None:
    """After loading: raise :class:`ModelNotInstalled` when the caption model ``wanted`` by name did
    not load; else, when ``note``, print why there is no caption (not installed, or installed but
    unusable here, e.g. it needs torch) on stderr."""
    caption = describer.status()["caption"]
    if caption.loaded:
        return
    if wanted is not None:  # asked for by name: its absence is an error, not a note
        raise ModelNotInstalled(caption.detail or "no caption model loaded")
    if note:
        installed_but_off = caption_installed(settings) and caption.detail
        print(f"note: {WITHOUT[command]}: {caption.detail}" if installed_but_off else no_caption_note(command),
              file=sys.stderr, flush=True)


def note_if_missing(settings: Settings, command: str, *, note: bool) -> None:
    """Before work spread over workers (which load the models themselves): the note, when no
    caption model is installed."""
    if note and not caption_installed(settings):
        print(no_caption_note(command), file=sys.stderr, flush=True)
