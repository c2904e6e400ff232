"""The caption tokenizer the ONNX runtime keeps (``PromptTokenizer``): the ids and text of the whole
``OFATokenizer`` in a tenth of its memory, its prompt's ids and each token's bytes kept in a file
that is used only while it matches the tokenizer files, which are read again only for another text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import make_tiny_models
import numpy as np
import pytest

from describe_local.errors import ModelNotInstalled
from describe_local.see.caption.ofa import tokenizer as tokenizer_module
from describe_local.see.caption.ofa.tokenizer import OFATokenizer, PromptTokenizer

ROOT = Path(__file__).resolve().parents[2]
PROMPT = " what is the description of the image?"
TEXTS = ["A café in 東京, <bin_12> beside <code_7> a naïve 😀 dog", " is it raining?", "", "  two  spaces\n"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tokenizer")
    make_tiny_models.write_tokenizer(folder, full_size=True)  # OFA's released 59457 tokens
    return folder


@pytest.fixture
def reads(monkeypatch) -> list[Path]:
    """Each time the tokenizer files are read (``OFATokenizer.load``), the folder."""
    seen: list[Path] = []
    real = OFATokenizer.load.__func__

    def load(cls, folder):
        seen.append(Path(folder))
        return real(cls, folder)

    monkeypatch.setattr(OFATokenizer, "load", classmethod(load))
    return seen


def test_decodes_every_id_as_the_whole_tokenizer(folder):
    full = OFATokenizer.load(folder)
    lean = PromptTokenizer.load(folder, [PROMPT])
    assert len(lean) == len(full) == 59457
    for skip in (True, False):
        assert [lean.decode([i], skip_special=skip) for i in range(len(full))] == [
            full.decode([i], skip_special=skip) for i in range(len(full))]
    for text in TEXTS:
        ids = full.encode(text)
        assert lean.decode(ids) == full.decode(ids)
        assert lean.decode(np.array(ids, dtype=np.int64)) == full.decode(ids)
        assert lean.decode(ids, skip_special=False) == full.decode(ids, skip_special=False)
    # ids outside the vocabulary decode to nothing; a character split across ids comes out whole
    assert lean.decode([-1, len(full), 10**9]) == full.decode([-1, len(full), 10**9]) == ""
    emoji = [i for i in full.encode("😀", bos=False, eos=False)]
    assert len(emoji) > 1 and lean.decode(emoji) == "😀"


def test_encodes_as_the_whole_tokenizer_reading_the_files_only_for_another_text(folder, tmp_path):
    full = OFATokenizer.load(folder)
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (copy / name).write_bytes((folder / name).read_bytes())
    lean = PromptTokenizer.load(copy, [PROMPT])
    for name in ("vocab.json", "merges.txt"):
        (copy / name).rename(tmp_path / name)
    # the prompt and decoding need nothing more from the folder
    assert lean.encode(PROMPT) == full.encode(PROMPT)
    assert lean.encode(PROMPT, bos=False) == full.encode(PROMPT, bos=False)
    assert lean.encode(PROMPT, eos=False) == full.encode(PROMPT, eos=False)
    assert lean.decode(full.encode(TEXTS[0])) == full.decode(full.encode(TEXTS[0]))
    with pytest.raises(ModelNotInstalled):  # another text: the files are read then
        lean.encode(TEXTS[1])
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).rename(copy / name)
    for text in TEXTS:
        assert lean.encode(text) == full.encode(text)
        assert lean.encode(text, bos=False, eos=False) == full.encode(text, bos=False, eos=False)
    assert lean.pad_id == full.pad_id and lean.eos_id == full.eos_id and lean.bos_id == full.bos_id


def test_kept_file_is_read_instead_of_the_tokenizer_files(folder, tmp_path, reads):
    kept = tmp_path / "tokens.bin"
    first = PromptTokenizer.load(folder, [PROMPT], cache=kept)
    assert kept.is_file() and len(reads) == 1
    again = PromptTokenizer.load(folder, [PROMPT], cache=kept)
    assert len(reads) == 1  # from the file alone
    assert again.encode(PROMPT) == first.encode(PROMPT)
    assert again.texts == first.texts
    assert kept.stat().st_size < 2 * 1024 * 1024
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.bin"]  # no partial file left


def test_kept_file_is_written_again_when_it_no_longer_fits(folder, tmp_path, reads):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (model / name).write_bytes((folder / name).read_bytes())
    kept = tmp_path / "tokens.bin"
    before = PromptTokenizer.load(model, [PROMPT], cache=kept)
    # a vocabulary changed in place: "Ġwhat" gets another id
    vocab = json.loads((model / "vocab.json").read_text(encoding="utf-8"))
    vocab["Ġwhat"], vocab["<unused_40000>"] = vocab["<unused_40000>"], vocab["Ġwhat"]
    (model / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    after = PromptTokenizer.load(model, [PROMPT], cache=kept)
    assert len(reads) == 2
    assert after.encode(PROMPT) == OFATokenizer.load(model).encode(PROMPT) != before.encode(PROMPT)
    assert PromptTokenizer.load(model, [PROMPT], cache=kept).encode(PROMPT) == after.encode(PROMPT)
    assert len(reads) == 3  # (the check above read the files once; the kept file served the load)
    # another prompt than those kept, or a damaged file: read from the files again, and kept
    PromptTokenizer.load(model, [PROMPT, " what does the image describe?"], cache=kept)
    assert len(reads) == 4
    kept.write_bytes(kept.read_bytes()[:-10])
    assert PromptTokenizer.load(model, [PROMPT], cache=kept).encode(PROMPT) == after.encode(PROMPT)
    assert len(reads) == 5
    assert PromptTokenizer.load(model, [PROMPT], cache=kept).texts == after.texts
    assert len(reads) == 5


def test_unwritable_kept_file_is_no_error(folder, tmp_path):
    missing = tmp_path / "no such folder" / "tokens.bin"
    lean = PromptTokenizer.load(folder, [PROMPT], cache=missing)
    assert lean.encode(PROMPT) == OFATokenizer.load(folder).encode(PROMPT) and not missing.exists()


def test_kept_tokenizer_is_small(folder, tmp_path):
    """Loaded from its file, the tokenizer adds a few MB, not the whole tokenizer's ten, nor ``regex``."""
    kept = tmp_path / "tokens.bin"
    PromptTokenizer.load(folder, [PROMPT], cache=kept)
    code = textwrap.dedent(f"""
        import sys
        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        from {tokenizer_module.__name__} import OFATokenizer, PromptTokenizer
        before = rss()
        lean = PromptTokenizer.load({str(folder)!r}, [{PROMPT!r}], cache=__import__("pathlib").Path({str(kept)!r}))
        lean_mb = rss() - before
        regex = "regex" in sys.modules
        before = rss()
        full = OFATokenizer.load({str(folder)!r})
        print(lean_mb, rss() - before, regex)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    lean_mb, full_mb, regex = done.stdout.split()
    assert float(lean_mb) < 2.5 and regex == "False", done.stdout
    assert float(full_mb) > 4 * float(lean_mb), done.stdout
