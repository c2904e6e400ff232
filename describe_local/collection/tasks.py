"""The photo tasks of the commands: describe, read and alt text, built on the describer's public methods.

Each factory runs once per worker (its models load then) and returns a task that is called
for each photo with its path, or with its bytes where they travelled to another machine
(``from_bytes``). An MP3 comes back as bytes under :data:`~describe_local.collection.spec.FILES`
for the driver to write, so a run on a Ray cluster still writes every MP3 on the machine it
was started from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from describe_local.collection.spec import FILES
from describe_local.errors import DescribeLocalError
from describe_local.pipeline import ANALYSIS_STAGES, DescribeOptions, Describer, Description
from describe_local.settings import Settings

UPLOAD = "<upload>"  # how a decode error names a photo given as bytes


class _DescriberTask:
    """Common to the tasks: a loaded describer, a photo by path or by bytes, closed at the end."""

    def __init__(self, describer: Describer) -> None:
        self.describer = describer

    def __call__(self, path: Path) -> dict[str, Any]:
        return self.fields(self.describe(path))

    def from_bytes(self, path: Path, data: bytes) -> dict[str, Any]:
        try:
            return self.fields(self.describe(data))
        except DescribeLocalError as exc:  # name the photo, as when it is read from its path
            message = str(exc)
            if not message.startswith(UPLOAD):
                raise
            try:
                named = type(exc)(f"{path}{message[len(UPLOAD):]}")
            except TypeError:  # an error class with more to say than a message: as it is
                raise exc from None
            raise named from None

    def describe(self, source: Path | bytes) -> Description:
        raise NotImplementedError

    def fields(self, result: Description) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        self.describer.close()


class DescribeTask(_DescriberTask):
    """``describe`` (or with ``read``, ``read``): the description's JSON, and its MP3 as bytes."""

    def __init__(self, describer: Describer, options: DescribeOptions, read: bool) -> None:
        super().__init__(describer)
        self.options = options
        self.read = read

    def describe(self, source: Path | bytes) -> Description:
        if self.read:
            return self.describer.read(source, self.options)
        return self.describer.describe(source, self.options)

    def fields(self, result: Description) -> dict[str, Any]:
        record = result.to_json()
        if result.mp3 is not None:
            record[FILES] = {"audio": result.mp3}
        return record


class AltTextTask(_DescriberTask):
    """``alt-text`` for an image: ``alt``, ``long_description``, ``partial``, ``text_found``, ``errors``."""

    def __init__(self, describer: Describer, max_chars: int, names: bool) -> None:
        super().__init__(describer)
        self.max_chars = max_chars
        self.names = names

    def describe(self, source: Path | bytes) -> Description:
        return self.describer.describe(source, DescribeOptions(audio=False))

    def fields(self, result: Description) -> dict[str, Any]:
        from describe_local.say.alt_text import alt_text

        alt = alt_text(result, self.max_chars, self.names)
        return {"alt": alt.alt, "long_description": alt.long_description, "partial": alt.partial,
                "text_found": result.text_found, "errors": result.errors}


def describe_photos(settings: Settings, *, read: bool = False, lang: str | None = None, voice: str | None = None,
                    length_scale: float | None = None, audio: bool = True, sequential: bool = False) -> DescribeTask:
    """The task of ``describe`` (``read=True``: of ``read``), with the command's options."""
    stages = ("text",) if read else ANALYSIS_STAGES
    describer = Describer.load(settings, stages=stages, speech=audio)
    options = DescribeOptions(lang=lang, voice=voice, length_scale=length_scale, audio=audio, sequential=sequential)
    return DescribeTask(describer, options, read)


def alt_text_photos(settings: Settings, *, max_chars: int, names: bool = False) -> AltTextTask:
    """The task of ``alt-text`` for images."""
    return AltTextTask(Describer.load(settings, speech=False), max_chars, names)
