"""Drop the debug information some wheels ship in their native libraries (about 100 MB).

ctranslate2's extension alone carries 63 MB of DWARF debug sections; PyAV, Pillow, PyYAML,
regex and pyclipper carry a few MB each. Nothing reads them at run time (only a debugger
does), and Debian strips them from its own packages the same way: ``strip --strip-debug``
keeps the symbol tables and every loaded section. Each file is stripped into a copy that
replaces it; then every extension module of each touched package is imported in a fresh
interpreter, and a package that no longer imports is reinstalled from pip's cache.

    python scripts/slim_venv.py [SITE_PACKAGES]

Without ``strip`` (Debian's binutils) nothing changes and one line says so.
"""

from __future__ import annotations

import importlib.machinery
import logging
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path

log = logging.getLogger("slim_venv")

ELF_MAGIC = b"\x7fELF"


def debug_sections(path: Path) -> list[str]:
    """Names of the ``.debug_*`` sections of an ELF file (empty for anything else)."""
    try:
        with path.open("rb") as fh:
            ident = fh.read(16)
            if len(ident) < 16 or ident[:4] != ELF_MAGIC or ident[4] != 2:  # 64-bit ELF only
                return []
            end = "<" if ident[5] == 1 else ">"
            fh.seek(0x28)
            (shoff,) = struct.unpack(end + "Q", fh.read(8))
            fh.seek(0x3A)
            shentsize, shnum, shstrndx = struct.unpack(end + "HHH", fh.read(6))
            if shoff == 0 or shnum == 0 or shstrndx >= shnum:
                return []
            fh.seek(shoff)
            table = fh.read(shentsize * shnum)
            headers = [struct.unpack_from(end + "IIQQQQ", table, i * shentsize) for i in range(shnum)]
            _, _, _, _, str_offset, str_size = headers[shstrndx]
            fh.seek(str_offset)
            names = fh.read(str_size)
    except (OSError, struct.error):
        return []
    found = []
    for name_at, *_ in headers:
        name = names[name_at:names.find(b"\0", name_at)].decode("ascii", "replace")
        if name.startswith(".debug_"):
            found.append(name)
    return found


def strip_debug(path: Path, strip: str) -> int:
    """Strip ``path``'s debug sections in place (through a copy); returns the bytes saved."""
    before = path.stat().st_size
    temp = path.with_name(path.name + ".stripping")
    try:
        subprocess.run([strip, "--strip-debug", "-o", str(temp), str(path)], check=True, capture_output=True)
        shutil.copymode(path, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return before - path.stat().st_size


def owners(site: Path) -> dict[Path, metadata.Distribution]:
    """Each installed file of ``site`` and the distribution that installed it."""
    found: dict[Path, metadata.Distribution] = {}
    for dist in metadata.distributions(path=[str(site)]):
        for rel in dist.files or []:
            found[(site / rel).resolve()] = dist
    return found


def extension_modules(dist: metadata.Distribution) -> list[str]:
    """Dotted names of ``dist``'s Python extension modules."""
    names = []
    for rel in dist.files or []:
        suffix = next((x for x in importlib.machinery.EXTENSION_SUFFIXES if str(rel).endswith(x)), None)
        parts = Path(str(rel)[: -len(suffix)]).parts if suffix else ()
        if parts and all(part.isidentifier() for part in parts):
            names.append(".".join(parts))
    return names


def importable(python: str, modules: list[str]) -> set[str]:
    """Those of ``modules`` that import in a fresh interpreter (some never do, e.g. Pillow's Tk glue)."""
    code = ("import importlib, sys\nfor name in sys.argv[1:]:\n    try:\n        importlib.import_module(name)\n"
            "    except Exception:\n        continue\n    print(name)\n")
    done = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True, check=False)
    return set(done.stdout.split())


def slim(site: Path, python: str = sys.executable, strip: str | None = None) -> int:
    """Strip every library under ``site`` that carries debug sections; returns the bytes saved."""
    strip = strip or shutil.which("strip")
    if strip is None:
        log.warning("strip not found (Debian: apt-get install binutils): the debug information stays")
        return 0
    files = [p for p in sorted(site.rglob("*.so*")) if p.is_file() and not p.is_symlink() and debug_sections(p)]
    before = sum(p.stat().st_size for p in files)
    owned = owners(site)
    dists = {d.metadata["Name"]: d for d in (owned.get(p.resolve()) for p in files) if d is not None}
    modules = {name: extension_modules(dist) for name, dist in dists.items()}
    imported = {name: importable(python, found) for name, found in modules.items()}
    for path in files:
        strip_debug(path, strip)
    for name, dist in sorted(dists.items()):
        lost = imported[name] - importable(python, modules[name])
        if lost:
            log.warning("%s no longer imports once stripped (%s): reinstalling it", name, ", ".join(sorted(lost)))
            subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                            "--force-reinstall", f"{name}=={dist.version}"], check=True)
    return before - sum(p.stat().st_size for p in files if p.is_file())


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[setup] %(message)s")
    args = sys.argv[1:] if argv is None else argv
    site = Path(args[0]) if args else Path(sysconfig.get_paths()["purelib"])
    started = time.monotonic()
    saved = slim(site)
    log.info("debug information dropped: %.0f MB (%.1f s)", saved / 1e6, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
