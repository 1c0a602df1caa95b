"""Small file helpers shared by every stage: atomic writes and content hashes (no torch)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UniadError

NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS)


def require_file(path: Path, fix: str, what: str = "file") -> None:
    """A one-line error that says what `path` is when it is not a readable regular file: a
    missing `what` (with `fix`), a broken link, a symbolic link loop, a folder or a device (each
    used to be reported as "no such file")."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UniadError(
                f"{path}: a symbolic link loop (the link leads back to itself); point it at the "
                "model file"
            ) from None
        if exc.errno == errno.ENOENT and path.is_symlink():
            raise UniadError(f"{path}: a broken symbolic link to {os.readlink(path)}") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise UniadError(f"{path}: no such {what}; {fix}") from None
        raise UniadError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise UniadError(f"{path} is a folder, not a file; name the model file inside it")
    if not stat.S_ISREG(mode):
        raise UniadError(f"{path} is not a regular file (a device, pipe or socket)")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    A crash, Ctrl-C or exception leaves the old file (or nothing) behind, never half a file; an
    OSError while writing (disk full) becomes a one-line `UniadError` naming the file.
    """
    target = Path(path)
    tmp_path = temp_beside(target)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        # A full disk (ENOSPC), a quota or a size limit: the one-line error, no partial file.
        tmp_path.unlink(missing_ok=True)
        raise UniadError(
            f"cannot write {target}: {exc.strerror or exc}; free some space or choose another "
            "folder"
        ) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_bytes_new(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically but never replace a file already there: FileExistsError
    if `path` exists, also when another writer takes the name meanwhile.

    The complete file appears under its name at once (a hard link to the written temporary
    file); on a file system without hard links (FAT, some network shares) the name is first
    taken by an exclusive create, then the complete file moved onto it.
    """
    target = Path(path)
    tmp_path = temp_beside(target)
    try:
        tmp_path.write_bytes(data)
        try:
            os.link(tmp_path, target)
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:  # FileExistsError included
                raise
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def temp_beside(target: Path) -> Path:
    """An empty temporary file in `target`'s folder (created if needed), readable by all."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UniadError(
            f"cannot write to {target.parent}: {exc.strerror or exc}; choose a writable folder"
        ) from None
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o644)  # mkstemp's 0600 would make every artifact private to its writer
    return tmp_path


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
