"""PP-OCR's ONNX Runtime sessions, opened from this machine's optimised copies of the graphs.

ONNX Runtime rewrites a graph as it loads it (fusions, and for convolutions a
blocked memory layout whose block size depends on the CPU's vector width):
for the three PP-OCRv4 graphs that took 0.2 s of CPU, and the re-laid-out
weights were a second, private copy of them (45 MB resident). So, as the
OFA caption sessions do (``see/caption/ofa_onnx/sessions.py``), the first load
also saves each rewritten graph, its weights in a file beside it, in
``onnx-KEY/`` under the stage's cache folder, and later loads read that
unchanged (0.07 s of CPU, 19 MB: the weights are mapped from the file). KEY
covers what the rewrite depends on: ONNX Runtime's version, the CPU, and the
model file. A new copy replaces the older copies of the same model file (another
ONNX Runtime's, or the file's before it changed), so that upgrades do not pile
them up. A folder that cannot be written to goes without the copies.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.errors import first_line

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

SOURCE_FILE = "source"  # in each copy: the graph it was made from


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def copy_folder(cache_dir: Path, source: Path) -> Path:
    """Where the optimised copy of the graph ``source`` lives under ``cache_dir``."""
    import onnxruntime as ort

    stat = source.stat()
    digest = hashlib.sha256()
    for part in (ort.__version__, platform.machine(), _cpu_flags(), str(source), stat.st_size, stat.st_mtime_ns):
        digest.update(f"{part}\0".encode())
    return cache_dir / f"onnx-{digest.hexdigest()[:16]}"


def open_session(source: Path, options: Callable[[], ort.SessionOptions], providers: list,
                 cache_dir: Path | None) -> ort.InferenceSession:
    """A session for the graph ``source`` (``options`` makes a fresh set of options): from its optimised
    copy in ``cache_dir``, written first when there is none; without ``cache_dir``, from ``source``."""
    import onnxruntime as ort

    if cache_dir is None:
        return ort.InferenceSession(str(source), options(), providers=providers)
    folder = copy_folder(cache_dir, source)
    graph, data = folder / "model.onnx", folder / "model.data"
    if graph.is_file() and data.is_file():
        chosen = options()
        chosen.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # done already
        try:
            return ort.InferenceSession(str(graph), chosen, providers=providers)
        except Exception as exc:  # a damaged copy (ONNX Runtime's own errors): written again below
            log.debug("optimised copy %s unusable (%s): loading %s", graph, first_line(exc), source)
            shutil.rmtree(folder, ignore_errors=True)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    chosen = options()
    try:
        partial.mkdir(parents=True, exist_ok=True)
        chosen.optimized_model_filepath = str(partial / graph.name)
        chosen.add_session_config_entry("session.optimized_model_external_initializers_file_name", data.name)
        chosen.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        session = ort.InferenceSession(str(source), chosen, providers=providers)
    except Exception as exc:  # a folder it cannot write to (OSError, or ONNX Runtime's error): no copy
        log.debug("no optimised copy of %s kept in %s: %s", source, folder, first_line(exc))
        shutil.rmtree(partial, ignore_errors=True)
        return ort.InferenceSession(str(source), options(), providers=providers)
    try:
        if (partial / graph.name).is_file() and (partial / data.name).is_file():
            (partial / SOURCE_FILE).write_text(str(source), encoding="utf-8")
            partial.rename(folder)
            _forget_older_copies(cache_dir, folder, source)
    except OSError as exc:  # another process wrote it first, or the folder is read-only
        log.debug("optimised copy of %s not kept: %s", source, exc)
    shutil.rmtree(partial, ignore_errors=True)
    return session


def _forget_older_copies(cache_dir: Path, kept: Path, source: Path) -> None:
    """Remove the copies of ``source`` made before ``kept`` (by another ONNX Runtime, or of the graph
    before it changed), so that upgrades do not pile them up (19 MB a set)."""
    for folder in cache_dir.glob("onnx-*"):
        if folder == kept or ".partial-" in folder.name:
            continue
        try:
            same = (folder / SOURCE_FILE).read_text(encoding="utf-8") == str(source)
        except OSError:
            continue  # not ours to judge (a copy from before sources were noted)
        if same:
            shutil.rmtree(folder, ignore_errors=True)
