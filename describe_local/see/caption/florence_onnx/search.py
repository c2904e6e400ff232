"""Greedy and beam search in NumPy with ``transformers``' rules, so that Florence-2's tokens match its ``generate``.

OFA's ``ofa_onnx/search.py`` follows fairseq (whose beam search OFA was trained
and evaluated with); Florence-2's released settings are ``transformers``'
(``num_beams=3``, ``early_stopping=True``, ``no_repeat_ngram_size=3``, forced
``<s>`` first and ``</s>`` last), and its beam search differs from fairseq's in
what it keeps, when it stops and how it scores, so it is mirrored here:
``GenerationMixin._sample`` (greedy) and ``_beam_search`` with the n-gram,
forced-BOS and forced-EOS processors. Sequences start with the decoder start
token (``</s>``); ``max_length`` counts it.

Besides the tokens, each result carries the mean log-probability of its tokens
(after ``<s>``, up to and with ``</s>``) under the model's own softmax, before the
search's rules: what the hedge ("It might be ...") is decided on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

NEG = np.float32(-1.0e9)  # transformers' "never" score for beams


@dataclass(frozen=True)
class Rules:
    """``transformers``' generation settings that the searches follow."""

    max_length: int  # with the decoder start token
    beams: int = 1
    no_repeat_ngram: int = 3
    early_stopping: bool = True
    length_penalty: float = 1.0
    start: int = 2
    bos: int | None = 0  # forced after the start token
    eos: int = 2  # forced last, and what ends a sequence
    pad: int = 1
    min_length: int = 0


@dataclass(frozen=True)
class Result:
    tokens: list[int]  # from the start token up to and with </s> (or cut at max_length)
    mean_logprob: float


class Decoder(Protocol):
    def step(self, tokens: np.ndarray, position: int) -> np.ndarray:
        """Logits (N, vocab) after ``tokens`` (N,) at ``position``; grows the cache."""

    def reorder(self, rows: np.ndarray) -> None:
        """Keep cache rows ``rows``."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float32, copy=False)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def process(scores: np.ndarray, sequences: np.ndarray, rules: Rules) -> np.ndarray:
    """The logits processors ``generate`` adds for these rules, in place on ``scores`` (N, vocab)."""
    cur_len = sequences.shape[1]
    n = rules.no_repeat_ngram
    if n > 0 and cur_len + 1 >= n:
        for row, seq in enumerate(sequences.tolist()):
            tail = tuple(seq[cur_len + 1 - n :])
            banned = [seq[i + n - 1] for i in range(cur_len - n + 1) if tuple(seq[i : i + n - 1]) == tail]
            if banned:
                scores[row, banned] = -np.inf
    if cur_len < rules.min_length:
        scores[:, rules.eos] = -np.inf
    if rules.bos is not None and cur_len == 1:
        scores[:] = -np.inf
        scores[:, rules.bos] = 0
    if cur_len == rules.max_length - 1:
        scores[:] = -np.inf
        scores[:, rules.eos] = 0
    return scores


def topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest values along the last axis, sorted descending (ties: lower index first), and indices."""
    part = np.argpartition(-x, k - 1, axis=-1)[..., :k] if k < x.shape[-1] else \
        np.broadcast_to(np.arange(x.shape[-1]), x.shape).copy()
    part.sort(axis=-1)
    order = np.argsort(-np.take_along_axis(x, part, -1), axis=-1, kind="stable")
    index = np.take_along_axis(part, order, -1)
    return np.take_along_axis(x, index, -1), index


