"""Names from the file system (file and folder names, the gallery's people) as text that is
safe everywhere they go: JSON, speech, URLs, the web page, a terminal.

On Linux a name is bytes; ``os.fsdecode`` turns each byte of a name that is not UTF-8 (a
Latin-1 "José" copied from an older system: ``Jos\\xe9``) into a lone surrogate, U+DC80 to
U+DCFF, which no UTF-8 encoder accepts. :func:`undecodable_escaped` writes each such byte as
the four characters ``\\xNN`` instead: valid text, the same on every front end, and the same
bytes back with :func:`real_name`, so a name shown escaped can be used to find the real one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Lone surrogates: os.fsdecode turns each byte of a file name that is not UTF-8 into U+DC80..U+DCFF.
_SURROGATES = re.compile("[\ud800-\udfff]")


def _byte_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def undecodable_escaped(text: str) -> str:
    """``text`` with the bytes of a non-UTF-8 file name written as ``\\xNN`` (valid UTF-8 from then on)."""
    return _SURROGATES.sub(_byte_escape, text)


def is_escaped(text: str) -> bool:
    """Whether ``text`` holds bytes that are not UTF-8 (and so differs from its escaped form)."""
    return _SURROGATES.search(text) is not None


def real_name(shown: str, names: Iterable[str]) -> str | None:
    """The one of ``names`` (real, as ``os.fsdecode`` gives them) that is ``shown`` itself or
    shows as ``shown`` once escaped; ``None`` when none does. The exact name wins."""
    escaped = None
    for name in names:
        if name == shown:
            return name
        if escaped is None and undecodable_escaped(name) == shown:
            escaped = name
    return escaped
