"""Model archives with bounds: a zip or tar.gz bomb (2 MB that unpacks to 2 GB, written here by
the test) is refused from its declared sizes before its bytes are written, in one line, leaving
nothing in the store's scratch folder; what a member really holds is counted while writing."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from describe_local.cli import main as cli_main
from describe_local.errors import ArchiveTooLarge, NotAModel
from describe_local.store import ModelStore, import_model
from describe_local.store.archives import extract_zip

BOMB_BYTES = 2 * 2**30


class Zeros(io.RawIOBase):
    """``size`` zero bytes, read without holding them."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """A zip and a tar.gz of about 2 MB each holding a 2 GB file of zeros."""
    folder = tmp_path_factory.mktemp("bombs")
    zipped = folder / "bomb.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info = zipfile.ZipInfo("ofa-tiny/pytorch_model.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as out:
            for _ in range(BOMB_BYTES // 2**20):
                out.write(bytes(2**20))
    tarred = folder / "bomb.tar.gz"
    with tarfile.open(tarred, "w:gz", compresslevel=9) as archive:
        info = tarfile.TarInfo("ofa-tiny/pytorch_model.bin")
        info.size = BOMB_BYTES
        archive.addfile(info, Zeros(BOMB_BYTES))
    return {"zip": zipped, "tar.gz": tarred}


def written_bytes() -> int:
    """The bytes this process has handed to write() so far (the kernel's own count)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_an_archive_bomb_is_refused_before_it_is_written(tmp_path, bombs, kind, capsys):
    bomb = bombs[kind]
    assert bomb.stat().st_size < 3 * 2**20
    store = ModelStore.open(tmp_path / "models")
    before = written_bytes()
    with pytest.raises(ArchiveTooLarge, match="archive bomb"):
        import_model(store, bomb)
    written = written_bytes() - before
    print(f"{kind}: {written} bytes written")
    assert written < 50 * 2**20
    assert not any((store.root / ".tmp").glob("*")), "scratch left behind"
    assert store.installed() == []
    capsys.readouterr()
    assert cli_main(["models", "--models-dir", str(store.root), "import", str(bomb)]) == ArchiveTooLarge.exit_code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0], lines


def test_a_member_longer_than_its_header_says_is_stopped(tmp_path):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("model/config.json", b"x" * 100_000)
    # Lower the declared size in both headers: the reader must stop at it, never write on.
    data = bytearray(archive.read_bytes())
    size = (100_000).to_bytes(4, "little")
    for at in (i for i in range(len(data) - 3) if data[i:i + 4] == size):
        data[at:at + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(NotAModel):
        extract_zip(archive, tmp_path / "out")
    written = tmp_path / "out" / "model" / "config.json"
    assert not written.exists() or written.stat().st_size <= 10


def test_a_tar_of_many_small_files_within_the_limits_still_imports(tmp_path):
    from tests.integration.test_store import _ofa_files  # the same fake OFA folder as the import tests

    tarball = tmp_path / "ofa.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, data in _ofa_files(seed=9).items():
            info = tarfile.TarInfo(f"ofa-tiny/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    store = ModelStore.open(tmp_path / "models")
    assert import_model(store, tarball).kind == "caption"
    assert not any((store.root / ".tmp").glob("*"))
