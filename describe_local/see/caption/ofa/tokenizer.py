"""OFA's tokenizer: GPT-2/BART byte-level BPE plus ``<code_*>`` and ``<bin_*>`` tokens.

``vocab.json`` and ``merges.txt`` are the BART files shipped with every OFA
checkpoint. OFA appends 8192 image-code tokens ``<code_0>``... and 1000
location tokens ``<bin_0>``... after the BPE vocabulary (unless the vocabulary
already lists them). In text, those tokens are cut out whole and the text
between them is BPE-encoded as it is, spaces included, which is what the
reference ``OFATokenizer`` does.

Decoding needs only each id's bytes: :class:`TokenTexts` keeps them in one block
(some 1 MB for the 59457 tokens, where the vocabulary's dicts took some 10 MB), and
:class:`PromptTokenizer` is what the ONNX runtime keeps: its prompts' ids and the
block, read from a file it writes beside the model (1 ms, where reading the tokenizer
files took 0.1 s and left some 5 MB of freed Python objects resident); the whole
BPE is read only when another text (a question) is encoded.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import sys
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from describe_local.errors import ModelNotInstalled

log = logging.getLogger(__name__)

CODE_TOKENS = 8192
BIN_TOKENS = 1000
_SPECIAL_TOKEN = re.compile(r"<(?:code|bin)_\d+>")


@lru_cache(maxsize=1)
def _pieces() -> Any:
    """GPT-2's pre-tokenisation: contractions, letters, digits, other symbols, spaces (``regex``,
    imported here: captioning from cached prompt ids never needs it)."""
    import regex

    return regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


@lru_cache(maxsize=1)
def byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@lru_cache(maxsize=1)
def _byte_of_char() -> dict[str, int]:
    return {c: b for b, c in byte_alphabet().items()}


def token_bytes(token: str) -> bytes:
    """What ``token`` (a vocabulary entry) decodes to: ``<code_*>``/``<bin_*>`` as written, else its bytes
    through GPT-2's alphabet (characters outside it dropped)."""
    if _SPECIAL_TOKEN.fullmatch(token):
        return token.encode("utf-8")
    byte_of = _byte_of_char()
    return bytes(byte_of[c] for c in token if c in byte_of)


@dataclass(frozen=True)
class TokenTexts:
    """Every token id's bytes in one block, for decoding: id ``i`` is ``blob[ends[i - 1]:ends[i]]``."""

    blob: bytes
    ends: array  # 'Q': the end offset of each id's bytes; ids the vocabulary skips are empty
    special: frozenset[int]  # dropped when decoding with skip_special

    @classmethod
    def of(cls, vocab: dict[str, int], special: Iterable[int]) -> TokenTexts:
        tokens = [b""] * (max(vocab.values(), default=-1) + 1)
        for token, i in vocab.items():
            tokens[i] = token_bytes(token)
        ends = array("Q", itertools.accumulate(len(t) for t in tokens))
        return cls(blob=b"".join(tokens), ends=ends, special=frozenset(special))

    def __len__(self) -> int:
        return len(self.ends)

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """As :meth:`OFATokenizer.decode`: ids outside the vocabulary decode to nothing."""
        out = bytearray()
        ends, count = self.ends, len(self.ends)
        for i in map(int, ids):
            if (skip_special and i in self.special) or not 0 <= i < count:
                continue
            out += self.blob[ends[i - 1] if i else 0 : ends[i]]
        return out.decode("utf-8", errors="replace")


