"""Atomic output: write beside the target under a temporary name, then rename into place, with
the permissions the user's umask gives (temporary files and folders are created private).

Outputs never overwrite, contain or sit inside their inputs (``guard_output``), and a folder is
replaced with ``overwrite`` only when radpipe wrote it (it holds the ``.radpipe-output`` marker):
``--overwrite`` never deletes a user's own files."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypedDict

from radpipe.errors import OutputExistsError, RadpipeError, WriteError

#: The file that marks a folder as radpipe's own output (written in every ``atomic_folder``).
OUTPUT_MARKER = ".radpipe-output"


class OutputOverlapsInputError(OutputExistsError):
    """An output would replace, contain or sit inside one of the command's inputs."""


def _resolved(path: str | Path) -> Path:
    """An absolute path with symbolic links resolved; zip locations give their archive."""
    text = str(path).split("::")[0]
    return Path(text).expanduser().resolve()


def guard_output(
    target: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    input_folders: Iterable[str | Path] = (),
    inside_ok: bool = False,
) -> None:
    """Refuse an output that equals an input, contains one, or lies inside an input folder.

    Parameters
    ----------
    target : the output file or folder
    inputs : files the command reads (a DICOM series' files, a NIfTI, an archive)
    input_folders : folders the command reads as a whole (a series folder, a dataset root)
    inside_ok : allow the output inside an input folder (new files beside the inputs, such as
        a report in a dataset root), never equal to it or holding it

    Raises
    ------
    OutputOverlapsInputError
        Naming the output and the input it would damage.
    """
    output = _resolved(target)
    for name in inputs:
        source = _resolved(name)
        if output == source:
            raise OutputOverlapsInputError(
                f"{target}: is the input {name}; write the output elsewhere"
            )
        if output in source.parents:
            raise OutputOverlapsInputError(
                f"{target}: holds the input {name}; an output folder may not contain its "
                "input, choose a new folder"
            )
    for name in input_folders:
        folder = _resolved(name)
        inside = folder in output.parents and not inside_ok
        if output == folder or output in folder.parents or inside:
            raise OutputOverlapsInputError(
                f"{target}: overlaps the input folder {name}; write the output outside it"
            )


def check_writable(target: str | Path, *, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``, and a folder where a file should go;
    make the parent folder.

    Raises
    ------
    OutputExistsError
        If the file exists and ``overwrite`` is False, or the path is a folder.
    WriteError
        If the parent folder cannot be made (a file is in the way, no permission).
    """
    path = Path(target)
    try:
        is_folder, exists = path.is_dir(), path.exists()
    except OSError as exc:  # a name too long, a component that is not a folder
        raise WriteError(f"{path}: not a usable output path ({exc.strerror})") from None
    if is_folder:
        raise OutputExistsError(f"{path}: is a folder; give a file name for the output")
    if exists and not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass --overwrite to replace it")
    make_parent(path)
    return path


def make_parent(path: Path) -> None:
    """Create ``path``'s parent folder, turning OS failures into one clear error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise WriteError(
            f"{path}: cannot create the folder {path.parent} (a file is in the way)"
        ) from None
    except OSError as exc:
        raise WriteError(
            f"{path}: cannot create the folder {path.parent} ({exc.strerror})"
        ) from None


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn an OS failure while writing ``path`` into a WriteError naming it."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, RadpipeError):
            raise
        reason = (exc.strerror or str(exc) or type(exc).__name__).strip().splitlines()[0][:200]
        raise WriteError(
            f"{path}: cannot be written ({reason}); choose a folder you can write to"
        ) from None


