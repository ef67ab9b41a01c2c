"""A real Orthanc PACS on 127.0.0.1 with free ports and its own temporary storage, started for
the tests that need it and stopped afterwards (Debian package ``orthanc``; DICOMweb plugin when
installed)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class OrthancServer:
    """A running Orthanc: its DICOM port, HTTP port, AE title and radpipe's move port."""

    folder: Path
    dicom_port: int
    http_port: int
    move_port: int
    aet: str = "ORTHANC"
    process: subprocess.Popen[bytes] | None = None

    @property
    def dicomweb(self) -> str | None:
        return f"http://127.0.0.1:{self.http_port}/dicom-web" if PLUGIN.is_file() else None

    def start(self) -> None:
        config = {
            "Name": "radpipe-test", "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"), "DicomAet": self.aet,
            "DicomPort": self.dicom_port, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True, "HttpsVerifyPeers": False,
            "DicomModalities": {"radpipe": ["RADPIPE", "127.0.0.1", self.move_port]},
            "Plugins": [str(PLUGIN)] if PLUGIN.is_file() else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "orthanc.json").write_text(json.dumps(config))
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 (kept for the process)
        self.process = subprocess.Popen(
            ["Orthanc", str(self.folder / "orthanc.json")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/system", timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        raise RuntimeError(
            f"Orthanc did not start: {(self.folder / 'orthanc.log').read_text()[-2000:]}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None


def _server(folder: Path) -> OrthancServer:
    if shutil.which("Orthanc") is None:
        pytest.skip("Orthanc is not installed (make installs the Debian package orthanc)")
    server = OrthancServer(folder, free_port(), free_port(), free_port())
    server.start()
    return server


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """One Orthanc for a test module."""
    server = _server(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()


@pytest.fixture
def fresh_orthanc(tmp_path):
    """An Orthanc of its own for a test that stops it."""
    server = _server(tmp_path / "orthanc-own")
    yield server
    server.stop()
