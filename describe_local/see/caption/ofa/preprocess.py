"""Turn photos into the tensors and prompts OFA expects.

Images: RGB, resized to a square of the checkpoint's resolution with bicubic
resampling, scaled to [0, 1], then normalised with mean and std 0.5 (so to
[-1, 1]), channels first: what OFA was trained on.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from describe_local.see.caption.ofa.options import question_prompt  # noqa: F401  (re-exported)

# The prompts of the model cards: the fine-tuned caption checkpoints were trained
# on the first, the pretrained ones answer the second.
CAPTION_PROMPT = " what does the image describe?"
PRETRAINED_CAPTION_PROMPT = " what is the description of the image?"

# Resolution by model width: tiny and medium 256, base 384, large and huge 480.
_RESOLUTION_BY_WIDTH = ((512, 256), (768, 384))
LARGE_RESOLUTION = 480


def default_resolution(d_model: int) -> int:
    """The input size the released checkpoint of this width was trained at."""
    for width, size in _RESOLUTION_BY_WIDTH:
        if d_model <= width:
            return size
    return LARGE_RESOLUTION


def image_tensor(images: list[Image.Image], size: int) -> torch.Tensor:
    """(B, 3, size, size) float32 tensor of ``images`` resized and normalised."""
    arrays = []
    for image in images:
        resized = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        pixels = np.asarray(resized, dtype=np.float32) / np.float32(255.0)
        arrays.append((pixels - np.float32(0.5)) / np.float32(0.5))
    batch = np.stack(arrays).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(batch))
