"""Drop what the venv's wheels ship for their developers only: debug information and test suites.

ctranslate2's extension alone carries 63 MB of DWARF debug sections; PyAV, Pillow, PyYAML,
regex and pyclipper carry a few MB each. Nothing reads them at run time (only a debugger
does), and Debian strips them from its own packages the same way: ``strip --strip-debug``
keeps the symbol tables and every loaded section. Each file is stripped into a copy that
replaces it. NumPy, Shapely and regex also ship their own test suites (``tests`` packages,
17 MB), and onnx its backend conformance cases (17 MB of ``.pb`` files its test runner reads):
nothing imports them but their own tests, so they go too. Then every extension module and
top-level module of each touched package is imported in a fresh interpreter, and a package
that no longer imports what it did is reinstalled from pip's cache.

    python scripts/slim_venv.py [SITE_PACKAGES]

Without ``strip`` (Debian's binutils) the debug information stays and one line says so.
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


# Test data that is not a ``tests`` package: onnx's backend conformance cases, read by its test runner only.
TEST_DATA = ("onnx/backend/test/data",)
KEEP = ("pip", "setuptools")  # the installers themselves are left whole


def test_suites(site: Path) -> list[Path]:
    """Packages' own test suites under ``site``: ``tests`` folders inside a package, and :data:`TEST_DATA`."""
    found = [p for p in sorted(site.glob("*/**/tests"))
             if p.is_dir() and (p.parent / "__init__.py").is_file() and p.relative_to(site).parts[0] not in KEEP]
    found += [site / rel for rel in TEST_DATA if (site / rel).is_dir()]
    return [p for p in found if not any(other in p.parents for other in found)]


def top_level_modules(dist: metadata.Distribution) -> list[str]:
    """The packages and modules ``dist`` puts at the top of site-packages."""
    names = set()
    for rel in dist.files or []:
        parts = Path(str(rel)).parts
        if len(parts) == 1 and parts[0].endswith(".py"):
            names.add(parts[0][:-3])
        elif len(parts) > 1 and parts[0].isidentifier() and parts[0] != "__pycache__":
            names.add(parts[0])
    return sorted(names)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def slim(site: Path, python: str = sys.executable, strip: str | None = None) -> tuple[int, int]:
    """Strip every library under ``site`` that carries debug sections and remove the packages'
    test suites; returns the bytes saved by each."""
    strip = strip or shutil.which("strip")
    if strip is None:
        log.warning("strip not found (Debian: apt-get install binutils): the debug information stays")
    files = [p for p in sorted(site.rglob("*.so*")) if p.is_file() and not p.is_symlink() and debug_sections(p)] \
        if strip else []
    suites = test_suites(site)
    owned = owners(site)
    touched = [owned.get(p.resolve()) for p in files]
    touched += [next((owned[f.resolve()] for f in d.rglob("*") if f.resolve() in owned), None) for d in suites]
    dists = {d.metadata["Name"]: d for d in touched if d is not None}
    modules = {name: extension_modules(dist) + top_level_modules(dist) for name, dist in dists.items()}
    imported = {name: importable(python, found) for name, found in modules.items()}
    before = sum(p.stat().st_size for p in files), sum(_size(d) for d in suites)
    for path in files:
        try:
            strip_debug(path, strip or "strip")
        except subprocess.CalledProcessError as exc:  # a layout strip does not know: the file stays as it was
            log.warning("could not strip %s: %s", path.name, (exc.stderr or b"").decode(errors="replace").strip())
    for folder in suites:
        shutil.rmtree(folder)
    for name, dist in sorted(dists.items()):
        lost = imported[name] - importable(python, modules[name])
        if lost:
            log.warning("%s no longer imports once slimmed (%s): reinstalling it", name, ", ".join(sorted(lost)))
            subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                            "--force-reinstall", f"{name}=={dist.version}"], check=True)
    return (before[0] - sum(p.stat().st_size for p in files if p.is_file()),
            before[1] - sum(_size(d) for d in suites if d.exists()))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[setup] %(message)s")
    args = sys.argv[1:] if argv is None else argv
    site = Path(args[0]) if args else Path(sysconfig.get_paths()["purelib"])
    started = time.monotonic()
    debug, tests = slim(site)
    log.info("dropped %.0f MB of debug information and %.0f MB of test suites (%.1f s)", debug / 1e6, tests / 1e6,
             time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
