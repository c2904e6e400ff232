"""Florence-2's tokenizer without ``transformers``: BART's byte-level BPE plus its 1025 added tokens.

The hub folders keep the tokenizer in ``tokenizer.json`` (``tokenizers``' format);
conversion writes its vocabulary (added tokens included) and merges as the
``vocab.json``/``merges.txt`` pair our BPE reads, and the ids of the special ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from describe_local.errors import ModelNotInstalled

SPECIALS = "special_ids.json"


def write_tokenizer_files(folder: Path, target: Path) -> None:
    """Write ``vocab.json``, ``merges.txt`` and ``special_ids.json`` in ``target`` from ``folder``'s tokenizer."""
    source = Path(folder) / "tokenizer.json"
    if source.is_file():
        data = json.loads(source.read_text(encoding="utf-8"))
        vocab = dict(data["model"]["vocab"])
        merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
        added = data.get("added_tokens") or []
    else:  # the older pair, with added_tokens.json beside it
        vocab = json.loads((Path(folder) / "vocab.json").read_text(encoding="utf-8"))
        lines = (Path(folder) / "merges.txt").read_text(encoding="utf-8").splitlines()
        merges = [line for line in lines if line and not line.startswith("#version")]
        extra = Path(folder) / "added_tokens.json"
        added_ids = json.loads(extra.read_text(encoding="utf-8")) if extra.is_file() else {}
        added = [{"content": t, "id": i, "special": False} for t, i in added_ids.items()]
    for token in added:
        vocab[token["content"]] = int(token["id"])
    special = sorted({int(t["id"]) for t in added if t.get("special")} | {vocab[t] for t in ("<s>", "</s>", "<pad>")
                                                                         if t in vocab})
    target.mkdir(parents=True, exist_ok=True)
    (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (target / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (target / SPECIALS).write_text(json.dumps(special), encoding="utf-8")


def load_tokenizer(folder: Path):
    """The BPE tokenizer of a converted folder's ``onnx-florence/``; decoding skips the special tokens."""
    from describe_local.see.caption.ofa.tokenizer import OFATokenizer

    tokenizer = OFATokenizer.load(folder)
    try:
        special = json.loads((Path(folder) / SPECIALS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotInstalled(f"cannot read {folder / SPECIALS}: convert the model again ({exc})") from exc
    tokenizer._special.update(int(i) for i in special)
    return tokenizer
