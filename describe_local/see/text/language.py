"""The language of what was read: ``py3langid`` restricted to the OCR languages.

``scripts/measure_langid.py`` compares it with ``lingua``. Too little text,
or a low confidence, means unknown.

py3langid's model ships LZMA-compressed: unpacking it took 0.46 s of CPU and
75 MB at every load, most of it its byte automaton as a full table (39 MB:
every state's next state for every byte). That automaton is Aho-Corasick's
over the model's byte n-grams, so each state's row is its failure state's
row but for the few bytes that extend its own n-gram: kept as those edges
and a failure link per state, it takes 1.5 MB, and a walk follows the
failure links (at most the n-gram length) as the table's build did. The
first load writes this compact copy, the weights cut down to the OCR
languages, uncompressed, in ``CACHE_NAME-KEY/`` under the cache folder it is
given (checking, state by state, that it gives the table's every move), and
later loads read that (a few milliseconds, 4 MB). KEY covers py3langid's
version, its model file and the languages. The scoring is py3langid's own
(``classify``: the same features, weights and normalisation, tested
against it); a folder that cannot be written to goes without the copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import unicodedata
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Fewer letters than this carry no language.
LANGUAGE_MIN_LETTERS = 4

CACHE_NAME = "py3langid"
CACHE_FORMAT = 1  # raise when the copy's layout changes
_ARRAYS = ("ptc", "pc", "first", "edge_bytes", "edge_to", "fail", "root", "out")
_CHUNK = 4096  # states per step of the checks while the copy is built (4096 x 256 moves at a time)


@dataclass
class LanguageGuesser:
    """py3langid restricted to a few languages, with a confidence floor."""

    identifier: Identifier
    min_confidence: float

    @classmethod
    def load(cls, languages: list[str], min_confidence: float, cache_dir: Path | None = None) -> LanguageGuesser:
        """py3langid for ``languages`` (ISO 639-1): from the compact copy in ``cache_dir`` (written
        there first when there is none), else from py3langid's own file (about half a second)."""
        return cls(Identifier.load(sorted(set(languages)), cache_dir), min_confidence)

    def identify(self, text: str) -> tuple[str | None, float]:
        """The language of ``text`` and the confidence (0-1); None when unsure or too short."""
        if sum(ch.isalpha() for ch in text) < LANGUAGE_MIN_LETTERS:
            return None, 0.0
        language, confidence = self.identifier.classify(text)
        confidence = float(confidence)
        if confidence < self.min_confidence:
            return None, confidence
        return language, confidence


@dataclass
class Identifier:
    """py3langid's naive Bayes over byte n-grams (its ``LanguageIdentifier`` with ``norm_probs``), for a
    few languages, its automaton as edges and failure links."""

    classes: list[str]
    ptc: np.ndarray  # float16, features x classes: each feature's log-probability per language
    pc: np.ndarray  # float32, each language's prior
    first: array  # per state (and one past the last): where its edges start in edge_bytes / edge_to
    edge_bytes: bytes  # each edge's byte, sorted within a state
    edge_to: array  # each edge's next state
    fail: array  # per state: its failure state
    root: array  # the start state's move for each of the 256 bytes
    out: array  # per state: the feature it completes, or -1

    @classmethod
    def load(cls, languages: list[str], cache_dir: Path | None) -> Identifier:
        folder = cache_folder(cache_dir, languages) if cache_dir is not None else None
        found = _read_copy(folder) if folder is not None else None
        if found is not None:
            return found
        built = _build(languages)
        if folder is not None:
            _write_copy(folder, built)
        return built

    def classify(self, text: str) -> tuple[str, float]:
        """The likeliest language of ``text`` and its probability, as py3langid's ``classify``."""
        if text.isupper():
            text = text.lower()
        data = unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")
        visits = self.features(data)
        if visits:
            index = np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))
            counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
            scores = np.log1p(counts) @ self.ptc[index] + self.pc
        else:  # no feature: uniform
            scores = np.zeros(len(self.classes), dtype=np.float32)
        scores *= 1.0 / math.sqrt(len(data) or 1)  # py3langid's temperature: calibrated across lengths
        np.exp(scores - scores.max(), out=scores)
        scores /= scores.sum()
        best = int(scores.argmax())
        return self.classes[best], float(scores[best])

    def features(self, data: bytes) -> Counter[int]:
        """The n-gram features met walking the automaton over ``data``, counted in the order met."""
        first, edge_bytes, edge_to, fail, root, out = (self.first, self.edge_bytes, self.edge_to, self.fail,
                                                       self.root, self.out)
        state, met = 0, []
        for byte in data:
            while state:
                k = edge_bytes.find(byte, first[state], first[state + 1])
                if k >= 0:
                    state = edge_to[k]
                    break
                state = fail[state]
            else:
                state = root[byte]
            feature = out[state]
            if feature >= 0:
                met.append(feature)
        return Counter(met)


def _source() -> Path:
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    return Path(MODEL_DIR) / MODEL_FILE


def cache_folder(cache_dir: Path, languages: list[str]) -> Path:
    """Where the copy for ``languages`` lives under ``cache_dir``."""
    import py3langid

    source = _source()
    stat = source.stat()
    digest = hashlib.sha256()
    for part in (CACHE_FORMAT, py3langid.__version__, source.name, stat.st_size, stat.st_mtime_ns,
                 "+".join(sorted(set(languages)))):
        digest.update(f"{part}\0".encode())
    return cache_dir / f"{CACHE_NAME}-{digest.hexdigest()[:16]}"


