"""The NumPy greedy and beam search against the torch engine's, on the same made-up logits.

A stand-in decoder gives logits that depend on the photo and the whole token
history (pseudo-random, with ``</s>`` growing likelier), so that hypotheses end
at different steps and photos drop out of the beam batch; both searches must
pick the same tokens.
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import numpy as np
import pytest

from describe_local.see.caption.ofa_onnx import search

VOCAB = 40
IDS = search.SpecialIds()


def fake_logits(photo: int, history: list[int]) -> np.ndarray:
    seed = zlib.crc32(np.array([photo, *history], dtype=np.int64).tobytes())
    logits = np.random.default_rng(seed).normal(0.0, 2.0, VOCAB).astype(np.float32)
    logits[IDS.eos] += 0.6 * len(history) - 2.0
    return logits


class NumpyFake:
    vocab = VOCAB

    def __init__(self, photos: int) -> None:
        self.photos = np.arange(photos)
        self.history = np.zeros((photos, 0), dtype=np.int64)

    def top(self, tokens: np.ndarray, t: int, ban: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.history = np.concatenate([self.history, tokens[:, None]], axis=1)
        beams = len(tokens) // len(self.photos)
        logits = np.stack([fake_logits(int(self.photos[r // beams]), row) for r, row in
                           enumerate(self.history.tolist())])
        return search.top_from_logits(logits, ban, k)

    def reorder(self, rows: np.ndarray, kept: np.ndarray | None) -> None:
        self.history = self.history[rows]
        if kept is not None:
            self.photos = self.photos[kept]


def torch_generate(photos: int, options: search.SearchOptions) -> list[list[int]]:
    torch = pytest.importorskip("torch")
    from describe_local.see.caption.ofa.generate import SearchOptions, generate
    from describe_local.see.caption.ofa.layers import LayerCache
    from describe_local.see.caption.ofa.model import EncoderOutput

    class Decoder:
        def position_biases(self, length, positions):
            return torch.zeros(1, 1, length, length), torch.zeros(1, length, 1)

        def start(self, encoder_out, rows, max_len):
            photo_ids = torch.arange(encoder_out.hidden.shape[0], dtype=torch.float32).view(-1, 1, 1, 1)
            history = torch.zeros(rows, 1, max_len, 1)
            return [LayerCache(keys=history, values=history.clone(), cross_keys=photo_ids, cross_values=photo_ids)]

        def step(self, tokens, t, caches, self_bias, cross_bias, padding_bias):
            cache = caches[0]
            cache.keys[:, 0, t, 0] = tokens.float()
            beams = len(tokens) // cache.cross_keys.shape[0]
            rows = cache.keys[:, 0, : t + 1, 0].long().tolist()
            return torch.from_numpy(np.stack([
                fake_logits(int(cache.cross_keys[r // beams].item()), row) for r, row in enumerate(rows)
            ]))

    model = SimpleNamespace(decoder=Decoder(), config=SimpleNamespace(bos_token_id=IDS.bos, pad_token_id=IDS.pad,
                                                                       eos_token_id=IDS.eos))
    encoder_out = EncoderOutput(hidden=torch.zeros(photos, 1, 1), padding=None, positions=torch.zeros(1, 1, 1))
    return generate(model, encoder_out, SearchOptions(**options.__dict__))


OPTIONS = [
    search.SearchOptions.plain_greedy(12),
    search.SearchOptions(beam=1, max_tokens=10, min_tokens=3, no_repeat_ngram=2),
    search.SearchOptions(beam=5, max_tokens=16),
    search.SearchOptions(beam=3, max_tokens=9, min_tokens=4, no_repeat_ngram=2, length_penalty=0.5),
    search.SearchOptions(beam=4, max_tokens=6, min_tokens=6),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"beam{o.beam}-max{o.max_tokens}-min{o.min_tokens}")
def test_same_tokens_as_the_torch_engine(options):
    photos = 6
    ours = search.generate(NumpyFake(photos), photos, options, IDS)
    assert ours == torch_generate(photos, options)
    assert all(len(ids) <= options.max_tokens for ids in ours)
    if options.min_tokens == options.max_tokens:
        assert all(len(ids) == options.max_tokens for ids in ours)


def test_search_options_match_the_engine():
    pytest.importorskip("torch")
    from describe_local.see.caption.ofa.generate import SearchOptions

    assert search.SearchOptions().__dict__ == SearchOptions().__dict__


def test_topk_sorted_ties_by_lower_index():
    values, index = search.topk(np.array([[1.0, 3.0, 3.0, -np.inf, 2.0]]), 3)
    assert index.tolist() == [[1, 2, 4]] and values.tolist() == [[3.0, 3.0, 2.0]]
    values, index = search.topk(np.array([[5, 1, 3]]), 2, largest=False)
    assert index.tolist() == [[1, 2]]


def test_ban_rules():
    options = search.SearchOptions(min_tokens=2, max_tokens=3, no_repeat_ngram=2)
    tokens = np.array([[0, 7, 8, 7]])
    lprobs = np.zeros((1, 10), dtype=np.float32)
    search.ban(lprobs, 3, options, IDS, tokens)  # 7 was followed by 8 before: 8 is banned after 7
    assert np.isneginf(lprobs[0, [IDS.pad, 8]]).all() and lprobs[0, IDS.eos] == 0
    lprobs = np.zeros((1, 10), dtype=np.float32)
    search.ban(lprobs, 1, options, IDS, tokens[:, :2])
    assert np.isneginf(lprobs[0, IDS.eos])


def test_ban_mask_and_nan():
    options = search.SearchOptions(min_tokens=1, max_tokens=2, no_repeat_ngram=0)
    mask = search.ban_mask(2, 6, 2, options, IDS, np.zeros((2, 3), dtype=np.int64))
    assert mask.shape == (2, 6) and mask.dtype == np.float32
    assert (mask[:, IDS.eos] == 0).all() and np.isneginf(np.delete(mask, IDS.eos, axis=1)).all()
    logits = np.array([[0.0, 1.0, 3.0, 2.0], [np.nan, 1.0, 3.0, 2.0]], dtype=np.float32)
    values, tokens = search.top_from_logits(logits, np.array([[0, 0, -np.inf, 0]], dtype=np.float32), 4)
    assert tokens[0].tolist() == [3, 1, 0, 2] and np.isneginf(values[0, 3])
    # a NaN makes the whole row NaN (as torch's log-softmax): every token -inf, ties to the lower token
    assert tokens[1].tolist() == [0, 1, 2, 3] and np.isneginf(values[1]).all()


def test_log_softmax_sums_to_one():
    out = search.log_softmax(np.array([[1.0, 2.0, 1000.0]], dtype=np.float32))
    assert np.isclose(np.exp(out).sum(), 1.0) and out.dtype == np.float32