@dataclass
class OFATokenizer:
    """Text <-> token ids for an OFA checkpoint."""

    vocab: dict[str, int]
    merge_ranks: dict[tuple[str, str], int]
    bos_id: int = 0
    pad_id: int = 1
    eos_id: int = 2
    unk_id: int = 3
    _inverse: dict[int, str] = field(default_factory=dict, repr=False)
    _cache: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, folder: Path) -> OFATokenizer:
        """Read ``vocab.json`` and ``merges.txt`` from ``folder``."""
        folder = Path(folder)
        try:
            vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
            lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError) as exc:
            raise ModelNotInstalled(f"cannot read the OFA tokenizer files in {folder}: {exc}") from exc
        merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        ranks = {pair: rank for rank, pair in enumerate(merges) if len(pair) == 2}
        vocab = dict(vocab)
        next_id = max(vocab.values()) + 1
        for name, count in (("code", CODE_TOKENS), ("bin", BIN_TOKENS)):
            for i in range(count):
                token = f"<{name}_{i}>"
                if token not in vocab:
                    vocab[token] = next_id
                    next_id += 1
        return cls(
            vocab=vocab,
            merge_ranks=ranks,
            bos_id=vocab.get("<s>", 0),
            pad_id=vocab.get("<pad>", 1),
            eos_id=vocab.get("</s>", 2),
            unk_id=vocab.get("<unk>", 3),
        )

    def __post_init__(self) -> None:
        self._inverse = {i: t for t, i in self.vocab.items()}
        self._special = {self.bos_id, self.pad_id, self.eos_id, self.unk_id}
        if "<mask>" in self.vocab:
            self._special.add(self.vocab["<mask>"])

    def __len__(self) -> int:
        return len(self.vocab)

    def bin_id(self, index: int) -> int:
        return self.vocab[f"<bin_{index}>"]

    def encode(self, text: str, *, bos: bool = True, eos: bool = True) -> list[int]:
        """Token ids of ``text``, with ``<s>`` before and ``</s>`` after unless told not to."""
        ids = [self.bos_id] if bos else []
        position = 0
        for match in _SPECIAL_TOKEN.finditer(text):
            ids += self._encode_plain(text[position : match.start()])
            token = match.group(0)
            ids.append(self.vocab.get(token, self.unk_id))
            position = match.end()
        ids += self._encode_plain(text[position:])
        if eos:
            ids.append(self.eos_id)
        return ids

    def _encode_plain(self, text: str) -> list[int]:
        alphabet = byte_alphabet()
        ids = []
        for piece in _pieces().findall(text):
            chars = "".join(alphabet[b] for b in piece.encode("utf-8"))
            ids += [self.vocab.get(sub, self.unk_id) for sub in self._bpe(chars)]
        return ids

    def _bpe(self, word: str) -> list[str]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        unranked = len(self.merge_ranks)
        while len(parts) > 1:
            # merge every occurrence of the best-ranked adjacent pair, as GPT-2 does
            first, second = min(
                itertools.pairwise(parts), key=lambda pair: self.merge_ranks.get(pair, unranked)
            )
            if (first, second) not in self.merge_ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        if len(self._cache) < 50_000:
            self._cache[word] = parts
        return parts

    def decode(self, ids: list[int], *, skip_special: bool = True) -> str:
        """Text of ``ids``; ``<s>``, ``</s>``, ``<pad>``, ``<unk>``, ``<mask>`` dropped by default."""
        out = bytearray()
        for i in ids:
            if skip_special and i in self._special:
                continue
            out += token_bytes(self._inverse.get(int(i), ""))
        return out.decode("utf-8", errors="replace")

    def texts(self) -> TokenTexts:
        """Each id's bytes in one block: decoding as :meth:`decode` without the vocabulary's dicts."""
        return TokenTexts.of(self.vocab, self._special)


_SOURCES = ("vocab.json", "merges.txt")
_CACHE_FORMAT = 1


