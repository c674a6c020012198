"""Checking the files and folders a user names, before any work starts.

Every command that reads or writes a path the user typed goes through these, so a wrong path is a
one-line `PathError` with a hint (never a NotADirectoryError traceback after minutes of work).
`describe_os_error` turns an `OSError` that still happens later (disk full, permissions changed
mid-run) into the same kind of message.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from lsn_explorer.errors import PathError


def output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create the folder `path` (and its parents) if needed; it must end up a writable folder."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise PathError(f"{what} {folder} is a file, not a folder", "choose a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(f"cannot create {what} {folder}: {exc.strerror or exc}",
                        _hint(exc, folder)) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PathError(f"{what} {folder} is not writable", "choose a folder you may write to")
    return folder


def output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """`path` can be written: its folder exists (or is created) and it is not itself a folder."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise PathError(f"{what} {target} is a folder", "give a file name inside it, e.g. " + str(target / "out.json"))
    output_dir(target.parent if str(target.parent) else ".", f"folder of the {what}")
    return target


def input_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """`path` is an existing, readable file."""
    source = Path(path).expanduser()
    if not source.exists():
        raise PathError(f"{what} {source} does not exist", "check the path")
    if source.is_dir():
        raise PathError(f"{what} {source} is a folder, not a file", "give the path of a file")
    if not os.access(source, os.R_OK):
        raise PathError(f"{what} {source} is not readable", "check its permissions")
    return source


def describe_os_error(exc: OSError) -> PathError:
    """An OSError raised while reading or writing, as a one-line error with a hint."""
    where = f" {exc.filename}" if exc.filename else ""
    return PathError(f"cannot access{where}: {exc.strerror or exc}", _hint(exc, Path(str(exc.filename or "."))))


def _hint(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full: free some space and run it again"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "you may not write there: choose another place"
    if exc.errno == errno.ENOTDIR:
        return f"part of {path} is a file, not a folder: check the path"
    return "check the path and its permissions"
