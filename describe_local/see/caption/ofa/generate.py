"""Decoding: greedy and beam search over OFA with a key/value cache.

The encoder runs once per image; each step feeds one token per hypothesis and
reuses the cached keys and values. Beam search follows fairseq's
``SequenceGenerator`` (what OFA was evaluated with, and what the reference
implementation runs): 2 x beam candidates per step, hypotheses finish at
``</s>`` among the top ``beam`` candidates, scores normalised by
``length ** length_penalty``, no repeated n-grams, a minimum and maximum length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from describe_local.see.caption.ofa.model import EncoderOutput, OFAModel, padding_bias
from describe_local.see.caption.ofa.options import SearchOptions


@dataclass
class _Setup:
    caches: list
    self_bias: torch.Tensor
    cross_bias: torch.Tensor
    pad_bias: torch.Tensor | None


def _setup(model: OFAModel, encoder_out: EncoderOutput, rows: int, length: int) -> _Setup:
    decoder = model.decoder
    self_bias, cross_bias = decoder.position_biases(length, encoder_out.positions)
    dtype = encoder_out.hidden.dtype
    return _Setup(
        caches=decoder.start(encoder_out, rows, length),
        self_bias=self_bias.to(dtype),
        cross_bias=cross_bias.to(dtype),
        pad_bias=padding_bias(encoder_out),
    )


def _log_probs(model: OFAModel, setup: _Setup, tokens: torch.Tensor, t: int) -> torch.Tensor:
    logits = model.decoder.step(tokens, t, setup.caches, setup.self_bias, setup.cross_bias, setup.pad_bias)
    return torch.log_softmax(logits.float(), dim=-1)


@torch.inference_mode()
def teacher_forced_logits(model: OFAModel, encoder_out: EncoderOutput, tokens: torch.Tensor) -> torch.Tensor:
    """Logits (B, L, vocab) after each prefix of ``tokens`` (B, L), computed step by step."""
    rows, length = tokens.shape
    setup = _setup(model, encoder_out, rows, length)
    steps = [
        model.decoder.step(tokens[:, t], t, setup.caches, setup.self_bias, setup.cross_bias, setup.pad_bias)
        for t in range(length)
    ]
    return torch.stack(steps, dim=1)


def generate(model: OFAModel, encoder_out: EncoderOutput, options: SearchOptions) -> list[list[int]]:
    """The best token ids (without ``<s>``/``</s>``) for each image of ``encoder_out``."""
    if options.beam <= 1:
        return _greedy(model, encoder_out, options)
    return _beam_search(model, encoder_out, options)


def _ban(lprobs: torch.Tensor, step: int, options: SearchOptions, config, tokens: torch.Tensor) -> None:
    """Apply the length rules, never-pad, and the n-gram rule to ``lprobs`` in place."""
    torch.nan_to_num_(lprobs, nan=-math.inf)
    eos, pad = config.eos_token_id, config.pad_token_id
    if step < options.min_tokens:
        lprobs[:, eos] = -math.inf
    lprobs[:, pad] = -math.inf
    if step >= options.max_tokens:
        keep = lprobs[:, eos].clone()
        lprobs.fill_(-math.inf)
        lprobs[:, eos] = keep
    n = options.no_repeat_ngram
    if n > 0 and step + 2 - n >= 0:
        _block_repeats(lprobs, tokens[:, : step + 1], n)


def _block_repeats(lprobs: torch.Tensor, history: torch.Tensor, n: int) -> None:
    """Forbid any token that would repeat an n-gram already in ``history`` (``<s>`` included)."""
    for row, seq in enumerate(history.tolist()):
        tail = tuple(seq[len(seq) - (n - 1) :]) if n > 1 else ()
        banned = [seq[i + n - 1] for i in range(len(seq) - n + 1) if tuple(seq[i : i + n - 1]) == tail]
        if banned:
            lprobs[row, banned] = -math.inf


@torch.inference_mode()
def _greedy(model: OFAModel, encoder_out: EncoderOutput, options: SearchOptions) -> list[list[int]]:
    config = model.config
    batch = encoder_out.hidden.shape[0]
    device = encoder_out.hidden.device
    length = options.max_tokens + 1
    setup = _setup(model, encoder_out, batch, length)
    tokens = torch.full((batch, options.max_tokens + 2), config.pad_token_id, dtype=torch.long, device=device)
    tokens[:, 0] = config.bos_token_id
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    for step in range(options.max_tokens + 1):
        lprobs = _log_probs(model, setup, tokens[:, step], step)
        _ban(lprobs, step, options, config, tokens)
        choice = lprobs.argmax(dim=-1)
        choice[done] = config.pad_token_id
        tokens[:, step + 1] = choice
        done |= choice.eq(config.eos_token_id)
        if bool(done.all()):
            break
    results = []
    for row in tokens[:, 1:].tolist():
        out = []
        for token in row:
            if token in (config.eos_token_id, config.pad_token_id):
                break
            out.append(token)
        results.append(out)
    return results


@torch.inference_mode()
def _beam_search(model: OFAModel, encoder_out: EncoderOutput, options: SearchOptions) -> list[list[int]]:
    config = model.config
    eos = config.eos_token_id
    beam = options.beam
    bsz = encoder_out.hidden.shape[0]
    device = encoder_out.hidden.device
    max_len = options.max_tokens
    setup = _setup(model, encoder_out, bsz, max_len + 1)  # one row per image until step 1

    tokens = torch.full((bsz * beam, max_len + 2), config.pad_token_id, dtype=torch.long, device=device)
    tokens[:, 0] = config.bos_token_id
    scores = torch.zeros(bsz * beam, max_len + 1, device=device)
    finalized: list[list[tuple[float, list[int]]]] = [[] for _ in range(bsz)]
    finished = [False] * bsz
    remaining = bsz
    # row -> original image index of the sentences still being searched
    sentence_ids = list(range(bsz))
    cand_size = 2 * beam
    cands_to_ignore = torch.zeros(bsz, beam, dtype=torch.bool, device=device)
    reorder: torch.Tensor | None = None
    kept: torch.Tensor | None = None

    for step in range(max_len + 1):
        if step == 0:
            # Every beam starts the same: decode one row per image, then copy its cache per beam.
            lprobs = _log_probs(model, setup, tokens[::beam, 0], 0)
            _ban(lprobs, 0, options, config, tokens[::beam])
            _reorder_caches(setup, torch.arange(bsz, device=device).repeat_interleave(beam), None)
            lp = lprobs.unsqueeze(1)  # (bsz, 1, vocab)
        else:
            if kept is not None:
                # rows of dropped sentences vanish: shift the beam indices accordingly
                shift = kept - torch.arange(kept.numel(), device=device)
                reorder = (reorder.view(-1, beam) + shift[:, None] * beam).view(-1)
            _reorder_caches(setup, reorder, kept)
            lprobs = _log_probs(model, setup, tokens[:, step], step)
            _ban(lprobs, step, options, config, tokens)
            lp = lprobs.view(bsz, beam, -1)
        vocab = lp.shape[-1]
        # The best 2 x beam continuations overall are among the best 2 x beam of each
        # hypothesis: select per hypothesis first, then add the running scores.
        row_scores, row_tokens = torch.topk(lp, k=min(cand_size, vocab), dim=-1)
        if step:
            row_scores = row_scores + scores.view(bsz, beam, -1)[:, :, step - 1].unsqueeze(-1)
        per_row = row_scores.shape[-1]
        k = min(cand_size, lp.shape[1] * vocab - 1)
        cand_scores, picked = torch.topk(row_scores.reshape(bsz, -1), k=k)
        cand_beams = torch.div(picked, per_row, rounding_mode="floor")
        cand_tokens = torch.gather(row_tokens.reshape(bsz, -1), 1, picked)
        offsets = (torch.arange(bsz, device=device) * beam)[:, None]
        cand_rows = cand_beams + offsets

        eos_mask = cand_tokens.eq(eos) & cand_scores.ne(-math.inf)
        eos_mask[:, :beam][cands_to_ignore] = False
        top_eos = eos_mask[:, :beam]
        newly_finished: list[int] = []
        if bool(top_eos.any()):
            rows = torch.masked_select(cand_rows[:, :beam], top_eos).tolist()
            row_scores = torch.masked_select(cand_scores[:, :beam], top_eos).tolist()
            touched = []
            for row, score in zip(rows, row_scores, strict=False):
                local = row // beam
                sent = sentence_ids[local]
                if len(finalized[sent]) < beam:
                    hypothesis = tokens[row, 1 : step + 1].tolist()
                    finalized[sent].append((score / (step + 1) ** options.length_penalty, hypothesis))
                touched.append(local)
            for local in sorted(set(touched)):
                sent = sentence_ids[local]
                if not finished[sent] and (len(finalized[sent]) == beam or step == max_len):
                    finished[sent] = True
                    newly_finished.append(local)
            remaining -= len(newly_finished)
        if remaining == 0 or step >= max_len:
            break

        kept = None
        if newly_finished:
            keep_mask = torch.ones(bsz, dtype=torch.bool, device=device)
            keep_mask[newly_finished] = False
            kept = torch.arange(bsz, device=device)[keep_mask]
            sentence_ids = [sentence_ids[i] for i in kept.tolist()]
            eos_mask = eos_mask[kept]
            cand_beams = cand_beams[kept]
            cand_scores = cand_scores[kept]
            cand_tokens = cand_tokens[kept]
            cands_to_ignore = cands_to_ignore[kept]
            bsz = len(sentence_ids)
            cand_rows = cand_beams + (torch.arange(bsz, device=device) * beam)[:, None]
            scores = scores.view(-1, beam, scores.shape[-1])[kept].view(bsz * beam, -1)
            tokens = tokens.view(-1, beam, tokens.shape[-1])[kept].view(bsz * beam, -1)

        # continue with the best `beam` candidates that did not just end
        eos_mask[:, :beam] = ~((~cands_to_ignore) & (~eos_mask[:, :beam]))
        cand_offsets = torch.arange(eos_mask.shape[1], device=device)
        active_mask = eos_mask.long() * cand_size + cand_offsets
        new_ignore, active = torch.topk(active_mask, k=beam, dim=1, largest=False)
        cands_to_ignore = new_ignore.ge(cand_size)[:, :beam]
        active_rows = torch.gather(cand_rows, 1, active).view(-1)
        tokens[:, : step + 1] = tokens[active_rows, : step + 1]
        tokens.view(bsz, beam, -1)[:, :, step + 1] = torch.gather(cand_tokens, 1, active)
        if step > 0:
            scores[:, :step] = scores[active_rows, :step]
        scores.view(bsz, beam, -1)[:, :, step] = torch.gather(cand_scores, 1, active)
        reorder = active_rows

    results = []
    for hyps in finalized:
        best = max(hyps, key=lambda h: h[0]) if hyps else (0.0, [])
        results.append(best[1])
    return results


def _reorder_caches(setup: _Setup, rows: torch.Tensor, kept: torch.Tensor | None) -> None:
    """Follow the surviving hypotheses: self-attention caches by row, cross caches by image."""
    for cache in setup.caches:
        cache.keys = cache.keys.index_select(0, rows)
        cache.values = cache.values.index_select(0, rows)
        if kept is not None:
            cache.cross_keys = cache.cross_keys.index_select(0, kept)
            cache.cross_values = cache.cross_values.index_select(0, kept)
    if kept is not None and setup.pad_bias is not None:
        setup.pad_bias = setup.pad_bias.index_select(0, kept)