class PromptTokenizer:
    """Encodes and decodes as :class:`OFATokenizer` in a tenth of its memory, for a model that
    mostly reads the same prompt.

    The ids of the ``prompts`` given at load are kept, and decoding reads :class:`TokenTexts`;
    the vocabulary and merges are read (and then kept) only when another text is encoded.
    """

    def __init__(self, folder: Path, texts: TokenTexts, known: dict[str, list[int]], special: dict[str, int]) -> None:
        self.folder = Path(folder)
        self.texts = texts
        self.known = known
        self.bos_id, self.pad_id = special["bos"], special["pad"]
        self.eos_id, self.unk_id = special["eos"], special["unk"]
        self._full: OFATokenizer | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path, prompts: Iterable[str] = (), *, cache: Path | None = None) -> PromptTokenizer:
        """``prompts``' ids and each id's bytes from ``cache`` when it was written from ``folder``'s tokenizer
        files as they are now, for these prompts; else from those files (the rest let go), then kept in ``cache``."""
        folder, prompts = Path(folder), list(prompts)
        stamp = _stamp(folder)
        if cache is not None and stamp is not None:
            kept = cls._read(cache, folder, stamp, prompts)
            if kept is not None:
                return kept
        full = OFATokenizer.load(folder)
        special = {"bos": full.bos_id, "pad": full.pad_id, "eos": full.eos_id, "unk": full.unk_id}
        known = {prompt: full.encode(prompt, bos=False, eos=False) for prompt in prompts}
        made = cls(folder, full.texts(), known, special)
        if cache is not None and stamp is not None:
            made._write(cache, stamp)
        return made

    @classmethod
    def _read(cls, path: Path, folder: Path, stamp: list, prompts: list[str]) -> PromptTokenizer | None:
        """The tokenizer kept in ``path``: a JSON line (what it was made from, prompt ids), then the
        offsets (little-endian uint64) and the bytes of :class:`TokenTexts`; None if absent, stale or unreadable."""
        try:
            with open(path, "rb") as handle:
                head = json.loads(handle.readline(64 * 1024 * 1024))
                if head.get("format") != _CACHE_FORMAT or head.get("sources") != stamp:
                    return None
                known = {str(p): [int(i) for i in ids] for p, ids in head["prompts"].items()}
                if any(p not in known for p in prompts):
                    return None
                ends = array("Q")
                ends.frombytes(handle.read(8 * int(head["count"])))
                if sys.byteorder == "big":
                    ends.byteswap()
                blob = handle.read(int(head["blob"]))
                if len(ends) != int(head["count"]) or len(blob) != int(head["blob"]) or handle.read(1):
                    return None
                if ends and ends[-1] != len(blob):
                    return None
                texts = TokenTexts(blob=blob, ends=ends, special=frozenset(int(i) for i in head["skip"]))
                return cls(folder, texts, known, {k: int(v) for k, v in head["special"].items()})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.debug("not using the kept tokenizer %s: %s", path, exc)
            return None

    def _write(self, path: Path, stamp: list) -> None:
        """Keep this tokenizer in ``path`` for the next load; best effort (a folder may be read-only)."""
        special = {"bos": self.bos_id, "pad": self.pad_id, "eos": self.eos_id, "unk": self.unk_id}
        head = {"format": _CACHE_FORMAT, "sources": stamp, "prompts": self.known, "special": special,
                "skip": sorted(self.texts.special), "count": len(self.texts.ends), "blob": len(self.texts.blob)}
        ends = array("Q", self.texts.ends)
        if sys.byteorder == "big":
            ends.byteswap()
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        try:
            with open(partial, "wb") as handle:
                handle.write(json.dumps(head, ensure_ascii=True).encode("ascii") + b"\n")
                handle.write(ends.tobytes())
                handle.write(self.texts.blob)
            os.replace(partial, path)
        except OSError as exc:
            log.debug("could not keep the tokenizer in %s: %s", path, exc)
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def full(self) -> OFATokenizer:
        """The whole tokenizer, read from the folder on first use."""
        with self._lock:
            if self._full is None:
                self._full = OFATokenizer.load(self.folder)
            return self._full

    def encode(self, text: str, *, bos: bool = True, eos: bool = True) -> list[int]:
        """As :meth:`OFATokenizer.encode`."""
        known = self.known.get(text)
        if known is None:
            return self.full.encode(text, bos=bos, eos=eos)
        return [self.bos_id] * bos + known + [self.eos_id] * eos

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """As :meth:`OFATokenizer.decode`."""
        return self.texts.decode(ids, skip_special=skip_special)


def _stamp(folder: Path) -> list | None:
    """The tokenizer files' sizes and times, which a kept tokenizer must match; None if one is missing."""
    try:
        stats = [(name, (folder / name).stat()) for name in _SOURCES]
    except OSError:
        return None
    return [[name, stat.st_size, stat.st_mtime_ns] for name, stat in stats]
