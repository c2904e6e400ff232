#!/usr/bin/env python3
"""Reference outputs of modelscope's OFA implementation, for the equality tests and the benchmark.

Runs in ``.venv-ref`` (built by ``scripts/reference/setup``: modelscope with
transformers 4.x), never in the main environment. It

1. builds modelscope's ``OFAModel`` from a tiny- or medium-sized config and
   fills it with seeded random weights (``make_tiny_models.randomize``), raising
   the weight scale until different photos get different captions;
2. saves it with ``save_pretrained`` in the released Hugging Face on-disk format
   (``config.json``, ``pytorch_model.bin``, plus the
   toy ``vocab.json`` / ``merges.txt``);
3. records, for the given photos: encoder outputs, teacher-forced decoder
   logits, greedy and beam-search tokens from modelscope's fairseq-style
   ``SequenceGenerator`` (batched, and with padded prompts), and the ids
   modelscope's ``OFATokenizer`` gives to prompts with ``<bin_*>`` tokens.

    .venv-ref/bin/python scripts/reference/ofa_reference.py OUT_DIR --size ofa-tiny IMAGE...

``fairseq`` (no wheel for Python 3.11+) is imported by modules that OFA's
caption path never runs; it is replaced by empty stand-in modules here only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # scripts/: make_tiny_models

import make_tiny_models  # noqa: E402

CAPTION_PROMPT = " what does the image describe?"
QUESTIONS = [" what colour is the car?", " how many people are there?", " is it day?", " what is it?"]
BIN_PROMPTS = [
    " which region does the text \" a dog \" describe?",
    " what does the region describe? region: <bin_12> <bin_40> <bin_305> <bin_999>",
    "<bin_0><bin_1> <code_5>  two  spaces<bin_7>",
    " Don't stop — café №5, 3.14 apples!",
]


def stub_fairseq() -> None:
    """Empty ``fairseq`` modules: imported at module level by OFA code the caption path never calls."""

    class _Unused:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("fairseq stand-in: not available in the reference environment")

    names = {
        "fairseq": {},
        "fairseq.data": {},
        "fairseq.data.data_utils": {"compute_mask_indices": _Unused},
        "fairseq.models": {},
        "fairseq.models.wav2vec": {},
        "fairseq.models.wav2vec.wav2vec2": {"TransformerSentenceEncoderLayer": _Unused},
        "fairseq.modules": {"LayerNorm": _Unused, "SamePad": _Unused, "TransposeLast": _Unused},
        "fairseq.modules.transformer_sentence_encoder": {"init_bert_params": _Unused},
        "fairseq.utils": {"index_put": _Unused},
    }
    for name, attrs in names.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules.setdefault(name, module)


def torchvision_like(image: Image.Image, size: int) -> torch.Tensor:
    """modelscope's OFA transform (torchvision Resize bicubic, ToTensor, Normalize 0.5) on a PIL image.

    torchvision resizes PIL images with PIL itself; ToTensor divides uint8 by 255
    in float32; Normalize subtracts and divides in float32.
    """
    resized = image.convert("RGB").resize((size, size), Image.BICUBIC)
    t = torch.from_numpy(np.array(resized, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    t = t.to(torch.float32).div(255)
    return (t - 0.5) / 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--size", default="ofa-tiny", choices=sorted(make_tiny_models.OFA_CONFIGS))
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--scales", default="1,2,3,4,6")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--full-vocab", action="store_true", help="the released 59457-token vocabulary size")
    parser.add_argument("--bench", type=int, default=0, help="time N captions per mode instead")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    stub_fairseq()
    from modelscope.models.multi_modal.ofa import OFAModel, OFATokenizer
    from modelscope.models.multi_modal.ofa.configuration_ofa import OFAConfig
    from modelscope.models.multi_modal.ofa.generate.sequence_generator import SequenceGenerator

    out: Path = args.out
    tokens = make_tiny_models.write_tokenizer(out, full_size=args.full_vocab)
    config_dict = make_tiny_models.ofa_config(args.size, tokens)
    config = OFAConfig(**{k: v for k, v in config_dict.items() if k not in ("architectures", "model_type")})
    config.architectures = ["OFAModel"]
    torch.manual_seed(args.seed)
    model = OFAModel(config).eval()

    tokenizer = OFATokenizer.from_pretrained(str(out))
    tokenizer.add_tokens([f"<code_{i}>" for i in range(8192)])
    tokenizer.add_tokens([f"<bin_{i}>" for i in range(1000)])

    images = [Image.open(p) for p in args.images]
    pixels = torch.stack([torchvision_like(im, args.resolution) for im in images]) if images else None

    def encode(prompts: list[str]) -> torch.Tensor:
        rows = [[tokenizer.bos_token_id, *tokenizer(p, add_special_tokens=False)["input_ids"],
                 tokenizer.eos_token_id] for p in prompts]
        width = max(len(r) for r in rows)
        return torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])

    def run(generator, ids, patch) -> list[list[int]]:
        sample = {"net_input": {"input_ids": ids, "patch_images": patch,
                                "patch_masks": torch.ones(len(ids), dtype=torch.bool)}}
        with torch.no_grad():
            hypos = generator.generate([model], sample)
        return [[int(t) for t in h[0]["tokens"][:-1]] if h[0]["tokens"][-1] == 2 else
                [int(t) for t in h[0]["tokens"]] for h in hypos]

    def generator(beam: int, greedy: bool, forced: int = 0):
        if greedy:
            return SequenceGenerator(tokenizer=tokenizer, beam_size=1, max_len_b=args.max_tokens,
                                     min_len=forced, no_repeat_ngram_size=0)
        return SequenceGenerator(tokenizer=tokenizer, beam_size=beam, max_len_b=args.max_tokens,
                                 min_len=forced or 1, no_repeat_ngram_size=3)

    state = model.state_dict()
    chosen = None
    for scale in [float(s) for s in args.scales.split(",")]:
        make_tiny_models.randomize(state, args.seed, scale)
        if not images or args.bench:
            chosen = scale
            break
        captions = run(generator(1, True), encode([CAPTION_PROMPT] * len(images)), pixels)
        distinct = len({tuple(c) for c in captions})
        print(f"scale {scale}: {distinct} distinct greedy captions of {len(images)}", file=sys.stderr)
        if distinct == len(images):
            chosen = scale
            break
    if chosen is None:
        print("no weight scale gave every photo its own caption", file=sys.stderr)
        return 1
    # pytorch_model.bin, as the released OFA-Sys folders have it (tied embeddings saved under each name)
    model.save_pretrained(str(out), safe_serialization=False)

    if args.bench:
        return bench(args, model, encode, run, generator, pixels)

    result: dict = {"seed": args.seed, "scale": chosen, "size": args.size, "resolution": args.resolution,
                    "images": [str(p) for p in args.images]}
    result["bin_prompts"] = {p: tokenizer(p, add_special_tokens=False)["input_ids"] for p in BIN_PROMPTS}
    if images:
        caption_ids = encode([CAPTION_PROMPT] * len(images))
        question_ids = encode([QUESTIONS[i % len(QUESTIONS)] for i in range(len(images))])
        with torch.no_grad():
            enc = model.encoder(input_ids=caption_ids, patch_images=pixels,
                                patch_masks=torch.ones(len(images), dtype=torch.bool))
            enc_q = model.encoder(input_ids=question_ids, patch_images=pixels,
                                  patch_masks=torch.ones(len(images), dtype=torch.bool))
        result["caption_ids"] = caption_ids
        result["question_ids"] = question_ids
        result["encoder_out"] = enc.last_hidden_state
        result["encoder_out_questions"] = enc_q.last_hidden_state
        result["encoder_padding_questions"] = enc_q.padding_mask
        result["greedy"] = run(generator(1, True), caption_ids, pixels)
        result["beam"] = run(generator(5, False), caption_ids, pixels)
        result["beam_questions"] = run(generator(5, False), question_ids, pixels)
        result["greedy_questions"] = run(generator(1, True), question_ids, pixels)
        # Teacher-forced logits along the beam captions, from the full (uncached) decoder.
        width = max(len(c) for c in result["beam"]) + 1
        forced = torch.full((len(images), width), tokenizer.pad_token_id)
        forced[:, 0] = tokenizer.bos_token_id
        for i, c in enumerate(result["beam"]):
            forced[i, 1 : 1 + len(c)] = torch.tensor(c, dtype=torch.long)
        # keep the prefix free of pads so that both sides see the same positions
        length = min(len(c) for c in result["beam"]) + 1
        forced = forced[:, :length]
        with torch.no_grad():
            logits = model(input_ids=caption_ids, patch_images=pixels,
                           patch_masks=torch.ones(len(images), dtype=torch.bool),
                           decoder_input_ids=forced).logits
        result["forced_tokens"] = forced
        result["forced_logits"] = logits
        early_stopping(result, model, tokenizer, out, run, generator, caption_ids, question_ids, pixels)
    torch.save(result, out / "reference.pt")
    (out / "reference.json").write_text(
        json.dumps({k: v for k, v in result.items() if isinstance(v, (int, float, str, list, dict))},
                   indent=1), encoding="utf-8")
    return 0


def early_stopping(result, model, tokenizer, out, run, generator, caption_ids, question_ids, pixels) -> None:
    """A second checkpoint whose ``</s>`` is likely, so that hypotheses end at different steps.

    With the main weights every caption runs to the length limit; here the
    ``</s>`` embedding is scaled up until beam search finishes hypotheses and
    sentences early and unevenly, which exercises its bookkeeping.
    """
    embedding = model.encoder.embed_tokens.weight
    original = embedding[tokenizer.eos_token_id].clone()
    for factor in (2.0, 3.0, 4.0, 6.0, 8.0):
        with torch.no_grad():
            embedding[tokenizer.eos_token_id] = original * factor
        beam = run(generator(5, False), caption_ids, pixels)
        lengths = {len(c) for c in beam}
        print(f"</s> x{factor}: beam lengths {sorted(lengths)}", file=sys.stderr)
        if len(lengths) > 1 and min(lengths) < max(len(c) for c in result["beam"]):
            break
    else:
        raise SystemExit("no </s> scale made captions end early")
    early = out / "early"
    model.save_pretrained(str(early), safe_serialization=False)
    for name in ("vocab.json", "merges.txt"):
        (early / name).write_bytes((out / name).read_bytes())
    result["early_factor"] = factor
    result["early_beam"] = beam
    result["early_greedy"] = run(generator(1, True), caption_ids, pixels)
    result["early_beam_questions"] = run(generator(5, False), question_ids, pixels)
    with torch.no_grad():
        embedding[tokenizer.eos_token_id] = original


def bench(args, model, encode, run, generator, pixels) -> int:
    """Median seconds per caption for greedy and beam 5, 16 tokens forced, one photo at a time."""
    import resource

    ids = encode([CAPTION_PROMPT])
    patch = pixels[:1]
    report = {}
    for mode, gen in (("greedy", generator(1, True, forced=args.max_tokens)),
                      ("beam5", generator(5, False, forced=args.max_tokens))):
        run(gen, ids, patch)  # warm-up
        times = []
        for _ in range(args.bench):
            start = time.perf_counter()
            tokens = run(gen, ids, patch)
            times.append(time.perf_counter() - start)
        assert len(tokens[0]) == args.max_tokens, tokens
        report[mode] = float(np.median(times))
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
