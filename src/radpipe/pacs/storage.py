"""Receiving instances: each one written whole under a temporary name and renamed to
``OUT/<study UID>/<series UID>/<SOP instance UID>.dcm``, so an interrupted transfer leaves only
complete files; the storage SCP (``radpipe pacs listen``) files incoming studies the same way."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radpipe.io.atomic import publish_mode

_UID = re.compile(r"^[0-9.]{1,64}$")


def instance_path(folder: Path, study: str, series: str, instance: str) -> Path:
    """Where an instance is kept (UIDs that are not plain UIDs are refused as names)."""
    for uid in (study, series, instance):
        if not _UID.match(uid):
            raise ValueError(f"not a DICOM UID: {uid!r}")
    return folder / study / series / f"{instance}.dcm"


def present_instances(folder: Path) -> set[str]:
    """SOP instance UIDs already stored under ``folder``."""
    if not folder.is_dir():
        return set()
    return {path.stem for path in folder.glob("*/*/*.dcm")}


def write_instance(folder: Path, study: str, series: str, instance: str, data: bytes) -> Path:
    """Write one encoded instance atomically (temporary file in the same folder, renamed)."""
    target = instance_path(folder, study, series, instance)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{instance}.", suffix=".part", dir=target.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        publish_mode(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


@dataclass
class Receiver:
    """The C-STORE handler of a transfer or of the storage SCP: files each instance, counts
    them and reports each one (thread-safe: pynetdicom calls it from its own threads)."""

    folder: Path
    on_stored: Callable[[Path, Any], None] | None = None
    stored: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, event: Any) -> int:
        """pynetdicom ``EVT_C_STORE`` handler: 0x0000 when written, 0xA700 (out of resources)
        when the disk refused it, 0xC000 when the dataset lacks its UIDs."""
        try:
            dataset = event.dataset
            study = str(dataset.StudyInstanceUID)
            series = str(dataset.SeriesInstanceUID)
            instance = str(dataset.SOPInstanceUID)
            data = event.encoded_dataset()
        except (AttributeError, ValueError, KeyError):
            with self._lock:
                self.failed.append("an instance without its UIDs")
            return 0xC000
        try:
            path = write_instance(self.folder, study, series, instance, bytes(data))
        except (OSError, ValueError) as exc:
            with self._lock:
                self.failed.append(f"{instance}: {exc}")
            return 0xA700
        with self._lock:
            self.stored.append(path)
        if self.on_stored is not None:
            self.on_stored(path, dataset)
        return 0x0000
