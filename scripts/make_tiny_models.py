#!/usr/bin/env python3
"""Write tiny random caption models in the real on-disk formats, for tests and benchmarks.

    python scripts/make_tiny_models.py OUT_DIR [--only ofa-tiny,vit-gpt2,florence-2-base,...]

* ``ofa-*``: OFA checkpoints laid out as the Hugging Face ``OFA-Sys/ofa-*``
  folders are (``config.json``, ``pytorch_model.bin`` with the released weight
  names, ``vocab.json``, ``merges.txt``), with random weights scaled so that
  different photos get different captions. The byte-level BPE vocabulary is
  learnt here from a few sentences (the real BART files cannot be downloaded
  in tests); it has the same format and special tokens.
* transformers image-to-text models (ViT-GPT2, BLIP, GIT), saved with
  ``save_pretrained`` from tiny random configs, with their processors.
* ``florence-2-base``: a random Florence-2 of Florence-2-base's sizes (0.23 B
  parameters) as ``transformers``' own Florence-2 reads it (``model.safetensors``,
  BART tokenizer files, ``Florence2Processor`` files).

Nothing here touches the network. The random weights depend only on the seed.
The module is importable (no describe_local import at module level) so that
the reference environment can reuse :func:`randomize` and :func:`write_tokenizer`.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import zlib
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

# Text the toy BPE is learnt from: caption-like English and VQA-like questions.
CORPUS = """
a man riding a bike down a street next to a building. a woman holding an umbrella in the rain.
two dogs playing with a frisbee on the grass. a plate of food with broccoli and rice on a table.
a group of people standing around a kitchen. a cat sitting on top of a laptop computer.
a red car parked on the side of the road. a train traveling down the tracks near a station.
what does the image describe? what is the description of the image? what colour is the car?
how many people are in the picture? is there a dog? which region does the text describe?
the sky is blue and the trees are green. an airplane flying over a city at night.
a bowl of fruit with apples, bananas and oranges. children playing soccer in a park.
a bathroom with a toilet, a sink and a mirror. a giraffe standing next to a tall tree.
"""

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")

# OFA sizes (image backbone, width, layers, heads, FFN) as released; `vocab_size`
# None means "the toy tokenizer's size" (BPE + 8192 codes + 1000 bins).
OFA_CONFIGS = {
    "ofa-tiny": dict(resnet_type="resnet50", d_model=256, layers=4, heads=4, ffn=1024),
    "ofa-medium": dict(resnet_type="resnet101", d_model=512, layers=4, heads=8, ffn=2048),
}


def byte_alphabet() -> dict[int, str]:
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def train_bpe(text: str, merges: int, pad_to: int = 0) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn ``merges`` byte-level BPE merges from ``text`` (GPT-2 style words).

    ``pad_to``: fill the vocabulary with unused entries up to this size (BART's is
    50265), so that a model gets the released embedding size.
    """
    import regex

    pieces = regex.findall(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""", text)
    alphabet = byte_alphabet()
    words = collections.Counter(tuple(alphabet[b] for b in p.encode("utf-8")) for p in pieces)
    learnt: list[tuple[str, str]] = []
    for _ in range(merges):
        pairs: collections.Counter = collections.Counter()
        for word, count in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += count
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        learnt.append(best)
        merged = collections.Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for char in alphabet.values():
        vocab.setdefault(char, len(vocab))
    for a, b in learnt:
        vocab.setdefault(a + b, len(vocab))
    while len(vocab) < pad_to - 1:
        vocab[f"<unused_{len(vocab)}>"] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return vocab, learnt


def write_tokenizer(folder: Path, merges: int = 300, *, full_size: bool = False) -> int:
    """Write ``vocab.json`` and ``merges.txt``; return the OFA vocabulary size (with codes, bins).

    ``full_size``: pad to BART's 50265 entries, giving OFA's released 59457 tokens.
    """
    vocab, learnt = train_bpe(CORPUS, merges, pad_to=50265 if full_size else 0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in learnt]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(vocab) + 8192 + 1000


def ofa_config(size: str, vocab_size: int, **overrides) -> dict:
    """A ``config.json`` dict in the released format for an OFA of ``size``."""
    spec = OFA_CONFIGS[size]
    config = {
        "architectures": ["OFAModel"],
        "model_type": "ofa",
        "vocab_size": vocab_size,
        "d_model": spec["d_model"],
        "encoder_layers": spec["layers"],
        "decoder_layers": spec["layers"],
        "encoder_attention_heads": spec["heads"],
        "decoder_attention_heads": spec["heads"],
        "encoder_ffn_dim": spec["ffn"],
        "decoder_ffn_dim": spec["ffn"],
        "resnet_type": spec["resnet_type"],
        "activation_function": "gelu",
        "max_position_embeddings": 1024,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 0,
        "forced_eos_token_id": 2,
        "normformer": True,
        "encoder_normalize_before": True,
        "decoder_normalize_before": True,
        "layernorm_embedding": True,
        "patch_layernorm_embedding": True,
        "token_bucket_size": 256,
        "image_bucket_size": 42,
        "add_type_embedding": True,
        "share_decoder_input_output_embed": True,
        "attn_scale_factor": 2.0,
        "code_layernorm_embedding": True,
        "code_image_size": 128,
        "entangle_position_embedding": False,
        "scale_embedding": False,
        "dropout": 0.1,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "use_cache": False,
        "torch_dtype": "float32",
    }
    config.update(overrides)
    return config


def randomize(state: dict[str, torch.Tensor], seed: int, scale: float) -> None:
    """Fill every float tensor of ``state`` in place with seeded random values.

    Each tensor's values depend only on the seed and its name, so two programs
    that hold the same checkpoint names get the same weights. Matrices get
    ``scale / sqrt(fan_in)`` spread (``scale`` above 1 makes attention sharp and
    the output depend on the photo), except the token embedding (unit spread);
    norms get weights near 1; BatchNorm gets
    plausible running statistics; ``c_attn`` head scales near 1.
    """
    for name in sorted(state):
        tensor = state[name]
        if not tensor.is_floating_point():
            continue
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        noise = torch.randn(tensor.shape, generator=gen)
        if name.endswith("running_var"):
            value = 0.5 + torch.rand(tensor.shape, generator=gen)
        elif name.endswith("running_mean"):
            value = 0.1 * noise
        elif tensor.dim() == 4:  # convolution: He initialisation keeps activations bounded
            fan_in = tensor.shape[1] * tensor.shape[2] * tensor.shape[3]
            value = noise * (2.0 / fan_in) ** 0.5
        elif "embed_tokens" in name or "output_projection" in name:
            # the output projection: unit-scale logits keep fp32 rounding (1e-6 relative)
            # well below the 1e-4 the equality tests allow
            value = noise / tensor.shape[-1] ** 0.5
        elif tensor.dim() >= 2:
            value = noise * (scale / tensor.shape[-1] ** 0.5)
        elif name.endswith("bias"):
            value = 0.1 * noise
        else:  # norm weights, head scales
            value = 1.0 + 0.2 * noise
        tensor.copy_(value.to(tensor.dtype))


def ofa_state_dict(config: dict) -> dict[str, torch.Tensor]:
    """Zero tensors under every name the released OFA checkpoints use, for ``config``."""
    sys.path.insert(0, str(ROOT))
    from describe_local.see.caption.ofa.config import OFAConfig
    from describe_local.see.caption.ofa.model import OFAModel

    model = OFAModel(OFAConfig.from_dict(config))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    d, heads = config["d_model"], config["decoder_attention_heads"]
    buckets = config["image_bucket_size"]
    distances = (2 * buckets - 1) ** 2 + 3
    # Entries the released files also carry (image-code generation, fixed tables).
    state["decoder.embed_image_positions.weight"] = torch.zeros(buckets**2 + 1, d)
    for part in ("image_pos_ln", "code_layernorm_embedding"):
        state[f"decoder.{part}.weight"] = torch.ones(d)
        state[f"decoder.{part}.bias"] = torch.zeros(d)
    for i in range(config["decoder_layers"]):
        state[f"decoder.image_rel_pos_table_list.{i}.weight"] = torch.zeros(distances, heads)
    state["decoder.output_projection.weight"] = state["encoder.embed_tokens.weight"]
    return state


def write_ofa(folder: Path, size: str = "ofa-tiny", *, seed: int = 0, scale: float = 2.0,
              full_vocab: bool = False) -> Path:
    """Write a random OFA checkpoint folder of ``size``; return the folder."""
    folder = Path(folder)
    tokens = write_tokenizer(folder, full_size=full_vocab)
    config = ofa_config(size, tokens)
    state = ofa_state_dict(config)
    randomize(state, seed, scale)
    state["decoder.embed_tokens.weight"] = state["encoder.embed_tokens.weight"]
    state["decoder.output_projection.weight"] = state["encoder.embed_tokens.weight"]
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    torch.save(state, folder / "pytorch_model.bin")
    return folder


TRANSFORMERS_MODELS = ("vit-gpt2", "blip", "git")
_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
_TINY_VISION = dict(_TINY, image_size=32, patch_size=8)


def _wordpiece_vocab(folder: Path) -> Path:
    """A BERT ``vocab.txt`` of the corpus words, letters and BLIP's ``[DEC]``."""
    import re

    words = sorted(set(re.findall(r"[a-z]+", CORPUS.lower())))
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    marks = list(".,?!'\"-")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *marks, *letters,
              *(f"##{c}" for c in letters), *(w for w in words if w not in letters)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def write_transformers_captioner(folder: Path, family: str, seed: int = 0, scale: float = 3.0) -> Path:
    """Write a tiny random ``transformers`` image-to-text model of ``family`` with its processor.

    Weights are :func:`randomize`d like the OFA ones, so that the caption
    depends on the picture.
    """
    import transformers as tf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if family == "vit-gpt2":
        write_tokenizer(folder)
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
        tokenizer = tf.GPT2TokenizerFast(
            vocab=vocab, merges=[tuple(line.split()) for line in lines if line],
            bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        )
        decoder = tf.GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        config = tf.VisionEncoderDecoderConfig.from_encoder_decoder_configs(tf.ViTConfig(**_TINY_VISION), decoder)
        config.decoder_start_token_id = tokenizer.bos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = tokenizer.eos_token_id
        model = tf.VisionEncoderDecoderModel(config)
        tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    else:
        words = _wordpiece_vocab(folder).read_text(encoding="utf-8").split()
        tokenizer = tf.BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}, bos_token="[DEC]")
        text = dict(_TINY, vocab_size=len(tokenizer), max_position_embeddings=64,
                    pad_token_id=tokenizer.pad_token_id)
        if family == "git":
            config = tf.GitConfig(vision_config=_TINY_VISION, **text, bos_token_id=tokenizer.cls_token_id,
                                  eos_token_id=tokenizer.sep_token_id)
            model = tf.GitForCausalLM(config)
            images = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
            tf.GitProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
        elif family == "blip":
            dec = tokenizer.convert_tokens_to_ids("[DEC]")
            config = tf.BlipConfig(
                text_config=dict(text, bos_token_id=dec, sep_token_id=tokenizer.sep_token_id,
                                 eos_token_id=tokenizer.sep_token_id),
                vision_config=_TINY_VISION,
            )
            model = tf.BlipForConditionalGeneration(config)
            images = tf.BlipImageProcessor(size={"height": 32, "width": 32})
            tf.BlipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
        else:
            raise ValueError(f"unknown captioner family {family!r}")
    state = model.state_dict()
    randomize(state, seed, scale)
    _quiet_special_tokens(model, tokenizer)
    model.save_pretrained(folder)
    return folder


