"""OFA's tokenizer: GPT-2/BART byte-level BPE plus ``<code_*>`` and ``<bin_*>`` tokens.

``vocab.json`` and ``merges.txt`` are the BART files shipped with every OFA
checkpoint. OFA appends 8192 image-code tokens ``<code_0>``... and 1000
location tokens ``<bin_0>``... after the BPE vocabulary (unless the vocabulary
already lists them). In text, those tokens are cut out whole and the text
between them is BPE-encoded as it is, spaces included, which is what the
reference ``OFATokenizer`` does.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import regex

from describe_local.errors import ModelNotInstalled

CODE_TOKENS = 8192
BIN_TOKENS = 1000
_SPECIAL_TOKEN = re.compile(r"<(?:code|bin)_\d+>")
# GPT-2's pre-tokenisation: contractions, letters, digits, other symbols, spaces.
_PIECES = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


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
        for piece in _PIECES.findall(text):
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
        inverse_alphabet = {c: b for b, c in byte_alphabet().items()}
        out = bytearray()
        for i in ids:
            if skip_special and i in self._special:
                continue
            token = self._inverse.get(int(i), "")
            if _SPECIAL_TOKEN.fullmatch(token):
                out += token.encode("utf-8")
                continue
            out += bytes(inverse_alphabet[c] for c in token if c in inverse_alphabet)
        return out.decode("utf-8", errors="replace")
