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
        except ValueError as exc:  # a UID that is not one: refused as a file name
            with self._lock:
                self.failed.append(str(exc))
            return 0xC000
        except OSError as exc:
            with self._lock:
                self.failed.append(f"{instance}: {exc}")
            return 0xA700
        with self._lock:
            self.stored.append(path)
        if self.on_stored is not None:
            self.on_stored(path, dataset)
        return 0x0000


class StorageNode:
    """A storage SCP (``radpipe pacs listen``): files every instance it receives under
    ``folder`` and calls ``on_study`` with each study folder once an association that brought
    it has ended and no new instance of it has come for ``settle_seconds`` (a study sent over
    several associations is handled once, whole); hooks run in a worker thread, one at a time.

    Use :meth:`start` and :meth:`stop` (or ``with``); :meth:`wait` blocks until stopped.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        port: int,
        aet: str = "RADPIPE",
        host: str = "0.0.0.0",
        on_study: Callable[[Path], None] | None = None,
        on_stored: Callable[[Path, Any], None] | None = None,
        settle_seconds: float = 5.0,
    ) -> None:
        self.folder = Path(folder)
        self.port, self.aet, self.host = port, aet, host
        self.on_study = on_study
        self.settle_seconds = settle_seconds
        self.receiver = Receiver(self.folder, on_stored=on_stored)
        self._touched: dict[int, set[Path]] = {}
        self._last_seen: dict[Path, float] = {}
        self._ready: set[Path] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Any = None
        self._worker: threading.Thread | None = None
        self.problems: list[str] = []

    def _stored(self, event: Any) -> int:
        import time

        status = self.receiver.handle(event)
        if status == 0x0000:
            study = self.folder / str(event.dataset.StudyInstanceUID)
            with self._lock:
                self._touched.setdefault(id(event.assoc), set()).add(study)
                self._last_seen[study] = time.monotonic()
        return status

    def _ended(self, event: Any) -> None:
        with self._lock:
            self._ready.update(self._touched.pop(id(event.assoc), set()))

    def _due(self, now: float, everything: bool) -> list[Path]:
        with self._lock:
            due = sorted(
                study for study in self._ready
                if everything or now - self._last_seen.get(study, 0.0) >= self.settle_seconds
            )  # fmt: skip
            self._ready.difference_update(due)
        return due

    def _work(self) -> None:
        import time

        from radpipe.errors import RadpipeError

        while True:
            stopping = self._stopping.is_set()
            for study in self._due(time.monotonic(), stopping):
                if self.on_study is None:
                    continue
                try:
                    self.on_study(study)
                except RadpipeError as exc:  # one study's problem does not stop the node
                    self.problems.append(f"{study.name}: {exc}")
                except Exception as exc:  # nor does a fault: it is reported with the study
                    self.problems.append(
                        f"{study.name}: internal error {type(exc).__name__}: {exc}"
                    )
            if stopping:
                return
            self._stopping.wait(0.2)

    def start(self) -> StorageNode:
        """Listen; returns at once (the server and the hook worker run in threads).

        Raises
        ------
        PacsError
            If the port cannot be listened on.
        """
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        from radpipe.errors import PacsError
        from radpipe.pacs.peer import check_aet, check_port

        check_port(self.port)
        check_aet(self.aet, "--aet")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        ae = AE(ae_title=self.aet)
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        handlers = [
            (evt.EVT_C_STORE, self._stored),
            (evt.EVT_RELEASED, self._ended),
            (evt.EVT_ABORTED, self._ended),
        ]
        try:
            self._server = ae.start_server((self.host, self.port), block=False,
                                           evt_handlers=handlers)  # fmt: skip
        except OSError as exc:
            raise PacsError(f"cannot listen on port {self.port} ({exc})") from None
        self._worker = threading.Thread(target=self._work, name="radpipe-study-hooks",
                                        daemon=True)  # fmt: skip
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop listening, then run the hooks on every study received and not yet handled."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._worker is not None:
            self._stopping.set()
            self._worker.join()
            self._worker = None

    def wait(self) -> None:
        """Block until :meth:`stop` is called from another thread (or Ctrl-C)."""
        while self._server is not None:
            threading.Event().wait(0.5)

    def __enter__(self) -> StorageNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