@torch.no_grad()
def _quiet_special_tokens(model, tokenizer) -> None:
    """Keep random weights from writing padding or unknown tokens, and from ending at once.

    A trained model rarely emits them; a random one would, and its caption would
    decode to nothing. Zeroed output rows (and very low biases) rule them out.
    """
    output = model.get_output_embeddings() or model.text_decoder.get_output_embeddings()
    eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    silent = {i for i in tokenizer.all_special_ids if i != eos}
    silent.add(tokenizer.convert_tokens_to_ids("[DEC]") if "[DEC]" in tokenizer.get_vocab() else eos)
    silent.discard(eos)
    for i in sorted(silent):
        output.weight[i] = 0.0
        if getattr(output, "bias", None) is not None:
            output.bias[i] = -1e4
    output.weight[eos] *= 0.3


# Florence-2 as the hub repositories hold it for ``transformers``' own implementation
# (``model_type`` florence2: a DaViT vision tower, a projector, BART): sizes of
# Florence-2-base, random weights.
# ``florence-2-tiny`` has the same architecture and vocabulary at small widths, for fast tests.
FLORENCE_SIZES = {
    "florence-2-base": (
        dict(embed_dim=[128, 256, 512, 1024], depths=[1, 1, 9, 1], num_heads=[4, 8, 16, 32],
             num_groups=[4, 8, 16, 32], window_size=12, projection_dim=768),
        dict(d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
             decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072),
    ),
    "florence-2-tiny": (
        dict(embed_dim=[16, 32, 48, 64], depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 4], num_groups=[1, 2, 3, 4],
             window_size=12, projection_dim=64),
        dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
             decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128),
    ),
}
FLORENCE_MODELS = tuple(FLORENCE_SIZES)
# The tokens Florence-2 adds to BART's 50265: 1000 quantised coordinates, its task
# markers, then the image placeholder (1025 in all).
FLORENCE_TASK_TOKENS = ("<od>", "</od>", "<ocr>", "</ocr>", "<cap>", "</cap>", "<ncap>", "</ncap>", "<dcap>",
                        "</dcap>", "<grounding>", "</grounding>", "<seg>", "</seg>", "<sep>", "<region_cap>",
                        "</region_cap>", "<region_to_desc>", "</region_to_desc>", "<proposal>", "</proposal>",
                        "<poly>", "</poly>", "<and>")
