"""The C allocator's part of this process's memory: one heap for all threads, big blocks handed
back when freed, and a trim after each photo.

ONNX Runtime's caption sessions run without their own memory arena, so their tensors come
from glibc's ``malloc``, as do dlib's and NumPy's buffers. Two of its defaults kept memory that nothing used:

* each thread that allocates gets a heap (an *arena*) of its own, up to 8 per core, and a block
  freed in one can only be reused by the threads of that one: the caption, faces and text
  stages each run in a thread, so each kept the peak of its own stage;
* a block over the *mmap threshold* is a mapping of its own that goes back to the system when
  freed, but the threshold rises to the size of each such block freed (up to 32 MiB), so after
  the first model run every tensor landed in a heap and stayed there.

Measured with ``scripts/bench_memory.py`` (a cold ``describe --no-audio`` with an
OFA-tiny-sized caption model, three and four runs each, 2 cores): the describe process
499-514 MB with glibc's defaults; one arena and a fixed 4 MiB threshold 451 MB for 0.08 s
more system CPU; a 128 KiB threshold the same memory for 0.7 s more (every tensor a fresh
mapping, faulted in page by page).

Only glibc (Linux) has these knobs; elsewhere both functions do nothing.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MADV_DONTNEED = 4  # madvise's advice (mman.h): drop these pages; a file's come back from it when read
M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024  # blocks above it are mapped alone (and the threshold no longer moves)
WEIGHTS_SUFFIX = ".data"  # ONNX Runtime's external weights files (formats.OFA_ONNX_DATA_SUFFIX, the copies' too)
ARENAS = 1  # one heap for every thread: what one stage frees, the next can use

_lock = threading.Lock()
_settled = False


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        return libc
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return None


_LIBC = _glibc()


def settle_allocator() -> bool:
    """Set glibc's arena count and mmap threshold, once per process, before the models load
    (threads started earlier keep the heap they have). True where glibc took both."""
    global _settled
    with _lock:
        if _settled or _LIBC is None:
            return _settled
        _settled = bool(_LIBC.mallopt(M_ARENA_MAX, ARENAS)) & bool(_LIBC.mallopt(M_MMAP_THRESHOLD,
                                                                                  MMAP_THRESHOLD_BYTES))
        if not _settled:
            log.debug("mallopt refused a setting; the allocator keeps its own")
        return _settled


def release_free_memory() -> None:
    """Give the free memory at the top and inside glibc's heaps back to the system (a few ms)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def drop_file_pages(path: Path) -> int:
    """Drop the pages of ``path`` that this process maps from its resident set (they stay in the page
    cache, and come back from it when read); the bytes dropped. A mapping any page of which was written
    (its ``Anonymous`` pages in ``/proc/self/smaps``: private copies, not in the file) is left alone."""
    name = str(path)
    return _drop(lambda mapped: mapped == name)


def drop_mapped_weights() -> int:
    """Drop the pages of every mapped weights file (``*.data``: ONNX Runtime's external weights, as the
    caption graphs, the text stage and the voices keep them) from the resident set, as
    :func:`drop_file_pages` does; for when none of their models is running. Each model reads its
    weights back from the page cache when it next runs. The bytes dropped."""
    return _drop(lambda mapped: mapped.endswith(WEIGHTS_SUFFIX))


def _drop(wanted: Callable[[str], bool]) -> int:
    if _LIBC is None:
        return 0
    dropped = 0
    try:
        for start, end, resident_kb in _clean_mappings(wanted):
            if resident_kb and _LIBC.madvise(start, end - start, MADV_DONTNEED) == 0:
                dropped += resident_kb * 1024
    except OSError as exc:  # no /proc (not Linux)
        log.debug("cannot drop mapped pages: %s", exc)
    return dropped


def _clean_mappings(wanted: Callable[[str], bool]) -> list[tuple[int, int, int]]:
    """``(start, end, resident kB)`` of each mapping of a file ``wanted`` takes, with no page written."""
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        text = smaps.read()
    found: list[tuple[int, int, int]] = []
    for mapping in _HEADER.finditer(text):
        if not wanted(mapping.group(3)):
            continue
        block = text[mapping.end():text.find("\nVmFlags:", mapping.end())]  # each mapping's fields end with VmFlags
        resident = re.search(r"^Rss:\s+(\d+) kB", block, re.MULTILINE)
        written = re.search(r"^Anonymous:\s+(\d+) kB", block, re.MULTILINE)
        if resident is not None and written is not None and written.group(1) == "0":
            found.append((int(mapping.group(1), 16), int(mapping.group(2), 16), int(resident.group(1))))
    return found


# A mapping's first line in /proc/PID/smaps: range, permissions, offset, device, inode, the file's path.
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+ +(/.*)$", re.MULTILINE)
