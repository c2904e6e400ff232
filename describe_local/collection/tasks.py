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
from describe_local.pipeline import ANALYSIS_STAGES, DescribeOptions, Describer, Description
from describe_local.settings import Settings


class _DescriberTask:
    """Common to the tasks: a loaded describer, a photo by path or by bytes, closed at the end."""

    def __init__(self, describer: Describer) -> None:
        self.describer = describer

    def __call__(self, path: Path) -> dict[str, Any]:
        return self.fields(self.describe(path))

    def from_bytes(self, path: Path, data: bytes) -> dict[str, Any]:
        """The photo's bytes, sent from the machine that holds it, named by its ``path`` there."""
        return self.fields(self.describe(data, str(path)))

    def describe(self, source: Path | bytes, name: str | None = None) -> Description:
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

    def describe(self, source: Path | bytes, name: str | None = None) -> Description:
        if self.read:
            return self.describer.read(source, self.options, name=name)
        return self.describer.describe(source, self.options, name=name)

    def fields(self, result: Description) -> dict[str, Any]:
        record = result.to_json()
        if result.mp3 is not None:
            record[FILES] = {"audio": result.mp3}
        return record


class AltTextTask(_DescriberTask):
    """``alt-text`` for an image: ``alt``, ``long_description``, ``partial``, ``text_found``, ``errors``."""

    def __init__(self, describer: Describer, max_chars: int, names: bool, sequential: bool = False) -> None:
        super().__init__(describer)
        self.max_chars = max_chars
        self.names = names
        self.options = DescribeOptions(audio=False, sequential=sequential)

    def describe(self, source: Path | bytes, name: str | None = None) -> Description:
        return self.describer.describe(source, self.options, name=name)

    def fields(self, result: Description) -> dict[str, Any]:
        from describe_local.alt_text.wording import alt_text

        alt = alt_text(result, self.max_chars, self.names)
        return {"alt": alt.alt, "long_description": alt.long_description, "partial": alt.partial,
                "text_found": result.text_found, "errors": result.errors}


def describe_photos(settings: Settings, *, read: bool = False, lang: str | None = None, voice: str | None = None,
                    speed: float | None = None, audio: bool = True, sequential: bool = False) -> DescribeTask:
    """The task of ``describe`` (``read=True``: of ``read``), with the command's options
    (``sequential``: each photo's stages one after another, as a worker with one core runs them)."""
    stages = ("text",) if read else ANALYSIS_STAGES
    describer = Describer.load(settings, stages=stages, speech=audio)
    options = DescribeOptions(lang=lang, voice=voice, speed=speed, audio=audio, sequential=sequential)
    return DescribeTask(describer, options, read)


def alt_text_photos(settings: Settings, *, max_chars: int, names: bool = False,
                    sequential: bool = False) -> AltTextTask:
    """The task of ``alt-text`` for images (``sequential``: each photo's stages one after another)."""
    return AltTextTask(Describer.load(settings, speech=False), max_chars, names, sequential)
