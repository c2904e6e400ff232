"""Run a converted Florence-2 folder on ONNX Runtime: NumPy in, NumPy out, no torch.

:class:`OnnxFlorence` does what ``Florence2Processor`` + ``generate`` do: the
pixels as ``CLIPImageProcessor`` makes them (PIL bicubic to the model's square,
rescale, ImageNet normalisation), the task prompt spelt out as the processor
spells it (``<CAPTION>`` -> "What does the image describe?"), the image tokens
before it, then greedy or beam search (``search.py``) over the cached decoder step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from describe_local.errors import ModelNotInstalled
from describe_local.memory import settle_allocator
from describe_local.see.caption.florence_onnx import layout
from describe_local.see.caption.florence_onnx.search import Result, Rules, generate
from describe_local.see.caption.ofa_onnx.runtime import EmbeddingTable
from describe_local.see.caption.ofa_onnx.sessions import providers, session_options

if TYPE_CHECKING:
    import onnxruntime as ort
    from PIL import Image

log = logging.getLogger(__name__)

# The task tokens Florence-2 was trained with and the text its processor puts in their place.
TASKS = {
    "<CAPTION>": "What does the image describe?",
    "<DETAILED_CAPTION>": "Describe in detail what is shown in the image.",
    "<MORE_DETAILED_CAPTION>": "Describe with a paragraph what is shown in the image.",
    "<OCR>": "What is the text in the image?",
}
CAPTION = "<CAPTION>"
DETAILED = "<MORE_DETAILED_CAPTION>"


def pixel_array(images: list[Image.Image], manifest: dict) -> np.ndarray:
    """(B, 3, R, R) float32 pixels, as ``CLIPImageProcessor`` (PIL backend) computes them."""
    from PIL import Image

    size = int(manifest["resolution"])
    mean = np.asarray(manifest["mean"], dtype=np.float32)
    std = np.asarray(manifest["std"], dtype=np.float32)
    arrays = []
    for image in images:
        resized = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
        scaled = (resized.astype(np.float64) * float(manifest["rescale"])).astype(np.float32)
        arrays.append(((scaled - mean) / std).transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(arrays))


def open_session(folder: Path, name: str, precision: str, device: str, threads: int) -> ort.InferenceSession:
    """A session for graph ``name``, with OFA's options; int8 graphs without pre-packed weight copies.

    Pre-packing keeps a second, re-laid-out copy of every MatMul weight. For the int8 graphs it
    only costs: a random Florence-2-base's vision tower ran 2.10 s with it, 1.43 s without, and
    a caption's peak RSS fell 922 -> 673 MB. For fp32 it pays (vision 1.59 s with, 2.14 s
    without; 2 cores) at +540 MB (1609 vs 1073 MB), so fp32 keeps it: int8 is the small one.
    """
    import onnxruntime as ort

    chosen = providers(device)
    options = session_options(threads)
    if precision == "int8":
        options.add_session_config_entry("session.disable_prepacking", "1")
    return ort.InferenceSession(str(folder / layout.graph_file(name, precision)), sess_options=options,
                                providers=chosen)


@dataclass
class OnnxFlorence:
    """A converted Florence-2 folder ready to run: three sessions, the embedding table, the tokenizer."""

    vision: ort.InferenceSession
    encoder: ort.InferenceSession
    decoder: ort.InferenceSession
    embeddings: EmbeddingTable
    tokenizer: Any  # an OFATokenizer over the folder's BART vocabulary with Florence-2's added tokens
    manifest: dict
    folder: Path
    precision: str

    @classmethod
    def load(cls, folder: Path, *, device: str = "cpu", threads: int = 0, precision: str | None = None) -> OnnxFlorence:
        from describe_local.see.caption.florence_onnx.tokens import load_tokenizer

        folder = Path(folder)
        manifest = layout.manifest(folder)
        if manifest is None:
            raise ModelNotInstalled(f"{folder} has no Florence-2 ONNX graphs: "
                                    f"run `describe-local models convert {folder.name}` (needs torch, once)")
        precision = precision or str(manifest.get("precision", "fp32"))
        if precision not in layout.precisions(folder):
            flag = " --int8" if precision == "int8" else ""
            raise ModelNotInstalled(f"{folder} has no {precision} Florence-2 graphs: "
                                    f"run `describe-local models convert {folder.name}{flag}`")

        settle_allocator()  # the sessions have no arena: their freed tensors go back (describe_local.memory)

        def session(name: str) -> ort.InferenceSession:
            return open_session(folder, name, precision, device, threads)

        return cls(vision=session("vision"), encoder=session("encoder"), decoder=session("decoder_step"),
                   embeddings=EmbeddingTable(folder / layout.EMBEDDINGS),
                   tokenizer=load_tokenizer(folder / layout.DIR), manifest=manifest, folder=folder,
                   precision=precision)

    def rules(self, beams: int | None = None, max_new_tokens: int = 20) -> Rules:
        """The folder's search settings with the caller's beam width and length (new tokens, as ``generate``)."""
        search, special = self.manifest["search"], self.manifest["special"]
        rules = Rules(max_length=max_new_tokens + 1, beams=int(search["num_beams"]),
                      no_repeat_ngram=int(search["no_repeat_ngram_size"]),
                      early_stopping=search["early_stopping"] is True, length_penalty=float(search["length_penalty"]),
                      start=int(search["decoder_start_token_id"]), bos=search["forced_bos_token_id"],
                      eos=int(search["forced_eos_token_id"]), pad=int(special["pad"]),
                      min_length=int(search["min_length"]))
        return rules if beams is None else replace(rules, beams=max(1, beams))

    def prompt_ids(self, task: str) -> list[int]:
        """The ids the processor gives for a task token (or a free text prompt), ``<s>``/``</s>`` included."""
        return self.tokenizer.encode(TASKS.get(task, task))

    def encode(self, images: list[Image.Image], task: str) -> dict[str, np.ndarray]:
        """Cross-attention keys, values and mask for ``images`` asked ``task``."""
        # one photo a run (graphs converted before took a batch, and take one photo as well)
        image_tokens = np.concatenate([self.vision.run(None, {"pixels": pixel_array([image], self.manifest)})[0]
                                       for image in images])
        ids = np.array([self.prompt_ids(task)] * len(images), dtype=np.int64)
        feeds = {"image_tokens": image_tokens, "text_embeds": self.embeddings[ids],
                 "attention_mask": np.ones(ids.shape, dtype=np.int64)}
        keys, values, mask = self.encoder.run(None, feeds)
        return {"cross_keys": keys, "cross_values": values, "cross_mask": mask}

    def generate(self, images: list[Image.Image], task: str, rules: Rules) -> list[Result]:
        """The best sequence for each image (a batch runs through the graphs at once)."""
        return generate(_CachedDecoder(self, self.encode(images, task)), len(images), rules)

    def text(self, result: Result) -> str:
        return " ".join(self.tokenizer.decode(result.tokens).split())


class _CachedDecoder:
    """The decoder-step graph with its key/value cache, for :func:`search.generate`."""

    def __init__(self, engine: OnnxFlorence, encoded: dict[str, np.ndarray]) -> None:
        self.session = engine.decoder
        self.embeddings = engine.embeddings
        self.cross_keys = encoded["cross_keys"]  # (L, B, H, S, hd)
        self.cross_values = encoded["cross_values"]
        self.cross_mask = encoded["cross_mask"]  # (B, 1, 1, S)
        layers, rows, heads, _, head_dim = self.cross_keys.shape
        self.keys = np.zeros((layers, rows, heads, 0, head_dim), dtype=np.float32)
        self.values = self.keys
        # graphs converted before the per-layer inputs take the stacked ones (and copy them at each step)
        self.per_layer = "cross_keys_0" in {i.name for i in self.session.get_inputs()}

    def cross_feeds(self) -> dict[str, np.ndarray]:
        """The cross keys and values as the graph takes them: per layer, views of the stacked arrays (no copy)."""
        if not self.per_layer:
            return {"cross_keys": self.cross_keys, "cross_values": self.cross_values}
        feeds = {f"cross_keys_{i}": keys for i, keys in enumerate(self.cross_keys)}
        feeds.update({f"cross_values_{i}": values for i, values in enumerate(self.cross_values)})
        return feeds

    def step(self, tokens: np.ndarray, position: int) -> np.ndarray:
        feeds = {"token_embeds": self.embeddings[np.asarray(tokens, dtype=np.int64)[:, None]],
                 "position": np.array([position], dtype=np.int64), "past_keys": self.keys,
                 "past_values": self.values, "cross_mask": self.cross_mask, **self.cross_feeds()}
        logits, self.keys, self.values = self.session.run(None, feeds)
        return logits

    def reorder(self, rows: np.ndarray) -> None:
        self.keys = self.keys[:, rows]
        self.values = self.values[:, rows]
        if self.cross_keys.shape[1] != len(rows):  # one row per photo -> one per beam; later reorders
            # move rows among one photo's beams only, which share these
            self.cross_keys = np.ascontiguousarray(self.cross_keys[:, rows])
            self.cross_values = np.ascontiguousarray(self.cross_values[:, rows])
            self.cross_mask = np.ascontiguousarray(self.cross_mask[rows])
