"""Files only this user may read: the background state, its log, signing keys. Each is created with mode 0600 (never
written first and chmod'ed after: another user could open it in between) in a directory of mode 0700."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path`, made with mode 0700 if new; an existing one is narrowed to 0700 when it is this user's."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes | str) -> None:
    """`data` into `path`, whole or not at all (a temporary file renamed into place), mode 0600 from its creation."""
    write_whole(path, data, 0o600)


def write_whole(path: Path, data: bytes | str, mode: int = 0o666) -> None:
    """`data` into `path`, whole or not at all: a temporary file beside it, renamed into place, so a reader sees the
    old file or the new one, never half of one (`mode` as os.open takes it: the umask applies)."""
    raw = data.encode() if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def open_private_log(path: Path):
    """`path` opened for appending, created with mode 0600."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")


def owned_privately(path: Path) -> bool:
    """Whether `path` is this user's and no one else may write it (a state file another user could edit is not
    believed: it names the pid `stop` signals and the arguments `restart` runs)."""
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022
