"""Greedy and beam search in NumPy, the same rules as the torch engine's ``ofa/generate.py``.

Line for line a mirror of ``_greedy``, ``_beam_search`` and ``_ban`` there
(fairseq's ``SequenceGenerator``: 2 x beam candidates, hypotheses finishing at
``</s>`` among the top ``beam``, length-normalised scores, no repeated n-grams,
minimum and maximum lengths), so that the same logits give the same tokens.
Scores are float32 as there. Top-k breaks ties by the lower index (torch does
not promise an order; with real-valued scores ties do not occur in practice).

The decoder is anything with ``top(tokens, t, ban, k)`` and ``reorder(rows,
kept)`` (see :class:`StepDecoder`): the search says which tokens each row may
not take (an additive mask of 0 and -inf, :func:`ban_mask`), the decoder
returns each row's ``k`` best log-probabilities after it. The exported graph
does log-softmax, the mask and top-k itself; :func:`top_from_logits` is the
same in NumPy, for a decoder that only gives logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from describe_local.see.caption.ofa.options import SearchOptions


@dataclass(frozen=True)
class SpecialIds:
    bos: int = 0
    pad: int = 1
    eos: int = 2


class StepDecoder(Protocol):
    vocab: int

    def top(self, tokens: np.ndarray, t: int, ban: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """After ``tokens`` (N,), the tokens at position ``t``: each row's ``k`` best float32
        log-probabilities plus ``ban`` (N or 1, vocab), sorted, ties to the lower token, and their
        tokens, each (N, k). A NaN log-probability counts as -inf. Grows the cache."""

    def reorder(self, rows: np.ndarray, kept: np.ndarray | None) -> None:
        """Keep cache rows ``rows`` (hypotheses) and, when given, photos ``kept``."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """float32 log-probabilities over the last axis."""
    x = logits.astype(np.float32, copy=False)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def topk(x: np.ndarray, k: int, *, largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (or smallest) values along the last axis, sorted, and their indices."""
    key = -x if largest else x
    n = x.shape[-1]
    part = np.argpartition(key, k - 1, axis=-1)[..., :k] if k < n else np.broadcast_to(np.arange(n), x.shape).copy()
    part.sort(axis=-1)  # lower index first among equal values, kept by the stable sort below
    order = np.argsort(np.take_along_axis(key, part, -1), axis=-1, kind="stable")
    index = np.take_along_axis(part, order, -1)
    return np.take_along_axis(x, index, -1), index