def _build(languages: list[str]) -> Identifier:
    """py3langid's compressed model unpacked (half a second), its weights cut down to ``languages`` and
    its table turned into edges and failure links."""
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, out = load_model(_source())
    keep = [i for i, c in enumerate(classes) if c in set(languages)]
    names = [classes[i] for i in keep]
    if len(set(names)) != len(names) or set(names) != set(languages):  # an alias pair, or a language it lacks
        raise ValueError(f"py3langid has no single model for each of {', '.join(languages)}")
    table = np.asarray(nextmove).reshape(-1, 256)
    rows = np.asarray(row, dtype=np.int64)
    first, edge_bytes, edge_to, fail = _edges_and_failures(table, rows)
    return Identifier(names, np.ascontiguousarray(ptc[:, keep]), np.ascontiguousarray(pc[keep]),
                      array("I", first.astype(np.uint32).tobytes()), edge_bytes.astype(np.uint8).tobytes(),
                      array("I", edge_to.astype(np.uint32).tobytes()), array("I", fail.astype(np.uint32).tobytes()),
                      array("I", table[rows[0]].astype(np.uint32).tobytes()),
                      array("i", np.asarray(out, dtype=np.int32).tobytes()))


def _edges_and_failures(table: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """Aho-Corasick's edges and failure links behind the full table (``table[rows[s], b]``: state
    ``s``'s move on byte ``b``); ValueError where they do not give every move of it.

    A state's depth is its distance from the start; its edges are the moves one deeper, each state
    but the start the end of one; a state's failure state is where its parent's failure state moves
    on the edge's byte (the start for the first level).
    """
    count = len(rows)
    depth = np.full(count, -1, dtype=np.int64)
    depth[0] = 0
    frontier = np.array([0])
    sources, bytes_, targets = [], [], []
    while len(frontier):
        moves = table[rows[frontier]]
        deeper = depth[moves] < 0
        state, byte = np.nonzero(deeper)
        target = moves[state, byte]
        fresh, at = np.unique(target, return_index=True)
        if len(fresh) != len(target):
            raise ValueError("two edges end in one state: not a trie")
        depth[fresh] = depth[frontier[0]] + 1
        sources.append(frontier[state[at]])
        bytes_.append(byte[at])
        targets.append(fresh)
        frontier = fresh
    if (depth < 0).any():
        raise ValueError("states the start never reaches")
    source, byte, target = (np.concatenate(x) for x in (sources, bytes_, targets))
    fail = np.zeros(count, dtype=np.int64)
    for level in range(1, int(depth.max()) + 1):  # a level's failure states are all shallower
        edge = np.flatnonzero(depth[target] == level)
        parent = source[edge]
        fail[target[edge]] = np.where(parent == 0, 0, table[rows[fail[parent]], byte[edge]])
    order = np.lexsort((byte, source))
    source, byte, target = source[order], byte[order], target[order]
    first = np.searchsorted(source, np.arange(count + 1))
    # Every move of the table is an edge's, or the failure state's move on the same byte.
    own = np.zeros((min(_CHUNK, count), 256), dtype=bool)
    for start in range(1, count, _CHUNK):
        stop = min(count, start + _CHUNK)
        own[:] = False
        lo, hi = first[start], first[stop]
        own[source[lo:hi] - start, byte[lo:hi]] = True
        mine, inherited = table[rows[start:stop]], table[rows[fail[start:stop]]]
        if not np.array_equal(np.where(own[:stop - start], mine, inherited), mine):
            raise ValueError("a move the edges and failure links do not give")
    return first, byte, target, fail


def _write_copy(folder: Path, model: Identifier) -> None:
    """The model's arrays as ``.npy`` files in ``folder``, written whole or not at all."""
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    arrays = {"ptc": model.ptc, "pc": model.pc, "first": np.frombuffer(model.first, dtype=np.uint32),
              "edge_bytes": np.frombuffer(model.edge_bytes, dtype=np.uint8),
              "edge_to": np.frombuffer(model.edge_to, dtype=np.uint32),
              "fail": np.frombuffer(model.fail, dtype=np.uint32), "root": np.frombuffer(model.root, dtype=np.uint32),
              "out": np.frombuffer(model.out, dtype=np.int32)}
    try:
        partial.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(partial / f"{name}.npy", arrays[name], allow_pickle=False)
        (partial / "classes.json").write_text(json.dumps(model.classes), encoding="utf-8")
        partial.rename(folder)
    except OSError as exc:  # read-only, full, or another process wrote it first
        log.debug("py3langid's compact copy not kept in %s: %s", folder, exc)
        shutil.rmtree(partial, ignore_errors=True)


def _read_copy(folder: Path) -> Identifier | None:
    """The copy in ``folder``; None when absent or not whole."""
    try:
        classes = json.loads((folder / "classes.json").read_text(encoding="utf-8"))
        a = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in _ARRAYS}
    except (OSError, ValueError) as exc:
        if folder.exists():  # damaged: written again
            log.debug("py3langid's copy in %s unreadable (%s): unpacking the model", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
        return None
    states = len(a["fail"])
    whole = (a["ptc"].ndim == 2 and a["ptc"].shape[1] == len(classes) == len(a["pc"]) and len(a["root"]) == 256
             and len(a["out"]) == states and len(a["first"]) == states + 1
             and int(a["first"][-1]) == len(a["edge_bytes"]) == len(a["edge_to"])
             and max(int(a[k].max(initial=0)) for k in ("edge_to", "fail", "root")) < states
             and int(a["out"].max(initial=-1)) < len(a["ptc"]))
    if not whole:
        log.debug("py3langid's copy in %s is not whole: unpacking the model", folder)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return Identifier(classes, a["ptc"], a["pc"], array("I", a["first"].tobytes()), a["edge_bytes"].tobytes(),
                      array("I", a["edge_to"].tobytes()), array("I", a["fail"].tobytes()),
                      array("I", a["root"].tobytes()), array("i", a["out"].tobytes()))
