"""Atomic output: write beside the target under a temporary name, then rename into place, with
the permissions the user's umask gives (temporary files and folders are created private)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from radpipe.errors import OutputExistsError


def check_writable(target: str | Path, *, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; make the parent folder."""
    path = Path(target)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass overwrite=True / --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(path: str | Path, *, folder: bool = False) -> None:
    """Give a file (0666) or folder (0777) the permissions the umask leaves, as ``open`` and
    ``mkdir`` would have; temporary names are created 0600 / 0700."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


@contextlib.contextmanager
def atomic_path(target: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it to ``target`` if the block succeeds.

    The temporary name keeps the target's suffixes (``.nii.gz``) so writers that look at the
    extension behave. On any error the temporary file is removed and ``target`` is untouched.
    """
    path = check_writable(target, overwrite=overwrite)
    suffix = "".join(path.suffixes)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix, dir=path.parent
    )
    os.close(descriptor)
    try:
        yield Path(temporary)
        publish_mode(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_folder(target: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it becomes ``target`` if the block succeeds.

    On any error the temporary folder is removed and ``target`` is untouched.
    """
    path = check_writable(target, overwrite=overwrite)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield temporary
        publish_mode(temporary, folder=True)
        if path.exists():
            shutil.rmtree(path)
        os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