def top_from_logits(logits: np.ndarray, ban: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """What the decoder graph computes from its logits: log-softmax, NaN as -inf, ``ban`` added, top ``k``."""
    lprobs = log_softmax(logits)
    lprobs[np.isnan(lprobs)] = -np.inf
    return topk(lprobs + ban, k)


def ban_mask(rows: int, vocab: int, step: int, options: SearchOptions, ids: SpecialIds,
             tokens: np.ndarray) -> np.ndarray:
    """(rows, vocab) float32: -inf where the rules refuse a token at ``step``, else 0."""
    mask = np.zeros((rows, vocab), dtype=np.float32)
    ban(mask, step, options, ids, tokens)
    return mask


def ban(lprobs: np.ndarray, step: int, options: SearchOptions, ids: SpecialIds, tokens: np.ndarray) -> None:
    """Apply the length rules, never-pad, and the n-gram rule to ``lprobs`` (or a zero mask) in place."""
    if step < options.min_tokens:
        lprobs[:, ids.eos] = -np.inf
    lprobs[:, ids.pad] = -np.inf
    if step >= options.max_tokens:
        keep = lprobs[:, ids.eos].copy()
        lprobs.fill(-np.inf)
        lprobs[:, ids.eos] = keep
    n = options.no_repeat_ngram
    if n > 0 and step + 2 - n >= 0:
        _block_repeats(lprobs, tokens[:, : step + 1], n)


def _block_repeats(lprobs: np.ndarray, history: np.ndarray, n: int) -> None:
    for row, seq in enumerate(history.tolist()):
        tail = tuple(seq[len(seq) - (n - 1) :]) if n > 1 else ()
        banned = [seq[i + n - 1] for i in range(len(seq) - n + 1) if tuple(seq[i : i + n - 1]) == tail]
        if banned:
            lprobs[row, banned] = -np.inf


def generate(decoder: StepDecoder, photos: int, options: SearchOptions, ids: SpecialIds) -> list[list[int]]:
    """The best token ids (without ``<s>``/``</s>``) for each of ``photos``; the decoder's cache starts empty."""
    if options.beam <= 1:
        return greedy(decoder, photos, options, ids)
    return beam_search(decoder, photos, options, ids)


def greedy(decoder: StepDecoder, batch: int, options: SearchOptions, ids: SpecialIds) -> list[list[int]]:
    tokens = np.full((batch, options.max_tokens + 2), ids.pad, dtype=np.int64)
    tokens[:, 0] = ids.bos
    done = np.zeros(batch, dtype=bool)
    for step in range(options.max_tokens + 1):
        if step == options.max_tokens:
            # only </s> is allowed now, so it is the argmax (unless the model gave NaN logits, when
            # the torch engine picks token 0): one decoder step, a 17th of a 16-token caption, saved
            choice = np.full(batch, ids.eos, dtype=np.int64)
        else:
            mask = ban_mask(batch, decoder.vocab, step, options, ids, tokens)
            _, best = decoder.top(tokens[:, step], step, mask, 1)
            choice = best[:, 0].astype(np.int64)  # argmax: the first of equal maxima, as top-k's ties
        choice[done] = ids.pad
        tokens[:, step + 1] = choice
        done |= choice == ids.eos
        if done.all():
            break
    results = []
    for row in tokens[:, 1:].tolist():
        out = []
        for token in row:
            if token in (ids.eos, ids.pad):
                break
            out.append(token)
        results.append(out)
    return results


def beam_search(decoder: StepDecoder, bsz: int, options: SearchOptions, ids: SpecialIds) -> list[list[int]]:
    eos, beam, max_len = ids.eos, options.beam, options.max_tokens
    tokens = np.full((bsz * beam, max_len + 2), ids.pad, dtype=np.int64)
    tokens[:, 0] = ids.bos
    scores = np.zeros((bsz * beam, max_len + 1), dtype=np.float32)
    finalized: list[list[tuple[float, list[int]]]] = [[] for _ in range(bsz)]
    finished = [False] * bsz
    remaining = bsz
    sentence_ids = list(range(bsz))  # row -> original photo of the sentences still searched
    cand_size = 2 * beam
    cands_to_ignore = np.zeros((bsz, beam), dtype=bool)
    reorder: np.ndarray | None = None
    kept: np.ndarray | None = None

    for step in range(max_len + 1):
        vocab = decoder.vocab
        if step == 0:
            # every beam starts the same: one row per photo, then its cache copied per beam
            mask = ban_mask(bsz, vocab, 0, options, ids, tokens[::beam])
            row_scores, row_tokens = decoder.top(tokens[::beam, 0], 0, mask, min(cand_size, vocab))
            decoder.reorder(np.repeat(np.arange(bsz), beam), None)
            row_scores, row_tokens, rows_each = row_scores[:, None], row_tokens[:, None], 1
        else:
            if kept is not None:
                shift = kept - np.arange(kept.size)
                reorder = (reorder.reshape(-1, beam) + shift[:, None] * beam).reshape(-1)
            decoder.reorder(reorder, kept)
            mask = ban_mask(bsz * beam, vocab, step, options, ids, tokens)
            row_scores, row_tokens = decoder.top(tokens[:, step], step, mask, min(cand_size, vocab))
            row_scores, row_tokens = row_scores.reshape(bsz, beam, -1), row_tokens.reshape(bsz, beam, -1)
            rows_each = beam
        if step:
            row_scores = row_scores + scores.reshape(bsz, beam, -1)[:, :, step - 1][..., None]
        per_row = row_scores.shape[-1]
        k = min(cand_size, rows_each * vocab - 1)
        cand_scores, picked = topk(row_scores.reshape(bsz, -1), k)
        cand_beams = picked // per_row
        cand_tokens = np.take_along_axis(row_tokens.reshape(bsz, -1), picked, 1)
        cand_rows = cand_beams + (np.arange(bsz) * beam)[:, None]

        eos_mask = (cand_tokens == eos) & (cand_scores != -np.inf)
        eos_mask[:, :beam][cands_to_ignore] = False
        top_eos = eos_mask[:, :beam]
        newly_finished: list[int] = []
        if top_eos.any():
            touched = []
            for row, score in zip(cand_rows[:, :beam][top_eos].tolist(), cand_scores[:, :beam][top_eos].tolist(),
                                  strict=True):
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
            keep_mask = np.ones(bsz, dtype=bool)
            keep_mask[newly_finished] = False
            kept = np.arange(bsz)[keep_mask]
            sentence_ids = [sentence_ids[i] for i in kept.tolist()]
            eos_mask, cand_beams, cand_scores = eos_mask[kept], cand_beams[kept], cand_scores[kept]
            cand_tokens, cands_to_ignore = cand_tokens[kept], cands_to_ignore[kept]
            bsz = len(sentence_ids)
            cand_rows = cand_beams + (np.arange(bsz) * beam)[:, None]
            scores = scores.reshape(-1, beam, scores.shape[-1])[kept].reshape(bsz * beam, -1)
            tokens = tokens.reshape(-1, beam, tokens.shape[-1])[kept].reshape(bsz * beam, -1)

        # continue with the best `beam` candidates that did not just end
        eos_mask[:, :beam] = ~((~cands_to_ignore) & (~eos_mask[:, :beam]))
        active_mask = eos_mask.astype(np.int64) * cand_size + np.arange(eos_mask.shape[1])
        new_ignore, active = topk(active_mask, beam, largest=False)
        cands_to_ignore = (new_ignore >= cand_size)[:, :beam]
        active_rows = np.take_along_axis(cand_rows, active, 1).reshape(-1)
        tokens[:, : step + 1] = tokens[active_rows, : step + 1]
        tokens[:, step + 1] = np.take_along_axis(cand_tokens, active, 1).reshape(-1)
        if step > 0:
            scores[:, :step] = scores[active_rows, :step]
        scores[:, step] = np.take_along_axis(cand_scores, active, 1).reshape(-1)
        reorder = active_rows

    results = []
    for hyps in finalized:
        best = max(hyps, key=lambda h: h[0]) if hyps else (0.0, [])
        results.append(best[1])
    return results

