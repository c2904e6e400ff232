"""The C allocator's part of this process's memory: big blocks handed back when freed, and a trim.

ONNX Runtime's sessions here run without their own memory arena (caption, speech), so their
tensors come from glibc's ``malloc``. glibc serves a block over its *mmap threshold* with a
mapping of its own that goes back to the system when freed; below it, from a heap that keeps
what was freed. The threshold starts at 128 KiB but rises to the size of each mapped block
freed (up to 32 MiB), so after the first model run every tensor landed in the heap, and the
heap kept the largest mix of them that ever met: measured with the bundled Piper voice, 261 MB
resident after a few sentences, against 154 MB with the threshold fixed (peak 238 MB against
263 MB), no slower. :func:`settle_allocator` fixes it; :func:`release_free_memory` hands back
what the heap holds free, after each photo in a long-lived process.

Only glibc (Linux) has these knobs; elsewhere both are no-ops.
"""

from __future__ import annotations

import ctypes
import logging
import threading

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, now kept: blocks above it are mapped alone

_lock = threading.Lock()
_settled = False


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return None


_LIBC = _glibc()


def settle_allocator() -> bool:
    """Fix glibc's mmap threshold (once per process; before models load). True where it was set."""
    global _settled
    with _lock:
        if _settled or _LIBC is None:
            return _settled
        _settled = bool(_LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
        if not _settled:
            log.debug("mallopt(M_MMAP_THRESHOLD) refused; the allocator keeps its own threshold")
        return _settled


def release_free_memory() -> None:
    """Give the free memory at the top and inside glibc's heaps back to the system (a few ms)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
