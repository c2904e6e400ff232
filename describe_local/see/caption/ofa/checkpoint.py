"""Read released OFA checkpoints into :class:`~describe_local.see.caption.ofa.model.OFAModel`.

Two on-disk layouts are understood, unchanged:

* Hugging Face ``OFA-Sys/ofa-*`` folders: ``config.json``, ``pytorch_model.bin``
  (or ``model.safetensors``, or a sharded ``*.index.json``), ``vocab.json``,
  ``merges.txt``; weight names ``encoder.*`` / ``decoder.*``.
* ModelScope ``damo/ofa_*`` folders: the same files plus ``configuration.json``
  (task settings: image size, prompt, beam search); weights may be saved from
  the task wrapper, with every name under ``model.``.

Weights that only serve image generation (``<code_*>`` output) or training are
skipped; every weight the caption/VQA path needs must be present.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from describe_local.errors import ModelNotInstalled
from describe_local.see.caption.ofa.config import OFAConfig
from describe_local.see.caption.ofa.model import OFAModel
from describe_local.see.caption.ofa_onnx import source
from describe_local.see.caption.ofa_onnx.source import normalise_names  # shared with the torch-free converter
from describe_local.store.formats import is_ofa_folder as is_ofa_folder  # re-exported: the folder test

log = logging.getLogger(__name__)

def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint in ``folder``, by their saved names, as torch tensors."""
    return source.read_state_dict(folder, _read_file)


@contextlib.contextmanager
def _no_initialisation() -> Iterator[None]:
    """Skip the random initialisation of new modules: every weight is about to be replaced.

    On the meta device it would do no work, but its first call loads PyTorch's
    Python decompositions: some 70 MB that a captioner never needs.
    """
    names = ("normal_", "uniform_", "kaiming_uniform_", "xavier_uniform_", "constant_", "ones_", "zeros_")
    saved = {name: getattr(nn.init, name) for name in names}
    for name in names:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        try:
            # mapped, not read: only the weights we keep ever reach memory
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            # a file in the legacy (pre-zip) format cannot be mapped
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated download, a foreign pickle: say which file
        raise ModelNotInstalled(f"cannot read the OFA weights {path}: {exc}") from exc


def load_model(folder: Path, config: OFAConfig | None = None) -> OFAModel:
    """Build the model of ``folder/config.json`` and fill it with the folder's weights.

    Raises :class:`ModelNotInstalled` (naming the first few names) when weights
    are missing or do not fit, so that a wrong or damaged folder is not run.
    """
    folder = Path(folder)
    config = config or OFAConfig.load(folder)
    with torch.device("meta"), _no_initialisation():
        model = OFAModel(config)
    state = normalise_names(read_state_dict(folder))
    if config.share_decoder_input_output_embed:
        state.pop("decoder.output_projection.weight", None)
    expected = model.state_dict()
    # the decoder's embedding is the encoder's (tied), so it is filled from that name
    expected.pop("decoder.embed_tokens.weight", None)
    for name in expected:
        # converted checkpoints may lack this BatchNorm counter; inference never reads it
        if name.endswith("num_batches_tracked") and name not in state:
            state[name] = torch.tensor(0)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        raise ModelNotInstalled(
            f"the OFA checkpoint in {folder} lacks {len(missing)} weights "
            f"(e.g. {', '.join(missing[:3])}): incomplete download or not an OFA model"
        )
    if unexpected:
        log.info("ignoring %d unused checkpoint entries, e.g. %s", len(unexpected), unexpected[:3])
    wrong = [
        f"{n} {tuple(state[n].shape)} vs {tuple(t.shape)}"
        for n, t in expected.items()
        if tuple(state[n].shape) != tuple(t.shape)
    ]
    if wrong:
        raise ModelNotInstalled(
            f"the OFA checkpoint in {folder} does not match its config.json: {'; '.join(wrong[:3])}"
        )
    tensors = {n: state[n].to(torch.float32) if state[n].is_floating_point() else state[n] for n in expected}
    model.load_state_dict(tensors, strict=False, assign=True)
    model.decoder.embed_tokens = model.encoder.embed_tokens
    return model.requires_grad_(False).eval()
