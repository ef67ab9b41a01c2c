"""A throwaway Orthanc PACS for tests, benchmarks and trying radpipe's networking: started on
127.0.0.1 with free ports and its own storage folder, stopped (or killed) on request. Needs the
``Orthanc`` program (Debian package ``orthanc``; DICOMweb when ``orthanc-dicomweb`` is there)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
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
        """The DICOMweb root URL, or None without the plugin."""
        return f"http://127.0.0.1:{self.http_port}/dicom-web" if PLUGIN.is_file() else None

    def start(self) -> None:
        """Write the configuration and start Orthanc; returns once its REST API answers.

        Raises
        ------
        OSError
            If Orthanc exits or does not answer within 30 s (its log's end in the message).
        """
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
        with open(self.folder / "orthanc.log", "ab") as log:  # the child keeps its own copy
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
        self.kill()
        raise OSError(f"Orthanc did not start: {(self.folder / 'orthanc.log').read_text()[-2000:]}")

    def stop(self) -> None:
        """Stop Orthanc (terminate, then kill after 15 s); its storage stays for a restart."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Kill Orthanc at once, as a crashing PACS would go."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None
