#!/usr/bin/env python3
"""Write a random-weight Argos Translate package (``.argosmodel``) in the real on-disk format.

No registry carries a real Argos model, so tests and benchmarks make their own:
a CTranslate2 Transformer (random weights) with a SentencePiece model trained
on a few sentences, zipped as Argos packages are (one top folder holding
``metadata.json``, ``model/`` and ``sentencepiece.model``). Its translations
are gibberish, but every byte goes through the same code as a real package.

    scripts/make_tiny_argos.py out/translate-en_es.argosmodel --from en --to es
    scripts/make_tiny_argos.py bench.argosmodel --size real   # 6+6 layers, d_model 512, 32k vocab
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Sentences the SentencePiece model learns its pieces from (English and a few other languages).
CORPUS = """\
A man riding a bike down a street next to a building.
A group of people standing around a kitchen table.
I recognize 3 people: Kanbo, Jack, and Ayman.
I recognize one person: Kanbo.
I also see 2 people I don't recognize.
I see one person, but I don't recognize them.
There was text found in the image as well. It reads:
There is text in the image.
I could not find anything to describe in this photo.
A dog sitting on a couch in a living room.
Un hombre montando en bicicleta por una calle junto a un edificio.
Reconozco a 3 personas: Kanbo, Jack y Ayman.
También veo a 2 personas que no reconozco.
Hay texto en la imagen. Dice:
Un perro sentado en un sofá en una sala de estar.
Un homme à vélo dans une rue à côté d'un bâtiment.
Je reconnais 3 personnes : Kanbo, Jack et Ayman.
Ein Mann fährt mit dem Fahrrad eine Straße entlang.
Ich erkenne 3 Personen: Kanbo, Jack und Ayman.
Um homem andando de bicicleta numa rua ao lado de um prédio.
0123456789 , . : ; ! ? ' " ( ) - 731 732 733 734 7301 7302
"""


@dataclass(frozen=True)
class Size:
    layers: int
    d_model: int
    heads: int
    ffn: int
    vocab: int  # CTranslate2 vocabulary size (SentencePiece pieces padded with unused tokens; 0: no padding)
    byte_fallback: bool  # SentencePiece byte pieces (real packages have them; gibberish reads better without)
    pieces: int  # SentencePiece pieces to learn (at most; the corpus is small)
    sp_type: str  # "bpe" with many pieces learns whole words, as a real 32k model has for common ones


SIZES = {
    "tiny": Size(layers=2, d_model=64, heads=4, ffn=128, vocab=0, byte_fallback=False, pieces=400, sp_type="unigram"),
    # The size of a released Argos model (Transformer base): for benchmarks.
    "real": Size(layers=6, d_model=512, heads=8, ffn=2048, vocab=32000, byte_fallback=True, pieces=4000, sp_type="bpe"),
}


def train_sentencepiece(
    folder: Path, pieces: int = 400, *, byte_fallback: bool = True, model_type: str = "unigram"
) -> Path:
    """Train a small SentencePiece model on :data:`CORPUS`; return the ``.model`` path."""
    import sentencepiece as spm

    corpus = folder / "corpus.txt"
    corpus.write_text(CORPUS * 4, encoding="utf-8")
    prefix = folder / "sentencepiece"
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=pieces,
        model_type=model_type,
        character_coverage=1.0,
        byte_fallback=byte_fallback,  # with it, any character can be encoded
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def vocabulary(sp_model: Path, size: int) -> list[str]:
    """The CTranslate2 vocabulary: every SentencePiece piece, padded to ``size`` tokens."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    tokens = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    size = size or len(tokens)
    if size < len(tokens):
        raise ValueError(f"vocabulary of {size} is smaller than the {len(tokens)} SentencePiece pieces")
    return tokens + [f"<unused{i}>" for i in range(size - len(tokens))]


