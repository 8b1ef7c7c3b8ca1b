"""Files and directories of a site, private from their first byte.

A file is created 0600 (whatever the umask), given its final mode and group through its
open descriptor, and only then written: no moment exists when a secret is readable by
others, and no later chmod can be forgotten. Directories are made 0700.
"""

from __future__ import annotations

import contextlib
import grp
import os
from pathlib import Path
from typing import Final

PRIVATE: Final = 0o600
PUBLIC: Final = 0o644
SHARED_WITH_GROUP: Final = 0o640


def private_dir(path: Path) -> Path:
    """Make `path` (and missing parents) 0700; an existing directory is made 0700 too."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def shared_dir(path: Path, group: str) -> Path:
    """Make `path` 0750 with `group` if it does not exist; leave an existing one as it is."""
    if path.exists():
        return path
    path.mkdir(mode=0o750, parents=True)
    os.chmod(path, 0o750)  # noqa: S103 - the group (mosquitto) enters it to read its files
    gid = group_id(group)
    if gid is not None:
        with contextlib.suppress(PermissionError):
            os.chown(path, -1, gid)
    return path


def write_file(
    path: Path, data: bytes, mode: int = PRIVATE, group: str | None = None, *, new: bool = False
) -> None:
    """Write `data` to `path` with `mode` (and `group`, if it exists) set before any byte.

    With `new`, refuse to replace an existing file (FileExistsError). A symbolic link at
    `path` is refused rather than followed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if new else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, PRIVATE)  # an existing file keeps its old mode through O_TRUNC
        gid = group_id(group) if group else None
        if gid is not None:
            # Not root and not in that group: the owner's group stays.
            with contextlib.suppress(PermissionError):
                os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
        file.write(data)


def private_database(path: Path) -> Path:
    """Create an empty SQLite file 0600 if there is none; SQLite gives its WAL the same mode."""
    with contextlib.suppress(FileExistsError):
        write_file(path, b"", new=True)
    return path


def group_id(name: str) -> int | None:
    """Return the id of group `name`, or None when the machine has no such group."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None
