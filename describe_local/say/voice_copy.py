"""A Piper voice's weights in a file of their own, that ONNX Runtime maps instead of reading.

A Piper ``.onnx`` holds its weights (60 MB for a medium voice) inside the graph's protobuf, so
ONNX Runtime reads them into memory of its own: the bundled voice's load peaked 113 MB over what
was resident and kept 85 MB. Saved once with the weights in a ``.data`` file beside the graph (by
the ``onnx`` package, which keeps the graph node for node: the very same samples, the random
noise of Piper's two sampling nodes included), ONNX Runtime maps each weight from that file: the
load peaks 27 MB over what was resident, in half the time, and the weights are clean file pages,
shared by every process that speaks with the voice (each ``--jobs`` worker) and handed back by
:func:`rest` while the voice is silent (they come back from the page cache as it speaks).

The copies are derived files in the model store's cache folder (``models/.cache/voices``; never
the user's home folder), one folder per voice file, keyed by ONNX Runtime's version and the voice file's path, size and
time; a folder that cannot be written to, or a copy that will not load, leaves the voice
read whole as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from describe_local.memory import drop_file_pages
from describe_local.store import formats

log = logging.getLogger(__name__)

GRAPH = "voice.onnx"
WEIGHTS = GRAPH + ".data"
SMALLEST_MAPPED = 1024  # bytes: smaller tensors stay in the graph (a page of their own would waste more)


def copies_folder(models_dir: Path) -> Path:
    """Where the voices' copies are kept: the model store's cache folder."""
    return formats.store_cache(models_dir, "voices")


def mapped_copy(onnx_path: Path, folder: Path | None) -> Path | None:
    """The graph of ``onnx_path`` with its weights in a file beside it, in ``folder``, written first
    when there is none; ``None`` where it cannot be written or no folder is given (the voice is then
    read whole)."""
    if folder is None:
        return None
    try:
        copy = folder / _name(onnx_path)
        if (copy / GRAPH).is_file() and (copy / WEIGHTS).is_file():
            return copy / GRAPH
        folder.mkdir(parents=True, exist_ok=True)
        _write(onnx_path, folder, copy)
        return copy / GRAPH
    except Exception as exc:  # a read-only home, a full disk, no onnx package, a graph onnx cannot read
        log.debug("no mapped copy of %s: %s", onnx_path, exc)  # (ONNX Runtime then says what is wrong with it)
        return None


def forget(copy: Path) -> None:
    """Remove a copy that would not load (written by a broken run, or damaged since)."""
    shutil.rmtree(copy.parent, ignore_errors=True)


def rest(copy: Path) -> int:
    """Hand the copy's weights back to the system while the voice is silent; the bytes handed back."""
    return drop_file_pages(copy.with_name(WEIGHTS))


def _name(onnx_path: Path) -> str:
    import onnxruntime as ort  # not onnx: importing it (0.5 s, 20 MB) is only needed to write a copy

    stat = onnx_path.stat()
    digest = hashlib.sha256()
    for part in (ort.__version__, str(onnx_path.resolve()), str(stat.st_size), str(stat.st_mtime_ns)):
        digest.update(part.encode())
        digest.update(b"\0")
    return f"{onnx_path.name.removesuffix('.onnx')}-{digest.hexdigest()[:16]}"


def _write(onnx_path: Path, folder: Path, copy: Path) -> None:
    """Write the copy in a folder of this process's own, then move it into place whole; older
    copies of the same voice file go."""
    import onnx

    stem = onnx_path.name.removesuffix(".onnx")
    partial = folder / f"{copy.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        model = onnx.load(str(onnx_path))
        onnx.save_model(model, str(partial / GRAPH), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=WEIGHTS, size_threshold=SMALLEST_MAPPED)
        del model
        try:
            partial.rename(copy)
        except OSError:  # another process put its copy there first: that one serves
            if not (copy / GRAPH).is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    for old in folder.iterdir():
        if old != copy and old.name.startswith(stem + "-") and not old.name.endswith(".partial"):
            shutil.rmtree(old, ignore_errors=True)