def write_ctranslate2(folder: Path, tokens: list[str], size: Size, seed: int, quantization: str) -> None:
    """A Transformer with random weights, saved by CTranslate2's own spec writer."""
    from ctranslate2.specs import transformer_spec

    rng = np.random.default_rng(seed)
    d, ffn, v = size.d_model, size.ffn, len(tokens)
    spec = transformer_spec.TransformerSpec.from_config(size.layers, size.heads)

    def dense(layer, rows: int, cols: int) -> None:
        layer.weight = (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)
        layer.bias = np.zeros(rows, np.float32)

    def norm(layer) -> None:
        layer.gamma = np.ones(d, np.float32)
        layer.beta = np.zeros(d, np.float32)

    spec.encoder.embeddings[0].weight = (rng.standard_normal((v, d)) * 0.1).astype(np.float32)
    spec.decoder.embeddings.weight = (rng.standard_normal((v, d)) * 0.1).astype(np.float32)
    norm(spec.encoder.layer_norm)
    norm(spec.decoder.layer_norm)
    dense(spec.decoder.projection, v, d)
    for layer in spec.encoder.layer:
        norm(layer.self_attention.layer_norm)
        dense(layer.self_attention.linear[0], 3 * d, d)
        dense(layer.self_attention.linear[1], d, d)
        norm(layer.ffn.layer_norm)
        dense(layer.ffn.linear_0, ffn, d)
        dense(layer.ffn.linear_1, d, ffn)
    for layer in spec.decoder.layer:
        norm(layer.self_attention.layer_norm)
        dense(layer.self_attention.linear[0], 3 * d, d)
        dense(layer.self_attention.linear[1], d, d)
        norm(layer.attention.layer_norm)
        dense(layer.attention.linear[0], d, d)
        dense(layer.attention.linear[1], 2 * d, d)
        dense(layer.attention.linear[2], d, d)
        norm(layer.ffn.layer_norm)
        dense(layer.ffn.linear_0, ffn, d)
        dense(layer.ffn.linear_1, d, ffn)
    spec.register_source_vocabulary(tokens)
    spec.register_target_vocabulary(tokens)
    spec.validate()
    spec.optimize(quantization=quantization)
    spec.save(str(folder))


def write_copy_ctranslate2(folder: Path, tokens: list[str], max_length: int = 128) -> None:
    """A Transformer whose weights are set by hand so that it copies its input, token for token.

    Gibberish cannot show that something survives translation; a model that
    copies can, through the same CTranslate2 and SentencePiece code as a real
    one. The model width is ``len(tokens) + max_length``: one dimension per
    token and one per position. The encoder passes ``token + position`` through
    unchanged (sub-layer outputs are zero, no final norm). The decoder ignores
    what it has written (zero embeddings): at step ``t`` its cross-attention
    query is position ``t``, which matches only the source key at position
    ``t``, and the value is that source token, which the projection reads out.
    The source gets ``</s>`` appended, so the copy ends where the source does.
    """
    from ctranslate2.specs import transformer_spec

    v, p = len(tokens), max_length
    d = v + p
    token_scale, query_scale = 10.0, 30.0
    spec = transformer_spec.TransformerSpec.from_config(1, 1, no_final_norm=True)
    eye = np.eye(d, dtype=np.float32)
    zeros = np.zeros((d, d), np.float32)
    tokens_block = np.zeros((d, d), np.float32)
    tokens_block[:v, :v] = np.eye(v)
    positions_block = np.zeros((d, d), np.float32)
    positions_block[v:, v:] = np.eye(p)

    def set_dense(layer, weight: np.ndarray) -> None:
        layer.weight = weight.astype(np.float32)
        layer.bias = np.zeros(weight.shape[0], np.float32)

    def norm(layer) -> None:
        layer.gamma = np.ones(d, np.float32)
        layer.beta = np.zeros(d, np.float32)

    embeddings = np.zeros((v, d), np.float32)
    embeddings[:, :v] = token_scale * np.eye(v)
    positions = np.zeros((p, d), np.float32)
    positions[:, v:] = np.eye(p)
    spec.encoder.embeddings[0].weight = embeddings
    spec.encoder.scale_embeddings = False
    spec.encoder.position_encodings.encodings = positions
    spec.decoder.embeddings.weight = np.zeros((v, d), np.float32)
    spec.decoder.scale_embeddings = False
    spec.decoder.position_encodings.encodings = positions
    projection = np.zeros((v, d), np.float32)
    projection[:, :v] = np.eye(v)
    set_dense(spec.decoder.projection, projection)
    for stack in (spec.encoder, spec.decoder):
        for layer in stack.layer:
            norm(layer.self_attention.layer_norm)
            set_dense(layer.self_attention.linear[0], np.zeros((3 * d, d)))
            set_dense(layer.self_attention.linear[1], zeros)
            norm(layer.ffn.layer_norm)
            set_dense(layer.ffn.linear_0, np.zeros((4, d)))
            set_dense(layer.ffn.linear_1, np.zeros((d, 4)))
    for layer in spec.decoder.layer:
        norm(layer.attention.layer_norm)
        set_dense(layer.attention.linear[0], query_scale * positions_block)
        set_dense(layer.attention.linear[1], np.concatenate([positions_block, 2.0 * tokens_block]))
        set_dense(layer.attention.linear[2], eye)
    spec.config.add_source_eos = True
    spec.register_source_vocabulary(tokens)
    spec.register_target_vocabulary(tokens)
    spec.validate()
    spec.optimize(quantization="float32")
    spec.save(str(folder))