FLORENCE_GENERATION = dict(num_beams=3, no_repeat_ngram_size=3, early_stopping=True, forced_bos_token_id=0,
                           forced_eos_token_id=2, decoder_start_token_id=2, bos_token_id=0, eos_token_id=2,
                           pad_token_id=1, max_length=20)


def write_florence(folder: Path, name: str = "florence-2-base", *, seed: int = 0, scale: float = 2.0,
                   eos_scale: float = 25.0) -> Path:
    """Write a random Florence-2 checkpoint folder (Florence-2-base's sizes) with its processor files.

    ``config.json``, ``model.safetensors``, ``generation_config.json``, the BART
    tokenizer files (a toy BPE padded to BART's 50265 entries, plus Florence-2's
    1025 added tokens) and ``preprocessor_config.json`` / ``processor_config.json``
    for :class:`transformers.Florence2Processor` (768 x 768, ImageNet mean and
    spread, 577 image tokens).
    """
    import transformers as tf

    if name not in FLORENCE_SIZES:
        raise ValueError(f"unknown Florence-2 size {name!r}")
    vision, text_sizes = FLORENCE_SIZES[name]
    folder = Path(folder)
    write_tokenizer(folder, full_size=True)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    added = [f"<loc_{i}>" for i in range(1000)] + list(FLORENCE_TASK_TOKENS)
    tokenizer = tf.BartTokenizer(vocab=vocab, merges=[tuple(line.split()) for line in lines if line],
                                 extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_tokens(added)
    assert len(tokenizer) == 51290, len(tokenizer)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    text = dict(text_sizes, vocab_size=len(tokenizer), max_position_embeddings=1024, activation_function="gelu",
                scale_embedding=False, dropout=0.1, attention_dropout=0.1, activation_dropout=0.1,
                **FLORENCE_GENERATION)
    config = tf.Florence2Config(text_config=text, vision_config=vision, image_token_id=image_token_id,
                                **{k: v for k, v in FLORENCE_GENERATION.items() if k.endswith("token_id")})
    torch.manual_seed(seed)
    model = tf.Florence2ForConditionalGeneration(config).eval()
    state = model.state_dict()
    randomize({k: v for k, v in state.items() if "pos_idx_to_embed" not in k}, seed, scale)
    _quiet_special_tokens(model, tokenizer)
    with torch.no_grad():  # words, not filler or coordinates; and </s> likely enough to end some captions early
        table = model.get_output_embeddings().weight
        table[[i for t, i in tokenizer.get_vocab().items() if t.startswith(("<unused_", "<loc_"))]] = 0.0
        table[tokenizer.eos_token_id] *= eos_scale
    model.save_pretrained(folder)
    tf.GenerationConfig(**FLORENCE_GENERATION).save_pretrained(folder)
    images = tf.CLIPImageProcessorPil(size={"height": 768, "width": 768}, do_center_crop=False,
                                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    images.image_seq_length = 577
    tf.Florence2Processor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the model folders into")
    parser.add_argument("--only", default="", help="comma-separated names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-vocab", action="store_true", help="OFA with the released 59457-token embedding")
    args = parser.parse_args(argv)
    # Florence-2 only when named: florence-2-base is 0.9 GB
    names = [n for n in args.only.split(",") if n] or [*OFA_CONFIGS, *TRANSFORMERS_MODELS]
    for name in names:
        target = args.out / name
        if name in OFA_CONFIGS:
            write_ofa(target, name, seed=args.seed, full_vocab=args.full_vocab)
        elif name in TRANSFORMERS_MODELS:
            write_transformers_captioner(target, name, args.seed)
        elif name in FLORENCE_MODELS:
            write_florence(target, name, seed=args.seed)
        else:
            parser.error(f"unknown model {name!r}")
        print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
