"""OFA's relative-position buckets: 1-D for text tokens, 2-D for image patches.

Both are fixed index tables: a pair of positions (query, key) maps to a row of a
learned per-layer table of attention biases, one value per head.
"""

from __future__ import annotations

import math

import torch

MAX_POSITIONS = 1024  # the largest text length the released checkpoints were built for


def token_buckets(bucket_size: int, size: int = MAX_POSITIONS, max_positions: int = MAX_POSITIONS) -> torch.Tensor:
    """Bucket index of every (query, key) pair of the first ``size`` text positions, (size, size).

    Distances below ``bucket_size // 2`` get their own bucket; longer ones share
    logarithmically wider buckets, scaled for ``max_positions``. Indices start at 0.
    """
    pos = torch.arange(size, dtype=torch.long)
    rel = pos[:, None] - pos[None, :]
    mid = bucket_size // 2
    near = (rel < mid) & (rel > -mid)
    dist = torch.where(near, torch.full_like(rel, mid - 1), rel.abs())
    # float32 arithmetic as in the released models, so that ceil() rounds the same way
    far = torch.ceil(torch.log(dist / mid) / math.log((max_positions - 1) / mid) * (mid - 1)) + mid
    bucket = torch.where(dist.le(mid), rel, far.int().long() * torch.sign(rel))
    return bucket + bucket_size - 1


def image_buckets(bucket_size: int) -> torch.Tensor:
    """Bucket index of every pair of image cells on a ``bucket_size`` square grid (the full table).

    Row/column 0 stand for a cell outside the grid (OFA reserves index 0), so the
    table is ``(bucket_size**2 + 1)`` square; the last three bucket ids mark pairs
    involving that extra cell.
    """
    distances = (2 * bucket_size - 1) ** 2 + 3
    cells = torch.arange(bucket_size, dtype=torch.int32)
    ys, xs = torch.meshgrid(cells, cells, indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    n = bucket_size * bucket_size + 1
    table = torch.zeros((n, n), dtype=torch.int16)
    table[1:, 1:] = (ys[:, None] - ys[None, :] + bucket_size - 1) * (2 * bucket_size - 1) + (
        xs[:, None] - xs[None, :] + bucket_size - 1
    )
    table[0, :] = distances - 3
    table[:, 0] = distances - 2
    table[0, 0] = distances - 1
    return table


def image_position_ids(height: int, width: int, bucket_size: int) -> torch.Tensor:
    """Grid cell id (row * bucket_size + column + 1) of each patch of an h x w feature map."""
    rows = torch.arange(height)[:, None] * bucket_size
    cols = torch.arange(width)[None, :]
    return (rows + cols + 1).flatten()


def patch_buckets(height: int, width: int, bucket_size: int) -> torch.Tensor:
    """Bucket index of every pair of patches of an h x w feature map, (h*w, h*w), long.

    The same entries as ``image_buckets(bucket_size)`` at the patches'
    :func:`image_position_ids`, computed for the patches only.
    """
    rows = torch.arange(height).repeat_interleave(width)
    cols = torch.arange(width).repeat(height)
    dy = rows[:, None] - rows[None, :] + bucket_size - 1
    dx = cols[:, None] - cols[None, :] + bucket_size - 1
    return dy * (2 * bucket_size - 1) + dx