def temporary_prefix(path: Path) -> str:
    """The name prefix of ``path``'s temporaries: hidden, and naming this process, so a later
    run can tell a dead writer's leftovers from a live one's."""
    return f".{path.name}.radpipe-{os.getpid()}-"


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete temporaries of ``path`` left by writers that are no longer running (killed).

    Returns
    -------
    list of Path
        What was removed.
    """
    removed: list[Path] = []
    prefix = f".{path.name}.radpipe-"
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        if not sibling.name.startswith(prefix):
            continue
        owner = sibling.name[len(prefix) :].split("-", 1)[0]
        if not owner.isdigit() or _alive(int(owner)):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                sibling.unlink()
        removed.append(sibling)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
def atomic_path(
    target: str | Path,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    input_folders: Iterable[str | Path] = (),
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it to ``target`` if the block succeeds.

    The temporary name keeps the target's suffixes (``.nii.gz``) so writers that look at the
    extension behave. On any error the temporary file is removed and ``target`` is untouched.

    Raises
    ------
    OutputOverlapsInputError
        If ``target`` is one of ``inputs`` or lies in one of ``input_folders``.
    OutputExistsError
        If ``target`` exists and ``overwrite`` is False, or is a folder.
    WriteError
        If the folder cannot be written.
    """
    path = Path(target)
    guard_output(path, inputs=inputs, input_folders=input_folders)
    check_writable(path, overwrite=overwrite)
    suffix = "".join(path.suffixes)
    remove_stale_temporaries(path)
    with _writing(path):
        descriptor, temporary = tempfile.mkstemp(
            prefix=temporary_prefix(path), suffix=suffix, dir=path.parent
        )
    os.close(descriptor)
    try:
        with _writing(path):
            yield Path(temporary)
            publish_mode(temporary)
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class Inputs(TypedDict):
    """Keyword arguments of :func:`guard_output` describing what a command reads."""

    inputs: list[str]
    input_folders: list[str]


def inputs_of(volume: Any) -> Inputs:
    """The inputs a Volume was read from, as keyword arguments for :func:`guard_output`: its
    source files (a zip member's archive), and the folders of its DICOM files (a series folder
    is read as a whole)."""
    from radpipe.io import registry

    files = [str(name) for name in getattr(volume.meta, "source_files", ())]
    archives = sorted({name.split("::")[0] for name in files if "::" in name})
    plain = [name for name in files if "::" not in name]
    folders = sorted({str(Path(name).parent) for name in plain if registry.format_of(name) is None})
    return Inputs(inputs=plain + archives, input_folders=folders)


def check_folder_replaceable(path: Path, *, overwrite: bool) -> None:
    """Refuse to replace a folder that radpipe did not write, or any folder without
    ``overwrite``. A missing or empty folder is always fine.

    Raises
    ------
    OutputExistsError
        For a non-empty folder without ``overwrite``, a folder without radpipe's marker (the
        user's own files), or a file where a folder should go.
    """
    if not path.exists():
        return
    if not path.is_dir():
        raise OutputExistsError(f"{path}: is a file; the output is a folder, choose another name")
    if not any(path.iterdir()):
        return
    if not overwrite:
        raise OutputExistsError(f"{path}: exists and is not empty; pass --overwrite to replace it")
    if not (path / OUTPUT_MARKER).is_file():
        raise OutputExistsError(
            f"{path}: holds files radpipe did not write (no {OUTPUT_MARKER} marker); "
            "--overwrite only replaces radpipe's own output folders, choose another folder"
        )


@contextlib.contextmanager
def atomic_folder(
    target: str | Path,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    input_folders: Iterable[str | Path] = (),
) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it becomes ``target`` if the block succeeds.

    The folder gets radpipe's marker file. With ``overwrite`` an earlier radpipe output is
    swapped out (renamed aside, the new folder renamed in, the old one deleted), so a crash
    leaves either the old or the new folder, never a mix; a folder holding other files is never
    replaced. On any error the temporary folder is removed and ``target`` is untouched.

    Raises
    ------
    OutputOverlapsInputError
        If the folder would overlap an input (see :func:`guard_output`).
    OutputExistsError
        If the folder exists and may not be replaced (see :func:`check_folder_replaceable`).
    """
    path = Path(target)
    guard_output(path, inputs=inputs, input_folders=input_folders)
    check_folder_replaceable(path, overwrite=overwrite)
    make_parent(path)
    remove_stale_temporaries(path)
    with _writing(path):
        temporary = Path(tempfile.mkdtemp(prefix=temporary_prefix(path), dir=path.parent))
    try:
        yield temporary
        (temporary / OUTPUT_MARKER).write_text("written by radpipe; --overwrite may replace it\n")
        publish_mode(temporary / OUTPUT_MARKER)
        publish_mode(temporary, folder=True)
        previous = None
        if path.exists():
            previous = Path(
                tempfile.mkdtemp(prefix=temporary_prefix(path) + "old-", dir=path.parent)
            )
            os.replace(path, previous / "folder")
        os.replace(temporary, path)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
