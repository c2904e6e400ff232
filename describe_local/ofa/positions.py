"""OFA's relative-position buckets: 1-D for text tokens, 2-D for image patches.

Both are fixed index tables: a pair of positions (query, key) maps to a row of a
learned per-layer table of attention biases, one value per head.
"""

from __future__ import annotations

import math

import torch

MAX_POSITIONS = 1024  # the largest text length the released checkpoints were built for


def token_buckets(bucket_size: int, max_positions: int = MAX_POSITIONS) -> torch.Tensor:
    """Bucket index of every (query, key) pair of text positions, shape (max, max).

    Distances below ``bucket_size // 2`` get their own bucket; longer ones share
    logarithmically wider buckets. Indices are shifted to start at 0.
    """
    pos = torch.arange(max_positions, dtype=torch.long)
    rel = pos[:, None] - pos[None, :]
    mid = bucket_size // 2
    near = (rel < mid) & (rel > -mid)
    dist = torch.where(near, torch.full_like(rel, mid - 1), rel.abs())
    # float32 arithmetic as in the released models, so that ceil() rounds the same way
    far = torch.ceil(torch.log(dist / mid) / math.log((max_positions - 1) / mid) * (mid - 1)) + mid
    bucket = torch.where(dist.le(mid), rel, far.int().long() * torch.sign(rel))
    # int16 keeps the table at 2 MB; callers index with .long() slices
    return (bucket + bucket_size - 1).to(torch.int16)


def image_buckets(bucket_size: int) -> torch.Tensor:
    """Bucket index of every pair of image cells on a ``bucket_size`` square grid.

    Row/column 0 stand for a cell outside the grid (OFA reserves index 0), so the
    table is ``(bucket_size**2 + 1)`` square; the last three bucket ids mark pairs
    involving that extra cell.
    """
    distances = (2 * bucket_size - 1) ** 2 + 3
    cells = torch.arange(bucket_size, dtype=torch.int32)
    ys, xs = torch.meshgrid(cells, cells, indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    n = bucket_size * bucket_size + 1
    table = torch.zeros((n, n), dtype=torch.int16)  # 6 MB for OFA's 42 x 42 grid
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