def _chosen_logprob(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    lp = log_softmax(logits)
    return np.take_along_axis(lp, tokens[:, None], 1)[:, 0]


def generate(decoder: Decoder, photos: int, rules: Rules) -> list[Result]:
    """The best sequence for each of ``photos`` (the decoder's cache holds ``photos`` rows to start)."""
    if rules.beams <= 1:
        return greedy(decoder, photos, rules)
    decoder.reorder(np.repeat(np.arange(photos), rules.beams))
    return beam_search(decoder, photos, rules)


def greedy(decoder: Decoder, batch: int, rules: Rules) -> list[Result]:
    sequences = np.full((batch, 1), rules.start, dtype=np.int64)
    unfinished = np.ones(batch, dtype=bool)
    logprobs = np.zeros((batch, rules.max_length), dtype=np.float32)
    while True:
        cur_len = sequences.shape[1]
        logits = decoder.step(sequences[:, -1], cur_len - 1)
        scores = process(logits.astype(np.float32, copy=True), sequences, rules)
        chosen = scores.argmax(axis=-1)  # the first of equal maxima, as torch.argmax
        logprobs[:, cur_len] = _chosen_logprob(logits, chosen)
        chosen = np.where(unfinished, chosen, rules.pad)
        sequences = np.concatenate([sequences, chosen[:, None]], axis=1)
        unfinished &= ~((chosen == rules.eos) | (sequences.shape[1] >= rules.max_length))
        if not unfinished.any():
            break
    return [_result(row, lp, rules) for row, lp in zip(sequences, logprobs, strict=True)]


def _result(row: np.ndarray, logprobs: np.ndarray, rules: Rules) -> Result:
    tokens = [int(rules.start)]
    for token in row[1:].tolist():
        tokens.append(token)
        if token == rules.eos:
            break
    scored = logprobs[2 : len(tokens)]  # after <s>
    return Result(tokens, float(scored.mean()) if scored.size else 0.0)


def beam_search(decoder: Decoder, batch: int, rules: Rules) -> list[Result]:
    """``transformers``' ``_beam_search`` (one EOS token, no sampling, one sequence returned per photo)."""
    k, max_length = rules.beams, rules.max_length
    keep = 2 * k
    running = np.full((batch, k, max_length), rules.pad, dtype=np.int64)
    running[:, :, 0] = rules.start
    running_lp = np.zeros((batch, k, max_length), dtype=np.float32)  # each token's own log-probability
    sequences, sequences_lp = running.copy(), running_lp.copy()
    running_scores = np.zeros((batch, k), dtype=np.float32)
    running_scores[:, 1:] = NEG
    beam_scores = np.full((batch, k), NEG, dtype=np.float32)
    finished = np.zeros((batch, k), dtype=bool)
    improvable = np.ones((batch, 1), dtype=bool)
    top_mask = np.arange(keep) < k
    offsets = (np.arange(batch) * k)[:, None]
    cur_len = 1
    while True:
        flat = running[:, :, :cur_len].reshape(batch * k, cur_len)
        logits = decoder.step(flat[:, -1], cur_len - 1)
        raw = log_softmax(logits)
        log_probs = process(raw.copy(), flat, rules).reshape(batch, k, -1)
        vocab = log_probs.shape[-1]
        accumulated = (log_probs + running_scores[:, :, None]).reshape(batch, -1)
        top_scores, top_index = topk(accumulated, keep)
        from_beam, top_ids = top_index // vocab, top_index % vocab
        top_seqs = np.take_along_axis(running, from_beam[:, :, None], 1)
        top_seqs[:, :, cur_len] = top_ids
        top_lp = np.take_along_axis(running_lp, from_beam[:, :, None], 1)
        top_lp[:, :, cur_len] = raw.reshape(batch, k, vocab)[np.arange(batch)[:, None], from_beam, top_ids]
        hits = (top_ids == rules.eos) | (cur_len + 1 >= max_length)

        # the best `k` that go on
        going = top_scores + hits.astype(np.float32) * NEG
        _, chosen = topk(going, k)
        running = np.take_along_axis(top_seqs, chosen[:, :, None], 1)
        running_lp = np.take_along_axis(top_lp, chosen[:, :, None], 1)
        running_scores = np.take_along_axis(going, chosen, 1)
        rows = (np.take_along_axis(from_beam, chosen, 1) + offsets).reshape(-1)

        # the finished: the new ones among the top `k`, if they beat those kept so far
        just_done = hits & top_mask[None, :]
        scored = top_scores / np.float32((cur_len + 1 - 1) ** rules.length_penalty)
        full = finished.all(axis=1, keepdims=True) & rules.early_stopping
        scored = scored + full.astype(np.float32) * NEG
        scored = scored + (~improvable).astype(np.float32) * NEG
        scored = scored + (~just_done).astype(np.float32) * NEG
        merged_scores = np.concatenate([beam_scores, scored], axis=1)
        _, best = topk(merged_scores, k)
        sequences = np.take_along_axis(np.concatenate([sequences, top_seqs], 1), best[:, :, None], 1)
        sequences_lp = np.take_along_axis(np.concatenate([sequences_lp, top_lp], 1), best[:, :, None], 1)
        beam_scores = np.take_along_axis(merged_scores, best, 1)
        finished = np.take_along_axis(np.concatenate([finished, just_done], 1), best, 1)

        decoder.reorder(rows)
        cur_len += 1
        hypothetical = cur_len - 1
        best_running = running_scores[:, :1] / np.float32(hypothetical ** rules.length_penalty)
        worst_finished = np.where(finished, beam_scores.min(axis=1, keepdims=True), NEG)
        improvable = improvable & (best_running > worst_finished).any(axis=-1, keepdims=True)
        open_beam = not (finished.all() and rules.early_stopping)
        if not (improvable.any() and open_beam and not hits.all()):
            break
    return [_result(sequences[b, 0], sequences_lp[b, 0], rules) for b in range(batch)]
