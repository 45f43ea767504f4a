"""The data folder is the owner's alone: folders 0700, files 0600.

It holds the platform database, Temporal's file, `admin.key`, `secret.key`, logs and every uploaded
source, so nobody else on the machine may read it. `gsf up` sets a umask of 077 for itself and every
process it starts (SQLite and the Temporal dev server create their files through it) and tightens a
folder an earlier version left open; the artifact store makes its own folders private wherever it runs.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_umask() -> int:
    """Files and folders this process (and its children) creates are the owner's alone; the old umask."""
    return os.umask(PRIVATE_UMASK)


def make_private_dirs(path: Path) -> None:
    """`mkdir -p path` where every folder it creates is 0700 (`Path.mkdir(parents=True)` would give the
    parents the umask's mode)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass  # another process made it meanwhile
        else:
            os.chmod(folder, DIR_MODE)  # mkdir's mode goes through the umask; this does not


def secure_data_dir(path: Path) -> None:
    """Create the data folder 0700, or tighten an existing one and everything in it: no group or other
    bits on any folder or file (symbolic links are not followed)."""
    make_private_dirs(path)
    os.chmod(path, DIR_MODE)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            _tighten(Path(root) / name)


def _tighten(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return  # gone meanwhile (a SQLite journal, a temporary upload)
    if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
        return
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)