def make_package(
    out: Path,
    source: str = "en",
    target: str = "es",
    *,
    size: str = "tiny",
    seed: int = 0,
    quantization: str = "int8",
    copy: bool = False,
) -> Path:
    """Write ``out`` (an ``.argosmodel`` zip) and return its path.

    ``copy``: a model that copies its input instead of random weights (see
    :func:`write_copy_ctranslate2`).
    """
    shape = SIZES[size]
    top = f"translate-{source}_{target}-1_0"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sp_model = train_sentencepiece(work, shape.pieces, byte_fallback=shape.byte_fallback,
                                       model_type=shape.sp_type)
        model_dir = work / "model"
        model_dir.mkdir()
        if copy:
            write_copy_ctranslate2(model_dir, vocabulary(sp_model, 0))
        else:
            write_ctranslate2(model_dir, vocabulary(sp_model, shape.vocab), shape, seed, quantization)
        metadata = {
            "package_version": "1.0",
            "argos_version": "1.0",
            "from_code": source,
            "from_name": _NAMES.get(source, source),
            "to_code": target,
            "to_name": _NAMES.get(target, target),
            "type": "translate",
            "links": [],
        }
        readme = (
            f"# Random-weight test package {source} -> {target}\n\n"
            f"Written by scripts/make_tiny_argos.py (size {size}, seed {seed}); "
            f"{'it copies its input' if copy else 'it translates into gibberish'}.\n"
            "Licence: CC0-1.0.\n"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{top}/metadata.json", json.dumps(metadata, indent=2))
            archive.writestr(f"{top}/README.md", readme)
            archive.write(sp_model, f"{top}/sentencepiece.model")
            for path in sorted(model_dir.iterdir()):
                archive.write(path, f"{top}/model/{path.name}")
        out.write_bytes(buffer.getvalue())
    return out


_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese", "it": "Italian"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the .argosmodel file to write")
    parser.add_argument("--from", dest="source", default="en", help="source language code (default en)")
    parser.add_argument("--to", dest="target", default="es", help="target language code (default es)")
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantization", default="int8", help="CTranslate2 weight type (int8 like released packages)")
    parser.add_argument("--copy", action="store_true", help="a model that copies its input (tiny only)")
    args = parser.parse_args()
    path = make_package(args.out, args.source, args.target, size=args.size, seed=args.seed,
                        quantization=args.quantization, copy=args.copy)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
