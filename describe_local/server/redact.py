"""Where things live on the server is the admin's business: paths are taken out of what others see.

Messages from the stages and the store name their folders ("... is not
installed in /srv/describe/models: ..."), which helps whoever runs the server
and tells anyone else how the machine is laid out. Responses to anyone but the
admin pass their texts through :func:`redact_paths`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from describe_local.settings import Settings

HIDDEN = "[a path on the server]"
# An absolute or home-relative path standing on its own ("and/or" or "1/2" are not).
_PATH = re.compile(r"(?<![\w/.~-])~?/[^\s'\"`<>|]*[^\s'\"`<>|.,;:!?)\]]")


def server_folders(settings: Settings) -> list[str]:
    """The folders of ``settings`` (and their parents' home), longest first, as they appear in messages."""
    folders = {settings.models_dir, settings.known_faces, settings.state_dir, settings.output_dir, Path.home()}
    return sorted({str(Path(f)) for f in folders if str(f) not in ("", "/", ".")}, key=len, reverse=True)


def redact_paths(text: str, folders: Iterable[str] = ()) -> str:
    """``text`` with every filesystem path replaced by a neutral phrase.

    The known ``folders`` go first, whole, since their names may hold spaces
    that the general pattern stops at.
    """
    for folder in folders:
        if folder in text:
            text = re.sub(re.escape(folder) + r"(?:/[^\s'\"`<>|]*[^\s'\"`<>|.,;:!?)\]])?", HIDDEN, text)
    return _PATH.sub(HIDDEN, text)


def redact_tree(value: Any, folders: Iterable[str] = ()) -> Any:
    """Every string in a JSON-like ``value`` (dicts, lists) passed through :func:`redact_paths`."""
    folders = list(folders)
    if isinstance(value, str):
        return redact_paths(value, folders)
    if isinstance(value, dict):
        return {k: redact_tree(v, folders) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v, folders) for v in value]
    return value
