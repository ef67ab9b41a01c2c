"""Atomic output: write beside the target under a temporary name, then rename into place."""

from __future__ import annotations

import contextlib
import os
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
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
